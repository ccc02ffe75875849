"""Tests of clj.metrics against scikit-learn and plain-NumPy references, eager, jitted, vmapped."""

import inspect
import math
from types import SimpleNamespace

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.linear_model import RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier

from clj import metrics
from clj.metrics.probes import _ridge_scores

jax.config.update("jax_enable_x64", False)

NUM_CLASSES = 6
_STATIC = ("num_classes", "max_clusters", "iters", "k")


def _jit(fn):
    names = [name for name in _STATIC if name in inspect.signature(fn).parameters]
    return jax.jit(fn, static_argnames=names)


# Jitted once per module so repeated calls reuse compilations; eager calls are tested too.
J = SimpleNamespace(**{name: _jit(getattr(metrics, name)) for name in metrics.__all__})
_jit_ridge_scores = _jit(_ridge_scores)


# ----------------------------------------------------------------------------- helpers


def _blobs(seed: int, n: int, num_blobs: int, dim: int = 2, spread: float = 0.1, scale=10.0):
    """Gaussian blobs around random centres: ``(x [n, dim] float32, y [n] int32)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_blobs, dim)) * scale
    y = np.arange(n) % num_blobs
    rng.shuffle(y)
    x = centres[y] + spread * rng.normal(size=(n, dim))
    return x.astype(np.float32), y.astype(np.int32)


def _stack(items):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *items)


def _assert_vmap_matches(fn, items, **tol):
    """``jit(vmap(fn))`` over stacked items equals ``fn`` applied to each item."""
    batched = jax.jit(jax.vmap(fn))(*_stack(items))
    single = jax.jit(fn)
    for i, item in enumerate(items):
        np.testing.assert_allclose(batched[i], single(*item), **tol)


def _label_cases():
    """``(name, y_true, y_pred)`` label pairs in ``[0, NUM_CLASSES)``, random and degenerate."""
    cases = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        cases.append((f"random{seed}", rng.integers(0, 6, 50), rng.integers(0, 4, 50)))
    rng = np.random.default_rng(10)
    base = rng.integers(0, 3, 40)
    noisy = np.where(rng.random(40) < 0.2, rng.integers(0, 6, 40), (base + 2) % 6)
    cases += [
        ("correlated", base, noisy),
        ("both_constant", np.zeros(20), np.full(20, 3)),
        ("true_constant", np.zeros(30), rng.integers(0, 5, 30)),
        ("pred_constant", rng.integers(0, 5, 30), np.full(30, 2)),
        ("all_distinct_same", np.arange(6), np.array([3, 1, 0, 5, 2, 4])),
        ("all_distinct_vs_two", np.arange(6), np.array([0, 0, 0, 1, 1, 1])),
        ("permuted_perfect", base, (base + 4) % 6),
        ("absent_classes", rng.choice([1, 4], 30), rng.choice([0, 5, 2], 30)),
        ("two_points_split", np.array([0, 1]), np.array([1, 1])),
        ("anti", np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])),
    ]
    return [(name, np.asarray(a, np.int32), np.asarray(b, np.int32)) for name, a, b in cases]


LABEL_CASES = _label_cases()
LABEL_IDS = [case[0] for case in LABEL_CASES]


# ----------------------------------------------------------------------------- clustering


@pytest.mark.parametrize(("name", "y_true", "y_pred"), LABEL_CASES, ids=LABEL_IDS)
def test_contingency_matches_sklearn(name, y_true, y_pred):
    table = jax.jit(metrics.contingency, static_argnums=2)(y_true, y_pred, NUM_CLASSES)
    chex.assert_shape(table, (NUM_CLASSES, NUM_CLASSES))
    chex.assert_type(table, jnp.float32)
    expected = np.zeros((NUM_CLASSES, NUM_CLASSES))
    rows, cols = np.unique(y_true), np.unique(y_pred)
    expected[np.ix_(rows, cols)] = skm.cluster.contingency_matrix(y_true, y_pred)
    np.testing.assert_array_equal(np.asarray(table), expected)


@pytest.mark.parametrize(("name", "y_true", "y_pred"), LABEL_CASES, ids=LABEL_IDS)
def test_label_agreement_matches_sklearn(name, y_true, y_pred):
    mi = metrics.mutual_information(y_true, y_pred, NUM_CLASSES)
    np.testing.assert_allclose(mi, skm.mutual_info_score(y_true, y_pred), atol=1e-5, rtol=1e-5)
    expected_nmi = skm.normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic")
    np.testing.assert_allclose(metrics.nmi(y_true, y_pred, NUM_CLASSES), expected_nmi, atol=1e-5)
    expected_ari = skm.adjusted_rand_score(y_true, y_pred)
    np.testing.assert_allclose(metrics.ari(y_true, y_pred, NUM_CLASSES), expected_ari, atol=1e-5)
    np.testing.assert_allclose(
        metrics.recovered_clusters(y_true, y_pred, NUM_CLASSES), np.exp(float(mi)), rtol=1e-6
    )
    for fn in (metrics.mutual_information, metrics.nmi, metrics.ari):
        jitted = jax.jit(fn, static_argnums=2)(y_true, y_pred, NUM_CLASSES)
        np.testing.assert_allclose(jitted, fn(y_true, y_pred, NUM_CLASSES), atol=1e-6)


def test_label_special_values():
    perfect = np.array([0, 0, 1, 1, 2, 2], np.int32)
    assert float(metrics.nmi(perfect, (perfect + 3) % 6, 6)) == pytest.approx(1.0, abs=1e-6)
    assert float(metrics.ari(perfect, (perfect + 3) % 6, 6)) == 1.0
    np.testing.assert_allclose(metrics.recovered_clusters(perfect, perfect, 6), 3.0, rtol=1e-5)
    constant = np.zeros(6, np.int32)
    assert float(metrics.nmi(constant, constant + 2, 6)) == 1.0
    assert float(metrics.ari(constant, constant + 2, 6)) == 1.0
    assert float(metrics.nmi(constant, perfect, 6)) == 0.0
    np.testing.assert_allclose(metrics.recovered_clusters(constant, perfect, 6), 1.0)


def test_label_metrics_vmap():
    items = [(a, b) for _, a, b in LABEL_CASES[:4]]  # the random cases, all of length 50
    for fn in (
        metrics.mutual_information,
        metrics.nmi,
        metrics.ari,
        metrics.recovered_clusters,
    ):
        _assert_vmap_matches(lambda a, b, fn=fn: fn(a, b, NUM_CLASSES), items, atol=1e-6)
    tables = jax.vmap(lambda a, b: metrics.contingency(a, b, NUM_CLASSES))(*_stack(items))
    chex.assert_shape(tables, (4, NUM_CLASSES, NUM_CLASSES))


def _calinski_cases():
    cases = []
    for seed in range(3):
        x, y = _blobs(seed, 60, 4, dim=3, spread=1.0, scale=2.0)
        cases.append((f"blobs{seed}", x, y))
        rng = np.random.default_rng(seed + 100)
        cases.append((f"random{seed}", rng.normal(size=(60, 3)), rng.choice([0, 2, 5], 60)))
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 30)
    cases.append(("zero_within", np.arange(3)[y][:, None] * np.ones((1, 2)), y))
    cases.append(("two_classes", rng.normal(size=(30, 2)), (np.arange(30) % 2) * 5))
    return [(name, np.asarray(x, np.float32), np.asarray(y, np.int32)) for name, x, y in cases]


@pytest.mark.parametrize(
    ("name", "x", "y"), _calinski_cases(), ids=[c[0] for c in _calinski_cases()]
)
def test_calinski_harabasz_matches_sklearn(name, x, y):
    expected = skm.calinski_harabasz_score(x.astype(np.float64), y)
    value = jax.jit(metrics.calinski_harabasz, static_argnums=2)(x, y, NUM_CLASSES)
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_calinski_harabasz_degenerate_is_nan():
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    assert np.isnan(J.calinski_harabasz(x, np.full(6, 3, np.int32), NUM_CLASSES))
    assert np.isnan(J.calinski_harabasz(x, np.arange(6, dtype=np.int32), NUM_CLASSES))


def test_calinski_harabasz_vmap():
    items = [(x, y) for _, x, y in _calinski_cases()[:6]]
    _assert_vmap_matches(
        lambda x, y: metrics.calinski_harabasz(x, y, NUM_CLASSES), items, rtol=1e-5
    )


# ----------------------------------------------------------------------------- kmeans


def _inertia(x, labels):
    return sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels))


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_reaches_sklearn_inertia_on_blobs(seed):
    x, y = _blobs(seed, 120, 5, dim=3, spread=0.3, scale=8.0)
    labels = jax.jit(metrics.kmeans, static_argnums=(2, 3))(jax.random.key(seed), x, 5, 8)
    chex.assert_shape(labels, (120,))
    chex.assert_type(labels, jnp.int32)
    labels = np.asarray(labels)
    assert labels.min() >= 0 and labels.max() < 5
    reference = KMeans(n_clusters=5, n_init=10, random_state=seed).fit(x.astype(np.float64))
    assert _inertia(x.astype(np.float64), labels) <= 1.01 * reference.inertia_
    assert skm.adjusted_rand_score(y, labels) == pytest.approx(1.0)


@pytest.mark.parametrize("iters", [0, 1, 3, 50])
def test_kmeans_equals_numpy_lloyd_from_the_same_seeding(iters):
    """Lloyd's iterations, stopped early once the labels repeat, end where ``iters`` plain
    iterations from the same k-means++ centroids end (numpy reference)."""
    from clj.metrics.kmeans import _kmeans_plus_plus

    x, _ = _blobs(4, 150, 6, dim=3, spread=1.5, scale=3.0)
    key = jax.random.key(2)
    centroids = np.array(_kmeans_plus_plus(key, jnp.asarray(x), jnp.int32(5), 8))[:5]

    def assign(c):
        return np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)

    for _ in range(iters):
        labels = assign(centroids)
        for j in range(5):
            if np.any(labels == j):
                centroids[j] = x[labels == j].mean(axis=0)
    expected = assign(centroids)
    labels = np.asarray(J.kmeans(key, x, 5, 8, iters=iters))
    assert np.mean(labels == expected) >= 0.99  # float32 vs float64 near-ties aside


def test_kmeans_traced_num_clusters_under_vmap():
    x, _ = _blobs(3, 90, 6, dim=2, spread=0.2, scale=5.0)
    num_clusters = jnp.array([1, 2, 3, 4, 6], jnp.int32)
    keys = jax.random.split(jax.random.key(0), 5)
    batched = jax.jit(jax.vmap(lambda key, k: metrics.kmeans(key, x, k, 6, iters=20)))(
        keys, num_clusters
    )
    chex.assert_shape(batched, (5, 90))
    for i, k in enumerate(np.asarray(num_clusters)):
        labels = np.asarray(batched[i])
        assert set(np.unique(labels)) == set(range(k))  # all used, none masked slot
        single = J.kmeans(keys[i], x, int(k), 6, iters=20)
        np.testing.assert_array_equal(labels, single)
        if k in (1, 3):  # the static upper bound does not change a cell's result
            np.testing.assert_array_equal(labels, J.kmeans(keys[i], x, int(k), int(k), 20))


def test_kmeans_duplicate_points_and_empty_clusters():
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]], np.float32), 10, axis=0)
    labels = np.asarray(J.kmeans(jax.random.key(1), x, 4, 4))
    assert labels.min() >= 0 and labels.max() < 4
    # Identical points share a label and the two groups are separated.
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1
    assert labels[0] != labels[10]


# ----------------------------------------------------------------------------- probes


def _probe_data(seed, n_train=160, n_test=80, dim=6, classes=(0, 1, 2, 3)):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(NUM_CLASSES, dim))
    classes = np.asarray(classes)
    y_train = classes[rng.integers(0, len(classes), n_train)]
    y_test = classes[rng.integers(0, len(classes), n_test)]
    z_train = means[y_train] + 1.5 * rng.normal(size=(n_train, dim)) + 3.0
    z_test = means[y_test] + 1.5 * rng.normal(size=(n_test, dim)) + 3.0
    return (
        z_train.astype(np.float32),
        y_train.astype(np.int32),
        z_test.astype(np.float32),
        y_test.astype(np.int32),
    )


@pytest.mark.parametrize("ridge", [1e-4, 0.3, 3.0])
@pytest.mark.parametrize(("seed", "classes"), [(0, (0, 1, 2, 3)), (1, (1, 4, 5)), (2, (0, 3))])
def test_linear_probe_matches_ridge_classifier(seed, classes, ridge):
    z_train, y_train, z_test, y_test = _probe_data(seed, classes=classes)
    n = z_train.shape[0]
    reference = RidgeClassifier(alpha=ridge * n, fit_intercept=True, solver="cholesky")
    reference.fit(z_train.astype(np.float64), y_train)
    expected = reference.predict(z_test.astype(np.float64))

    # Scores pin down the ridge convention: RidgeClassifier's ±1 targets give 2·s − 1.
    scores, present, _ = _jit_ridge_scores(z_train, y_train, z_test, NUM_CLASSES, ridge)
    decision = reference.decision_function(z_test.astype(np.float64))
    ours = 2.0 * np.asarray(scores)[:, reference.classes_] - 1.0
    if len(reference.classes_) == 2:  # binary: one column, the score of classes_[1]
        ours = ours[:, 1]
    np.testing.assert_allclose(ours, decision, atol=2e-4, rtol=1e-3)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(present)), np.unique(y_train))

    predicted = jax.jit(metrics.linear_probe_predict, static_argnums=3)(
        z_train, y_train, z_test, NUM_CLASSES, ridge
    )
    chex.assert_shape(predicted, (z_test.shape[0],))
    chex.assert_type(predicted, jnp.int32)
    predicted = np.asarray(predicted)
    assert set(np.unique(predicted)) <= set(classes)
    if decision.ndim == 1:
        margin = np.abs(decision)
    else:
        top2 = np.sort(decision, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
    mismatch = predicted != expected
    assert np.all(margin[mismatch] < 1e-3), (mismatch.sum(), margin[mismatch])
    assert mismatch.mean() <= 0.05
    accuracy = J.linear_probe_accuracy(z_train, y_train, z_test, y_test, NUM_CLASSES, ridge)
    np.testing.assert_allclose(accuracy, np.mean(predicted == y_test), rtol=1e-6)


def test_linear_probe_zero_columns_change_nothing():
    z_train, y_train, z_test, y_test = _probe_data(3)
    pad = lambda z: np.concatenate([z, np.zeros((z.shape[0], 5), np.float32)], axis=1)
    plain = J.linear_probe_predict(z_train, y_train, z_test, NUM_CLASSES)
    padded = J.linear_probe_predict(pad(z_train), y_train, pad(z_test), NUM_CLASSES)
    np.testing.assert_array_equal(plain, padded)
    accuracy = J.linear_probe_accuracy(pad(z_train), y_train, pad(z_test), y_test, NUM_CLASSES)
    assert np.isfinite(accuracy) and accuracy > 0.5
    zeros = J.linear_probe_accuracy(
        np.zeros_like(z_train), y_train, np.zeros_like(z_test), y_test, NUM_CLASSES
    )
    # All-zero features: the intercept predicts the majority training class.
    majority = np.bincount(y_train).argmax()
    np.testing.assert_allclose(zeros, np.mean(y_test == majority))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_probes_non_finite_features_give_nan(bad):
    z_train, y_train, z_test, y_test = _probe_data(4)
    broken_train = z_train.copy()
    broken_train[3, 2] = bad
    broken_test = z_test.copy()
    broken_test[0, 0] = bad
    lin = jax.jit(metrics.linear_probe_accuracy, static_argnums=4)
    knn = jax.jit(metrics.knn_accuracy, static_argnums=(4, 5))
    for zt, zs in ((broken_train, z_test), (z_train, broken_test)):
        assert np.isnan(lin(zt, y_train, zs, y_test, NUM_CLASSES))
        assert np.isnan(knn(zt, y_train, zs, y_test, NUM_CLASSES, 5))
        assert np.all(np.asarray(J.linear_probe_predict(zt, y_train, zs, NUM_CLASSES)) == -1)
    assert np.isfinite(lin(z_train, y_train, z_test, y_test, NUM_CLASSES))
    # Finite features whose scores overflow are reported as NaN too, not as a guess.
    huge = np.full_like(z_train, 3e38) * (np.arange(z_train.shape[0]) % 2)[:, None]
    assert np.isnan(lin(huge, y_train, z_test, y_test, NUM_CLASSES))


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 5), (2, 7), (3, 10)])
def test_knn_matches_sklearn_without_ties(seed, k):
    z_train, y_train, z_test, y_test = _probe_data(seed, classes=(0, 2, 3, 5))
    reference = KNeighborsClassifier(n_neighbors=k).fit(z_train, y_train)
    expected = reference.predict(z_test)
    dists, idx = reference.kneighbors(z_test, n_neighbors=k + 1)
    votes = np.stack([np.bincount(row, minlength=NUM_CLASSES) for row in y_train[idx[:, :k]]])
    top2 = np.sort(votes, axis=1)[:, -2:]
    clean = (top2[:, 1] > top2[:, 0]) & (dists[:, k] - dists[:, k - 1] > 1e-3)
    assert clean.mean() > 0.6
    predicted = jax.jit(metrics.knn_predict, static_argnums=(3, 4))(
        z_train, y_train, z_test, NUM_CLASSES, k
    )
    chex.assert_shape(predicted, (z_test.shape[0],))
    np.testing.assert_array_equal(np.asarray(predicted)[clean], expected[clean])
    accuracy = J.knn_accuracy(z_train, y_train, z_test, y_test, NUM_CLASSES, k)
    np.testing.assert_allclose(accuracy, np.mean(np.asarray(predicted) == y_test))


@pytest.mark.parametrize("k", [1, 6])
def test_knn_neighbours_match_sklearn_and_serve_two_labellings(k):
    z_train, y_train, z_test, _ = _probe_data(5, classes=(0, 2, 3, 5))
    _, expected = KNeighborsClassifier(n_neighbors=k).fit(z_train, y_train).kneighbors(z_test)
    nearest = jax.jit(metrics.knn_neighbours, static_argnums=2)(z_train, z_test, k)
    chex.assert_shape(nearest, (z_test.shape[0], k))
    np.testing.assert_array_equal(np.asarray(nearest), expected)
    coarse = (y_train >= 3).astype(np.int32)
    vote = jax.jit(metrics.knn_vote, static_argnums=2)
    for labels in (y_train, coarse):
        np.testing.assert_array_equal(
            vote(nearest, labels, NUM_CLASSES),
            J.knn_predict(z_train, labels, z_test, NUM_CLASSES, k),
        )
    broken = z_test.copy()
    broken[1, 0] = np.nan
    assert np.all(np.asarray(metrics.knn_neighbours(z_train, broken, k)) == -1)
    assert np.all(np.asarray(vote(metrics.knn_neighbours(z_train, broken, k), y_train, 6)) == -1)


def test_knn_tie_goes_to_nearest_neighbours_label():
    # Distances from the test point at 0: 0.1 (label 4), 0.2 (label 1), 0.3 (label 1),
    # 0.4 (label 4), 0.5 (label 0). sklearn breaks the k=4 tie toward the smaller label 1.
    z_train = np.array([[0.1], [-0.2], [0.3], [-0.4], [0.5]], np.float32)
    y_train = np.array([4, 1, 1, 4, 0], np.int32)
    z_test = np.zeros((1, 1), np.float32)
    assert int(J.knn_predict(z_train, y_train, z_test, NUM_CLASSES, k=4)[0]) == 4
    assert int(J.knn_predict(z_train, y_train, z_test, NUM_CLASSES, k=2)[0]) == 4
    assert int(J.knn_predict(z_train, y_train, z_test, NUM_CLASSES, k=3)[0]) == 1
    # Vote ties among three classes: 4 (ranks 0, 3), 1 (ranks 1, 2) lead; 4 owns the nearest.
    assert int(J.knn_predict(z_train, y_train, z_test, NUM_CLASSES, k=5)[0]) == 4


def test_probes_vmap():
    items = [_probe_data(seed) for seed in range(3)]
    _assert_vmap_matches(
        lambda a, b, c, d: metrics.linear_probe_accuracy(a, b, c, d, NUM_CLASSES, 0.1), items
    )
    _assert_vmap_matches(lambda a, b, c, d: metrics.knn_accuracy(a, b, c, d, NUM_CLASSES, 5), items)
    preds = jax.vmap(lambda a, b, c, d: metrics.knn_predict(a, b, c, NUM_CLASSES, 3))(
        *_stack(items)
    )
    chex.assert_shape(preds, (3, items[0][2].shape[0]))


# ----------------------------------------------------------------------------- geometry


def _normalise_np(z):
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-8)


def test_alignment_and_uniformity_match_numpy():
    rng = np.random.default_rng(0)
    for _ in range(3):
        z1 = rng.normal(size=(32, 5))
        z2 = z1 + 0.3 * rng.normal(size=(32, 5))
        n1, n2 = _normalise_np(z1), _normalise_np(z2)
        expected_alignment = np.mean(np.sum((n1 - n2) ** 2, axis=1))
        np.testing.assert_allclose(
            jax.jit(metrics.alignment)(z1.astype(np.float32), z2.astype(np.float32)),
            expected_alignment,
            rtol=1e-5,
        )
        for t in (0.5, 2.0):
            i, j = np.triu_indices(32, 1)
            expected = np.log(np.mean(np.exp(-t * np.sum((n1[i] - n1[j]) ** 2, axis=1))))
            value = jax.jit(metrics.uniformity)(z1.astype(np.float32), t)
            np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)


def test_alignment_uniformity_zero_rows_and_extremes():
    z = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    assert float(J.alignment(z, 2.0 * z)) == pytest.approx(0.0, abs=1e-6)
    assert float(J.alignment(z, -z)) == pytest.approx(4.0, rel=1e-5)
    z_zero = z.copy()
    z_zero[2] = 0.0
    assert np.isfinite(J.alignment(z_zero, z))
    assert np.isfinite(J.uniformity(z_zero))
    grads = jax.jit(jax.grad(lambda a: metrics.alignment(a, z) + metrics.uniformity(a)))(z_zero)
    assert np.all(np.isfinite(grads))
    # All rows equal: every pair at distance zero, so uniformity is log(1) = 0.
    assert float(J.uniformity(np.ones((5, 3), np.float32))) == pytest.approx(0.0, abs=1e-6)


def _rld_numpy(x, y, temperature):
    """DESIGN.md's RLD formula, directly, in float64."""
    x = np.asarray(x, np.float64)
    n, dim = x.shape
    d = np.sqrt(np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)) / np.sqrt(dim)
    s = -d / d[np.triu_indices(n, 1)].mean()
    np.fill_diagonal(s, -np.inf)
    e = np.exp(s / temperature)
    w = n**2 * e**2 / (e.sum(axis=1)[:, None] * e.sum(axis=0)[None, :])
    k = w.sum(axis=1)
    two_m = w.sum()
    same = y[:, None] == y[None, :]
    return np.sum((w - np.outer(k, k) / two_m) * same) / two_m


@pytest.mark.parametrize("temperature", [0.02, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_rld_matches_numpy_formula(seed, temperature):
    rng = np.random.default_rng(seed)
    x, y = _blobs(seed, 40, 4, dim=3, spread=1.0, scale=1.5)
    x = x + 50.0  # an offset should not hurt the distances
    value = jax.jit(metrics.rld)(x, y, temperature)
    np.testing.assert_allclose(value, _rld_numpy(x, y, temperature), rtol=2e-4, atol=2e-5)
    random_labels = rng.integers(0, 3, 40).astype(np.int32)
    np.testing.assert_allclose(
        J.rld(x, random_labels, temperature),
        _rld_numpy(x, random_labels, temperature),
        rtol=2e-4,
        atol=2e-5,
    )


def test_rld_separated_blobs_beat_shuffled_labels():
    x, y = _blobs(0, 60, 3, dim=4, spread=0.3, scale=3.0)
    shuffled = np.random.default_rng(1).permutation(y)
    good = float(J.rld(x, y, 0.5))
    bad = float(J.rld(x, shuffled, 0.5))
    assert good > 0.3
    assert abs(bad) < 0.1
    assert good > bad + 0.2


def test_rld_duplicates_and_vmap():
    x, y = _blobs(2, 20, 2, dim=2)
    x[5] = x[6]  # a zero off-diagonal distance
    value = J.rld(x, y, 0.3)
    np.testing.assert_allclose(value, _rld_numpy(x, y, 0.3), rtol=2e-4, atol=2e-5)
    assert np.all(np.isfinite(jax.jit(jax.grad(metrics.rld))(x, y, 0.3)))
    assert np.isfinite(J.rld(np.ones((6, 2), np.float32), np.arange(6) % 2, 1.0))
    items = [
        (*_blobs(s, 24, 3, dim=2, spread=1.0, scale=1.0), np.float32(0.2 + s)) for s in range(3)
    ]
    _assert_vmap_matches(metrics.rld, items, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 4), (2, 9)])
def test_neighbour_agreement_matches_numpy(seed, k):
    x, y = _blobs(seed, 50, 4, dim=3, spread=1.5, scale=1.0)
    d = np.sum((x[:, None].astype(np.float64) - x[None]) ** 2, axis=-1)
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1)[:, :k]
    expected = np.mean(y[neighbours] == y[:, None])
    value = jax.jit(metrics.neighbour_agreement, static_argnums=2)(x, y, k)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    items = [_blobs(s, 30, 3, dim=2, spread=1.0, scale=1.0) for s in range(3)]
    _assert_vmap_matches(lambda a, b: metrics.neighbour_agreement(a, b, k), items)


def test_geometry_vmap():
    rng = np.random.default_rng(5)
    items = [tuple(rng.normal(size=(2, 16, 4)).astype(np.float32)) for _ in range(3)]
    _assert_vmap_matches(metrics.alignment, items, rtol=1e-6)
    _assert_vmap_matches(lambda a, b: metrics.uniformity(a, 2.0), items, rtol=1e-6)


def test_public_names():
    for name in metrics.__all__:
        assert callable(getattr(metrics, name)), name
    assert math.isclose(
        float(metrics.recovered_clusters(np.arange(4), np.arange(4), 4)), 4.0, rel_tol=1e-5
    )


# ---------------------------------------------------------------------------------------------
# The plain-JAX SPD solve behind the probe (no LAPACK call, which can deadlock CPU devices).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 7, 24])
def test_spd_solve_matches_numpy(dim: int) -> None:
    from clj.metrics._linalg import cholesky, spd_solve

    rng = np.random.default_rng(dim)
    m = rng.normal(size=(dim + 4, dim))
    a = (m.T @ m + 0.1 * np.eye(dim)).astype(np.float32)
    b = rng.normal(size=(dim, 3)).astype(np.float32)
    np.testing.assert_allclose(cholesky(jnp.asarray(a)), np.linalg.cholesky(a), atol=1e-4)
    np.testing.assert_allclose(
        jax.jit(spd_solve)(a, b), np.linalg.solve(a.astype(np.float64), b), rtol=1e-3, atol=1e-4
    )


def test_evaluation_makes_no_lapack_call() -> None:
    from clj import SweepConfig, make_evaluate, make_train
    from clj.cell import stack_cells
    from clj.plan import plan_programs

    sizes = {"dim": 4, "widths": 4, "clusters": 3, "out_dims": 2, "seeds": 1}
    config = SweepConfig(data="gaussian_mixture", steps=10, batch=8, eval_size=16, **sizes)
    program = plan_programs(config)[0]
    trainer = make_train(program.spec)
    cells = stack_cells(list(program.cells))
    state = jax.jit(jax.vmap(trainer.init))(cells)
    curves = jnp.zeros((1, 1))
    text = jax.jit(jax.vmap(make_evaluate(trainer))).lower(state, cells, curves).as_text()
    assert "lapack" not in text.lower()
