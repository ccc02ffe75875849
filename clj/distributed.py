"""Spreading a program's cells over every device of every process, with JAX's own machinery.

The cell axis is sharded over a one-dimensional :class:`jax.sharding.Mesh` named ``"cells"`` that
spans all devices (``NamedSharding(mesh, P("cells"))``). Several hosts join one run through
:func:`jax.distributed.initialize`; each process then holds the cells on its own devices, and
results are gathered to every process so that process 0 can write them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "CELL_AXIS",
    "cell_mesh",
    "cell_sharding",
    "gather",
    "initialize",
    "is_main_process",
    "joined",
    "per_device",
    "place_cells",
    "shard_cells",
    "to_host",
]

CELL_AXIS = "cells"

_joined = False


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins a multi-process run.

    With no arguments JAX detects the cluster (TPU pod slices, Slurm, Open MPI, …); otherwise all
    three say where process 0 listens (``host:port``), how many processes there are and which one
    this is. On CPU, cross-process collectives go through gloo.
    """
    # Must happen before any backend starts, so it cannot ask which backend this is; the setting
    # only concerns CPU devices.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    global _joined
    _joined = True


def joined() -> bool:
    """Whether this process joined a multi-process run through :func:`initialize`."""
    return _joined


def is_main_process() -> bool:
    """True in process 0, the one that writes results."""
    return jax.process_index() == 0


def cell_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (default: all, across processes)."""
    devices = jax.devices()
    if num_devices is not None:
        if not 1 <= num_devices <= len(devices):
            raise ValueError(
                f"devices={num_devices} must be between 1 and the {len(devices)} visible devices"
            )
        devices = devices[:num_devices]
    return Mesh(np.array(devices), (CELL_AXIS,))


def cell_sharding(mesh: Mesh) -> NamedSharding:
    """Shards the leading (cell) axis over the mesh; other axes are replicated."""
    return NamedSharding(mesh, PartitionSpec(CELL_AXIS))


def per_device(fn: Callable[..., Any], mesh: Mesh) -> Callable[..., Any]:
    """Runs ``fn`` on each device's own cells, with no communication between devices.

    Every argument and result of ``fn`` must have the cell axis first; inside, ``fn`` sees the
    cells of one device. Cells are independent, so no device ever needs another's data.
    """
    spec = PartitionSpec(CELL_AXIS)
    return jax.shard_map(fn, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)


def shard_cells(tree: Any, mesh: Mesh) -> Any:
    """Places host arrays (same values in every process) as global arrays sharded over cells.

    Every leaf's leading axis must be a multiple of the mesh size.
    """
    sharding = cell_sharding(mesh)

    def place(leaf: Any) -> jax.Array:
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def place_cells(tree: Any, mesh: Mesh) -> Any:
    """:func:`shard_cells` for leaves not already global arrays sharded over the cells of
    ``mesh``; those are passed through as they are (no copy to the host and back)."""
    sharding = cell_sharding(mesh)

    def placed(leaf: Any) -> bool:
        return isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(sharding, leaf.ndim)

    return jax.tree.map(lambda a: a if placed(a) else shard_cells(to_host(a), mesh), tree)


def to_host(tree: Any) -> Any:
    """Host numpy copies of ``tree``'s leaves: arrays spread over processes gathered
    (:func:`gather`), arrays this process holds whole (and numpy arrays) copied as they are."""

    def one(leaf: Any) -> np.ndarray:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return gather(leaf)
        return np.asarray(leaf)

    return jax.tree.map(one, tree)


def gather(tree: Any) -> Any:
    """Copies global arrays (possibly spread over processes) to host numpy in every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, jax.device_get(tree))
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
