"""The representation dimension a translation-invariant CNN and an MLP need (HaoChen & Ma 2023).

Run::

    python experiments/cnn_translation.py --quick --out runs/cnn-translation
    # or: clj reproduce cnn-translation --quick --out runs/cnn-translation

Writes results.csv, probe_vs_k.png, needed_k.png, needed_k.csv and summary.md. What it should
show (Theorem 5.12): with an s-bit pattern at a random one of P patches, the smallest output
dimension k at which a linear probe reads the pattern from the representation (accuracy ≥ 0.9)
is about 2^s for the CNN, whatever P, and about P·2^(s−1) for the MLP, which grows with P. See
``clj/reproduce/cnn_translation.py``.
"""

import sys

from clj.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "cnn-translation", *sys.argv[1:]]))
