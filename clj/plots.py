"""Figures of a sweep: metric heatmaps over width × clusters, and loss curves."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clj.config import CELL_AXES, STATIC_AXES

if TYPE_CHECKING:
    from clj.sweep import SweepResult

__all__ = ["HEATMAP_METRICS", "draw_figures", "heatmap", "loss_curves", "save_plots"]

HEATMAP_METRICS = ("probe_fine", "probe_coarse", "recovered_clusters", "kmeans_nmi")
"""Metrics drawn as heatmaps by :func:`save_plots`."""

FACET_CANDIDATES = tuple(
    axis for axis in (*STATIC_AXES, *CELL_AXES.values()) if axis not in ("width", "clusters")
)
"""Axes that get a panel of their own when they take more than one value."""

MAX_FACETS = 12


def _fixed_margins(fig: plt.Figure, left: float, right: float, bottom: float, top: float) -> None:
    """Margins in inches around a figure's axes. Cheaper than a layout engine, which draws the
    figure once more to measure it (0.62 s instead of 0.34 s for a 6 × 6 heatmap)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=0.3,
        hspace=0.45,
    )


def _facets(table: pd.DataFrame) -> list[str]:
    """Axes other than width and clusters that take more than one value in ``table``."""
    return [c for c in FACET_CANDIDATES if c in table and table[c].nunique() > 1]


def heatmap(table: pd.DataFrame, metric: str, path: str | Path) -> Path:
    """Draws ``metric`` over width (rows) × clusters (columns), one panel per other varying axis.

    Each square shows the mean over seeds, written as ``mean ± standard deviation`` so the spread
    is visible; diverged cells are left out of the mean (NaN).
    """
    facets = _facets(table)
    groups = list(table.groupby(facets, sort=True)) if facets else [((), table)]
    groups = groups[:MAX_FACETS]
    cols = min(len(groups), 3)
    rows = int(np.ceil(len(groups) / cols))
    widths = sorted(table["width"].unique())
    clusters = sorted(table["clusters"].unique())
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(1.1 * len(clusters) * cols + 2.0, 0.8 * len(widths) * rows + 1.5),
        squeeze=False,
    )
    _fixed_margins(fig, left=0.75, right=0.35, bottom=0.6, top=0.75)
    finite = table[metric].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    image = None
    for ax, (key, group) in itertools.zip_longest(axes.flat, groups, fillvalue=(None, None)):
        if group is None:
            ax.axis("off")
            continue
        stats = group.groupby(["width", "clusters"])[metric].agg(["mean", "std"])
        mean = stats["mean"].unstack().reindex(index=widths, columns=clusters)
        std = stats["std"].unstack().reindex(index=widths, columns=clusters)
        image = ax.imshow(mean.to_numpy(float), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), value in np.ndenumerate(mean.to_numpy(float)):
            if np.isfinite(value):
                spread = std.to_numpy(float)[i, j]
                text = f"{value:.2f}" + (f"\n±{spread:.2f}" if np.isfinite(spread) else "")
                shade = "white" if value < (vmin + vmax) / 2 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=shade)
        ax.set_xticks(range(len(clusters)), [str(c) for c in clusters])
        ax.set_yticks(range(len(widths)), [str(w) for w in widths])
        ax.set_xlabel("clusters")
        ax.set_ylabel("width")
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key, strict=True)), fontsize=9)
    if image is not None:
        fig.colorbar(
            image, ax=axes, shrink=0.8, fraction=0.05, pad=0.03, label=f"{metric} (mean over seeds)"
        )
    fig.suptitle(f"{metric}: mean ± sd over {table['seed'].nunique()} seeds")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_curves(table: pd.DataFrame, curves: pd.DataFrame, path: str | Path) -> Path:
    """Training loss against step, mean over seeds, one line per width, one panel per clusters."""
    merged = curves.merge(table[["cell", "width", "clusters", "seed", "program"]], on="cell")
    facet_cols = [c for c in _facets(table)]
    clusters = sorted(table["clusters"].unique())
    fig, axes = plt.subplots(
        1, len(clusters), figsize=(3.2 * len(clusters), 3.0), squeeze=False, sharey=False
    )
    cmap = plt.get_cmap("plasma")
    widths = sorted(table["width"].unique())
    for ax, c in zip(axes.flat, clusters, strict=True):
        sub = merged[merged["clusters"] == c]
        for n, w in enumerate(widths):
            mean = sub[sub["width"] == w].groupby("step")["loss"].mean()
            ax.plot(
                mean.index, mean.to_numpy(), color=cmap(n / max(len(widths) - 1, 1)), label=f"w={w}"
            )
        ax.set_title(f"clusters={c}", fontsize=9)
        ax.set_xlabel("step")
    axes.flat[0].set_ylabel(
        "training loss (mean over seeds"
        + (" and " + ", ".join(facet_cols) if facet_cols else "")
        + ")"
    )
    axes.flat[-1].legend(fontsize=7)
    _fixed_margins(fig, left=0.75, right=0.15, bottom=0.5, top=0.3)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


FORKED_DRAWING_TIMEOUT_S = 300.0
"""How long :func:`draw_figures` waits for its forked child before drawing the child's figures
itself."""


def save_plots(result: SweepResult, out: Path, parallel: bool = True) -> list[Path]:
    """Writes ``heatmap_<metric>.png`` for :data:`HEATMAP_METRICS` and ``loss_curves.png``,
    half of them in a forked process where that is possible (:func:`draw_figures`)."""
    figures = [
        (out / f"heatmap_{m}.png", functools.partial(heatmap, result.table, m))
        for m in HEATMAP_METRICS
    ]
    figures.append(
        (out / "loss_curves.png", functools.partial(loss_curves, result.table, result.curves))
    )
    return draw_figures(figures, parallel)


def draw_figures(
    figures: Sequence[tuple[Path, Callable[[Path], Any]]], parallel: bool = True
) -> list[Path]:
    """Draws figures: ``draw(path)`` writes each ``(path, draw)`` of ``figures``.

    With ``parallel``, on Linux with more than one core, a forked child process draws every
    other figure while this process draws the rest. Matplotlib holds Python's global lock while
    it lays out and rasterises a figure, so threads would not overlap; a fork shares the tables
    already in memory. The child only draws and leaves with ``os._exit``. If it fails or takes
    longer than :data:`FORKED_DRAWING_TIMEOUT_S`, this process draws its figures again (and
    raises any error itself). The five figures of the reference sweep (2026-12-02, 2-core CPU,
    four alternated rounds in a process running JAX) took 0.61-0.76 s instead of 1.00-1.47 s,
    the files byte for byte the same.

    Returns:
      The paths, in the order of ``figures``.
    """
    if not parallel or len(figures) < 2 or not _can_fork():
        for path, draw in figures:
            draw(path)
        return [path for path, _ in figures]
    theirs = figures[1::2]
    with warnings.catch_warnings():
        # JAX warns on every fork of a multithreaded process; the child calls no JAX.
        warnings.filterwarnings(
            "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
        )
        pid = os.fork()
    if pid == 0:  # the child: its figures, then out, with none of the parent's clean-up
        status = 1
        try:
            for path, draw in theirs:
                draw(path)
            status = 0
        finally:
            os._exit(status)
    try:
        for path, draw in figures[0::2]:
            draw(path)
    finally:
        theirs_drawn = _wait(pid, FORKED_DRAWING_TIMEOUT_S)
    if not theirs_drawn:
        for path, draw in theirs:
            draw(path)
    return [path for path, _ in figures]


def _can_fork() -> bool:
    return sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1


def _wait(pid: int, timeout: float) -> bool:
    """Waits up to ``timeout`` seconds for child ``pid`` (killing it after that); whether it
    exited with status 0."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.005)
