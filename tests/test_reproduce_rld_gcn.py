"""``clj reproduce rld-gcn`` at its smoke size: every output written, every check computed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clj.cli import main
from clj.reproduce import EXPERIMENTS, get_experiment
from clj.reproduce import rld_gcn as rg


def test_rld_gcn_smoke_through_the_command(tmp_path, monkeypatch, capsys):
    assert EXPERIMENTS["rld-gcn"] == "clj.reproduce.rld_gcn"
    assert get_experiment("rld-gcn").name == "rld-gcn"
    size = rg.SIZES["smoke"]
    monkeypatch.setitem(rg.SIZES, "quick", size)
    out = tmp_path / "rld"
    assert main(["reproduce", "rld-gcn", "--quick", "--out", str(out), "--no-progress"]) == 0

    table = pd.read_csv(out / "results.csv")
    assert len(table) == len(size.datasets) * len(rg.OBJECTIVES) * size.seeds
    assert set(table.objective) == {"contrastive", "supervised"}
    assert set(table.loss) == {"info_nce", "supervised"}
    assert (table.diverged == 0).all()
    assert set(rg.MEASURED) <= set(table.columns)
    for column in ("linear_probe", "gcn", *(f"agree_{k}" for k in rg.NEIGHBOURS)):
        assert table[column].between(0, 1).all(), column
    for t in rg.RLD_TEMPERATURES:
        assert table[f"rld_{t:g}"].between(-0.5, 1).all()
    assert (table.ch > 0).all()

    toys = pd.read_csv(out / "toy_sets.csv")
    assert list(toys.set) == list(rg.TOY_SETS)
    sizes = pd.read_csv(out / "probe_sizes.csv")
    assert (sizes.gcn_params > 0).all() and (sizes.linear_probe_params > 0).all()

    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 3 + 3 * len(size.datasets)
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    for stem in ("toys", "measures", "features"):
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    assert "rld-gcn" in summary and "Calinski" in summary
    assert "rld-gcn:" in capsys.readouterr().err


def test_sizes_and_datasets_are_validated():
    with pytest.raises(ValueError, match="'cifar'"):
        rg.RldGcnSize(seeds=1, steps=10, datasets=("cifar",))
    with pytest.raises(ValueError, match="'cifar'"):
        rg.dataset_config("cifar", rg.SIZES["smoke"])
