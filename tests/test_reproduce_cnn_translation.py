"""``cnn-translation``: the needed-k measurement against hand-worked cases, and a smoke run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clj.cli import main
from clj.reproduce import cnn_translation as ct


@pytest.mark.parametrize(
    ("accuracy", "expected"),
    [
        ([0.2, 0.5, 0.95, 0.99, 0.97], 4.0),  # first k from which all larger k pass
        ([0.95, 0.5, 0.95, 0.99, 0.97], 4.0),  # an early pass followed by a fail does not count
        ([0.91, 0.92, 0.95, 0.99, 0.97], 1.0),
        ([0.2, 0.5, 0.95, 0.99, 0.85], np.nan),  # the largest k fails: beyond the grid
        ([0.2, np.nan, 0.95, 0.99, 0.97], 4.0),  # NaN (a diverged cell) is a fail
        ([0.2, 0.5, 0.95, 0.99, np.nan], np.nan),
    ],
)
def test_needed_k(accuracy, expected):
    ks = np.array([1, 2, 4, 8, 16])
    np.testing.assert_equal(ct.needed_k(ks, np.array(accuracy), 0.9), expected)
    # The order in which the grid lists k does not matter.
    order = np.array([3, 0, 4, 2, 1])
    np.testing.assert_equal(ct.needed_k(ks[order], np.array(accuracy)[order], 0.9), expected)


def test_predictions_and_slope():
    assert [ct.predicted_k("cnn1d", s, 8) for s in (1, 2, 3)] == [2, 4, 8]
    assert [ct.predicted_k("mlp", s, p) for s, p in ((1, 2), (2, 4), (3, 8))] == [2, 8, 32]
    assert ct.implementable_clusters("mlp", 3, 4) == 32
    # needed k = c_s · P^a within each s: the slope is a whatever the per-s constants.
    rows = [(s, p, 3.0 * s * p**0.8) for s in (1, 2, 3) for p in (2, 4, 8)]
    table = pd.DataFrame(rows, columns=["s", "P", "needed_k"])
    assert ct._slope(table) == pytest.approx(0.8)
    assert np.isnan(ct._slope(table[table.P == 2]))


def test_cnn_translation_smoke_through_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ct.SIZES, "quick", ct.SIZES["smoke"])
    out = tmp_path / "ct"
    assert (
        main(["reproduce", "cnn-translation", "--quick", "--out", str(out), "--no-progress"]) == 0
    )
    size = ct.SIZES["smoke"]
    table = pd.read_csv(out / "results.csv")
    cells = 2 * len(size.patches) * len(size.bits) * len(size.out_dims) * size.seeds
    assert len(table) == cells
    assert set(table.encoder) == {"cnn1d", "mlp"}
    assert table.position_probe.between(0, 1).all()
    # The CNN cannot see positions at all: its position probe is at chance whatever it learned.
    cnn = table[table.encoder == "cnn1d"]
    assert (cnn.position_probe < 1 / cnn.P + 0.1).all()
    needed = pd.read_csv(out / "needed_k.csv")
    assert len(needed) == 2 * len(size.patches) * len(size.bits)
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) >= 4
    assert all(isinstance(c["passed"], bool) for c in run["checks"])
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    for figure in ("probe_vs_k.png", "needed_k.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    assert "cnn-translation" in (out / "summary.md").read_text()
    assert "cnn-translation:" in capsys.readouterr().err
