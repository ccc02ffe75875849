"""The GCN probe: its graph is RLD's W, it reads only training labels, and it vmaps over cells."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj import metrics
from clj.probes import (
    GCNConfig,
    gcn_fit,
    gcn_logits,
    gcn_probe_predict,
    parameter_counts,
    propagation,
)

SMALL = GCNConfig(hidden=8, steps=150, lr=3e-2, temperature=0.2)


N, CLASSES, N_TRAIN = 40, 4, 24
TRAIN = np.arange(N) < N_TRAIN


@jax.jit
def _fit_logits(key, prop, labels, train):
    """Trains on ``[N]`` nodes and returns the logits with all training labels shown (one
    compilation shared by the tests below)."""
    params, losses = gcn_fit(key, prop, labels, train, CLASSES, SMALL)
    return gcn_logits(params, prop, labels, train), losses


@jax.jit
def _graph(x):
    return propagation(metrics.rld_log_weights(x, SMALL.temperature))


_propagation = jax.jit(propagation)


def _rld_weights_numpy(x, temperature):
    """DESIGN.md's W, directly, in float64."""
    x = np.asarray(x, np.float64)
    n, dim = x.shape
    d = np.sqrt(np.sum((x[:, None] - x[None]) ** 2, axis=-1)) / np.sqrt(dim)
    s = -d / d[np.triu_indices(n, 1)].mean()
    np.fill_diagonal(s, -np.inf)
    e = np.exp(s / temperature)
    return n**2 * e**2 / (e.sum(axis=1)[:, None] * e.sum(axis=0)[None, :])


def _blobs(seed, n, classes, dim=2, scale=4.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, dim)) * scale
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y.astype(np.int32)


def test_graph_is_rlds_w_and_propagation_is_normalised():
    x, _ = _blobs(0, 30, 3)
    log_w = jax.jit(metrics.rld_log_weights)(x, 0.3)
    prop = np.asarray(_propagation(log_w), np.float64)
    w = _rld_weights_numpy(x, 0.3)
    np.testing.assert_allclose(np.exp(np.asarray(log_w, np.float64)), w, rtol=2e-4, atol=1e-9)
    k = w.sum(axis=1)
    expected = 0.5 * (np.eye(30) + w / np.sqrt(np.outer(k, k)))
    np.testing.assert_allclose(prop, expected, rtol=2e-4, atol=1e-7)
    np.testing.assert_allclose(prop, prop.T, atol=1e-7)
    # Scaling W leaves P unchanged; a node without edges keeps only its self-loop.
    np.testing.assert_allclose(_propagation(log_w + 30.0), prop, rtol=1e-5, atol=1e-7)
    cut = np.asarray(log_w).copy()
    cut[0, :] = cut[:, 0] = -np.inf
    isolated = np.asarray(_propagation(cut))
    assert isolated[0, 0] == 0.5 and np.all(isolated[0, 1:] == 0) and np.all(isolated[1:, 0] == 0)


def test_shapes_and_parameter_counts():
    x, y = _blobs(1, N, CLASSES)
    logits, losses = _fit_logits(jax.random.key(0), _graph(x), y, TRAIN)
    assert logits.shape == (N, CLASSES) and losses.shape == (SMALL.steps,)
    assert np.all(np.isfinite(losses))
    params = jax.eval_shape(
        lambda k: gcn_fit(k, _graph(x), y, TRAIN, CLASSES, SMALL)[0], jax.random.key(0)
    )
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    assert params["embed"].shape == (CLASSES + 1, 8) and params["w2"].shape == (8, CLASSES)
    assert parameter_counts(dim=2, num_classes=CLASSES, hidden=8)["gcn"] == n_params
    counts = parameter_counts(dim=32, num_classes=10, hidden=8)
    assert counts == {"linear_probe": 32 * 10 + 10, "gcn": 11 * 8 + 8 * 8 + 8 + 8 * 10 + 10}
    shapes = jax.eval_shape(
        lambda k: gcn_probe_predict(k, x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], CLASSES, SMALL),
        jax.random.key(0),
    )
    assert shapes.shape == (N - N_TRAIN,) and shapes.dtype == jnp.int32
    with pytest.raises(ValueError, match="hidden=0"):
        parameter_counts(2, 3, hidden=0)
    with pytest.raises(ValueError, match=r"hide=1\.5"):
        GCNConfig(hide=1.5)
    with pytest.raises(ValueError, match="temperature=-1"):
        GCNConfig(temperature=-1)


def test_two_disconnected_cliques_labelled_by_clique():
    clique = (np.arange(N) // (N // 2)).astype(np.int32)
    log_w = np.where(clique[:, None] == clique[None, :], 0.0, -np.inf).astype(np.float32)
    train = np.isin(np.arange(N), [0, 1, 2, 3, 20, 21, 22, 23])
    logits, _ = _fit_logits(jax.random.key(3), _propagation(log_w), clique, train)
    pred = np.argmax(np.asarray(logits), axis=1)
    np.testing.assert_array_equal(pred[~train], clique[~train])


def test_test_labels_never_change_predictions():
    x, y = _blobs(2, N, CLASSES, scale=1.5)
    prop = _graph(x)
    scrambled = np.where(TRAIN, y, (y + 1 + np.arange(N)) % CLASSES).astype(np.int32)
    a, _ = _fit_logits(jax.random.key(0), prop, y, TRAIN)
    b, _ = _fit_logits(jax.random.key(0), prop, scrambled, TRAIN)
    np.testing.assert_array_equal(a, b)
    # ...whereas changing training labels changes what is learned.
    flipped = y.copy()
    flipped[:8] = (flipped[:8] + 1) % CLASSES
    c, _ = _fit_logits(jax.random.key(0), prop, flipped, TRAIN)
    assert not np.allclose(a, c)


def test_vmap_over_cells_equals_a_loop():
    cells = [_blobs(s, N, CLASSES, scale=1.0 + s) for s in range(3)]
    props = jnp.stack([_graph(c[0]) for c in cells])
    y = np.stack([c[1] for c in cells])
    keys = jax.random.split(jax.random.key(7), 3)
    train = np.broadcast_to(TRAIN, (3, N))
    batched, _ = jax.jit(jax.vmap(_fit_logits))(keys, props, y, train)
    for i in range(3):
        single, _ = _fit_logits(keys[i], props[i], y[i], TRAIN)
        np.testing.assert_allclose(batched[i], single, rtol=1e-4, atol=1e-4)
