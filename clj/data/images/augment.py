"""Pure image augmentations on ``[n, H, W, C]`` batches, one independent draw per image.

Each random augmentation ``f(key, x, strength)`` draws its per-image parameters (shift, angle,
noise, flip) from ``key`` and calls a deterministic counterpart that takes those parameters
explicitly (``shift_images``, ``rotate_images``), which the tests compare with NumPy. Everything is
vectorised over the batch (no Python loop over images) and safe under ``jit`` and ``vmap``.
Pixels that an augmentation moves in from outside the image are zero.
"""

from __future__ import annotations

import math
from numbers import Number

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "augment_images",
    "gaussian_noise",
    "random_flip",
    "random_rotation",
    "random_translation",
    "rotate_images",
    "shift_images",
]


def shift_images(x: jax.Array, dy: jax.Array, dx: jax.Array, max_shift: int) -> jax.Array:
    """Translates image ``i`` by ``(dy[i], dx[i])`` whole pixels, filling with zeros.

    ``out[i, r, c] = x[i, r − dy[i], c − dx[i]]`` where that pixel exists, else 0: a positive
    ``dy`` moves the content down, a positive ``dx`` to the right. This is pad-and-crop: ``x`` is
    zero-padded by ``max_shift`` on every side and an ``H × W`` window is cut out per image.

    Args:
      x: ``[n, H, W, C]`` images.
      dy, dx: ``[n]`` integer shifts in ``−max_shift .. max_shift`` (larger ones are clipped).
      max_shift: static padding, at least ``max(|dy|, |dx|)``.

    Returns:
      ``[n, H, W, C]`` shifted images.
    """
    chex.assert_rank(x, 4)
    n, height, width, channels = x.shape
    chex.assert_shape([dy, dx], (n,))
    m = int(max_shift)
    if m == 0:
        return x
    padded = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)))

    def crop(image: jax.Array, top: jax.Array, left: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (top, left, 0), (height, width, channels))

    top = m - jnp.clip(dy, -m, m).astype(jnp.int32)
    left = m - jnp.clip(dx, -m, m).astype(jnp.int32)
    return jax.vmap(crop)(padded, top, left)


def random_translation(key: jax.Array, x: jax.Array, max_shift: int) -> jax.Array:
    """Shifts each image by its own ``(dy, dx)``, uniform on ``−max_shift .. max_shift`` pixels.

    Args:
      key: PRNG key.
      x: ``[n, H, W, C]`` images.
      max_shift: static strength in pixels (0: no change).

    Returns:
      ``[n, H, W, C]`` translated images (zero where content moved in from outside).
    """
    if max_shift == 0:
        return x
    shifts = jax.random.randint(key, (2, x.shape[0]), -max_shift, max_shift + 1)
    return shift_images(x, shifts[0], shifts[1], max_shift)


def rotate_images(x: jax.Array, degrees: jax.Array) -> jax.Array:
    """Rotates image ``i`` by ``degrees[i]`` counter-clockwise about its centre (bilinear).

    Output pixel ``(r, c)`` samples the input at ``(ρ, γ)`` with, for ``θ = degrees[i]`` and centre
    ``(H − 1) / 2, (W − 1) / 2``: ``ρ − c_r = cos θ (r − c_r) + sin θ (c − c_c)`` and
    ``γ − c_c = cos θ (c − c_c) − sin θ (r − c_r)``, bilinearly interpolated with zeros outside the
    image. So ``θ = 0`` is the identity and ``θ = 90°`` on a square image is ``np.rot90``.

    Args:
      x: ``[n, H, W, C]`` images.
      degrees: ``[n]`` angles in degrees.

    Returns:
      ``[n, H, W, C]`` rotated images.
    """
    chex.assert_rank(x, 4)
    n, height, width, _ = x.shape
    chex.assert_shape(degrees, (n,))
    rows = jnp.arange(height, dtype=jnp.float32)[:, None] - (height - 1) / 2
    cols = jnp.arange(width, dtype=jnp.float32)[None, :] - (width - 1) / 2

    def rotate(image: jax.Array, angle: jax.Array) -> jax.Array:
        theta = angle.astype(jnp.float32) * (math.pi / 180.0)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        src_r = cos * rows + sin * cols + (height - 1) / 2  # [H, W]
        src_c = cos * cols - sin * rows + (width - 1) / 2
        r0, c0 = jnp.floor(src_r), jnp.floor(src_c)
        fr, fc = src_r - r0, src_c - c0
        r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)

        def tap(r: jax.Array, c: jax.Array) -> jax.Array:
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            value = image[jnp.clip(r, 0, height - 1), jnp.clip(c, 0, width - 1)]  # [H, W, C]
            return jnp.where(inside[..., None], value, 0.0)

        out = (
            tap(r0, c0) * ((1 - fr) * (1 - fc))[..., None]
            + tap(r0, c0 + 1) * ((1 - fr) * fc)[..., None]
            + tap(r0 + 1, c0) * (fr * (1 - fc))[..., None]
            + tap(r0 + 1, c0 + 1) * (fr * fc)[..., None]
        )
        return out.astype(image.dtype)

    return jax.vmap(rotate)(x, degrees)


def random_rotation(key: jax.Array, x: jax.Array, max_degrees: float | jax.Array) -> jax.Array:
    """Rotates each image by its own angle, uniform on ``[−max_degrees, max_degrees]``.

    Args:
      key: PRNG key.
      x: ``[n, H, W, C]`` images.
      max_degrees: strength in degrees (a Python 0 skips the resampling entirely).

    Returns:
      ``[n, H, W, C]`` rotated images.
    """
    if _is_static_zero(max_degrees):
        return x
    angles = jax.random.uniform(key, (x.shape[0],), minval=-1.0, maxval=1.0) * max_degrees
    return rotate_images(x, angles)


def gaussian_noise(key: jax.Array, x: jax.Array, std: float | jax.Array) -> jax.Array:
    """Adds independent ``N(0, std²)`` noise to every pixel of ``x`` (any shape), unclipped."""
    if _is_static_zero(std):
        return x
    return x + std * jax.random.normal(key, x.shape, x.dtype)


def random_flip(key: jax.Array, x: jax.Array, prob: float | jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability ``prob`` (``[n, H, W, C]``)."""
    if _is_static_zero(prob):
        return x
    flip = jax.random.bernoulli(key, prob, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def augment_images(
    key: jax.Array,
    x: jax.Array,
    *,
    shift: int = 0,
    rotation: float | jax.Array = 0.0,
    noise: float | jax.Array = 0.0,
    flip: float | jax.Array = 0.0,
) -> jax.Array:
    """One random view of each image: flip, then rotation, then translation, then noise.

    Each step draws its own parameters per image from its own sub-key, so two calls with
    different keys give independent views.

    Args:
      key: PRNG key.
      x: ``[n, H, W, C]`` images.
      shift: static largest translation in pixels.
      rotation: largest rotation in degrees.
      noise: standard deviation of additive Gaussian noise.
      flip: probability of a left-right mirror.

    Returns:
      ``[n, H, W, C]`` augmented images.
    """
    chex.assert_rank(x, 4)
    k_flip, k_rotate, k_shift, k_noise = jax.random.split(key, 4)
    x = random_flip(k_flip, x, flip)
    x = random_rotation(k_rotate, x, rotation)
    x = random_translation(k_shift, x, shift)
    return gaussian_noise(k_noise, x, noise)


def _is_static_zero(value: object) -> bool:
    return isinstance(value, Number) and value == 0
