"""Finite distributions with an augmentation, whose graphs can be built exactly.

Each builder returns a :class:`DiscreteDistribution`: the views' coordinates, the augmentation
graph over them and a label per view, so the graph's spectrum and the linear theory can be
compared on one distribution.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from clj.theory.graph import AugmentationGraph, graph_from_augmentation
from clj.theory.moments import Moments

__all__ = ["DiscreteDistribution", "discrete_grid2x2", "discrete_hypercube", "discrete_moments"]


class DiscreteDistribution(NamedTuple):
    """A finite set of views with an augmentation graph.

    Attributes:
      points: ``[n, dim]`` float64 coordinates of the views (the graph's nodes).
      graph: the augmentation graph over the ``n`` views.
      labels: ``[n]`` int cluster of each view (the natural point's cluster).
    """

    points: np.ndarray
    graph: AugmentationGraph
    labels: np.ndarray


def discrete_grid2x2(
    side: int = 3, spacing: float = 4.0, step: float = 0.5, stay: float = 0.5, link: float = 0.0
) -> DiscreteDistribution:
    """Four ``side × side`` lattices at the corners ``(±spacing/2, ±spacing/2)`` of a 2×2 grid.

    Natural points are the ``4·side²`` lattice points, uniformly. An augmentation keeps the point
    with probability ``stay``, else moves to one of its lattice neighbours (up, down, left, right,
    within its cluster) uniformly; with probability ``link`` it instead jumps to the same lattice
    position in the other cluster of its row. With ``link = 0`` the graph's components are the four
    clusters; with ``link > 0`` they are the two rows. Cluster ``c`` sits in row ``c // 2`` and
    column ``c mod 2`` as in :class:`clj.data.Grid2x2`.

    Returns:
      A distribution over ``n = 4·side²`` views in ``R²``; labels are the clusters.
    """
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"side={side!r} must be a positive integer")
    for name, value in (("stay", stay), ("link", link)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name}={value!r} must be a probability in [0, 1]")
    if stay + link > 1:
        raise ValueError(f"stay + link = {stay + link:g} must be at most 1")
    if not spacing > (side - 1) * step:
        raise ValueError(f"spacing={spacing!r} must exceed the lattice extent {(side - 1) * step}")
    per = side * side
    n = 4 * per
    cluster = np.repeat(np.arange(4), per)
    i, j = np.divmod(np.tile(np.arange(per), 4), side)  # lattice row, column inside the cluster
    offset = (np.stack([j, i], axis=1) - (side - 1) / 2) * step
    centre = np.stack([cluster % 2 - 0.5, cluster // 2 - 0.5], axis=1) * spacing
    points = centre + offset

    kernel = np.zeros((n, n))
    for a in range(n):
        kernel[a, a] += stay
        neighbours = [
            a + di * side + dj
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
            if 0 <= i[a] + di < side and 0 <= j[a] + dj < side
        ]
        move = 1.0 - stay - link
        if neighbours:
            kernel[a, neighbours] += move / len(neighbours)
        else:
            kernel[a, a] += move
        partner = a + (per if cluster[a] % 2 == 0 else -per)  # same row, other column
        kernel[a, partner] += link
    prior = np.full(n, 1.0 / n)
    return DiscreteDistribution(points, graph_from_augmentation(prior, kernel), cluster)


def discrete_hypercube(dim: int, s: int, levels: int = 2) -> DiscreteDistribution:
    """A discretised hypercube (Saunshi et al. Example 1 with ``τ`` on a grid).

    ``x̄`` is uniform on ``{±1}^dim``; a view keeps the first ``s`` coordinates and multiplies each
    other one by ``τ`` uniform on ``{1/levels, 2/levels, …, 1}``, independently. Coordinates are
    independent, so the kernel is a Kronecker product of one kernel per coordinate.

    Returns:
      A distribution over ``n = 2^s (2·levels)^(dim − s)`` views in ``R^dim``; labels are the
      vertex ids of the invariant coordinates (``Σ_{j<s} [x_j > 0] 2^j``).
    """
    for name, value, low in (("dim", dim, 1), ("levels", levels, 1), ("s", s, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
    if s > dim:
        raise ValueError(f"s={s} must be at most dim={dim}")
    n = 2**s * (2 * levels) ** (dim - s)
    if n > 4096:
        raise ValueError(f"dim={dim}, s={s}, levels={levels} give {n} views; at most 4096")
    taus = np.arange(1, levels + 1) / levels
    signs = np.array([1.0, -1.0])
    # One coordinate: natural values (+1, −1) -> view values.
    invariant = (np.eye(2), signs)
    spurious = (np.kron(np.eye(2), np.full((1, levels), 1.0 / levels)), np.kron(signs, taus))
    factors = [invariant] * s + [spurious] * (dim - s)
    kernel = functools.reduce(np.kron, [f[0] for f in factors])
    # Coordinate j of view index v: the Kronecker digit of v for factor j.
    sizes = [len(f[1]) for f in factors]
    digits = np.stack(np.unravel_index(np.arange(n), sizes), axis=1)
    points = np.stack([factors[j][1][digits[:, j]] for j in range(dim)], axis=1)
    labels = np.sum((points[:, :s] > 0) * 2 ** np.arange(s), axis=1).astype(int)
    prior = np.full(2**dim, 1.0 / 2**dim)
    return DiscreteDistribution(points, graph_from_augmentation(prior, kernel), labels)


def discrete_moments(dist: DiscreteDistribution) -> Moments:
    """Exact moments of a finite distribution's views: ``Xᵀ D X``, ``Xᵀ A X``, ``Xᵀ w``."""
    x, graph = dist.points, dist.graph
    degree = graph.degree
    cross = x.T @ graph.adjacency @ x
    return Moments(x.T @ (degree[:, None] * x), (cross + cross.T) / 2, x.T @ degree)
