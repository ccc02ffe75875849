"""``lipschitz-regions``: its geometric thresholds against samples, and a smoke run."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pandas as pd
import pytest

from clj.cell import stack_cells
from clj.cli import main
from clj.reproduce import lipschitz_regions as lr


def test_thresholds_match_sampled_geometry():
    """The region cap's distance is the nearest views of two regions; ρ² the mean squared
    distance of a view to its region's centroid (Monte Carlo, numpy)."""
    data = lr.family()
    values = dict(seed=1, width=4, clusters=16, out_dim=4, lr=1e-3, weight_decay=0.0)
    cell = jax.tree.map(
        lambda a: a[0], stack_cells([values | dict(temperature=0.5, dof=5.0, lam=1.0)])
    )

    @jax.jit
    def draw(key):
        k_world, k_pairs = jax.random.split(key)
        world = data.world(k_world, cell)
        return world, data.sample(k_pairs, world, cell, 4000)

    world, views = draw(jax.random.key(0))
    x = np.concatenate([views.x1, views.x2])
    region = np.concatenate([views.coarse, views.coarse])
    centroids = np.stack([np.asarray(world.centres)[g::4].mean(0) for g in range(4)])
    rho2 = np.mean(np.sum((x - centroids[region]) ** 2, axis=1))
    bound = lr.cluster_bound(data, lr.SUBCLUSTERS, 1.0)
    np.testing.assert_allclose(bound - data.regions, 2 * rho2, rtol=0.03)
    assert lr.cluster_bound(data, lr.SUBCLUSTERS, 2.0) - 4 == pytest.approx(4 * (bound - 4))

    nearest = math.sqrt(2 * data.regions) / lr.region_cap(data)
    a, b = x[region == 0][:1500], x[region == 1][:1500]
    sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None] - 2 * a @ b.T
    gaps = np.sqrt(np.maximum(sq, 0.0))
    centres = math.sqrt(2 * data.region_radius**2 + 2 * data.sub_radius**2)
    assert nearest <= gaps.min() < centres  # the infimum over the views' support


def test_lipschitz_regions_smoke_through_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(lr.SIZES, "quick", lr.SIZES["smoke"])
    out = tmp_path / "lr"
    args = ["reproduce", "lipschitz-regions", "--quick", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    size = lr.SIZES["smoke"]
    table = pd.read_csv(out / "results.csv")
    assert len(table) == (len(size.multiples) + 1) * 2 * size.seeds  # caps × k × seeds
    assert set(table.out_dim) == {lr.REGIONS, lr.REGIONS * lr.SUBCLUSTERS}
    assert np.isinf(table.lipschitz).sum() == 2 * size.seeds
    np.testing.assert_allclose(
        sorted(table.cap_over_region_cap[np.isfinite(table.lipschitz)].unique()),
        size.multiples,
        rtol=1e-6,
    )
    assert table.probe_coarse.between(0, 1).all() and table.knn_fine.between(0, 1).all()
    np.testing.assert_allclose(table.implemented, -table.eval_loss)
    assert table.program.nunique() == 1  # one vmapped program for every cap, k and seed
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 5
    assert all(c["measured"] not in ("", "nan") for c in run["checks"])
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    assert (out / "accuracy_vs_cap.png").read_bytes()[:4] == b"\x89PNG"
    means = pd.read_csv(out / "means_over_seeds.csv")
    assert len(means) == len(table) // size.seeds
    summary = (out / "summary.md").read_text()
    assert "lipschitz-regions" in summary and "## Verdict" in summary
    assert "lipschitz-regions:" in capsys.readouterr().err
