"""Closed-form predictions of the spectral contrastive loss, to hold trained grids against.

- :mod:`clj.theory.linear`: the population spectral loss of linear (and affine) encoders from the
  data's second moments, and its exact minimiser.
- :mod:`clj.theory.moments`: those second moments for a data family, in closed form or by
  Monte Carlo through the family's own sampler.
- :mod:`clj.theory.graph`: the augmentation graph of a finite distribution: normalised adjacency,
  spectrum, connected components, and the spectral loss's optimum over embedding tables.
- :mod:`clj.theory.discrete`: finite distributions (a lattice 2×2 grid, a discretised hypercube)
  whose graphs are built exactly.
- :mod:`clj.theory.angles`: principal angles between subspaces.

Analyses run on the host in NumPy (float64); only the losses are ``jax.numpy`` (differentiable).
"""

from clj.theory.angles import orthonormal_basis, principal_angles
from clj.theory.discrete import (
    DiscreteDistribution,
    discrete_grid2x2,
    discrete_hypercube,
    discrete_moments,
)
from clj.theory.graph import (
    AugmentationGraph,
    connected_components,
    graph_from_augmentation,
    graph_from_joint,
    graph_from_transition,
    graph_spectral_loss,
    graph_spectral_optimum,
    graph_spectrum,
    normalized_adjacency,
)
from clj.theory.linear import (
    affine_moments,
    inverse_sqrt,
    linear_spectral_optimum,
    population_spectral_loss,
    whitened_cross,
)
from clj.theory.moments import (
    CLOSED_FORMS,
    Moments,
    make_cell,
    monte_carlo_moments,
    second_moments,
)

__all__ = [
    "CLOSED_FORMS",
    "AugmentationGraph",
    "DiscreteDistribution",
    "Moments",
    "affine_moments",
    "connected_components",
    "discrete_grid2x2",
    "discrete_hypercube",
    "discrete_moments",
    "graph_from_augmentation",
    "graph_from_joint",
    "graph_from_transition",
    "graph_spectral_loss",
    "graph_spectral_optimum",
    "graph_spectrum",
    "inverse_sqrt",
    "linear_spectral_optimum",
    "make_cell",
    "monte_carlo_moments",
    "normalized_adjacency",
    "orthonormal_basis",
    "population_spectral_loss",
    "principal_angles",
    "second_moments",
    "whitened_cross",
]
