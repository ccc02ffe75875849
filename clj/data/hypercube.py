"""Saunshi et al. (2022) Example 1: invariant and spurious coordinates of the hypercube."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily
from clj.random import indexed_normal

__all__ = ["Hypercube"]


@dataclasses.dataclass(frozen=True)
class Hypercube(DataFamily):
    """``x̄`` uniform on ``{±1}^dim``; the first ``s`` coordinates are invariant.

    For this family a cell's ``clusters`` sets ``s``, the number of invariant coordinates. A view
    multiplies every other coordinate by ``τ ~ U(0, 1]``, independently per view and coordinate.
    The fine label is the vertex id of ``x̄_{1:s}`` (``2^s`` classes); the coarse label is
    ``sign(w·x̄_{1:s})`` for a fixed ``w ~ N(0, I_s)`` drawn per seed (2 classes).
    """

    name: ClassVar[str] = "hypercube"
    description: ClassVar[str] = (
        "x uniform on {±1}^dim, first s=clusters coordinates invariant, others scaled by U(0,1]"
    )
    limit: int = 10

    def cluster_limit(self) -> int:
        return min(self.dim, self.limit)

    @property
    def num_fine_classes(self) -> int:
        return 2**self.max_clusters

    @property
    def num_coarse_classes(self) -> int:
        return 2

    def fine_count(self, cell: Cell) -> jax.Array:
        return 2**cell.clusters

    def world(self, key: jax.Array, cell: Cell) -> jax.Array:
        """The label direction ``w`` ``[max_clusters]`` (zero beyond ``s``)."""
        w = indexed_normal(key, (self.max_clusters,))
        return jnp.where(jnp.arange(self.max_clusters) < cell.clusters, w, 0.0)

    def anchors(self, key: jax.Array, world: jax.Array, cell: Cell, n: int) -> Anchors:
        bits = jax.random.bernoulli(key, 0.5, (n, self.dim))
        x = jnp.where(bits, 1.0, -1.0)
        invariant = jnp.arange(self.max_clusters) < cell.clusters
        powers = jnp.where(invariant, 2 ** jnp.arange(self.max_clusters), 0)
        fine = jnp.sum(bits[:, : self.max_clusters] * powers, axis=1).astype(jnp.int32)
        coarse = (x[:, : self.max_clusters] @ world > 0).astype(jnp.int32)
        return Anchors(x, fine, coarse)

    def augment(self, key: jax.Array, world: jax.Array, cell: Cell, x: jax.Array) -> jax.Array:
        tau = 1.0 - jax.random.uniform(key, x.shape)  # U(0, 1]
        invariant = jnp.arange(self.dim) < cell.clusters
        return x * jnp.where(invariant, 1.0, tau)
