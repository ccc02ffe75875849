"""The ``clj`` command: ``clj sweep``, ``clj list``.

Errors in what the user asked for are reported as one line, ``clj: error: ...``, with exit
status 2; nothing on disk is overwritten unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Sequence
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
    ("--encoder", "encoder", _list_of(str, "--encoder"), "encoders: mlp, linear"),
    ("--depth", "depth", _list_of(int, "--depth"), "hidden layers of the MLP"),
    ("--widths", "widths", _list_of(int, "--widths"), "hidden widths"),
    ("--clusters", "clusters", _list_of(int, "--clusters"), "cluster counts (hypercube: s)"),
    ("--out-dims", "out_dims", _list_of(int, "--out-dims"), "representation dimensions k"),
    ("--loss", "loss", _list_of(str, "--loss"), "losses (clj list)"),
    ("--temperature", "temperature", _list_of(float, "--temperature"), "InfoNCE temperatures"),
    ("--dof", "dof", _list_of(float, "--dof"), "degrees of freedom of t_info_nce"),
    ("--lam", "lam", _list_of(float, "--lam"), "covariance weight of spectral_lambda"),
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
        "--data-option",
        dest="data_option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="option of the data family, e.g. groups=4 (repeatable)",
    )
    sweep.add_argument("--config", type=Path, help="TOML file of the same settings")
    sweep.add_argument("--preset", help="start from a named preset (clj list)")
    sweep.add_argument("--out", type=Path, help="output directory (default runs/<timestamp>)")
    sweep.add_argument("--overwrite", action="store_true", help="replace results in --out")
    sweep.add_argument(
        "--no-buckets", action="store_true", help="one program per static group, no width buckets"
    )
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sub.add_parser("list", help="data families, encoders, losses, optimisers, metrics, presets")
    return parser


def _config_from_args(args: argparse.Namespace) -> Any:
    from clj.config import CELL_AXES, STATIC_AXES, SweepConfig, load_config
    from clj.presets import preset

    fields = {*STATIC_AXES, *CELL_AXES, "seeds", "log_every", "pool_size"}
    overrides = {k: v for k, v in vars(args).items() if k in fields}
    if args.data_option:
        overrides["data_options"] = dict(args.data_option)
    if args.no_buckets:
        overrides["bucket_widths"] = False
    if args.config is not None and args.preset is not None:
        raise UsageError("give either --config or --preset, not both")
    if args.config is not None:
        return load_config(args.config, overrides)
    if args.preset is not None:
        return preset(args.preset, **overrides)
    return SweepConfig.from_dict(overrides, source="command line")


def _run_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console

    from clj.io import prepare_out_dir, save_sweep
    from clj.sweep import sweep

    config = _config_from_args(args)
    out = args.out
    if out is None:
        out = Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = prepare_out_dir(out, overwrite=args.overwrite)
    console = Console(stderr=True)
    console.print(f"clj sweep: {config.num_cells} cells -> {out}")
    result = sweep(config, progress=not args.no_progress)
    save_sweep(result, out, overwrite=True)
    _print_summary(console, result, out)
    return 0


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


def _run_list(_: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from clj.data import FAMILIES
    from clj.encoders import ENCODER_DESCRIPTIONS
    from clj.evaluate import METRICS
    from clj.losses import LOSSES
    from clj.optim import OPTIMIZERS
    from clj.presets import PRESETS

    def first_line(doc: str | None) -> str:
        return (doc or "").strip().splitlines()[0] if doc else ""

    sections = {
        "data families (--data)": {n: c.description for n, c in FAMILIES.items()},
        "encoders (--encoder)": ENCODER_DESCRIPTIONS,
        "losses (--loss)": {n: first_line(f.__doc__) for n, f in LOSSES.items()},
        "optimizers (--optimizer)": {n: first_line(f.__doc__) for n, f in OPTIMIZERS.items()},
        "experiments (--preset)": {n: d for n, (d, _) in PRESETS.items()},
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clj`` command; returns the exit status."""
    from clj.config import ConfigError
    from clj.io import OutputExistsError

    try:
        args = _parser().parse_args(argv)
        handler = {"sweep": _run_sweep, "list": _run_list}[args.command]
        return handler(args)
    except (UsageError, ConfigError, OutputExistsError, NotADirectoryError, ValueError) as err:
        print(f"clj: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clj: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
