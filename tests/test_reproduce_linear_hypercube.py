"""Smoke test of ``clj reproduce linear-hypercube`` at a size smaller than ``--quick``."""

import json
import math

import numpy as np
import pandas as pd

from clj.cli import main
from clj.reproduce import EXPERIMENTS, get_experiment
from clj.reproduce import linear_hypercube as lh


def test_linear_hypercube_smoke_through_the_command(tmp_path, monkeypatch):
    assert get_experiment("linear-hypercube") is lh.EXPERIMENT
    assert EXPERIMENTS["linear-hypercube"] == "clj.reproduce.linear_hypercube"
    monkeypatch.setitem(lh.SIZES, "quick", lh.SIZES["smoke"])
    out = tmp_path / "lh"
    assert (
        main(["reproduce", "linear-hypercube", "--quick", "--out", str(out), "--no-progress"]) == 0
    )

    size = lh.SIZES["smoke"]
    table = pd.read_csv(out / "results.csv")
    linear = table[table.model == "linear"]
    assert len(table) == len(linear) == size.seeds * len(size.invariant) * len(size.out_dims)
    assert not size.mlp_widths  # the smoke size skips the MLP grid (its helpers are tested below)
    # The closed form: the affine optimum is −k up to k = s + 1 invariant features (s + constant).
    for row in linear.itertuples():
        assert row.optimum == -min(row.out_dim, row.clusters + 1) or row.out_dim > row.clusters + 1
        assert row.population_loss >= row.optimum - 1e-6  # nothing beats the optimum
    assert linear.probe_logistic.between(0, 1).all()
    assert linear.invariant_energy.between(0, 1 + 1e-9).all()

    run = json.loads((out / "run.json").read_text())
    assert [c["name"][:15] for c in run["checks"]] == [
        "population loss",
        "largest princip",
        "linear-probe ac",
    ]
    for check in run["checks"]:
        assert not math.isnan(float(check["measured"]))
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    for figure in ("loss_curves", "subspace"):
        assert (out / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    assert "linear-hypercube" in summary and "## Verdict" in summary


def test_mlp_comparison_table_and_figure():
    """The linear row and one row per MLP width, means and spreads over seeds."""
    linear = pd.DataFrame(
        {
            "clusters": [4, 4, 2],
            "out_dim": [5, 5, 3],
            "seed": [0, 1, 0],
            "eval_loss": [-4.9, -4.7, -3.0],
            "probe_logistic": [1.0, 0.98, 1.0],
            "probe_coarse": [0.9, 0.8, 1.0],
        }
    )
    mlp = pd.DataFrame(
        {
            "width": [8, 8, 32, 32],
            "seed": [0, 1, 0, 1],
            "eval_loss": [-4.0, -4.2, -5.0, -4.8],
            "probe_logistic": [0.6, 0.8, 0.9, 0.7],
            "probe_coarse": [0.5, 0.5, 0.6, 0.6],
        }
    )
    out = lh._comparison(linear, mlp, 4, 5)
    assert out.model.tolist() == ["linear", "MLP width 8", "MLP width 32"]
    np.testing.assert_allclose(out.eval_loss, [-4.8, -4.1, -4.9])
    np.testing.assert_allclose(out.probe_logistic, [0.99, 0.7, 0.8])
    sd = [np.std(pair, ddof=1) for pair in ([1.0, 0.98], [0.6, 0.8], [0.9, 0.7])]
    np.testing.assert_allclose(out.probe_logistic_sd, sd)
    assert out.seeds.tolist() == [2, 2, 2]
    figure = lh._width_figure(out, 4, 5)
    assert len(figure.axes) == 2
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert set(labels) == {"linear", "MLP (depth 2)", "−(s + 1) = -5"}
