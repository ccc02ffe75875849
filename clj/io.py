"""Writing a sweep's results to disk without ever clobbering earlier results by accident."""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax

if TYPE_CHECKING:
    from clj.config import SweepConfig
    from clj.sweep import SweepResult

__all__ = [
    "CHECKPOINTS",
    "OutputExistsError",
    "prepare_out_dir",
    "read_manifest",
    "save_sweep",
    "write_atomically",
    "write_manifest",
]

CHECKPOINTS = "checkpoints"
"""Sub-directory of a sweep's output holding its checkpoints until the results are written."""


class OutputExistsError(FileExistsError):
    """The output directory already holds files and ``overwrite`` was not asked for."""


def prepare_out_dir(out: str | Path, overwrite: bool = False, create: bool = True) -> Path:
    """Makes sure ``out`` can receive results, before any work is done.

    An absent or empty directory is fine. A non-empty one is refused unless ``overwrite``, in which
    case only the files a sweep writes (results, curves, config, PNGs, checkpoints) are replaced;
    nothing else in it is deleted. With ``create=False`` this only checks.

    Raises:
      OutputExistsError: ``out`` is not empty and ``overwrite`` is false.
      NotADirectoryError: ``out`` is an existing file.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--out {str(path)!r} is a file, not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"--out {str(path)!r} already exists and is not empty; "
            "choose another directory or pass --overwrite"
        )
    if create:
        path.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(path / CHECKPOINTS, ignore_errors=True)  # a stale, unfinished sweep's
    return path


def environment() -> dict[str, object]:
    """Versions and devices, recorded beside every result."""
    devices = jax.devices()
    return {
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": len(devices),
        "device_kind": devices[0].device_kind,
        "processes": jax.process_count(),
        "platform": platform.platform(),
    }


def write_manifest(out: Path, config: SweepConfig, run: dict[str, Any]) -> None:
    """Writes ``config.json`` at the start of a sweep, so that ``--resume`` can find it."""
    meta = {"status": "running", "config": config.to_dict(), "run": run}
    write_atomically(out / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))


def read_manifest(out: str | Path) -> tuple[SweepConfig, dict[str, Any]]:
    """The config and run options of an unfinished sweep in ``out``, for ``--resume``.

    Raises:
      ConfigError: ``out`` holds no sweep, a finished one, or a malformed ``config.json``.
    """
    from clj.config import ConfigError, SweepConfig

    path = Path(out) / "config.json"
    if not path.is_file():
        raise ConfigError(f"--resume {str(out)!r}: no sweep there (no config.json)")
    try:
        meta = json.loads(path.read_text())
        status, values, run = meta["status"], meta["config"], meta.get("run", {})
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"--resume {str(out)!r}: config.json is malformed ({err})") from None
    if status == "complete":
        raise ConfigError(f"--resume {str(out)!r}: that sweep already finished")
    return SweepConfig.from_dict(values, source=str(path)), run


def save_sweep(
    result: SweepResult,
    out: str | Path,
    overwrite: bool = False,
    run: dict[str, Any] | None = None,
) -> Path:
    """Writes a sweep's ``results.csv``, ``curves.csv``, ``config.json`` and plots into ``out``.

    Files are written to a temporary name and moved into place, so an interrupted save never
    leaves a truncated ``results.csv`` behind.
    """
    from clj.plots import save_plots

    path = prepare_out_dir(out, overwrite=overwrite)
    write_atomically(path / "results.csv", lambda p: result.table.to_csv(p, index=False))
    write_atomically(path / "curves.csv", lambda p: result.curves.to_csv(p, index=False))
    meta = {
        "status": "complete",
        "config": result.config.to_dict(),
        "run": run or {},
        "cells": len(result.table),
        "programs": result.programs,
        "wall_s": round(result.wall_s, 3),
        "environment": environment(),
    }
    write_atomically(
        path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n")
    )
    save_plots(result, path)
    shutil.rmtree(path / CHECKPOINTS, ignore_errors=True)
    return path


def write_atomically(target: Path, write: Callable[[Path], Any]) -> None:
    """Writes through ``write(partial_path)`` then moves the file into place, so a crash never
    leaves a truncated ``target``."""
    partial = target.with_name(target.name + ".partial")
    write(partial)
    shutil.move(partial, target)
