"""Smoke test of ``clj reproduce grid-2x2`` at a size smaller than ``--quick``, and its theory."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from clj import theory
from clj.cli import main
from clj.data import make_family
from clj.reproduce import get_experiment
from clj.reproduce import grid_2x2 as g


def test_predicted_subspace_is_the_axis_plane_for_k_2_and_3():
    family = make_family("grid2x2", 5, 4)
    sigma, cross = theory.affine_moments(*theory.second_moments(family, 4))
    axes = np.eye(5)[:, :2]
    for k in (2, 3):
        basis = g.predicted_subspace(sigma, cross, k)
        assert basis.shape == (5, 2)
        np.testing.assert_allclose(theory.principal_angles(basis, axes), 0, atol=1e-6)
    # k = 1 is the constant alone: no input direction; k = 4 admits every noise direction too.
    assert g.predicted_subspace(sigma, cross, 1).shape == (5, 0)
    assert g.predicted_subspace(sigma, cross, 4).shape == (5, 5)


def test_grid_2x2_smoke_through_the_command(tmp_path, monkeypatch):
    assert get_experiment("grid-2x2") is g.EXPERIMENT
    monkeypatch.setitem(g.SIZES, "quick", g.SIZES["smoke"])
    out = tmp_path / "g"
    assert main(["reproduce", "grid-2x2", "--quick", "--out", str(out), "--no-progress"]) == 0

    size = g.SIZES["smoke"]
    table = pd.read_csv(out / "results.csv")
    assert len(table) == size.seeds * len(size.out_dims)
    assert (table.population_loss >= table.optimum - 1e-6).all()
    for split in ("row", "column", "xor"):
        assert table[f"probe_{split}"].between(0, 1).all()
    assert set(table.out_dim) == {2, 3}

    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 6
    for check in run["checks"]:
        assert not math.isnan(float(check["measured"]))
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    for figure in ("features", "loss_curves"):
        assert (out / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    assert "Spectra of a discrete 2x2 lattice" in summary
    spectra = pd.read_csv(next(out.glob("spectra_*.csv")))
    np.testing.assert_allclose(spectra["any function (graph)"][:4], 1.0)  # four components
    assert spectra["affine functions"][0] == pytest.approx(1.0)
    assert spectra["affine functions"][1] < 0.999
