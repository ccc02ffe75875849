"""The augmentation graph of a finite distribution, and its spectral-loss optimum.

Nodes are the finitely many views ``x``; the weight ``w_{xx'}`` of an edge is the probability that
``(x, x')`` is drawn as a positive pair, so the weights sum to 1 and ``w_x = Σ_{x'} w_{xx'}`` is the
probability of node ``x`` (HaoChen et al. 2021). For an embedding table ``f`` (rows ``f(x)``) the
population spectral contrastive loss is

    L(f) = −2 Σ_{x,x'} w_{xx'} f(x)·f(x') + Σ_{x,x'} w_x w_{x'} (f(x)·f(x'))².

With ``u_x = √w_x f(x)`` it reads ``‖U Uᵀ − Ā‖²_F − ‖Ā‖²_F`` for the normalised adjacency
``Ā = D^{−1/2} A D^{−1/2}``, so (Eckart–Young) its minimum over ``k``-dimensional embeddings is
``−Σ_{i≤k} max(λ_i, 0)²`` over the top eigenvalues of ``Ā``, reached at
``f(x) = w_x^{−1/2} (V_k diag(√max(λ_i, 0)))_x`` with ``V_k`` the top-``k`` eigenvectors.

Everything here is host-side NumPy except :func:`graph_spectral_loss` (plain ``jax.numpy``, so an
embedding can be trained on it).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

__all__ = [
    "AugmentationGraph",
    "connected_components",
    "graph_from_augmentation",
    "graph_from_joint",
    "graph_from_transition",
    "graph_spectral_loss",
    "graph_spectral_optimum",
    "graph_spectrum",
    "normalized_adjacency",
]


class AugmentationGraph(NamedTuple):
    """A weighted augmentation graph.

    Attributes:
      adjacency: ``[n, n]`` symmetric non-negative float64 weights summing to 1;
        ``adjacency[x, x']`` is the probability that ``(x, x')`` is a positive pair.
    """

    adjacency: np.ndarray

    @property
    def degree(self) -> np.ndarray:
        """``[n]`` node probabilities ``w_x`` (row sums of the adjacency)."""
        return self.adjacency.sum(axis=1)

    @property
    def num_nodes(self) -> int:
        return self.adjacency.shape[0]


def _matrix(name: str, a: np.ndarray, square: bool = True) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or (square and a.shape[0] != a.shape[1]):
        raise ValueError(f"{name} must be a {'square ' if square else ''}matrix, got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be finite and non-negative (min {np.min(a):.3g})")
    return a


def _distribution(name: str, p: np.ndarray, n: int | None = None) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or (n is not None and p.shape[0] != n):
        raise ValueError(f"{name} must be a vector of length {n}, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"{name} must be a probability vector (sum {p.sum():.6g})")
    return p


def graph_from_joint(joint: np.ndarray) -> AugmentationGraph:
    """The graph of a positive-pair joint ``[n, n]`` (symmetrised, then scaled to total 1).

    Raises:
      ValueError: for a non-square, negative, non-finite or all-zero ``joint``.
    """
    joint = _matrix("joint", joint)
    total = joint.sum()
    if total <= 0:
        raise ValueError(f"joint has total weight {total:.3g}; it needs a positive total")
    return AugmentationGraph((joint + joint.T) / (2 * total))


def graph_from_transition(probs: np.ndarray, transition: np.ndarray) -> AugmentationGraph:
    """The graph of node probabilities ``probs`` ``[n]`` and a transition ``[n, n]``.

    ``transition[x, x']`` is the probability that the positive partner of ``x`` is ``x'`` (rows
    sum to 1). The joint ``probs[x] · transition[x, x']`` is symmetrised (exact for a reversible
    transition, whose node probabilities then stay ``probs``).
    """
    transition = _matrix("transition", transition)
    probs = _distribution("probs", probs, transition.shape[0])
    rows = transition.sum(axis=1)
    if not np.allclose(rows, 1.0):
        bad = int(np.argmax(np.abs(rows - 1.0)))
        raise ValueError(f"transition row {bad} sums to {rows[bad]:.6g}, not 1")
    return graph_from_joint(probs[:, None] * transition)


def graph_from_augmentation(prior: np.ndarray, kernel: np.ndarray) -> AugmentationGraph:
    """The graph of natural points ``prior`` ``[m]`` and an augmentation ``kernel`` ``[m, n]``.

    ``kernel[a, x]`` is the probability that augmenting natural point ``a`` gives view ``x``; a
    positive pair is two independent augmentations of one natural point, so
    ``w_{xx'} = Σ_a prior[a] kernel[a, x] kernel[a, x']``.
    """
    kernel = _matrix("kernel", kernel, square=False)
    prior = _distribution("prior", prior, kernel.shape[0])
    rows = kernel.sum(axis=1)
    if not np.allclose(rows, 1.0):
        bad = int(np.argmax(np.abs(rows - 1.0)))
        raise ValueError(f"kernel row {bad} sums to {rows[bad]:.6g}, not 1")
    return graph_from_joint(kernel.T @ (prior[:, None] * kernel))


def normalized_adjacency(graph: AugmentationGraph) -> np.ndarray:
    """``D^{−1/2} A D^{−1/2}`` ``[n, n]``; rows and columns of isolated nodes are zero."""
    degree = graph.degree
    scale = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
    return scale[:, None] * graph.adjacency * scale[None, :]


def graph_spectrum(graph: AugmentationGraph) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``[n]`` (decreasing) and eigenvectors ``[n, n]`` (columns) of ``Ā``."""
    values, vectors = np.linalg.eigh(normalized_adjacency(graph))
    return values[::-1], vectors[:, ::-1]


def connected_components(graph: AugmentationGraph) -> tuple[int, np.ndarray]:
    """Connected components of the graph (edges: positive weights).

    Returns:
      ``(count, labels)``: ``labels`` ``[n]`` int, numbered in order of each component's
      smallest node.
    """
    linked = graph.adjacency > 0
    labels = np.full(graph.num_nodes, -1)
    count = 0
    for start in range(graph.num_nodes):
        if labels[start] >= 0:
            continue
        frontier = np.zeros(graph.num_nodes, dtype=bool)
        frontier[start] = True
        while frontier.any():
            labels[frontier] = count
            frontier = linked[frontier].any(axis=0) & (labels < 0)
        count += 1
    return count, labels


def graph_spectral_loss(f, graph: AugmentationGraph):
    """Population spectral loss of the embedding table ``f`` ``[n, k]`` (scalar, plain jnp).

    ``−2 tr(Fᵀ A F) + ‖Fᵀ D F‖²_F`` with ``D = diag(w_x)``; differentiable in ``f``.
    """
    f = jnp.asarray(f)
    if f.ndim != 2 or f.shape[0] != graph.num_nodes:
        raise ValueError(f"f must be [{graph.num_nodes}, k], got shape {f.shape}")
    adjacency = jnp.asarray(graph.adjacency, f.dtype)
    degree = jnp.asarray(graph.degree, f.dtype)
    gram = f.T @ (degree[:, None] * f)
    return -2.0 * jnp.trace(f.T @ adjacency @ f) + jnp.sum(gram**2)


def graph_spectral_optimum(graph: AugmentationGraph, k: int) -> tuple[np.ndarray, float]:
    """The minimiser of :func:`graph_spectral_loss` over ``k``-dimensional embedding tables.

    Returns:
      ``(f, loss)``: ``f`` ``[n, k]`` float64 with ``f(x) = w_x^{−1/2} (V_k diag(√max(λ,0)))_x``
      (zero for isolated nodes) and ``loss = −Σ_{i≤k} max(λ_i, 0)²``.
    """
    n = graph.num_nodes
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k={k!r} must be an integer in 1..{n}")
    values, vectors = graph_spectrum(graph)
    top = np.maximum(values[:k], 0.0)
    degree = graph.degree
    scale = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
    return scale[:, None] * vectors[:, :k] * np.sqrt(top)[None, :], float(-np.sum(top**2))
