"""``saunshi-table1``: equal SimCLR loss, very different downstream accuracy (Saunshi et al. 2022).

Run::

    clj reproduce saunshi-table1 --quick --out runs/saunshi-table1
    python experiments/saunshi_table1.py --quick --out runs/saunshi-table1

Data (their Example 1, the ``hypercube`` family): ``x̄`` uniform on ``{±1}^20``; a view keeps the
first ``s = 4`` coordinates and multiplies each other one by ``τ ~ U(0, 1]`` (independently per
view and coordinate); the label is ``sign(w·x̄_{1:4})`` with ``w ~ N(0, I)`` drawn per seed.

Representations, each measured per seed on the same held-out data (:mod:`saunshi_measure`):

- a hand-built perfect ``f(x) = x_{1:4}`` and spurious ``g(x) = sign(x_{5:8})``: both exactly
  invariant, both four uniform bits, so their SimCLR losses agree in distribution;
- depth-2 ReLU MLPs trained with the SimCLR loss (``info_nce``) and Adam, without and with weight
  decay (two values of the per-cell ``weight_decay`` axis of one vmapped program);
- a linear encoder ``x ↦ W x + b`` trained the same way (a second program).

Every trained encoder sees a fixed pretraining pool (``pool_size``); the linear probe is a
logistic regression fitted on the pool's labels and tested on held-out anchors.

What it should show (their Table 1): ``f`` and ``g`` have the same loss but ``g`` is at chance
and ``f`` at 100%; among trained encoders the loss does not decide accuracy: the linear encoder
has the highest loss and the best accuracy, the MLP is worse, and weight decay helps the MLP.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import numpy as np
import pandas as pd
import scipy.stats
from matplotlib.figure import Figure

from clj.cell import stack_cells
from clj.config import SweepConfig
from clj.plan import Program
from clj.reproduce import Check, Experiment, Report
from clj.reproduce.grid import run_grid
from clj.reproduce.saunshi_measure import (
    SeedData,
    cell_data,
    measure,
    perfect_features,
    spurious_features,
)
from clj.sweep import SweepResult
from clj.train import make_train

__all__ = ["EXPERIMENT", "PAPER", "SIZES", "Table1Size", "saunshi_table1"]

DIM = 20
"""Input dimension ``D`` of the hypercube."""
INVARIANT = 4
"""Invariant coordinates ``s`` (the family's ``clusters``); the label is linear in them."""
OUT_DIM = 8
"""Representation dimension of the trained encoders (the hand-built ones have ``s``)."""
DEPTH = 2
"""Hidden layers of the MLP."""
LR = 1e-3
"""Adam's learning rate."""
WEIGHT_DECAY = 0.1
"""The weight decay of the "+ weight decay" MLP (Adam with coupled L2, as PyTorch's Adam)."""
TEMPERATURE = 0.5
"""SimCLR temperature, in training and in the held-out loss."""
SPREAD = 2.0
"""A difference of means counts when it exceeds this many standard errors."""
CHANCE_TOLERANCE = 0.02
"""Largest distance of the spurious representation's accuracy from 1/2 that counts as chance."""

PERFECT, SPURIOUS = "perfect f", "spurious g"
MLP, MLP_WD, LINEAR = "MLP + Adam", "MLP + Adam + wd", "linear"
ORDER = (PERFECT, SPURIOUS, MLP, MLP_WD, LINEAR)

PAPER: dict[str, tuple[float, str]] = {
    PERFECT: (4.939, "100"),
    SPURIOUS: (4.939, "50"),
    MLP: (5.039, "74.1 ± 4.3"),
    MLP_WD: (5.040, "89.5 ± 4.9"),
    LINEAR: (5.134, "99.5 ± 0.1"),
}
"""Their Table 1: SimCLR loss and linear-probe accuracy (%) of each representation."""


@dataclasses.dataclass(frozen=True)
class Table1Size:
    """Seeds, training length and data sizes of one size of the experiment.

    ``eval_size`` sizes the sweep's own evaluation (:data:`clj.evaluate.METRICS`), which this
    experiment does not report: its measurements are :func:`measure_all`'s.
    """

    seeds: int
    steps: int
    pool_size: int
    n_test: int
    batch: int = 256
    width: int = 128
    log_every: int = 50
    eval_size: int = 256


SIZES: dict[str, Table1Size] = {
    "smoke": Table1Size(
        seeds=2, steps=20, pool_size=512, n_test=256, batch=64, width=16, log_every=10, eval_size=32
    ),
    "quick": Table1Size(seeds=5, steps=2500, pool_size=50_000, n_test=4096),
    "full": Table1Size(seeds=8, steps=5000, pool_size=50_000, n_test=12_500),
}


def grid_config(size: Table1Size, encoder: str) -> SweepConfig:
    """The sweep of one encoder: ``"mlp"`` (weight decay 0 and :data:`WEIGHT_DECAY`) or
    ``"linear"`` (no weight decay)."""
    if encoder not in ("mlp", "linear"):
        raise ValueError(f"encoder={encoder!r}: choose mlp or linear")
    return SweepConfig(
        data="hypercube",
        dim=DIM,
        encoder=encoder,
        depth=DEPTH,
        loss="info_nce",
        optimizer="adam",
        batch=size.batch,
        steps=size.steps,
        eval_size=size.eval_size,
        seeds=size.seeds,
        widths=size.width,
        clusters=INVARIANT,
        out_dims=OUT_DIM,
        lr=LR,
        weight_decay=(0.0, WEIGHT_DECAY) if encoder == "mlp" else 0.0,
        temperature=TEMPERATURE,
        log_every=size.log_every,
        pool_size=size.pool_size,
    )


# -- measurement ----------------------------------------------------------------------------------
def seed_data(program: Program, size: Table1Size) -> tuple[list[int], SeedData]:
    """The seeds of ``program`` and each seed's :class:`SeedData` (leaves ``[S, ...]``)."""
    seeds = sorted({c["seed"] for c in program.cells})
    firsts = [next(c for c in program.cells if c["seed"] == s) for s in seeds]
    fn = functools.partial(cell_data, program.spec.family, size.pool_size, size.n_test)
    return seeds, jax.jit(jax.vmap(fn))(stack_cells(firsts))


def _encode(program: Program, states: Any, x: np.ndarray, chunk: int = 4) -> np.ndarray:
    """``[C, n, dim]`` inputs of each cell -> ``[C, n, max_out_dim]`` features, ``chunk`` cells
    at a time (bounded memory, one compiled program)."""
    encode = jax.jit(jax.vmap(make_train(program.spec).encode))
    cells = stack_cells(list(program.cells))
    count = len(program.cells)
    out = []
    for start in range(0, count, chunk):
        index = np.minimum(np.arange(start, start + chunk), count - 1)  # pad with the last cell
        params, chunk_cells = jax.tree.map(lambda a, i=index: a[i], (states.params, cells))
        z = encode(params, chunk_cells, x[index])
        out.append(np.asarray(z)[: min(chunk, count - start)])
    return np.concatenate(out)


@functools.partial(jax.jit, static_argnames=("batch",))
def _measure_all(
    z_pool: jax.Array,
    y_pool: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    z_views: jax.Array,
    z_redrawn: jax.Array,
    batch: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`measure` vmapped over a leading row axis: ``([R, n_batches], [R], [R])``."""
    fn = functools.partial(measure, batch=batch, temperature=TEMPERATURE)
    return jax.vmap(fn)(z_pool, y_pool, z_test, y_test, z_views, z_redrawn)


def _pad(z: np.ndarray, width: int) -> np.ndarray:
    """Zero columns up to ``width`` (they change neither cosine similarities nor the probe)."""
    return np.pad(z, [(0, 0)] * (z.ndim - 1) + [(0, width - z.shape[-1])])


def measure_all(results: list[SweepResult], size: Table1Size) -> list[dict]:
    """One row per seed of ``f`` and ``g`` and per trained cell of ``results``, all measured on
    their seed's :class:`SeedData` in one vmapped call."""
    seeds, data = seed_data(results[0].states[0][0], size)
    row_of_seed = {s: i for i, s in enumerate(seeds)}
    n_pool, n_test = size.pool_size, size.n_test
    parts = [data.pool.x, data.test.x, data.views[:, 0], data.views[:, 1], data.redrawn]
    x = np.concatenate(parts, axis=1)  # [S, n_pool + 4 n_test, dim]
    meta, feats, which = [], [], []
    for name, features in ((PERFECT, perfect_features), (SPURIOUS, spurious_features)):
        feats.append(_pad(np.asarray(features(x, INVARIANT)), OUT_DIM))
        which += range(len(seeds))
        meta += [(name, {"seed": s}, math.nan) for s in seeds]
    for result in results:
        final = result.curves.sort_values("step").groupby("cell").loss.last()
        for program, states in result.states:
            index = [row_of_seed[c["seed"]] for c in program.cells]
            if not np.array_equal(np.asarray(data.pool.x)[index], np.asarray(states.pool.x)):
                raise RuntimeError("the measurement pool differs from the pool cells trained on")
            feats.append(_pad(_encode(program, states, x[index]), OUT_DIM))
            which += index
            for cell, i in zip(program.cells, program.index, strict=True):
                name = MLP_WD if cell["weight_decay"] else MLP
                meta.append((LINEAR if cell["encoder"] == "linear" else name, cell, final[i]))
    z = np.concatenate(feats)
    pool_y, test_y = np.asarray(data.pool.coarse)[which], np.asarray(data.test.coarse)[which]
    test, first, second, redrawn = (
        z[:, n_pool + i * n_test : n_pool + (i + 1) * n_test] for i in range(4)
    )
    losses, acc, cosine = _measure_all(
        z[:, :n_pool], pool_y, test, test_y, np.stack([first, second], 1), redrawn, size.batch
    )
    losses, acc, cosine = np.asarray(losses), np.asarray(acc), np.asarray(cosine)
    return [
        _row(name, cell, losses[r], float(acc[r]), float(cosine[r]), train_loss)
        for r, (name, cell, train_loss) in enumerate(meta)
    ]


def _row(
    name: str, cell: dict, losses: np.ndarray, accuracy: float, cosine: float, train_loss: float
) -> dict:
    hand_built = name in (PERFECT, SPURIOUS)
    return {
        "representation": name,
        "encoder": "hand-built" if hand_built else cell["encoder"],
        "weight_decay": math.nan if hand_built else cell["weight_decay"],
        "seed": cell["seed"],
        "simclr_loss": float(np.mean(losses)),
        "simclr_loss_se": float(np.std(losses, ddof=1) / np.sqrt(len(losses)))
        if len(losses) > 1
        else math.nan,
        "probe_accuracy": accuracy,
        "invariant_similarity": cosine,
        "final_train_loss": float(train_loss),
        "batch_losses": losses,
    }


def saunshi_table1(size: Table1Size, progress: bool = True) -> Report:
    """Trains both grids of ``size``, measures every representation and checks the claims."""
    mlp = run_grid(grid_config(size, "mlp"), progress=progress)
    linear = run_grid(grid_config(size, "linear"), progress=progress)
    rows = measure_all([mlp, linear], size)
    batch_losses = {(r["representation"], r["seed"]): r.pop("batch_losses") for r in rows}
    table = pd.DataFrame(rows)
    table["representation"] = pd.Categorical(table.representation, ORDER, ordered=True)
    table = table.sort_values(["representation", "seed"]).reset_index(drop=True)
    curves = pd.concat(
        [_curves(mlp, MLP, MLP_WD), _curves(linear, LINEAR, LINEAR)], ignore_index=True
    )
    return Report(
        table=table,
        checks=_checks(table, batch_losses),
        figures={"loss_vs_accuracy": _figure(table, curves)},
        tables={"Table 1 beside the paper": paper_table(table)},
        notes=_notes(size, table, batch_losses),
    )


# -- summaries and checks -------------------------------------------------------------------------
def _stats(table: pd.DataFrame, name: str, metric: str) -> tuple[float, float, int]:
    """Mean, standard deviation (NaN for one seed) and count of ``metric`` over seeds."""
    values = table.loc[table.representation == name, metric].to_numpy(float)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), sd, len(values)


def _difference(table: pd.DataFrame, high: str, low: str, metric: str) -> tuple[float, float]:
    """Mean of ``metric`` for ``high`` minus that for ``low``, and its standard error."""
    m1, s1, n1 = _stats(table, high, metric)
    m2, s2, n2 = _stats(table, low, metric)
    return m1 - m2, math.sqrt(s1**2 / n1 + s2**2 / n2)


def paired_loss_gap(batch_losses: dict, seeds: list[int]) -> tuple[float, float]:
    """Mean over seeds and batches of ``L(g) − L(f)`` on the same batches, and its standard
    error (batches are independent)."""
    gaps = np.concatenate([batch_losses[SPURIOUS, s] - batch_losses[PERFECT, s] for s in seeds])
    se = float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else math.nan
    return float(np.mean(gaps)), se


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """Their numbers beside ours: one row per representation (means ± sd over seeds), with the
    invariant similarity (:mod:`saunshi_measure`) as a column of ours only."""
    out = []
    for name in ORDER:
        loss, loss_sd, n = _stats(table, name, "simclr_loss")
        acc, acc_sd, _ = _stats(table, name, "probe_accuracy")
        cos, cos_sd, _ = _stats(table, name, "invariant_similarity")
        out.append(
            {
                "representation": name,
                "paper SimCLR loss": f"{PAPER[name][0]:.3f}",
                "paper accuracy (%)": PAPER[name][1],
                "SimCLR loss": _pm(loss, loss_sd, 3),
                "accuracy (%)": _pm(100 * acc, 100 * acc_sd, 1),
                "invariant similarity": _pm(cos, cos_sd, 3),
                "seeds": n,
            }
        )
    return pd.DataFrame(out)


def _pm(mean: float, sd: float, digits: int) -> str:
    return f"{mean:.{digits}f}" if not np.isfinite(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _checks(table: pd.DataFrame, batch_losses: dict) -> list[Check]:
    seeds = sorted(table.seed.unique())
    gap, gap_se = paired_loss_gap(batch_losses, seeds)
    f_acc = _stats(table, PERFECT, "probe_accuracy")[0]
    g_acc = _stats(table, SPURIOUS, "probe_accuracy")[0]
    trained = (MLP, MLP_WD, LINEAR)
    loss = {n: _stats(table, n, "simclr_loss")[0] for n in trained}
    acc = {n: _stats(table, n, "probe_accuracy")[0] for n in trained}
    lin_gain, lin_se = _difference(table, LINEAR, MLP, "probe_accuracy")
    wd_gain, wd_se = _difference(table, MLP_WD, MLP, "probe_accuracy")
    top_loss = max(loss, key=loss.get)
    top_acc = max(acc, key=acc.get)
    return [
        Check(
            "SimCLR loss of g minus that of f (same held-out batches)",
            f"0 within {SPREAD:g} standard errors (SE {gap_se:.2g})",
            gap,
            bool(abs(gap) <= SPREAD * gap_se),
        ),
        Check("probe accuracy of the perfect f", "1 (≥ 0.999)", f_acc, bool(f_acc >= 0.999)),
        Check(
            "probe accuracy of the spurious g",
            f"chance: 0.5 ± {CHANCE_TOLERANCE:g}",
            g_acc,
            bool(abs(g_acc - 0.5) <= CHANCE_TOLERANCE),
        ),
        Check(
            "trained encoder with the highest loss / with the highest accuracy",
            "linear / linear (loss does not decide accuracy)",
            f"{top_loss} ({loss[top_loss]:.4f}) / {top_acc} ({acc[top_acc]:.4f})",
            bool(top_loss == LINEAR and top_acc == LINEAR),
        ),
        Check(
            "accuracy of linear minus MLP + Adam",
            f"> 0 by more than {SPREAD:g} SE (SE {lin_se:.2g})",
            lin_gain,
            bool(lin_gain > SPREAD * lin_se),
        ),
        Check(
            "accuracy of MLP + Adam + wd minus MLP + Adam (weight decay helps)",
            f"> 0 by more than {SPREAD:g} SE (SE {wd_se:.2g})",
            wd_gain,
            bool(wd_gain > SPREAD * wd_se),
        ),
    ]


def _curves(result: SweepResult, plain: str, decayed: str) -> pd.DataFrame:
    """Training-loss curves labelled with their representation."""
    wd = result.table.set_index("cell").weight_decay
    curves = result.curves.copy()
    curves["representation"] = np.where(wd.loc[curves.cell].to_numpy() > 0, decayed, plain)
    return curves


COLORS = {PERFECT: "C2", SPURIOUS: "C3", MLP: "C0", MLP_WD: "C1", LINEAR: "C4"}


def _figure(table: pd.DataFrame, curves: pd.DataFrame) -> Figure:
    """Left: probe accuracy against held-out SimCLR loss, one point per seed. Right: training
    loss (mean over seeds) with the held-out loss of ``f`` and ``g`` for reference."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name in ORDER:
        part = table[table.representation == name]
        left.scatter(part.simclr_loss, part.probe_accuracy, color=COLORS[name], label=name, s=28)
    left.axhline(0.5, color="grey", lw=0.8, ls=":")
    left.set_xlabel("held-out SimCLR loss")
    left.set_ylabel("linear-probe accuracy (label)")
    left.set_title("equal loss, different accuracy")
    left.legend(loc="lower center", fontsize=8)
    left.grid(alpha=0.3)
    for name, part in curves.groupby("representation"):
        mean = part.groupby("step").loss.mean()
        right.plot(mean.index, mean.to_numpy(), color=COLORS[name], label=name)
    f_loss = _stats(table, PERFECT, "simclr_loss")[0]
    right.axhline(f_loss, color=COLORS[PERFECT], ls="--", lw=1, label="f and g (held out)")
    right.set_xlabel("step")
    right.set_ylabel("training SimCLR loss (mean over seeds)")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    return fig


def _notes(size: Table1Size, table: pd.DataFrame, batch_losses: dict) -> str:
    seeds = sorted(table.seed.unique())
    gap, gap_se = paired_loss_gap(batch_losses, seeds)
    wd_gain, wd_se = _difference(table, MLP_WD, MLP, "probe_accuracy")
    lines = [
        f"Setting: hypercube, D = {DIM}, s = {INVARIANT} invariant coordinates, label "
        f"sign(w·x̄_{{1:{INVARIANT}}}) with w ~ N(0, I) per seed. SimCLR loss (`info_nce`) at "
        f"temperature {TEMPERATURE} and batch {size.batch} pairs, in training and on held-out "
        f"data. Trained encoders: output dimension {OUT_DIM}; depth-{DEPTH} ReLU MLP of width "
        f"{size.width}; Adam (lr {LR:g}) with coupled L2 weight decay {WEIGHT_DECAY:g} for "
        f'"+ wd"; {size.steps} steps on a fixed pool of {size.pool_size} anchors; '
        f"{size.seeds} seeds. MLP cells (both weight decays) are one vmapped program, linear "
        "cells a second.",
        "",
        f"Measurement: per seed, the probe (logistic regression, weights penalised by 1e-6 per "
        f"sample on standardised features, fitted by Newton steps) trains on the pool's labels "
        f"and is tested on {size.n_test} held-out anchors; the held-out SimCLR loss is the mean "
        f"over the {size.n_test // size.batch} consecutive batches of {size.batch} positive pairs "
        "formed by two views of the test anchors. Every representation of a seed sees the same "
        "pool, test anchors and views. f(x) = x_{1:s} and g(x) = sign(x_{s+1:2s}) are exactly "
        "invariant (τ > 0 keeps signs) and both are s uniform independent bits, so their losses "
        f"agree in distribution: measured L(g) − L(f) = {gap:.4f} ± {gap_se:.4f} (SE).",
        "",
        "Absolute losses are not comparable with the paper's: they depend on batch size, "
        "temperature, s and the representation dimension, and the paper's values of these could "
        "not be recovered from its table (the hand-built f gives losses near 4.9 for several "
        "combinations, e.g. s = 3 at batch 256 and temperature 0.5). The checks test the "
        "claims, not the numbers. D, s, output dimension, "
        "weight decay and steps were chosen in a short pilot (weight decays 1e-4 to 10 with "
        "Adam and AdamW, output dimensions 4 and 8, D 20 and 50) before these runs; the pilot "
        "and these runs are honest draws, not selected seeds.",
        "",
        "In the pilot (not rerun here), with output dimension 4 = s the MLPs reached f's loss "
        "and ignored the spurious coordinates, yet arranged the 2^s invariant patterns so that "
        "the label was not always linearly separable, and no weight decay helped; so this "
        "experiment uses output dimension 8.",
        "",
        "Invariant similarity (the mean cosine between the representation of a test anchor and "
        "of the same anchor with its spurious coordinates redrawn; 1 = the spurious coordinates "
        "are ignored): "
        + "; ".join(
            f"{name} {_stats(table, name, 'invariant_similarity')[0]:.3f}" for name in ORDER
        )
        + ".",
    ]
    mlp_sim = _stats(table, MLP, "invariant_similarity")[0]
    linear_sim = _stats(table, LINEAR, "invariant_similarity")[0]
    if mlp_sim > linear_sim:
        lines[-1] += (
            " The MLP depends less on the spurious coordinates than the linear encoder does, so "
            "its lower accuracy is not explained by spurious features: its representation is "
            "close to a function of the invariant coordinates, and what costs accuracy is how "
            "that function arranges the 2^s invariant patterns (a linear encoder can only "
            "arrange them linearly)."
        )
    mlps = table[table.representation.isin([MLP, MLP_WD])]
    if len(mlps) > 2:
        rho = scipy.stats.spearmanr(mlps.simclr_loss, mlps.probe_accuracy).statistic
        lines += [
            "",
            f"Across the {len(mlps)} MLP cells (both weight decays), the Spearman correlation "
            f"between held-out SimCLR loss and probe accuracy is {rho:+.2f} (a loss that decided "
            "accuracy would make it strongly negative).",
        ]
    if not wd_gain > SPREAD * wd_se:
        lines += [
            "",
            f"Weight decay changed the MLP's mean accuracy by {wd_gain:+.3f} (SE {wd_se:.3f}): "
            + (
                "in the paper's direction but within the seed-to-seed spread, so the claim is "
                "not established at this number of seeds."
                if wd_gain > 0
                else "not in the paper's direction."
            ),
        ]
    return "\n".join(lines)


EXPERIMENT = Experiment(
    name="saunshi-table1",
    title="Saunshi et al. (2022), Table 1: the SimCLR loss does not decide downstream accuracy",
    claim=(
        "On the hypercube of their Example 1 a perfect representation f (the invariant "
        "coordinates) and a spurious one g (signs of spurious coordinates) have the same SimCLR "
        "loss, but a linear probe reads the label perfectly from f and at chance from g. Trained "
        "encoders: a linear encoder has the highest SimCLR loss yet the best accuracy (paper "
        "99.5%); an MLP trained with Adam is worse (74.1%), and weight decay helps it (89.5%). "
        "Function class and optimiser, not the loss value, decide."
    ),
    run=lambda quick, progress: saunshi_table1(SIZES["quick" if quick else "full"], progress),
)
