"""HaoChen & Ma (2023) Example 5.7: well-separated regions, each holding close sub-clusters."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels

__all__ = ["LipschitzRegions", "RegionsWorld", "uniform_ball"]


class RegionsWorld(NamedTuple):
    """Sub-cluster centres ``[max_clusters, dim]`` and the region of each ``[max_clusters]``."""

    centres: jax.Array
    region: jax.Array


def uniform_ball(key: jax.Array, n: int, dim: int, radius: float) -> jax.Array:
    """``[n, dim]`` points uniform in the ball of ``radius`` about the origin (norms ≤ radius)."""
    k_dir, k_rad = jax.random.split(key)
    g = jax.random.normal(k_dir, (n, dim))
    norm = jnp.sqrt(jnp.maximum(jnp.sum(g * g, axis=1, keepdims=True), 1e-30))
    r = radius * jax.random.uniform(k_rad, (n, 1)) ** (1.0 / dim)
    return g / norm * jnp.minimum(r, radius)


@dataclasses.dataclass(frozen=True)
class LipschitzRegions(DataFamily):
    """``regions`` far-apart regions, each split into sub-clusters that augmentation never links.

    A cell's ``clusters`` counts the sub-clusters (the fine classes) and must be a multiple of
    ``regions``; sub-cluster ``c`` lies in region ``c mod regions`` (the coarse class), so each
    region holds ``clusters / regions`` of them. Geometry, with ``e_0 .. e_{dim-1}`` the axes
    after a random signed permutation drawn per seed (so every seed sees the same distances):

    * region ``g``'s centre is ``region_radius · e_g``: region centres are
      ``region_radius·√2`` apart;
    * sub-cluster ``c``'s centre is its region's centre plus ``sub_radius · e_{regions + c}``:
      sub-clusters of one region are ``sub_radius·√2`` apart, of two regions
      ``√(2·region_radius² + 2·sub_radius²)``;
    * an anchor is uniform in the ball of radius ``spread`` about its sub-cluster's centre, and a
      view moves it uniformly within a ball of radius ``noise``.

    So two anchors of different sub-clusters are at least ``gap = sub_radius·√2 − 2·spread``
    apart, a view never moves a point by more than ``noise``, and ``noise < gap / 2`` (checked)
    keeps the views of different sub-clusters apart: the augmentation graph's components are the
    sub-clusters. A Lipschitz-capped encoder can separate the regions but not the sub-clusters
    when ``region_radius ≫ sub_radius``. Needs ``dim ≥ regions + max_clusters``.
    """

    name: ClassVar[str] = "lipschitz_regions"
    description: ClassVar[str] = (
        "far-apart regions of close sub-clusters never linked by augmentation (fine + coarse)"
    )
    regions: int = 4
    region_radius: float = 4.0
    sub_radius: float = 0.5
    spread: float = 0.1
    noise: float = 0.1
    limit: int = 1024

    def __post_init__(self) -> None:
        if isinstance(self.regions, bool) or not isinstance(self.regions, int) or self.regions < 1:
            raise ValueError(f"regions={self.regions!r} must be a positive integer")
        for field in ("region_radius", "sub_radius", "spread", "noise"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{field}={value!r} must be a positive finite number")
        if not self.sub_radius < self.region_radius:
            raise ValueError(
                f"sub_radius={self.sub_radius} must be below region_radius={self.region_radius}"
            )
        if not self.noise < self.gap / 2:
            raise ValueError(
                f"noise={self.noise} must be below half the sub-cluster gap "
                f"sub_radius·√2 − 2·spread = {self.gap:.4g}, or augmentation links sub-clusters"
            )
        if self.regions + self.max_clusters > self.dim:
            raise ValueError(
                f"dim={self.dim} is below regions + clusters = {self.regions + self.max_clusters} "
                f"for {self.name}"
            )

    @property
    def gap(self) -> float:
        """Smallest distance between anchors of two sub-clusters: ``sub_radius·√2 − 2·spread``."""
        return self.sub_radius * math.sqrt(2.0) - 2.0 * self.spread

    def cluster_limit(self) -> int:
        return min(self.limit, self.dim - self.regions)

    def check_clusters(self, clusters: int) -> None:
        super().check_clusters(clusters)
        if clusters % self.regions:
            raise ValueError(
                f"clusters={clusters} must be a multiple of regions={self.regions} for {self.name}"
            )

    @property
    def num_coarse_classes(self) -> int:
        return self.regions

    def world(self, key: jax.Array, cell: Cell) -> RegionsWorld:
        """Centres from a signed permutation of the axes; row ``c`` ignores ``max_clusters``."""
        k_perm, k_sign = jax.random.split(key)
        axes = jax.random.permutation(k_perm, self.dim)
        signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (self.dim,)), 1.0, -1.0)
        basis = (
            jnp.zeros((self.dim, self.dim), jnp.float32).at[jnp.arange(self.dim), axes].set(signs)
        )  # row i is ±e_{axes[i]}
        c = jnp.arange(self.max_clusters)
        region = (c % self.regions).astype(jnp.int32)
        centres = self.region_radius * basis[region] + self.sub_radius * basis[self.regions + c]
        return RegionsWorld(centres, region)

    def anchors(self, key: jax.Array, world: RegionsWorld, cell: Cell, n: int) -> Anchors:
        k_label, k_ball = jax.random.split(key)
        fine = uniform_labels(k_label, cell.clusters, n)
        x = world.centres[fine] + uniform_ball(k_ball, n, self.dim, self.spread)
        return Anchors(x, fine, world.region[fine])

    def augment(self, key: jax.Array, world: RegionsWorld, cell: Cell, x: jax.Array) -> jax.Array:
        return x + uniform_ball(key, x.shape[0], self.dim, self.noise)
