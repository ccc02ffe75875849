"""The per-cell parameters of a grid: what may differ between cells of one compiled program."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CELL_DEFAULTS", "CELL_DTYPES", "Cell", "one_cell", "stack_cells", "stream_ids"]


class Cell(NamedTuple):
    """One grid cell's dynamic parameters.

    Each field is a scalar for a single cell; after :func:`stack_cells` each is a ``[C]`` array with
    one entry per cell, the axis that ``jax.vmap`` maps over.
    """

    seed: jax.Array
    width: jax.Array
    clusters: jax.Array
    out_dim: jax.Array
    lr: jax.Array
    weight_decay: jax.Array
    temperature: jax.Array
    dof: jax.Array
    lam: jax.Array
    lipschitz: jax.Array
    prior_var: jax.Array


CELL_DTYPES: dict[str, type] = {
    "seed": np.int32,
    "width": np.int32,
    "clusters": np.int32,
    "out_dim": np.int32,
    "lr": np.float32,
    "weight_decay": np.float32,
    "temperature": np.float32,
    "dof": np.float32,
    "lam": np.float32,
    "lipschitz": np.float32,
    "prior_var": np.float32,
}

CELL_DEFAULTS: dict[str, float] = {"lipschitz": math.inf, "prior_var": 1.0}
"""Values a cell dict may leave out: axes only some encoders or losses read (``inf``: uncapped)."""


def stack_cells(cells: list[dict]) -> Cell:
    """Stacks per-cell dicts, each with every :class:`Cell` field (but those of
    :data:`CELL_DEFAULTS`, which may be left out), into ``[C]`` arrays."""
    return Cell(
        **{
            name: jnp.asarray(np.array([{**CELL_DEFAULTS, **c}[name] for c in cells], dtype=dtype))
            for name, dtype in CELL_DTYPES.items()
        }
    )


def stream_ids(cells: Sequence[dict], fields: Sequence[str]) -> np.ndarray:
    """``[C]`` int ids, equal for cells that agree on every one of ``fields`` (numbered by first
    appearance). With a data family's :attr:`~clj.data.DataFamily.cell_fields`, cells of one id
    draw the same data stream."""
    ids: dict[tuple, int] = {}
    keys = [tuple({**CELL_DEFAULTS, **c}[f] for f in fields) for c in cells]
    return np.array([ids.setdefault(k, len(ids)) for k in keys], np.int64)


def one_cell(**values: float) -> Cell:
    """A single cell (scalar fields, no cell axis). Fields not given take plain values: seed 0,
    width, clusters and out_dim 1, lr 1e-3, weight_decay 0, temperature 0.5, dof 5, lam 1 (and
    :data:`CELL_DEFAULTS`)."""
    plain = dict(
        seed=0,
        width=1,
        clusters=1,
        out_dim=1,
        lr=1e-3,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return jax.tree.map(lambda a: a[0], stack_cells([{**plain, **values}]))
