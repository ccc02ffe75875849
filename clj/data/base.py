"""What every data family provides, and the arrays it returns."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from clj.cell import Cell

__all__ = ["Anchors", "DataFamily", "Views"]


class Anchors(NamedTuple):
    """Clean inputs and their labels.

    Attributes:
      x: ``[n, dim]`` inputs before augmentation.
      fine: ``[n]`` int32 fine labels (the augmentation graph's components).
      coarse: ``[n]`` int32 coarse labels (groups of fine clusters; equal to ``fine`` where a family
        has no hierarchy).
    """

    x: jax.Array
    fine: jax.Array
    coarse: jax.Array


class Views(NamedTuple):
    """Two augmented views of the same anchors: ``x1[i]``, ``x2[i]`` are a positive pair.

    Attributes:
      x1, x2: ``[n, dim]`` views.
      fine, coarse: ``[n]`` int32 labels of the shared anchor.
    """

    x1: jax.Array
    x2: jax.Array
    fine: jax.Array
    coarse: jax.Array


@dataclasses.dataclass(frozen=True)
class DataFamily:
    """A synthetic data family: static configuration plus pure samplers.

    Subclasses are frozen dataclasses (hashable, so they can be static arguments of ``jax.jit``).
    ``dim`` is the input dimension and ``max_clusters`` the largest per-cell ``clusters`` value the
    program is padded to. A family draws a cell's fixed structure (cluster centres, label vectors)
    once with :meth:`world`, then samples anchors and augments them as often as training needs.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    cell_fields: ClassVar[tuple[str, ...]] = ("seed", "clusters")
    """The :class:`~clj.cell.Cell` fields a family's draws may read (``seed`` makes the keys):
    cells that agree on these draw the same worlds and batches, whatever their widths or
    hyper-parameters. A family that reads another field lists it here."""
    dim: int
    max_clusters: int

    # -- static facts ---------------------------------------------------------------------------
    @classmethod
    def fixed_dim(cls) -> int | None:
        """The only input dimension this family accepts (a dataset's pixel count), or ``None``
        when ``dim`` is free."""
        return None

    def cluster_limit(self) -> int:
        """Largest ``clusters`` value this family accepts."""
        raise NotImplementedError

    def check_clusters(self, clusters: int) -> None:
        """Raises ``ValueError`` naming ``clusters`` if a cell may not use it."""
        if not 1 <= clusters <= self.cluster_limit():
            raise ValueError(
                f"clusters={clusters} is outside 1..{self.cluster_limit()} for {self.name} "
                f"with dim={self.dim}"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input before it is flattened to ``[dim]`` (e.g. ``(P, L)`` patches)."""
        return (self.dim,)

    @property
    def num_fine_classes(self) -> int:
        """Static upper bound on the number of fine labels."""
        return self.max_clusters

    @property
    def num_coarse_classes(self) -> int:
        """Static upper bound on the number of coarse labels."""
        return self.num_fine_classes

    def fine_count(self, cell: Cell) -> jax.Array:
        """The cell's number of fine clusters (traced scalar)."""
        return cell.clusters

    # -- pure samplers --------------------------------------------------------------------------
    def world(self, key: jax.Array, cell: Cell) -> Any:
        """The cell's fixed random structure (a pytree of arrays padded to ``max_clusters``)."""
        raise NotImplementedError

    def anchors(self, key: jax.Array, world: Any, cell: Cell, n: int) -> Anchors:
        """``n`` clean inputs with labels."""
        raise NotImplementedError

    def heldout_anchors(self, key: jax.Array, world: Any, cell: Cell, n: int) -> Anchors:
        """``n`` clean inputs for testing the probes: :meth:`anchors`, unless the family has a
        fixed test split (image datasets), which it draws from instead."""
        return self.anchors(key, world, cell, n)

    def augment(self, key: jax.Array, world: Any, cell: Cell, x: jax.Array) -> jax.Array:
        """One random view of each row of ``x`` (``[n, dim]`` to ``[n, dim]``)."""
        raise NotImplementedError

    def view_pair(self, key: jax.Array, world: Any, cell: Cell, x: jax.Array) -> jax.Array:
        """Two independent augmentations of each row of ``x``, as one ``[2, n, dim]`` array."""
        keys = jax.random.split(key)
        return jax.vmap(lambda k: self.augment(k, world, cell, x))(keys)

    def views(self, key: jax.Array, world: Any, cell: Cell, anchors: Anchors) -> Views:
        """Two independent augmentations of the same anchors."""
        pair = self.view_pair(key, world, cell, anchors.x)
        return Views(pair[0], pair[1], anchors.fine, anchors.coarse)

    def sample_pair(self, key: jax.Array, world: Any, cell: Cell, n: int) -> jax.Array:
        """``n`` positive pairs as one ``[2, n, dim]`` array (the views of :meth:`sample`)."""
        k_anchor, k_views = jax.random.split(key)
        return self.view_pair(k_views, world, cell, self.anchors(k_anchor, world, cell, n).x)

    def sample(self, key: jax.Array, world: Any, cell: Cell, n: int) -> Views:
        """``n`` positive pairs: fresh anchors, each augmented twice."""
        k_anchor, k_views = jax.random.split(key)
        return self.views(k_views, world, cell, self.anchors(k_anchor, world, cell, n))


def uniform_labels(key: jax.Array, clusters: jax.Array, n: int) -> jax.Array:
    """``[n]`` int32 labels uniform on ``0 .. clusters − 1`` (``clusters`` may be traced)."""
    u = jax.random.uniform(key, (n,))
    return jnp.minimum((u * clusters).astype(jnp.int32), clusters - 1)
