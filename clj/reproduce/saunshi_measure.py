"""Held-out measurements for Saunshi et al. (2022) Table 1: SimCLR loss and probe accuracy.

Every representation of a seed, trained or built by hand, is measured on the same data, drawn
from the seed alone:

- the probe trains on the seed's pretraining pool (the anchors :func:`clj.train.make_train` draws
  from the ``"pool"`` key, with their labels) and is tested on ``n_test`` fresh anchors;
- the SimCLR loss (:func:`clj.losses.info_nce`) is averaged over consecutive batches of
  ``batch`` positive pairs, two views of each test anchor;
- the *invariant similarity* is the mean cosine similarity between the representation of a test
  anchor and that of the same anchor with every spurious coordinate redrawn (``±1``, uniform):
  1 for a representation of the invariant coordinates alone, lower the more it depends on the
  spurious ones.

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
    "mean_cosine",
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
      redrawn: ``[n_test, dim]``, the test anchors with their spurious coordinates redrawn.
    """

    world: jax.Array
    pool: Anchors
    test: Anchors
    views: jax.Array
    redrawn: jax.Array


def cell_data(family: DataFamily, pool_size: int, n_test: int, cell: Cell) -> SeedData:
    """A cell's measurement data; it depends only on the cell's seed and ``clusters``.

    The world and the pool are drawn exactly as :func:`clj.train.make_train` draws them, so
    ``pool`` is the pool the cell trained on.
    """
    keys = cell_keys(cell.seed)
    world = family.world(keys["world"], cell)
    pool = family.anchors(keys["pool"], world, cell, pool_size)
    k_test, k_views, k_redraw = jax.random.split(jax.random.fold_in(keys["eval"], HELDOUT_SALT), 3)
    test = family.anchors(k_test, world, cell, n_test)
    views = family.view_pair(k_views, world, cell, test.x)
    fresh = jnp.where(jax.random.bernoulli(k_redraw, 0.5, test.x.shape), 1.0, -1.0)
    invariant = jnp.arange(family.dim) < cell.clusters
    redrawn = jnp.where(invariant, test.x, fresh)
    return SeedData(world, pool, test, views, redrawn)


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


def mean_cosine(a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean over rows of the cosine similarity of ``a[i]`` and ``b[i]`` (``[n, k]`` each)."""
    chex.assert_equal_shape([a, b])
    norms = jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1)
    return jnp.mean(jnp.sum(a * b, axis=1) / jnp.maximum(norms, 1e-12))


def measure(
    z_pool: jax.Array,
    y_pool: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    z_views: jax.Array,
    z_redrawn: jax.Array,
    batch: int,
    temperature: float | jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One representation's held-out SimCLR loss per batch, probe accuracy and invariant
    similarity.

    Args:
      z_pool: ``[pool_size, k]`` features of the pool; y_pool: ``[pool_size]`` labels in {0, 1}.
      z_test: ``[n_test, k]`` features of the test anchors; y_test: ``[n_test]`` labels.
      z_views: ``[2, n_test, k]`` features of the two views of the test anchors.
      z_redrawn: ``[n_test, k]`` features of the test anchors with spurious coordinates redrawn.
      batch, temperature: of :func:`batch_losses`.

    Returns:
      ``([n_test // batch] losses, accuracy of the logistic probe, invariant similarity)``.
    """
    chex.assert_rank([z_pool, z_test, z_views, z_redrawn], [2, 2, 3, 2])
    losses = batch_losses(z_views[0], z_views[1], batch, temperature)
    accuracy = logistic_probe_accuracy(z_pool, y_pool, z_test, y_test)
    return losses, accuracy, mean_cosine(z_test, z_redrawn)
