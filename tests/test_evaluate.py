"""Evaluation in stages: held-out data and metrics computed in batches, shared by programs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.config import SweepConfig
from clj.distributed import cell_mesh, cell_sharding, shard_cells
from clj.evaluate import (
    METRICS,
    features_shapes,
    heldout_key,
    make_evaluate,
    make_features,
    make_heldout,
    score_key,
)
from clj.plan import plan_programs
from clj.runner import HeldOutSampler, Scorer, run_program
from clj.train import make_train

GRID = dict(
    data="hierarchical_mixture",
    dim=4,
    depth=1,
    batch=8,
    steps=20,
    eval_size=32,
    seeds=1,
    clusters=(4, 8),
    out_dims=(2,),
    lr=(1e-2,),
    log_every=10,
)


def _program(width: int):
    (program,) = plan_programs(SweepConfig(**GRID, widths=(width,)))
    return program


@pytest.mark.parametrize(
    "settings",
    [
        dict(GRID, widths=(3,)),
        dict(GRID, widths=(3,), data="gaussian_mixture", depth=2, out_dims=(2, 5)),
        dict(GRID, widths=(4,), encoder="linear", data="hypercube", clusters=(4,)),
        dict(GRID, widths=(4,), data="digits", dim=64, encoder="cnn2d", clusters=(10,)),
    ],
    ids=["mlp", "padded-out", "linear", "cnn2d"],
)
def test_features_shapes_are_what_make_features_returns(settings):
    """The metrics are lowered from ``features_shapes`` before the features are traced."""
    (program,) = plan_programs(SweepConfig(**settings))
    trainer = make_train(program.spec)
    cell = jax.tree.map(lambda a: a[0], stack_cells(program.cells[:1]))
    state = jax.eval_shape(trainer.init, cell)
    curve = jax.ShapeDtypeStruct((program.spec.curve_length,), np.float32)
    heldout = jax.eval_shape(make_heldout(program.spec), state.world, cell)
    made = jax.eval_shape(make_features(trainer), state, cell, curve, heldout)
    want = features_shapes(program.spec)
    assert type(made) is type(want)
    for name, a, b in zip(want._fields, made, want, strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype), name


def test_scoring_in_batches_matches_evaluate():
    program = _program(3)
    trainer = make_train(program.spec)
    cells = stack_cells([*program.cells, program.cells[0]])  # 3 cells
    state, curve = jax.jit(jax.vmap(trainer.train))(cells)
    expected = jax.jit(jax.vmap(make_evaluate(trainer)))(state, cells, curve)
    heldout = jax.jit(jax.vmap(make_heldout(program.spec)))(state.world, cells)
    features = jax.jit(jax.vmap(make_features(trainer)))(state, cells, curve, heldout)
    features = jax.tree.map(np.asarray, features)
    mesh = cell_mesh(1)
    key = score_key(program.spec)
    for batch in (1, 2):  # 2: the last batch is padded
        timings = {"compile_s": 0.0, "eval_s": 0.0}
        got = Scorer(mesh, {key: batch}).score(program.spec, features, timings)
        assert set(got) == set(METRICS)
        for name in METRICS:
            np.testing.assert_allclose(
                got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name
            )


def test_sampling_in_batches_matches_one_vmap():
    program = _program(3)
    trainer = make_train(program.spec)
    cells = stack_cells([*program.cells, program.cells[0]])  # 3 cells
    world = jax.jit(jax.vmap(trainer.init))(cells).world
    expected = jax.jit(jax.vmap(make_heldout(program.spec)))(world, cells)
    host = jax.tree.map(np.asarray, (world, cells))
    key = heldout_key(program.spec)
    for batch in (1, 2):  # 2: the last batch is padded
        timings = {"compile_s": 0.0, "eval_s": 0.0}
        got = HeldOutSampler(cell_mesh(1), {key: batch}).sample(program.spec, *host, timings)
        assert timings["compile_s"] > 0 and timings["eval_s"] > 0
        for name, a, b in zip(expected._fields, got, expected, strict=True):
            # Equal draws; float rounding may differ between the two compiled programs.
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)


def test_sampling_on_device_matches_the_host_path():
    program = _program(3)
    trainer = make_train(program.spec)
    cells = stack_cells([*program.cells, program.cells[0]])  # 3 cells
    mesh = cell_mesh(1)
    world = jax.jit(jax.vmap(trainer.init))(cells).world
    host = jax.tree.map(np.asarray, (world, cells))
    placed = shard_cells(host, mesh)
    key = heldout_key(program.spec)
    timings = {"compile_s": 0.0, "eval_s": 0.0}
    expected = HeldOutSampler(mesh, {key: 3}).sample(program.spec, *host, timings)
    for batch, inputs in ((3, placed), (3, host), (2, placed)):  # 2: batches through the host
        sampler = HeldOutSampler(mesh, {key: batch})
        got = sampler.sample(program.spec, *inputs, timings, on_device=True)
        for name, a, b in zip(expected._fields, got, expected, strict=True):
            assert isinstance(a, jax.Array) and a.sharding.is_equivalent_to(
                cell_sharding(mesh), a.ndim
            ), name
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-6, err_msg=name)


def test_programs_of_one_shape_compile_their_heldout_data_and_metrics_once():
    narrow, wide = _program(3), _program(8)
    assert score_key(narrow.spec) == score_key(wide.spec)
    assert heldout_key(narrow.spec) == heldout_key(wide.spec)
    shared, sampler = Scorer(cell_mesh()), HeldOutSampler(cell_mesh())
    run_program(narrow, scorer=shared, sampler=sampler)
    # Sampled and scored by narrow's programs:
    together = run_program(wide, scorer=shared, sampler=sampler).metrics
    alone = run_program(wide).metrics
    assert shared.compiled_programs == 1
    assert sampler.compiled_programs == 1
    for name in METRICS:
        np.testing.assert_array_equal(together[name], alone[name], err_msg=name)
