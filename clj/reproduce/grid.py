"""Helpers the experiments share: run a grid keeping final states, and encode with them."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pandas as pd

from clj.cell import stack_cells
from clj.config import SweepConfig
from clj.plan import Program
from clj.runner import RunOptions
from clj.sweep import SweepResult, sweep
from clj.train import make_train

__all__ = ["encode_cells", "run_grid", "seed_summary"]


def run_grid(config: SweepConfig, progress: bool = True) -> SweepResult:
    """Trains and evaluates every cell of ``config`` and keeps every cell's final state.

    ``result.states`` holds one ``(program, states)`` pair per compiled program.
    """
    return sweep(config, progress=progress, options=RunOptions(keep_states=True))


def encode_cells(program: Program, states: Any, x: jax.Array | np.ndarray) -> np.ndarray:
    """Each cell's representation of the same inputs.

    Args:
      program: a program of the sweep.
      states: its cells' final states (``[C, ...]`` leaves).
      x: ``[n, dim]`` inputs, or ``[C, n, dim]`` inputs of each cell.

    Returns:
      ``[C, n, max_out_dim]`` features (zero beyond each cell's ``out_dim``).
    """
    trainer = make_train(program.spec)
    cells = stack_cells(list(program.cells))
    in_axis = 0 if np.ndim(x) == 3 else None
    encode = jax.jit(jax.vmap(trainer.encode, in_axes=(0, 0, in_axis)))
    return np.asarray(encode(states.params, cells, x))


def seed_summary(
    table: pd.DataFrame, by: list[str], metrics: list[str], seed: str = "seed"
) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``metrics``, one row per ``by`` combination.

    Columns: ``by``, then ``METRIC_mean`` and ``METRIC_sd`` for each metric, and ``seeds``.
    """
    grouped = table.groupby(by, sort=True)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in out.columns]
    out["seeds"] = grouped[seed].nunique()
    return out.reset_index()
