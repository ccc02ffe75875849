"""Contrastive clusters are locally dense, supervised ones globally (Zhang et al. 2023).

Run::

    python experiments/rld_gcn.py --quick --out runs/rld-gcn
    # or: clj reproduce rld-gcn --quick --out runs/rld-gcn

Writes results.csv (one row per trained encoder), toy_sets.csv, means_over_seeds.csv,
probe_sizes.csv, toys.png, measures.png, features.png and summary.md. What it should show: on six
2-D toy sets, relative local density (RLD) ranks the locally dense ones (rings, lines, clumps,
segments) high where Calinski–Harabasz (CH) ranks them low; the same MLP trained by InfoNCE has
higher RLD and lower CH than when trained with labels (on digits and on a hierarchical mixture),
and a GCN over the RLD graph gains more over a linear probe on the contrastive features. See
``clj/reproduce/rld_gcn.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "rld-gcn", *sys.argv[1:]]))
