"""Random draws whose values do not depend on how much padding surrounds them.

A padded array drawn with one ``jax.random`` call changes all its values when its padded size
changes. Drawing each entry from a key folded with its index makes entry ``[i, j]`` a function of
the key and ``(i, j)`` alone, so a cell's initial weights and cluster centres are the same whatever
maximum width or cluster count its grid is padded to.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["indexed_normal"]


def indexed_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Standard normal draws of ``shape`` where each entry depends only on ``key`` and its index.

    Args:
      key: a typed PRNG key.
      shape: static output shape, any rank ``≥ 1``.

    Returns:
      ``float32`` array of ``shape``; ``indexed_normal(k, (m, n))[:a, :b]`` equals
      ``indexed_normal(k, (a, b))``.
    """

    if len(shape) == 1:
        # Threefry in partitionable mode (JAX's default) draws entry i of a 1-D array from the
        # counter i alone, so a longer draw extends a shorter one; tests pin this property down.
        return jax.random.normal(key, shape)
    rows = jnp.arange(shape[0])
    return jax.vmap(lambda i: indexed_normal(jax.random.fold_in(key, i), shape[1:]))(rows)
