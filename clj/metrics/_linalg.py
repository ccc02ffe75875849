"""A symmetric positive-definite solve written in plain JAX operations.

``jax.scipy.linalg`` solves lower to LAPACK calls on the CPU; several of them running at once (two
probes in one evaluation, or one per CPU device) can deadlock XLA's CPU thread pool. These loops
need no library call, run on every backend, and vmap like any other array code. They cost
``O(dim³)`` in ``dim`` sequential steps, which is nothing for representation dimensions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from clj.metrics._distances import HIGHEST

__all__ = ["cholesky", "spd_solve"]


def cholesky(a: jax.Array) -> jax.Array:
    """Lower-triangular ``L`` with ``L Lᵀ = a`` for a symmetric positive-definite ``[d, d]``."""
    d = a.shape[0]
    rows = jnp.arange(d)

    def column(j: jax.Array, lower: jax.Array) -> jax.Array:
        # Columns ≥ j of ``lower`` are still zero, so this subtracts Σ_{m<j} L[:, m] L[j, m].
        s = a[:, j] - jnp.matmul(lower, lower[j], precision=HIGHEST)
        pivot = jnp.sqrt(s[j])
        return lower.at[:, j].set(jnp.where(rows > j, s / pivot, jnp.where(rows == j, pivot, 0.0)))

    return jax.lax.fori_loop(0, d, column, jnp.zeros_like(a))


def spd_solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """Solves ``a x = b`` for symmetric positive-definite ``a`` ``[d, d]`` and ``b`` ``[d, c]``."""
    lower = cholesky(a)
    d = a.shape[0]

    def forward(i: jax.Array, y: jax.Array) -> jax.Array:  # L y = b; rows ≥ i of y still zero
        return y.at[i].set((b[i] - jnp.matmul(lower[i], y, precision=HIGHEST)) / lower[i, i])

    def backward(k: jax.Array, x: jax.Array) -> jax.Array:  # Lᵀ x = y; rows ≤ i of x still zero
        i = d - 1 - k
        return x.at[i].set((y[i] - jnp.matmul(lower[:, i], x, precision=HIGHEST)) / lower[i, i])

    y = jax.lax.fori_loop(0, d, forward, jnp.zeros_like(b))
    return jax.lax.fori_loop(0, d, backward, jnp.zeros_like(b))
