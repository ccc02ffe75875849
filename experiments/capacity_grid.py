"""Capacity and output dimension decide which clusters a contrastive encoder recovers.

Run::

    python experiments/capacity_grid.py --quick --out runs/capacity-grid
    # or: clj reproduce capacity-grid --quick --out runs/capacity-grid

Writes results.csv, recovery.png and summary.md. What it should show (HaoChen & Ma 2023): on a
mixture of 4 groups of close fine clusters, k = 4 suffices to recover the groups (coarse-probe
accuracy ≈ 1); recovering every fine cluster needs k ≥ the number of fine clusters and width;
width-2 encoders recover neither. See ``clj/reproduce/capacity_grid.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "capacity-grid", *sys.argv[1:]]))
