"""Width classes: one program whose groups of cells train at different padded widths.

Padding every cell of a program to its widest width wastes work on the narrow cells; splitting
the cells into programs of their own costs a whole program's compiles (initialisation, step
chunks, features) each. A program with width classes keeps one program: its state is padded to
the widest class, its cells are trained ``at_once`` at a time in groups of one class, and each
group's step chunk is one branch of a ``jax.lax.switch`` that slices the group's state down to its
class's width, trains it there and pads it back. Only the step chunk compiles once per class
(:func:`run_by_class`); the features program maps groups the same way over a subset of the
classes (:func:`map_by_class`).

Cells that draw the same data (they agree on the family's
:attr:`~clj.data.DataFamily.cell_fields`) and fill a class's groups exactly are grouped stream by
stream (:func:`class_layout`), and such a group draws each step's batch once for all its cells
(:attr:`~clj.train.Trainer.run_shared`, ``grouped`` in :func:`run_by_class`). On the reference
grid (2026-12-02, 2-core CPU) each group of class 32 holds widths 4, 8, 16 and 32 of one seed and
cluster count: its step took 0.71 ms instead of 1.06 ms on one core, the 30-step chunk of all
144 cells 76.5 instead of 85.2 ms a step (in one process, eight interleaved rounds), with
bit-identical results.

Slicing is exact for encoders whose padded units have exactly zero weights, activations,
gradients and optimiser moments (:class:`~clj.encoders.mlp.MaskedMLP`): the first ``w`` units of a
state padded to ``W`` are the state padded to ``w``. A cell's class depends only on its own width
and the program's classes, so its result never depends on the cells that share its program or
its group (beyond float rounding between padded sizes, as for any padding).

On the reference grid (2026-12-02, 2-core CPU, 300 steps, groups of 4 cells) one program with
classes 32, 64 and 256 trained all 144 cells in 25.9-26.2 s against 29.7 s for classes 64 and
256; its step chunk compiled in 4.3-4.6 s, against 3.4 s with two classes and 4.9 s for the two
programs of widths ≤ 64 and 256 it replaces. A fourth class (16) trained no faster and compiled
1.5 s longer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from clj.cell import Cell

__all__ = ["CellLayout", "class_index", "class_layout", "map_by_class", "run_by_class"]


def class_index(widths: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Index of the narrowest class at least as wide as each width (``widths`` any shape)."""
    widths = np.asarray(widths)
    index = np.searchsorted(np.asarray(classes), widths, side="left")
    if np.any(index >= len(classes)):
        wide = widths[index >= len(classes)].max()
        raise ValueError(f"width {wide} is wider than the widest class {max(classes)}")
    return index


@dataclasses.dataclass(frozen=True)
class CellLayout:
    """Where a program's cells sit in its chunks.

    Attributes:
      index: ``[chunks, chunk_cells]`` position of each slot's cell in the program's cells
        (padding slots repeat a real cell).
      real: ``[chunks, chunk_cells]`` whether a slot is the one real occurrence of its cell.
      shared: per width class, whether every group of that class holds cells of one data
        stream (so it may draw each batch once); empty without classes.
    """

    index: np.ndarray
    real: np.ndarray
    shared: tuple[bool, ...] = ()

    @property
    def chunks(self) -> int:
        return self.index.shape[0]

    @property
    def chunk_cells(self) -> int:
        return self.index.shape[1]


def class_layout(
    widths: Sequence[int],
    classes: Sequence[int],
    devices: int,
    at_once: int,
    max_chunk_cells: int,
    streams: Sequence[int] | None = None,
) -> CellLayout:
    """Arranges cells so that every group of ``at_once`` consecutive cells of a device shares a
    class and the devices of a chunk get equal work.

    Each class's cells (in order) are cut into groups of ``at_once``, the last one padded with
    copies of its last cell. Groups are sorted from the widest class down and dealt to the
    devices of each chunk back and forth (0, 1, …, D−1, D−1, …, 0, …), so every device gets the
    same mix; a chunk short of groups is filled with copies of the last (narrowest) group.

    Given each cell's data stream, a class whose every stream has a multiple of ``at_once``
    cells (cells of widths 4, 8, 16 and 32 of one seed and cluster count, say) is cut stream by
    stream instead, so that each of its groups draws one batch a step for all its cells
    (:attr:`CellLayout.shared`). It takes as many groups either way.

    Args:
      widths: each cell's width, in the program's order.
      classes: the program's class widths, increasing.
      devices: devices of the mesh (each chunk's cells are split evenly over them).
      at_once: cells a device trains at once (the group size).
      max_chunk_cells: most cells a chunk may hold (from the memory estimate).
      streams: each cell's data stream id (:func:`~clj.cell.stream_ids`), or ``None``.
    """
    kind = class_index(np.asarray(widths), classes)
    groups: list[tuple[int, list[int], list[bool]]] = []
    shared = [False] * len(classes)
    for k in range(len(classes) - 1, -1, -1):
        members = np.flatnonzero(kind == k).tolist()
        if streams is not None and at_once > 1 and members:
            ids = np.asarray(streams)[members]
            if np.all(np.unique(ids, return_counts=True)[1] % at_once == 0):
                shared[k] = True
                members = [members[i] for i in np.argsort(ids, kind="stable")]
        for start in range(0, len(members), at_once):
            cells = members[start : start + at_once]
            real = [True] * len(cells) + [False] * (at_once - len(cells))
            groups.append((k, cells + [cells[-1]] * (at_once - len(cells)), real))
    per_device = max(1, max_chunk_cells // (devices * at_once))
    groups_per_device = math.ceil(len(groups) / devices)
    chunks = math.ceil(groups_per_device / per_device)
    per_device = math.ceil(groups_per_device / chunks)
    filler = (groups[-1][0], groups[-1][1], [False] * at_once)
    slots = chunks * devices * per_device
    groups += [filler] * (slots - len(groups))

    index = np.zeros((chunks, devices, per_device, at_once), np.int64)
    real = np.zeros((chunks, devices, per_device, at_once), bool)
    for n, (_, cells, is_real) in enumerate(groups):
        chunk, j = divmod(n, devices * per_device)
        row, col = divmod(j, devices)
        device = col if row % 2 == 0 else devices - 1 - col
        index[chunk, device, row] = cells
        real[chunk, device, row] = is_real
    return CellLayout(index.reshape(chunks, -1), real.reshape(chunks, -1), tuple(shared))


def _resize(tree: Any, like: Any) -> Any:
    """Each leaf of ``tree`` cut down to, or zero-padded up to, the shape of ``like``'s leaf
    (keeping its leading entries)."""

    def one(a: jax.Array, target: Any) -> jax.Array:
        if a.shape == target.shape:
            return a
        a = jax.lax.slice(a, (0,) * a.ndim, tuple(map(min, a.shape, target.shape)))
        return jnp.pad(a, [(0, t - n) for n, t in zip(a.shape, target.shape, strict=True)])

    return jax.tree.map(one, tree, like)


def map_by_class(
    fns: Sequence[Callable[..., Any]],
    states: Sequence[Any],
    classes: Sequence[int],
    at_once: int,
    grouped: Sequence[bool] | None = None,
) -> Callable[..., Any]:
    """One device's cells processed group by group, each group by the function of its class.

    A group's class is the narrowest of ``classes`` at least as wide as its widest cell; its
    cells' states are cut down to that class's shape first.

    Args:
      fns: per class, ``fn(state, cell, *rest) -> out`` of one cell, its state shaped as that
        class's; every ``fn`` returns the same structure and shapes.
      states: per class, the abstract state (``jax.ShapeDtypeStruct`` leaves) of one such cell.
      classes: the class widths, increasing.
      at_once: the group size; the device's cell count must be a multiple of it.
      grouped: per class, whether its ``fn`` takes the whole group (a leading ``[at_once]``
        axis on every argument and output) rather than one cell; default none.

    Returns:
      ``fn(state, cells, *rest)`` over a leading ``[C]`` cell axis of every argument (states
      padded to at least the widest class) and of every output.
    """
    grouped = grouped or [False] * len(classes)

    def branch(k: int) -> Callable[..., Any]:
        def one(state: Any, cell: Cell, *rest: Any) -> Any:
            return fns[k](_resize(state, states[k]), cell, *rest)

        def group(state: Any, cells: Cell, *rest: Any) -> Any:
            return fns[k](jax.vmap(lambda s: _resize(s, states[k]))(state), cells, *rest)

        return group if grouped[k] else jax.vmap(one)

    branches = [branch(k) for k in range(len(classes))]
    bounds = jnp.asarray(classes, jnp.int32)

    def fn(state: Any, cells: Cell, *rest: Any) -> Any:
        count = len(cells.width)
        split = lambda a: a.reshape(count // at_once, at_once, *a.shape[1:])
        merge = lambda a: a.reshape(count, *a.shape[2:])

        def group(_: None, args: tuple) -> tuple[None, Any]:
            # The narrowest class as wide as the group's widest cell (an unbatched index, so
            # only that branch runs).
            k = jnp.searchsorted(bounds, jnp.max(args[1].width), side="left")
            return None, jax.lax.switch(k, branches, *args)

        _, out = jax.lax.scan(group, None, jax.tree.map(split, (state, cells, *rest)))
        return jax.tree.map(merge, out)

    return fn


def run_by_class(
    runs: Sequence[Callable[[Any, Cell], tuple[Any, jax.Array]]],
    states: Sequence[Any],
    classes: Sequence[int],
    at_once: int,
    grouped: Sequence[bool] | None = None,
) -> Callable[[Any, Cell], tuple[Any, jax.Array]]:
    """One device's cells trained group by group, each group at its class's width
    (:func:`map_by_class`), its state padded back to the widest class's.

    Args:
      runs: per class, ``run(state, cell) -> (state, curve)`` of one cell padded to that class
        (of a whole group, for a ``grouped`` class: a trainer's ``run_shared``).
      states: per class, the abstract state (``jax.ShapeDtypeStruct`` leaves) of one such cell;
        the last class is the one the program's states are padded to.
      classes: the class widths, increasing.
      at_once: the group size; the device's cell count must be a multiple of it.
      grouped: per class, whether its ``run`` trains a whole group; default none.

    Returns:
      ``fn(state, cells)`` over a leading ``[C]`` cell axis of padded states and cells.
    """
    grouped = grouped or [False] * len(classes)

    def train(k: int) -> Callable[[Any, Cell], tuple[Any, jax.Array]]:
        pad = lambda state: _resize(state, states[-1])

        def run(state: Any, cell: Cell) -> tuple[Any, jax.Array]:
            state, curve = runs[k](state, cell)
            return (jax.vmap(pad) if grouped[k] else pad)(state), curve

        return run

    return map_by_class([train(k) for k in range(len(classes))], states, classes, at_once, grouped)
