"""How fast ``clj sweep`` could possibly be on this machine, from measured parts.

Prints, for a preset's grid (default ``reference``):

* the training FLOPs of every cell at its exact width (no padding) and of the programs
  ``clj sweep`` plans (padded), from :func:`clj.buckets.mlp_step_flops`;
* this machine's sustained matrix-product rate: the best of ``--repeats`` runs of a scan of
  ``--size`` × ``--size`` float32 products, one per CPU device, all devices at once;
* the seconds a fresh interpreter takes to ``import jax`` and to ``import clj``;
* the implied floor on the whole process: imports plus the exact FLOPs at that rate, with no
  compile, no evaluation and no writing; and the speed-up over a given loop time that floor
  would allow.

Command::

    python benchmarks/lower_bound.py [--preset reference] [--loop-seconds 66.5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _import_seconds(module: str) -> float:
    """Best of 3 fresh interpreters' wall time for ``import module`` (minus an empty start)."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    empty = min(run("pass") for _ in range(3))
    return min(run(f"import {module}") for _ in range(3)) - empty


def matmul_rate(size: int, repeats: int) -> float:
    """Sustained FLOP/s of float32 ``size``² products on every CPU device at once."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("d",))
    x = jax.device_put(
        jnp.full((len(devices), size, size), 1.0 / size, jnp.float32),
        NamedSharding(mesh, PartitionSpec("d")),
    )
    steps = 20

    @jax.jit
    def chain(x: jax.Array) -> jax.Array:
        return jax.lax.scan(lambda a, _: (jnp.tanh(a @ a), None), x, None, length=steps)[0]

    chain(x).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        chain(x).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 * steps * len(devices) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-seconds", type=float, default=None, help="a loop's time to compare")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    from clj.cli import use_every_cpu_core

    use_every_cpu_core()  # as clj sweep does: one CPU device per core
    from clj.buckets import mlp_step_flops
    from clj.plan import plan_programs
    from clj.presets import preset

    config = preset(args.preset)

    def flops(cell: dict, width: int) -> float:
        step = mlp_step_flops(cell["dim"], width, cell["out_dim"], cell["depth"], cell["batch"])
        return step * cell["steps"]

    exact = sum(flops(c, c["width"]) for c in config.cells())
    programs = plan_programs(config)
    padded = sum(flops(c, p.spec.max_width) for p in programs for c in p.cells)
    rate = matmul_rate(args.size, args.repeats)
    imports = {"jax": _import_seconds("jax"), "clj": _import_seconds("clj")}
    floor = imports["clj"] + exact / rate
    out = {
        "preset": args.preset,
        "cells": config.num_cells,
        "exact_tflop": exact / 1e12,
        "padded_tflop": padded / 1e12,
        "programs": [p.label for p in programs],
        "matmul_gflops": rate / 1e9,
        "cpu_devices": os.environ.get("XLA_FLAGS"),
        "import_s": imports,
        "floor_s": floor,
    }
    print(
        f"{config.num_cells} cells: {exact / 1e12:.2f} TFLOP at exact widths, "
        f"{padded / 1e12:.2f} TFLOP as planned ({len(programs)} programs)"
    )
    print(f"matrix products: {rate / 1e9:.0f} GFLOP/s ({args.size}², all CPU devices)")
    print(f"import jax {imports['jax']:.2f} s, import clj {imports['clj']:.2f} s")
    print(
        f"floor: import clj + exact FLOPs at that rate = {floor:.1f} s "
        f"(no compile, evaluation or writing)"
    )
    if args.loop_seconds:
        out["max_speedup"] = args.loop_seconds / floor
        print(f"against a {args.loop_seconds:.1f} s loop: at most {out['max_speedup']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
