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

    def draw(key: jax.Array, dims: tuple[int, ...]) -> jax.Array:
        if not dims:
            return jax.random.normal(key, ())
        return jax.vmap(lambda i: draw(jax.random.fold_in(key, i), dims[1:]))(jnp.arange(dims[0]))

    return draw(key, tuple(shape))
