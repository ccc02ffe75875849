"""k-means clustering (greedy k-means++ seeding, then Lloyd iterations), vmappable over cells."""

import math

import jax
import jax.numpy as jnp

from clj.metrics._distances import HIGHEST, sq_euclidean


def _kmeans_plus_plus(
    key: jax.Array, x: jax.Array, num_clusters: jax.Array, max_clusters: int
) -> jax.Array:
    """Greedy k-means++ seeding (as sklearn): ``[max_clusters, dim]`` centroids.

    Each new centroid is the best, by resulting potential, of ``2 + floor(log(num_clusters))``
    candidates drawn with probability proportional to the squared distance to the nearest centroid
    chosen so far. As in sklearn, a candidate is drawn by inverting the cumulative sum of those
    squared distances at a uniform draw (one uniform per candidate, not one per point). Every
    draw has its own folded key and the trial count follows the traced ``num_clusters``, so the
    first ``num_clusters`` centroids do not depend on ``max_clusters``. Slots
    ``>= num_clusters`` are filled too but never used.
    """
    n, dim = x.shape
    max_trials = 2 + int(math.log(max_clusters))
    trials = 2 + jnp.floor(jnp.log(num_clusters.astype(jnp.float32))).astype(jnp.int32)
    key_first, key_rest = jax.random.split(key)
    first = x[jax.random.randint(key_first, (), 0, n)]
    centroids = jnp.zeros((max_clusters, dim), x.dtype).at[0].set(first)
    closest = sq_euclidean(x, first[None])[:, 0]  # [n]

    def add_centroid(c, carry):
        centroids, closest = carry
        # Proportional to D²; uniform if every point already coincides with a centroid.
        weights = jnp.where(jnp.sum(closest) > 0, closest, 1.0)
        cumulative = jnp.cumsum(weights)
        keys = jax.vmap(lambda t: jax.random.fold_in(jax.random.fold_in(key_rest, c), t))(
            jnp.arange(max_trials)
        )
        draws = jax.vmap(lambda k: jax.random.uniform(k))(keys) * cumulative[-1]
        # The first point whose cumulative weight exceeds the draw: searchsorted, right side.
        candidates = jnp.sum(cumulative[None, :] <= draws[:, None], axis=1)
        candidates = jnp.minimum(candidates, n - 1)  # [max_trials]
        cand_dists = jnp.minimum(sq_euclidean(x[candidates], x), closest[None])  # [max_trials, n]
        potential = jnp.where(jnp.arange(max_trials) < trials, jnp.sum(cand_dists, axis=1), jnp.inf)
        best = jnp.argmin(potential)
        return centroids.at[c].set(x[candidates[best]]), cand_dists[best]

    centroids, _ = jax.lax.fori_loop(1, max_clusters, add_centroid, (centroids, closest))
    return centroids


def _assign(x: jax.Array, centroids: jax.Array, valid: jax.Array) -> jax.Array:
    """Index ``[n]`` of the nearest valid centroid of each row of ``x``."""
    dists = jnp.where(valid[None, :], sq_euclidean(x, centroids), jnp.inf)
    return jnp.argmin(dists, axis=1).astype(jnp.int32)


def kmeans(
    key: jax.Array,
    x: jax.Array,
    num_clusters: int | jax.Array,
    max_clusters: int,
    iters: int = 50,
) -> jax.Array:
    """Cluster the rows of ``x`` into ``num_clusters`` groups with k-means.

    Greedy k-means++ seeding, then at most ``iters`` Lloyd iterations in ``jax.lax.while_loop``,
    stopping once an iteration leaves every label unchanged (the centroids are then a fixed point,
    so the result is that of all ``iters``). A cluster that becomes empty keeps its previous
    centroid.

    Args:
      key: PRNG key for the seeding.
      x: ``[n, dim]`` float data.
      num_clusters: number of clusters, a Python int or a traced int scalar (it may differ
        between vmapped cells); clipped to ``[1, max_clusters]``. Centroid slots at index
        ``>= num_clusters`` are masked out and never assigned.
      max_clusters: static upper bound on ``num_clusters``.
      iters: static number of Lloyd iterations.

    Returns:
      ``[n]`` int32 cluster labels in ``[0, num_clusters)``.
    """
    x = jnp.asarray(x, jnp.float32)
    num_clusters = jnp.clip(jnp.asarray(num_clusters, jnp.int32), 1, max_clusters)
    valid = jnp.arange(max_clusters) < num_clusters
    centroids = _kmeans_plus_plus(key, x, num_clusters, max_clusters)

    def update(labels, centroids):
        onehot = jax.nn.one_hot(labels, max_clusters, dtype=x.dtype)  # [n, max_clusters]
        counts = jnp.sum(onehot, axis=0)
        sums = jnp.matmul(onehot.T, x, precision=HIGHEST)
        means = sums / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where((counts > 0)[:, None], means, centroids)

    # Lloyd iterations stop early once the labels repeat: the centroids are then a fixed point,
    # so the result equals that of all ``iters`` iterations.
    def running(carry):
        i, _, _, changed = carry
        return (i < iters) & changed

    def lloyd_step(carry):
        i, centroids, labels, _ = carry
        centroids = update(labels, centroids)
        new_labels = _assign(x, centroids, valid)
        return i + 1, centroids, new_labels, jnp.any(new_labels != labels)

    labels = _assign(x, centroids, valid)
    start = (jnp.int32(0), centroids, labels, jnp.bool_(True))
    _, _, labels, _ = jax.lax.while_loop(running, lloyd_step, start)
    return labels
