"""A Lipschitz cap makes the well-separated regions, not their sub-clusters, the clusters.

Run::

    python experiments/lipschitz_regions.py --quick --out runs/lipschitz-regions
    # or: clj reproduce lipschitz-regions --quick --out runs/lipschitz-regions

Writes results.csv, accuracy_vs_cap.png and summary.md. What it should show (HaoChen & Ma 2023,
Example 5.7): on 4 far-apart regions of 4 close sub-clusters each, depth-2 MLPs whose Lipschitz
constant is capped recover the regions with k = 4 (coarse-probe accuracy ≈ 1) without separating
the sub-clusters, and even with k = 16 implement only the 4 regions (spectral loss ≈ −4), while
the uncapped MLP implements the sub-clusters (loss towards −16). See
``clj/reproduce/lipschitz_regions.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "lipschitz-regions", *sys.argv[1:]]))
