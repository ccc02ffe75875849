"""``rld-gcn``: contrastive clusters locally dense, supervised ones globally (Zhang et al. 2023).

Run::

    clj reproduce rld-gcn --quick --out runs/rld-gcn
    python experiments/rld_gcn.py --quick --out runs/rld-gcn

Part (a), toys: six 2-D sets of 5 classes × 300 points (overlapping squares, concentric rings,
lines through the origin, many tiny clumps, short segments, Gaussian blobs; see
:mod:`clj.reproduce.rld_gcn_toys`) scored by relative local density (RLD, temperature 0.05) and
the Calinski–Harabasz index (CH).

Part (b), representations: one depth-2 ReLU MLP trained by InfoNCE (SimCLR's NT-Xent) and,
separately, by cross-entropy of a linear head on the fine labels (:mod:`clj.models.supervised`),
on the same augmented views, for scikit-learn's 8×8 digits and for ``hierarchical_mixture``;
each dataset's grid (objectives × seeds) is one sweep, one vmapped program per objective. The
trained encoders' (L2-normalised) features are compared by RLD at several temperatures, CH,
neighbour agreement at several neighbourhood sizes, and by the accuracy of a ridge linear probe
against that of the GCN probe of :mod:`clj.probes.gcn` over the RLD graph.

What it should show: RLD ranks the locally dense toys (rings, lines, clumps, segments) high
while CH ranks them low; contrastive features have higher RLD and lower CH than supervised ones;
the GCN gains more over the linear probe on contrastive features than on supervised ones.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clj import metrics
from clj.cell import Cell, stack_cells
from clj.config import SweepConfig
from clj.data.images import load_dataset
from clj.plan import Program
from clj.probes import GCNConfig, gcn_probe_accuracy, parameter_counts
from clj.random import seed_key
from clj.reproduce import Check, Experiment, Report
from clj.reproduce.grid import encode_cells, run_grid, seed_summary
from clj.reproduce.rld_gcn_toys import LOCALLY_DENSE, TOY_SETS, toy_scores, toy_sets, toys_figure
from clj.train import cell_keys

__all__ = [
    "EXPERIMENT",
    "SIZES",
    "RldGcnSize",
    "dataset_config",
    "feature_metrics",
    "rld_gcn",
]

TOY_TEMPERATURE = 0.05
"""RLD temperature of the toy comparison (and the headline temperature of part (b))."""

RLD_TEMPERATURES = (0.02, 0.05, 0.1, 0.2, 0.5)
"""Temperatures at which part (b) measures RLD."""

NEIGHBOURS = (1, 5, 10, 25)
"""Neighbourhood sizes of the neighbour-agreement measurements."""

OBJECTIVES = ("info_nce", "supervised")
"""The contrastive and the supervised objective, in this order."""

INFO_NCE_TEMPERATURE = 0.2
"""InfoNCE temperature (SimCLR's usual range; fixed in advance, not tuned here)."""

DATASETS = ("digits", "hierarchical_mixture")

MIXTURE_GROUPS, MIXTURE_CLUSTERS, MIXTURE_DIM = 4, 16, 32
MIXTURE_OPTIONS = {"groups": MIXTURE_GROUPS, "spread": 2.0, "noise": 0.5}
"""``hierarchical_mixture`` options: fine clusters that overlap a little (a linear classifier of
the inputs scores about 0.9, not 1, so no measure sits at its ceiling), and views that move a
point by about a quarter of its cluster's spread, so augmentation links only near neighbours."""


@dataclasses.dataclass(frozen=True)
class RldGcnSize:
    """The sizes of one run of the experiment.

    Attributes:
      seeds: seeds per objective and dataset.
      steps: training steps of every encoder.
      batch: pairs (or labelled view pairs) per step.
      width: hidden width of the MLP encoders.
      out_dim: representation dimension.
      mixture_points: anchors of ``hierarchical_mixture`` in each of the probe's train and test
        sets (digits always use its whole train and test splits, 1,347 and 450 images).
      digits_train: use only the first this many training images of digits (``None``: all).
      gcn: the GCN probe's hyper-parameters.
      toy_per_class: points per class of the toy sets.
      eval_size: held-out anchors of the sweep's own evaluation (``results.csv``'s probe columns).
      datasets: the part-(b) datasets, a subset of :data:`DATASETS`.
    """

    seeds: int
    steps: int
    batch: int = 256
    width: int = 128
    out_dim: int = 32
    mixture_points: int = 640
    digits_train: int | None = None
    gcn: GCNConfig = dataclasses.field(default_factory=GCNConfig)
    toy_per_class: int = 300
    eval_size: int = 512
    datasets: tuple[str, ...] = DATASETS

    def __post_init__(self) -> None:
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown or not self.datasets:
            raise ValueError(
                f"datasets={self.datasets!r} must be a non-empty subset of {', '.join(DATASETS)}"
            )


SIZES: dict[str, RldGcnSize] = {
    "smoke": RldGcnSize(
        seeds=1,
        steps=20,
        batch=64,
        width=16,
        out_dim=8,
        mixture_points=96,
        digits_train=160,
        gcn=GCNConfig(hidden=8, steps=10),
        toy_per_class=40,
        eval_size=64,
        datasets=("hierarchical_mixture",),
    ),
    "quick": RldGcnSize(seeds=2, steps=600),
    "full": RldGcnSize(seeds=4, steps=2000),
}


def dataset_config(dataset: str, size: RldGcnSize) -> SweepConfig:
    """The grid of one dataset: both objectives × seeds, one program per objective."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    common = dict(
        encoder="mlp",
        depth=2,
        loss=OBJECTIVES,
        optimizer="adam",
        lr=1e-3,
        batch=size.batch,
        steps=size.steps,
        eval_size=size.eval_size,
        seeds=size.seeds,
        widths=(size.width,),
        out_dims=(size.out_dim,),
        temperature=(INFO_NCE_TEMPERATURE,),
        log_every=10,
    )
    if dataset == "digits":
        return SweepConfig(data="digits", dim=64, clusters=(10,), **common)
    return SweepConfig(
        data="hierarchical_mixture",
        dim=MIXTURE_DIM,
        clusters=(MIXTURE_CLUSTERS,),
        data_options=MIXTURE_OPTIONS,
        **common,
    )


# -- measuring features ---------------------------------------------------------------------------


def feature_metrics(
    key: jax.Array,
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    num_classes: int,
    gcn: GCNConfig,
) -> dict[str, jax.Array]:
    """Every part-(b) measurement of one cell's features (pure; vmap it over cells).

    Rows are L2-normalised first. RLD, CH and neighbour agreement describe the test features;
    the linear probe is fitted on the training features; the GCN sees train and test nodes.

    Args:
      key: PRNG key of the GCN.
      z_train: ``[n_train, k]`` features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, k]`` features.
      y_test: ``[n_test]`` int labels.
      num_classes: static number of classes.
      gcn: static GCN hyper-parameters.

    Returns:
      ``{"rld_T": …, "ch": …, "agree_k": …, "linear_probe": …, "gcn": …, "gcn_gain": …}``
      scalars, ``T`` in :data:`RLD_TEMPERATURES` and ``k`` in :data:`NEIGHBOURS`.
    """
    z_train, z_test = _unit_rows(z_train), _unit_rows(z_test)
    out = {f"rld_{t:g}": metrics.rld(z_test, y_test, t) for t in RLD_TEMPERATURES}
    out["ch"] = metrics.calinski_harabasz(z_test, y_test, num_classes)
    for k in NEIGHBOURS:
        out[f"agree_{k}"] = metrics.neighbour_agreement(z_test, y_test, k)
    out["linear_probe"] = metrics.linear_probe_accuracy(
        z_train, y_train, z_test, y_test, num_classes
    )
    out["gcn"] = gcn_probe_accuracy(key, z_train, y_train, z_test, y_test, num_classes, gcn)
    out["gcn_gain"] = out["gcn"] - out["linear_probe"]
    return out


def _unit_rows(z: jax.Array) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True))
    return z / jnp.maximum(norm, 1e-12)


def _probe_sets(
    dataset: str, program: Program, states: Any, size: RldGcnSize
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each cell's probe inputs and labels: ``x_train [C, n_train, dim]``, ``y_train [C, n_train]``
    and the same for test (digits: its fixed splits; the mixture: anchors of the cell's world)."""
    cells = stack_cells(list(program.cells))
    count = len(program.cells)
    if dataset == "digits":
        arrays = load_dataset("digits")
        stop = size.digits_train
        parts = []
        for x, y in (
            (arrays.train_x[:stop], arrays.train_y[:stop]),
            (arrays.test_x, arrays.test_y),
        ):
            flat = x.reshape(len(y), -1).astype(np.float32) / arrays.max_value
            parts += [
                np.broadcast_to(flat, (count, *flat.shape)),
                np.broadcast_to(y, (count, len(y))),
            ]
        return tuple(np.asarray(p) for p in parts)
    family = program.spec.family
    n = size.mixture_points

    def draw(cell: Cell, world: Any) -> tuple[jax.Array, ...]:
        k_train, k_test = jax.random.split(jax.random.fold_in(cell_keys(cell.seed)["eval"], 7))
        train = family.anchors(k_train, world, cell, n)
        test = family.heldout_anchors(k_test, world, cell, n)
        return train.x, train.fine, test.x, test.fine

    return tuple(np.asarray(a) for a in jax.jit(jax.vmap(draw))(cells, states.world))


def _measure(
    dataset: str, result: Any, size: RldGcnSize
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One row per cell of a dataset's sweep (its coordinates, the sweep's metrics and ours), and
    each objective's first cell's normalised test features with their labels (for the figure)."""
    rows = []
    examples = {}
    for program, states in result.states:
        x_train, y_train, x_test, y_test = _probe_sets(dataset, program, states, size)
        z = encode_cells(program, states, np.concatenate([x_train, x_test], axis=1))
        z_train, z_test = z[:, : x_train.shape[1]], z[:, x_train.shape[1] :]
        num_classes = program.spec.family.num_fine_classes
        seeds = jnp.asarray([c["seed"] for c in program.cells], jnp.int32)
        keys = jax.vmap(lambda s: jax.random.fold_in(cell_keys(s)["eval"], 11))(seeds)
        values = _measure_cells(num_classes, size.gcn)(keys, z_train, y_train, z_test, y_test)
        values = {m: np.asarray(v) for m, v in values.items()}
        for j, i in enumerate(program.index):
            rows.append({"cell": i, **{m: float(v[j]) for m, v in values.items()}})
        examples[_objective(program.spec.loss)] = (
            np.asarray(_unit_rows(z_test[0])),
            np.asarray(y_test[0]),
        )
    table = result.table.merge(pd.DataFrame(rows), on="cell", validate="one_to_one")
    table.insert(0, "dataset", dataset)
    table.insert(1, "objective", [_objective(loss) for loss in table["loss"]])
    return table.sort_values(["objective", "seed"]).reset_index(drop=True), examples


@functools.cache
def _measure_cells(num_classes: int, gcn: GCNConfig) -> Any:
    """:func:`feature_metrics` vmapped over cells and jitted, one compiled function per static
    setting (so both objectives' programs of a dataset share one compilation)."""
    return jax.jit(jax.vmap(functools.partial(feature_metrics, num_classes=num_classes, gcn=gcn)))


def _objective(loss: str) -> str:
    return "supervised" if loss == "supervised" else "contrastive"


# -- the experiment -------------------------------------------------------------------------------

MEASURED = (
    *(f"rld_{t:g}" for t in RLD_TEMPERATURES),
    "ch",
    *(f"agree_{k}" for k in NEIGHBOURS),
    "linear_probe",
    "gcn",
    "gcn_gain",
)
"""The part-(b) columns of ``results.csv`` that :func:`feature_metrics` adds."""

HEADLINE_RLD = f"rld_{TOY_TEMPERATURE:g}"


def rld_gcn(size: RldGcnSize, progress: bool = True) -> Report:
    """Scores the toys, trains both objectives' grids on both datasets, and checks the claims."""
    toys, toy_fig = _toys(size)
    parts, examples = [], {}
    for dataset in size.datasets:
        table, shown = _measure(dataset, run_grid(dataset_config(dataset, size), progress), size)
        parts.append(table)
        examples |= {(dataset, objective): v for objective, v in shown.items()}
    table = pd.concat(parts, ignore_index=True)
    means = seed_summary(table, ["dataset", "objective"], [*MEASURED, "probe_fine", "knn_fine"])
    checks = _toy_checks(toys) + _feature_checks(means)
    return Report(
        table=table,
        checks=checks,
        figures={
            "toys": toy_fig,
            "measures": _measures_figure(means),
            "features": _features_figure(examples),
        },
        tables={
            "Toy sets": toys,
            "Means over seeds": _means_table(means),
            "Probe sizes": _probe_sizes(size),
        },
        notes=_findings(toys, means, checks) + "\n\n" + _notes(size),
    )


def _toys(size: RldGcnSize) -> tuple[pd.DataFrame, Figure]:
    x, y = toy_sets(seed_key(0), classes=5, per_class=size.toy_per_class)
    scores = toy_scores(x, y, TOY_TEMPERATURE, num_classes=5)
    frame = pd.DataFrame({"set": TOY_SETS, "rld": scores["rld"], "ch": scores["ch"]})
    frame["locally_dense"] = frame["set"].isin(LOCALLY_DENSE)
    frame["rld_rank"] = frame["rld"].rank(ascending=False).astype(int)
    frame["ch_rank"] = frame["ch"].rank(ascending=False).astype(int)
    figure = toys_figure(np.asarray(x), np.asarray(y), scores["rld"], scores["ch"], TOY_TEMPERATURE)
    return frame, figure


def _toy_checks(toys: pd.DataFrame) -> list[Check]:
    dense = toys[toys.locally_dense]
    score = toys.set_index("set")
    rank_gap = float(dense.ch_rank.mean() - dense.rld_rank.mean())
    max_ch = float(dense.ch.max())
    min_rld = float(dense.rld.min())
    return [
        Check(
            "toys: mean CH rank − mean RLD rank of the locally dense sets (1 = highest of 6)",
            "> 0 (RLD ranks them higher than CH does)",
            rank_gap,
            rank_gap > 0,
        ),
        Check(
            "toys: highest CH of a locally dense set / CH of Gaussian blobs",
            "< 1 (CH ranks them below blobs)",
            max_ch / float(score.loc["blobs", "ch"]),
            max_ch < float(score.loc["blobs", "ch"]),
        ),
        Check(
            f"toys: lowest RLD({TOY_TEMPERATURE:g}) of a locally dense set − RLD of the "
            "overlapping squares",
            "> 0 (RLD ranks them above overlapping classes)",
            min_rld - float(score.loc["squares", "rld"]),
            min_rld > float(score.loc["squares", "rld"]),
        ),
    ]


def _difference(part: pd.DataFrame, metric: str, first: str, second: str) -> tuple[float, float]:
    """``mean(first) − mean(second)`` of ``metric`` over seeds, and twice its standard error
    (NaN with a single seed)."""
    mean = part[f"{metric}_mean"]
    sd = part[f"{metric}_sd"]
    seeds = part["seeds"]
    se = np.sqrt(sd[first] ** 2 / seeds[first] + sd[second] ** 2 / seeds[second])
    return float(mean[first] - mean[second]), float(2 * se)


def _resolved(difference: float, two_se: float) -> tuple[str, bool]:
    """The prediction "difference > 0, by more than two standard errors" and whether it holds
    (with one seed there is no standard error and only the sign is checked)."""
    if np.isnan(two_se):
        return "> 0 (one seed: sign only)", difference > 0
    return f"> 2 s.e. over seeds = {two_se:.3g}", difference > two_se


def _feature_checks(means: pd.DataFrame) -> list[Check]:
    checks = []
    for dataset in DATASETS:
        part = means[means.dataset == dataset].set_index("objective")
        if set(part.index) != {"contrastive", "supervised"}:
            continue
        comparisons = (
            (
                f"{dataset}: RLD({TOY_TEMPERATURE:g}) contrastive − supervised",
                "contrastive clusters locally denser",
                _difference(part, HEADLINE_RLD, "contrastive", "supervised"),
            ),
            (
                f"{dataset}: CH supervised − contrastive",
                "supervised clusters globally denser",
                _difference(part, "ch", "supervised", "contrastive"),
            ),
            (
                f"{dataset}: (GCN − linear probe) contrastive − the same for supervised",
                "the graph helps contrastive features more",
                _difference(part, "gcn_gain", "contrastive", "supervised"),
            ),
        )
        for name, meaning, (difference, two_se) in comparisons:
            predicted, passed = _resolved(difference, two_se)
            checks.append(Check(name, f"{predicted} ({meaning})", difference, passed))
    return checks


def _means_table(means: pd.DataFrame) -> pd.DataFrame:
    out = means[["dataset", "objective", "seeds"]].copy()
    for metric in (*MEASURED, "knn_fine"):
        mean, sd = means[f"{metric}_mean"], means[f"{metric}_sd"]
        out[metric] = [
            f"{m:.3g} ± {s:.2g}" if np.isfinite(s) else f"{m:.3g}"
            for m, s in zip(mean, sd, strict=True)
        ]
    return out


def _probe_sizes(size: RldGcnSize) -> pd.DataFrame:
    rows = []
    classes_of = {"digits": 10, "hierarchical_mixture": MIXTURE_CLUSTERS}
    for dataset in size.datasets:
        classes = classes_of[dataset]
        counts = parameter_counts(size.out_dim, classes, size.gcn.hidden)
        rows.append({"dataset": dataset, "feature_dim": size.out_dim, "classes": classes, **counts})
    return pd.DataFrame(rows).rename(
        columns={"linear_probe": "linear_probe_params", "gcn": "gcn_params"}
    )


def _measures_figure(means: pd.DataFrame) -> Figure:
    """Per dataset (rows): RLD against temperature, neighbour agreement against k, and the
    accuracies of both probes, contrastive against supervised."""
    datasets = [d for d in DATASETS if d in set(means.dataset)]
    fig = Figure(figsize=(14, 4 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 4, squeeze=False)
    colours = {"contrastive": "tab:blue", "supervised": "tab:orange"}
    for row, dataset in enumerate(datasets):
        part = means[means.dataset == dataset]
        for _, r in part.iterrows():
            c = colours[r.objective]
            rld_mean = [r[f"rld_{t:g}_mean"] for t in RLD_TEMPERATURES]
            rld_sd = [np.nan_to_num(r[f"rld_{t:g}_sd"]) for t in RLD_TEMPERATURES]
            axes[row, 0].errorbar(
                RLD_TEMPERATURES,
                rld_mean,
                rld_sd,
                marker="o",
                color=c,
                capsize=2,
                label=r.objective,
            )
            agree = [r[f"agree_{k}_mean"] for k in NEIGHBOURS]
            axes[row, 1].plot(NEIGHBOURS, agree, marker="o", color=c, label=r.objective)
            probes = [r.linear_probe_mean, r.gcn_mean]
            spread = [np.nan_to_num(r.linear_probe_sd), np.nan_to_num(r.gcn_sd)]
            axes[row, 3].errorbar(
                [0, 1], probes, spread, marker="o", color=c, capsize=3, label=r.objective
            )
        objectives = list(part.objective)
        axes[row, 2].bar(
            objectives,
            part.ch_mean,
            yerr=part.ch_sd.fillna(0.0),
            color=[colours[o] for o in objectives],
            capsize=3,
        )
        for col, values in ((0, RLD_TEMPERATURES), (1, NEIGHBOURS)):
            axes[row, col].set_xscale("log")
            axes[row, col].set_xticks(values, [f"{v:g}" for v in values])
            axes[row, col].minorticks_off()
        axes[row, 3].set_xticks([0, 1], ["linear probe", "GCN"])
        axes[row, 3].set_xlim(-0.3, 1.3)
        axes[row, 0].set_xlabel("RLD temperature")
        axes[row, 0].set_ylabel(f"{dataset}\nRLD")
        axes[row, 1].set_xlabel("neighbours k")
        axes[row, 1].set_ylabel("neighbour agreement")
        axes[row, 2].set_ylabel("Calinski–Harabasz")
        axes[row, 3].set_ylabel("test accuracy")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
        axes[row, 0].legend()
        axes[row, 3].legend()
    return fig


def _features_figure(examples: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]) -> Figure:
    """The first two principal components of each model's normalised test features (seed 0)."""
    datasets = [d for d in DATASETS if any(key[0] == d for key in examples)]
    fig = Figure(figsize=(9, 4.2 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, objective in enumerate(("contrastive", "supervised")):
            ax = axes[row, col]
            if (dataset, objective) not in examples:
                ax.set_axis_off()
                continue
            z, y = examples[dataset, objective]
            centred = z - z.mean(axis=0)
            _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
            xy = centred @ vt[:2].T
            ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap="tab20", s=4)
            ax.set_title(f"{dataset}, {objective}\n(test features, first two principal axes)")
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _findings(toys: pd.DataFrame, means: pd.DataFrame, checks: list[Check]) -> str:
    """What was measured, in words, from the numbers (written whichever way they fall)."""
    by_rld = " > ".join(toys.sort_values("rld", ascending=False).set)
    by_ch = " > ".join(toys.sort_values("ch", ascending=False).set)
    lines = [f"Toys: RLD orders the sets {by_rld}; CH orders them {by_ch}."]
    for dataset in DATASETS:
        part = means[means.dataset == dataset].set_index("objective")
        if set(part.index) != {"contrastive", "supervised"}:
            continue
        con, sup = part.loc["contrastive"], part.loc["supervised"]
        higher = [t for t in RLD_TEMPERATURES if con[f"rld_{t:g}_mean"] > sup[f"rld_{t:g}_mean"]]
        first, last = NEIGHBOURS[0], NEIGHBOURS[-1]
        listed = ", ".join(f"{t:g}" for t in higher) or "none"
        lines.append(
            f"{dataset}: contrastive RLD is above supervised at {len(higher)} of "
            f"{len(RLD_TEMPERATURES)} temperatures ({listed}); "
            f"CH {con.ch_mean:.3g} (contrastive) vs {sup.ch_mean:.3g} (supervised); neighbour "
            f"agreement falls from {con[f'agree_{first}_mean']:.3f} (k = {first}) to "
            f"{con[f'agree_{last}_mean']:.3f} (k = {last}) for contrastive and from "
            f"{sup[f'agree_{first}_mean']:.3f} to {sup[f'agree_{last}_mean']:.3f} for supervised; "
            f"linear probe → GCN {con.linear_probe_mean:.3f} → {con.gcn_mean:.3f} (contrastive), "
            f"{sup.linear_probe_mean:.3f} → {sup.gcn_mean:.3f} (supervised)."
        )
    failed = [c.name for c in checks if not c.passed]
    if failed:
        lines.append(
            "Where the measurements disagree with the claim: "
            + "; ".join(failed)
            + ". They are reported as measured."
        )
    else:
        lines.append("Every check agrees with the claim.")
    return "\n\n".join(lines)


def _notes(size: RldGcnSize) -> str:
    gcn = size.gcn
    return (
        f"Toys: {size.toy_per_class} points per class, 5 classes, RLD temperature "
        f"{TOY_TEMPERATURE:g}.\n\n"
        f"Encoders: depth-2 ReLU MLP, width {size.width}, representation dimension "
        f"{size.out_dim}, Adam (lr 1e-3), batch {size.batch}, {size.steps} steps, {size.seeds} "
        f"seed(s) per objective; InfoNCE temperature {INFO_NCE_TEMPERATURE:g}. Supervised: the "
        "same encoder plus a linear head, cross-entropy on the fine labels of the same augmented "
        "views. Digits: scikit-learn 8×8 digits, 10 classes, views shifted by ≤ 1 pixel, rotated "
        "by ≤ 10° and noised (σ 0.05); probes train on "
        f"{'all 1,347' if size.digits_train is None else f'the first {size.digits_train}'} "
        "training images and test on the 450 test images. hierarchical_mixture: d = "
        f"{MIXTURE_DIM}, {MIXTURE_CLUSTERS} fine clusters (the labels) in {MIXTURE_GROUPS} "
        f"groups, anchor spread {MIXTURE_OPTIONS['spread']:g} and view noise "
        f"{MIXTURE_OPTIONS['noise']:g} (the family's defaults, 0.15 and 0.15, separate the fine "
        "clusters so well that every measure saturates: both probes score 1); "
        f"{size.mixture_points} fresh anchors each for probe training and testing.\n\n"
        "All part-(b) measures use L2-normalised features, for both objectives: InfoNCE sees "
        "only directions, so the norm of its raw output is arbitrary. RLD, CH and neighbour "
        "agreement are computed on the test features with the true labels; RLD is "
        "`clj.metrics.rld` (DESIGN.md). The linear probe is the closed-form ridge probe "
        "(ridge 1e-4 per sample). The GCN (`clj.probes.gcn`) is transductive over train and "
        f"test features, graph = the RLD weights W at temperature {gcn.temperature:g}, "
        "propagation ½(I + D^−½ W D^−½), label embeddings of width "
        f"{gcn.hidden}, two graph convolutions, Adam (lr {gcn.lr:g}) for {gcn.steps} steps, "
        f"hiding {gcn.hide:.0%} of the training labels at each step; its hyper-parameters were "
        "fixed in advance and nothing is selected on the test set. Means ± standard deviations "
        "are over seeds. `probe_fine`/`knn_fine` in results.csv are the sweep's own evaluation "
        "on raw features of sampled anchors."
    )


EXPERIMENT = Experiment(
    name="rld-gcn",
    title="Zhang et al. (2023): contrastive clusters are locally dense, supervised ones globally",
    claim=(
        "Relative local density (RLD, the modularity of a locally normalised similarity graph) "
        "ranks locally dense but globally spread classes (rings, lines, clumps, segments) high "
        "where the Calinski–Harabasz index (CH) ranks them low. Contrastive learning (InfoNCE) "
        "organises a representation into locally dense clusters: higher RLD and lower CH than "
        "the same encoder trained with supervision, whose clusters are globally dense (higher "
        "CH). A GCN that propagates labels over the RLD graph exploits local density, so it "
        "gains more over a linear probe on contrastive features than on supervised ones."
    ),
    run=lambda quick, progress: rld_gcn(SIZES["quick" if quick else "full"], progress),
)
