"""Sequential baselines that ``clj bench`` times against ``clj sweep``.

Two loops a user would otherwise write over the cells of a grid, one cell after another:

* :func:`torch_loop`: plain PyTorch on the CPU. Each cell builds an ``nn.Sequential`` MLP of the
  cell's exact width (``dim → w → … → w → k``, ReLU, He-normal hidden and LeCun-normal output
  weights, zero biases, as :class:`clj.encoders.MaskedMLP`), ``torch.optim.Adam``, and every step
  samples a fresh batch from the same distribution as :class:`clj.data.GaussianMixture` (its class
  defaults), encodes both views in one forward pass and minimises :func:`clj.losses.spectral`.
* :func:`jax_loop`: one ``jax.jit(make_train(spec).train)`` per cell with an unpadded
  :class:`clj.Spec` (the cell's exact width, output dimension and cluster count), so every cell
  compiles its own program.

Both can time every cell or a stratified sample (:func:`sample_cells`): the cells are grouped by
width, which sets their cost (cluster count and seed do not change the work), and the grid's total
is extrapolated as ``Σ_width count(width) · mean time of the sampled cells of that width``.

Run one loop in a fresh process (as ``clj bench`` does) with
``python -m clj._baselines {torch,jax} --config-json '{...}' --json OUT``.
Torch is imported only inside :func:`torch_loop`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from clj.config import SweepConfig

__all__ = ["extrapolate", "jax_loop", "sample_cells", "torch_loop"]


def sample_cells(cells: Sequence[dict[str, Any]], n: int | None) -> list[int]:
    """Indices of a width-stratified sample of about ``n`` cells (all cells if ``n`` is None).

    Every width gets ``ceil(n / widths)`` cells (or all of its cells if it has fewer), spread
    evenly over that width's cells in grid order, so cluster counts and seeds vary too.
    """
    if n is None or n >= len(cells):
        return list(range(len(cells)))
    if n < 1:
        raise ValueError(f"--sample-cells {n} must be at least 1")
    by_width: dict[int, list[int]] = {}
    for i, cell in enumerate(cells):
        by_width.setdefault(cell["width"], []).append(i)
    per_width = math.ceil(n / len(by_width))
    chosen = []
    for members in by_width.values():
        take = min(per_width, len(members))
        spots = np.linspace(0, len(members) - 1, take).round().astype(int)
        chosen.extend(members[s] for s in spots)
    return sorted(chosen)


def extrapolate(
    cells: Sequence[dict[str, Any]], measured: Sequence[dict[str, Any]], field: str
) -> float:
    """Grid total of ``field`` from per-cell measurements of some of the cells.

    Exact (a plain sum) when every cell was measured; otherwise
    ``Σ_width count(width) · mean(field over measured cells of that width)``.
    """
    if len(measured) == len(cells):
        return float(sum(m[field] for m in measured))
    times: dict[int, list[float]] = {}
    for m in measured:
        times.setdefault(m["width"], []).append(m[field])
    counts: dict[int, int] = {}
    for cell in cells:
        counts[cell["width"]] = counts.get(cell["width"], 0) + 1
    missing = set(counts) - set(times)
    if missing:
        raise ValueError(f"no measured cell of width {sorted(missing)} to extrapolate from")
    return float(sum(counts[w] * np.mean(times[w]) for w in counts))


def _summary(
    name: str, config: SweepConfig, measured: list[dict[str, Any]], fields: Sequence[str]
) -> dict[str, Any]:
    cells = config.cells()
    sampled = len(measured) < len(cells)
    return {
        "name": name,
        "cells": len(cells),
        "measured_cells": len(measured),
        "sampled": sampled,
        "extrapolation": (
            "sum over widths of (cells of that width x mean seconds of its measured cells)"
            if sampled
            else "none: every cell was run"
        ),
        **{f"{f}_measured": float(sum(m[f] for m in measured)) for f in fields},
        **{f: extrapolate(cells, measured, f) for f in fields},
        "per_cell": measured,
    }


def _check_reference_like(config: SweepConfig) -> dict[str, Any]:
    """The static settings of a single-program grid that the baselines can reproduce."""
    static = {}
    for axis in ("data", "dim", "encoder", "depth", "loss", "optimizer", "batch", "steps"):
        values = getattr(config, axis)
        if len(values) != 1:
            raise ValueError(f"the baselines need one value of {axis}, got {values}")
        static[axis] = values[0]
    static["eval_size"] = config.eval_size[0]
    if static["data"] != "gaussian_mixture" or static["encoder"] != "mlp":
        raise ValueError("the baselines reproduce gaussian_mixture with the mlp encoder only")
    if static["loss"] != "spectral" or static["optimizer"] != "adam":
        raise ValueError("the baselines reproduce the spectral loss with adam only")
    if config.pool_size is not None:
        raise ValueError("the baselines sample fresh anchors every step (no pool_size)")
    if any(wd != 0 for wd in config.weight_decay):
        raise ValueError("the baselines run adam without weight decay")
    return static


# -- PyTorch ------------------------------------------------------------------------------------


def torch_loop(
    config: SweepConfig,
    index: Sequence[int] | None = None,
    *,
    evaluate: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Trains the grid's cells one after another with plain PyTorch on the CPU.

    Per cell: ``torch.manual_seed(seed)``; centres ``radius · g / √dim`` (``g`` standard normal);
    an ``nn.Sequential`` MLP of the cell's exact width; ``torch.optim.Adam(lr)``; ``steps`` steps,
    each drawing ``batch`` fresh anchors (centre of a uniformly drawn cluster plus noise of norm
    about ``spread``) and two views (anchor plus noise of norm about ``noise``), one forward pass
    of both views, the spectral loss, backward, Adam step. With ``evaluate``, it then computes
    features of ``eval_size`` held-out anchors for probe training, ``eval_size`` more for testing
    and ``eval_size`` positive pairs, the held-out loss and a closed-form ridge probe's accuracy
    (a subset of what ``clj sweep`` evaluates per cell; its k-NN, k-means, NMI/ARI, alignment and
    uniformity are not computed here).

    Args:
      config: a single-program grid on ``gaussian_mixture`` (like the ``reference`` preset).
      index: grid positions of the cells to run (default: all).
      evaluate: also run the held-out evaluation after training each cell.
      threads: ``torch.set_num_threads`` (default: ``os.cpu_count()``).

    Returns:
      A summary dict: totals (``train_s``, ``eval_s``, ``total_s``, extrapolated if sampled),
      their ``*_measured`` sums, and ``per_cell`` rows with each cell's times and final loss.
    """
    import torch
    from torch import nn

    from clj.data import GaussianMixture

    static = _check_reference_like(config)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    dim, depth, batch, steps, n_eval = (
        static["dim"],
        static["depth"],
        static["batch"],
        static["steps"],
        static["eval_size"],
    )
    defaults = GaussianMixture(dim=dim, max_clusters=1)
    spread = defaults.spread / math.sqrt(dim)
    noise = defaults.noise / math.sqrt(dim)

    def make_mlp(width: int, out_dim: int) -> nn.Sequential:
        sizes = [dim, *([width] * depth), out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            linear = nn.Linear(a, b)
            hidden = i < depth
            nn.init.normal_(linear.weight, std=math.sqrt((2.0 if hidden else 1.0) / a))
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if hidden:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def anchors(centres: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        label = torch.randint(centres.shape[0], (n,))
        return centres[label] + spread * torch.randn(n, dim), label

    def views(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + noise * torch.randn_like(x), x + noise * torch.randn_like(x)

    def spectral(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        b = z1.shape[0]
        positive = (z1 * z2).sum() / b
        gram = z1 @ z2.T
        off_diagonal = gram.square().sum() - gram.diagonal().square().sum()
        return -2.0 * positive + off_diagonal / (b * (b - 1))

    def ridge_probe(
        z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor
    ) -> float:
        targets = nn.functional.one_hot(y_train, int(y_train.max()) + 1).float()
        z_mean, y_mean = z_train.mean(0), targets.mean(0)
        zc = z_train - z_mean
        gram = zc.T @ zc + 1e-4 * len(zc) * torch.eye(zc.shape[1])
        weights = torch.linalg.solve(gram, zc.T @ (targets - y_mean))
        pred = ((z_test - z_mean) @ weights + y_mean).argmax(1)
        return float((pred == y_test).float().mean())

    cells = config.cells()
    index = list(range(len(cells))) if index is None else list(index)
    measured = []
    for i in index:
        cell = cells[i]
        t0 = time.perf_counter()
        torch.manual_seed(cell["seed"])
        centres = torch.randn(cell["clusters"], dim) * (defaults.radius / math.sqrt(dim))
        model = make_mlp(cell["width"], cell["out_dim"])
        optimizer = torch.optim.Adam(model.parameters(), lr=cell["lr"])
        losses = []
        for _ in range(steps):
            x, _ = anchors(centres, batch)
            x1, x2 = views(x)
            z = model(torch.cat([x1, x2]))
            loss = spectral(z[:batch], z[batch:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        final_loss = float(torch.stack(losses[-config.log_every :]).mean())
        t1 = time.perf_counter()
        row = {"cell": i, **_coords(cell), "train_s": t1 - t0, "final_loss": final_loss}
        if evaluate:
            with torch.no_grad():
                x_train, y_train = anchors(centres, n_eval)
                x_test, y_test = anchors(centres, n_eval)
                p1, p2 = views(anchors(centres, n_eval)[0])
                z_train, z_test = model(x_train), model(x_test)
                eval_loss = float(spectral(model(p1), model(p2)))
                probe = ridge_probe(z_train, y_train, z_test, y_test)
            row |= {"eval_s": time.perf_counter() - t1, "eval_loss": eval_loss, "probe": probe}
        else:
            row["eval_s"] = 0.0
        row["total_s"] = row["train_s"] + row["eval_s"]
        measured.append(row)
    out = _summary("torch", config, measured, ("train_s", "eval_s", "total_s"))
    out |= {
        "torch": torch.__version__,
        "threads": threads,
        "evaluates": evaluate,
        "evaluation": (
            "held-out features (3 x eval_size anchors + eval_size pairs), held-out spectral "
            "loss, ridge linear probe"
            if evaluate
            else "none"
        ),
    }
    return out


def _coords(cell: dict[str, Any]) -> dict[str, Any]:
    return {k: cell[k] for k in ("seed", "width", "clusters", "out_dim")}


# -- JAX, one jit per cell ----------------------------------------------------------------------


def jax_loop(config: SweepConfig, index: Sequence[int] | None = None) -> dict[str, Any]:
    """Trains the grid's cells one after another, compiling ``make_train(spec).train`` per cell.

    Each cell gets an unpadded :class:`clj.Spec` (``max_width`` = its width, ``max_out_dim`` = its
    output dimension, ``max_clusters`` = its cluster count) and its own ``jax.jit``, so compiles
    recur for every cell. Training only: the per-cell evaluation of ``clj sweep`` is not run.

    Returns:
      A summary dict like :func:`torch_loop`'s, with ``compile_s``, ``train_s`` and ``total_s``.
    """
    import jax

    from clj.cell import stack_cells
    from clj.data import make_family
    from clj.spec import Spec
    from clj.train import make_train

    static = _check_reference_like(config)
    cells = config.cells()
    index = list(range(len(cells))) if index is None else list(index)
    measured = []
    for i in index:
        cell = cells[i]
        spec = Spec(
            family=make_family(
                static["data"],
                static["dim"],
                cell["clusters"],
                **config.options_for(static["data"]),
            ),
            encoder="mlp",
            depth=static["depth"],
            max_width=cell["width"],
            max_out_dim=cell["out_dim"],
            loss="spectral",
            optimizer="adam",
            batch=static["batch"],
            steps=static["steps"],
            eval_size=static["eval_size"],
            log_every=config.log_every,
        )
        one = jax.tree.map(lambda a: a[0], stack_cells([cell]))
        t0 = time.perf_counter()
        train = jax.jit(make_train(spec).train).lower(one).compile()
        t1 = time.perf_counter()
        _, curve = train(one)
        curve = np.asarray(jax.block_until_ready(curve))
        t2 = time.perf_counter()
        measured.append(
            {
                "cell": i,
                **_coords(cell),
                "compile_s": t1 - t0,
                "train_s": t2 - t1,
                "total_s": t2 - t0,
                "final_loss": float(curve[-1]),
            }
        )
    out = _summary("jax_loop", config, measured, ("compile_s", "train_s", "total_s"))
    out |= {"jax": jax.__version__, "evaluates": False, "evaluation": "none"}
    return out


# -- command line (one loop per process) -------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clj._baselines {torch,jax} --config-json JSON [--index 0,5,…] --json OUT``."""
    parser = argparse.ArgumentParser(prog="python -m clj._baselines")
    parser.add_argument("loop", choices=("torch", "jax"))
    parser.add_argument("--config-json", required=True, help="SweepConfig.to_dict() as JSON")
    parser.add_argument("--index", default=None, help="comma-separated grid positions to run")
    parser.add_argument("--no-eval", action="store_true", help="torch: skip the evaluation")
    parser.add_argument("--json", required=True, help="write the summary here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = SweepConfig.from_dict(json.loads(args.config_json))
    index = None if args.index is None else [int(i) for i in args.index.split(",")]
    if args.loop == "torch":
        out = torch_loop(config, index, evaluate=not args.no_eval)
    else:
        out = jax_loop(config, index)
    out["in_process_s"] = time.perf_counter() - start
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
