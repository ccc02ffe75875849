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

Where every stream holds the same numbers of cells of each class (any full grid of widths over
seeds and cluster counts), the layout goes further: each device's cells are dealt in *bundles*
of ``at_once`` streams (:attr:`CellLayout.bundle`), and :func:`run_by_stream` trains a bundle
step by step, drawing one batch per stream and training every class's cells of that stream on
it, each at its class's width. The draws are traced and compiled once instead of once per
class, and the wider classes draw nothing. On the reference grid (2026-12-02, 2-core CPU) the
step chunk ran at a median 65.7 ms a step instead of 71.0 ms against groups of one class (20
interleaved rounds in one process), and compiled in 5.4-5.8 s instead of 5.6-7.2 s beside the
other programs (three alternated cold sweeps). Every trained parameter is bit for bit the
same; a step's loss, summed over more cells at once, may round differently (by at most 1.9e-6
over 600 steps of the default sweep's cells in bundles of four streams, though that sweep keeps
its groups: its nine streams would pad a third bundle).

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
from clj.train import scan_windows

__all__ = [
    "CellLayout",
    "class_index",
    "class_layout",
    "map_by_class",
    "run_by_class",
    "run_by_stream",
    "stream_composition",
]


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
      bundle: per width class, the cells of that class each data stream holds, when the
        device's cells are *bundles* of ``streams`` data streams (each bundle's cells class by
        class, stream by stream, :func:`run_by_stream`); empty otherwise.
      streams: the data streams of a bundle (0 without bundles).
    """

    index: np.ndarray
    real: np.ndarray
    shared: tuple[bool, ...] = ()
    bundle: tuple[int, ...] = ()
    streams: int = 0

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
    (:attr:`CellLayout.shared`). It takes as many groups either way. And when every stream
    holds the same number of cells of each class (a full grid of widths over seeds and cluster
    counts, say; :func:`stream_composition`), the cells are dealt in *bundles* of ``at_once``
    whole streams instead (:attr:`CellLayout.bundle`), each of which draws one batch a step per
    stream for all its classes, unless the bundles pad more: each slot counts its class's width,
    and the bundles may count no more than the groups.

    Args:
      widths: each cell's width, in the program's order.
      classes: the program's class widths, increasing.
      devices: devices of the mesh (each chunk's cells are split evenly over them).
      at_once: cells a device trains at once (the group size).
      max_chunk_cells: most cells a chunk may hold (from the memory estimate).
      streams: each cell's data stream id (:func:`~clj.cell.stream_ids`), or ``None``.
    """
    kind = class_index(np.asarray(widths), classes)
    layout = _group_layout(kind, len(classes), devices, at_once, max_chunk_cells, streams)
    if streams is None:
        return layout
    bundles = _bundle_layout(
        kind, np.asarray(streams), len(classes), devices, at_once, max_chunk_cells
    )
    cost = lambda layout: int(np.asarray(classes)[kind[layout.index]].sum())
    return bundles if bundles is not None and cost(bundles) <= cost(layout) else layout


def _group_layout(
    kind: np.ndarray,
    num_classes: int,
    devices: int,
    at_once: int,
    max_chunk_cells: int,
    streams: Sequence[int] | None,
) -> CellLayout:
    """:func:`class_layout` in groups of ``at_once`` cells of one class."""
    groups: list[tuple[int, list[int], list[bool]]] = []
    shared = [False] * num_classes
    for k in range(num_classes - 1, -1, -1):
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


def stream_composition(
    kind: np.ndarray, streams: np.ndarray, num_classes: int
) -> tuple[int, ...] | None:
    """Cells of each class that every data stream holds, or ``None`` if the streams differ.

    Args:
      kind: ``[C]`` each cell's class index.
      streams: ``[C]`` each cell's stream id (``0 .. S − 1``, :func:`~clj.cell.stream_ids`).
      num_classes: the number of classes.
    """
    table = np.zeros((int(streams.max()) + 1, num_classes), np.int64)
    np.add.at(table, (streams, kind), 1)
    return tuple(int(n) for n in table[0]) if np.all(table == table[0]) else None


def _bundle_layout(
    kind: np.ndarray,
    streams: np.ndarray,
    num_classes: int,
    devices: int,
    per_bundle: int,
    max_chunk_cells: int,
) -> CellLayout | None:
    """:func:`class_layout` in bundles of ``per_bundle`` streams, or ``None`` where it does not
    apply (streams of different compositions, or a bundle larger than a device's share of a
    chunk). The last bundle is padded with copies of its last stream, and a chunk short of
    bundles with copies of the last bundle."""
    counts = stream_composition(kind, streams, num_classes)
    size = per_bundle * sum(counts or ())
    if counts is None or size > max_chunk_cells // devices:
        return None
    members = [
        [np.flatnonzero((streams == s) & (kind == k)).tolist() for k in range(num_classes)]
        for s in range(int(streams.max()) + 1)
    ]
    bundles: list[tuple[list[int], list[bool]]] = []
    for start in range(0, len(members), per_bundle):
        ids = list(range(start, min(start + per_bundle, len(members))))
        real = [True] * len(ids) + [False] * (per_bundle - len(ids))
        ids += [ids[-1]] * (per_bundle - len(ids))
        order = [(k, s, r) for k in range(num_classes) for s, r in zip(ids, real, strict=True)]
        bundles.append(
            (
                [i for k, s, _ in order for i in members[s][k]],
                [r for k, s, r in order for _ in members[s][k]],
            )
        )
    per_device = max_chunk_cells // (devices * size)
    bundles_per_device = math.ceil(len(bundles) / devices)
    chunks = math.ceil(bundles_per_device / per_device)
    per_device = math.ceil(bundles_per_device / chunks)
    filler = (bundles[-1][0], [False] * size)
    bundles += [filler] * (chunks * devices * per_device - len(bundles))
    index = np.asarray([cells for cells, _ in bundles]).reshape(chunks, per_device, devices, size)
    real = np.asarray([r for _, r in bundles]).reshape(chunks, per_device, devices, size)
    # Bundle n goes to device n % devices of its chunk: [chunk, device, bundle, cell].
    index, real = index.transpose(0, 2, 1, 3), real.transpose(0, 2, 1, 3)
    return CellLayout(
        index.reshape(chunks, -1), real.reshape(chunks, -1), bundle=counts, streams=per_bundle
    )


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


def run_by_stream(
    trainers: Sequence[Any],
    states: Sequence[Any],
    bundle: Sequence[int],
    streams: int,
    num_steps: int,
) -> Callable[[Any, Cell], tuple[Any, jax.Array]]:
    """One device's cells trained bundle by bundle: each step draws one batch per data stream
    of the bundle and trains every class's cells of that stream on it, each class at its width.

    A bundle holds ``streams`` data streams and, for each class ``k``, ``bundle[k]`` cells of each
    stream, class by class and stream by stream (:attr:`CellLayout.bundle`). Every product is
    the one the cell's own ``run`` computes, so each trained state equals, bit for bit, the
    cell's trained alone at its class; a step's loss, summed over more cells at once, may round
    differently.

    Args:
      trainers: per class, a :class:`~clj.train.Trainer` (with ``draw`` and ``update``) of
        the program's spec at that class's width.
      states: per class, the abstract state (``jax.ShapeDtypeStruct`` leaves) of one cell of
        that class; the last class is the one the program's states are padded to.
      bundle: per class, the cells of that class each stream holds.
      streams: the data streams of a bundle; the device's cell count must be a multiple of
        ``streams * sum(bundle)``.
      num_steps: the steps to take (a multiple of the spec's ``log_every``).

    Returns:
      ``fn(state, cells) -> (state, curves)`` over a leading ``[C]`` cell axis of padded states
      and cells; ``curves`` is ``[C, num_steps // log_every]``.
    """
    size = streams * sum(bundle)
    ends = np.cumsum([0, *(streams * n for n in bundle)]).tolist()
    first = next(n for n in bundle if n)  # every stream's first cell, in the first class held
    held = [k for k, n in enumerate(bundle) if n]

    def step(states: list[Any], cells: list[Cell]) -> tuple[list[Any], list[jax.Array]]:
        # The draws read only a state's step, world and pool, so the parameters sliced here
        # are never computed.
        one_each = jax.tree.map(lambda a: a[::first], (states[0], cells[0]))
        pairs = jax.vmap(trainers[held[0]].draw)(*one_each)  # [streams, 2, batch, dim]
        out, losses = [], []
        for j, k in enumerate(held):
            own = jnp.repeat(pairs, bundle[k], axis=0) if bundle[k] > 1 else pairs
            state, loss = jax.vmap(trainers[k].update)(states[j], cells[j], own)
            out.append(state)
            losses.append(loss)
        return out, losses

    log_every = trainers[0].spec.log_every
    if num_steps % log_every:
        raise ValueError(f"num_steps={num_steps} is not a multiple of {log_every}")
    # A curve per class, each of its window means taken as its own run takes them (concatenated
    # first, XLA would sum them in another order).
    run = scan_windows(step, log_every)

    def one_bundle(state: Any, cells: Cell) -> tuple[Any, jax.Array]:
        parts = [
            jax.tree.map(lambda a, k=k: a[ends[k] : ends[k + 1]], (state, cells)) for k in held
        ]
        class_states = [
            jax.vmap(lambda s, k=k: _resize(s, states[k]))(part[0])
            for k, part in zip(held, parts, strict=True)
        ]
        class_states, curves = run(class_states, [part[1] for part in parts], num_steps)
        padded = [jax.vmap(lambda s: _resize(s, states[-1]))(s) for s in class_states]
        return jax.tree.map(lambda *a: jnp.concatenate(a), *padded), jnp.concatenate(curves, 1).T

    def fn(state: Any, cells: Cell) -> tuple[Any, jax.Array]:
        count = len(cells.width)
        split = lambda a: a.reshape(count // size, size, *a.shape[1:])
        merge = lambda a: a.reshape(count, *a.shape[2:])
        _, out = jax.lax.scan(
            lambda _, args: (None, one_bundle(*args)), None, jax.tree.map(split, (state, cells))
        )
        return jax.tree.map(merge, out)

    return fn
