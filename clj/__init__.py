"""clj: vectorized grids of small self-supervised learning experiments in JAX.

A grid of cells (seeds × widths × cluster counts × output dims × …) trains in one compiled program
per width bucket: data sampling, encoder and loss are pure functions, the training loop is a
``jax.lax.scan``, and ``jax.vmap`` maps it over the cells.

Typical use::

    import clj

    config = clj.SweepConfig(data="gaussian_mixture", widths=[4, 64], clusters=[2, 8], seeds=2)
    result = clj.sweep(config)
    result.table  # pandas DataFrame, one row per cell
"""

from clj import data, encoders, losses, metrics, models, optim, probes, theory
from clj.cell import Cell, stack_cells
from clj.compile_cache import enable_compile_cache
from clj.config import ConfigError, SweepConfig, load_config
from clj.evaluate import METRICS, make_evaluate, make_features, make_heldout, make_score
from clj.plan import Program, plan_programs
from clj.presets import PRESETS, preset
from clj.runner import RunOptions, run_program
from clj.spec import Spec
from clj.sweep import SweepResult, sweep
from clj.train import Trainer, TrainState, make_train

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "PRESETS",
    "Cell",
    "ConfigError",
    "Program",
    "RunOptions",
    "Spec",
    "SweepConfig",
    "SweepResult",
    "TrainState",
    "Trainer",
    "data",
    "enable_compile_cache",
    "encoders",
    "load_config",
    "losses",
    "make_evaluate",
    "make_features",
    "make_heldout",
    "make_score",
    "make_train",
    "metrics",
    "models",
    "optim",
    "plan_programs",
    "preset",
    "probes",
    "run_program",
    "stack_cells",
    "sweep",
    "theory",
]
