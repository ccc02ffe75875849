"""``cnn-translation``: the representation dimension a CNN and an MLP need (HaoChen & Ma 2023).

Run::

    clj reproduce cnn-translation --quick --out runs/cnn-translation
    python experiments/cnn_translation.py --quick --out runs/cnn-translation

Data: ``patches``: ``P`` patches of length 8; an ``s``-bit pattern's ``±1`` code sits at a uniformly
random patch, the other patches are Gaussian noise, and a view re-draws the noise. The
augmentation graph has ``P · 2^s`` components (pattern × position); the label is the pattern.
Encoders: a one-hidden-layer CNN (``cnn1d``: one-patch kernel, mean pooling, so invariant to where
the pattern is) and a one-hidden-layer MLP of the same width, trained with the spectral loss over
output dimension ``k`` × ``s`` × seeds in one vmapped program per (encoder, ``P``).

What it should show (HaoChen & Ma 2023, Theorem 5.12): the smallest ``k`` at which a linear
probe on the representation reads the pattern (accuracy ≥ 0.9) is about ``2^s`` for the CNN,
whatever ``P`` (its minimal implementable clusters are the patterns), and about ``P · 2^(s−1)``
for the MLP, which can and does separate positions too, so it needs more at larger ``P``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clj import metrics
from clj.cell import Cell, stack_cells
from clj.config import SweepConfig
from clj.random import seed_key
from clj.reproduce import Check, Experiment, Report
from clj.reproduce.grid import run_grid, seed_summary
from clj.train import make_train

__all__ = [
    "EXPERIMENT",
    "SIZES",
    "THRESHOLD",
    "GridSize",
    "cnn_translation",
    "config_for",
    "needed_k",
]

THRESHOLD = 0.9
"""Pattern-probe accuracy (mean over seeds) that counts as "the representation has the label";
fixed before any run."""

PATCH_LEN = 8
"""Length ``L`` of each patch; the input dimension is ``P · L``."""

NOISE = 0.5
"""Standard deviation of the noise patches (the pattern's entries are ``±1``)."""

ENCODERS = ("cnn1d", "mlp")


@dataclasses.dataclass(frozen=True)
class GridSize:
    """The swept values and training of one size of the experiment.

    Attributes:
      patches: the numbers of patches ``P`` (each a program per encoder).
      bits: pattern bits ``s`` (per-cell ``clusters``).
      out_dims: representation dimensions ``k``.
      seeds: seeds per cell.
      width: hidden units of the MLP and channels of the CNN.
      steps, batch, lr: training.
      eval_size: held-out anchors for the probes' training set, and again for their test set.
    """

    patches: tuple[int, ...]
    bits: tuple[int, ...]
    out_dims: tuple[int, ...]
    seeds: int
    width: int
    steps: int
    batch: int = 256
    lr: float = 3e-3
    eval_size: int = 1024


SIZES: dict[str, GridSize] = {
    "smoke": GridSize(
        patches=(2,),
        bits=(1, 2),
        out_dims=(1, 2, 4),
        seeds=1,
        width=8,
        steps=20,
        batch=32,
        eval_size=128,
    ),
    "quick": GridSize(
        patches=(2, 4),
        bits=(1, 2, 3),
        out_dims=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32),
        seeds=1,
        width=64,
        steps=600,
    ),
    "full": GridSize(
        patches=(2, 4, 8),
        bits=(1, 2, 3),
        out_dims=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
        seeds=2,
        width=128,
        steps=800,
        batch=128,
    ),
}


def config_for(size: GridSize) -> SweepConfig:
    """The sweep of one size: both encoders, every ``P``, and per cell ``s``, ``k`` and seed."""
    return SweepConfig(
        data="patches",
        dim=tuple(PATCH_LEN * p for p in size.patches),
        encoder=ENCODERS,
        depth=1,
        loss="spectral",
        optimizer="adam",
        lr=size.lr,
        batch=size.batch,
        steps=size.steps,
        eval_size=size.eval_size,
        seeds=size.seeds,
        widths=(size.width,),
        out_dims=size.out_dims,
        clusters=size.bits,
        data_options={"patch_len": PATCH_LEN, "noise": NOISE},
    )


def predicted_k(encoder: str, bits: int, patches: int) -> int:
    """Theorem 5.12's representation dimension: ``2^s`` (CNN), ``P · 2^(s−1)`` (MLP)."""
    return 2**bits if encoder == "cnn1d" else patches * 2 ** (bits - 1)


def implementable_clusters(encoder: str, bits: int, patches: int) -> int:
    """Minimal implementable clusters: the patterns (CNN) or every (pattern, position) (MLP)."""
    return 2**bits if encoder == "cnn1d" else patches * 2**bits


def needed_k(out_dims: np.ndarray, accuracy: np.ndarray, threshold: float = THRESHOLD) -> float:
    """The smallest ``k`` from which every larger ``k`` of the grid reaches ``threshold``.

    Args:
      out_dims: ``[m]`` representation dimensions.
      accuracy: ``[m]`` probe accuracies at those ``k`` (NaN counts as not reaching it).

    Returns:
      That ``k``, or NaN if the largest ``k`` does not reach ``threshold``.
    """
    order = np.argsort(out_dims)
    ks = np.asarray(out_dims)[order]
    ok = np.nan_to_num(np.asarray(accuracy, float)[order], nan=-np.inf) >= threshold
    if not ok[-1]:
        return float("nan")
    failing = np.flatnonzero(~ok)
    return float(ks[0] if failing.size == 0 else ks[failing[-1] + 1])


def cnn_translation(size: GridSize, progress: bool = True) -> Report:
    """Trains the grid of ``size``, measures the needed ``k`` and checks the predictions."""
    result = run_grid(config_for(size), progress=progress)
    table = result.table.copy()
    table["P"] = table["dim"] // PATCH_LEN
    table["s"] = table["clusters"]
    table["optimal_loss"] = [
        -min(k, implementable_clusters(e, s, p))
        for e, s, p, k in zip(table.encoder, table.s, table.P, table.out_dim, strict=True)
    ]
    table["position_probe"] = _position_probe(result.states, len(table))
    means = seed_summary(
        table, ["encoder", "s", "P", "out_dim"], ["probe_fine", "position_probe", "eval_loss"]
    )
    needed = _needed_table(means)
    return Report(
        table=table,
        checks=_checks(needed),
        figures={"probe_vs_k": _probe_figure(means), "needed_k": _needed_figure(needed)},
        tables={"Needed k": needed},
        notes=_notes(size, needed, means),
    )


def _position_probe(states: list, num_cells: int, n: int = 1024) -> np.ndarray:
    """Per cell: linear-probe accuracy of the pattern's position from the final representation.

    Fresh anchors of each cell (``n`` to fit the ridge probe, ``n`` to test it), encoded by the
    trained cell. A translation-invariant encoder is at chance, ``1 / P``.
    """
    out = np.full(num_cells, np.nan)
    for program, cell_states in states:
        family = program.spec.family
        encode = make_train(program.spec).encode

        def probe(params: Any, world: Any, cell: Cell, family=family, encode=encode) -> jax.Array:
            key = jax.random.fold_in(seed_key(cell.seed), 7919)
            x = family.anchors(key, world, cell, 2 * n).x
            position = family.pattern_position(x)
            z = encode(params, cell, x)
            return metrics.linear_probe_accuracy(
                z[:n], position[:n], z[n:], position[n:], family.num_patches
            )

        cells = stack_cells(list(program.cells))
        accuracy = jax.jit(jax.vmap(probe))(cell_states.params, cell_states.world, cells)
        out[list(program.index)] = np.asarray(accuracy)
    return out


def _needed_table(means: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (encoder, s, p), part in means.groupby(["encoder", "s", "P"], sort=True):
        part = part.sort_values("out_dim")
        k = needed_k(part.out_dim.to_numpy(), part.probe_fine_mean.to_numpy())
        predicted = predicted_k(encoder, s, p)
        top = part.iloc[-1]
        rows.append(
            {
                "encoder": encoder,
                "s": int(s),
                "P": int(p),
                "predicted_k": predicted,
                "needed_k": k,
                "ratio": k / predicted,
                "best_probe": float(part.probe_fine_mean.max()),
                "position_probe_at_max_k": float(top.position_probe_mean),
                "chance_position": 1.0 / p,
            }
        )
    return pd.DataFrame(rows)


def _slope(part: pd.DataFrame) -> float:
    """Least-squares slope of log2(needed k) on log2 P, with one intercept per ``s``."""
    part = part[np.isfinite(part.needed_k)]
    if part.P.nunique() < 2:
        return float("nan")
    y = np.log2(part.needed_k.to_numpy())
    x = np.log2(part.P.to_numpy().astype(float))
    for s in part.s.unique():  # remove each s's mean: slope within s
        mask = (part.s == s).to_numpy()
        y[mask] -= y[mask].mean()
        x[mask] = x[mask] - x[mask].mean()
    return float(np.sum(x * y) / np.sum(x * x)) if np.sum(x * x) > 0 else float("nan")


def _ratio_check(needed: pd.DataFrame, encoder: str, formula: str) -> Check:
    part = needed[needed.encoder == encoder]
    ratios = part.ratio.to_numpy()
    within = np.isfinite(ratios) & (ratios >= 0.5) & (ratios <= 2.0)
    text = ", ".join(
        f"s={s},P={p}: {k:g}/{q}" if np.isfinite(k) else f"s={s},P={p}: >max k"
        for s, p, k, q in zip(part.s, part.P, part.needed_k, part.predicted_k, strict=True)
    )
    name = "CNN" if encoder == "cnn1d" else "MLP"
    return Check(
        f"{name}: needed k within a factor 2 of {formula} (every s, P)",
        f"all {len(part)} within",
        f"{int(within.sum())}/{len(part)} within ({text})",
        bool(within.all()),
    )


def _checks(needed: pd.DataFrame) -> list[Check]:
    cnn = needed[needed.encoder == "cnn1d"].set_index(["s", "P"])
    mlp = needed[needed.encoder == "mlp"].set_index(["s", "P"])
    checks = [
        _ratio_check(needed, "cnn1d", "2^s"),
        _ratio_check(needed, "mlp", "P·2^(s−1)"),
    ]
    for name, part, predicted, low, high in (
        ("CNN", cnn, "≈ 0 (|slope| ≤ 0.5): the CNN's need does not grow with P", -0.5, 0.5),
        ("MLP", mlp, "≈ 1 (0.5 to 1.5): the MLP's need grows like P", 0.5, 1.5),
    ):
        slope = _slope(part.reset_index())
        beyond = int(part.needed_k.isna().sum())
        measured = (
            slope if not beyond else f"{slope:.3g} ({beyond} settings beyond the grid left out)"
        )
        checks.append(
            Check(
                f"{name}: slope of log2(needed k) against log2 P, within each s",
                predicted,
                measured,
                bool(np.isfinite(slope) and low <= slope <= high),
            )
        )
    larger = [key for key in mlp.index if key[1] >= 4]
    if larger:
        more = [_larger(mlp.needed_k[key], cnn.needed_k[key]) for key in larger]
        checks.append(
            Check(
                "MLP needs a larger k than the CNN (every s, P ≥ 4)",
                f"all {len(larger)} settings",
                f"{sum(more)}/{len(larger)}",
                all(more),
            )
        )
    return checks


def _larger(a: float, b: float) -> bool:
    """``a > b`` where NaN means "beyond the grid" (larger than any k, not comparable to NaN)."""
    if np.isnan(b):
        return False
    return bool(np.isnan(a) or a > b)


def _probe_figure(means: pd.DataFrame) -> Figure:
    """Pattern-probe accuracy against k, one panel per (s, P), CNN and MLP side by side."""
    bits, patches = sorted(means.s.unique()), sorted(means.P.unique())
    fig = Figure(figsize=(3.6 * len(patches), 2.9 * len(bits)), layout="constrained")
    axes = fig.subplots(len(bits), len(patches), squeeze=False, sharex=True, sharey=True)
    colors = {"cnn1d": "C0", "mlp": "C3"}
    labels = {"cnn1d": "CNN", "mlp": "MLP"}
    for row, s in enumerate(bits):
        for col, p in enumerate(patches):
            ax = axes[row, col]
            for encoder in ENCODERS:
                line = means[(means.s == s) & (means.P == p) & (means.encoder == encoder)]
                line = line.sort_values("out_dim")
                ax.errorbar(
                    line.out_dim,
                    line.probe_fine_mean,
                    yerr=line.probe_fine_sd.fillna(0.0),
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=colors[encoder],
                    label=labels[encoder],
                )
                ax.axvline(
                    predicted_k(encoder, s, p), color=colors[encoder], ls="--", lw=1, alpha=0.7
                )
            ax.axhline(THRESHOLD, color="grey", ls=":", lw=1)
            ax.set_xscale("log", base=2)
            ax.set_ylim(0, 1.05)
            ax.grid(alpha=0.3)
            ax.set_title(f"s = {s}, P = {p}", fontsize=9)
            if row == len(bits) - 1:
                ax.set_xlabel("k (output dimension)")
            if col == 0:
                ax.set_ylabel("pattern-probe accuracy")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.suptitle("dashed: predicted k (CNN 2^s, MLP P·2^(s−1)); dotted: threshold", fontsize=9)
    return fig


def _needed_figure(needed: pd.DataFrame) -> Figure:
    """Needed k against predicted k, log-log, with the factor-2 band."""
    fig = Figure(figsize=(4.8, 4.4), layout="constrained")
    ax = fig.subplots()
    finite = needed[np.isfinite(needed.needed_k)]
    top = max(needed.predicted_k.max(), finite.needed_k.max() if len(finite) else 1) * 2.5
    grid = np.geomspace(0.5, top, 50)
    ax.plot(grid, grid, color="black", lw=1, label="needed = predicted")
    ax.fill_between(grid, grid / 2, grid * 2, color="grey", alpha=0.15, label="factor 2")
    markers = {2: "o", 4: "s", 8: "^", 16: "D"}
    for encoder, color, label in (("cnn1d", "C0", "CNN vs 2^s"), ("mlp", "C3", "MLP vs P·2^(s−1)")):
        part = finite[finite.encoder == encoder]
        for p, group in part.groupby("P"):
            ax.scatter(  # larger P drawn smaller, so coinciding points stay visible
                group.predicted_k,
                group.needed_k,
                s=160 / np.sqrt(p),
                color=color,
                alpha=0.8,
                edgecolors="black",
                linewidths=0.5,
                marker=markers.get(int(p), "x"),
                label=f"{label}, P = {p}",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(0.5, top)
    ax.set_ylim(0.5, top)
    ax.set_xlabel("predicted k")
    ax.set_ylabel(f"needed k (pattern probe ≥ {THRESHOLD})")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def _notes(size: GridSize, needed: pd.DataFrame, means: pd.DataFrame) -> str:
    cnn = needed[needed.encoder == "cnn1d"]
    mlp = needed[needed.encoder == "mlp"]
    lines = [
        f"patches: P ∈ {list(size.patches)} patches of length {PATCH_LEN}, s ∈ {list(size.bits)} "
        f"pattern bits, noise σ = {NOISE}. Encoders of width {size.width} with one hidden layer: "
        "`cnn1d` (one-patch kernel, mean pooling: exactly invariant to moving the pattern) and "
        f"`mlp`. Spectral loss, Adam (lr {size.lr:g}), batch {size.batch}, {size.steps} steps, "
        f"{size.seeds} seed(s); k ∈ {list(size.out_dims)}.",
        "",
        f"*Needed k* is the smallest k of the grid from which every larger k reaches a mean "
        f"(over seeds) pattern-probe accuracy ≥ {THRESHOLD} (a ridge linear probe on held-out "
        "anchors; the threshold was fixed before any run). It can only take values of the grid, "
        "so a ratio to the prediction is resolved to about one grid step.",
        "",
        "The position probe is a ridge linear probe of the pattern's position from the trained "
        "representation (fresh anchors): the CNN is at chance 1/P by construction, the MLP "
        f"reaches on average {mlp.position_probe_at_max_k.mean():.2f} at the largest k, i.e. it "
        "spends dimensions on positions.",
        "",
        "The spectral loss's population optimum is −min(k, m) with m the minimal implementable "
        "clusters (2^s for the CNN, P·2^s for the MLP), since every component of the "
        "augmentation graph has the same mass and no edges leave it. `optimal_loss` in "
        "results.csv gives it per cell beside `eval_loss`.",
    ]
    optimal = [
        -min(k, implementable_clusters(e, s, p))
        for e, s, p, k in zip(means.encoder, means.s, means.P, means.out_dim, strict=True)
    ]
    reached = (means.eval_loss_mean / np.array(optimal)).groupby(means.encoder).min()
    lines += [
        "",
        "Fraction of that optimum reached (worst cell mean): "
        + ", ".join(f"{e} {v:.2f}" for e, v in reached.items())
        + ". Where it is well below 1 the encoder did not converge to the optimum within the "
        "training budget, which tends to overstate the needed k.",
    ]
    lines += [
        "",
        "k = 2^s is what the theory shows *suffices* for the CNN: its optimal representation spans "
        "the 2^s pattern indicators. The probe has an intercept, so the constant indicator needs "
        "no dimension (2^s − 1 suffice), and an argmax probe can separate more classes than it "
        "has dimensions when the classes sit in general position; a needed k below 2^s is "
        "therefore consistent with the theory. Measured CNN ratios needed/2^s: "
        f"{cnn.ratio.min():.2g} to {cnn.ratio.max():.2g}; MLP ratios needed/(P·2^(s−1)): "
        f"{mlp.ratio.min():.2g} to {mlp.ratio.max():.2g}.",
    ]
    at_p = means[(means.encoder == "mlp") & (means.out_dim == means.P)]
    if len(at_p):
        lines += [
            "",
            "Where k = P, the MLP's representation holds the position (position probe "
            f"{at_p.position_probe_mean.mean():.2f} on average, chance "
            f"{(1 / at_p.P).mean():.2f}) rather than the pattern (pattern probe "
            f"{at_p.probe_fine_mean.mean():.2f} on average): it spends its first dimensions on "
            "where the pattern is.",
        ]
    if cnn.needed_k.isna().any() or mlp.needed_k.isna().any():
        lines += [
            "",
            "Some settings never reach the threshold within the grid of k (reported as NaN).",
        ]
    return "\n".join(lines)


EXPERIMENT = Experiment(
    name="cnn-translation",
    title="HaoChen & Ma (2023), Thm 5.12: a CNN needs k ≈ 2^s, an MLP k ≈ P·2^(s−1)",
    claim=(
        "With an s-bit pattern at a random one of P patch positions and augmentations that keep "
        "pattern and position, the augmentation graph has P·2^s components. A translation-"
        "invariant CNN cannot tell positions apart, so its minimal implementable clusters are the "
        "2^s patterns and a representation of dimension k ≈ 2^s suffices for a linear probe to "
        "read the pattern, whatever P. A fully connected network can implement every "
        "(pattern, position) cluster and needs k ≈ P·2^(s−1) or more. Measured: the smallest k "
        f"at which the pattern probe reaches {THRESHOLD}, against both predictions (within a "
        "factor 2), and how it scales with P."
    ),
    run=lambda quick, progress: cnn_translation(SIZES["quick" if quick else "full"], progress),
)
