"""A 1-D CNN over patches, its channels masked to the cell's width, globally mean-pooled.

The input ``[n, P·L]`` is read as ``P`` positions of ``L`` features (the data family's
``input_shape``). Each layer is a circular convolution over positions with a kernel of
``kernel`` positions and stride one position, followed by ReLU; the pooled features (mean over
positions) go through a masked linear map to the output. Circular padding makes every layer
commute with cyclic shifts of the positions, so after the pooling the encoder is invariant to
them; with ``kernel = 1`` (one patch, the registered ``cnn1d``) it is even invariant to any
permutation of the patches. Channels beyond the cell's width are masked exactly as the MLP's
hidden units are (:mod:`clj.encoders.mlp`): zero activation and gradient, initial scales from the
true fan-in ``kernel · channels_in``, weights drawn entry by entry with
:func:`clj.random.indexed_normal` so a padded cell starts as its unpadded network.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from clj.encoders.mlp import MaskedDense, stored_param, unit_mask
from clj.random import indexed_normal

__all__ = ["MaskedCNN1D", "MaskedConv1D"]


class MaskedConv1D(nn.Module):
    """Circular 1-D convolution over positions with padded input and output channels.

    Output position ``p`` sees input positions ``p + j − kernel // 2 (mod P)``, ``j < kernel``.

    Attributes:
      features: padded number of output channels.
      kernel: kernel size in positions.
      gain: initial weights are ``N(0, gain² / (kernel · channels_in))`` with the true number of
        input channels.
    """

    features: int
    kernel: int = 1
    gain: float = 1.0

    @nn.compact
    def __call__(self, h: jax.Array, in_mask: jax.Array, out_mask: jax.Array) -> jax.Array:
        """Maps ``h`` ``[n, P, c_in]`` to ``[n, P, features]``; masked channels are exactly zero.

        Args:
          h: inputs whose masked channels are zero.
          in_mask: ``[c_in]`` 0/1 mask of active input channels.
          out_mask: ``[features]`` 0/1 mask of active output channels.
        """
        c_in = h.shape[-1]

        def init_kernel(key: jax.Array) -> jax.Array:
            fan_in = self.kernel * jnp.maximum(jnp.sum(in_mask), 1.0)
            w = indexed_normal(key, (self.kernel, c_in, self.features))
            w = w * (self.gain / jnp.sqrt(fan_in))
            return w * in_mask[None, :, None] * out_mask[None, None, :]

        kernel = stored_param(self, "kernel", (self.kernel, c_in, self.features), init_kernel)
        bias = stored_param(
            self, "bias", (self.features,), lambda key: jnp.zeros((self.features,), jnp.float32)
        )
        offsets = [j - self.kernel // 2 for j in range(self.kernel)]
        # windows[j][:, p] = h[:, (p + offsets[j]) mod P]
        windows = jnp.stack([jnp.roll(h, -offset, axis=1) for offset in offsets])
        out = jnp.einsum("knpc,kcf->npf", windows, kernel) + bias
        return out * out_mask


class MaskedCNN1D(nn.Module):
    """``depth`` circular conv + ReLU layers of (padded) width, mean pooling, a linear output.

    He initialisation (``gain = √2``) for the convolutions, LeCun (``gain = 1``) for the output.
    With ``depth = 0`` the encoder is linear in the mean of the patches.

    Attributes:
      depth: number of convolutional layers.
      max_width: padded number of channels.
      max_out_dim: padded output dimension.
      input_shape: ``(P, L)``: positions and features per position.
      kernel: kernel size in positions.
    """

    depth: int
    max_width: int
    max_out_dim: int
    input_shape: tuple[int, int]
    kernel: int = 1

    cell_inputs: ClassVar[tuple[str, ...]] = ("width", "out_dim")
    """The :class:`~clj.cell.Cell` fields passed after ``x``, in order."""

    @nn.compact
    def __call__(self, x: jax.Array, width: jax.Array, out_dim: jax.Array) -> jax.Array:
        """Encodes ``x`` ``[n, P·L]`` to ``[n, max_out_dim]``.

        Args:
          x: flat inputs, row-major ``[n, P, L]``.
          width: the cell's true number of channels (scalar int, may be traced).
          out_dim: the cell's true output dimension (scalar int, may be traced).

        Returns:
          Representations whose columns ``out_dim ..`` are exactly zero.
        """
        positions, features = self.input_shape
        h = x.reshape(x.shape[0], positions, features)
        in_mask = jnp.ones((features,), jnp.float32)
        hidden_mask = unit_mask(width, self.max_width)
        for layer in range(self.depth):
            h = MaskedConv1D(self.max_width, self.kernel, gain=2.0**0.5, name=f"conv_{layer}")(
                h, in_mask, hidden_mask
            )
            h = nn.relu(h)
            in_mask = hidden_mask
        pooled = jnp.mean(h, axis=1)
        out_mask = unit_mask(out_dim, self.max_out_dim)
        return MaskedDense(self.max_out_dim, name="out")(pooled, in_mask, out_mask)
