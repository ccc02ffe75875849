"""HaoChen & Ma (2023) §5: an s-bit pattern at a random patch position, the other patches noise."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels

__all__ = ["Patches", "pattern_codes"]


def pattern_codes(patterns: jax.Array, bits: jax.Array, patch_len: int) -> jax.Array:
    """The ``±1`` code of each pattern value.

    Entry ``j < bits`` of pattern ``v``'s code is ``+1`` if bit ``j`` of ``v`` is set and ``−1``
    if not; entries ``j ≥ bits`` form a fixed carrier ``(−1)^j`` shared by every pattern, so
    distinct values always have distinct codes.

    Args:
      patterns: ``[n]`` int pattern values in ``0 .. 2^bits − 1``.
      bits: the number of bits ``s`` (scalar, may be traced).
      patch_len: the code length ``L`` (static).

    Returns:
      ``[n, patch_len]`` float32 codes.
    """
    j = jnp.arange(patch_len)
    bit = (patterns[:, None] >> jnp.minimum(j, 30)[None, :]) & 1
    carrier = jnp.where(j % 2 == 0, 1.0, -1.0)
    return jnp.where(j[None, :] < bits, 2.0 * bit - 1.0, carrier[None, :]).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Patches(DataFamily):
    """A signal of ``P = dim / patch_len`` patches of length ``L = patch_len``.

    One patch, at a uniformly random position, holds the ``±1`` code of an ``s``-bit pattern
    (:func:`pattern_codes`); every other patch is Gaussian noise ``N(0, noise² I_L)``. A cell's
    ``clusters`` sets ``s``; ``P`` follows from the static ``dim``. A view keeps the pattern and its
    position and re-draws every noise patch, so the augmentation graph's components are the
    ``P · 2^s`` (pattern, position) pairs: translation invariance is a property of the encoder, not
    of the augmentation. The pattern patch is recognised by its entries being exactly ``±1``
    (Gaussian noise hits that with probability zero), so :meth:`augment` needs no side channel.

    Labels: fine = the pattern value (``2^s`` classes); coarse = its first bit (2 classes).
    The family has no random structure: the world is an empty tuple.

    Attributes:
      patch_len: ``L``, the length of each patch; must divide ``dim``.
      noise: standard deviation of the noise patches.
      limit: the largest ``s`` accepted (also at most ``patch_len``).
    """

    name: ClassVar[str] = "patches"
    description: ClassVar[str] = (
        "dim/patch_len patches: a ±1 code of an s=clusters-bit pattern at a random position, "
        "Gaussian noise elsewhere; views re-draw the noise"
    )
    patch_len: int = 8
    noise: float = 0.5
    limit: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.patch_len, bool) or not isinstance(self.patch_len, int):
            raise ValueError(f"patch_len={self.patch_len!r} must be a positive integer")
        if self.patch_len < 1:
            raise ValueError(f"patch_len={self.patch_len} must be a positive integer")
        if self.dim % self.patch_len:
            raise ValueError(
                f"dim={self.dim} is not a multiple of patch_len={self.patch_len} for patches"
            )
        if not self.noise > 0:
            raise ValueError(f"noise={self.noise} must be positive for patches")

    @property
    def num_patches(self) -> int:
        """``P``, the number of patches."""
        return self.dim // self.patch_len

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.num_patches, self.patch_len)

    def cluster_limit(self) -> int:
        return min(self.patch_len, self.limit)

    def check_clusters(self, clusters: int) -> None:
        if not 1 <= clusters <= self.cluster_limit():
            raise ValueError(
                f"clusters={clusters} (pattern bits s) is outside 1..{self.cluster_limit()} for "
                f"patches with patch_len={self.patch_len}"
            )

    @property
    def num_fine_classes(self) -> int:
        return 2**self.max_clusters

    @property
    def num_coarse_classes(self) -> int:
        return 2

    def fine_count(self, cell: Cell) -> jax.Array:
        return 2**cell.clusters

    def world(self, key: jax.Array, cell: Cell) -> tuple:
        """Nothing: the codes are fixed (:func:`pattern_codes`)."""
        del key, cell
        return ()

    def anchors(self, key: jax.Array, world: tuple, cell: Cell, n: int) -> Anchors:
        """``n`` signals ``[n, dim]`` (row-major ``[n, P, L]``), pattern labels and first bits."""
        k_pattern, k_position, k_noise = jax.random.split(key, 3)
        patterns = uniform_labels(k_pattern, 2**cell.clusters, n)
        position = jax.random.randint(k_position, (n,), 0, self.num_patches)
        x = self._noise(k_noise, n)
        codes = pattern_codes(patterns, cell.clusters, self.patch_len)
        at = jnp.arange(self.num_patches)[None, :, None] == position[:, None, None]
        x = jnp.where(at, codes[:, None, :], x)
        return Anchors(x.reshape(n, self.dim), patterns, patterns & 1)

    def augment(self, key: jax.Array, world: tuple, cell: Cell, x: jax.Array) -> jax.Array:
        """Keeps each row's pattern patch (entries exactly ``±1``) and re-draws the others."""
        n = x.shape[0]
        patches = x.reshape(n, *self.input_shape)
        is_pattern = jnp.all(jnp.abs(patches) == 1.0, axis=-1, keepdims=True)
        return jnp.where(is_pattern, patches, self._noise(key, n)).reshape(n, self.dim)

    def pattern_position(self, x: jax.Array) -> jax.Array:
        """``[n]`` int32 index of each row's pattern patch (``x`` is ``[n, dim]``)."""
        patches = x.reshape(x.shape[0], *self.input_shape)
        return jnp.argmax(jnp.all(jnp.abs(patches) == 1.0, axis=-1), axis=-1).astype(jnp.int32)

    def _noise(self, key: jax.Array, n: int) -> jax.Array:
        return self.noise * jax.random.normal(key, (n, *self.input_shape))
