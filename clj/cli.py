"""The ``clj`` command: ``clj sweep``, ``clj reproduce``, ``clj list``, ``clj bench``.

Errors in what the user asked for are reported as one line, ``clj: error: ...``, with exit
status 2; nothing on disk is overwritten unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import logging
import os
import platform
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]


class UsageError(Exception):
    """A command-line value that cannot be used; the message names it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _list_of(kind: Callable[[str], Any], flag: str) -> Callable[[str], tuple]:
    """Parses a comma-separated list of ``kind`` values for ``flag``, naming a bad item."""

    def parse(text: str) -> tuple:
        items = [t.strip() for t in text.split(",")]
        values = []
        for item in items:
            try:
                values.append(kind(item))
            except ValueError:
                name = {int: "an integer", float: "a number"}.get(kind, "valid")
                raise argparse.ArgumentTypeError(f"{item!r} is not {name}") from None
        return tuple(values)

    return parse


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--data-option: {text!r} is not KEY=VALUE")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


# flag, config field, parser, help
GRID_FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--data", "data", _list_of(str, "--data"), "data families (clj list)"),
    ("--dim", "dim", _list_of(int, "--dim"), "input dimensions"),
    ("--encoder", "encoder", _list_of(str, "--encoder"), "encoders (clj list)"),
    ("--depth", "depth", _list_of(int, "--depth"), "hidden layers of the MLP"),
    ("--widths", "widths", _list_of(int, "--widths"), "hidden widths"),
    ("--clusters", "clusters", _list_of(int, "--clusters"), "cluster counts (hypercube: s)"),
    ("--out-dims", "out_dims", _list_of(int, "--out-dims"), "representation dimensions k"),
    ("--loss", "loss", _list_of(str, "--loss"), "losses and objectives (clj list)"),
    ("--temperature", "temperature", _list_of(float, "--temperature"), "InfoNCE temperatures"),
    ("--dof", "dof", _list_of(float, "--dof"), "degrees of freedom of t_info_nce"),
    ("--lam", "lam", _list_of(float, "--lam"), "covariance weight of spectral_lambda"),
    ("--lipschitz", "lipschitz", _list_of(float, "--lipschitz"), "lipschitz_mlp caps (inf: none)"),
    ("--prior-var", "prior_var", _list_of(float, "--prior-var"), "group-prior variances of simvae"),
    ("--lr", "lr", _list_of(float, "--lr"), "learning rates"),
    ("--weight-decay", "weight_decay", _list_of(float, "--weight-decay"), "weight decays"),
    ("--optimizer", "optimizer", _list_of(str, "--optimizer"), "optimisers: adam, adamw, sgd"),
    ("--batch", "batch", _list_of(int, "--batch"), "positive pairs per step"),
    ("--steps", "steps", _list_of(int, "--steps"), "training steps"),
    ("--eval-size", "eval_size", _list_of(int, "--eval-size"), "held-out anchors per probe split"),
]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="clj", description="Vectorized grids of self-supervised experiments.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sweep = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of cells",
        description="Train a grid of cells in one compiled program per width bucket. Every grid "
        "flag takes a comma-separated list; each list is an axis of the grid. With no flags, "
        "runs the flagship capacity grid.",
    )
    for flag, field, parse, text in GRID_FLAGS:
        sweep.add_argument(flag, dest=field, type=parse, default=argparse.SUPPRESS, help=text)
    sweep.add_argument("--seeds", type=int, default=argparse.SUPPRESS, help="seeds 0 .. N-1")
    sweep.add_argument(
        "--log-every", type=int, default=argparse.SUPPRESS, help="steps between curve points"
    )
    sweep.add_argument(
        "--pool-size", type=int, default=argparse.SUPPRESS, help="fixed anchor pool per cell"
    )
    sweep.add_argument(
        "--views", type=int, default=argparse.SUPPRESS, help="views per group of simvae (J)"
    )
    sweep.add_argument(
        "--data-option",
        dest="data_option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="option of the data family, e.g. groups=4 (repeatable)",
    )
    sweep.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="directory of dataset files (cifar10, mnist, fashion_mnist; data_options data_dir)",
    )
    sweep.add_argument("--config", type=Path, help="TOML file of the same settings")
    sweep.add_argument("--preset", help="start from a named preset (clj list)")
    sweep.add_argument("--out", type=Path, help="output directory (default runs/<timestamp>)")
    sweep.add_argument("--overwrite", action="store_true", help="replace results in --out")
    sweep.add_argument(
        "--no-buckets", action="store_true", help="one program per static group, no width buckets"
    )
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.add_argument(
        "--resume", type=Path, metavar="DIR", help="continue the unfinished sweep in DIR"
    )
    sweep.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="save the whole grid state every STEPS steps (a multiple of --log-every)",
    )
    sweep.add_argument(
        "--max-cells-per-chunk",
        type=int,
        metavar="N",
        help="train at most N cells at once (default: from a memory estimate)",
    )
    sweep.add_argument("--devices", type=int, help="shard cells over the first N devices")
    _add_compile_cache_flags(sweep)
    hosts = sweep.add_argument_group("many hosts (jax.distributed)")
    hosts.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run, detecting the cluster (TPU pod, Slurm, ...)",
    )
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    hosts.add_argument("--num-processes", type=int, help="number of processes")
    hosts.add_argument("--process-id", type=int, help="this process's number, 0 .. N-1")

    reproduce = sub.add_parser(
        "reproduce",
        help="reproduce a paper's claim: results.csv, figures and summary.md",
        description="Run one reproduction (or all of them) and write results.csv, PNG figures "
        "and a summary.md stating the prediction, the measured numbers and the verdict.",
    )
    reproduce.add_argument("name", help="experiment name (clj list), or 'all'")
    reproduce.add_argument("--quick", action="store_true", help="the CPU-sized version")
    reproduce.add_argument(
        "--out", help="output directory (default runs/NAME; for all, one sub-directory each)"
    )
    reproduce.add_argument("--overwrite", action="store_true", help="replace earlier results")
    reproduce.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_compile_cache_flags(reproduce)

    sub.add_parser("list", help="data families, encoders, losses, optimisers, metrics, presets")

    from clj import bench

    bench.add_arguments(
        sub.add_parser(
            "bench",
            help="time the reference grid against sequential PyTorch and JAX loops",
            description="Times `clj sweep` on the reference grid end to end beside a sequential "
            "PyTorch loop and a sequential JAX loop over the same cells, and prints the ratios.",
        )
    )
    return parser


def _add_compile_cache_flags(parser: argparse.ArgumentParser) -> None:
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--compile-cache",
        type=Path,
        metavar="DIR",
        help="keep compiled programs in DIR (default: $CLJ_COMPILE_CACHE or ~/.cache/clj/xla)",
    )
    cache.add_argument(
        "--no-compile-cache", action="store_true", help="compile every program afresh"
    )


def _use_compile_cache(args: argparse.Namespace) -> None:
    """Turns on the persistent compile cache (:mod:`clj.compile_cache`) as the flags say.

    A directory given with ``--compile-cache`` that cannot be used is an error; the default one
    only earns a warning, since the sweep runs as well without it.
    """
    from clj.compile_cache import default_cache_dir, enable_compile_cache

    if args.no_compile_cache:
        return
    if args.compile_cache is not None:
        try:
            enable_compile_cache(args.compile_cache)
        except ValueError as err:
            raise UsageError(f"--compile-cache: {err}") from None
        return
    if default_cache_dir() is None:
        return
    try:
        enable_compile_cache()
    except ValueError as err:
        print(f"clj: warning: {err}; compiling without a cache", file=sys.stderr)


def _config_from_args(args: argparse.Namespace) -> Any:
    from clj.config import CELL_AXES, STATIC_AXES, SweepConfig, load_config
    from clj.presets import preset

    fields = {*STATIC_AXES, *CELL_AXES, "seeds", "log_every", "pool_size", "views"}
    overrides = {k: v for k, v in vars(args).items() if k in fields}
    if args.data_option:
        overrides["data_options"] = dict(args.data_option)
    if getattr(args, "data_dir", None) is not None:
        data_dir = args.data_dir.expanduser()
        if not data_dir.is_dir():
            raise UsageError(f"--data-dir {str(data_dir)!r} is not a directory")
        data_dir = str(data_dir.resolve())
        overrides["data_options"] = {**overrides.get("data_options", {}), "data_dir": data_dir}
    if args.no_buckets:
        overrides["bucket_widths"] = False
    if args.config is not None and args.preset is not None:
        raise UsageError("give either --config or --preset, not both")
    if args.config is not None:
        return load_config(args.config, overrides)
    if args.preset is not None:
        return preset(args.preset, **overrides)
    return SweepConfig.from_dict(overrides, source="command line")


def _join_processes(args: argparse.Namespace) -> None:
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in explicit) and not all(v is not None for v in explicit):
        raise UsageError("--coordinator, --num-processes and --process-id go together")
    if args.num_processes is not None and not 0 <= args.process_id < args.num_processes:
        raise UsageError(f"--process-id {args.process_id} is outside 0..{args.num_processes - 1}")
    if args.distributed or args.coordinator is not None:
        from clj.distributed import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)


def _run_options(args: argparse.Namespace, run: dict[str, Any], config: Any) -> dict[str, Any]:
    """Run options from the flags, falling back to those a resumed sweep was started with."""
    options = {
        name: getattr(args, name) if getattr(args, name) is not None else run.get(name)
        for name in ("checkpoint_every", "max_cells_per_chunk", "devices")
    }
    for name, value in options.items():
        if value is not None and (isinstance(value, bool) or value < 1):
            raise UsageError(f"--{name.replace('_', '-')} {value} must be a positive integer")
    every = options["checkpoint_every"]
    if every is not None and every % config.log_every:
        raise UsageError(
            f"--checkpoint-every {every} is not a multiple of log_every={config.log_every}"
        )
    return options


def _run_sweep(args: argparse.Namespace) -> int:
    import jax
    from rich.console import Console

    from clj.background_compile import run_while_waiting
    from clj.distributed import cell_mesh, is_main_process
    from clj.io import CHECKPOINTS, prepare_out_dir, read_manifest, save_sweep, write_manifest
    from clj.runner import RunOptions
    from clj.sweep import sweep

    _join_processes(args)
    _use_compile_cache(args)
    if args.resume is not None:
        grid_flags = {*(f for _, f, _, _ in GRID_FLAGS), "seeds", "log_every", "pool_size"}
        given = sorted(k for k in vars(args) if k in grid_flags)
        if given or args.config or args.preset or args.out:
            raise UsageError("--resume takes the grid from DIR; drop the other grid flags")
        out = args.resume
        config, run = read_manifest(out)
    else:
        config, run = _config_from_args(args), {}
        out = args.out
        if out is None:
            out = Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        prepare_out_dir(out, overwrite=args.overwrite, create=False)
    run = _run_options(args, run, config)
    mesh = cell_mesh(run["devices"])
    if run["max_cells_per_chunk"] and run["max_cells_per_chunk"] % mesh.size:
        raise UsageError(
            f"--max-cells-per-chunk {run['max_cells_per_chunk']} is not a multiple of the "
            f"{mesh.size} devices of the mesh"
        )
    _barrier("clj-checked")
    main = is_main_process()
    if main and args.resume is None:
        prepare_out_dir(out, overwrite=args.overwrite)
        write_manifest(Path(out), config, run)
    _barrier("clj-started")

    console = Console(stderr=True, quiet=not main)
    verb = "resuming" if args.resume is not None else "training"
    console.print(
        f"clj sweep: {verb} {config.num_cells} cells on {mesh.size} {jax.default_backend()} "
        f"device(s) -> {out}"
    )
    options = RunOptions(
        mesh=mesh,
        max_cells_per_chunk=run["max_cells_per_chunk"],
        checkpoint_dir=Path(out).absolute() / CHECKPOINTS,
        checkpoint_every=run["checkpoint_every"],
    )
    if main:  # while the first compiles run, not after training
        run_while_waiting(_import_writers)
    result = sweep(config, progress=not args.no_progress, options=options)
    if main:
        save_sweep(result, out, overwrite=True, run=run)
        _print_summary(console, result, Path(out))
    _barrier("clj-finished")
    return 0


def _import_writers() -> None:
    """Imports what writing the results needs (pandas, matplotlib: about a second here)."""
    import clj.plots  # noqa: F401


def _barrier(name: str) -> None:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _print_summary(console: Any, result: Any, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{len(result.table)} cells in {result.wall_s:.1f} s")
    for column in ("program", "cells", "max width", "compile s", "train s", "eval s"):
        table.add_column(column, justify="right" if column != "program" else "left")
    for p in result.programs:
        table.add_row(
            p["label"],
            str(p["cells"]),
            str(p["max_width"]),
            f"{p['compile_s']:.1f}",
            f"{p['train_s']:.1f}",
            f"{p['eval_s']:.1f}",
        )
    console.print(table)
    diverged = int(result.table["diverged"].sum())
    if diverged:
        console.print(f"[yellow]{diverged} cell(s) diverged; their metrics are NaN[/yellow]")
    console.print(f"wrote {out}/results.csv, curves.csv, config.json and plots")


def _run_reproduce(args: argparse.Namespace) -> int:
    from rich.console import Console

    from clj.io import prepare_out_dir
    from clj.reproduce import EXPERIMENTS, get_experiment, run_experiment

    if args.name == "all":
        names = list(EXPERIMENTS)
        root = Path(args.out or "runs/reproduce")
        outs = {name: root / name for name in names}
    else:
        get_experiment(args.name)  # names an unknown experiment before anything runs
        names = [args.name]
        outs = {args.name: Path(args.out or Path("runs") / args.name)}
    for out in outs.values():
        prepare_out_dir(out, overwrite=args.overwrite, create=False)
    _use_compile_cache(args)
    console = Console(stderr=True)
    verdicts = {}
    for name in names:
        size = "quick" if args.quick else "full"
        console.print(f"clj reproduce: {name} ({size}) -> {outs[name]}")
        report = run_experiment(
            name,
            outs[name],
            quick=args.quick,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        verdicts[name] = report
        console.print(f"  {name}: {report.verdict} ({report.wall_s:.0f} s)")
        for check in report.checks:
            mark = "[green]✓[/green]" if check.passed else "[red]✗[/red]"
            console.print(
                f"    {mark} {check.name}: {check.measured_text()} (predicted {check.predicted})",
                highlight=False,
            )
    if len(names) > 1:
        console.print("summary: " + ", ".join(f"{n} {r.verdict}" for n, r in verdicts.items()))
    return 0


def _run_list(_: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from clj.data import FAMILIES
    from clj.encoders import ENCODER_DESCRIPTIONS
    from clj.evaluate import METRICS
    from clj.losses import LOSSES
    from clj.optim import OPTIMIZERS
    from clj.presets import PRESETS
    from clj.reproduce import EXPERIMENTS, get_experiment
    from clj.train import OBJECTIVE_DESCRIPTIONS

    def first_line(doc: str | None) -> str:
        return (doc or "").strip().splitlines()[0] if doc else ""

    sections = {
        "data families (--data)": {n: c.description for n, c in FAMILIES.items()},
        "encoders (--encoder)": ENCODER_DESCRIPTIONS,
        "losses (--loss)": {n: first_line(f.__doc__) for n, f in LOSSES.items()},
        "other objectives (--loss)": OBJECTIVE_DESCRIPTIONS,
        "optimizers (--optimizer)": {n: first_line(f.__doc__) for n, f in OPTIMIZERS.items()},
        "presets (clj sweep --preset)": {n: d for n, (d, _) in PRESETS.items()},
        "reproductions (clj reproduce)": {n: get_experiment(n).title for n in EXPERIMENTS},
        "metrics (results.csv columns)": METRICS,
    }
    console = Console()
    for title, rows in sections.items():
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column("name", style="bold")
        table.add_column("what")
        for name, text in rows.items():
            table.add_row(name, text)
        console.print(table)
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from clj import bench

    return bench.main(args)


def use_every_cpu_core() -> None:
    """Splits the host CPU into one JAX device per core, unless ``XLA_FLAGS`` already says how many.

    Cells are independent, so sharding them over per-core CPU devices keeps every core busy with
    whole matrix products instead of splitting small ones between threads (on the 2-core
    reference machine: 49.0 s instead of 56.8 s for the reference grid). Only the CPU platform is
    affected; on a GPU or TPU the mesh still spans the accelerators. Must run before JAX starts.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        flag = f"--xla_force_host_platform_device_count={max(cores or 1, 1)}"
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest glibc accepts on a 64-bit host
_TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Makes glibc's ``malloc`` keep freed memory for reuse instead of returning it to the kernel.

    XLA's CPU matrix products allocate and free packing buffers of a few megabytes on every call,
    from several threads. By default glibc serves such blocks with fresh ``mmap`` s or trims its
    heaps above them once freed, so the same pages were faulted in again and again. Serving every
    block under 32 MiB from the heap and never trimming it, five alternated pairs of cold
    300-step reference sweeps (2-core reference machine, 2026-12-02) took 0.80-0.81 million page
    faults instead of 1.75-2.53 million and 2.5-2.8 s of kernel time instead of 3.8-6.3 s;
    training took a median 19.7 s instead of 21.2 s and the whole process 34.6 s instead of
    35.7 s (faster in four pairs of five). The largest resident size stayed 1.1 GB. Does nothing
    where the C library is not glibc. Returns whether it took effect.
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    kept = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    return bool(kept and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


@contextlib.contextmanager
def _rare_garbage_collection() -> Iterator[None]:
    """Runs the body with Python's cyclic garbage collector run less often, then restores it.

    Tracing and lowering a JAX program allocate millions of short-lived objects, and the
    collector's default thresholds (700, 10, 10) made it walk the heap again and again. Freezing
    the objects that exist after the imports and collecting the youngest generation every 100,000
    allocations instead of every 700 made a reference sweep of 30 steps (compile-bound, a fresh
    process each, three interleaved pairs on the 2-core reference machine, 2026-12-01) take
    27.6-32.9 s instead of 28.9-34.6 s, each pair 1.3-1.9 s shorter.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clj`` command; returns the exit status."""
    use_every_cpu_core()
    keep_freed_memory()
    with _rare_garbage_collection():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    from clj.config import ConfigError
    from clj.io import OutputExistsError

    try:
        args = _parser().parse_args(argv)
        handler = {
            "sweep": _run_sweep,
            "reproduce": _run_reproduce,
            "list": _run_list,
            "bench": _run_bench,
        }[args.command]
        return handler(args)
    except (
        UsageError,
        ConfigError,
        OutputExistsError,
        NotADirectoryError,
        ValueError,
        FileNotFoundError,
    ) as err:
        print(f"clj: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clj: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``clj`` command: :func:`main`, then exit with its status.

    After a successful run in a single process, the interpreter's teardown is skipped
    (``os._exit`` once the output streams are flushed): releasing JAX's runtime, its compiled
    programs and every imported module took 0.55-0.58 s after a sweep on the 2-core reference
    machine (2026-12-02), and by then every file the command writes is complete and closed. A
    failed run, and a process of a multi-process run (whose exit the others wait for), exit as
    usual.
    """
    code = main()
    from clj.distributed import joined

    if code == 0 and not joined():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(code)


if __name__ == "__main__":
    run()
