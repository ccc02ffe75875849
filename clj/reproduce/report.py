"""What an experiment hands back, and how it is written: ``results.csv``, PNGs and ``summary.md``.

An experiment measures; it never decides its verdict by hand. Each :class:`Check` compares one
measured number with what the theory predicts, and the verdict follows from the checks: every
check passing is "agrees", none passing is "disagrees", anything between is "partly agrees".
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from clj.io import environment, prepare_out_dir, write_atomically

__all__ = ["Check", "Report", "verdict", "write_report"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One prediction of the theory against one measurement.

    Attributes:
      name: what is compared (e.g. "loss gap to the closed-form optimum").
      predicted: the prediction in words or numbers (e.g. "< 2%").
      measured: the measured value (a number is formatted with 4 significant digits).
      passed: whether the measurement agrees with the prediction.
    """

    name: str
    predicted: str
    measured: float | str
    passed: bool

    def measured_text(self) -> str:
        if isinstance(self.measured, float | int) and not isinstance(self.measured, bool):
            return "nan" if math.isnan(self.measured) else f"{self.measured:.4g}"
        return str(self.measured)


@dataclasses.dataclass
class Report:
    """An experiment's results.

    Attributes:
      table: one row per grid cell (or per compared model); written as ``results.csv``.
      checks: the theory's predictions against the measurements.
      figures: ``{file stem: matplotlib Figure}``; each is written as ``STEM.png``.
      tables: extra named tables (markdown in ``summary.md`` and ``NAME.csv``), e.g. a table of
        means over seeds printed beside a paper's numbers.
      notes: free markdown appended to the summary (caveats, how a number was computed).
      wall_s: seconds the experiment took.
    """

    table: pd.DataFrame
    checks: list[Check]
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    notes: str = ""
    wall_s: float = 0.0

    @property
    def verdict(self) -> str:
        return verdict(self.checks)


def verdict(checks: list[Check]) -> str:
    """``"agrees"``, ``"partly agrees"`` or ``"disagrees"`` from the checks that passed."""
    if not checks:
        raise ValueError("a report needs at least one check to have a verdict")
    passed = sum(c.passed for c in checks)
    if passed == len(checks):
        return "agrees"
    return "disagrees" if passed == 0 else "partly agrees"


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency), floats with 4 significant digits."""
    cells = frame.astype(object).map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def summary_markdown(
    name: str, title: str, claim: str, report: Report, quick: bool, command: str
) -> str:
    """The text of ``summary.md``: prediction, measured numbers, verdict."""
    size = "quick (CPU-sized)" if quick else "full"
    lines = [
        f"# {name}: {title}",
        "",
        f"Run: `{command}` ({size}; {report.wall_s:.0f} s; {datetime.date.today().isoformat()}).",
        "",
        "## Prediction",
        "",
        claim.strip(),
        "",
        f"## Verdict: {report.verdict}",
        "",
        _markdown(
            pd.DataFrame(
                {
                    "check": [c.name for c in report.checks],
                    "predicted": [c.predicted for c in report.checks],
                    "measured": [c.measured_text() for c in report.checks],
                    "agrees": ["yes" if c.passed else "no" for c in report.checks],
                }
            )
        ),
    ]
    for table_name, frame in report.tables.items():
        lines += ["", f"## {table_name}", "", _markdown(frame)]
    if report.figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{stem}]({stem}.png)" for stem in report.figures]
    if report.notes:
        lines += ["", "## Notes", "", report.notes.strip()]
    return "\n".join(lines) + "\n"


def write_report(
    out: str | Path,
    name: str,
    title: str,
    claim: str,
    report: Report,
    quick: bool,
    command: str,
    overwrite: bool = False,
) -> Path:
    """Writes ``results.csv``, every figure as PNG, extra tables as CSV, ``summary.md`` and
    ``run.json`` into ``out`` (refusing a non-empty directory unless ``overwrite``)."""
    import matplotlib.pyplot as plt

    path = prepare_out_dir(out, overwrite=overwrite)
    write_atomically(path / "results.csv", lambda p: report.table.to_csv(p, index=False))
    for table_name, frame in report.tables.items():
        stem = "".join(c if c.isalnum() else "_" for c in table_name.lower()).strip("_")
        write_atomically(path / f"{stem}.csv", lambda p, f=frame: f.to_csv(p, index=False))
    for stem, figure in report.figures.items():
        write_atomically(
            path / f"{stem}.png", lambda p, f=figure: f.savefig(p, dpi=120, format="png")
        )
        plt.close(figure)
    text = summary_markdown(name, title, claim, report, quick, command)
    write_atomically(path / "summary.md", lambda p: p.write_text(text))
    meta = {
        "experiment": name,
        "quick": quick,
        "verdict": report.verdict,
        "checks": [dataclasses.asdict(c) | {"measured": c.measured_text()} for c in report.checks],
        "wall_s": round(report.wall_s, 3),
        "environment": environment(),
    }
    write_atomically(path / "run.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    return path
