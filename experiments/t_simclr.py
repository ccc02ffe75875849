"""SimCLR against t-SimCLR (Hu et al. 2023): a Student-t kernel helps most at low output dimension.

Run::

    python experiments/t_simclr.py --quick --out runs/t-simclr
    # or: clj reproduce t-simclr --quick --out runs/t-simclr

Writes results.csv, toy.png (the 2-D features of the d = 2, m = 5, σ = 0.1 Gaussian mixture for
SimCLR and t-SimCLR beside the input), accuracy_vs_k.png (linear-probe and k-NN accuracy against
the output dimension k on a 32-cluster mixture and on the 8×8 digits, per loss and degrees of
freedom ν) and summary.md. What it should show: t-SimCLR's gain over SimCLR is largest at k = 1–2
and shrinks as k grows, and a very large ν (a Gaussian kernel) loses the gain. See
``clj/reproduce/t_simclr.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "t-simclr", *sys.argv[1:]]))
