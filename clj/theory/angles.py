"""Principal angles between subspaces (host-side NumPy analysis)."""

from __future__ import annotations

import numpy as np

__all__ = ["orthonormal_basis", "principal_angles"]


def orthonormal_basis(a: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """An orthonormal basis ``[d, r]`` of the column span of ``a`` ``[d, p]`` (``r`` = its rank).

    Directions whose singular value is below ``rtol`` times the largest are treated as absent.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a [d, p] matrix, got shape {a.shape}")
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    return u[:, s > rtol * s[0]]


def principal_angles(a: np.ndarray, b: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Principal angles between the column spans of ``a`` ``[d, p]`` and ``b`` ``[d, q]``.

    Cosines are the singular values of ``Q_aᵀ Q_b`` (orthonormal bases of the spans); angles whose
    cosine is above ``1/√2`` are taken from the sines (singular values of ``Q_b − Q_a Q_aᵀ Q_b``)
    instead, which keeps small angles accurate.

    Args:
      a, b: matrices whose column spans are compared (pass ``Wᵀ`` for the row span of ``W``).
      degrees: return degrees (default) or radians.

    Returns:
      ``[min(rank a, rank b)]`` angles in increasing order, in ``[0°, 90°]``.
    """
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    if qa.shape[0] != qb.shape[0]:
        raise ValueError(f"a has {qa.shape[0]} rows but b has {qb.shape[0]}")
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    r = qb.shape[1]
    overlap = qa.T @ qb  # [p, r]
    cosines = np.clip(np.linalg.svd(overlap, compute_uv=False)[:r], 0.0, 1.0)  # decreasing
    residual = qb - qa @ overlap
    sines = np.clip(np.linalg.svd(residual, compute_uv=False)[:r], 0.0, 1.0)[::-1]  # increasing
    angles = np.where(cosines**2 >= 0.5, np.arcsin(sines), np.arccos(cosines))
    return np.degrees(angles) if degrees else angles
