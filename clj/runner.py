"""Running one program: chunks of cells, sharded over devices, stepped in checkpointed chunks.

A program's cells are trained ``chunk_cells`` at a time (all chunks the same size, the last
padded with copies of its last cell whose results are dropped), so one compiled program serves
every chunk. Each chunk's cell axis is sharded over the mesh. Training advances in step chunks
(for the progress bar and checkpoints); since step ``t`` draws its batch from its own key, the
chunking never changes a result.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from clj.cell import stack_cells
from clj.checkpoint import ChunkCheckpoints
from clj.distributed import cell_mesh, gather, per_device, shard_cells
from clj.evaluate import make_evaluate
from clj.memory import max_cells_per_chunk
from clj.plan import Program
from clj.train import make_train

__all__ = ["ProgramResult", "RunOptions", "run_program"]

PROGRESS_UPDATES = 25
"""Roughly how many times a chunk of cells reports progress."""


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
    """

    mesh: Mesh | None = None
    max_cells_per_chunk: int | None = None
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int | None = None
    keep_states: bool = False


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


def chunk_plan(program: Program, options: RunOptions) -> tuple[int, int]:
    """``(cells per chunk, number of chunks)`` for ``program``."""
    mesh = options.mesh or cell_mesh()
    devices = mesh.size
    limit = options.max_cells_per_chunk or max_cells_per_chunk(program.spec, devices)
    if limit % devices:
        raise ValueError(
            f"max_cells_per_chunk={limit} is not a multiple of the {devices} devices of the mesh"
        )
    cells = len(program.cells)
    chunks = math.ceil(cells / limit)
    per_chunk = math.ceil(math.ceil(cells / chunks) / devices) * devices
    return per_chunk, chunks


def _run_once_options() -> dict[str, Any]:
    """Compiler options for initialisation, which runs once per chunk of cells.

    On the CPU, LLVM's optimisations take most of its compile time and buy nothing for code that
    runs once, so they are skipped there (evaluation and training keep full optimisation).
    """
    return {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else {}


def _step_chunk(spec: Any, checkpoint_every: int | None) -> int:
    windows = max(1, spec.curve_length // PROGRESS_UPDATES)
    chunk = windows * spec.log_every
    if checkpoint_every:
        chunk = math.gcd(chunk, checkpoint_every)
    return chunk


def run_program(
    program: Program,
    number: int = 0,
    options: RunOptions | None = None,
    on_steps: Callable[[int], None] | None = None,
) -> ProgramResult:
    """Compiles and runs one program over all its cells.

    Args:
      program: the program.
      number: its number in the sweep (names its checkpoints).
      options: devices, chunking and checkpoints.
      on_steps: called with the number of steps just completed, after each step chunk.
    """
    options = options or RunOptions()
    mesh = options.mesh or cell_mesh()
    spec = program.spec
    trainer = make_train(spec)
    evaluate = make_evaluate(trainer)
    per_chunk, chunks = chunk_plan(program, options)
    step_chunk = _step_chunk(spec, options.checkpoint_every)

    init = jax.jit(per_device(jax.vmap(trainer.init), mesh))
    run = jax.jit(
        lambda state, cells, num_steps: per_device(
            jax.vmap(lambda s, c: trainer.run(s, c, num_steps)), mesh
        )(state, cells),
        static_argnums=2,
        donate_argnums=0,
    )
    evaluate_all = jax.jit(per_device(jax.vmap(evaluate), mesh))
    compiled: dict[str, Any] = {}
    timings = {"compile_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    metrics_parts, curve_parts, state_parts = [], [], []

    for chunk in range(chunks):
        index = np.arange(chunk * per_chunk, (chunk + 1) * per_chunk)
        real = int(np.sum(index < len(program.cells)))
        index = np.minimum(index, len(program.cells) - 1)
        store = (
            ChunkCheckpoints(options.checkpoint_dir, number, chunk)
            if options.checkpoint_dir is not None
            else None
        )
        saved = store.load_result() if store is not None and not options.keep_states else None
        if saved is not None:
            curve_parts.append(saved.pop("curves")[:real])
            metrics_parts.append({k: v[:real] for k, v in saved.items()})
            if on_steps is not None:
                on_steps(spec.steps)
            continue

        cells = shard_cells(stack_cells([program.cells[i] for i in index]), mesh)
        t0 = time.perf_counter()
        if not compiled:
            compiled["init"] = init.lower(cells).compile(_run_once_options())
        state = compiled["init"](cells)
        curves = shard_cells(np.full((per_chunk, spec.curve_length), np.nan, np.float32), mesh)
        if not compiled.get("eval"):
            compiled["eval"] = evaluate_all.lower(state, cells, curves).compile()
        done = 0
        if store is not None and (step := store.latest_step()) is not None:
            restored = store.restore(step, {"state": state, "curves": curves})
            state, curves, done = restored["state"], restored["curves"], step
            if on_steps is not None:
                on_steps(done)
        for n in {min(step_chunk, spec.steps - done), spec.steps % step_chunk} - {0}:
            if n not in compiled:
                compiled[n] = run.lower(state, cells, n).compile()
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

        t2 = time.perf_counter()
        result = gather(compiled["eval"](state, cells, curves))
        host_curves = gather(curves)
        timings["eval_s"] += time.perf_counter() - t2
        if store is not None:
            store.save_result({**result, "curves": host_curves})
        metrics_parts.append({k: v[:real] for k, v in result.items()})
        curve_parts.append(host_curves[:real])
        if options.keep_states:
            kept = gather(state._replace(opt_state=None))
            state_parts.append(jax.tree.map(lambda a, real=real: a[:real], kept))

    return ProgramResult(
        metrics={k: np.concatenate([p[k] for p in metrics_parts]) for k in metrics_parts[0]},
        curves=np.concatenate(curve_parts),
        timings=timings,
        chunk_cells=per_chunk,
        chunks=chunks,
        states=jax.tree.map(lambda *a: np.concatenate(a), *state_parts) if state_parts else None,
    )
