"""A linear encoder trained on the spectral loss finds the hypercube's invariant coordinates.

Run::

    python experiments/linear_hypercube.py --quick --out runs/linear-hypercube
    # or: clj reproduce linear-hypercube --quick --out runs/linear-hypercube

Writes results.csv, loss_curves.png, subspace.png, mlp_width.png and summary.md. What it should
show (HaoChen & Ma 2023 Thm 5.3; Saunshi et al. 2022 Ex. 1): trained linear encoders reach the
closed-form population optimum (within 2 %); with k = s + 1 (s directions plus the bias's constant)
their weights span the s invariant coordinates (principal angles < 5°) and a linear probe reads
the label (≥ 99 %); MLPs of growing width are reported beside them. See
``clj/reproduce/linear_hypercube.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "linear-hypercube", *sys.argv[1:]]))
