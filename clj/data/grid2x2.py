"""HaoChen & Ma (2023), Fig. 3: four clusters on the corners of a 2×2 grid."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels

__all__ = ["Grid2x2", "grid_centres"]


def grid_centres(spacing: float, num: int, dim: int) -> jax.Array:
    """Centres ``[num, dim]`` of corners ``0 .. num − 1`` of the grid, in reading order.

    Corner ``c`` sits in row ``c // 2`` and column ``c mod 2``: coordinate 0 is
    ``(column − ½)·spacing``, coordinate 1 is ``(row − ½)·spacing``, and all others are 0.
    """
    corner = jnp.arange(num)
    column = (corner % 2).astype(jnp.float32) - 0.5
    row = (corner // 2).astype(jnp.float32) - 0.5
    centres = jnp.zeros((num, dim), jnp.float32)
    return centres.at[:, 0].set(column * spacing).at[:, 1].set(row * spacing)


@dataclasses.dataclass(frozen=True)
class Grid2x2(DataFamily):
    """Four clusters at ``(±spacing/2, ±spacing/2)`` in the first two coordinates of ``R^dim``.

    An anchor is its corner's centre plus ``U(−spread, spread)`` noise on every coordinate; a view
    adds ``U(−noise, noise)`` on every coordinate. Both are bounded and ``spread + noise`` is below
    ``spacing / 2``, so no view of one cluster ever coincides with a view of another: the
    augmentation graph's components are exactly the clusters.

    A cell's ``clusters`` (1–4) uses the first ``clusters`` corners in reading order (row 0
    column 0, row 0 column 1, row 1 column 0, row 1 column 1); the grid of the paper is
    ``clusters = 4``. The fine label is the corner ``2·row + column``; the coarse label is its
    row (the split along coordinate 1, one of the two axis-aligned splits a linear function can
    implement). The column is ``fine mod 2`` and the diagonal (XOR) split ``row ⊕ column``.
    """

    name: ClassVar[str] = "grid2x2"
    description: ClassVar[str] = (
        "four clusters on a 2x2 grid in the first two coordinates; coarse label = row"
    )
    spacing: float = 2.0
    spread: float = 0.25
    noise: float = 0.25

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim={self.dim} must be at least 2 for {self.name}")
        for field in ("spacing", "spread", "noise"):
            value = getattr(self, field)
            if not value >= 0 or (field == "spacing" and value == 0):
                raise ValueError(f"{field}={value!r} must be positive for {self.name}")
        if not self.spread + self.noise < self.spacing / 2:
            raise ValueError(
                f"spread + noise = {self.spread + self.noise:g} must be below spacing/2 = "
                f"{self.spacing / 2:g} so that clusters stay unlinked"
            )

    def cluster_limit(self) -> int:
        return 4

    @property
    def num_coarse_classes(self) -> int:
        return 2

    def world(self, key: jax.Array, cell: Cell) -> jax.Array:
        """Corner centres ``[max_clusters, dim]`` (fixed; the key is unused)."""
        del key
        return grid_centres(self.spacing, self.max_clusters, self.dim)

    def anchors(self, key: jax.Array, world: jax.Array, cell: Cell, n: int) -> Anchors:
        k_label, k_noise = jax.random.split(key)
        fine = uniform_labels(k_label, cell.clusters, n)
        scatter = jax.random.uniform(k_noise, (n, self.dim), minval=-1.0, maxval=1.0)
        x = world[fine] + self.spread * scatter
        return Anchors(x, fine, fine // 2)

    def augment(self, key: jax.Array, world: jax.Array, cell: Cell, x: jax.Array) -> jax.Array:
        return x + self.noise * jax.random.uniform(key, x.shape, minval=-1.0, maxval=1.0)
