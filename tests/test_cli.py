"""The ``clj`` command: listing, a tiny sweep end to end, and one-line errors for bad input."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clj.cli import main
from clj.config import CELL_AXES, STATIC_AXES
from clj.evaluate import METRICS

TINY = [
    "--data", "hierarchical_mixture",
    "--dim", "8",
    "--seeds", "2",
    "--widths", "4,8",
    "--clusters", "4,8",
    "--out-dims", "4",
    "--depth", "1",
    "--batch", "16",
    "--steps", "20",
    "--eval-size", "32",
    "--lr", "1e-2",
    "--no-progress",
]  # fmt: skip


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("clj: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["sweep", *TINY, "--out", str(out)]) == 0
    return out


def test_list_names_every_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from clj.data import FAMILIES
    from clj.encoders import ENCODERS
    from clj.losses import LOSSES
    from clj.reproduce import EXPERIMENTS
    from clj.train import OBJECTIVE_DESCRIPTIONS, OBJECTIVES

    assert set(OBJECTIVE_DESCRIPTIONS) == set(OBJECTIVES)
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    registered = [*FAMILIES, *ENCODERS, *LOSSES, *OBJECTIVES, *EXPERIMENTS]
    for name in (*registered, "adamw", "flagship", "reference", "probe_fine"):
        assert name in text


def test_sweep_writes_tidy_results(tiny_run: Path) -> None:
    table = pd.read_csv(tiny_run / "results.csv")
    assert len(table) == 2 * 2 * 2  # seeds x widths x clusters
    expected = ["cell", *STATIC_AXES, "seed", *CELL_AXES.values(), "program", *METRICS]
    assert list(table.columns) == expected
    assert sorted(table["width"].unique()) == [4, 8]
    assert sorted(table["seed"].unique()) == [0, 1]
    assert table["probe_coarse"].between(0, 1).all()
    curves = pd.read_csv(tiny_run / "curves.csv")
    assert len(curves) == len(table) * 2  # 20 steps, a point every 10
    meta = json.loads((tiny_run / "config.json").read_text())
    assert meta["config"]["widths"] == [4, 8]
    assert meta["cells"] == 8
    for png in ("heatmap_probe_fine.png", "heatmap_probe_coarse.png", "loss_curves.png"):
        assert (tiny_run / png).stat().st_size > 1000


def test_config_file_matches_flags(tiny_run: Path, tmp_path: Path) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text(
        'data = "hierarchical_mixture"\ndim = 8\nseeds = 2\nwidths = [4, 8]\n'
        "clusters = [4, 8]\nout_dims = 4\ndepth = 1\nbatch = 16\nsteps = 20\n"
        "eval-size = 32\nlr = 1e-2\n"
    )
    out = tmp_path / "from-config"
    assert main(["sweep", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    a = pd.read_csv(tiny_run / "results.csv")
    b = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(a, b)


def test_existing_out_is_never_overwritten(tiny_run: Path, capsys) -> None:
    before = (tiny_run / "results.csv").read_bytes()
    assert main(["sweep", *TINY, "--out", str(tiny_run)]) == 2
    assert "--overwrite" in _error_line(capsys)
    assert (tiny_run / "results.csv").read_bytes() == before


def test_overwrite_replaces_results_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "results.csv").write_text("stale")
    args = [*TINY, "--widths", "4", "--clusters", "4", "--seeds", "1"]
    assert main(["sweep", *args, "--out", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert pd.read_csv(out / "results.csv").shape[0] == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--widths", "0"], "0"),
        (["--widths", "4,-3"], "-3"),
        (["--widths", "4,x"], "'x'"),
        (["--widths", "4,100000"], "100000"),
        (["--out-dims", "5000"], "5000"),
        (["--data", "gaussian_mixture", "--clusters", "5000"], "clusters=5000"),
        (["--data", "hypercube", "--dim", "8", "--clusters", "9"], "clusters=9"),
        (["--clusters", "6"], "clusters=6"),
        (["--loss", "contrastive"], "'contrastive'"),
        (["--data", "imagenet"], "'imagenet'"),
        (["--optimizer", "lion"], "'lion'"),
        (["--lr", "-0.1"], "-0.1"),
        (["--lr", "0"], "lr"),
        (["--steps", "0"], "steps"),
        (["--steps", "15"], "steps=15"),
        (["--batch", "1"], "batch"),
        (["--data-option", "colour=3"], "'colour'"),
        (["--preset", "nope"], "'nope'"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(args, named, tmp_path, capsys) -> None:
    out = tmp_path / "never"
    assert main(["sweep", *args, "--out", str(out)]) == 2
    assert named in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("widths = [4, 8\n", "not valid TOML"),
        ("colours = 3\n", "'colours'"),
        ('widths = "many"\n', "'many'"),
        ("lr = -1.0\n", "-1.0"),
    ],
)
def test_bad_config_file(text, named, tmp_path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert named in _error_line(capsys)


def test_missing_config_file(tmp_path, capsys) -> None:
    assert main(["sweep", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in _error_line(capsys)


def test_console_script_exit_status_and_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "clj.cli", "sweep", "--widths", "0", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "clj: error: widths: 0 must be an integer ≥ 1"


def test_console_script_success_exits_zero_with_all_its_output(capsys) -> None:
    # A successful command skips the interpreter's teardown; its output must still be complete.
    assert main(["list"]) == 0
    expected = capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "clj.cli", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected


KEEP_FREED_MEMORY = """
import ctypes, resource, threading
from clj.cli import keep_freed_memory
assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
sizes = [3 << 20, 12 << 20]

def cycle():
    blocks = [libc.malloc(size) for size in sizes]
    for block, size in zip(blocks, sizes):
        ctypes.memset(block, 1, size)
    for block in blocks:
        libc.free(block)

def work(faults):
    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

faults = []
worker = threading.Thread(target=work, args=(faults,))
worker.start()
worker.join()
print(faults[0], sum(sizes) // 4096)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc only",
)
def test_freed_blocks_are_reused_without_page_faults() -> None:
    """After :func:`keep_freed_memory`, blocks of a few megabytes freed and allocated again by a
    thread come back without faulting their pages in again (glibc's defaults fault a whole
    cycle's pages in once more after the first)."""
    run = subprocess.run(
        [sys.executable, "-c", KEEP_FREED_MEMORY], capture_output=True, text=True, check=True
    )
    faults, pages = map(int, run.stdout.split())
    assert faults < pages // 4, run.stdout
