"""Encoders whose hidden width and output dimension vary per cell by padding and masking.

A cell of width ``w`` and output dimension ``k`` runs inside arrays padded to ``max_width`` and
``max_out_dim``. Padded units are masked so that they have exactly zero activation and zero
gradient, their weights start (and, under every optimiser here, stay) at zero, and initial scales
use the cell's true fan-in. Weights are drawn entry by entry from keys folded with the entry's
index (:func:`clj.random.indexed_normal`), so a masked cell starts from, and trains exactly like,
the unpadded network of its own width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from clj.random import indexed_normal

__all__ = ["MaskedDense", "MaskedMLP", "dense_product", "stored_param", "unit_mask"]


def stored_param(
    module: nn.Module, name: str, shape: tuple[int, ...], init: Callable[[jax.Array], jax.Array]
) -> jax.Array:
    """``module.param(name, init)``, without tracing ``init`` again each time the parameter
    already exists.

    Flax's ``param`` checks an existing parameter against ``jax.eval_shape`` of its initialiser on
    every ``apply``; for these layers that traces a Threefry draw per layer and call. Lowering the
    reference grid's five programs took 2.19-3.42 s (median 2.50) against 2.31-3.74 s (median
    3.11) before, in eight alternated pairs (2026-12-02, 2-core CPU). Here the check is against
    ``shape``.

    Raises:
      ValueError: naming the parameter, if it exists with another shape.
    """
    if not module.has_variable("params", name):
        return module.param(name, init)
    value = module.get_variable("params", name)
    if value.shape != shape:
        raise ValueError(f"parameter {name!r} has shape {value.shape}, expected {shape}")
    return value


def unit_mask(active: jax.Array | int, size: int) -> jax.Array:
    """``[size]`` float mask with ones on the first ``active`` units (``active`` may be traced)."""
    return (jnp.arange(size) < active).astype(jnp.float32)


def dense_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` for ``x`` ``[..., n_in]`` and ``kernel`` ``[n_in, n_out]``; on a CPU, a
    layer with fewer outputs than inputs gets its kernel gradient output-major.

    The kernel's gradient ``xᵀ g`` (``g`` the output's cotangent, ``[..., n_out]``) contracts
    the rows of both operands, a product XLA's CPU runtime hands to Eigen, which forms an
    ``[n_in, n_out]`` result with few columns slowly: for the reference grid's output layer
    (4 cells, 512 rows, 256 → 8) 1.1 ms, against 0.17 ms for ``(gᵀ x)ᵀ`` with the same values
    (2026-12-02, one core). Here reverse mode computes the latter; values, and forward- and
    reverse-mode derivatives, are those of ``x @ kernel``.
    """
    chex.assert_rank(kernel, 2)
    n_in, n_out = kernel.shape
    if jax.default_backend() == "cpu" and n_out < n_in:
        return _output_major_product(x, kernel)
    return x @ kernel


@jax.custom_jvp
def _output_major_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return x @ kernel


def _output_major_product_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    x, kernel = primals
    x_dot, kernel_dot = tangents
    out = x @ kernel
    tangent = jnp.zeros_like(out) if isinstance(x_dot, SymbolicZero) else x_dot @ kernel
    if not isinstance(kernel_dot, SymbolicZero):
        # The barrier keeps the transposed tangent kernel an array of its own, so that this
        # term's transpose (the kernel's gradient) is ``dot(g, x)`` then a transpose that XLA
        # cannot fold back into the product.
        kernel_dot_t = lax.optimization_barrier(kernel_dot.T)
        tangent = tangent + lax.dot_general(x, kernel_dot_t, (((x.ndim - 1,), (1,)), ((), ())))
    return out, tangent


_output_major_product.defjvp(_output_major_product_jvp, symbolic_zeros=True)


class MaskedDense(nn.Module):
    """Dense layer ``x W + b`` over padded inputs and outputs (the product by
    :func:`dense_product`).

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

        kernel = stored_param(self, "kernel", (n_in, self.features), init_kernel)
        bias = stored_param(
            self, "bias", (self.features,), lambda key: jnp.zeros((self.features,), jnp.float32)
        )
        return (dense_product(x, kernel) + bias) * out_mask


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
