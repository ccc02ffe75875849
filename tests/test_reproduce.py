"""``clj reproduce``: reports, verdicts derived from checks, the command, and capacity-grid."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.figure import Figure

from clj.cli import main
from clj.reproduce import EXPERIMENTS, Check, Report, get_experiment, verdict, write_report
from clj.reproduce import capacity_grid as cg


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("clj: error: ")
    return err


def test_verdict_follows_the_checks():
    yes, no = Check("a", "> 1", 2.0, True), Check("b", "< 1", 3.0, False)
    assert verdict([yes, yes]) == "agrees"
    assert verdict([yes, no]) == "partly agrees"
    assert verdict([no]) == "disagrees"
    with pytest.raises(ValueError, match="at least one check"):
        verdict([])


def test_write_report_writes_every_part(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    report = Report(
        table=pd.DataFrame({"cell": [0, 1], "acc": [0.5, 1.0]}),
        checks=[Check("accuracy", "≥ 0.9", 0.95, True), Check("gap", "< 1%", float("nan"), False)],
        figures={"curve": fig},
        tables={"Means over seeds": pd.DataFrame({"k": [2], "acc": [0.75]})},
        notes="Some caveat.",
        wall_s=1.5,
    )
    out = write_report(tmp_path / "r", "demo", "A title", "The claim.", report, True, "clj x")
    assert pd.read_csv(out / "results.csv").acc.tolist() == [0.5, 1.0]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out / "means_over_seeds.csv").k.tolist() == [2]
    summary = (out / "summary.md").read_text()
    assert "## Prediction\n\nThe claim." in summary
    assert "## Verdict: partly agrees" in summary
    assert "| accuracy | ≥ 0.9 | 0.95 | yes |" in summary
    assert "| gap | < 1% | nan | no |" in summary
    assert "![curve](curve.png)" in summary and "Some caveat." in summary
    run = json.loads((out / "run.json").read_text())
    assert run["verdict"] == "partly agrees" and run["quick"] is True
    # Nothing is overwritten unless asked.
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_report(out, "demo", "A title", "The claim.", report, True, "clj x")


def test_every_registered_experiment_imports_and_describes_itself():
    assert "capacity-grid" in EXPERIMENTS
    for name in EXPERIMENTS:
        experiment = get_experiment(name)
        assert experiment.name == name
        assert experiment.title and experiment.claim and callable(experiment.run)


def test_unknown_experiment_and_existing_output_are_one_line_errors(tmp_path, capsys):
    assert main(["reproduce", "no-such-thing", "--out", str(tmp_path / "x")]) == 2
    assert "'no-such-thing'" in _error_line(capsys)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["reproduce", "capacity-grid", "--out", str(tmp_path / "full")]) == 2
    assert "--overwrite" in _error_line(capsys)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_capacity_grid_smoke_through_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(cg.SIZES, "quick", cg.SIZES["smoke"])
    out = tmp_path / "cg"
    assert main(["reproduce", "capacity-grid", "--quick", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv")
    size = cg.SIZES["smoke"]
    cells = size.seeds * len(size.widths) * len(size.out_dims) * len(size.clusters)
    assert len(table) == cells
    assert {"probe_coarse", "recovered_clusters", "recovered_fraction"} <= set(table.columns)
    assert table.recovered_fraction.between(0, 1.0001).all()
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) >= 3
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    assert (out / "recovery.png").is_file()
    assert "capacity-grid" in (out / "summary.md").read_text()
    assert "capacity-grid:" in capsys.readouterr().err
