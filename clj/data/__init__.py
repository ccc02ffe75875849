"""Synthetic data families: pure samplers of positive pairs with fine and coarse labels."""

from __future__ import annotations

from typing import Any

from clj.data.base import Anchors, DataFamily, Views
from clj.data.gaussian_mixture import GaussianMixture
from clj.data.grid2x2 import Grid2x2
from clj.data.hierarchical_mixture import HierarchicalMixture
from clj.data.hypercube import Hypercube
from clj.data.images import IMAGE_FAMILIES, Cifar10, Digits, FashionMnist, Mnist
from clj.data.lipschitz_regions import LipschitzRegions
from clj.data.patches import Patches
from clj.data.style import StyleGlyphs

__all__ = [
    "FAMILIES",
    "Anchors",
    "Cifar10",
    "DataFamily",
    "Digits",
    "FashionMnist",
    "GaussianMixture",
    "Grid2x2",
    "HierarchicalMixture",
    "Hypercube",
    "LipschitzRegions",
    "Mnist",
    "Patches",
    "StyleGlyphs",
    "Views",
    "make_family",
]

FAMILIES: dict[str, type[DataFamily]] = {
    cls.name: cls for cls in (GaussianMixture, HierarchicalMixture, Hypercube, Grid2x2, Patches)
}
"""Data families by the name the command line and sweep configs use."""
FAMILIES[LipschitzRegions.name] = LipschitzRegions
FAMILIES.update({cls.name: cls for cls in IMAGE_FAMILIES})
FAMILIES[StyleGlyphs.name] = StyleGlyphs


def make_family(name: str, dim: int, max_clusters: int, **options: Any) -> DataFamily:
    """Builds the family ``name`` with input dimension ``dim``, padded to ``max_clusters``.

    Raises:
      ValueError: naming the bad value, for an unknown family, a non-positive ``dim``, or an option
        the family does not have.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown data family {name!r}; choose from {', '.join(FAMILIES)}")
    if dim < 1:
        raise ValueError(f"dim={dim} must be a positive integer")
    cls = FAMILIES[name]
    fields = {f.name for f in cls.__dataclass_fields__.values()} - {"dim", "max_clusters"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(
            f"unknown option {unknown[0]!r} for data family {name}; "
            f"it has {', '.join(sorted(fields))}"
        )
    return cls(dim=dim, max_clusters=max_clusters, **options)
