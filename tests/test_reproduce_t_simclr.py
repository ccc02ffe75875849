"""``t-simclr``: the kernel limit behind its notes, its checks on hand-made numbers, a smoke run."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clj.cli import main
from clj.losses import info_nce, t_info_nce
from clj.reproduce import t_simclr as ts
from clj.reproduce.grid import seed_summary
from clj.reproduce.t_simclr_features import LossSpace, to_loss_space
from clj.reproduce.t_simclr_figures import accuracy_figure, toy_figure


def test_t_info_nce_with_huge_dof_on_unit_vectors_is_info_nce():
    # (1 + d²/(τν))^(−(ν+1)/2) → exp(−d²/(2τ)) and d² = 2 − 2cos on unit vectors, so the
    # Gaussian-kernel limit of t-SimCLR on normalised features is SimCLR at the same τ.
    z1, z2 = jax.random.normal(jax.random.key(0), (2, 12, 3))
    u1, u2 = to_loss_space(z1, "info_nce"), to_loss_space(z2, "info_nce")
    t_loss, loss = jax.jit(t_info_nce), jax.jit(info_nce)
    for temperature in (0.2, 1.0):
        limit = t_loss(u1, u2, temperature, 1e6)
        assert float(limit) == pytest.approx(float(loss(z1, z2, temperature)), rel=1e-4)
        # A heavy tail is a different kernel: ν = 1 does not give the same loss.
        heavy = t_loss(u1, u2, temperature, 1.0)
        assert abs(float(heavy) - float(limit)) > 1e-3


def test_to_loss_space_normalises_only_for_info_nce():
    z = jnp.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(
        to_loss_space(z, "info_nce"), [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], rtol=1e-6
    )
    assert to_loss_space(z, "t_info_nce") is z


def _per_seed_table() -> pd.DataFrame:
    """Two seeds per setting; knn means are written beside each row."""
    rows = []

    def add(method, temperature, k, knn, probe=0.1):
        for seed, value in enumerate(knn):
            rows.append(
                dict(
                    part="mixture",
                    method=method,
                    temperature=temperature,
                    out_dim=k,
                    seed=seed,
                    knn_fine=value,
                    probe_fine=probe,
                    knn_loss_space=value,
                )
            )

    add("SimCLR", 0.2, 1, [0.20, 0.22])  # mean 0.21
    add("SimCLR", 0.2, 8, [0.90, 0.90])  # mean 0.90
    add("SimCLR", 0.5, 1, [0.30, 0.30])  # best at k = 1: 0.30
    add("SimCLR", 0.5, 8, [0.95, 0.97])  # best at k = 8: 0.96
    add("t-SimCLR ν=1", 1.0, 1, [0.60, 0.70])  # 0.65
    add("t-SimCLR ν=1", 1.0, 8, [0.98, 0.98])
    add("t-SimCLR ν=1000", 1.0, 1, [0.40, 0.40])
    add("t-SimCLR ν=1000", 1.0, 8, [0.96, 0.96])
    add("t-SimCLR ν=5", 1.0, 1, [0.50, 0.50])  # sorts between ν = 1 and ν = 1000
    add("t-SimCLR ν=5", 1.0, 8, [0.97, 0.97])
    return pd.DataFrame(rows)


def test_checks_follow_hand_computed_gains():
    size = dataclasses.replace(ts.SIZES["smoke"], out_dims=(1, 8), dofs=(1.0, 1000.0))
    means = seed_summary(
        _per_seed_table(), ["part", "method", "temperature", "out_dim"], list(ts.METRICS)
    )
    best = {m: ts.best_over_temperature(means, m) for m in ts.METRICS}
    assert pd.unique(best["knn_fine"].method).tolist() == [
        "SimCLR",
        "t-SimCLR ν=1",
        "t-SimCLR ν=5",
        "t-SimCLR ν=1000",
    ]
    simclr = best["knn_fine"][best["knn_fine"].method == "SimCLR"]
    assert simclr.temperature.tolist() == [0.5, 0.5]
    assert simclr["mean"].tolist() == pytest.approx([0.30, 0.96])
    checks = {c.name: c for c in ts._gain_checks(best, "mixture", size)}
    assert len(checks) == 6
    measured = {name: c.measured for name, c in checks.items()}
    passed = {name: c.passed for name, c in checks.items()}
    knn_gain = "mixture: knn_fine of t-SimCLR ν=1 minus SimCLR's at k = 1"
    knn_shrink = "mixture: knn_fine gain (t-SimCLR ν=1 − SimCLR) at k = 1 minus at k = 8"
    probe_gain = "mixture: probe_fine of t-SimCLR ν=1 minus SimCLR's at k = 1"
    tail = "mixture: knn_fine gain over SimCLR at k = 1, ν = 1 minus ν = 1000"
    closer = (
        "mixture: mean over k of the absolute knn_fine difference from SimCLR, ν = 1000 minus ν = 1"
    )
    assert measured[knn_gain] == pytest.approx(0.65 - 0.30) and passed[knn_gain]
    assert measured[knn_shrink] == pytest.approx(0.35 - 0.02) and passed[knn_shrink]
    assert measured[probe_gain] == pytest.approx(0.0) and not passed[probe_gain]
    assert measured[tail] == pytest.approx(0.35 - 0.10) and passed[tail]
    # ν = 1: |0.35|, |0.02| -> 0.185; ν = 1000: |0.10|, |0.00| -> 0.05.
    assert measured[closer] == pytest.approx(0.05 - 0.185) and passed[closer]


def test_toy_checks_compare_with_the_input_and_between_losses():
    means = pd.DataFrame(
        {
            "part": ["toy", "toy"],
            "method": ["SimCLR", "t-SimCLR ν=1"],
            "knn_loss_space_mean": [0.99, 0.97],
            "knn_input_mean": [0.985, 0.985],
            "ch_loss_space_mean": [40.0, 100.0],
        }
    )
    knn, ch = ts._toy_checks(means)
    assert knn.measured == pytest.approx(-0.015) and knn.passed
    assert ch.measured == pytest.approx(2.5) and ch.passed
    means.loc[1, "knn_loss_space_mean"] = 0.9
    assert not ts._toy_checks(means)[0].passed


def test_figures_draw_every_method_and_panel():
    means = seed_summary(
        _per_seed_table(), ["part", "method", "temperature", "out_dim"], list(ts.METRICS)
    )
    best = {m: ts.best_over_temperature(means, m) for m in ts.METRICS}
    fig = accuracy_figure(best, ["mixture"], ts.METRICS)
    assert isinstance(fig, Figure) and len(fig.axes) == len(ts.METRICS)
    assert fig.axes[0].get_legend_handles_labels()[1] == [
        "SimCLR",
        "t-SimCLR ν=1",
        "t-SimCLR ν=5",
        "t-SimCLR ν=1000",
    ]
    rng = np.random.default_rng(0)
    space = LossSpace(
        x=rng.normal(size=(1, 20, 2)),
        labels=np.arange(20)[None] % 5,
        z=rng.normal(size=(1, 20, 2)),
        knn=np.ones(1),
        knn_input=np.ones(1),
        calinski_harabasz=np.ones(1),
    )
    cell = {"seed": 0, "temperature": 0.5, "dof": 1.0}
    fig = toy_figure({"info_nce": ([cell], space), "t_info_nce": ([cell], space)}, 5)
    assert len(fig.axes) == 3 and "ν = 1" in fig.axes[2].get_title()


def test_t_simclr_smoke_through_the_command(tmp_path, monkeypatch):
    monkeypatch.setitem(ts.SIZES, "quick", ts.SIZES["smoke"])
    out = tmp_path / "t"
    assert main(["reproduce", "t-simclr", "--quick", "--out", str(out), "--no-progress"]) == 0
    size = ts.SIZES["smoke"]
    table = pd.read_csv(out / "results.csv")
    k, nu = len(size.out_dims), len(size.dofs)
    t_cells = k * nu * len(size.t_temperatures) * size.seeds
    s_cells = k * len(size.simclr_temperatures) * size.seeds
    assert len(table) == t_cells + s_cells
    assert set(table.method) == {"SimCLR", *(f"t-SimCLR ν={d:g}" for d in size.dofs)}
    assert table.knn_loss_space.between(0, 1).all() and table.knn_fine.between(0, 1).all()
    assert table[table.method == "SimCLR"].dof.isna().all()
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 6 * (len(size.parts) - ("toy" in size.parts)) + 2 * (
        "toy" in size.parts
    )
    assert all(c["measured"] != "nan" for c in run["checks"])
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    assert (out / "accuracy_vs_k.png").is_file()
    assert "t-simclr" in (out / "summary.md").read_text()
    assert not math.isnan(table.probe_fine.mean())
