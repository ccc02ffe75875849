"""Run a whole :class:`~clj.config.SweepConfig`: plan programs, train every cell, collect results.

The grid's cells are split into programs (:mod:`clj.plan`); each is compiled once and runs
``jax.vmap`` over its cells, sharded over all devices (:mod:`clj.runner`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from clj.config import CELL_AXES, STATIC_AXES, SweepConfig
from clj.distributed import cell_mesh
from clj.evaluate import METRICS, heldout_key, score_key
from clj.plan import Program, plan_programs
from clj.progress import StepProgress
from clj.runner import (
    HeldOutSampler,
    RunOptions,
    Scorer,
    chunk_plan,
    run_program,
    shared_batches,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CELL_COLUMNS", "RunOptions", "SweepResult", "sweep"]

CELL_COLUMNS = ("seed", *CELL_AXES.values())
"""Per-cell coordinate columns of ``results.csv`` (after the static axes)."""


@dataclasses.dataclass
class SweepResult:
    """Results of a sweep.

    Attributes:
      config: the sweep configuration.
      table: one row per cell: ``cell``, every grid coordinate, ``program``, and every metric of
        :data:`clj.evaluate.METRICS`.
      curves: long table of loss curves: ``cell``, ``step``, ``loss`` (mean over the window of
        ``log_every`` steps ending at ``step``).
      programs: per program: its label, padding, cell count, chunking and timings.
      wall_s: seconds from planning to the last result.
      states: with ``RunOptions(keep_states=True)``, one ``(program, states)`` pair per program:
        the program and its cells' final states (host arrays, cells in ``program.cells`` order).
    """

    config: SweepConfig
    table: pd.DataFrame
    curves: pd.DataFrame
    programs: list[dict[str, Any]]
    wall_s: float
    states: list[tuple[Program, Any]] | None = None

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Writes ``results.csv``, ``curves.csv``, ``config.json`` and the plots into ``out``."""
        from clj.io import save_sweep

        return save_sweep(self, out, overwrite=overwrite)


def sweep(
    config: SweepConfig | None = None,
    *,
    progress: bool = True,
    options: RunOptions | None = None,
    programs: Sequence[Program] | None = None,
) -> SweepResult:
    """Trains and evaluates every cell of ``config``.

    Args:
      config: the grid (default: the flagship grid, ``SweepConfig()``).
      progress: show a progress bar of steps done (in process 0 only).
      options: devices, chunking and checkpoints (:class:`clj.runner.RunOptions`).
      programs: run these programs instead of ``plan_programs(config)``.

    Returns:
      A :class:`SweepResult`; nothing but checkpoints is written (see :meth:`SweepResult.save`).
    """
    import pandas as pd  # not at import: about 0.35 s the command line needs only at the end

    config = config or SweepConfig()
    options = options or RunOptions()
    start = time.perf_counter()
    programs = list(programs or plan_programs(config))
    plans = [chunk_plan(p, options) for p in programs]
    total = sum(p.spec.steps * chunks for p, (_, chunks) in zip(programs, plans, strict=True))
    # Programs with equal held-out data or metric shapes share one compiled program of each,
    # processing batches of the smallest chunk among them.
    mesh = options.mesh or cell_mesh()
    specs, chunk_cells = [p.spec for p in programs], [per_chunk for per_chunk, _ in plans]
    sampler = HeldOutSampler(mesh, shared_batches(specs, chunk_cells, heldout_key))
    scorer = Scorer(mesh, shared_batches(specs, chunk_cells, score_key))
    rows: list[dict[str, Any] | None] = [None] * config.num_cells
    curve_rows = []
    summaries = []
    states = []
    show = progress and jax.process_index() == 0
    with StepProgress(total, enabled=show) as bar:
        for number, program in enumerate(programs):
            bar.start_program(f"[{number + 1}/{len(programs)}] {program.label}")
            result = run_program(
                program, number, options, bar.advance, scorer=scorer, sampler=sampler
            )
            if result.states is not None:
                states.append((program, result.states))
            steps = np.arange(1, program.spec.curve_length + 1) * program.spec.log_every
            for j, (cell, i) in enumerate(zip(program.cells, program.index, strict=True)):
                row = {"cell": i, **cell, "program": number}
                row |= {m: result.metrics[m][j].item() for m in METRICS}
                rows[i] = row
                curve_rows.append(
                    pd.DataFrame({"cell": i, "step": steps, "loss": result.curves[j]})
                )
            summaries.append(
                {
                    "program": number,
                    "label": program.label,
                    "cells": len(program.cells),
                    "max_width": program.spec.max_width,
                    "width_classes": list(program.width_classes),
                    "max_out_dim": program.spec.max_out_dim,
                    "max_clusters": program.spec.family.max_clusters,
                    "chunk_cells": result.chunk_cells,
                    "chunks": result.chunks,
                    **{k: round(v, 3) for k, v in result.timings.items()},
                }
            )
    table = pd.DataFrame(rows)[["cell", *STATIC_AXES, *CELL_COLUMNS, "program", *METRICS]]
    curves = pd.concat(curve_rows).sort_values(["cell", "step"]).reset_index(drop=True)
    wall = time.perf_counter() - start
    return SweepResult(config, table, curves, summaries, wall, states or None)
