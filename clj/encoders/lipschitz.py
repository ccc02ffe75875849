"""A ReLU MLP whose ℓ2 → ℓ2 Lipschitz constant is at most a per-cell cap.

Each of the ``depth + 1`` layers ``x ↦ x W + b`` is used as ``x ↦ x W / s + b`` with
``s = max(1, σ̂(W) / c)`` and ``c = cap^(1 / (depth + 1))``, where ``σ̂(W) ≥ σ_max(W)`` is the
upper bound of :func:`spectral_norm_bound`. Every layer is then at most ``c``-Lipschitz, ReLU and
the 0/1 output mask are 1-Lipschitz, so the network is at most ``cap``-Lipschitz. An infinite cap
gives ``s = 1``: exactly the plain :class:`~clj.encoders.mlp.MaskedMLP` with the same parameters.

The bound is stateless (no carried power-iteration vector) and uses only matrix products, so it
is safe under ``jit``, ``vmap`` and ``grad`` and calls no LAPACK routine.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from clj.encoders.mlp import MaskedDense, unit_mask

__all__ = ["LipschitzMLP", "capped_kernel", "spectral_norm_bound"]

_TINY = 1e-30
HIGHEST = jax.lax.Precision.HIGHEST


def _safe_norm(a: jax.Array) -> jax.Array:
    """Frobenius norm, floored at ``√1e-30`` so that its gradient stays finite."""
    return jnp.sqrt(jnp.maximum(jnp.sum(a * a), _TINY))


def spectral_norm_bound(w: jax.Array, squarings: int = 8) -> jax.Array:
    """An upper bound on the largest singular value of ``w``, tight to a factor ``r^(1/4p)``.

    With ``A = WᵀW`` (or ``WWᵀ``, whichever is smaller) and ``p = 2^squarings``,
    ``σ_max(W)^(2p) = ‖A^p‖_2 ≤ ‖A^p‖_F ≤ √r · σ_max(W)^(2p)`` with ``r`` the rank of ``W``, so
    ``‖A^p‖_F^(1/2p)`` lies in ``[σ_max, σ_max · r^(1/(4p))]``. ``A^p`` is formed by ``squarings``
    repeated squarings (the matrix power method), each renormalised to unit Frobenius norm, with
    the logarithms of the norms accumulated: ``log σ̂ = ½ Σ_i 2^(−i) log ‖B_i‖_F``. For
    ``squarings = 8`` and rank ≤ 1024 the bound overestimates ``σ_max`` by less than 0.7%.
    Zero rows and columns (masked units) change neither ``σ_max`` nor the bound.

    Args:
      w: ``[m, n]`` matrix.
      squarings: number of squarings ``≥ 0``.

    Returns:
      Scalar float32 ``σ̂ ≥ σ_max(w)`` (about ``1e-15`` for an all-zero ``w``).
    """
    if squarings < 0:
        raise ValueError(f"squarings={squarings} must be ≥ 0")
    w = jnp.asarray(w, jnp.float32)
    a = jnp.matmul(w.T, w, precision=HIGHEST) if w.shape[1] <= w.shape[0] else None
    if a is None:
        a = jnp.matmul(w, w.T, precision=HIGHEST)
    norm = _safe_norm(a)
    log_bound = jnp.log(norm)
    b = a / norm
    for i in range(1, squarings + 1):
        b = jnp.matmul(b, b, precision=HIGHEST)
        norm = _safe_norm(b)
        log_bound = log_bound + jnp.log(norm) / 2.0**i
        b = b / norm
    return jnp.exp(0.5 * log_bound)


def capped_kernel(
    kernel: jax.Array,
    in_mask: jax.Array,
    out_mask: jax.Array,
    cap: jax.Array | float,
    squarings: int = 8,
) -> jax.Array:
    """The kernel a capped layer applies: ``masked W / max(1, σ̂(masked W) / cap)``.

    Args:
      kernel: ``[n_in, n_out]`` padded kernel.
      in_mask: ``[n_in]`` 0/1 mask of active inputs.
      out_mask: ``[n_out]`` 0/1 mask of active outputs.
      cap: the layer's Lipschitz cap ``> 0`` (scalar, may be traced, may be ``inf``).
      squarings: of :func:`spectral_norm_bound`.

    Returns:
      ``[n_in, n_out]`` kernel with spectral norm ``≤ cap`` (up to float32 rounding), zero outside
      the active block; equal to the masked ``kernel`` where ``σ̂ ≤ cap``.
    """
    w = kernel * in_mask[:, None] * out_mask[None, :]
    return w / _scale(w, cap, squarings)


def _scale(w: jax.Array, cap: jax.Array | float, squarings: int) -> jax.Array:
    """``max(1, σ̂(w) / cap)``: 1 exactly for an infinite cap."""
    return jnp.maximum(1.0, spectral_norm_bound(w, squarings) / cap)


class LipschitzMLP(nn.Module):
    """ReLU MLP of :class:`MaskedMLP`'s shape, parameters and initialisation, capped to be
    ``lipschitz``-Lipschitz (ℓ2 → ℓ2) per cell.

    Attributes:
      depth: number of hidden ReLU layers (``depth + 1`` capped layers in all).
      max_width: padded hidden width.
      max_out_dim: padded output dimension.
      squarings: of :func:`spectral_norm_bound`.
    """

    depth: int
    max_width: int
    max_out_dim: int
    squarings: int = 8

    cell_inputs: ClassVar[tuple[str, ...]] = ("width", "out_dim", "lipschitz")
    """The :class:`~clj.cell.Cell` fields passed after ``x``, in order."""

    @nn.compact
    def __call__(
        self, x: jax.Array, width: jax.Array, out_dim: jax.Array, lipschitz: jax.Array
    ) -> jax.Array:
        """Encodes ``x`` ``[B, dim]`` to ``[B, max_out_dim]``.

        Args:
          x: inputs.
          width: the cell's true hidden width (scalar int, may be traced).
          out_dim: the cell's true output dimension (scalar int, may be traced).
          lipschitz: the cell's cap ``> 0`` on the network's Lipschitz constant (scalar, may be
            ``inf``).

        Returns:
          Representations whose columns ``out_dim ..`` are exactly zero. Each layer's applied
          kernel is sown as ``intermediates/kernel_<layer>`` (``[n_in, n_out]``).
        """
        per_layer = jnp.asarray(lipschitz, jnp.float32) ** (1.0 / (self.depth + 1))
        in_mask = jnp.ones((x.shape[-1],), jnp.float32)
        hidden_mask = unit_mask(width, self.max_width)
        out_mask = unit_mask(out_dim, self.max_out_dim)
        h = x
        for layer in range(self.depth + 1):
            last = layer == self.depth
            dense = (
                MaskedDense(self.max_out_dim, name="out")
                if last
                else MaskedDense(self.max_width, gain=2.0**0.5, name=f"hidden_{layer}")
            )
            mask = out_mask if last else hidden_mask
            if self.is_initializing():
                dense(h, in_mask, mask)  # creates the parameters
            w = dense.variables["params"]["kernel"] * in_mask[:, None] * mask[None, :]
            scale = _scale(w, per_layer, self.squarings)
            self.sow("intermediates", f"kernel_{layer}", w / scale)
            # x (W / s) + b computed as (x / s) W + b: the plain layer on rescaled inputs.
            h = dense(h / scale, in_mask, mask)
            if not last:
                h = nn.relu(h)
                in_mask = hidden_mask
        return h
