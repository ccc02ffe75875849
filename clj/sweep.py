"""Run a whole :class:`~clj.config.SweepConfig`: plan programs, train every cell, collect results.

The grid's cells are split into *programs*: one per combination of static axes, further split into
width buckets when :mod:`clj.buckets`'s cost model says so. Each program is compiled once and runs
``jax.vmap`` over its cells, stepping the scan in chunks so a progress bar can follow it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from clj.buckets import COMPILE_FLOPS, mlp_step_flops, plan_buckets
from clj.cell import stack_cells
from clj.config import CELL_AXES, STATIC_AXES, SweepConfig
from clj.data import make_family
from clj.evaluate import METRICS, make_evaluate
from clj.spec import Spec
from clj.train import make_train

__all__ = ["Program", "SweepResult", "plan_programs", "run_program", "sweep"]

CELL_COLUMNS = ("seed", *CELL_AXES.values())
"""Per-cell coordinate columns of ``results.csv`` (after the static axes)."""

PROGRESS_UPDATES = 25
"""Roughly how many times a program reports progress (the scan is run in this many chunks)."""

EVAL_BATCH = 32
"""Cells evaluated at once; bounds the memory of the evaluation's pairwise distances."""


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: a static :class:`Spec` and the cells that share it.

    Attributes:
      spec: static configuration (padded to the widest cell of this program).
      cells: the cells' coordinates (dicts as :meth:`SweepConfig.cells` gives).
      index: each cell's position in the whole grid.
    """

    spec: Spec
    cells: tuple[dict[str, Any], ...]
    index: tuple[int, ...]

    @property
    def label(self) -> str:
        """A short human-readable name for progress bars and logs."""
        s = self.spec
        width = f"width≤{s.max_width}" if s.encoder != "linear" else "linear"
        return f"{s.family.name} {s.loss} {width} ({len(self.cells)} cells)"


def plan_programs(
    config: SweepConfig, backend: str | None = None, bucket_widths: bool | None = None
) -> list[Program]:
    """Splits the grid into programs: by static axes, then into width buckets.

    Args:
      config: the sweep.
      backend: ``"cpu"``, ``"gpu"`` or ``"tpu"`` for the cost model (default: JAX's backend).
      bucket_widths: override ``config.bucket_widths``.
    """
    backend = backend or jax.default_backend()
    bucket = config.bucket_widths if bucket_widths is None else bucket_widths
    groups: dict[tuple, list[int]] = {}
    cells = config.cells()
    for i, cell in enumerate(cells):
        groups.setdefault(tuple(cell[a] for a in STATIC_AXES), []).append(i)

    programs = []
    for key, members in groups.items():
        static = dict(zip(STATIC_AXES, key, strict=True))
        widths = _width_buckets(config, static, [cells[i] for i in members], backend, bucket)
        for bucket_widths_ in widths:
            chosen = [i for i in members if cells[i]["width"] in bucket_widths_]
            programs.append(_program(config, static, [cells[i] for i in chosen], chosen))
    return programs


def _width_buckets(
    config: SweepConfig, static: dict, cells: list[dict], backend: str, bucket: bool
) -> list[tuple[int, ...]]:
    widths = sorted({c["width"] for c in cells})
    if static["encoder"] == "linear" or not bucket:
        return [tuple(widths)]
    counts = {w: sum(c["width"] == w for c in cells) for w in widths}
    out_dim = max(c["out_dim"] for c in cells)

    def cost(width: int) -> float:
        flops = mlp_step_flops(static["dim"], width, out_dim, static["depth"], static["batch"])
        return flops * static["steps"]

    return plan_buckets(counts, cost, COMPILE_FLOPS.get(backend, COMPILE_FLOPS["gpu"]))


def _program(config: SweepConfig, static: dict, cells: list[dict], index: list[int]) -> Program:
    family = make_family(
        static["data"],
        static["dim"],
        max(c["clusters"] for c in cells),
        **config.options_for(static["data"]),
    )
    spec = Spec(
        family=family,
        encoder=static["encoder"],
        depth=static["depth"],
        max_width=max(c["width"] for c in cells) if static["encoder"] != "linear" else 1,
        max_out_dim=max(c["out_dim"] for c in cells),
        loss=static["loss"],
        optimizer=static["optimizer"],
        batch=static["batch"],
        steps=static["steps"],
        eval_size=static["eval_size"],
        log_every=config.log_every,
        pool_size=config.pool_size,
    )
    return Program(spec=spec, cells=tuple(cells), index=tuple(index))


@dataclasses.dataclass
class ProgramResult:
    """What one program produced.

    Attributes:
      metrics: ``{metric: [C] array}``.
      curves: ``[C, steps // log_every]`` mean training loss per window.
      timings: seconds spent compiling, training and evaluating.
    """

    metrics: dict[str, np.ndarray]
    curves: np.ndarray
    timings: dict[str, float]


def _chunk_windows(windows: int) -> int:
    return max(1, windows // PROGRESS_UPDATES)


def run_program(program: Program, on_steps: Callable[[int], None] | None = None) -> ProgramResult:
    """Compiles and runs one program over all its cells.

    Args:
      program: the program.
      on_steps: called with the number of steps just completed, after each chunk.
    """
    spec = program.spec
    trainer = make_train(spec)
    evaluate = make_evaluate(trainer)
    cells = stack_cells(list(program.cells))

    t0 = time.perf_counter()
    init = jax.jit(jax.vmap(trainer.init)).lower(cells).compile()
    state = init(cells)
    windows = spec.curve_length
    chunk = _chunk_windows(windows) * spec.log_every
    run = jax.jit(jax.vmap(trainer.run, in_axes=(0, 0, None)), static_argnums=2, donate_argnums=0)
    compiled = {chunk: run.lower(state, cells, chunk).compile()}
    remainder = spec.steps % chunk
    if remainder:
        compiled[remainder] = run.lower(state, cells, remainder).compile()
    eval_batch = min(EVAL_BATCH, len(program.cells))
    curve_shape = jax.ShapeDtypeStruct((eval_batch, windows), np.float32)
    evaluate_c = (
        jax.jit(jax.vmap(evaluate))
        .lower(*_take((state, cells), np.arange(eval_batch)), curve_shape)
        .compile()
    )
    jax.block_until_ready(state)
    t1 = time.perf_counter()

    curves = []
    done = 0
    while done < spec.steps:
        n = chunk if spec.steps - done >= chunk else remainder
        state, curve = compiled[n](state, cells)
        curves.append(curve)
        curve.block_until_ready()
        done += n
        if on_steps is not None:
            on_steps(n)
    curves = np.concatenate([np.asarray(c) for c in curves], axis=1)
    t2 = time.perf_counter()

    metrics = _evaluate_in_batches(evaluate_c, eval_batch, state, cells, curves)
    t3 = time.perf_counter()
    return ProgramResult(
        metrics={k: np.asarray(v) for k, v in metrics.items()},
        curves=curves,
        timings={"compile_s": t1 - t0, "train_s": t2 - t1, "eval_s": t3 - t2},
    )


def _take(tree: Any, index: np.ndarray) -> Any:
    return jax.tree.map(lambda a: a[index], tree)


def _evaluate_in_batches(
    evaluate: Callable, batch: int, state: Any, cells: Any, curves: np.ndarray
) -> dict[str, np.ndarray]:
    """Runs the compiled ``evaluate`` on ``batch`` cells at a time (the last batch padded)."""
    total = curves.shape[0]
    parts = []
    for start in range(0, total, batch):
        index = np.minimum(np.arange(start, start + batch), total - 1)
        out = evaluate(*_take((state, cells), index), curves[index])
        kept = min(batch, total - start)
        parts.append({k: np.asarray(v)[:kept] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclasses.dataclass
class SweepResult:
    """Results of a sweep.

    Attributes:
      config: the sweep configuration.
      table: one row per cell: every grid coordinate, ``program``, and every metric of
        :data:`clj.evaluate.METRICS`.
      curves: long table of loss curves: ``cell``, ``step``, ``loss``.
      programs: per program: its label, padding, cell count and timings.
      wall_s: seconds from planning to the last result.
    """

    config: SweepConfig
    table: pd.DataFrame
    curves: pd.DataFrame
    programs: list[dict[str, Any]]
    wall_s: float

    def save(self, out: str, overwrite: bool = False) -> None:
        """Writes ``results.csv``, ``curves.csv``, ``config.json`` and the plots into ``out``."""
        from clj.io import save_sweep

        save_sweep(self, out, overwrite=overwrite)


def sweep(
    config: SweepConfig | None = None,
    *,
    progress: bool = True,
    programs: Sequence[Program] | None = None,
) -> SweepResult:
    """Trains and evaluates every cell of ``config``.

    Args:
      config: the grid (default: the flagship grid, ``SweepConfig()``).
      progress: show a progress bar of steps done.
      programs: run these programs instead of ``plan_programs(config)``.

    Returns:
      A :class:`SweepResult`; nothing is written to disk (see :meth:`SweepResult.save`).
    """
    from clj.progress import StepProgress

    config = config or SweepConfig()
    start = time.perf_counter()
    programs = list(programs or plan_programs(config))
    rows: list[dict[str, Any] | None] = [None] * config.num_cells
    curve_rows = []
    summaries = []
    with StepProgress(sum(p.spec.steps for p in programs), enabled=progress) as bar:
        for number, program in enumerate(programs):
            bar.start_program(f"[{number + 1}/{len(programs)}] {program.label}")
            result = run_program(program, on_steps=bar.advance)
            for j, (cell, i) in enumerate(zip(program.cells, program.index, strict=True)):
                row = {"cell": i, **cell, "program": number}
                row |= {m: result.metrics[m][j].item() for m in METRICS}
                rows[i] = row
                steps = np.arange(1, result.curves.shape[1] + 1) * program.spec.log_every
                curve_rows.append(
                    pd.DataFrame({"cell": i, "step": steps, "loss": result.curves[j]})
                )
            summaries.append(
                {
                    "program": number,
                    "label": program.label,
                    "cells": len(program.cells),
                    "max_width": program.spec.max_width,
                    "max_out_dim": program.spec.max_out_dim,
                    "max_clusters": program.spec.family.max_clusters,
                    **{k: round(v, 3) for k, v in result.timings.items()},
                }
            )
    table = pd.DataFrame(rows)
    columns = ["cell", *STATIC_AXES, *CELL_COLUMNS, "program", *METRICS]
    table = table[columns]
    curves = pd.concat(curve_rows).sort_values(["cell", "step"]).reset_index(drop=True)
    return SweepResult(config, table, curves, summaries, time.perf_counter() - start)
