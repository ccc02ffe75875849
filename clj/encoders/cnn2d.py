"""A 2-D CNN over images, its channels masked to the cell's width, globally average-pooled.

The input ``[n, H·W·C]`` is read as row-major ``[n, H, W, C]`` images (the data family's
``input_shape``). Each of ``depth`` layers is a 3×3 convolution with stride 1 and zero ("SAME")
padding, followed by ReLU; the channel means over all positions go through a masked linear map
to the output. Channels beyond the cell's width are masked exactly as the MLP's hidden units are
(:mod:`clj.encoders.mlp`): zero activation and gradient, initial scales from the true fan-in
``3 · 3 · channels_in``, weights drawn entry by entry with :func:`clj.random.indexed_normal` so a
padded cell starts as, and trains like, its unpadded network.

A sweep vmaps the encoder over cells with per-cell kernels, which turns XLA's convolution into a
grouped one; XLA's CPU backend runs those slowly, so on the CPU a convolution is computed as nine
shifted copies of the input times the kernel (im2col: a batched matrix product under vmap),
elsewhere with ``lax.conv_general_dilated``. Both give the same result up to float rounding.
"""

from __future__ import annotations

from typing import ClassVar

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from clj.encoders.mlp import MaskedDense, stored_param, unit_mask
from clj.random import indexed_normal

__all__ = ["CONV_METHODS", "MaskedCNN2D", "MaskedConv2D", "conv2d_same"]

CONV_METHODS = ("auto", "im2col", "xla")


def conv2d_same(h: jax.Array, kernel: jax.Array, method: str = "auto") -> jax.Array:
    """Stride-1, zero-padded ("SAME") 2-D convolution (cross-correlation, as in deep learning).

    With ``p = s // 2`` and ``h`` zero outside the image:
    ``out[n, r, c, f] = Σ_{i, j, ch} h[n, r + i − p, c + j − p, ch] · kernel[i, j, ch, f]``.

    Args:
      h: ``[n, H, W, c_in]`` inputs.
      kernel: ``[s, s, c_in, c_out]`` weights, ``s`` odd.
      method: ``"im2col"`` (shifted copies and one matrix product), ``"xla"``
        (``lax.conv_general_dilated``) or ``"auto"`` (im2col on the CPU, xla elsewhere).

    Returns:
      ``[n, H, W, c_out]``.
    """
    if method not in CONV_METHODS:
        raise ValueError(f"unknown convolution method {method!r}; choose from {CONV_METHODS}")
    if method == "auto":
        method = "im2col" if jax.default_backend() == "cpu" else "xla"
    size = kernel.shape[0]
    chex.assert_shape(kernel, (size, size, h.shape[-1], None))
    if method == "xla":
        return jax.lax.conv_general_dilated(
            h, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    height, width = h.shape[1], h.shape[2]
    pad = size // 2
    padded = jnp.pad(h, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    columns = jnp.concatenate(
        [padded[:, i : i + height, j : j + width, :] for i in range(size) for j in range(size)],
        axis=-1,
    )  # [n, H, W, s·s·c_in], ordered (i, j, ch) like the kernel's reshape
    return columns @ kernel.reshape(-1, kernel.shape[-1])


class MaskedConv2D(nn.Module):
    """``size × size`` convolution, stride 1, zero padding, over padded input/output channels.

    Attributes:
      features: padded number of output channels.
      size: kernel height and width (odd).
      gain: initial weights are ``N(0, gain² / (size² · channels_in))`` with the true number of
        input channels.
      method: how to compute the convolution (:func:`conv2d_same`).
    """

    features: int
    size: int = 3
    gain: float = 1.0
    method: str = "auto"

    @nn.compact
    def __call__(self, h: jax.Array, in_mask: jax.Array, out_mask: jax.Array) -> jax.Array:
        """Maps ``h`` ``[n, H, W, c_in]`` to ``[n, H, W, features]``; masked channels are zero.

        Args:
          h: inputs whose masked channels are zero.
          in_mask: ``[c_in]`` 0/1 mask of active input channels.
          out_mask: ``[features]`` 0/1 mask of active output channels.
        """
        chex.assert_rank(h, 4)
        c_in = h.shape[-1]

        def init_kernel(key: jax.Array) -> jax.Array:
            fan_in = self.size**2 * jnp.maximum(jnp.sum(in_mask), 1.0)
            w = indexed_normal(key, (self.size, self.size, c_in, self.features))
            w = w * (self.gain / jnp.sqrt(fan_in))
            return w * in_mask[None, None, :, None] * out_mask[None, None, None, :]

        kernel = stored_param(
            self, "kernel", (self.size, self.size, c_in, self.features), init_kernel
        )
        bias = stored_param(
            self, "bias", (self.features,), lambda key: jnp.zeros((self.features,), jnp.float32)
        )
        out = conv2d_same(h, kernel, self.method)
        return (out + bias) * out_mask


class MaskedCNN2D(nn.Module):
    """``depth`` 3×3 conv + ReLU layers of (padded) width, global average pooling, linear output.

    He initialisation (``gain = √2``) for the convolutions, LeCun (``gain = 1``) for the output.
    With ``depth = 0`` the encoder is linear in the images' channel means.

    Attributes:
      depth: number of convolutional layers.
      max_width: padded number of channels.
      max_out_dim: padded output dimension.
      input_shape: ``(H, W, C)`` of one image.
      method: how to compute the convolutions (:func:`conv2d_same`).
    """

    depth: int
    max_width: int
    max_out_dim: int
    input_shape: tuple[int, int, int]
    method: str = "auto"

    cell_inputs: ClassVar[tuple[str, ...]] = ("width", "out_dim")
    """The :class:`~clj.cell.Cell` fields passed after ``x``, in order."""

    @nn.compact
    def __call__(self, x: jax.Array, width: jax.Array, out_dim: jax.Array) -> jax.Array:
        """Encodes ``x`` ``[n, H·W·C]`` to ``[n, max_out_dim]``.

        Args:
          x: flat inputs, row-major ``[n, H, W, C]``.
          width: the cell's true number of channels (scalar int, may be traced).
          out_dim: the cell's true output dimension (scalar int, may be traced).

        Returns:
          Representations whose columns ``out_dim ..`` are exactly zero.
        """
        height, wide, channels = self.input_shape
        chex.assert_shape(x, (None, height * wide * channels))
        h = x.reshape(x.shape[0], height, wide, channels)
        in_mask = jnp.ones((channels,), jnp.float32)
        hidden_mask = unit_mask(width, self.max_width)
        for layer in range(self.depth):
            conv = MaskedConv2D(
                self.max_width, gain=2.0**0.5, method=self.method, name=f"conv_{layer}"
            )
            h = conv(h, in_mask, hidden_mask)
            h = nn.relu(h)
            in_mask = hidden_mask
        pooled = jnp.mean(h, axis=(1, 2))
        out_mask = unit_mask(out_dim, self.max_out_dim)
        return MaskedDense(self.max_out_dim, name="out")(pooled, in_mask, out_mask)
