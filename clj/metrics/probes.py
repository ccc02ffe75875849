"""Downstream probes of a representation: closed-form ridge linear probe and k-NN.

Predictions are ``-1`` for test rows whose features (or the fitted scores) are not finite, and
the accuracies are NaN whenever any prediction is ``-1``, so a diverged cell reports NaN instead
of crashing or silently scoring. Classes absent from ``y_train`` are never predicted.
"""

import jax
import jax.numpy as jnp

from clj.metrics._distances import HIGHEST, sq_euclidean
from clj.metrics._linalg import spd_solve


def _all_finite(*arrays: jax.Array) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))


def accuracy(y_pred: jax.Array, y_test: jax.Array) -> jax.Array:
    """Fraction of ``[n]`` predictions equal to ``[n]`` labels; NaN if any prediction is ``-1``
    (a probe's "no prediction", for non-finite features)."""
    valid = jnp.all(y_pred >= 0)
    return jnp.where(valid, jnp.mean((y_pred == y_test).astype(jnp.float32)), jnp.nan)


def _ridge_scores(
    z_train: jax.Array, y_train: jax.Array, z_test: jax.Array, num_classes: int, ridge: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Ridge-regression class scores ``[n_test, num_classes]``, present classes, finiteness.

    Fits ``W, b = argmin ‖Y − Z W − b‖² + ridge · n_train · ‖W‖²`` with ``Y`` the one-hot
    (0/1) targets, by centring ``Z`` and ``Y`` on the training set and a (plain-JAX) Cholesky
    solve of the
    ``[dim, dim]`` system ``(ZcᵀZc + ridge · n_train · I) W = ZcᵀYc``. All-zero feature columns
    get zero weight. Also returns ``present`` ``[num_classes]`` (the class occurs in ``y_train``)
    and ``finite`` (scalar: all input features are finite; if not they were zeroed).
    """
    z_train = jnp.asarray(z_train, jnp.float32)
    z_test = jnp.asarray(z_test, jnp.float32)
    n, dim = z_train.shape
    finite = _all_finite(z_train, z_test)
    z_train = jnp.where(finite, z_train, 0.0)
    z_test = jnp.where(finite, z_test, 0.0)

    targets = jax.nn.one_hot(y_train, num_classes, dtype=jnp.float32)  # [n, c]
    present = jnp.sum(targets, axis=0) > 0
    z_mean = jnp.mean(z_train, axis=0)
    y_mean = jnp.mean(targets, axis=0)
    zc = z_train - z_mean
    gram = jnp.matmul(zc.T, zc, precision=HIGHEST) + ridge * n * jnp.eye(dim, dtype=zc.dtype)
    rhs = jnp.matmul(zc.T, targets - y_mean, precision=HIGHEST)  # [dim, c]
    weights = spd_solve(gram, rhs)
    scores = jnp.matmul(z_test - z_mean, weights, precision=HIGHEST) + y_mean
    return scores, present, finite


def linear_probe_predict(
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    num_classes: int,
    ridge: float = 1e-4,
) -> jax.Array:
    """Predict labels with a closed-form ridge linear probe.

    Ridge regression of one-hot targets on the features with an unpenalised intercept,
    ``min ‖Y − Z W − 1 bᵀ‖² + ridge · n_train · ‖W‖²`` (i.e. ``ridge`` is the per-sample
    penalty; this equals sklearn ``RidgeClassifier(alpha=ridge * n_train)``), then the argmax
    over classes present in ``y_train``.

    Args:
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, dim]`` float features.
      num_classes: static upper bound on the number of classes.
      ridge: per-sample ridge penalty, ``> 0`` (keeps all-zero feature columns harmless).

    Returns:
      ``[n_test]`` int32 predicted labels; ``-1`` for every row if any feature is not finite, or
      for rows whose scores are not finite.
    """
    scores, present, finite = _ridge_scores(z_train, y_train, z_test, num_classes, ridge)
    row_ok = finite & jnp.all(jnp.isfinite(scores) | ~present, axis=1)
    y_pred = jnp.argmax(jnp.where(present, scores, -jnp.inf), axis=1)
    return jnp.where(row_ok, y_pred, -1).astype(jnp.int32)


def linear_probe_accuracy(
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    num_classes: int,
    ridge: float = 1e-4,
) -> jax.Array:
    """Test accuracy of the ridge linear probe of :func:`linear_probe_predict`.

    Args:
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, dim]`` float features.
      y_test: ``[n_test]`` int labels.
      num_classes: static upper bound on the number of classes.
      ridge: per-sample ridge penalty, ``> 0``.

    Returns:
      Scalar float32 in ``[0, 1]``; NaN if any feature or fitted score is not finite.
    """
    y_pred = linear_probe_predict(z_train, y_train, z_test, num_classes, ridge)
    return accuracy(y_pred, y_test)


def knn_neighbours(z_train: jax.Array, z_test: jax.Array, k: int = 10) -> jax.Array:
    """Indices of the ``k`` nearest training points (Euclidean) of every test point.

    Equidistant neighbours are ordered by training index (lower first). Memory is
    ``O(n_test · n_train)``. Computing them once serves :func:`knn_vote` for several labellings.

    Args:
      z_train: ``[n_train, dim]`` float features.
      z_test: ``[n_test, dim]`` float features.
      k: static number of neighbours, ``1 <= k <= n_train``.

    Returns:
      ``[n_test, k]`` int32 training indices, nearest first; ``-1`` everywhere if any feature is
      not finite.
    """
    z_train = jnp.asarray(z_train, jnp.float32)
    z_test = jnp.asarray(z_test, jnp.float32)
    finite = _all_finite(z_train, z_test)
    dists = sq_euclidean(jnp.where(finite, z_test, 0.0), jnp.where(finite, z_train, 0.0))
    _, nearest = jax.lax.top_k(-dists, k)  # [n_test, k], nearest first
    return jnp.where(finite, nearest, -1).astype(jnp.int32)


def knn_vote(nearest: jax.Array, y_train: jax.Array, num_classes: int) -> jax.Array:
    """Majority vote of the labels of each test point's neighbours (:func:`knn_neighbours`).

    Ties: among the classes with the most votes, the one that owns the nearest neighbour wins.

    Args:
      nearest: ``[n_test, k]`` int training indices, nearest first (``-1``: no features).
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of classes.

    Returns:
      ``[n_test]`` int32 predicted labels; ``-1`` where ``nearest`` is ``-1``.
    """
    k = nearest.shape[-1]
    member = jax.nn.one_hot(y_train[nearest], num_classes, dtype=jnp.int32)  # [n_test, k, c]
    votes = jnp.sum(member, axis=1)  # [n_test, c]
    rank = jnp.arange(k, dtype=jnp.int32)[None, :, None]
    first_rank = jnp.min(jnp.where(member > 0, rank, k), axis=1)  # [n_test, c]
    # Votes dominate (each vote is worth k + 1); the nearer first neighbour breaks ties.
    score = votes * (k + 1) + (k - first_rank)
    return jnp.where(nearest[:, 0] >= 0, jnp.argmax(score, axis=1), -1).astype(jnp.int32)


def knn_predict(
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    num_classes: int,
    k: int = 10,
) -> jax.Array:
    """Predict labels by a majority vote of the ``k`` nearest training points (Euclidean).

    Ties: among the classes with the most votes, the one that owns the nearest of the ``k``
    neighbours wins. Equidistant neighbours are ordered by training index (lower first).
    Memory is ``O(n_test · n_train)``.

    Args:
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, dim]`` float features.
      num_classes: static upper bound on the number of classes.
      k: static number of neighbours, ``1 <= k <= n_train``.

    Returns:
      ``[n_test]`` int32 predicted labels; ``-1`` everywhere if any feature is not finite.
    """
    return knn_vote(knn_neighbours(z_train, z_test, k), y_train, num_classes)


def knn_accuracy(
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    num_classes: int,
    k: int = 10,
) -> jax.Array:
    """Test accuracy of the k-NN classifier of :func:`knn_predict`.

    Args:
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, dim]`` float features.
      y_test: ``[n_test]`` int labels.
      num_classes: static upper bound on the number of classes.
      k: static number of neighbours.

    Returns:
      Scalar float32 in ``[0, 1]``; NaN if any feature is not finite.
    """
    return accuracy(knn_predict(z_train, y_train, z_test, num_classes, k), y_test)
