"""Geometry of a representation: alignment, uniformity, relative local density, neighbours.

``alignment`` and ``uniformity`` follow Wang & Isola (2020); ``rld`` is the relative local density
of Zhang et al. (2023) exactly as defined in DESIGN.md; ``neighbour_agreement`` is the label purity
of k-nearest-neighbour sets. All are safe under ``jax.jit`` and ``jax.vmap``.
"""

import math

import jax
import jax.numpy as jnp

from clj.metrics._distances import safe_sqrt, sq_euclidean

_EPS = 1e-8


def _normalise(z: jax.Array) -> jax.Array:
    """L2-normalise the rows of ``z`` ``[n, dim]``; all-zero rows stay zero."""
    sq_norm = jnp.sum(z * z, axis=-1, keepdims=True)
    return z * jax.lax.rsqrt(jnp.maximum(sq_norm, _EPS**2))


def alignment(z1: jax.Array, z2: jax.Array) -> jax.Array:
    """Alignment of positive pairs: ``mean_i ‖ẑ1_i − ẑ2_i‖²`` on L2-normalised rows.

    Args:
      z1: ``[B, k]`` first-view representations.
      z2: ``[B, k]`` second-view representations; row ``i`` is the positive of ``z1[i]``.

    Returns:
      Scalar float32 in ``[0, 4]`` (lower is better aligned).
    """
    z1 = _normalise(jnp.asarray(z1, jnp.float32))
    z2 = _normalise(jnp.asarray(z2, jnp.float32))
    return jnp.mean(jnp.sum((z1 - z2) ** 2, axis=-1))


def uniformity(z: jax.Array, t: float = 2.0) -> jax.Array:
    """Uniformity: ``log mean_{i≠j} exp(−t ‖ẑ_i − ẑ_j‖²)`` on L2-normalised rows.

    Args:
      z: ``[B, k]`` representations, ``B >= 2``.
      t: kernel scale.

    Returns:
      Scalar float32 ``<= 0`` (lower is more uniform).
    """
    z = _normalise(jnp.asarray(z, jnp.float32))
    n = z.shape[0]
    off_diagonal = ~jnp.eye(n, dtype=bool)
    logits = jnp.where(off_diagonal, -t * sq_euclidean(z, z), -jnp.inf)
    return jax.nn.logsumexp(logits) - math.log(n * (n - 1))


def rld_log_weights(x: jax.Array, temperature: float | jax.Array) -> jax.Array:
    """``log W`` of the relative-local-density graph of :func:`rld` (DESIGN.md's definition).

    With ``d_ij = ‖x_i − x_j‖ / √dim``, ``s_ij = −d_ij / mean_{i<j} d_ij``, ``s_ii = −∞`` and
    ``E = exp(s / temperature)``: ``W_ij = n² E_ij² / (r_i c_j)``, ``r`` and ``c`` the row and
    column sums of ``E``. Formed in log space (``logsumexp`` sums), so no temperature underflows.
    ``W`` is symmetric. If all points coincide the mean distance is taken as 1.

    Args:
      x: ``[n, dim]`` float features, ``n >= 2``.
      temperature: positive scalar (may be traced).

    Returns:
      ``[n, n]`` float32 ``log W``; ``−inf`` on the diagonal.
    """
    x = jnp.asarray(x, jnp.float32)
    n, dim = x.shape
    x = x - jnp.mean(x, axis=0)  # fewer cancellation errors in the Gram-form distances
    off_diagonal = ~jnp.eye(n, dtype=bool)
    d = safe_sqrt(jnp.where(off_diagonal, sq_euclidean(x, x), 0.0)) / math.sqrt(dim)
    mean_d = jnp.sum(d) / (n * (n - 1))  # diagonal is zero, so this is the mean over i < j
    mean_d = jnp.where(mean_d > 0, mean_d, 1.0)
    log_e = jnp.where(off_diagonal, -d / (mean_d * temperature), -jnp.inf)
    log_r = jax.nn.logsumexp(log_e, axis=1)
    log_c = jax.nn.logsumexp(log_e, axis=0)
    return 2.0 * math.log(n) + 2.0 * log_e - log_r[:, None] - log_c[None, :]


def rld(x: jax.Array, y: jax.Array, temperature: float | jax.Array) -> jax.Array:
    """Relative local density: Newman modularity of a locally normalised similarity graph.

    With ``d_ij = ‖x_i − x_j‖ / √dim``, ``s_ij = −d_ij / mean_{i<j} d_ij``, ``s_ii = −∞``,
    ``E = exp(s / temperature)``, ``W_ij = n² E_ij² / (r_i c_j)`` (``r``, ``c`` the row and column
    sums of ``E``), RLD is ``(1/2m) Σ_ij (W_ij − k_i k_j / 2m) [y_i = y_j]`` with
    ``k_i = Σ_j W_ij`` and ``2m = Σ_ij W_ij``.

    ``log W`` comes from :func:`rld_log_weights` and is exponentiated after subtracting its
    maximum, which modularity is invariant to, so small temperatures neither
    underflow nor overflow. If all points coincide the mean distance is taken as 1.

    Args:
      x: ``[n, dim]`` float features, ``n >= 2``.
      y: ``[n]`` int community labels (any integers; only equality matters).
      temperature: positive scalar (may be traced).

    Returns:
      Scalar float32 in ``[-1/2, 1)``.
    """
    log_w = rld_log_weights(x, temperature)
    w = jnp.exp(log_w - jax.lax.stop_gradient(jnp.max(log_w)))
    degree = jnp.sum(w, axis=1)
    two_m = jnp.sum(degree)
    same = y[:, None] == y[None, :]
    within = jnp.sum(jnp.where(same, w, 0.0))
    expected = jnp.sum(jnp.where(same, degree[:, None] * degree[None, :], 0.0)) / two_m
    return (within - expected) / two_m


def neighbour_agreement(x: jax.Array, y: jax.Array, k: int) -> jax.Array:
    """Fraction of each point's ``k`` nearest neighbours (itself excluded) sharing its label.

    Args:
      x: ``[n, dim]`` float features.
      y: ``[n]`` int labels.
      k: static number of neighbours, ``1 <= k < n``. Equidistant neighbours are ordered by
        index (lower first).

    Returns:
      Scalar float32 in ``[0, 1]``: the mean over points of their neighbours' label agreement.
    """
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    dists = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, sq_euclidean(x, x))
    _, nearest = jax.lax.top_k(-dists, k)  # [n, k]
    return jnp.mean((y[nearest] == y[:, None]).astype(jnp.float32))
