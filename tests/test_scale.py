"""Many devices, many processes, and crash survival, each in fresh subprocesses.

Device counts are forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (which must be
set before JAX starts, hence the subprocesses); processes join over localhost with
``jax.distributed.initialize``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clj.evaluate import METRICS

GRID = [
    "--data", "hierarchical_mixture",
    "--dim", "8",
    "--seeds", "2",
    "--widths", "4,8",
    "--clusters", "4,8",
    "--out-dims", "4",
    "--depth", "1",
    "--batch", "16",
    "--eval-size", "32",
    "--lr", "1e-2",
    "--no-progress",
]  # fmt: skip


def _env(devices: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = (
        f"--xla_backend_optimization_level=0 --xla_force_host_platform_device_count={devices}"
    )
    return env


def _clj(*args: str, devices: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "clj.cli", *args],
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_sharded_over_four_devices_equals_one_device(tmp_path: Path) -> None:
    _clj("sweep", *GRID, "--steps", "20", "--out", str(tmp_path / "one"), devices=1)
    _clj("sweep", *GRID, "--steps", "20", "--out", str(tmp_path / "four"), devices=4)
    one = pd.read_csv(tmp_path / "one" / "results.csv")
    four = pd.read_csv(tmp_path / "four" / "results.csv")
    # Same cells, same metrics up to float reassociation in differently sized batched matmuls.
    pd.testing.assert_frame_equal(one.drop(columns=list(METRICS)), four.drop(columns=list(METRICS)))
    for metric in ("eval_loss", "alignment", "uniformity"):
        np.testing.assert_allclose(one[metric], four[metric], rtol=1e-4, atol=1e-5)
    for metric in ("probe_fine", "probe_coarse"):
        assert np.abs(one[metric] - four[metric]).max() <= 2 / 32  # at most a point flips


def test_two_processes_write_the_same_results_as_one(tmp_path: Path) -> None:
    port = _free_port()
    args = [*GRID, "--steps", "20", "--out", str(tmp_path / "multi")]
    join = ["--coordinator", f"localhost:{port}", "--num-processes", "2"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "clj.cli", "sweep", *args, *join, "--process-id", str(i)],
            env=_env(1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    # One process with two devices shards the cells exactly as two processes with one each.
    _clj("sweep", *GRID, "--steps", "20", "--out", str(tmp_path / "single"), devices=2)
    multi = (tmp_path / "multi" / "results.csv").read_bytes()
    assert multi == (tmp_path / "single" / "results.csv").read_bytes()


def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    args = [*GRID, "--steps", "300", "--checkpoint-every", "20", "--max-cells-per-chunk", "4"]
    _clj("sweep", *args, "--out", str(tmp_path / "whole"))

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clj.cli", "sweep", *args, "--out", str(out)],
        env=_env(1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    checkpoints = out / "checkpoints"
    # Kill once the first chunk has checkpointed but before the sweep ends.
    while time.monotonic() < deadline and proc.poll() is None:
        steps = list(checkpoints.glob("p0-c*/[0-9]*"))
        if steps:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.csv").exists()

    resumed = _clj("sweep", "--resume", str(out))
    assert "resuming" in resumed.stderr
    for name in ("results.csv", "curves.csv"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert not checkpoints.exists()


def test_an_incomplete_checkpoint_is_skipped(tmp_path: Path) -> None:
    from clj.checkpoint import ChunkCheckpoints

    store = ChunkCheckpoints(tmp_path, program=0, chunk=0)
    store.save(10, {"x": np.arange(3.0)})
    store.close()
    # A save cut short leaves a temporary directory behind; it must not be taken as step 20.
    (tmp_path / "p0-c0" / "20.orbax-checkpoint-tmp-123").mkdir()
    assert ChunkCheckpoints(tmp_path, program=0, chunk=0).latest_step() == 10


def test_a_chunk_saved_for_other_cells_is_refused(tmp_path: Path) -> None:
    """Training checkpoints and finished results remember their chunk's cells: reading them for
    another arrangement (another device count or chunk size) raises, naming the chunk; files
    written without cells are read as before."""
    from clj.checkpoint import ChunkCheckpoints

    store = ChunkCheckpoints(tmp_path, program=0, chunk=1, cells=np.array([0, 1, 2, 3]))
    store.save(10, {"x": np.arange(3.0)})
    store.close()
    same = ChunkCheckpoints(tmp_path, program=0, chunk=1, cells=np.array([0, 1, 2, 3]))
    assert same.latest_step() == 10
    other = ChunkCheckpoints(tmp_path, program=0, chunk=1, cells=np.array([0, 2, 1, 3]))
    with pytest.raises(ValueError, match=r"saved chunk p0-c1 .* another arrangement of cells"):
        other.latest_step()

    same.save_result({"probe_fine": np.ones(4)})
    assert not (tmp_path / "p0-c1").exists() and not same.cells_path.exists()
    loaded = ChunkCheckpoints(tmp_path, program=0, chunk=1, cells=np.array([0, 1, 2, 3]))
    assert set(loaded.load_result()) == {"probe_fine"}
    with pytest.raises(ValueError, match="another arrangement of cells"):
        other.load_result()
    assert set(ChunkCheckpoints(tmp_path, program=0, chunk=1).load_result()) == {"probe_fine"}

    ChunkCheckpoints(tmp_path, program=0, chunk=2).save_result({"probe_fine": np.ones(4)})
    unchecked = ChunkCheckpoints(tmp_path, program=0, chunk=2, cells=np.array([3, 2, 1, 0]))
    assert set(unchecked.load_result()) == {"probe_fine"}


@pytest.mark.parametrize(
    ("args", "devices", "named"),
    [
        (["--max-cells-per-chunk", "3"], 2, "--max-cells-per-chunk 3"),
        (["--devices", "3"], 2, "devices=3"),
        (["--checkpoint-every", "15"], 1, "--checkpoint-every 15"),
        (["--max-cells-per-chunk", "0"], 1, "--max-cells-per-chunk 0"),
        (["--coordinator", "localhost:1"], 1, "go together"),
    ],
)
def test_bad_run_options(args, devices, named, tmp_path: Path) -> None:
    flags = [*GRID, "--steps", "20", *args, "--out", str(tmp_path / "o")]
    proc = _clj("sweep", *flags, devices=devices, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert named in proc.stderr
    assert not (tmp_path / "o").exists()


def test_resume_needs_an_unfinished_sweep(tmp_path: Path) -> None:
    from clj.cli import main

    assert main(["sweep", "--resume", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "config.json").write_text('{"status": "complete", "config": {}}')
    assert main(["sweep", "--resume", str(tmp_path / "done")]) == 2
    assert main(["sweep", "--resume", str(tmp_path / "done"), "--widths", "4"]) == 2
