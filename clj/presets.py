"""Named sweep configurations: ``clj sweep --preset NAME`` and ``clj list``."""

from __future__ import annotations

from clj.config import SweepConfig

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, tuple[str, dict]] = {
    "flagship": (
        "capacity vs cluster recovery on hierarchical_mixture (the default of `clj sweep`): "
        "4 groups of fine clusters; widths 2-128, 8-32 fine clusters, k = 4 or 32, 3 seeds",
        {},
    ),
    "reference": (
        "reference speed grid: gaussian_mixture d=32, 4 seeds x widths 4-256 x clusters 2-64, "
        "k=8, depth 2, batch 256, 300 steps, spectral loss",
        {
            "data": "gaussian_mixture",
            "dim": 32,
            "seeds": 4,
            "widths": (4, 8, 16, 32, 64, 256),
            "clusters": (2, 4, 8, 16, 32, 64),
            "out_dims": 8,
            "depth": 2,
            "batch": 256,
            "steps": 300,
            "loss": "spectral",
            "lr": 1e-3,
        },
    ),
}
"""Preset name -> (description, the :class:`SweepConfig` fields it sets)."""


def preset(name: str, **overrides: object) -> SweepConfig:
    """The preset ``name`` as a :class:`SweepConfig`, with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return SweepConfig.from_dict({**PRESETS[name][1], **overrides}, source=f"preset {name}")
