"""The persistent compile cache: where it lives, bad directories, and a second sweep that loads
its programs instead of compiling them and gets the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clj.cli import main
from clj.compile_cache import ENV, default_cache_dir, enable_compile_cache

TINY = [
    "--data", "gaussian_mixture", "--dim", "8", "--seeds", "2", "--widths", "4,16",
    "--clusters", "4", "--out-dims", "4", "--depth", "1", "--batch", "16", "--steps", "20",
    "--eval-size", "32", "--no-progress",
]  # fmt: skip


def test_default_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert default_cache_dir() == Path("/somewhere/cache/clj/xla")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "clj" / "xla"
    monkeypatch.setenv(ENV, "/elsewhere")
    assert default_cache_dir() == Path("/elsewhere")
    for off in ("off", "", "0"):
        monkeypatch.setenv(ENV, off)
        assert default_cache_dir() is None


def test_unusable_directory_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="a-file"):
        enable_compile_cache(blocker / "cache")
    out = tmp_path / "run"
    assert main(["sweep", *TINY, "--out", str(out), "--compile-cache", str(blocker / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("clj: error: --compile-cache"), err
    assert "a-file" in err
    assert not out.exists()


def test_turned_off_cache_cannot_be_enabled_without_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")
    with pytest.raises(ValueError, match=ENV):
        enable_compile_cache()


def _sweep(out: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", ENV)}
    argv = [sys.executable, "-m", "clj.cli", "sweep", *TINY, "--out", str(out)]
    done = subprocess.run(
        [*argv, "--compile-cache", str(cache)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "config.json").read_text())


def test_second_sweep_loads_its_programs_and_agrees(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _sweep(tmp_path / "first", cache)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing was cached"
    second = _sweep(tmp_path / "second", cache)
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing new to compile
    cold = sum(p["compile_s"] for p in first["programs"])
    warm = sum(p["compile_s"] for p in second["programs"])
    assert warm < cold, (cold, warm)
    results = [(tmp_path / run / "results.csv").read_text() for run in ("first", "second")]
    assert results[0] == results[1]
