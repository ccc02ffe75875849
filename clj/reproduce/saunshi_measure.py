"""Held-out measurements for Saunshi et al. (2022) Table 1: SimCLR loss and probe accuracy.

Every representation of a seed, trained or built by hand, is measured on the same data, drawn
from the seed alone:

- the probe trains on the seed's pretraining pool (the anchors :func:`clj.train.make_train` draws
  from the ``"pool"`` key, with their labels) and is tested on ``n_test`` fresh anchors;
- the SimCLR loss (:func:`clj.losses.info_nce`) is averaged over consecutive batches of
  ``batch`` positive pairs, two views of each test anchor.

The two hand-built representations of the hypercube (``s`` invariant coordinates):

- ``perfect``: ``f(x) = x_{1:s}``, the invariant coordinates (equal to ``x̄_{1:s}`` in every view);
- ``spurious``: ``g(x) = sign(x_{s+1:2s})``, the signs of ``s`` spurious coordinates (equal to
  ``x̄_{s+1:2s}`` in every view, since ``τ > 0`` keeps signs).

Both are exactly augmentation-invariant and both are ``s`` independent uniform ``±1`` bits, so
their SimCLR losses have the same distribution; ``f`` determines the label, ``g`` is independent
of it.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data import Anchors, DataFamily
from clj.losses import info_nce
from clj.reproduce.saunshi_probe import logistic_probe_accuracy
from clj.train import cell_keys

__all__ = [
    "HELDOUT_SALT",
    "SeedData",
    "batch_losses",
    "cell_data",
    "measure",
    "perfect_features",
    "spurious_features",
]

HELDOUT_SALT = 1022
"""Folded into a cell's ``"eval"`` key for the held-out test anchors and their views."""


class SeedData(NamedTuple):
    """The data every representation of one seed is measured on.

    Attributes:
      world: the family's fixed structure (the label direction ``w``).
      pool: the pretraining pool, ``x`` ``[pool_size, dim]``; the probe's training set.
      test: ``n_test`` held-out anchors, ``x`` ``[n_test, dim]``; the probe's test set.
      views: ``[2, n_test, dim]``, two augmentations of each test anchor.
    """

    world: jax.Array
    pool: Anchors
    test: Anchors
    views: jax.Array


def cell_data(family: DataFamily, pool_size: int, n_test: int, cell: Cell) -> SeedData:
    """A cell's measurement data; it depends only on the cell's seed and ``clusters``.

    The world and the pool are drawn exactly as :func:`clj.train.make_train` draws them, so
    ``pool`` is the pool the cell trained on.
    """
    keys = cell_keys(cell.seed)
    world = family.world(keys["world"], cell)
    pool = family.anchors(keys["pool"], world, cell, pool_size)
    k_test, k_views = jax.random.split(jax.random.fold_in(keys["eval"], HELDOUT_SALT))
    test = family.anchors(k_test, world, cell, n_test)
    views = family.view_pair(k_views, world, cell, test.x)
    return SeedData(world, pool, test, views)


def perfect_features(x: jax.Array, invariant: int) -> jax.Array:
    """``f``: the first ``invariant`` coordinates, ``[..., dim] -> [..., invariant]``."""
    return x[..., :invariant]


def spurious_features(x: jax.Array, invariant: int) -> jax.Array:
    """``g``: the signs of the next ``invariant`` coordinates, ``[..., dim] -> [..., invariant]``.

    Raises:
      ValueError: if ``x`` has fewer than ``2 · invariant`` coordinates.
    """
    if x.shape[-1] < 2 * invariant:
        raise ValueError(
            f"dim={x.shape[-1]} is below 2·s={2 * invariant}: too few spurious coordinates"
        )
    return jnp.sign(x[..., invariant : 2 * invariant])


def batch_losses(
    z1: jax.Array, z2: jax.Array, batch: int, temperature: float | jax.Array
) -> jax.Array:
    """SimCLR loss of each of the ``n // batch`` consecutive batches of positive pairs.

    Args:
      z1, z2: ``[n, k]`` representations of the two views (row ``i`` a positive pair).
      batch: pairs per batch (``2 ≤ batch ≤ n``); the last ``n mod batch`` pairs are unused.
      temperature: of :func:`clj.losses.info_nce`.

    Returns:
      ``[n // batch]`` losses.
    """
    chex.assert_rank([z1, z2], 2)
    chex.assert_equal_shape([z1, z2])
    n, k = z1.shape
    if not 2 <= batch <= n:
        raise ValueError(f"batch={batch} must be in 2..{n} (the number of pairs)")
    count = n // batch
    b1 = z1[: count * batch].reshape(count, batch, k)
    b2 = z2[: count * batch].reshape(count, batch, k)
    return jax.vmap(lambda a, b: info_nce(a, b, temperature))(b1, b2)


def measure(
    z_pool: jax.Array,
    y_pool: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    z_views: jax.Array,
    batch: int,
    temperature: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """One representation's held-out SimCLR loss per batch and its probe accuracy.

    Args:
      z_pool: ``[pool_size, k]`` features of the pool; y_pool: ``[pool_size]`` labels in {0, 1}.
      z_test: ``[n_test, k]`` features of the test anchors; y_test: ``[n_test]`` labels.
      z_views: ``[2, n_test, k]`` features of the two views of the test anchors.
      batch, temperature: of :func:`batch_losses`.

    Returns:
      ``([n_test // batch] losses, scalar accuracy of the logistic probe)``.
    """
    chex.assert_rank([z_pool, z_test, z_views], [2, 2, 3])
    losses = batch_losses(z_views[0], z_views[1], batch, temperature)
    accuracy = logistic_probe_accuracy(z_pool, y_pool, z_test, y_test)
    return losses, accuracy
