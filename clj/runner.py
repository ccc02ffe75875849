"""Running one program: chunks of cells, sharded over devices, stepped in checkpointed chunks.

A program's cells are trained ``chunk_cells`` at a time (all chunks the same size, the last
padded with copies of its last cell whose results are dropped), so one compiled program serves
every chunk. Each chunk's cell axis is sharded over the mesh. A program with width classes
(:mod:`clj.width_classes`) places its cells by :func:`~clj.width_classes.class_layout` instead,
so that each device trains groups of one class. Training advances in step chunks
(for the progress bar and checkpoints); since step ``t`` draws its batch from its own key, the
chunking never changes a result.

Evaluation runs in three compiled stages (:mod:`clj.evaluate`): a :class:`HeldOutSampler` draws
the held-out data, the program's own features program encodes it, and a :class:`Scorer` computes
the metrics. The first and last are :class:`SharedStage` s, compiled once for every program with
the same :func:`~clj.evaluate.heldout_key` or :func:`~clj.evaluate.score_key`, so a grid split
into width buckets compiles them once.

Before its first chunk trains, a program lowers all of these (initialisation, step chunks,
features, and the shared stages not yet started) and hands each to
:func:`~clj.background_compile.compile_in_background` as soon as it is lowered, so that JAX traces
the next while XLA compiles the last; training waits until every compile is done. On the
reference grid (2026-12-01, 30-step sweeps, seven interleaved pairs, 2-core machine) this made a
whole sweep 1.6 s shorter on average (from +1.3 to -4.5 s a pair; this host's noise is about
±2 s), though each compile ran slower beside the tracing.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from clj.background_compile import COMPILE_THREADS, compile_in_background, wait_for_compiles
from clj.cell import stack_cells, stream_ids
from clj.checkpoint import ChunkCheckpoints
from clj.distributed import (
    cell_mesh,
    cell_sharding,
    gather,
    per_device,
    place_cells,
    shard_cells,
    to_host,
)
from clj.evaluate import (
    Features,
    HeldOut,
    features_shapes,
    heldout_key,
    make_features,
    make_heldout,
    make_score,
    score_key,
)
from clj.memory import max_cells_per_chunk
from clj.plan import Program
from clj.train import make_train
from clj.width_classes import (
    CellLayout,
    class_layout,
    map_by_class,
    run_by_class,
    run_by_stream,
)

__all__ = [
    "CPU_CELLS_AT_ONCE",
    "CPU_SCORE_CELLS_AT_ONCE",
    "HeldOutSampler",
    "ProgramResult",
    "RunOptions",
    "Scorer",
    "SharedStage",
    "cell_layout",
    "chunk_plan",
    "feature_classes",
    "over_cells",
    "run_program",
    "shared_batches",
]

CPU_CELLS_AT_ONCE = 4
"""Cells a CPU device trains vectorised at once. On the 2-core reference machine (2026-12-01)
groups of 2-8 cells, one group after another, trained the reference grid's widths-≤64 program
in 36-47 ms a step against 63-76 ms for one ``vmap`` over its 60 cells a device, and the width-256
program in 57-65 ms against 67-72 ms: a group's activations stay in cache."""

CPU_SCORE_CELLS_AT_ONCE = 1
"""Cells a CPU device scores (:class:`Scorer`) vectorised at once. On the 2-core reference
machine (2026-12-01, 2 devices, batches of 24 cells of the reference grid) one cell at a time
(``jax.lax.map``) scored a batch in 0.23 s against 0.38-0.45 s for one ``vmap``: a cell's
``[1024, 1024]`` distances stay in cache, and each cell's k-means stops at its own fixed point
instead of the slowest cell's. It compiled in 4.7-5.1 s against 4.1-4.6 s. (The held-out
sampling and the features programs run in 0.04 s a batch either way and compile faster
vmapped, so they stay vmapped.)"""


def over_cells(fn: Callable[..., Any], at_once: int | None) -> Callable[..., Any]:
    """``fn`` of one cell, over a leading cell axis of every argument and result: one
    ``jax.vmap`` (``at_once`` None, or at least the number of cells), else ``jax.lax.map`` over
    groups of ``at_once`` cells, one group after another."""

    def mapped(*args: Any) -> Any:
        cells = len(jax.tree.leaves(args)[0])
        if at_once is None or at_once >= cells:
            return jax.vmap(fn)(*args)
        return jax.lax.map(lambda a: fn(*a), args, batch_size=at_once)

    return mapped


PROGRESS_UPDATES = 10
"""At least how many times a chunk of cells reports progress (it trains in step chunks of at most
``1 / PROGRESS_UPDATES`` of its steps). Each step chunk costs a dispatch, a wait for the slowest
device and, with width classes, a cut and a pad of every cell's state: on the reference grid
(2026-12-02, 300 steps) 30-step chunks trained in 25.1-26.6 s against 28.3-29.0 s for 10-step
chunks (two interleaved pairs)."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run programs (none of it changes a result).

    Attributes:
      mesh: devices to shard cells over (default: all devices of all processes).
      max_cells_per_chunk: cells trained at once (default: from a memory estimate); a multiple of
        the mesh size.
      checkpoint_dir: where finished chunks and training checkpoints go (default: none).
      checkpoint_every: steps between training checkpoints (a multiple of ``log_every``).
      keep_states: also return each cell's final state (parameters, world and pool, without the
        optimiser state) on the host, for analyses beyond :data:`clj.evaluate.METRICS`.
      cells_at_once: how many of its cells each device trains vectorised at once, the groups
        one after another (``jax.lax.map`` with that ``batch_size``); default
        :data:`CPU_CELLS_AT_ONCE` on a CPU, every cell (one ``jax.vmap``) elsewhere. Changes
        results only by float rounding.
    """

    mesh: Mesh | None = None
    max_cells_per_chunk: int | None = None
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int | None = None
    keep_states: bool = False
    cells_at_once: int | None = None


@dataclasses.dataclass
class ProgramResult:
    """What one program produced.

    Attributes:
      metrics: ``{metric: [C] array}`` in the program's cell order.
      curves: ``[C, steps // log_every]`` mean training loss per window.
      timings: seconds spent compiling, training and evaluating (this process, this run).
      chunk_cells: cells per chunk; chunks: number of chunks.
      states: with ``RunOptions.keep_states``, the final :class:`~clj.train.TrainState` of every
        cell as host arrays with a leading ``[C]`` axis (``opt_state`` dropped); else ``None``.
    """

    metrics: dict[str, np.ndarray]
    curves: np.ndarray
    timings: dict[str, float]
    chunk_cells: int
    chunks: int
    states: Any = None


class SharedStage:
    """A per-cell evaluation stage compiled once and shared by the programs of a sweep whose
    ``key(spec)`` is the same (e.g. every width bucket of a grid).

    Cells are processed ``batch`` at a time (the last batch padded with copies of its last cell),
    so one compiled program serves every batch of every program with that key.

    Args:
      build: ``spec -> fn``, the stage for one cell (mapped over cells and sharded here).
      key: ``spec -> tuple``, what ``build(spec)``'s compiled program depends on.
      mesh: devices to shard the cells of a batch over.
      batch_cells: cells per batch for each key (a multiple of the mesh size); a key not given
        uses the cell count of the first inputs it sees, rounded up to the mesh.
      cpu_at_once: on a CPU, each device processes its cells this many at a time
        (:func:`over_cells`); default: one ``vmap`` over them all, as on accelerators.
    """

    def __init__(
        self,
        build: Callable[[Any], Callable[..., Any]],
        key: Callable[[Any], tuple],
        mesh: Mesh,
        batch_cells: dict[tuple, int] | None = None,
        cpu_at_once: int | None = None,
    ):
        self.build = build
        self.at_once = cpu_at_once if jax.default_backend() == "cpu" else None
        self.key = key
        self.mesh = mesh
        self.batch_cells = dict(batch_cells or {})
        self._compiled: dict[tuple, Any] = {}

    @property
    def compiled_programs(self) -> int:
        """How many programs have been compiled so far."""
        return len(self._compiled)

    def _batch(self, key: tuple, cells: int) -> int:
        devices = self.mesh.size
        return self.batch_cells.setdefault(key, math.ceil(cells / devices) * devices)

    def prepare(self, spec: Any, inputs: tuple) -> None:
        """Lowers ``build(spec)`` for ``inputs`` (as for :meth:`__call__`, or
        ``jax.ShapeDtypeStruct`` s of their shapes) and starts compiling it in the background
        (:func:`~clj.background_compile.compile_in_background`), unless that has been done."""
        key = self.key(spec)
        if key in self._compiled:
            return
        batch = self._batch(key, len(jax.tree.leaves(inputs)[0]))
        abstract = _abstract(inputs, self.mesh, batch)
        program = jax.jit(per_device(over_cells(self.build(spec), self.at_once), self.mesh))
        self._compiled[key] = compile_in_background(
            program.lower(*abstract), _cpu_options(EVAL_OPT_LEVEL, ONCE_FUSION_EMITTERS)
        )

    def __call__(
        self, spec: Any, inputs: tuple, timings: dict[str, float], on_device: bool = False
    ) -> Any:
        """``build(spec)`` of every cell of ``inputs``: a tuple of arguments, each a pytree of
        arrays with a leading ``[C]`` cell axis (host arrays, or global arrays sharded over the
        cells). Returns host arrays with a leading ``[C]`` axis, or with ``on_device`` global
        arrays sharded over the cells.

        When the ``C`` cells make one batch, inputs already sharded over the cells go in as they
        are and, with ``on_device``, the outputs come back as they are: no copy through the host.
        Compile seconds (and waiting for a compile :meth:`prepare` started) go to
        ``timings["compile_s"]``, the rest to ``timings["eval_s"]``.
        """
        key = self.key(spec)
        cells = len(jax.tree.leaves(inputs)[0])
        batch = self._batch(key, cells)
        t0 = time.perf_counter()
        self.prepare(spec, inputs)
        compiled = self._compiled[key].result()
        timings["compile_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        if cells == batch:
            out = compiled(*place_cells(inputs, self.mesh))
            out = out if on_device else gather(out)
        else:
            host = to_host(inputs)
            parts = []
            for start in range(0, cells, batch):
                index = np.minimum(np.arange(start, start + batch), cells - 1)
                placed = shard_cells(jax.tree.map(lambda a, i=index: a[i], host), self.mesh)
                real = min(batch, cells - start)
                part = gather(compiled(*placed))
                parts.append(jax.tree.map(lambda a, r=real: a[:r], part))
            out = jax.tree.map(lambda *a: np.concatenate(a), *parts)
            out = shard_cells(out, self.mesh) if on_device else out
        if on_device:
            jax.block_until_ready(out)
        timings["eval_s"] += time.perf_counter() - t0
        return out


def _abstract(tree: Any, mesh: Mesh, cells: int | None = None) -> Any:
    """``jax.ShapeDtypeStruct`` s of ``tree``'s leaves (arrays or shapes), sharded over cells,
    with the leading cell axis set to ``cells`` when given."""
    sharding = cell_sharding(mesh)

    def leaf(a: Any) -> jax.ShapeDtypeStruct:
        shape = tuple(a.shape) if cells is None else (cells, *a.shape[1:])
        dtype = jax.dtypes.canonicalize_dtype(a.dtype)
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

    return jax.tree.map(leaf, tree)


class Scorer(SharedStage):
    """The metrics (:func:`~clj.evaluate.make_score`) as a :class:`SharedStage` keyed by
    :func:`~clj.evaluate.score_key`."""

    def __init__(self, mesh: Mesh, batch_cells: dict[tuple, int] | None = None):
        super().__init__(make_score, score_key, mesh, batch_cells, CPU_SCORE_CELLS_AT_ONCE)

    def score(self, spec: Any, features: Features, timings: dict[str, float]) -> dict:
        """``{metric: [C] array}`` (host arrays) for ``features`` with a leading ``[C]`` cell axis
        (host arrays, or global arrays sharded over the cells)."""
        return self(spec, (features,), timings)


class HeldOutSampler(SharedStage):
    """The held-out data (:func:`~clj.evaluate.make_heldout`) as a :class:`SharedStage` keyed by
    :func:`~clj.evaluate.heldout_key`."""

    def __init__(self, mesh: Mesh, batch_cells: dict[tuple, int] | None = None):
        super().__init__(make_heldout, heldout_key, mesh, batch_cells)

    def sample(
        self,
        spec: Any,
        world: Any,
        cells: Any,
        timings: dict[str, float],
        on_device: bool = False,
    ) -> HeldOut:
        """The :class:`~clj.evaluate.HeldOut` data of ``world`` and ``cells`` (leading ``[C]``
        axes; host arrays, or global arrays sharded over the cells), as host arrays or, with
        ``on_device``, global arrays sharded over the cells."""
        return self(spec, (world, cells), timings, on_device)


def shared_batches(
    specs: list[Any], chunk_cells: list[int], key: Callable[[Any], tuple]
) -> dict[tuple, int]:
    """Cells per batch of a :class:`SharedStage` for programs of ``specs`` trained
    ``chunk_cells`` at a time: the smallest chunk among the programs sharing a key."""
    batches: dict[tuple, int] = {}
    for spec, cells in zip(specs, chunk_cells, strict=True):
        k = key(spec)
        batches[k] = min(batches.get(k, cells), cells)
    return batches


def _at_once(options: RunOptions, limit: int | None = None, devices: int = 1) -> int | None:
    """Cells a device trains at once: ``options.cells_at_once``, else
    :data:`CPU_CELLS_AT_ONCE` on a CPU and all of them elsewhere (``None``); no more than a
    chunk of ``limit`` cells gives each of ``devices`` devices."""
    if options.cells_at_once is not None and options.cells_at_once < 1:
        raise ValueError(f"cells_at_once={options.cells_at_once} must be at least 1")
    at_once = options.cells_at_once or (
        CPU_CELLS_AT_ONCE if jax.default_backend() == "cpu" else None
    )
    if at_once is not None and limit is not None:
        at_once = max(1, min(at_once, limit // devices))
    return at_once


def cell_layout(
    program: Program, options: RunOptions, streams: Sequence[int] | None = None
) -> CellLayout:
    """Which of ``program``'s cells each slot of each chunk trains.

    Without width classes, cells fill the chunks in order and the last chunk is padded with
    copies of the last cell. With width classes, groups of cells of one class are spread over
    the devices (:func:`~clj.width_classes.class_layout`), each group of one data stream where
    ``streams`` (each cell's stream id) allows it, or bundles of whole streams where every
    stream holds the same cells of each class.
    """
    mesh = options.mesh or cell_mesh()
    devices = mesh.size
    limit = options.max_cells_per_chunk or max_cells_per_chunk(program.spec, devices)
    if limit % devices:
        raise ValueError(
            f"max_cells_per_chunk={limit} is not a multiple of the {devices} devices of the mesh"
        )
    cells = len(program.cells)
    if program.width_classes:
        widths = [c["width"] for c in program.cells]
        at_once = _at_once(options, limit, devices) or 1
        return class_layout(widths, program.width_classes, devices, at_once, limit, streams)
    chunks = math.ceil(cells / limit)
    per_chunk = math.ceil(math.ceil(cells / chunks) / devices) * devices
    slots = np.arange(chunks * per_chunk).reshape(chunks, per_chunk)
    return CellLayout(np.minimum(slots, cells - 1), slots < cells)


def chunk_plan(program: Program, options: RunOptions) -> tuple[int, int]:
    """``(cells per chunk, number of chunks)`` for ``program``."""
    layout = cell_layout(program, options)
    return layout.chunk_cells, layout.chunks


def _cpu_options(level: int, fusion_emitters: bool = True) -> dict[str, Any]:
    """Compiler options for a CPU program: LLVM's optimisation level ``level``, the machine code
    split into :func:`codegen_modules` modules and, with ``fusion_emitters=False``, XLA's older
    loop emitters instead of its fusion emitters (each where this XLA has that choice). Nothing
    elsewhere; an option ``XLA_FLAGS`` sets itself is left to it (the user's choice wins; the test
    suite sets level 0, for the shortest compiles)."""
    if jax.default_backend() != "cpu":
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    options: dict[str, Any] = {}
    if "xla_backend_optimization_level" not in flags:
        options["xla_backend_optimization_level"] = level
    if _CODEGEN_SPLIT not in flags and _xla_accepts(_CODEGEN_SPLIT, 1):
        options[_CODEGEN_SPLIT] = codegen_modules()
    if not fusion_emitters and _FUSION_EMITTERS not in flags and _can_choose_emitters():
        options[_FUSION_EMITTERS] = False
    return options


_FUSION_EMITTERS = "xla_cpu_use_fusion_emitters"
_CODEGEN_SPLIT = "xla_cpu_parallel_codegen_split_count"


@functools.cache
def _xla_accepts(option: str, value: Any) -> bool:
    """Whether this XLA takes the compile option ``option`` (set to ``value``)."""
    try:
        jax.jit(lambda x: x + 1).lower(np.float32(0)).compile({option: value})
    except Exception:  # an XLA without the option rejects it
        return False
    return True


def _can_choose_emitters() -> bool:
    """Whether this XLA takes the ``xla_cpu_use_fusion_emitters`` compile option."""
    return _xla_accepts(_FUSION_EMITTERS, False)


def codegen_modules() -> int:
    """Modules XLA splits a CPU program's machine code into, to compile them in parallel: this
    process's cores over the :data:`~clj.background_compile.COMPILE_THREADS` programs compiled
    at once, and at least one.

    Each module costs its own LLVM set-up (a target machine, pass pipelines). While several
    programs compile at once on few cores, the cores are busy anyway and splitting only adds that
    cost. On the 2-core reference machine (2026-12-02) the reference grid's five programs, each
    sweep's compiles one after another on one core of its own, two sweeps at the same moment
    (cores swapped each round), took 7.5, 9.1, 9.4 and 8.9 CPU-seconds in one module each against
    8.0, 11.3, 11.0 and 11.0 at XLA's default split; on both cores, three rounds, 9.8, 8.8 and 9.8
    against 9.7, 10.9 and 10.9. Results are byte-identical.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has affinities
        cores = os.cpu_count() or 1
    return max(1, cores // COMPILE_THREADS)


ONCE_FUSION_EMITTERS = False
"""Whether XLA's fusion emitters compile the CPU programs that run once per chunk
(initialisation, held-out sampling, features and metrics); the training program always uses
them. On the reference grid (2026-12-02, 2-core CPU, each program compiled alone, two runs)
the older emitters compiled these four in 5.6 s and 4.8 s against 7.0 s and 6.1 s (the
initialisation 1.0 s against 1.3-1.4 s, the metrics 2.1-2.7 s against 3.0-3.6 s), and the
evaluation ran as fast (3.31 and 3.11 s against 3.24 and 3.05 s). The training program compiled
with them too trained 1.5-3.5 s slower, so it keeps the fusion emitters."""

INIT_OPT_LEVEL = 1
"""LLVM optimisation level of the CPU initialisation program, which runs once per chunk of cells.
For the reference grid as one program padded to width 256 (2026-12-02) level 1 ran it in 0.05 s
instead of 0.46-0.58 s at level 0, and compiled it in 1.3-1.4 s against 1.0-1.2 s."""

TRAIN_OPT_LEVEL = 1
"""LLVM optimisation level of the CPU training program. On the reference grid (2026-12-01, two
runs each, 2 devices) level 1 compiled the widths-≤64 program's step chunk in 2.3 s instead of
2.5-2.8 s at the default level 2 and the width-256 one in 2.3 s instead of 3.3-3.7 s, and trained
them in 14.4-15.0 s and 18.0-18.6 s against 14.2-15.7 s and 19.8-23.9 s (level 0: 60-67 s and
35 s)."""

EVAL_OPT_LEVEL = 1
"""LLVM optimisation level of the CPU evaluation programs (features and metrics), which run once
per chunk. On the reference grid (2026-12-01) level 1 compiled the metrics in 2.5 s instead of
4.1 s at the default level with the same run time (2.91 vs 2.87 s), and the features in 1.9 s
instead of 3.6 s (runs of 0.35-0.73 s either way)."""


def feature_classes(classes: Sequence[int]) -> list[int]:
    """Indices of the width classes the features program of a program with width ``classes``
    encodes at: its narrowest and its widest (a group of any other class is encoded at the
    widest).

    Each class is one more encoder to compile. On the reference grid (classes 32, 64 and 256;
    2026-12-02, 2-core CPU, each compiled alone) the features program compiled in 0.72 s and ran
    in 1.10-1.18 s with every cell at width 256; with classes 32 and 256 in 1.10 s and 0.30 s;
    with all three in 1.70 s and 0.21 s.
    """
    return sorted({0, len(classes) - 1})


def _step_chunk(spec: Any, checkpoint_every: int | None) -> int:
    """Steps per compiled step chunk: the most curve windows, dividing the curve's length (so that
    one chunk length serves the whole run), that keeps :data:`PROGRESS_UPDATES` updates."""
    most = max(1, spec.curve_length // PROGRESS_UPDATES)
    windows = max(d for d in range(1, most + 1) if spec.curve_length % d == 0)
    chunk = windows * spec.log_every
    if checkpoint_every:
        chunk = math.gcd(chunk, checkpoint_every)
    return chunk


def run_program(
    program: Program,
    number: int = 0,
    options: RunOptions | None = None,
    on_steps: Callable[[int], None] | None = None,
    scorer: Scorer | None = None,
    sampler: HeldOutSampler | None = None,
) -> ProgramResult:
    """Compiles and runs one program over all its cells.

    Args:
      program: the program.
      number: its number in the sweep (names its checkpoints).
      options: devices, chunking and checkpoints.
      on_steps: called with the number of steps just completed, after each step chunk.
      scorer: compiled metrics shared with other programs (default: this program's own).
      sampler: compiled held-out sampling shared with other programs (default: its own).
    """
    options = options or RunOptions()
    mesh = options.mesh or cell_mesh()
    spec = program.spec
    trainer = make_train(spec)
    streams = None
    if trainer.run_shared is not None and trainer.draw is not None:
        streams = stream_ids(program.cells, spec.family.cell_fields)
    layout = cell_layout(program, options, streams)
    per_chunk, chunks = layout.chunk_cells, layout.chunks
    scorer = scorer or Scorer(mesh, {score_key(spec): per_chunk})
    sampler = sampler or HeldOutSampler(mesh, {heldout_key(spec): per_chunk})
    step_chunk = _step_chunk(spec, options.checkpoint_every)

    init = jax.jit(per_device(jax.vmap(trainer.init), mesh))
    at_once = _at_once(options, per_chunk, mesh.size)
    classes = program.width_classes
    if classes:
        trainers = [make_train(dataclasses.replace(spec, max_width=w)) for w in classes]
        first = jax.tree.map(lambda a: a[0], stack_cells(list(program.cells[:1])))
        shapes = [jax.eval_shape(t.init, first) for t in trainers]

    def run_cells(state: Any, cells: Any, num_steps: int) -> Any:
        """``trainer.run`` over one device's cells, ``at_once`` of them at a time (each group
        at its width class, if the program has classes)."""
        if classes and layout.bundle:
            by_stream = run_by_stream(trainers, shapes, layout.bundle, layout.streams, num_steps)
            return by_stream(state, cells)
        if classes:
            runs = [
                functools.partial(t.run_shared if shared else t.run, num_steps=num_steps)
                for t, shared in zip(trainers, layout.shared, strict=True)
            ]
            return run_by_class(runs, shapes, classes, at_once, layout.shared)(state, cells)
        one = functools.partial(trainer.run, num_steps=num_steps)
        return over_cells(one, at_once)(state, cells)

    run = jax.jit(
        lambda state, cells, num_steps: per_device(
            functools.partial(run_cells, num_steps=num_steps), mesh
        )(state, cells),
        static_argnums=2,
        donate_argnums=0,
    )
    if classes:
        ends = feature_classes(classes)
        features = map_by_class(
            [make_features(trainers[k]) for k in ends],
            [shapes[k] for k in ends],
            [classes[k] for k in ends],
            at_once,
        )
    else:
        features = jax.vmap(make_features(trainer))
    features_all = jax.jit(per_device(features, mesh))
    step_sizes = {min(step_chunk, spec.steps), spec.steps % step_chunk} - {0}

    def start_compiles(cells: Any, host_cells: Any) -> dict[Any, Any]:
        """Lowers every program a chunk needs and starts compiling each in the background as
        soon as it is lowered, so that lowering the next overlaps compiling the last; the
        shared metrics and held-out stages too, unless another program started them.

        The metrics, whose compile is the longest after the training program's, come third
        (their input shapes follow from the spec, :func:`~clj.evaluate.features_shapes`), so
        that they do not compile alone after the others."""
        lowered = init.lower(cells)
        options = _cpu_options(INIT_OPT_LEVEL, ONCE_FUSION_EMITTERS)
        futures = {"init": compile_in_background(lowered, options)}
        state = _abstract(lowered.out_info, mesh)
        for n in step_sizes:
            futures[n] = compile_in_background(
                run.lower(state, cells, n), _cpu_options(TRAIN_OPT_LEVEL)
            )
        scored = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct((per_chunk, *a.shape), a.dtype), features_shapes(spec)
        )
        scorer.prepare(spec, (scored,))
        sampler.prepare(spec, (state.world, host_cells))
        heldout = jax.eval_shape(jax.vmap(make_heldout(spec)), state.world, host_cells)
        curves = jax.ShapeDtypeStruct((per_chunk, spec.curve_length), np.float32)
        lowered = features_all.lower(state, cells, *_abstract((curves, heldout), mesh))
        options = _cpu_options(EVAL_OPT_LEVEL, ONCE_FUSION_EMITTERS)
        futures["features"] = compile_in_background(lowered, options)
        made = [(a.shape, a.dtype) for a in jax.tree.leaves(lowered.out_info)]
        if made != [(a.shape, a.dtype) for a in jax.tree.leaves(scored)]:
            raise AssertionError(f"features {made} differ from features_shapes {scored}")
        return futures

    compiled: dict[Any, Any] = {}
    timings = {"compile_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    metrics_parts, curve_parts, state_parts = [], [], []

    for chunk in range(chunks):
        index, real = layout.index[chunk], layout.real[chunk]
        store = (
            ChunkCheckpoints(options.checkpoint_dir, number, chunk, cells=index)
            if options.checkpoint_dir is not None
            else None
        )
        saved = store.load_result() if store is not None and not options.keep_states else None
        if saved is not None:
            curve_parts.append(saved.pop("curves")[real])
            metrics_parts.append(saved)
            if on_steps is not None:
                on_steps(spec.steps)
            continue

        host_cells = stack_cells([program.cells[i] for i in index])
        cells = shard_cells(host_cells, mesh)
        t0 = time.perf_counter()
        if not compiled:
            compiled = start_compiles(cells, host_cells)
            wait_for_compiles()  # before training, which a compile running beside it would slow
            compiled = {k: future.result() for k, future in compiled.items()}
        state = compiled["init"](cells)
        curves = shard_cells(np.full((per_chunk, spec.curve_length), np.nan, np.float32), mesh)
        done = 0
        if store is not None and (step := store.latest_step()) is not None:
            restored = store.restore(step, {"state": state, "curves": curves})
            state, curves, done = restored["state"], restored["curves"], step
            if on_steps is not None:
                on_steps(done)
        # A checkpoint written under another --checkpoint-every can leave other chunk lengths.
        for n in {min(step_chunk, spec.steps - done), spec.steps % step_chunk} - {0}:
            if n not in compiled:
                compiled[n] = run.lower(state, cells, n).compile(_cpu_options(TRAIN_OPT_LEVEL))
        jax.block_until_ready(state)
        timings["compile_s"] += time.perf_counter() - t0

        t1 = time.perf_counter()
        while done < spec.steps:
            n = min(step_chunk, spec.steps - done)
            state, curve = compiled[n](state, cells)
            window = done // spec.log_every
            curves = curves.at[:, window : window + curve.shape[1]].set(curve)
            done += n
            jax.block_until_ready(curves)
            if store is not None and options.checkpoint_every and done < spec.steps:
                if done % options.checkpoint_every == 0:
                    store.save(done, {"state": state, "curves": curves})
            if on_steps is not None:
                on_steps(n)
        timings["train_s"] += time.perf_counter() - t1

        heldout = sampler.sample(spec, state.world, cells, timings, on_device=True)
        t2 = time.perf_counter()
        features = compiled["features"](state, cells, curves, heldout)
        if not real.all():  # padding slots are not scored
            features = jax.tree.map(lambda a, r=real: a[r], gather(features))
        host_curves = gather(curves)
        timings["eval_s"] += time.perf_counter() - t2
        result = scorer.score(spec, features, timings)
        if store is not None:
            store.save_result({**result, "curves": host_curves})
        metrics_parts.append(result)
        curve_parts.append(host_curves[real])
        if options.keep_states:
            kept = gather(state._replace(opt_state=None))
            state_parts.append(jax.tree.map(lambda a, real=real: a[real], kept))

    # Slots hold cells in layout order; results go back to the program's order.
    order = np.argsort(layout.index[layout.real], kind="stable")

    def in_order(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate(parts)[order]

    return ProgramResult(
        metrics={k: in_order(*[p[k] for p in metrics_parts]) for k in metrics_parts[0]},
        curves=in_order(*curve_parts),
        timings=timings,
        chunk_cells=per_chunk,
        chunks=chunks,
        states=jax.tree.map(in_order, *state_parts) if state_parts else None,
    )
