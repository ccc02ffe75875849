"""Encoders whose hidden width and output dimension vary per cell by padding and masking.

A cell of width ``w`` and output dimension ``k`` runs inside arrays padded to ``max_width`` and
``max_out_dim``. Padded units are masked so that they have exactly zero activation and zero
gradient, their weights start (and, under every optimiser here, stay) at zero, and initial scales
use the cell's true fan-in. Weights are drawn entry by entry from keys folded with the entry's
index (:func:`clj.random.indexed_normal`), so a masked cell starts from, and trains exactly like,
the unpadded network of its own width.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from clj.random import indexed_normal

__all__ = ["MaskedDense", "MaskedMLP", "unit_mask"]


def unit_mask(active: jax.Array | int, size: int) -> jax.Array:
    """``[size]`` float mask with ones on the first ``active`` units (``active`` may be traced)."""
    return (jnp.arange(size) < active).astype(jnp.float32)


class MaskedDense(nn.Module):
    """Dense layer ``x W + b`` over padded inputs and outputs.

    Attributes:
      features: padded number of outputs.
      gain: initial weights are ``N(0, gain² / fan_in)`` with ``fan_in`` the true input width.
    """

    features: int
    gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, in_mask: jax.Array, out_mask: jax.Array) -> jax.Array:
        """Maps ``x`` ``[B, n_in]`` to ``[B, features]``; masked outputs are exactly zero.

        Args:
          x: inputs whose masked columns are zero.
          in_mask: ``[n_in]`` 0/1 mask of active inputs (its sum is the true fan-in).
          out_mask: ``[features]`` 0/1 mask of active outputs.
        """
        n_in = x.shape[-1]

        def init_kernel(key: jax.Array) -> jax.Array:
            fan_in = jnp.maximum(jnp.sum(in_mask), 1.0)
            w = indexed_normal(key, (n_in, self.features)) * (self.gain / jnp.sqrt(fan_in))
            return w * in_mask[:, None] * out_mask[None, :]

        kernel = self.param("kernel", init_kernel)
        bias = self.param("bias", lambda key: jnp.zeros((self.features,), jnp.float32))
        return (x @ kernel + bias) * out_mask


class MaskedMLP(nn.Module):
    """ReLU MLP: ``depth`` hidden layers of (padded) width, then a linear map to the output.

    ``depth = 0`` is a linear encoder ``x ↦ W x + b``. Hidden layers use He initialisation
    (``gain = √2``), the output layer LeCun initialisation (``gain = 1``).

    Attributes:
      depth: number of hidden ReLU layers.
      max_width: padded hidden width.
      max_out_dim: padded output dimension.
    """

    depth: int
    max_width: int
    max_out_dim: int

    cell_inputs: ClassVar[tuple[str, ...]] = ("width", "out_dim")
    """The :class:`~clj.cell.Cell` fields passed after ``x``, in order."""

    @nn.compact
    def __call__(self, x: jax.Array, width: jax.Array, out_dim: jax.Array) -> jax.Array:
        """Encodes ``x`` ``[B, dim]`` to ``[B, max_out_dim]``.

        Args:
          x: inputs.
          width: the cell's true hidden width (scalar int, may be traced).
          out_dim: the cell's true output dimension (scalar int, may be traced).

        Returns:
          Representations whose columns ``out_dim ..`` are exactly zero.
        """
        in_mask = jnp.ones((x.shape[-1],), jnp.float32)
        hidden_mask = unit_mask(width, self.max_width)
        h = x
        for layer in range(self.depth):
            h = MaskedDense(self.max_width, gain=2.0**0.5, name=f"hidden_{layer}")(
                h, in_mask, hidden_mask
            )
            h = nn.relu(h)
            in_mask = hidden_mask
        out_mask = unit_mask(out_dim, self.max_out_dim)
        return MaskedDense(self.max_out_dim, name="out")(h, in_mask, out_mask)
