"""Writing a sweep's results to disk without ever clobbering earlier results by accident."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import jax

if TYPE_CHECKING:
    from clj.sweep import SweepResult

__all__ = ["OutputExistsError", "prepare_out_dir", "save_sweep"]

RESULT_FILES = ("results.csv", "curves.csv", "config.json")


class OutputExistsError(FileExistsError):
    """The output directory already holds files and ``overwrite`` was not asked for."""


def prepare_out_dir(out: str | Path, overwrite: bool = False) -> Path:
    """Makes sure ``out`` can receive results, before any work is done.

    An absent or empty directory is fine. A non-empty one is refused unless ``overwrite``, in which
    case only the files a sweep writes (results, curves, config, PNGs) are replaced; nothing else
    in it is deleted.

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
    path.mkdir(parents=True, exist_ok=True)
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


def save_sweep(result: SweepResult, out: str | Path, overwrite: bool = False) -> Path:
    """Writes a sweep's ``results.csv``, ``curves.csv``, ``config.json`` and plots into ``out``.

    Files are written to a temporary name and moved into place, so an interrupted save never
    leaves a truncated ``results.csv`` behind.
    """
    from clj.plots import save_plots

    path = prepare_out_dir(out, overwrite=overwrite)
    _write(path / "results.csv", lambda p: result.table.to_csv(p, index=False))
    _write(path / "curves.csv", lambda p: result.curves.to_csv(p, index=False))
    meta = {
        "config": result.config.to_dict(),
        "cells": len(result.table),
        "programs": result.programs,
        "wall_s": round(result.wall_s, 3),
        "environment": environment(),
    }
    _write(path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    save_plots(result, path)
    return path


def _write(target: Path, write: callable) -> None:
    partial = target.with_name(target.name + ".partial")
    write(partial)
    shutil.move(partial, target)
