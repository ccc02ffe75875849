"""Paper reproductions, one vmapped grid each: ``clj reproduce NAME [--quick] [--out DIR]``.

Every experiment trains its whole grid (seeds and swept axes) as compiled vmapped programs and
returns a :class:`Report`: the per-cell table, figures, and :class:`Check` s of the theory's
predictions against the measurements, from which the verdict follows. ``--quick`` sizes run on a
2-core CPU in minutes; the full sizes are meant for a GPU.

Experiments are imported only when run, so listing them is cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from pathlib import Path

from clj.reproduce.report import Check, Report, verdict, write_report

__all__ = [
    "EXPERIMENTS",
    "Check",
    "Experiment",
    "Report",
    "get_experiment",
    "run_experiment",
    "verdict",
    "write_report",
]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproduction.

    Attributes:
      name: the name ``clj reproduce`` takes (e.g. ``"linear-hypercube"``).
      title: one line: the paper and the claim.
      claim: markdown paragraph: what the theory predicts, quantitatively where possible.
      run: ``(quick, progress) -> Report``: trains the grid and measures.
    """

    name: str
    title: str
    claim: str
    run: Callable[[bool, bool], Report]


EXPERIMENTS: dict[str, str] = {
    "capacity-grid": "clj.reproduce.capacity_grid",
    "simvae-style": "clj.reproduce.simvae_style",
    "linear-hypercube": "clj.reproduce.linear_hypercube",
    "grid-2x2": "clj.reproduce.grid_2x2",
    "lipschitz-regions": "clj.reproduce.lipschitz_regions",
    "cnn-translation": "clj.reproduce.cnn_translation",
    "rld-gcn": "clj.reproduce.rld_gcn",
    "t-simclr": "clj.reproduce.t_simclr",
    "saunshi-table1": "clj.reproduce.saunshi_table1",
}
"""Experiment name -> the module defining it (as ``EXPERIMENT``), in the order ``all`` runs them."""


def get_experiment(name: str) -> Experiment:
    """The experiment ``name``; raises ``ValueError`` naming an unknown one."""
    if name not in EXPERIMENTS:
        known = ", ".join(EXPERIMENTS) or "none"
        raise ValueError(f"unknown experiment {name!r}; choose from {known} or all")
    return importlib.import_module(EXPERIMENTS[name]).EXPERIMENT


def run_experiment(
    name: str,
    out: str | Path,
    quick: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Report:
    """Runs experiment ``name`` and writes its results, figures and ``summary.md`` into ``out``."""
    from clj.io import prepare_out_dir

    experiment = get_experiment(name)
    prepare_out_dir(out, overwrite=overwrite, create=False)
    start = time.perf_counter()
    report = experiment.run(quick, progress)
    report.wall_s = time.perf_counter() - start
    command = f"clj reproduce {name}" + (" --quick" if quick else "")
    write_report(
        out,
        experiment.name,
        experiment.title,
        experiment.claim,
        report,
        quick,
        command,
        overwrite=overwrite,
    )
    return report
