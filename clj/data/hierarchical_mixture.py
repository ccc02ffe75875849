"""Coarse groups of fine clusters: the flagship family for cluster-recovery sweeps."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels
from clj.random import indexed_normal

__all__ = ["HierarchicalMixture"]


class HierarchicalWorld(NamedTuple):
    """Fine-cluster centres ``[max_clusters, dim]`` and their groups ``[max_clusters]``."""

    centres: jax.Array
    group: jax.Array


@dataclasses.dataclass(frozen=True)
class HierarchicalMixture(DataFamily):
    """``groups`` well-separated coarse groups, each split into close-together fine clusters.

    A cell's ``clusters`` counts the fine clusters and must be a multiple of ``groups``; fine
    cluster ``c`` belongs to group ``c mod groups``. Group centres lie near a sphere of radius
    ``group_radius``; a fine cluster's centre is its group's centre plus an offset of norm about
    ``sub_radius``; anchors scatter by about ``spread`` and views add noise of about ``noise``.
    With the defaults, noise links points within a fine cluster but never across two, so the
    augmentation graph's components are the fine clusters while the groups stay far apart.
    """

    name: ClassVar[str] = "hierarchical_mixture"
    description: ClassVar[str] = (
        "well-separated coarse groups, each split into close fine clusters (fine + coarse labels)"
    )
    groups: int = 4
    group_radius: float = 4.0
    sub_radius: float = 1.0
    spread: float = 0.15
    noise: float = 0.15
    limit: int = 1024

    def cluster_limit(self) -> int:
        return self.limit

    def check_clusters(self, clusters: int) -> None:
        super().check_clusters(clusters)
        if clusters % self.groups:
            raise ValueError(
                f"clusters={clusters} must be a multiple of groups={self.groups} for {self.name}"
            )

    @property
    def num_coarse_classes(self) -> int:
        return self.groups

    def world(self, key: jax.Array, cell: Cell) -> HierarchicalWorld:
        k_group, k_sub = jax.random.split(key)
        scale = 1.0 / self.dim**0.5
        group_centres = indexed_normal(k_group, (self.groups, self.dim)) * self.group_radius * scale
        offsets = indexed_normal(k_sub, (self.max_clusters, self.dim)) * self.sub_radius * scale
        group = jnp.arange(self.max_clusters, dtype=jnp.int32) % self.groups
        return HierarchicalWorld(group_centres[group] + offsets, group)

    def anchors(self, key: jax.Array, world: HierarchicalWorld, cell: Cell, n: int) -> Anchors:
        k_label, k_noise = jax.random.split(key)
        fine = uniform_labels(k_label, cell.clusters, n)
        x = world.centres[fine] + (self.spread / self.dim**0.5) * jax.random.normal(
            k_noise, (n, self.dim)
        )
        return Anchors(x, fine, world.group[fine])

    def augment(
        self, key: jax.Array, world: HierarchicalWorld, cell: Cell, x: jax.Array
    ) -> jax.Array:
        return x + (self.noise / self.dim**0.5) * jax.random.normal(key, x.shape)
