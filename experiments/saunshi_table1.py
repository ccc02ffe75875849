"""Saunshi et al. (2022), Table 1: the SimCLR loss does not decide downstream accuracy.

Run::

    python experiments/saunshi_table1.py --quick --out runs/saunshi-table1
    # or: clj reproduce saunshi-table1 --quick --out runs/saunshi-table1

Writes results.csv (one row per representation and seed), table_1_beside_the_paper.csv,
loss_vs_accuracy.png and summary.md. What it should show, on the hypercube of their Example 1:
a hand-built perfect representation f and a spurious one g have the same held-out SimCLR loss,
but a linear probe reads the label perfectly from f and at chance from g; among encoders trained
with the SimCLR loss (MLP + Adam, MLP + Adam + weight decay, linear; 5 or more seeds each, one
vmapped program per encoder), the linear one has the highest loss and the best accuracy, the MLP
is worse, and weight decay helps the MLP. See ``clj/reproduce/saunshi_table1.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "saunshi-table1", *sys.argv[1:]]))
