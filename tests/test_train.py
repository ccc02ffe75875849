"""Tests of make_train and make_evaluate: determinism, chunking, grid independence, divergence.

One small spec and a handful of compiled programs are shared by the whole module (each distinct
program costs seconds of XLA compile time); the grids differ only in their cells' values.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import Cell, stack_cells
from clj.data import make_family
from clj.evaluate import METRICS, make_evaluate
from clj.spec import Spec
from clj.train import cell_keys, make_train

SPEC = Spec(
    family=make_family("gaussian_mixture", 4, 3),
    depth=1,
    max_width=8,
    max_out_dim=3,
    loss="spectral",
    optimizer="sgd",
    batch=16,
    steps=20,
    eval_size=32,
    log_every=5,
)
POOL = 24


def cell(**values):
    defaults = dict(
        seed=0,
        width=8,
        clusters=3,
        out_dim=3,
        lr=0.01,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return {**defaults, **values}


GOOD = [
    cell(seed=0),
    cell(seed=1),  # differs from the first only in its seed
    cell(seed=2, width=4, clusters=2, out_dim=2, lr=0.005, weight_decay=0.01),
    cell(seed=3, width=6),
]
# The same grid with its last cell's learning rate so large that training blows up.
WITH_DIVERGING = [*GOOD[:3], cell(seed=3, width=6, lr=1e6)]


def _take(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


@pytest.fixture(scope="module")
def trainer():
    return make_train(SPEC)


@pytest.fixture(scope="module")
def train_grid(trainer):
    return jax.jit(jax.vmap(trainer.train))


@pytest.fixture(scope="module")
def evaluate_grid(trainer):
    return jax.jit(jax.vmap(make_evaluate(trainer)))


@pytest.fixture(scope="module")
def good(train_grid):
    cells = stack_cells(GOOD)
    state, curve = train_grid(cells)
    return cells, state, curve


def test_shapes_and_progress(good):
    cells, state, curve = good
    chex.assert_shape(curve, (len(GOOD), SPEC.curve_length))
    chex.assert_tree_all_finite((state.params, curve))
    np.testing.assert_array_equal(state.step, SPEC.steps)
    chex.assert_shape(state.params["out"]["kernel"], (len(GOOD), SPEC.max_width, SPEC.max_out_dim))
    chex.assert_shape(state.world, (len(GOOD), SPEC.family.max_clusters, SPEC.family.dim))
    assert state.pool is None
    # Each cell's hyper-parameters live in its optimiser state.
    hyper = state.opt_state.hyperparams
    np.testing.assert_allclose(hyper["learning_rate"], cells.lr)
    np.testing.assert_allclose(hyper["weight_decay"], cells.weight_decay)
    # The spectral loss goes down.
    assert np.all(curve[:, -1] < curve[:, 0])


def test_same_cell_twice_is_bit_identical(train_grid, good):
    _, state, curve = good
    state2, curve2 = train_grid(stack_cells(GOOD))
    chex.assert_trees_all_equal((state.params, curve), (state2.params, curve2))
    # The same cell twice in one grid: identical lanes.
    state3, curve3 = train_grid(stack_cells([GOOD[2], GOOD[1], GOOD[0], GOOD[2]]))
    chex.assert_trees_all_equal(
        _take((state3.params, curve3), 0), _take((state3.params, curve3), 3)
    )
    chex.assert_trees_all_equal(_take((state3.params, curve3), 0), _take((state.params, curve), 2))


def test_different_seeds_give_different_results(good):
    _, state, curve = good
    assert not np.allclose(curve[0], curve[1])
    assert not np.allclose(state.params["out"]["kernel"][0], state.params["out"]["kernel"][1])
    assert not np.allclose(state.world[0], state.world[1])
    keys = cell_keys(jnp.int32(0))
    data = [jax.random.key_data(k) for k in keys.values()]
    assert len({tuple(np.asarray(d).ravel()) for d in data}) == len(keys)


def test_chunked_run_equals_one_scan(trainer, good):
    cells, state, curve = good
    init = jax.jit(jax.vmap(trainer.init))
    run = jax.jit(jax.vmap(trainer.run, in_axes=(0, 0, None)), static_argnums=2)
    chunked = init(cells)
    np.testing.assert_array_equal(chunked.step, 0)
    curves = []
    for _ in range(2):
        chunked, part = run(chunked, cells, 10)
        chex.assert_shape(part, (len(GOOD), 10 // SPEC.log_every))
        curves.append(part)
    np.testing.assert_array_equal(chunked.step, SPEC.steps)
    # Same steps from the same keys: bit-identical, as a resumed checkpoint must be.
    chex.assert_trees_all_equal(
        (chunked.params, chunked.opt_state), (state.params, state.opt_state)
    )
    np.testing.assert_array_equal(np.concatenate(curves, axis=1), curve)
    with pytest.raises(ValueError, match="num_steps=7"):
        trainer.run(chunked, cells, 7)


# Cells of one data stream (seed 1, 3 clusters): their widths, learning rates and weight
# decays differ, not their data.
ONE_STREAM = [
    cell(seed=1, width=8),
    cell(seed=1, width=4, out_dim=2, lr=0.005),
    cell(seed=1, width=6, weight_decay=0.01),
]


@pytest.mark.parametrize("pool", [None, POOL])
def test_a_group_sharing_its_draws_trains_as_each_cell_drawing_its_own(pool):
    """``run_shared`` draws each step's batch once for cells of one data stream: states and
    curves equal ``vmap(run)``'s bit for bit, from fresh batches or from a fixed pool."""
    trainer = make_train(Spec(**{**SPEC.__dict__, "pool_size": pool}))
    cells = stack_cells(ONE_STREAM)
    state = jax.jit(jax.vmap(trainer.init))(cells)
    each = jax.jit(jax.vmap(lambda s, c: trainer.run(s, c, 10)))(state, cells)
    shared = jax.jit(lambda s, c: trainer.run_shared(s, c, 10))(state, cells)
    chex.assert_shape(shared[1], (len(ONE_STREAM), 10 // SPEC.log_every))
    chex.assert_trees_all_equal(shared, each)


def test_cell_alone_equals_cell_in_grid(train_grid, good):
    _, state, curve = good
    for i in (0, 2):
        alone_state, alone_curve = train_grid(stack_cells([GOOD[i]]))
        np.testing.assert_allclose(alone_curve[0], curve[i], rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(
            _take(alone_state.params, 0), _take(state.params, i), rtol=1e-5, atol=1e-6
        )


def test_diverging_cell_is_flagged_and_isolated(train_grid, evaluate_grid, good):
    cells, state, curve = good
    bad_cells = stack_cells(WITH_DIVERGING)
    bad_state, bad_curve = train_grid(bad_cells)
    assert not np.all(np.isfinite(bad_curve[3]))

    metrics = evaluate_grid(bad_state, bad_cells, bad_curve)
    reference = evaluate_grid(state, cells, curve)
    assert set(metrics) == set(METRICS)
    np.testing.assert_array_equal(metrics["diverged"], [0, 0, 0, 1])
    np.testing.assert_array_equal(reference["diverged"], [0, 0, 0, 0])
    chex.assert_type(metrics["diverged"], jnp.int32)
    for name, values in metrics.items():
        chex.assert_shape(values, (4,))
        if name != "diverged":
            assert np.isnan(values[3]), name
            assert np.all(np.isfinite(values[:3])), name
            np.testing.assert_allclose(values[:3], reference[name][:3], rtol=1e-6, err_msg=name)
    # The other cells trained exactly as in the grid without the diverging one.
    np.testing.assert_allclose(bad_curve[:3], curve[:3], rtol=1e-6)
    chex.assert_trees_all_close(
        _take(bad_state.params, slice(0, 3)), _take(state.params, slice(0, 3)), rtol=1e-6
    )


def test_evaluate_metrics_are_sensible(evaluate_grid, good):
    """Gaussian clusters are easy: probes of a trained encoder beat chance by far."""
    cells, state, curve = good
    metrics = evaluate_grid(state, cells, curve)
    chance = 1 / np.asarray(cells.clusters)
    for name in ("probe_fine", "knn_fine"):
        assert np.all(metrics[name] > chance + 0.1), (name, metrics[name])
        assert np.mean(metrics[name] - chance) > 0.3, (name, metrics[name])
    np.testing.assert_array_equal(metrics["probe_fine"], metrics["probe_coarse"])
    for name in ("probe_fine", "knn_fine", "kmeans_nmi"):
        assert np.all((metrics[name] >= 0) & (metrics[name] <= 1)), name


def test_pool_mode(good):
    cells, _, fresh_curve = good
    spec = Spec(**{**SPEC.__dict__, "pool_size": POOL})
    trainer = make_train(spec)
    state, curve = jax.jit(jax.vmap(trainer.train))(cells)
    chex.assert_shape(curve, (len(GOOD), spec.curve_length))
    chex.assert_tree_all_finite((state.params, curve))
    chex.assert_shape(state.pool.x, (len(GOOD), POOL, spec.family.dim))
    chex.assert_shape([state.pool.fine, state.pool.coarse], (len(GOOD), POOL))
    # The pool is the cell's fixed anchors, drawn once from its "pool" key.
    i = 2
    one = Cell(*_take(cells, i))
    expected = spec.family.anchors(cell_keys(one.seed)["pool"], _take(state.world, i), one, POOL)
    chex.assert_trees_all_close(_take(state.pool, i), expected, atol=1e-6)
    assert np.all(np.asarray(state.pool.fine[i]) < GOOD[i]["clusters"])
    # Training on a fixed pool is a different run from training on fresh samples.
    assert not np.allclose(curve, fresh_curve)
    assert np.all(curve[:, -1] < curve[:, 0])


def test_make_train_rejects_unknown_names():
    with pytest.raises(ValueError, match="'hinge'"):
        make_train(Spec(**{**SPEC.__dict__, "loss": "hinge"}))
    with pytest.raises(ValueError, match="'lion'"):
        make_train(Spec(**{**SPEC.__dict__, "optimizer": "lion"}))
    with pytest.raises(ValueError, match="'cnn'"):
        make_train(Spec(**{**SPEC.__dict__, "encoder": "cnn"}))
