"""``clj reproduce simvae-style`` at its smoke size, and the style regression's R²."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from clj.cli import main
from clj.reproduce import simvae_style as ss


def test_ridge_r2_matches_scikit_learn():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 5)) * [1.0, 2.0, 0.5, 3.0, 1.0] + 4.0
    z[:, 4] = 1.5  # a constant feature is dropped
    style = z[:, :2] @ np.array([[1.0, -0.5], [0.3, 2.0]]) + rng.normal(size=(300, 2))
    fit, score = slice(0, 200), slice(200, 300)
    mean, sd = z[fit, :4].mean(0), z[fit, :4].std(0)
    model = Ridge(alpha=1e-3 * 200).fit((z[fit, :4] - mean) / sd, style[fit])
    ref = r2_score(style[score], model.predict((z[score, :4] - mean) / sd))
    got = ss.ridge_r2(z[fit], style[fit], z[score], style[score], ridge=1e-3)
    assert got == pytest.approx(ref, rel=1e-9)
    assert 0.5 < got < 1.0
    assert np.isnan(ss.ridge_r2(z[fit] * np.nan, style[fit], z[score], style[score]))


def test_simvae_style_smoke_through_the_command(tmp_path, monkeypatch):
    monkeypatch.setitem(ss.SIZES, "quick", ss.SIZES["smoke"])
    out = tmp_path / "sv"
    assert main(["reproduce", "simvae-style", "--quick", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv")
    size = ss.SIZES["smoke"]
    per_dataset = size.seeds * (2 + len(size.prior_vars))
    assert len(table) == per_dataset * len(size.datasets)
    assert set(table.objective) == {"SimCLR", "VAE", "SimVAE"}
    assert set(table.loss) == {"info_nce", "vae_bernoulli", "simvae_bernoulli"}
    assert table.content_acc.between(0, 1).all() and np.isfinite(table.style_r2).all()
    assert (table.style_r2 <= 1).all()
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 4 * len(size.datasets)
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    assert (out / "content_vs_style.png").is_file()
    assert "simvae-style" in (out / "summary.md").read_text()
