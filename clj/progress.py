"""A progress bar of training steps, shared by all the programs of a sweep."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["StepProgress"]


class StepProgress:
    """Steps done of the total, over every program of a sweep (written to standard error).

    Args:
      total: total steps of all programs (each program's cells advance together).
      enabled: when false, nothing is shown.
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            disable=not enabled,
        )
        self._task = self._progress.add_task("training", total=total)

    def __enter__(self) -> StepProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start_program(self, description: str) -> None:
        """Names the program now training (and compiling)."""
        self._progress.update(self._task, description=description)

    def advance(self, steps: int) -> None:
        """Counts ``steps`` more steps done."""
        self._progress.advance(self._task, steps)
