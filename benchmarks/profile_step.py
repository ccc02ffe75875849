"""Where a training step of ``clj sweep`` spends its time: ablations of one program's step.

Runs, for each program of the grid (default: the ``reference`` preset; width buckets as
``plan_programs`` makes them), ``jax.jit(jax.vmap(...))`` over all its cells of ``--steps`` scanned
steps of:

* ``full``: ``Trainer.run``, exactly what ``clj sweep`` runs;
* ``data``: only drawing the batches (anchors and both views) of every step;
* ``fwd_bwd``: loss and gradient on one fixed batch per cell, plain SGD update;
* ``fwd_bwd_adam``: the same with the cell's optimiser (``inject_hyperparams`` Adam);
* ``fwd_bwd_adam_const``: the same with a plain ``optax.adam(1e-3)`` (no injected
  hyper-parameters);
* with ``--prng rbg,unsafe_rbg``: ``full`` and ``data`` under JAX's other PRNG implementations;

and prints milliseconds per step for the whole program and per cell-step (min of ``--repeats``).
With ``--per-width`` it also times ``full`` for one unpadded program per width (what per-width
buckets would run), and with ``--compile`` the compile seconds of each program's ``init``, step
chunk and ``evaluate`` executables, at XLA's default optimisation level and at level 0.

Command::

    python benchmarks/profile_step.py --steps 50 --repeats 3 --per-width --compile [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

import clj
from clj.cell import stack_cells
from clj.sweep import Program
from clj.train import cell_keys, loss_fn, make_train


def _variants(program: Program, steps: int) -> dict[str, Callable]:
    spec = program.spec
    trainer = make_train(spec)
    family = spec.family
    tx = clj.optim.make_optimizer(spec.optimizer)

    def full(state, cell):
        return trainer.run(state, cell, steps)

    def data(state, cell):
        key = cell_keys(cell.seed)["data"]

        def body(acc, t):
            views = family.sample(jax.random.fold_in(key, t), state.world, cell, spec.batch)
            return acc + jnp.sum(views.x1) + jnp.sum(views.x2), None

        acc, _ = jax.lax.scan(body, jnp.zeros(()), jnp.arange(steps))
        return acc

    def fixed_batch(state, cell):
        views = family.sample(cell_keys(cell.seed)["data"], state.world, cell, spec.batch)
        return jnp.concatenate([views.x1, views.x2], axis=0)

    def objective(params, cell, x):
        z = trainer.encode(params, cell, x)
        return loss_fn(spec, z[: spec.batch], z[spec.batch :], cell)

    def fwd_bwd(state, cell):
        x = fixed_batch(state, cell)

        def body(params, _):
            loss, grads = jax.value_and_grad(objective)(params, cell, x)
            return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), loss

        return jax.lax.scan(body, state.params, None, length=steps)

    def fwd_bwd_adam(state, cell):
        x = fixed_batch(state, cell)
        opt = tx(learning_rate=cell.lr, weight_decay=cell.weight_decay)

        def body(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(objective)(params, cell, x)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(body, (state.params, state.opt_state), None, length=steps)

    def fwd_bwd_adam_const(state, cell):
        x = fixed_batch(state, cell)
        opt = optax.adam(1e-3)

        def body(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(objective)(params, cell, x)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(body, (state.params, opt.init(state.params)), None, length=steps)

    return {
        "full": full,
        "data": data,
        "fwd_bwd": fwd_bwd,
        "fwd_bwd_adam": fwd_bwd_adam,
        "fwd_bwd_adam_const": fwd_bwd_adam_const,
    }


def _time(fn: Callable, state, cells, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(fn)).lower(state, cells).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, cells))
        best = min(best, time.perf_counter() - t0)
    return compile_s, best


def compile_breakdown(config: clj.SweepConfig, step_chunk: int = 10) -> list[dict]:
    """Compile seconds of each program's init, step-chunk and evaluate executables."""
    from clj.evaluate import make_evaluate

    rows = []
    for program in clj.plan_programs(config):
        spec = program.spec
        trainer = make_train(spec)
        evaluate = make_evaluate(trainer)
        cells = stack_cells(list(program.cells))
        state = jax.eval_shape(jax.vmap(trainer.init), cells)
        curves = jax.ShapeDtypeStruct((len(program.cells), spec.curve_length), jnp.float32)
        run = jax.vmap(functools.partial(trainer.run, num_steps=step_chunk))
        parts = {
            "init": (jax.vmap(trainer.init), (cells,)),
            "run": (run, (state, cells)),
            "evaluate": (jax.vmap(evaluate), (state, cells, curves)),
        }
        for level in (None, 0):
            options = None if level is None else {"xla_backend_optimization_level": level}
            row = {"program": program.label, "opt_level": "default" if level is None else level}
            for name, (fn, args) in parts.items():
                t0 = time.perf_counter()
                jax.jit(fn).lower(*args).compile(compiler_options=options)
                row[f"{name}_s"] = round(time.perf_counter() - t0, 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def per_width(config: clj.SweepConfig, steps: int, repeats: int) -> list[dict]:
    """``full`` for one unpadded program per width (all of that width's cells)."""
    rows = []
    for width in config.widths:
        (program,) = clj.plan_programs(dataclasses.replace(config, widths=(width,)))
        cells = stack_cells(list(program.cells))
        trainer = make_train(program.spec)
        state = jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(cells))
        compile_s, run_s = _time(_variants(program, steps)["full"], state, cells, repeats)
        row = {
            "program": program.label,
            "cells": len(program.cells),
            "variant": "full, unpadded",
            "compile_s": round(compile_s, 2),
            "ms_per_step": round(1e3 * run_s / steps, 2),
            "us_per_cell_step": round(1e6 * run_s / steps / len(program.cells), 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def profile(config: clj.SweepConfig, steps: int, repeats: int, impls: list[str]) -> list[dict]:
    rows = []
    for program in clj.plan_programs(config):
        cells = stack_cells(list(program.cells))
        n = len(program.cells)
        for impl in impls:
            jax.config.update("jax_default_prng_impl", impl)
            trainer = make_train(program.spec)
            state = jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(cells))
            variants = _variants(program, steps)
            if impl != impls[0]:
                variants = {"full": variants["full"], "data": variants["data"]}
            for name, fn in variants.items():
                compile_s, run_s = _time(fn, state, cells, repeats)
                row = {
                    "program": program.label,
                    "cells": n,
                    "prng": impl,
                    "variant": name,
                    "compile_s": round(compile_s, 2),
                    "ms_per_step": round(1e3 * run_s / steps, 2),
                    "us_per_cell_step": round(1e6 * run_s / steps / n, 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        jax.config.update("jax_default_prng_impl", "threefry2x32")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--prng", default="threefry2x32", help="comma-separated PRNG impls, e.g. threefry2x32,rbg"
    )
    parser.add_argument("--per-width", action="store_true", help="also time unpadded programs")
    parser.add_argument("--compile", action="store_true", help="also time compiles")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    config = clj.preset(args.preset)
    rows = profile(config, args.steps, args.repeats, args.prng.split(","))
    if args.per_width:
        rows += per_width(config, args.steps, args.repeats)
    if args.compile:
        rows += compile_breakdown(config)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
