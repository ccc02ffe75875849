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


class ChunkCheckpoints:
    """Checkpoints and final results of one chunk of cells.

    Args:
      root: the sweep's checkpoint directory.
      program: program number.
      chunk: chunk number within the program.
      keep: complete checkpoints to keep.
    """

    def __init__(self, root: str | Path, program: int, chunk: int, keep: int = 2) -> None:
        self.root = Path(root)
        self.name = f"p{program}-c{chunk}"
        self.result_path = self.root / f"{self.name}.npz"
        self._keep = keep
        self._manager: Any = None  # an orbax CheckpointManager, made on first use

    # -- finished chunks ------------------------------------------------------------------------
    def load_result(self) -> dict[str, np.ndarray] | None:
        """The chunk's saved results, or ``None`` if it has not finished."""
        if not self.result_path.exists():
            return None
        with np.load(self.result_path) as data:
            return {k: data[k] for k in data.files}

    def save_result(self, arrays: dict[str, np.ndarray]) -> None:
        """Saves the chunk's results atomically and drops its training checkpoints.

        Only process 0 writes; every process then waits, so all see the same files.
        """
        if jax.process_index() == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            partial = self.root / f"{self.name}.partial.npz"
            np.savez(partial, **arrays)
            os.replace(partial, self.result_path)
        self.close()
        if jax.process_index() == 0:
            shutil.rmtree(self.root / self.name, ignore_errors=True)
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
        return self.manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` (any pytree of arrays) as of ``step`` (asynchronously)."""
        import orbax.checkpoint as ocp

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
