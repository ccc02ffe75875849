"""The population spectral loss of linear encoders and its closed-form minimiser.

For a linear encoder ``f(x) = W x`` with ``W`` ``[k, d]``, the population spectral contrastive loss
(HaoChen et al. 2021) depends on the data only through two second moments of the views the
trainer sees: ``Σ = E[x xᵀ]`` and the (symmetrised) cross moment ``C = E[x x⁺ᵀ]`` of a positive
pair ``(x, x⁺)``:

    L(W) = −2 tr(W C Wᵀ) + ‖W Σ Wᵀ‖²_F.

Whitening with ``V = W Σ^{1/2}`` turns it into ``−2 tr(V T Vᵀ) + ‖V Vᵀ‖²_F`` with
``T = Σ^{−1/2} C Σ^{−1/2}``, minimised (Eckart–Young) by the top-``k`` eigenpairs ``(λ_i, u_i)`` of
``T``: ``W = diag(√max(λ_i, 0)) Uᵀ Σ^{−1/2}`` and ``L = −Σ_i max(λ_i, 0)²``.

An *affine* encoder ``f(x) = W x + b`` is the linear encoder of ``(x, 1)``; :func:`affine_moments`
gives that input's moments, so the same closed form covers it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = [
    "affine_moments",
    "inverse_sqrt",
    "linear_spectral_optimum",
    "population_spectral_loss",
    "whitened_cross",
]


def _square(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square [d, d] matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite entries")
    return a


def inverse_sqrt(sigma: np.ndarray) -> np.ndarray:
    """``Σ^{−1/2}`` ``[d, d]`` of a symmetric positive-definite ``Σ`` ``[d, d]`` (float64, host).

    Raises:
      ValueError: naming the smallest eigenvalue if ``Σ`` is not positive definite.
    """
    sigma = _square("sigma", sigma)
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    if values[0] <= 1e-12 * max(values[-1], 1e-300):
        raise ValueError(
            f"sigma is not positive definite (smallest eigenvalue {values[0]:.3g}); "
            "drop constant input directions first"
        )
    return (vectors / np.sqrt(values)) @ vectors.T


def whitened_cross(sigma: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """``T = Σ^{−1/2} C_s Σ^{−1/2}`` ``[d, d]`` with ``C_s = (C + Cᵀ)/2`` (float64, host)."""
    sigma = _square("sigma", sigma)
    cross = _square("cross", cross)
    if cross.shape != sigma.shape:
        raise ValueError(f"cross has shape {cross.shape} but sigma has {sigma.shape}")
    root = inverse_sqrt(sigma)
    t = root @ ((cross + cross.T) / 2) @ root
    return (t + t.T) / 2


def linear_spectral_optimum(
    sigma: np.ndarray, cross: np.ndarray, k: int
) -> tuple[np.ndarray, float]:
    """The minimiser of the population spectral loss over linear encoders ``f(x) = W x``.

    Args:
      sigma: ``[d, d]`` second moment ``E[x xᵀ]`` of the views (positive definite).
      cross: ``[d, d]`` cross moment ``E[x x⁺ᵀ]`` of positive pairs (symmetrised here).
      k: representation dimension, ``1 ≤ k ≤ d``.

    Returns:
      ``(W, loss)``: ``W`` ``[k, d]`` float64 equal to ``diag(√max(λ_i, 0)) Uᵀ Σ^{−1/2}`` for the
      top-``k`` eigenpairs ``(λ_i, u_i)`` of ``Σ^{−1/2} C Σ^{−1/2}`` (rows in decreasing ``λ``),
      and the minimum ``loss = −Σ_i max(λ_i, 0)²``. Rows of eigenvalues ``≤ 0`` are zero.

    Raises:
      ValueError: naming the bad value, for non-square or mismatched moments, a ``sigma`` that is
        not positive definite, or ``k`` outside ``1..d``.
    """
    t = whitened_cross(sigma, cross)
    d = t.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= d:
        raise ValueError(f"k={k!r} must be an integer in 1..{d}")
    values, vectors = np.linalg.eigh(t)
    order = np.argsort(values)[::-1][:k]
    top = np.maximum(values[order], 0.0)
    w = (np.sqrt(top)[:, None] * vectors[:, order].T) @ inverse_sqrt(sigma)
    return w, float(-np.sum(top**2))


def population_spectral_loss(w, sigma, cross):
    """``−2 tr(W C Wᵀ) + ‖W Σ Wᵀ‖²_F`` for ``W`` ``[k, d]`` and moments ``[d, d]``.

    Plain ``jax.numpy`` (no linear-algebra library call): differentiable, and safe under ``jit``
    and ``vmap``. ``cross`` need not be symmetric (only its symmetric part matters).

    Returns:
      Scalar loss.
    """
    w = jnp.asarray(w)
    if w.ndim != 2 or w.shape[1] != jnp.shape(sigma)[0]:
        raise ValueError(f"W must be [k, d] with d = {jnp.shape(sigma)[0]}, got shape {w.shape}")
    gram = w @ jnp.asarray(sigma) @ w.T
    return -2.0 * jnp.trace(w @ jnp.asarray(cross) @ w.T) + jnp.sum(gram**2)


def affine_moments(
    sigma: np.ndarray, cross: np.ndarray, mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Moments of the input ``(x, 1)``, so that ``f(x) = W x + b`` is linear in it.

    Args:
      sigma, cross: ``[d, d]`` moments of ``x``.
      mean: ``[d]`` mean ``E[x]`` (the same for both views of a positive pair).

    Returns:
      ``(sigma', cross')``, each ``[d + 1, d + 1]``: ``[[Σ, μ], [μᵀ, 1]]`` and
      ``[[C, μ], [μᵀ, 1]]``.
      The loss of ``(W, b)`` is ``population_spectral_loss([W | b], sigma', cross')``.
    """
    sigma = _square("sigma", sigma)
    cross = _square("cross", cross)
    mean = np.asarray(mean, dtype=np.float64)
    if mean.shape != (sigma.shape[0],):
        raise ValueError(f"mean must have shape ({sigma.shape[0]},), got {mean.shape}")

    def border(m: np.ndarray) -> np.ndarray:
        return np.block([[m, mean[:, None]], [mean[None, :], np.ones((1, 1))]])

    return border(sigma), border(cross)
