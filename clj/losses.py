"""Contrastive losses on a batch of positive pairs.

Every loss takes the two views' representations ``z1, z2`` of shape ``[B, k]`` (row ``i`` of ``z1``
and row ``i`` of ``z2`` form a positive pair) and returns a scalar. All are pure and safe under
``jax.jit``, ``jax.vmap`` and ``jax.grad``.

Output coordinates that are identically zero (the padded units of a masked encoder) leave
``spectral``, ``info_nce`` and ``t_info_nce`` unchanged; ``spectral_lambda`` takes the active-unit
mask explicitly because its identity target would otherwise count the padded units.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "LOSSES",
    "info_nce",
    "spectral",
    "spectral_lambda",
    "t_info_nce",
]


def _check_pair(z1: jax.Array, z2: jax.Array) -> None:
    chex.assert_rank([z1, z2], 2)
    chex.assert_equal_shape([z1, z2])


def spectral(z1: jax.Array, z2: jax.Array) -> jax.Array:
    """Spectral contrastive loss of HaoChen et al. (2021), without norm clipping.

    ``−(2/B) Σ_i z1_i·z2_i + 1/(B(B−1)) Σ_{i≠j} (z1_i·z2_j)²``.

    Args:
      z1, z2: ``[B, k]`` representations of the two views, ``B ≥ 2``.

    Returns:
      Scalar loss.
    """
    _check_pair(z1, z2)
    b = z1.shape[0]
    pair_dots = jnp.sum(z1 * z2, axis=1)  # [B]: z1_i·z2_i
    # Σ_{i,j} (z1_i·z2_j)² = ‖Z1 Z2ᵀ‖²_F = Σ (Z1ᵀZ1) ∘ (Z2ᵀZ2): O(B k²) instead of O(B² k).
    all_pairs = jnp.sum((z1.T @ z1) * (z2.T @ z2))
    off_diagonal = all_pairs - jnp.sum(pair_dots**2)
    return -2.0 * jnp.sum(pair_dots) / b + off_diagonal / (b * (b - 1))


def spectral_lambda(
    z1: jax.Array,
    z2: jax.Array,
    lam: float | jax.Array = 1.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    """HaoChen & Ma (2023)'s λ-form of the spectral loss.

    ``E‖f(x) − f(x⁺)‖² + λ‖E[f(x) f(x)ᵀ] − I‖²_F``, with the second moment estimated from both
    views' ``2B`` rows. At ``λ = 1`` it equals the population spectral loss up to a constant.

    Args:
      z1, z2: ``[B, k]`` representations of the two views.
      lam: weight of the covariance term (scalar, may be traced).
      mask: optional ``[k]`` 0/1 vector of the active output units; the identity target is
        restricted to them, so a zero-padded representation gives exactly the unpadded loss.

    Returns:
      Scalar loss.
    """
    _check_pair(z1, z2)
    b, k = z1.shape
    invariance = jnp.sum((z1 - z2) ** 2) / b
    rows = jnp.concatenate([z1, z2], axis=0)  # [2B, k]
    second_moment = rows.T @ rows / (2 * b)  # [k, k]
    target = jnp.eye(k, dtype=z1.dtype) if mask is None else jnp.diag(mask.astype(z1.dtype))
    return invariance + lam * jnp.sum((second_moment - target) ** 2)


def _pair_logits_mask(b: int) -> tuple[jax.Array, jax.Array]:
    """Index of each of the 2B stacked rows' positive partner, and the off-diagonal mask."""
    partner = jnp.concatenate([jnp.arange(b, 2 * b), jnp.arange(b)])
    not_self = ~jnp.eye(2 * b, dtype=bool)
    return partner, not_self


def info_nce(z1: jax.Array, z2: jax.Array, temperature: float | jax.Array = 0.5) -> jax.Array:
    """NT-Xent loss of SimCLR.

    The ``2B`` rows of ``[z1; z2]`` are compared by cosine similarity divided by ``temperature``;
    each row's positive is its partner view and its negatives the other ``2B − 2`` rows. The loss is
    the mean over all ``2B`` rows of the cross-entropy of picking the positive.

    Args:
      z1, z2: ``[B, k]`` representations of the two views.
      temperature: softmax temperature (scalar, may be traced).

    Returns:
      Scalar loss.
    """
    _check_pair(z1, z2)
    b = z1.shape[0]
    rows = jnp.concatenate([z1, z2], axis=0)  # [2B, k]
    norms = jnp.sqrt(jnp.sum(rows**2, axis=1, keepdims=True))
    unit = rows / jnp.maximum(norms, 1e-12)
    logits = unit @ unit.T / temperature  # [2B, 2B]
    partner, not_self = _pair_logits_mask(b)
    logits = jnp.where(not_self, logits, -jnp.inf)
    log_prob = jax.nn.log_softmax(logits, axis=1)
    return -jnp.mean(log_prob[jnp.arange(2 * b), partner])


def t_info_nce(
    z1: jax.Array,
    z2: jax.Array,
    temperature: float | jax.Array = 1.0,
    dof: float | jax.Array = 5.0,
) -> jax.Array:
    """t-SimCLR loss of Hu et al. (2023): InfoNCE with a Student-t kernel on raw rows.

    ``q_ij = (1 + ‖z_i − z_j‖² / (temperature·dof))^(−(dof+1)/2)`` over the ``2B`` stacked rows;
    ``loss_i = −log(q_{i,pos(i)} / Σ_{k≠i} q_ik)``, averaged over the ``2B`` rows.

    Args:
      z1, z2: ``[B, k]`` representations of the two views (not normalised).
      temperature: kernel scale (scalar, may be traced).
      dof: degrees of freedom of the Student-t kernel (scalar, may be traced).

    Returns:
      Scalar loss.
    """
    _check_pair(z1, z2)
    b = z1.shape[0]
    rows = jnp.concatenate([z1, z2], axis=0)  # [2B, k]
    sq_norms = jnp.sum(rows**2, axis=1)
    sq_dist = jnp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * rows @ rows.T, 0.0)
    log_q = -0.5 * (dof + 1.0) * jnp.log1p(sq_dist / (temperature * dof))  # [2B, 2B]
    partner, not_self = _pair_logits_mask(b)
    log_q = jnp.where(not_self, log_q, -jnp.inf)
    log_prob = log_q - jax.nn.logsumexp(log_q, axis=1, keepdims=True)
    return -jnp.mean(log_prob[jnp.arange(2 * b), partner])


LossFn = Callable[..., jax.Array]

LOSSES: dict[str, LossFn] = {
    "spectral": spectral,
    "spectral_lambda": spectral_lambda,
    "info_nce": info_nce,
    "t_info_nce": t_info_nce,
}
"""Losses by the name the command line and sweep configs use."""
