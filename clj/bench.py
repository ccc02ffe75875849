"""``clj bench``: time ``clj sweep`` on a grid beside the sequential loops it replaces.

Three measurements of the same cells (by default the ``reference`` preset: 144 cells of
``gaussian_mixture``, d = 32, widths 4–256, 300 steps), each in a fresh process so that none warms
another's caches or threads:

1. ``clj sweep --preset reference --out TMP --no-progress`` as a subprocess: whole-process wall
   time (start-up, planning, compiling, training, evaluating, writing results and plots), and from
   its ``config.json`` the compile, train and evaluation seconds of every program. It runs on the
   CPU devices ``clj sweep`` chooses itself (one per core) unless ``--cpu-devices N``, twice: with
   an empty compile cache (cold, a first run) and again with the cache that run filled (warm, a
   grid of the same shapes run again).
2. A sequential PyTorch loop (:func:`clj._baselines.torch_loop`): each cell's exact-width
   ``nn.Sequential`` MLP, ``torch.optim.Adam``, fresh batches of the same distribution, the same
   spectral loss and steps, then held-out features, held-out loss and a ridge probe. Its time is
   the loop alone, without interpreter and import start-up, which favours PyTorch.
3. A sequential JAX loop (:func:`clj._baselines.jax_loop`): one ``jax.jit(make_train(spec).train)``
   per cell with an unpadded spec, compile and run timed apart (training only, no evaluation).

The loops may run on a width-stratified sample of cells (``--sample-cells``) and be extrapolated
to the grid. Ratios are the loop's seconds over ``clj sweep``'s whole-process seconds.

Examples::

    clj bench                      # the reference grid, every cell of every loop
    clj bench --sample-cells 24    # loops on 4 cells per width, extrapolated
    clj bench --quick --out bench.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "QUICK",
    "BenchError",
    "add_arguments",
    "main",
    "run_bench",
    "time_baseline",
    "time_sweep",
]

QUICK: dict[str, Any] = {"seeds": 1, "widths": (4, 16, 64), "clusters": (2, 16), "steps": 100}
"""Grid overrides of ``--quick``: 6 cells of 100 steps (about a minute in all on 2 cores)."""

TARGET_VS_TORCH = 3.0
"""The speed-up over the PyTorch loop that ``clj sweep`` aims at on the reference grid."""

_SCALAR_FIELDS = {"seeds", "log_every", "pool_size"}


_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _clean_env() -> dict[str, str]:
    """This process's environment without a CPU device count in ``XLA_FLAGS``.

    ``clj``'s command line sets one CPU device per core before JAX starts; the measured
    subprocesses must not inherit that choice: ``clj sweep`` makes its own, and the sequential JAX
    loop runs as a user's plain script would, on JAX's default single CPU device.
    """
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_COUNT_FLAG)]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("XLA_FLAGS", None)
    return env


class BenchError(RuntimeError):
    """A measured subprocess failed; the message holds the end of its standard error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the flags of ``clj bench`` on ``parser``."""
    parser.add_argument(
        "--preset", default="reference", help="grid to time (clj list; default: reference)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small grid: 1 seed x widths 4,16,64 x clusters 2,16, 100 steps",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a grid setting, e.g. steps=50 or widths=4,8 (repeatable)",
    )
    parser.add_argument(
        "--sample-cells",
        type=int,
        default=None,
        metavar="N",
        help="run the sequential loops on about N width-stratified cells and extrapolate "
        "(default: every cell)",
    )
    parser.add_argument(
        "--jax-sample-cells",
        type=int,
        default=None,
        metavar="N",
        help="sample size of the JAX loop alone (it compiles every cell; default: --sample-cells)",
    )
    parser.add_argument("--skip-torch", action="store_true", help="do not run the PyTorch loop")
    parser.add_argument("--skip-jax", action="store_true", help="do not run the JAX loop")
    parser.add_argument("--skip-clj", action="store_true", help="do not run clj sweep")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="run every measurement N times, interleaved, and report the median run",
    )
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        metavar="N",
        help="run clj sweep on N CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N; "
        "default: clj sweep's own choice, one per core)",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write JSON here")
    parser.add_argument(
        "--sweep-out",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep clj sweep's results here (default: a temporary directory, deleted)",
    )


def main(args: argparse.Namespace) -> int:
    """Runs ``clj bench`` with parsed ``args``; prints tables and returns the exit status."""
    from rich.console import Console

    overrides = dict(QUICK) if args.quick else {}
    overrides |= _parse_overrides(args.overrides)
    console = Console()
    try:
        report = run_bench(
            args.preset,
            overrides,
            sample_cells=args.sample_cells,
            jax_sample_cells=args.jax_sample_cells,
            torch=not args.skip_torch,
            jax_loop=not args.skip_jax,
            clj=not args.skip_clj,
            sweep_out=args.sweep_out,
            repeats=args.repeats,
            cpu_devices=args.cpu_devices,
            log=lambda text: console.print(text, highlight=False),
        )
    except BenchError as err:
        print(f"clj bench: error: {err}", file=sys.stderr)
        return 1
    print_report(console, report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        console.print(f"wrote {args.out}")
    return 0


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["steps=50", "widths=4,8"]`` -> ``{"steps": 50, "widths": (4, 8)}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        values = tuple(_scalar(v.strip()) for v in text.split(","))
        out[key.replace("-", "_")] = values[0] if len(values) == 1 else values
    return out


def _scalar(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _check_override_keys(overrides: Mapping[str, Any]) -> None:
    from clj.cli import GRID_FLAGS

    known = {field for _, field, _, _ in GRID_FLAGS} | _SCALAR_FIELDS
    for key in overrides:
        if key not in known:
            raise ValueError(
                f"--set {key}: not a grid setting; choose from {', '.join(sorted(known))}"
            )


def _sweep_flags(overrides: Mapping[str, Any]) -> list[str]:
    """The ``clj sweep`` flags that set ``overrides``."""
    flags = []
    for key, value in overrides.items():
        values = value if isinstance(value, tuple | list) else (value,)
        flags += [f"--{key.replace('_', '-')}", ",".join(str(v) for v in values)]
    return flags


# -- measurements -------------------------------------------------------------------------------


def time_sweep(
    preset: str,
    overrides: Mapping[str, Any],
    out: Path,
    cpu_devices: int | None = None,
    compile_cache: Path | None = None,
) -> dict[str, Any]:
    """Runs ``clj sweep`` in a subprocess and times the whole process.

    Args:
      preset, overrides: the grid, as ``clj sweep --preset PRESET --KEY VALUE …``.
      out: ``--out`` directory.
      cpu_devices: if set, the subprocess runs with
        ``XLA_FLAGS=--xla_force_host_platform_device_count=N``; otherwise without that flag, so
        ``clj sweep`` picks its own default (one CPU device per core).
      compile_cache: ``--compile-cache`` directory (an empty one times a first run, one an
        earlier run filled times a repeated grid); ``None``: ``--no-compile-cache``.

    Returns:
      ``wall_s`` (whole process), ``sweep_s`` (the sweep's own planning-to-last-result time),
      summed ``compile_s``, ``train_s``, ``eval_s`` over programs, ``other_s`` (start-up, planning,
      writing results and plots: ``wall_s`` minus the three), ``programs`` and ``command``.
    """
    argv = ["sweep", "--preset", preset, *_sweep_flags(overrides), "--out", str(out)]
    argv += ["--no-progress"]
    argv += (
        ["--no-compile-cache"] if compile_cache is None else ["--compile-cache", str(compile_cache)]
    )
    env = _clean_env()
    prefix = ""
    if cpu_devices is not None:
        flag = f"{_DEVICE_COUNT_FLAG}={cpu_devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
        prefix = f"XLA_FLAGS={flag} "
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "clj.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise BenchError(f"clj sweep failed ({done.returncode}):\n{done.stderr[-4000:]}")
    meta = json.loads((out / "config.json").read_text())
    programs = meta["programs"]
    parts = {k: sum(p[k] for p in programs) for k in ("compile_s", "train_s", "eval_s")}
    return {
        "command": prefix + "clj " + " ".join(argv),
        "cells": meta["cells"],
        "wall_s": wall,
        "sweep_s": meta["wall_s"],
        **parts,
        "other_s": wall - sum(parts.values()),
        "programs": programs,
        "environment": meta["environment"],
    }


def time_baseline(
    loop: str, config_dict: Mapping[str, Any], index: Sequence[int] | None = None
) -> dict[str, Any]:
    """Runs one sequential loop (``"torch"`` or ``"jax"``) in a fresh process.

    Returns the loop's summary (see :func:`clj._baselines.torch_loop`) plus ``process_s``, the
    subprocess's wall time including interpreter and import start-up, and ``command``.
    """
    with tempfile.TemporaryDirectory(prefix="clj-bench-") as tmp:
        target = Path(tmp) / f"{loop}.json"
        argv = [sys.executable, "-m", "clj._baselines", loop]
        argv += ["--config-json", json.dumps(config_dict), "--json", str(target)]
        if index is not None:
            argv += ["--index", ",".join(str(i) for i in index)]
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=_clean_env())
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise BenchError(f"{loop} loop failed ({done.returncode}):\n{done.stderr[-4000:]}")
        out = json.loads(target.read_text())
    out["process_s"] = wall
    out["command"] = f"python -m clj._baselines {loop} --config-json CONFIG" + (
        f" --index {','.join(map(str, index))}" if index is not None else ""
    )
    return out


def torch_available() -> str | None:
    """The installed torch version, or None, without importing torch."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load and library versions of this machine."""
    from importlib import metadata

    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        info["cpu"] = platform.processor()
    info["python"] = platform.python_version()
    info["clj_commit"] = _commit()
    for package in ("jax", "jaxlib", "flax", "optax", "torch"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    return info


def _commit() -> str | None:
    """The git commit of the checkout ``clj`` is imported from (``+dirty`` if its tracked files
    differ), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_bench(
    preset: str = "reference",
    overrides: Mapping[str, Any] | None = None,
    *,
    sample_cells: int | None = None,
    jax_sample_cells: int | None = None,
    torch: bool = True,
    jax_loop: bool = True,
    clj: bool = True,
    sweep_out: Path | None = None,
    repeats: int = 1,
    cpu_devices: int | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Runs the chosen measurements one after another and returns every figure as a dict.

    Keys: ``date``, ``machine``, ``grid``, ``clj``, ``torch``, ``jax_loop`` (each either the
    measurement or ``{"skipped": reason}``) and ``ratios`` (loop seconds over ``clj``'s
    whole-process seconds, for the pairs that ran). With ``repeats`` > 1 the measurements run
    that many times, interleaved (clj, torch, JAX, clj, …), and each reports its median run
    (by ``wall_s`` or ``total_s``) with every run's figure under ``runs``.
    """
    if repeats < 1:
        raise ValueError(f"--repeats {repeats} must be at least 1")
    from clj.presets import preset as make_preset

    overrides = dict(overrides or {})
    _check_override_keys(overrides)
    config = make_preset(preset, **overrides)
    cells = config.cells()
    index = _sample(cells, sample_cells)
    jax_index = _sample(cells, jax_sample_cells) if jax_sample_cells is not None else index
    report: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "grid": {
            "preset": preset,
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "cells": len(cells),
            "sampled_cells": None if index is None else len(index),
            "jax_sampled_cells": None if jax_index is None else len(jax_index),
        },
    }
    log(f"clj bench: {len(cells)} cells ({preset} preset{' with overrides' if overrides else ''})")

    measurements: dict[str, Any] = {}
    caches = tempfile.TemporaryDirectory(prefix="clj-bench-cache-")
    if clj:
        # Cold: an empty compile cache, as on a first run. Warm: the cache that run filled, as
        # when a grid of the same shapes runs again (other seeds, learning rates, ...).
        def sweep_run(kind: str) -> Any:
            return lambda i: _time_sweep_in(
                preset,
                overrides,
                _run_dir(sweep_out, i, repeats, kind),
                cpu_devices,
                Path(caches.name) / f"run{i + 1}",
            )

        measurements["clj"] = (
            "clj sweep (whole process, empty compile cache)",
            "wall_s",
            sweep_run("cold"),
        )
        measurements["clj_warm"] = (
            "clj sweep (whole process, the compile cache of that run)",
            "wall_s",
            sweep_run("warm"),
        )
    else:
        report["clj"] = report["clj_warm"] = {"skipped": "--skip-clj"}
    if not torch:
        report["torch"] = {"skipped": "--skip-torch"}
    elif torch_available() is None:
        log("PyTorch is not installed (pip install torch==2.13.0): skipping the PyTorch loop")
        report["torch"] = {"skipped": "torch is not installed"}
    else:
        measurements["torch"] = (
            f"the PyTorch loop on {len(index or cells)} cells",
            "total_s",
            lambda i: time_baseline("torch", config.to_dict(), index),
        )
    if jax_loop:
        measurements["jax_loop"] = (
            f"the JAX loop (one jit per cell) on {len(jax_index or cells)} cells",
            "total_s",
            lambda i: time_baseline("jax", config.to_dict(), jax_index),
        )
    else:
        report["jax_loop"] = {"skipped": "--skip-jax"}

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in measurements}
    with caches:
        for repeat in range(repeats):
            for name, (what, _, measure) in measurements.items():
                log(f"timing {what}" + (f" (run {repeat + 1} of {repeats})" if repeats > 1 else ""))
                load = _load()
                runs[name].append(measure(repeat) | {"load_before": load})
    for name, (_, key, _) in measurements.items():
        report[name] = _median_run(runs[name], key)
    report["load_after"] = _load()
    report["ratios"] = ratios(report)
    return report


def _run_dir(base: Path | None, repeat: int, repeats: int, kind: str) -> Path | None:
    """Where run ``repeat`` of ``clj sweep`` writes: ``base`` (``base/runN`` with repeats), and
    the warm-cache run beside it with ``-warm`` added."""
    if base is None:
        return None
    path = base if repeats == 1 else base / f"run{repeat + 1}"
    return path if kind == "cold" else path.with_name(path.name + "-warm")


def _time_sweep_in(
    preset: str,
    overrides: Mapping[str, Any],
    sweep_out: Path | None,
    cpu_devices: int | None,
    compile_cache: Path,
) -> dict[str, Any]:
    if sweep_out is not None:
        return time_sweep(preset, overrides, sweep_out, cpu_devices, compile_cache)
    with tempfile.TemporaryDirectory(prefix="clj-bench-") as tmp:
        return time_sweep(preset, overrides, Path(tmp) / "sweep", cpu_devices, compile_cache)


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median (the lower middle one for an even count), with every
    run's ``key`` listed under ``runs``."""
    ordered = sorted(runs, key=lambda r: r[key])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["runs"] = [r[key] for r in runs]
    median["repeats"] = len(runs)
    return median


def _sample(cells: Sequence[Mapping[str, Any]], n: int | None) -> list[int] | None:
    from clj._baselines import sample_cells

    index = None if n is None else sample_cells(cells, n)
    return None if index is None or len(index) == len(cells) else index


def ratios(report: Mapping[str, Any]) -> dict[str, float]:
    """Loop seconds over ``clj sweep``'s whole-process seconds (higher: clj is faster)."""
    out: dict[str, float] = {}
    clj = report.get("clj", {})
    if "wall_s" not in clj:
        return out
    torch = report.get("torch", {})
    if "total_s" in torch:
        out["torch_train_eval_over_clj"] = torch["total_s"] / clj["wall_s"]
        out["torch_train_only_over_clj"] = torch["train_s"] / clj["wall_s"]
        out["torch_train_only_over_clj_train"] = torch["train_s"] / clj["train_s"]
    warm = report.get("clj_warm", {})
    if "total_s" in torch and "wall_s" in warm:
        out["torch_train_eval_over_clj_warm"] = torch["total_s"] / warm["wall_s"]
    jax_ = report.get("jax_loop", {})
    if "total_s" in jax_:
        out["jax_loop_over_clj"] = jax_["total_s"] / clj["wall_s"]
        out["jax_loop_train_over_clj_train"] = jax_["train_s"] / clj["train_s"]
    return out


# -- report -------------------------------------------------------------------------------------


def print_report(console: Any, report: Mapping[str, Any]) -> None:
    """Prints the figures of :func:`run_bench` as rich tables."""
    from rich.table import Table

    m = report["machine"]
    grid = report["grid"]
    title = (
        f"{grid['cells']} cells ({grid['preset']}) on {m.get('cpu', '?')}, {m['cores']} cores; "
        f"jax {m['jax']}, torch {m['torch'] or 'not installed'}, clj {m.get('clj_commit') or '?'}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("measurement")
    table.add_column("seconds", justify="right")
    table.add_column("notes")

    def sampled(part: Mapping[str, Any]) -> str:
        if part.get("sampled"):
            return f"{part['measured_cells']} of {part['cells']} cells run, extrapolated by width"
        return f"all {part['cells']} cells run"

    def runs(part: Mapping[str, Any]) -> str:
        if part.get("repeats", 1) == 1:
            return ""
        figures = ", ".join(f"{x:.1f}" for x in part["runs"])
        return f"; median of {part['repeats']} runs ({figures})"

    def measurement(title: str, seconds: float, note: str, parts: list[tuple]) -> None:
        table.add_row(title, f"{seconds:.1f}", note)
        for label, value, text in parts:
            table.add_row(f"  {label}", f"{value:.1f}", text)

    clj = report["clj"]
    if "skipped" in clj:
        table.add_row("clj sweep", "-", f"skipped: {clj['skipped']}")
    else:
        env = clj["environment"]
        measurement(
            "clj sweep, whole process",
            clj["wall_s"],
            f"{len(clj['programs'])} program(s) on {env.get('devices', '?')} "
            f"{env.get('backend', '')} device(s); empty compile cache{runs(clj)}",
            [
                ("compile", clj["compile_s"], ""),
                ("train", clj["train_s"], ""),
                ("evaluate", clj["eval_s"], "probes, k-NN, k-means, NMI/ARI, …"),
                ("start-up, planning, writing", clj["other_s"], ""),
            ],
        )
    warm = report.get("clj_warm", {})
    if "wall_s" in warm:
        measurement(
            "clj sweep again, compile cache warm",
            warm["wall_s"],
            f"the same grid, programs loaded from the first run's cache{runs(warm)}",
            [("compile (loading)", warm["compile_s"], ""), ("train", warm["train_s"], "")],
        )
    torch = report["torch"]
    if "skipped" in torch:
        table.add_row("PyTorch loop", "-", f"skipped: {torch['skipped']}")
    else:
        measurement(
            "PyTorch loop, train + eval",
            torch["total_s"],
            f"{sampled(torch)}; {torch['threads']} threads; no start-up{runs(torch)}",
            [
                ("train", torch["train_s"], ""),
                ("evaluate", torch["eval_s"], "features, loss, ridge probe"),
            ],
        )
    jax_ = report["jax_loop"]
    if "skipped" in jax_:
        table.add_row("JAX loop", "-", f"skipped: {jax_['skipped']}")
    else:
        measurement(
            "JAX loop, one jit per cell",
            jax_["total_s"],
            f"{sampled(jax_)}; training only; no start-up{runs(jax_)}",
            [("compile", jax_["compile_s"], ""), ("train", jax_["train_s"], "")],
        )
    console.print(table)

    r = report["ratios"]
    if r:
        speed = Table(title="speed-up of clj sweep (whole process)", title_justify="left")
        speed.add_column("baseline")
        speed.add_column("× clj", justify="right")
        names = {
            "torch_train_eval_over_clj": "PyTorch loop, train + eval",
            "torch_train_eval_over_clj_warm": "PyTorch loop, train + eval; clj compile cache warm",
            "torch_train_only_over_clj": "PyTorch loop, train only",
            "torch_train_only_over_clj_train": "PyTorch train only vs clj train only",
            "jax_loop_over_clj": "JAX loop, one jit per cell",
            "jax_loop_train_over_clj_train": "JAX loop train only vs clj train only",
        }
        for key, name in names.items():
            if key in r:
                speed.add_row(name, f"{r[key]:.2f}")
        console.print(speed)
        if (
            "torch_train_eval_over_clj" in r
            and grid["preset"] == "reference"
            and not grid["overrides"]
        ):
            met = r["torch_train_eval_over_clj"] >= TARGET_VS_TORCH
            console.print(
                f"target ≥ {TARGET_VS_TORCH:g}× faster than the PyTorch loop: "
                + ("[green]met[/green]" if met else "[red]not met[/red]")
            )
    if "command" in clj:
        console.print(f"clj command: {clj['command']}", highlight=False)
    console.print(f"load average before/after: {clj.get('load_before')} / {report['load_after']}")
