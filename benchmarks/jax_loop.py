"""The sequential JAX loop (one ``jax.jit`` per cell) that ``clj bench`` compares with, on its own.

Compiles and runs ``jax.jit(make_train(spec).train)`` for every cell (or a width-stratified
sample) of a preset with an unpadded spec of the cell's own width, output dimension and cluster
count. The implementation is :func:`clj._baselines.jax_loop`.

Command::

    python benchmarks/jax_loop.py --preset reference [--sample-cells 24] [--json OUT]
"""

from __future__ import annotations

import argparse
import json

from clj._baselines import jax_loop, sample_cells
from clj.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--sample-cells", type=int, default=None)
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    config = preset(args.preset)
    index = sample_cells(config.cells(), args.sample_cells)
    out = jax_loop(config, index)
    print(
        f"JAX loop, {out['measured_cells']} of {out['cells']} cells run "
        f"({out['extrapolation']}): compile {out['compile_s']:.1f} s, "
        f"train {out['train_s']:.1f} s, total {out['total_s']:.1f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
