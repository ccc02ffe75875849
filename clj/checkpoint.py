"""Surviving crashes: orbax checkpoints of a running chunk of cells, and saved finished chunks.

A sweep's work directory holds, for every chunk of cells of every program, either the chunk's
finished results (``p<program>-c<chunk>.npz``, written atomically) or orbax checkpoints of its
training state (``p<program>-c<chunk>/<step>``). Orbax writes each checkpoint to a temporary
name and renames it when complete, so a checkpoint cut short by a kill is never picked up: the
last complete one is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["ChunkCheckpoints"]

_CELLS = "_cells"  # the key of the chunk's cell indices in its saved results


class ChunkCheckpoints:
    """Checkpoints and final results of one chunk of cells.

    Args:
      root: the sweep's checkpoint directory.
      program: program number.
      chunk: chunk number within the program.
      keep: complete checkpoints to keep.
      cells: the chunk's cell of each slot (``[chunk_cells]`` indices into the program's cells).
        Saved beside results and checkpoints; loading those of another arrangement (another
        device count, chunk size or clj version) raises ``ValueError`` rather than give one
        cell's state or results to another. Files saved without it are not checked.
    """

    def __init__(
        self,
        root: str | Path,
        program: int,
        chunk: int,
        keep: int = 2,
        cells: np.ndarray | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = f"p{program}-c{chunk}"
        self.result_path = self.root / f"{self.name}.npz"
        self.cells_path = self.root / f"{self.name}.cells.npy"
        self.cells = None if cells is None else np.asarray(cells, np.int64)
        self._keep = keep
        self._manager: Any = None  # an orbax CheckpointManager, made on first use

    def _check_cells(self, saved: np.ndarray | None) -> None:
        if saved is None or self.cells is None or np.array_equal(saved, self.cells):
            return
        raise ValueError(
            f"the saved chunk {self.name} in {self.root} holds another arrangement of cells "
            "(another device count, chunk size or clj version); resume with the options the "
            "sweep started with, or start it afresh"
        )

    # -- finished chunks ------------------------------------------------------------------------
    def load_result(self) -> dict[str, np.ndarray] | None:
        """The chunk's saved results, or ``None`` if it has not finished."""
        if not self.result_path.exists():
            return None
        with np.load(self.result_path) as data:
            arrays = {k: data[k] for k in data.files}
        self._check_cells(arrays.pop(_CELLS, None))
        return arrays

    def save_result(self, arrays: dict[str, np.ndarray]) -> None:
        """Saves the chunk's results atomically and drops its training checkpoints.

        Only process 0 writes; every process then waits, so all see the same files.
        """
        if jax.process_index() == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            partial = self.root / f"{self.name}.partial.npz"
            cells = {} if self.cells is None else {_CELLS: self.cells}
            np.savez(partial, **arrays, **cells)
            os.replace(partial, self.result_path)
        self.close()
        if jax.process_index() == 0:
            shutil.rmtree(self.root / self.name, ignore_errors=True)
            self.cells_path.unlink(missing_ok=True)
        _sync(f"clj-result-{self.name}")

    # -- training state -------------------------------------------------------------------------
    @property
    def manager(self) -> Any:
        """The chunk's ``orbax.checkpoint.CheckpointManager`` (orbax is imported only when a sweep
        checkpoints its training state)."""
        import orbax.checkpoint as ocp

        if self._manager is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True)
            self._manager = ocp.CheckpointManager(self.root / self.name, options=options)
        return self._manager

    def latest_step(self) -> int | None:
        """Step of the last complete checkpoint, or ``None``."""
        if not (self.root / self.name).exists():
            return None
        self._check_cells(np.load(self.cells_path) if self.cells_path.exists() else None)
        return self.manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` (any pytree of arrays) as of ``step`` (asynchronously)."""
        import orbax.checkpoint as ocp

        if self.cells is not None and jax.process_index() == 0 and not self.cells_path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            partial = self.root / f"{self.name}.cells.partial.npy"
            np.save(partial, self.cells)
            os.replace(partial, self.cells_path)
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, step: int, like: Any) -> Any:
        """Restores checkpoint ``step`` with the structure, shapes and shardings of ``like``."""
        import orbax.checkpoint as ocp

        abstract = jax.tree.map(_abstract, like)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None


def _abstract(leaf: Any) -> jax.ShapeDtypeStruct:
    sharding = getattr(leaf, "sharding", None)
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
