"""Agreement between two labelings, and a cluster-quality score of features given labels.

All functions take integer labels in ``[0, num_classes)`` with ``num_classes`` a static Python int
(an upper bound; absent labels are allowed), and are safe under ``jax.jit`` and ``jax.vmap``.
Values match scikit-learn's ``mutual_info_score``, ``normalized_mutual_info_score``
(arithmetic), ``adjusted_rand_score`` and ``calinski_harabasz_score`` up to float32 rounding.
"""

import jax
import jax.numpy as jnp

from clj.metrics._distances import HIGHEST


def contingency(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """Contingency table of two labelings.

    Args:
      y_true: ``[n]`` int labels in ``[0, num_classes)``.
      y_pred: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels of either labeling.

    Returns:
      ``[num_classes, num_classes]`` float32 counts; entry ``[i, j]`` is the number of samples
      with ``y_true == i`` and ``y_pred == j``.
    """
    a = jax.nn.one_hot(y_true, num_classes, dtype=jnp.float32)
    b = jax.nn.one_hot(y_pred, num_classes, dtype=jnp.float32)
    return jnp.matmul(a.T, b, precision=HIGHEST)


def _entropy(counts: jax.Array) -> jax.Array:
    """Entropy in nats of the distribution given by non-negative ``counts`` ``[c]``."""
    total = jnp.sum(counts)
    p = counts / jnp.maximum(total, 1.0)
    return -jnp.sum(jnp.where(counts > 0, p * jnp.log(jnp.where(counts > 0, p, 1.0)), 0.0))


def _mutual_information(table: jax.Array) -> jax.Array:
    """Mutual information in nats of a contingency table ``[c, c]`` (clipped at zero)."""
    n = jnp.sum(table)
    rows = jnp.sum(table, axis=1, keepdims=True)
    cols = jnp.sum(table, axis=0, keepdims=True)
    nonzero = table > 0
    # Ratio form: exactly log(1) = 0 when one labeling is constant.
    ratio = jnp.where(nonzero, (table * n) / jnp.where(nonzero, rows * cols, 1.0), 1.0)
    terms = jnp.where(nonzero, table / jnp.maximum(n, 1.0) * jnp.log(ratio), 0.0)
    return jnp.maximum(jnp.sum(terms), 0.0)


def mutual_information(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """Mutual information between two labelings, in nats (sklearn ``mutual_info_score``).

    Args:
      y_true: ``[n]`` int labels in ``[0, num_classes)``.
      y_pred: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels.

    Returns:
      Scalar float32 ``>= 0``.
    """
    return _mutual_information(contingency(y_true, y_pred, num_classes))


def recovered_clusters(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """Effective number of true clusters a prediction distinguishes: ``exp(MI)``.

    Equals the number of true clusters when ``y_pred`` separates ``k`` equally sized true
    clusters perfectly, and 1 when it carries no information about them.

    Args:
      y_true: ``[n]`` int labels in ``[0, num_classes)``.
      y_pred: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels.

    Returns:
      Scalar float32 ``>= 1``.
    """
    return jnp.exp(mutual_information(y_true, y_pred, num_classes))


def nmi(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """Normalised mutual information with arithmetic-mean normalisation.

    ``MI / ((H(y_true) + H(y_pred)) / 2)``, as sklearn's
    ``normalized_mutual_info_score(average_method="arithmetic")``: 1.0 when both labelings are
    constant (a perfect trivial match), 0.0 when exactly one is constant.

    Args:
      y_true: ``[n]`` int labels in ``[0, num_classes)``.
      y_pred: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels.

    Returns:
      Scalar float32 in ``[0, 1]``.
    """
    table = contingency(y_true, y_pred, num_classes)
    mi = _mutual_information(table)
    h_true = _entropy(jnp.sum(table, axis=1))
    h_pred = _entropy(jnp.sum(table, axis=0))
    both_constant = (jnp.sum(jnp.sum(table, axis=1) > 0) <= 1) & (
        jnp.sum(jnp.sum(table, axis=0) > 0) <= 1
    )
    normaliser = 0.5 * (h_true + h_pred)
    # If exactly one labeling is constant, mi == 0 and the normaliser is positive.
    value = mi / jnp.where(normaliser > 0, normaliser, 1.0)
    return jnp.where(both_constant, 1.0, jnp.minimum(value, 1.0))


def ari(y_true: jax.Array, y_pred: jax.Array, num_classes: int) -> jax.Array:
    """Adjusted Rand index (sklearn ``adjusted_rand_score``).

    ``(index − expected) / (mean(a, b) − expected)`` on pair counts normalised by ``n(n−1)/2``.
    As in sklearn, returns 1.0 whenever the two labelings are the same partition (including the
    trivial cases "both a single cluster" and "both all singletons"), tested exactly on counts.

    Args:
      y_true: ``[n]`` int labels in ``[0, num_classes)``.
      y_pred: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels.

    Returns:
      Scalar float32 in ``[-0.5, 1]``.
    """
    table = contingency(y_true, y_pred, num_classes)
    rows = jnp.sum(table, axis=1)
    cols = jnp.sum(table, axis=0)
    n = jnp.sum(table)
    # Same partition <=> every true class and every predicted cluster lies in one table cell.
    same_partition = jnp.all(jnp.max(table, axis=1) == rows) & jnp.all(
        jnp.max(table, axis=0) == cols
    )
    pairs = jnp.maximum(n * (n - 1.0), 1.0)  # 2 · C(n, 2); the factor 2 cancels below.
    index = jnp.sum(table * (table - 1.0)) / pairs
    a = jnp.sum(rows * (rows - 1.0)) / pairs
    b = jnp.sum(cols * (cols - 1.0)) / pairs
    expected = a * b
    denominator = 0.5 * (a + b) - expected
    value = (index - expected) / jnp.where(denominator != 0, denominator, 1.0)
    return jnp.where(same_partition, 1.0, value)


def calinski_harabasz(x: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """Calinski–Harabasz score of features ``x`` grouped by labels ``y``.

    ``[B / (k − 1)] / [W / (n − k)]`` with ``B`` the between-group and ``W`` the within-group
    dispersion and ``k`` the number of labels actually present in ``y`` (absent classes do not
    count). As sklearn's ``calinski_harabasz_score``: 1.0 when ``W == 0``, where ``W`` below the
    float32 rounding floor ``16 · eps² · Σ‖x_i‖²`` counts as zero. Where sklearn raises
    (``k < 2`` or ``k >= n``) this returns NaN.

    Args:
      x: ``[n, dim]`` float features.
      y: ``[n]`` int labels in ``[0, num_classes)``.
      num_classes: static upper bound on the number of labels.

    Returns:
      Scalar float32.
    """
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    # Raw magnitude sets the float32 rounding floor of the dispersions; centring reduces it.
    rounding_floor = 16.0 * jnp.finfo(jnp.float32).eps ** 2 * jnp.sum(x * x)
    x = x - jnp.mean(x, axis=0)
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)  # [n, c]
    counts = jnp.sum(onehot, axis=0)  # [c]
    sums = jnp.matmul(onehot.T, x, precision=HIGHEST)  # [c, dim]
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    between = jnp.sum(counts * jnp.sum(means**2, axis=-1))
    within = jnp.sum((x - means[y]) ** 2)
    within = jnp.where(within > rounding_floor, within, 0.0)
    k = jnp.sum(counts > 0).astype(x.dtype)
    value = between * (n - k) / (jnp.where(within > 0, within, 1.0) * jnp.maximum(k - 1.0, 1.0))
    value = jnp.where(within > 0, value, 1.0)
    return jnp.where((k > 1) & (k < n), value, jnp.nan)
