"""SimVAE keeps the style that SimCLR discards, and comes closer to it on content than a VAE.

Run::

    python experiments/simvae_style.py --quick --out runs/simvae-style
    # or: clj reproduce simvae-style --quick --out runs/simvae-style

Writes results.csv, content_vs_style.png and summary.md. What it should show (Bizeul et al.
2024): on glyph images and on scikit-learn's digits, whose style (position) augmentation changes,
SimCLR has the best linear-probe accuracy on the class and the lowest held-out R² of the position;
SimVAE's R² of the position is above SimCLR's, and its class accuracy is closer to SimCLR's than
a plain VAE's. See ``clj/reproduce/simvae_style.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "simvae-style", *sys.argv[1:]]))
