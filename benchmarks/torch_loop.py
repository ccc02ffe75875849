"""The sequential PyTorch loop that ``clj bench`` compares ``clj sweep`` with, on its own.

Trains every cell (or a width-stratified sample) of a preset one after another with plain PyTorch:
exact-width ``nn.Sequential`` MLPs, ``torch.optim.Adam``, fresh Gaussian-mixture batches, the
spectral loss; then held-out features, loss and a ridge probe (``--no-eval`` skips them). The
implementation is :func:`clj._baselines.torch_loop`.

Command::

    python benchmarks/torch_loop.py --preset reference [--sample-cells 24] [--json OUT]
"""

from __future__ import annotations

import argparse
import json

from clj._baselines import sample_cells, torch_loop
from clj.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--sample-cells", type=int, default=None)
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="default: os.cpu_count()")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    config = preset(args.preset)
    index = sample_cells(config.cells(), args.sample_cells)
    out = torch_loop(config, index, evaluate=not args.no_eval, threads=args.threads)
    print(
        f"PyTorch loop, {out['measured_cells']} of {out['cells']} cells run "
        f"({out['extrapolation']}), {out['threads']} threads: "
        f"train {out['train_s']:.1f} s, eval {out['eval_s']:.1f} s, total {out['total_s']:.1f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
