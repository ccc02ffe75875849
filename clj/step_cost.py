"""What one training step of a program costs, read from its traced code rather than a formula.

The MLP's FLOPs and memory have closed forms (:func:`clj.buckets.mlp_step_flops`,
:func:`clj.memory.cell_bytes`); convolutional encoders and the objectives with a decoder or a
head do not fit those formulas. For them the planner and the memory estimate trace one cell's
training window and read

- :func:`step_flops`: XLA's cost analysis of the lowered (not compiled) program. XLA counts a
  loop's body once, so the figure is that of one step of the window's ``lax.scan``;
- :func:`step_intermediate_bytes`: the sum of the sizes of every value the traced step computes,
  an upper bound on what it keeps alive at once (and :func:`encode_intermediate_bytes`, the same
  for encoding the evaluation's anchors).

Both trace a single unbatched cell at the spec's maxima (its ``max_width``, ``max_out_dim`` and
the family's ``max_clusters``), so they cost one trace, not a compile.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from clj.cell import Cell, one_cell
from clj.spec import Spec

__all__ = [
    "analytic",
    "encode_intermediate_bytes",
    "state_bytes",
    "step_flops",
    "step_intermediate_bytes",
]

_ANALYTIC_ENCODERS = ("mlp", "linear")


def analytic(spec: Spec) -> bool:
    """Whether the closed-form MLP costs describe ``spec``: an MLP or linear encoder trained by
    a pair loss of :data:`clj.losses.LOSSES` (no decoder, no head)."""
    from clj.losses import LOSSES

    return spec.encoder in _ANALYTIC_ENCODERS and spec.loss in LOSSES


def _widest_cell(spec: Spec) -> Cell:
    return one_cell(
        width=spec.max_width, clusters=spec.family.max_clusters, out_dim=spec.max_out_dim
    )


def _one_window(spec: Spec) -> tuple[Any, Any, Cell]:
    """``(fn, state, cell)``: ``fn(state, cell)`` trains one window of ``log_every`` steps from
    ``state`` (abstract, the shape of an initialised cell's), so nothing else is traced."""
    from clj.train import make_train

    short = dataclasses.replace(spec, steps=spec.log_every)
    trainer = make_train(short)
    cell = _widest_cell(spec)
    state = jax.eval_shape(trainer.init, cell)
    return (lambda state, cell: trainer.run(state, cell, short.log_every)), state, cell


@functools.lru_cache(maxsize=64)
def step_flops(spec: Spec) -> float:
    """FLOPs of one training step of one cell at the spec's maxima (XLA's cost analysis)."""
    fn, state, cell = _one_window(spec)
    analysis = jax.jit(fn).lower(state, cell).cost_analysis()
    if isinstance(analysis, list | tuple):  # older JAX: one dict per device program
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


def _sub_jaxprs(params: dict) -> Iterator[jax.extend.core.Jaxpr]:
    for value in params.values():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, jax.extend.core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax.extend.core.Jaxpr):
                yield item


def _aval_bytes(aval: Any) -> int:
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return int(np.prod(shape, dtype=np.int64)) * 8  # two uint32 words of threefry
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _jaxpr_bytes(jaxpr: jax.extend.core.Jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            total += _aval_bytes(var.aval)
        total += sum(_jaxpr_bytes(sub) for sub in _sub_jaxprs(eqn.params))
    return total


@functools.lru_cache(maxsize=64)
def step_intermediate_bytes(spec: Spec) -> int:
    """Bytes of every value one cell's traced training step computes (loop bodies counted once):
    an upper bound on its live activations, gradients and optimiser temporaries."""
    fn, state, cell = _one_window(spec)
    return _jaxpr_bytes(jax.make_jaxpr(fn)(state, cell).jaxpr)


@functools.lru_cache(maxsize=64)
def encode_intermediate_bytes(spec: Spec) -> int:
    """Bytes of every value one cell computes encoding ``eval_size`` inputs at once."""
    from clj.train import make_train

    trainer = make_train(spec)
    cell = _widest_cell(spec)
    params = jax.eval_shape(trainer.init, cell).params
    x = jax.ShapeDtypeStruct((spec.eval_size, spec.family.dim), np.float32)
    return _jaxpr_bytes(jax.make_jaxpr(trainer.encode)(params, cell, x).jaxpr)


@functools.lru_cache(maxsize=64)
def state_bytes(spec: Spec) -> int:
    """Bytes of one cell's training state (parameters, optimiser moments, data world, pool)."""
    from clj.train import make_train

    state = jax.eval_shape(make_train(spec).init, _widest_cell(spec))
    return sum(_aval_bytes(leaf) for leaf in jax.tree.leaves(state))
