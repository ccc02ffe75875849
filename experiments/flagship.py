"""Capacity vs cluster recovery on ``hierarchical_mixture``: the default grid of ``clj sweep``.

Run::

    python experiments/flagship.py --out runs/flagship     # or: clj sweep --preset flagship

Data: 4 well-separated groups, each split into close fine clusters (8, 16 or 32 fine clusters in
all) that augmentation never links. Encoders: ReLU MLPs of depth 2 and width 2-128 with output
dimension k = 4 (the number of groups) or k = 32, trained with the spectral contrastive loss.

What it should show (HaoChen & Ma 2023): with k = 4 every encoder wide enough to be more than a
bottleneck (width ≥ 8) recovers the coarse groups perfectly (``probe_coarse`` = 1) while a linear
probe separates the fine clusters only partially; recovering every fine cluster
(``recovered_clusters`` ≈ number of fine clusters) needs both k ≥ the number of fine clusters and
enough width. Width 2 recovers neither.
"""

from __future__ import annotations

import argparse

import clj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/flagship")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

    result = clj.sweep(clj.preset("flagship"))
    result.save(args.out, overwrite=args.overwrite)
    table = result.table
    for metric in ("probe_coarse", "probe_fine", "recovered_clusters"):
        print(f"\n{metric} (mean over seeds)")
        pivot = table.pivot_table(
            index=["out_dim", "width"], columns="clusters", values=metric, aggfunc="mean"
        )
        print(pivot.round(2).to_string())


if __name__ == "__main__":
    main()
