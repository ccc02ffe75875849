"""saunshi-table1: the logistic probe against scikit-learn, the hand-built representations, the
held-out loss against a NumPy NT-Xent, the checks' logic, and a smoke run that writes a report."""

import itertools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from clj.cell import stack_cells
from clj.data import make_family
from clj.reproduce import EXPERIMENTS, get_experiment, write_report
from clj.reproduce import saunshi_table1 as table1
from clj.reproduce.saunshi_measure import (
    batch_losses,
    cell_data,
    mean_cosine,
    perfect_features,
    spurious_features,
)
from clj.reproduce.saunshi_probe import (
    logistic_probe_accuracy,
    logistic_probe_fit,
    logistic_probe_predict,
)
from clj.spec import Spec
from clj.train import make_train


def _cell(seed: int = 3, clusters: int = 2) -> dict:
    return {
        "seed": seed,
        "width": 8,
        "clusters": clusters,
        "out_dim": 4,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "temperature": 0.5,
        "dof": 5.0,
        "lam": 1.0,
    }


def test_logistic_probe_matches_sklearn():
    rng = np.random.default_rng(0)
    n, l2 = 400, 1e-2
    x = rng.normal(size=(n, 3)) * np.array([1.0, 3.0, 0.2]) + np.array([0.5, -1.0, 2.0])
    y = (x @ np.array([1.0, -0.3, 2.0]) + rng.normal(size=n) > 1.0).astype(np.int32)
    probe = jax.jit(logistic_probe_fit, static_argnums=(2, 3))(x, y, l2, 40)
    xs = (x - x.mean(0)) / x.std(0)
    reference = LogisticRegression(C=1.0 / (l2 * n), tol=1e-12, max_iter=10_000).fit(xs, y)
    np.testing.assert_allclose(probe.coef, reference.coef_[0], atol=1e-4)
    np.testing.assert_allclose(probe.intercept, reference.intercept_[0], atol=1e-4)
    x_test = rng.normal(size=(200, 3))
    reference_pred = reference.predict((x_test - x.mean(0)) / x.std(0))
    np.testing.assert_array_equal(logistic_probe_predict(probe, x_test), reference_pred)


def test_logistic_probe_separates_a_threshold_the_least_squares_probe_misses():
    # Every vertex of {±1}^5; a label sign(w·x) whose least-squares direction misclassifies.
    x = np.array(list(itertools.product([-1.0, 1.0], repeat=5)))
    rng = np.random.default_rng(1)
    for _ in range(100):
        w = rng.normal(size=5)
        y = (x @ w > 0).astype(np.int32)
        xc = x - x.mean(0)
        beta = np.linalg.lstsq(xc, y - y.mean(), rcond=None)[0]
        if np.mean((xc @ beta + y.mean() > 0.5) == y) < 1:
            break
    else:
        pytest.fail("no threshold function defeats least squares")
    z = np.repeat(x, 20, axis=0)
    labels = np.repeat(y, 20)
    accuracy = jax.jit(logistic_probe_accuracy)
    assert float(accuracy(z, labels, x, y)) == 1.0
    z[3, 1] = np.nan  # a diverged representation scores NaN, not a number
    assert np.isnan(accuracy(z, labels, x, y))
    with pytest.raises(ValueError, match="l2=0"):
        logistic_probe_fit(z, labels, l2=0)


def test_hand_built_representations_are_invariant_bits_on_the_training_pool():
    family = make_family("hypercube", 6, 2)
    spec = Spec(family=family, loss="info_nce", max_width=8, max_out_dim=4, pool_size=32)
    cell = jax.tree.map(lambda a: a[0], stack_cells([_cell()]))
    state = jax.jit(make_train(spec).init)(cell)
    data = jax.jit(cell_data, static_argnums=(0, 1, 2))(family, 32, 128, cell)
    chex.assert_shape(data.views, (2, 128, 6))
    np.testing.assert_array_equal(data.pool.x, state.pool.x)
    np.testing.assert_array_equal(data.world, state.world)
    assert not np.array_equal(data.test.x[:32], data.pool.x)
    x_bar = np.asarray(data.test.x)
    for view in data.views:
        np.testing.assert_array_equal(perfect_features(view, 2), x_bar[:, :2])
        np.testing.assert_array_equal(spurious_features(view, 2), x_bar[:, 2:4])
    assert not np.array_equal(data.views[0][:, 2:], data.views[1][:, 2:])  # τ varies
    redrawn = np.asarray(data.redrawn)
    np.testing.assert_array_equal(redrawn[:, :2], x_bar[:, :2])
    assert set(np.unique(redrawn)) == {-1.0, 1.0}
    assert 0.4 < np.mean(redrawn[:, 2:] != x_bar[:, 2:]) < 0.6
    f_cosine = mean_cosine(perfect_features(x_bar, 2), perfect_features(redrawn, 2))
    np.testing.assert_allclose(f_cosine, 1.0, rtol=1e-6)
    g_test, g_redrawn = spurious_features(x_bar, 2), spurious_features(redrawn, 2)
    expected = np.mean(np.sum(g_test * g_redrawn, 1) / 2.0)  # ±1 bits: norms are √2
    np.testing.assert_allclose(mean_cosine(g_test, g_redrawn), expected, rtol=1e-6)
    assert abs(expected) < 0.3
    with pytest.raises(ValueError, match="dim=3"):
        spurious_features(jnp.ones((4, 3)), 2)


def _nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    rows = np.concatenate([z1, z2])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    b = len(z1)
    losses = []
    for i in range(2 * b):
        sims = rows @ rows[i] / temperature
        partner = (i + b) % (2 * b)
        others = np.delete(sims, i)
        losses.append(np.log(np.sum(np.exp(others))) - sims[partner])
    return float(np.mean(losses))


def test_batch_losses_match_numpy():
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(2, 11, 3))
    got = batch_losses(jnp.asarray(z1), jnp.asarray(z2), 5, 0.5)
    expected = [_nt_xent(z1[i : i + 5], z2[i : i + 5], 0.5) for i in (0, 5)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="batch=12"):
        batch_losses(jnp.asarray(z1), jnp.asarray(z2), 12, 0.5)


def _fake_table(accuracy: dict, loss: dict, seeds: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for name in table1.ORDER:
        for s in range(seeds):
            rows.append(
                {
                    "representation": name,
                    "seed": s,
                    "simclr_loss": loss[name] + 1e-3 * rng.normal(),
                    "probe_accuracy": accuracy[name] + 1e-3 * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_checks_follow_the_measurements():
    rng = np.random.default_rng(4)
    same = {(name, s): 4.7 + 0.01 * rng.normal(size=40) for name in table1.ORDER for s in range(5)}
    paper_like = _fake_table(
        {"perfect f": 1.0, "spurious g": 0.5, "MLP + Adam": 0.75, "MLP + Adam + wd": 0.9,
         "linear": 0.995},
        {"perfect f": 4.7, "spurious g": 4.7, "MLP + Adam": 4.5, "MLP + Adam + wd": 4.55,
         "linear": 4.65},
    )  # fmt: skip
    assert all(c.passed for c in table1._checks(paper_like, same))
    reversed_ = _fake_table(
        {"perfect f": 0.9, "spurious g": 0.7, "MLP + Adam": 0.95, "MLP + Adam + wd": 0.8,
         "linear": 0.9},
        {"perfect f": 4.7, "spurious g": 4.7, "MLP + Adam": 4.8, "MLP + Adam + wd": 4.55,
         "linear": 4.65},
    )  # fmt: skip
    shifted = dict(same) | {("spurious g", s): same["perfect f", s] + 0.05 for s in range(5)}
    assert not any(c.passed for c in table1._checks(reversed_, shifted))


def test_smoke_run_writes_report(tmp_path):
    assert EXPERIMENTS["saunshi-table1"] == "clj.reproduce.saunshi_table1"
    experiment = get_experiment("saunshi-table1")
    report = table1.saunshi_table1(table1.SIZES["smoke"], progress=False)
    size = table1.SIZES["smoke"]
    assert len(report.table) == 5 * size.seeds
    assert list(report.table.representation.unique()) == list(table1.ORDER)
    assert np.all(np.isfinite(report.table.simclr_loss))
    assert np.all(report.table.probe_accuracy.between(0, 1))
    assert np.all(report.table.invariant_similarity.between(-1, 1 + 1e-6))
    assert report.table.loc[report.table.representation == "perfect f", "probe_accuracy"].min() == 1
    assert len(report.checks) == 6
    assert all(isinstance(c.passed, bool) for c in report.checks)
    paper = report.tables["Table 1 beside the paper"]
    assert list(paper.representation) == list(table1.ORDER)
    out = write_report(
        tmp_path / "out", experiment.name, experiment.title, experiment.claim, report, True, "x"
    )
    for name in ("results.csv", "table_1_beside_the_paper.csv", "loss_vs_accuracy.png"):
        assert (out / name).stat().st_size > 0
    assert "4.939" in (out / "summary.md").read_text()
    assert json.loads((out / "run.json").read_text())["verdict"] == report.verdict
