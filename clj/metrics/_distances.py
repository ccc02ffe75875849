"""Pairwise squared Euclidean distances, shared by the metrics that need neighbours."""

import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST


def sq_euclidean(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared Euclidean distances between the rows of ``a`` and ``b``.

    Args:
      a: ``[n, dim]``.
      b: ``[m, dim]``.

    Returns:
      ``[n, m]`` non-negative squared distances, computed as
      ``‖a‖² − 2 a·b + ‖b‖²`` in full float32 matmul precision and clamped at zero.
    """
    a_sq = jnp.sum(a * a, axis=-1)
    b_sq = jnp.sum(b * b, axis=-1)
    cross = jnp.matmul(a, b.T, precision=HIGHEST)
    return jnp.maximum(a_sq[:, None] - 2.0 * cross + b_sq[None, :], 0.0)


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` for ``x >= 0`` with value 0 and a zero (not NaN) gradient at ``x == 0``."""
    positive = x > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)
