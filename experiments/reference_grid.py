"""The reference speed grid: 144 cells of ``gaussian_mixture`` in one call.

Run::

    python experiments/reference_grid.py --out runs/reference
    # the same grid from the command line:
    clj sweep --data gaussian_mixture --dim 32 --seeds 4 --widths 4,8,16,32,64,256 \\
        --clusters 2,4,8,16,32,64 --out-dims 8 --depth 2 --batch 256 --steps 300 \\
        --loss spectral --lr 1e-3 --out runs/reference

4 seeds × 6 widths × 6 cluster counts, d = 32, k = 8, MLP depth 2, batch 256, 300 steps. It is
the grid ``clj bench`` times against sequential loops. What it should show: with k = 8 < number
of clusters, linear-probe accuracy falls as clusters grow past k for narrow encoders, while wide
ones keep most clusters apart; the printed timings split compile, training and evaluation.
"""

from __future__ import annotations

import argparse

import clj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/reference")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

    result = clj.sweep(clj.preset("reference"))
    result.save(args.out, overwrite=args.overwrite)
    print(f"{len(result.table)} cells in {result.wall_s:.1f} s")
    for program in result.programs:
        print(
            f"  {program['label']}: compile {program['compile_s']:.1f} s, "
            f"train {program['train_s']:.1f} s, evaluate {program['eval_s']:.1f} s"
        )
    pivot = result.table.pivot_table(
        index="width", columns="clusters", values="probe_fine", aggfunc="mean"
    )
    print("\nprobe_fine (mean over seeds)\n" + pivot.round(2).to_string())


if __name__ == "__main__":
    main()
