"""Isotropic Gaussian clusters in ``R^dim`` with additive-noise augmentation."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels
from clj.random import indexed_normal

__all__ = ["GaussianMixture"]


@dataclasses.dataclass(frozen=True)
class GaussianMixture(DataFamily):
    """``clusters`` Gaussian clusters with centres drawn per seed.

    Centres are ``radius · g / √dim`` with ``g`` standard normal, so they lie near a sphere of
    radius ``radius`` and two centres are about ``radius·√2`` apart. An anchor is its centre plus
    isotropic noise of total norm about ``spread``; a view adds noise of norm about ``noise``.
    The label is the cluster (fine and coarse labels coincide).
    """

    name: ClassVar[str] = "gaussian_mixture"
    description: ClassVar[str] = (
        "Gaussian clusters in R^dim, additive Gaussian noise as augmentation"
    )
    radius: float = 1.0
    spread: float = 0.2
    noise: float = 0.2
    limit: int = 4096

    def cluster_limit(self) -> int:
        return self.limit

    def world(self, key: jax.Array, cell: Cell) -> jax.Array:
        """Centres ``[max_clusters, dim]``; centre ``c`` does not depend on ``max_clusters``."""
        return indexed_normal(key, (self.max_clusters, self.dim)) * (self.radius / self.dim**0.5)

    def anchors(self, key: jax.Array, world: jax.Array, cell: Cell, n: int) -> Anchors:
        k_label, k_noise = jax.random.split(key)
        label = uniform_labels(k_label, cell.clusters, n)
        scale = self.spread / self.dim**0.5
        x = world[label] + scale * jax.random.normal(k_noise, (n, self.dim))
        return Anchors(x, label, label)

    def augment(self, key: jax.Array, world: jax.Array, cell: Cell, x: jax.Array) -> jax.Array:
        return x + (self.noise / self.dim**0.5) * jax.random.normal(key, x.shape)
