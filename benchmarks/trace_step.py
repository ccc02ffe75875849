"""Where a training step's time goes, from JAX's profiler: XLA CPU thunk times by category.

For every program of a preset (default ``reference``), compiles ``jax.vmap(Trainer.run)`` for
``--steps`` steps, runs it once to warm up, then once under ``jax.profiler.trace`` and sums the
durations of the innermost XLA thunks (fusions, dots, loops) by the JAX operation they come from
(the ``op_name`` metadata of the compiled HLO):

* ``data``: random bits (threefry), uniform and normal draws, centre look-up, and the fusion
  that ends in the concatenated views;
* ``forward``: ``jvp(...)`` without ``transpose``: encoder and loss forward;
* ``backward``: ``transpose(jvp(...))``;
* ``optimizer``: the rest (optax update, parameter update, step counter, curve means).

Thunk times are summed over threads, so a program that runs two thunks at once on 2 cores can sum
to more than its wall time.

Command::

    python benchmarks/trace_step.py --steps 20 [--top 12] [--json OUT]
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile

import jax

import clj
from clj.cell import stack_cells
from clj.train import make_train

_OP_NAME = re.compile(r"^\s*%?([\w.\-]+) = .*?op_name=\"([^\"]*)\"")
_DATA = ("_normal", "_uniform", "threefry", "random_bits", "fold_in", "random_wrap")


def category(op_name: str) -> str:
    """The part of a training step that an HLO ``op_name`` belongs to.

    The fusion that draws the views ends in the ``concatenate`` of ``x1`` and ``x2`` (inside the
    objective, so under ``jvp``): it counts as data.
    """
    if op_name.endswith("/concatenate"):
        return "data"
    if "transpose(jvp" in op_name:
        return "backward"
    if "jvp(" in op_name:
        return "forward"
    if any(s in op_name for s in _DATA) or op_name.endswith("/gather"):
        return "data"
    return "optimizer"


def _leaf_events(events: list[dict], names: dict[str, str]) -> list[dict]:
    """Thunk events (named after an HLO instruction) that contain no other thunk event of the
    same thread (a ``while`` thunk contains its body's thunks)."""
    by_thread: dict = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e["name"] in names:
            by_thread[e.get("tid")].append(e)
    leaves = []
    for items in by_thread.values():
        items.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        for i, e in enumerate(items):
            end = e["ts"] + e.get("dur", 0)
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is None or nxt["ts"] >= end:
                leaves.append(e)
    return leaves


def trace_program(program: clj.Program, steps: int) -> dict:
    """Thunk seconds of ``steps`` steps of ``program``, by category and by thunk."""
    cells = stack_cells(list(program.cells))
    trainer = make_train(program.spec)
    state = jax.jit(jax.vmap(trainer.init))(cells)
    run = jax.jit(jax.vmap(lambda s, c: trainer.run(s, c, steps)))
    compiled = run.lower(state, cells).compile()
    names = {}
    for line in compiled.as_text().splitlines():
        m = _OP_NAME.match(line)
        if m:
            names[m.group(1)] = m.group(2)
    jax.block_until_ready(compiled(state, cells))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(compiled(state, cells))
        (path,) = glob.glob(f"{tmp}/plugins/profile/*/perfetto_trace.json.gz")
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
    by_category: collections.Counter = collections.Counter()
    by_thunk: collections.Counter = collections.Counter()
    for e in _leaf_events(events, names):
        op = names[e["name"]]
        by_category[category(op)] += e.get("dur", 0) / 1e6
        by_thunk[(e["name"], category(op), op.split("/")[-1])] += e.get("dur", 0) / 1e6
    return {
        "label": program.label,
        "steps": steps,
        "by_category": by_category,
        "by_thunk": by_thunk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    out = []
    for program in clj.plan_programs(clj.preset(args.preset)):
        result = trace_program(program, args.steps)
        total = sum(result["by_category"].values())
        print(f"{result['label']}: {1e3 * total / args.steps:.1f} ms of thunks per step")
        for name, seconds in result["by_category"].most_common():
            per_step = 1e3 * seconds / args.steps
            print(f"  {name:10s} {per_step:7.1f} ms/step {100 * seconds / total:5.1f}%")
        for (thunk, cat, op), seconds in result["by_thunk"].most_common(args.top):
            print(f"    {1e3 * seconds / args.steps:7.2f} ms/step  {cat:9s} {thunk} ({op})")
        out.append(
            {
                "label": result["label"],
                "steps": args.steps,
                "ms_per_step": {k: 1e3 * v / args.steps for k, v in result["by_category"].items()},
                "top_thunks": [
                    {"thunk": t, "category": c, "op": o, "ms_per_step": 1e3 * s / args.steps}
                    for (t, c, o), s in result["by_thunk"].most_common(args.top)
                ],
            }
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
