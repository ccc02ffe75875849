"""Smoke tests of the benchmark harness (``clj bench``) on a tiny grid; no timing assertions."""

from __future__ import annotations

import argparse
import json

import pytest

from clj import _baselines, bench
from clj.presets import preset

TINY = {
    "seeds": 1,
    "widths": (4, 8),
    "clusters": (2, 3),
    "steps": 10,
    "batch": 16,
    "eval_size": 32,
}


def _tiny_config():
    return preset("reference", **TINY)


def test_sample_cells_covers_every_width_and_extrapolates_by_width():
    cells = preset("reference").cells()
    index = _baselines.sample_cells(cells, 12)
    assert len(index) == 12
    assert {cells[i]["width"] for i in index} == {4, 8, 16, 32, 64, 256}
    assert _baselines.sample_cells(cells, None) == list(range(len(cells)))
    # Every cell of width w costs w seconds: the extrapolation is exact.
    measured = [{"width": cells[i]["width"], "t": float(cells[i]["width"])} for i in index]
    expected = sum(float(c["width"]) for c in cells)
    assert _baselines.extrapolate(cells, measured, "t") == pytest.approx(expected)


def test_parse_overrides_and_sweep_flags():
    overrides = bench._parse_overrides(["steps=50", "widths=4,8", "lr=1e-3"])
    assert overrides == {"steps": 50, "widths": (4, 8), "lr": 1e-3}
    assert bench._sweep_flags(overrides) == ["--steps", "50", "--widths", "4,8", "--lr", "0.001"]
    with pytest.raises(ValueError, match="KEY=VALUE"):
        bench._parse_overrides(["steps"])
    with pytest.raises(ValueError, match="not a grid setting"):
        bench.run_bench("reference", {"bogus": 1}, torch=False, jax_loop=False, clj=False)


def test_ratios_are_loop_seconds_over_clj_seconds():
    report = {
        "clj": {"wall_s": 10.0, "train_s": 5.0},
        "torch": {"total_s": 40.0, "train_s": 30.0},
        "jax_loop": {"skipped": "--skip-jax"},
    }
    assert bench.ratios(report) == {
        "torch_train_eval_over_clj": 4.0,
        "torch_train_only_over_clj": 3.0,
        "torch_train_only_over_clj_train": 6.0,
    }
    assert bench.ratios({"clj": {"skipped": "--skip-clj"}}) == {}
    report["clj_warm"] = {"wall_s": 8.0}
    assert bench.ratios(report)["torch_train_eval_over_clj_warm"] == 5.0


def test_torch_loop_fields():
    pytest.importorskip("torch")
    out = _baselines.torch_loop(_tiny_config())
    assert not out["sampled"] and out["measured_cells"] == 4 and out["evaluates"]
    for row in out["per_cell"]:
        assert row["train_s"] > 0 and row["eval_s"] > 0
        assert 0.0 <= row["probe"] <= 1.0
    assert out["total_s"] == pytest.approx(out["train_s"] + out["eval_s"])


def test_measured_processes_do_not_inherit_a_cpu_device_count(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1 --xla_force_host_platform_device_count=2")
    assert bench._clean_env()["XLA_FLAGS"] == "--xla_foo=1"
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert "XLA_FLAGS" not in bench._clean_env()


def test_missing_torch_is_reported_in_one_line_and_skipped(monkeypatch):
    monkeypatch.setattr(bench, "torch_available", lambda: None)
    lines = []
    report = bench.run_bench(
        "reference", TINY, torch=True, jax_loop=False, clj=False, log=lines.append
    )
    assert report["torch"] == {"skipped": "torch is not installed"}
    assert sum("PyTorch is not installed" in line for line in lines) == 1
    assert report["ratios"] == {}


def test_median_run_keeps_every_figure():
    runs = [{"wall_s": 3.0, "n": 0}, {"wall_s": 1.0, "n": 1}, {"wall_s": 2.0, "n": 2}]
    median = bench._median_run(runs, "wall_s")
    assert median["n"] == 2 and median["runs"] == [3.0, 1.0, 2.0] and median["repeats"] == 3


def test_main_writes_every_figure(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    grid = TINY | {"widths": 4}
    sets = [
        f"--set={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in grid.items()
    ]
    target = tmp_path / "bench.json"
    args = parser.parse_args([*sets, "--skip-torch", "--sample-cells", "1", "--out", str(target)])
    assert bench.main(args) == 0
    report = json.loads(target.read_text())
    assert report["grid"]["cells"] == 2 and report["grid"]["sampled_cells"] == 1
    clj = report["clj"]
    assert clj["command"].startswith("clj sweep --preset reference")
    for key in ("wall_s", "compile_s", "train_s", "eval_s", "other_s"):
        assert key in clj and key in report["clj_warm"]
    cold_cache = clj["command"].split("--compile-cache ")[1]
    assert report["clj_warm"]["command"].split("--compile-cache ")[1] == cold_cache
    assert report["torch"] == {"skipped": "--skip-torch"}
    jax_loop = report["jax_loop"]
    assert jax_loop["sampled"] and jax_loop["measured_cells"] == 1 and jax_loop["cells"] == 2
    for key in ("compile_s", "train_s", "total_s", "process_s"):
        assert jax_loop[key] > 0
    assert set(report["ratios"]) == {"jax_loop_over_clj", "jax_loop_train_over_clj_train"}
    assert report["machine"]["cores"] >= 1
    assert "speed-up of clj sweep" in capsys.readouterr().out


def test_main_reports_a_failed_sweep_in_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "results.csv").write_text("x\n")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--set", "steps=10", "--skip-torch", "--skip-jax", "--sweep-out", str(taken)]
    )
    assert bench.main(args) == 1
    assert "clj bench: error: clj sweep failed" in capsys.readouterr().err
