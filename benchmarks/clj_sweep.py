"""Times ``clj sweep --preset NAME --out TMP --no-progress`` as a whole process, on its own.

Prints the whole-process wall time and the compile, train and evaluation seconds of every
program (read from the run's ``config.json``). The implementation is :func:`clj.bench.time_sweep`.

Command::

    python benchmarks/clj_sweep.py --preset reference [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from clj.bench import time_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clj-sweep-") as tmp:
        out = time_sweep(args.preset, {}, Path(tmp) / "sweep")
    print(f"{out['command']}: {out['wall_s']:.1f} s whole process")
    for p in out["programs"]:
        print(
            f"  {p['label']}: compile {p['compile_s']:.1f} s, train {p['train_s']:.1f} s, "
            f"eval {p['eval_s']:.1f} s"
        )
    print(f"  start-up, planning, writing: {out['other_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
