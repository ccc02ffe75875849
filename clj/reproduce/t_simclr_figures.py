"""Figures of ``t-simclr``: the toy's features, and accuracy against the output dimension k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["accuracy_figure", "toy_figure"]

_TITLES = {
    "probe_fine": "linear probe (encoder outputs)",
    "knn_fine": "10-NN (encoder outputs)",
    "knn_loss_space": "10-NN (loss geometry)",
}


def toy_figure(features: dict[str, tuple[list[dict], Any]], clusters: int) -> Figure:
    """The toy's input, SimCLR's and t-SimCLR's 2-D features, coloured by cluster (seed 0).

    Args:
      features: per loss name, ``(cells, LossSpace)`` of its toy program (cells in order).
      clusters: number of clusters (colours).
    """
    panels = [("input x (d = 2)", "info_nce", "x")]
    panels += [("SimCLR: z / ‖z‖", "info_nce", "z"), ("t-SimCLR: z", "t_info_nce", "z")]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (title, loss, what) in zip(axes, panels, strict=True):
        cells, measured = features[loss]
        c = next(i for i, cell in enumerate(cells) if cell["seed"] == 0)
        points = measured.x[c] if what == "x" else measured.z[c][:, :2]
        labels = measured.labels[c]
        ax.scatter(
            points[:, 0],
            points[:, 1],
            c=labels,
            cmap="tab10",
            vmin=0,
            vmax=max(clusters - 1, 1) if clusters <= 10 else None,
            s=6,
            alpha=0.7,
        )
        if what == "z":
            cell = cells[c]
            extra = f", ν = {cell['dof']:g}" if loss == "t_info_nce" else ""
            title += f" (τ = {cell['temperature']:g}{extra})"
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    return fig


def accuracy_figure(
    best: dict[str, pd.DataFrame], parts: Sequence[str], metrics: Sequence[str]
) -> Figure:
    """Accuracy (best temperature, mean ± sd over seeds) against k, one line per method.

    Args:
      best: per metric, :func:`~clj.reproduce.t_simclr.best_over_temperature`'s table (its
        row order is the legend's).
      parts: rows of the figure (data sets).
      metrics: columns of the figure.
    """
    fig = Figure(figsize=(4.2 * len(metrics), 3.6 * len(parts)), layout="constrained")
    axes = fig.subplots(len(parts), len(metrics), squeeze=False, sharex=True)
    for row, part in enumerate(parts):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            frame = best[metric]
            frame = frame[frame.part == part]
            for method in pd.unique(frame.method):  # in the table's order
                line = frame[frame.method == method].sort_values("out_dim")
                ax.errorbar(
                    line.out_dim,
                    line["mean"],
                    yerr=np.nan_to_num(line["sd"].to_numpy(float)),
                    marker="o",
                    capsize=2,
                    linestyle="--" if method == "SimCLR" else "-",
                    label=method,
                )
            ax.set_xscale("log", base=2)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{part}: {_TITLES.get(metric, metric)}")
            if row == len(parts) - 1:
                ax.set_xlabel("output dimension k")
            if col == 0:
                ax.set_ylabel("accuracy (best τ)")
    axes[0, -1].legend(loc="lower right", fontsize=8)
    return fig
