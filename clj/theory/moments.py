"""Second moments of the views a trainer sees: ``Σ = E[x xᵀ]``, ``C = E[x x⁺ᵀ]`` and ``E[x]``.

Closed forms exist for the hypercube and the 2×2 grid; any family's moments can be estimated by
Monte Carlo through its own pure sampler (the same ``world`` the trainer draws for the seed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clj.cell import Cell, one_cell
from clj.data import DataFamily, Grid2x2, Hypercube
from clj.random import seed_key
from clj.train import cell_keys

__all__ = ["CLOSED_FORMS", "Moments", "make_cell", "monte_carlo_moments", "second_moments"]


class Moments(NamedTuple):
    """Moments of one view ``x`` and a positive pair ``(x, x⁺)`` (float64, host).

    Attributes:
      sigma: ``[d, d]`` ``E[x xᵀ]``.
      cross: ``[d, d]`` ``(E[x x⁺ᵀ] + E[x⁺ xᵀ]) / 2``.
      mean: ``[d]`` ``E[x]``.
    """

    sigma: np.ndarray
    cross: np.ndarray
    mean: np.ndarray


def make_cell(clusters: int, seed: int = 0, **values: float) -> Cell:
    """A single cell (scalar fields) with ``clusters`` and ``seed``; other fields default."""
    return one_cell(seed=seed, clusters=clusters, **values)


def _hypercube(family: Hypercube, clusters: int) -> Moments:
    """Invariant coordinates: ``E[x²] = E[x x⁺] = 1``; others ``E[τ²] = 1/3``, ``E[τ]² = 1/4``."""
    invariant = np.arange(family.dim) < clusters
    sigma = np.diag(np.where(invariant, 1.0, 1.0 / 3.0))
    cross = np.diag(np.where(invariant, 1.0, 1.0 / 4.0))
    return Moments(sigma, cross, np.zeros(family.dim))


def _grid2x2(family: Grid2x2, clusters: int) -> Moments:
    """Corners ``c`` uniform over the first ``clusters``; anchor scatter and view noise uniform.

    ``Σ = E[c cᵀ] + (spread² + noise²)/3 · I``, ``C = E[c cᵀ] + spread²/3 · I``, ``E[x] = E[c]``.
    """
    corner = np.arange(clusters)
    centres = np.zeros((clusters, family.dim))
    centres[:, 0] = (corner % 2 - 0.5) * family.spacing
    centres[:, 1] = (corner // 2 - 0.5) * family.spacing
    outer = centres.T @ centres / clusters
    eye = np.eye(family.dim)
    return Moments(
        outer + (family.spread**2 + family.noise**2) / 3.0 * eye,
        outer + family.spread**2 / 3.0 * eye,
        centres.mean(axis=0),
    )


CLOSED_FORMS: dict[type[DataFamily], Callable[[DataFamily, int], Moments]] = {
    Hypercube: _hypercube,
    Grid2x2: _grid2x2,
}
"""Families whose moments have a closed form: ``(family, clusters) -> Moments``."""


_MOMENTS_STREAM = 97
"""Fold-in index of the seed's key for Monte Carlo pairs (training uses 0..4)."""


def _gram(a: jax.Array, b: jax.Array) -> jax.Array:
    """``aᵀ b`` ``[d, d]`` at full float32 precision."""
    return jnp.matmul(a.T, b, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _sums(family: DataFamily, cell: Cell, batches: int, batch: int) -> tuple[jax.Array, ...]:
    world = family.world(cell_keys(cell.seed)["world"], cell)
    key = jax.random.fold_in(seed_key(cell.seed), _MOMENTS_STREAM)
    d = family.dim

    def body(carry, i):
        x = family.sample_pair(jax.random.fold_in(key, i), world, cell, batch)  # [2, n, d]
        sigma, cross, total = carry
        sigma = sigma + _gram(x[0], x[0]) + _gram(x[1], x[1])
        cross = cross + _gram(x[0], x[1])
        return (sigma, cross, total + jnp.sum(x, axis=(0, 1))), None

    zeros = (jnp.zeros((d, d)), jnp.zeros((d, d)), jnp.zeros((d,)))
    (sigma, cross, total), _ = jax.lax.scan(body, zeros, jnp.arange(batches))
    return sigma, cross, total


def monte_carlo_moments(
    family: DataFamily, cell: Cell, samples: int = 2**18, batch: int = 8192
) -> Moments:
    """Monte Carlo moments from ``samples`` positive pairs drawn by ``family.sample_pair``.

    The world is the one the trainer draws for ``cell.seed``; the pairs come from a key of the
    seed that training never uses. Sums run in a jitted ``lax.scan`` over batches of ``batch``.

    Returns:
      :class:`Moments` as float64 host arrays; ``samples`` is rounded up to whole batches.
    """
    if samples < 1 or batch < 1:
        raise ValueError(f"samples={samples} and batch={batch} must be positive")
    batch = min(batch, samples)
    batches = -(-samples // batch)
    sigma, cross, total = (np.asarray(a, np.float64) for a in _sums(family, cell, batches, batch))
    n = batches * batch
    cross = cross / n
    return Moments(sigma / (2 * n), (cross + cross.T) / 2, total / (2 * n))


def second_moments(
    family: DataFamily,
    clusters: int,
    seed: int = 0,
    method: str = "auto",
    samples: int = 2**18,
) -> Moments:
    """Moments of the views a cell with ``clusters`` and ``seed`` trains on.

    Args:
      family: the data family.
      clusters: the cell's ``clusters`` value.
      seed: the cell's seed (its world; closed forms do not depend on it).
      method: ``"closed"`` (raises for a family without a closed form), ``"monte_carlo"``, or
        ``"auto"`` (closed form where one exists, else Monte Carlo).
      samples: positive pairs for Monte Carlo.

    Returns:
      :class:`Moments` (``[d, d]``, ``[d, d]``, ``[d]``).
    """
    family.check_clusters(clusters)
    closed = CLOSED_FORMS.get(type(family))
    if method not in ("auto", "closed", "monte_carlo"):
        raise ValueError(f"method={method!r} must be 'auto', 'closed' or 'monte_carlo'")
    if method == "closed" and closed is None:
        raise ValueError(f"data family {family.name!r} has no closed-form moments")
    if closed is not None and method != "monte_carlo":
        return closed(family, clusters)
    return monte_carlo_moments(family, make_cell(clusters, seed), samples)
