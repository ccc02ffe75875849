"""Glyph images whose content is a class and whose style is a continuous position.

Each class is a prototype *glyph*: ``blobs`` Gaussian strokes at fixed offsets around its centre
(drawn per seed). An anchor renders its class's glyph, its strokes jittered a little, centred at a
continuous position ``(sy, sx)`` pixels from the image centre: the *style*, uniform in
``[−position_range, position_range]²``. A view translates the anchor by a fresh random offset
uniform in ``[−view_shift, view_shift]²`` (bilinear, zero fill) and adds pixel noise, so
augmentation changes the style and keeps the content.

:meth:`StyleGlyphs.styled_anchors` returns the anchors together with their style, for
experiments that measure how much of the style a representation keeps.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import chex
import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels
from clj.random import indexed_normal

__all__ = ["StyleGlyphs", "render_glyphs", "translate_images"]


def render_glyphs(
    offsets: jax.Array, position: jax.Array, thickness: float, side: int
) -> jax.Array:
    """Renders glyphs of Gaussian strokes.

    Pixel ``(r, c)`` of glyph ``i`` is ``1 − Π_b (1 − exp(−‖(r, c) − p_ib‖² / (2 t²)))`` (a soft
    union of the strokes, in ``[0, 1]``), with stroke centres
    ``p_ib = ((side − 1)/2, (side − 1)/2) + position_i + offsets_ib`` and ``t = thickness``.

    Args:
      offsets: ``[n, blobs, 2]`` stroke offsets ``(dy, dx)`` from the glyph's centre, pixels.
      position: ``[n, 2]`` glyph centres ``(sy, sx)`` relative to the image centre, pixels.
      thickness: stroke standard deviation ``t`` in pixels.
      side: image height and width.

    Returns:
      ``[n, side, side]`` images.
    """
    chex.assert_rank([offsets, position], [3, 2])
    centre = (side - 1) / 2.0
    strokes = centre + position[:, None, :] + offsets  # [n, blobs, 2]
    grid = jnp.arange(side, dtype=jnp.float32)
    gy = jnp.exp(-jnp.square(grid - strokes[..., 0:1]) / (2.0 * thickness**2))  # [n, b, side]
    gx = jnp.exp(-jnp.square(grid - strokes[..., 1:2]) / (2.0 * thickness**2))
    ink = gy[:, :, :, None] * gx[:, :, None, :]  # [n, b, side, side]
    return 1.0 - jnp.prod(1.0 - ink, axis=1)


def _tent(shift: jax.Array, side: int) -> jax.Array:
    """``[n, side, side]`` matrices ``T[i, j] = max(0, 1 − |i − shift − j|)``."""
    grid = jnp.arange(side, dtype=jnp.float32)
    distance = grid[None, :, None] - shift[:, None, None] - grid[None, None, :]
    return jnp.maximum(0.0, 1.0 - jnp.abs(distance))


def translate_images(images: jax.Array, dy: jax.Array, dx: jax.Array) -> jax.Array:
    """Moves image ``i`` by ``(dy[i], dx[i])`` pixels (continuous), bilinear, zero fill.

    ``out[i, r, c]`` is ``images[i]`` bilinearly interpolated at ``(r − dy[i], c − dx[i])``, zero
    outside the image: positive ``dy`` moves the content down, positive ``dx`` to the right; whole
    shifts move pixels exactly. Computed as ``T(dy) · image · T(dx)ᵀ`` with tent matrices.

    Args:
      images: ``[n, H, W]``.
      dy, dx: ``[n]`` shifts in pixels.

    Returns:
      ``[n, H, W]`` translated images.
    """
    chex.assert_rank(images, 3)
    n, height, width = images.shape
    chex.assert_shape([dy, dx], (n,))
    rows, cols = _tent(dy, height), _tent(dx, width)
    return jnp.einsum("nij,njl,nkl->nik", rows, images, cols)


@dataclasses.dataclass(frozen=True)
class StyleGlyphs(DataFamily):
    """``clusters`` glyph classes on ``side × side`` images (``dim = side²``); see the module.

    Labels: fine = coarse = the class. Style: the glyph's position (``[n, 2]``, pixels).

    Attributes:
      blobs: strokes per glyph.
      glyph_radius: standard deviation of the stroke offsets of a prototype, pixels.
      thickness: stroke standard deviation, pixels.
      jitter: standard deviation of each anchor's per-stroke displacement, pixels.
      position_range: an anchor's position is uniform in ``[−position_range, position_range]²``.
      view_shift: a view's translation is uniform in ``[−view_shift, view_shift]²``.
      noise: standard deviation of a view's pixel noise (views are clipped to ``[0, 1]``).
      limit: the largest ``clusters`` accepted.
    """

    name: ClassVar[str] = "style_glyphs"
    description: ClassVar[str] = (
        "side x side glyph images (dim = side²): class = stroke pattern (content), continuous "
        "position (style); views translate and add noise"
    )
    blobs: int = 4
    glyph_radius: float = 2.0
    thickness: float = 0.8
    jitter: float = 0.3
    position_range: float = 2.5
    view_shift: float = 2.5
    noise: float = 0.05
    limit: int = 64

    def __post_init__(self) -> None:
        side = round(self.dim**0.5)
        if side * side != self.dim or side < 8:
            raise ValueError(
                f"dim={self.dim} must be a square side² with side ≥ 8 for {self.name} "
                "(e.g. dim=256 for 16×16)"
            )
        if isinstance(self.blobs, bool) or not isinstance(self.blobs, int) or self.blobs < 1:
            raise ValueError(f"blobs={self.blobs!r} must be a positive integer")
        for option in ("glyph_radius", "thickness"):
            value = getattr(self, option)
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{option}={value!r} must be a positive number")
        for option in ("jitter", "position_range", "view_shift", "noise"):
            value = getattr(self, option)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"{option}={value!r} must be a non-negative number")

    @property
    def side(self) -> int:
        """Image height and width."""
        return round(self.dim**0.5)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.side, self.side, 1)

    def cluster_limit(self) -> int:
        return self.limit

    def world(self, key: jax.Array, cell: Cell) -> jax.Array:
        """Prototype stroke offsets ``[max_clusters, blobs, 2]``, each glyph centred on its mean
        stroke; class ``c``'s glyph does not depend on ``max_clusters``."""
        offsets = indexed_normal(key, (self.max_clusters, 2 * self.blobs))
        offsets = self.glyph_radius * offsets.reshape(self.max_clusters, self.blobs, 2)
        return offsets - jnp.mean(offsets, axis=1, keepdims=True)

    def styled_anchors(
        self, key: jax.Array, world: jax.Array, cell: Cell, n: int
    ) -> tuple[Anchors, jax.Array]:
        """``n`` clean anchors ``[n, dim]`` with labels, and their style: positions ``[n, 2]``."""
        k_label, k_position, k_jitter = jax.random.split(key, 3)
        label = uniform_labels(k_label, cell.clusters, n)
        r = self.position_range
        position = jax.random.uniform(k_position, (n, 2), minval=-r, maxval=r)
        offsets = world[label] + self.jitter * jax.random.normal(k_jitter, (n, self.blobs, 2))
        offsets = offsets - jnp.mean(offsets, axis=1, keepdims=True)
        x = render_glyphs(offsets, position, self.thickness, self.side).reshape(n, self.dim)
        return Anchors(x, label, label), position

    def anchors(self, key: jax.Array, world: jax.Array, cell: Cell, n: int) -> Anchors:
        return self.styled_anchors(key, world, cell, n)[0]

    def augment(self, key: jax.Array, world: jax.Array, cell: Cell, x: jax.Array) -> jax.Array:
        """Translates each row by a uniform offset in ``[−view_shift, view_shift]²`` and adds
        noise, clipped to ``[0, 1]``."""
        n = x.shape[0]
        k_shift, k_noise = jax.random.split(key)
        a = self.view_shift
        shift = jax.random.uniform(k_shift, (n, 2), minval=-a, maxval=a)
        images = translate_images(x.reshape(n, self.side, self.side), shift[:, 0], shift[:, 1])
        noisy = images.reshape(n, self.dim) + self.noise * jax.random.normal(k_noise, x.shape)
        return jnp.clip(noisy, 0.0, 1.0)
