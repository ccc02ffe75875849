"""Sweep configuration: every axis of a grid, validation, and TOML files.

A :class:`SweepConfig` lists the values of each axis; the grid is their Cartesian product. Axes
that change shapes or code (data family, dimension, encoder, depth, loss, optimiser, batch,
steps, evaluation size) split the grid into separate compiled programs; all others (seed, width,
cluster count, output dimension, learning rate, weight decay, loss hyper-parameters) vary
between the cells of one program.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from clj.data import FAMILIES, make_family
from clj.encoders import ENCODERS
from clj.losses import LOSSES
from clj.optim import OPTIMIZERS
from clj.train import OBJECTIVES

__all__ = ["STATIC_AXES", "ConfigError", "SweepConfig", "load_config"]


class ConfigError(ValueError):
    """A sweep configuration value that cannot be run; the message names the value."""


MAX_WIDTH = 16384
"""Largest hidden width a cell may ask for (a width-16384 MLP layer has 2^28 weights)."""

MAX_OUT_DIM = 4096
"""Largest representation dimension a cell may ask for."""

STATIC_AXES = (
    "data",
    "dim",
    "encoder",
    "depth",
    "loss",
    "optimizer",
    "batch",
    "steps",
    "eval_size",
)
"""Axes whose values need a program of their own."""

# Config field of each per-cell axis -> the column (and Cell field) it fills.
CELL_AXES = {
    "widths": "width",
    "clusters": "clusters",
    "out_dims": "out_dim",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "temperature": "temperature",
    "dof": "dof",
    "lam": "lam",
    "lipschitz": "lipschitz",
    "prior_var": "prior_var",
}


DEFAULT_DIM = 32
"""Input dimension of the synthetic families when a config does not give one."""


def natural_dim(data: tuple[str, ...]) -> int:
    """The input dimension a config of families ``data`` gets when it names none.

    Families with a fixed input (images) have exactly one, ``H·W·C``; the synthetic families take
    :data:`DEFAULT_DIM`.

    Raises:
      ConfigError: the families' dimensions differ.
    """
    dims = {}
    for name in data:
        fixed = FAMILIES[name].fixed_dim() if name in FAMILIES else None
        dims[name] = DEFAULT_DIM if fixed is None else fixed
    if len(set(dims.values())) > 1:
        listed = ", ".join(f"{name}: {dim}" for name, dim in dims.items())
        raise ConfigError(
            f"dim: the data families need different input dimensions ({listed}); give dim"
        )
    return next(iter(dims.values()), DEFAULT_DIM)


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, str) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of experiments. Each tuple field is an axis; a scalar given for one becomes a 1-tuple.

    The defaults are the flagship capacity-vs-cluster-recovery grid on ``hierarchical_mixture``.

    Attributes:
      data: data family names (``clj list``).
      dim: input dimensions; ``None`` (the default) is each family's natural one: 32 for the
        synthetic families, ``H·W·C`` for the image families (all the families of one config must
        then agree).
      encoder: encoder names.
      depth: hidden layers of the MLP.
      loss: loss names.
      optimizer: optimiser names.
      batch: positive pairs per step (at least 2).
      steps: training steps (positive multiples of ``log_every``).
      eval_size: held-out anchors for probe training, and again for probe testing.
      seeds: number of seeds; seeds ``0 .. seeds − 1``.
      widths: hidden widths.
      clusters: cluster counts (for ``hypercube``: invariant coordinates ``s``).
      out_dims: representation dimensions ``k``.
      lr: learning rates.
      weight_decay: weight decays.
      temperature: temperature of ``info_nce`` and ``t_info_nce``.
      dof: degrees of freedom of ``t_info_nce``.
      lam: weight of the covariance term of ``spectral_lambda``.
      lipschitz: Lipschitz caps of the ``lipschitz_mlp`` encoder (``inf``: uncapped).
      prior_var: variance σ² of the group prior of ``simvae``.
      log_every: steps between points of each loss curve.
      pool_size: train on a fixed pool of this many anchors per cell instead of fresh samples.
      views: augmented views per group of ``simvae`` (J; the pair losses always use 2).
      data_options: keyword options of the data families (e.g. ``{"groups": 4}``).
      bucket_widths: group cells into width buckets when a cost model says it is cheaper.
    """

    data: tuple[str, ...] = ("hierarchical_mixture",)
    dim: tuple[int, ...] | None = None
    encoder: tuple[str, ...] = ("mlp",)
    depth: tuple[int, ...] = (2,)
    loss: tuple[str, ...] = ("spectral",)
    optimizer: tuple[str, ...] = ("adam",)
    batch: tuple[int, ...] = (256,)
    steps: tuple[int, ...] = (600,)
    eval_size: tuple[int, ...] = (1024,)
    seeds: int = 3
    widths: tuple[int, ...] = (2, 8, 32, 128)
    clusters: tuple[int, ...] = (8, 16, 32)
    out_dims: tuple[int, ...] = (4, 32)
    lr: tuple[float, ...] = (1e-3,)
    weight_decay: tuple[float, ...] = (0.0,)
    temperature: tuple[float, ...] = (0.5,)
    dof: tuple[float, ...] = (5.0,)
    lam: tuple[float, ...] = (1.0,)
    lipschitz: tuple[float, ...] = (math.inf,)
    prior_var: tuple[float, ...] = (1.0,)
    log_every: int = 10
    pool_size: int | None = None
    views: int = 2
    data_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    bucket_widths: bool = True

    def __post_init__(self) -> None:
        if self.dim is None:
            object.__setattr__(self, "dim", (natural_dim(_as_tuple(self.data)),))
        for field in dataclasses.fields(self):
            if field.type.startswith("tuple"):
                object.__setattr__(self, field.name, _as_tuple(getattr(self, field.name)))
        object.__setattr__(self, "data_options", dict(self.data_options))
        self.validate()

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raises :class:`ConfigError` naming the first value that cannot be run."""
        for axis in (*STATIC_AXES, *CELL_AXES):
            if not getattr(self, axis):
                raise ConfigError(f"{axis}: needs at least one value")
        _choose("data family", self.data, FAMILIES)
        _choose("encoder", self.encoder, ENCODERS)
        _choose("loss", self.loss, {**LOSSES, **OBJECTIVES})
        _choose("optimizer", self.optimizer, OPTIMIZERS)
        _integers("dim", self.dim, minimum=1)
        _integers("depth", self.depth, minimum=0)
        _integers("batch", self.batch, minimum=2)
        _integers("eval_size", self.eval_size, minimum=16)
        _integers("widths", self.widths, minimum=1, maximum=MAX_WIDTH)
        _integers("clusters", self.clusters, minimum=1)
        _integers("out_dims", self.out_dims, minimum=1, maximum=MAX_OUT_DIM)
        _integers("log_every", (self.log_every,), minimum=1)
        _integers("seeds", (self.seeds,), minimum=1)
        _integers("steps", self.steps, minimum=1)
        for steps in self.steps:
            if steps % self.log_every:
                raise ConfigError(f"steps={steps} is not a multiple of log_every={self.log_every}")
        if self.pool_size is not None:
            _integers("pool_size", (self.pool_size,), minimum=1)
        _positive("lr", self.lr)
        _positive("temperature", self.temperature)
        _positive("dof", self.dof)
        _non_negative("weight_decay", self.weight_decay)
        _non_negative("lam", self.lam)
        _positive("lipschitz", self.lipschitz, allow_inf=True)
        _positive("prior_var", self.prior_var)
        _integers("views", (self.views,), minimum=1)
        for data, dim in itertools.product(self.data, self.dim):
            options = self.options_for(data)
            try:
                family = make_family(data, dim, max(self.clusters), **options)
                for clusters in self.clusters:
                    family.check_clusters(clusters)
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err)) from None

    def options_for(self, data: str) -> dict[str, Any]:
        """The ``data_options`` that apply to family ``data``.

        Options may be given flat (``{"groups": 4}``, applied to every family that has them) or
        per family (``{"hierarchical_mixture": {"groups": 4}}``).
        """
        cls = FAMILIES[data]
        fields = {f.name for f in dataclasses.fields(cls)}
        flat = {k: v for k, v in self.data_options.items() if not isinstance(v, Mapping)}
        for key in flat:
            if not any(key in {f.name for f in dataclasses.fields(c)} for c in FAMILIES.values()):
                raise ConfigError(f"data_options: no data family has an option {key!r}")
        nested = self.data_options.get(data, {})
        options = {k: v for k, v in flat.items() if k in fields} | dict(nested)
        return options

    # -- the grid -------------------------------------------------------------------------------
    @property
    def num_cells(self) -> int:
        """Number of cells in the grid."""
        axes = [*STATIC_AXES, *CELL_AXES]
        return self.seeds * math.prod(len(getattr(self, a)) for a in axes)

    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid as a dict of its coordinates, in a fixed order.

        Keys: the static axes, ``seed``, and the per-cell columns (``width``, ``clusters``,
        ``out_dim``, ``lr``, ``weight_decay``, ``temperature``, ``dof``, ``lam``, ``lipschitz``,
        ``prior_var``).
        """
        names = [*STATIC_AXES, *CELL_AXES.values(), "seed"]
        values = [getattr(self, a) for a in (*STATIC_AXES, *CELL_AXES)]
        values.append(tuple(range(self.seeds)))
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and TOML-friendly dict that :meth:`from_dict` reads back."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> SweepConfig:
        """Builds a config from a dict, rejecting unknown keys (``-`` and ``_`` are the same)."""
        known = {f.name for f in dataclasses.fields(cls)}
        clean = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(
                    f"{source}: unknown key {key!r}; known keys are {', '.join(sorted(known))}"
                )
            clean[name] = value
        try:
            return cls(**clean)
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{source}: {err}") from None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """Reads a TOML sweep config; ``overrides`` (e.g. from command-line flags) win.

    Raises:
      ConfigError: a missing or malformed file, an unknown key, or a bad value.
    """
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {err}") from None
    return SweepConfig.from_dict({**values, **(overrides or {})}, source=f"config file {path}")


def _choose(what: str, values: tuple, known: Mapping) -> None:
    for value in values:
        if value not in known:
            raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(known)}")


def _integers(axis: str, values: tuple, minimum: int, maximum: int | None = None) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{axis}: {value!r} must be an integer ≥ {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{axis}: {value!r} is above the maximum of {maximum}")


def _positive(axis: str, values: tuple, allow_inf: bool = False) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{axis}: {value!r} must be a positive number")
        if not math.isfinite(value) and not (allow_inf and value == math.inf):
            raise ConfigError(f"{axis}: {value!r} must be finite")


def _non_negative(axis: str, values: tuple) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(f"{axis}: {value!r} must be a non-negative number")
        if not math.isfinite(value):
            raise ConfigError(f"{axis}: {value!r} must be finite")
