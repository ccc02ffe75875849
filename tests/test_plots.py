"""Figures of a sweep: drawn in a forked child and here, or all here, the same files."""

import os
import types

import numpy as np
import pandas as pd
import pytest

from clj import plots


def _result():
    """A sweep's table and curves: 2 seeds × widths 4, 16 × clusters 2, 3."""
    rows = [
        dict(cell=i, seed=s, width=w, clusters=c, program=0)
        for i, (s, w, c) in enumerate((s, w, c) for s in (0, 1) for w in (4, 16) for c in (2, 3))
    ]
    table = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    for metric in plots.HEATMAP_METRICS:
        table[metric] = rng.uniform(size=len(table))
    curves = pd.DataFrame(
        [
            dict(cell=i, step=5 * (t + 1), loss=-t / (1 + i))
            for i in range(len(rows))
            for t in range(4)
        ]
    )
    return types.SimpleNamespace(table=table, curves=curves)


def test_figures_drawn_in_a_forked_child_equal_those_drawn_here(tmp_path):
    result = _result()
    serial, forked = tmp_path / "serial", tmp_path / "forked"
    serial.mkdir()
    forked.mkdir()
    names = [p.name for p in plots.save_plots(result, serial, parallel=False)]
    assert names == [f"heatmap_{m}.png" for m in plots.HEATMAP_METRICS] + ["loss_curves.png"]
    assert [p.name for p in plots.save_plots(result, forked, parallel=True)] == names
    for name in names:
        assert (serial / name).read_bytes() == (forked / name).read_bytes(), name


def _write(text):
    def draw(path):
        path.write_text(text)

    return draw


def test_a_figure_the_child_fails_to_draw_is_drawn_here(tmp_path):
    here = os.getpid()

    def only_here(path):
        if os.getpid() != here:
            (tmp_path / "child").touch()
            raise RuntimeError("the child fails")
        path.write_text("b")

    figures = [(tmp_path / "a", _write("a")), (tmp_path / "b", only_here)]
    assert plots.draw_figures(figures) == [tmp_path / "a", tmp_path / "b"]
    assert [(tmp_path / n).read_text() for n in "ab"] == ["a", "b"]
    assert (tmp_path / "child").exists() == plots._can_fork()


def test_a_figure_that_fails_everywhere_raises_here(tmp_path):
    def broken(path):
        raise ValueError("no such metric")

    figures = [(tmp_path / "a", _write("a")), (tmp_path / "b", broken)]
    with pytest.raises(ValueError, match="no such metric"):
        plots.draw_figures(figures)
    assert (tmp_path / "a").read_text() == "a"
