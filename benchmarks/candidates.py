"""Ablations of candidate library changes to ``clj``'s training step, without changing the library.

Re-implements ``Trainer.run``'s step for each program of a preset (default ``reference``) with
the parts swapped out, and prints milliseconds per step (min of ``--repeats`` runs of ``--steps``
steps) and the first cell's last loss (to show whether results change):

* ``--loss gram``: the spectral loss through the ``[B, B]`` Gram matrix and its diagonal (as
  ``clj.losses.spectral`` was before commit 9898a9b); ``--loss kk``: the same quantity as
  ``−(2/B) Σ_i p_i + (Σ (Z1ᵀZ1 ∘ Z2ᵀZ2) − Σ_i p_i²) / (B(B−1))`` with ``p_i = z1_i·z2_i``: only
  ``[k, k]`` matrices (``clj.losses.spectral`` since 9898a9b).
* ``--views concat``: anchors, then ``augment`` with each key of ``split(key)`` and
  ``concatenate([x1, x2])`` (``make_train`` before 9898a9b); ``--views vmap``: the same keys and
  draws, but ``vmap(augment)`` over ``split(key)`` gives one ``[2, B, d]`` array, reshaped to
  ``[2B, d]`` (bit-identical views; ``DataFamily.view_pair`` since 9898a9b);
  ``--views broadcast``: anchor ``[None]`` plus one ``[2, B, d]`` normal draw
  (``gaussian_mixture`` only; same distribution, other random numbers).
* ``--shard``: cells sharded over all devices (run with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` for 2 CPU devices).

Command::

    python benchmarks/candidates.py --loss kk --views vmap [--shard] [--steps 50 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import clj
from clj.cell import stack_cells
from clj.optim import make_optimizer
from clj.train import cell_keys, make_train


def spectral_gram(z1: jax.Array, z2: jax.Array) -> jax.Array:
    """The spectral loss through the ``[B, B]`` Gram matrix (``clj.losses.spectral`` before
    commit 9898a9b)."""
    b = z1.shape[0]
    positive = jnp.sum(z1 * z2) / b
    gram = z1 @ z2.T  # [B, B]
    off_diagonal = jnp.sum(gram**2) - jnp.sum(jnp.diagonal(gram) ** 2)
    return -2.0 * positive + off_diagonal / (b * (b - 1))


def spectral_kk(z1: jax.Array, z2: jax.Array) -> jax.Array:
    """``clj.losses.spectral`` through ``[k, k]`` second moments instead of the ``[B, B]`` Gram."""
    b = z1.shape[0]
    positive = jnp.sum(z1 * z2, axis=1)  # [B]
    all_pairs = jnp.sum((z1.T @ z1) * (z2.T @ z2))  # Σ_ij (z1_i·z2_j)²
    return -2.0 * jnp.sum(positive) / b + (all_pairs - jnp.sum(positive**2)) / (b * (b - 1))


def make_run(program: clj.Program, steps: int, loss: str, views: str):
    spec = program.spec
    family = spec.family
    trainer = make_train(spec)
    tx = make_optimizer(spec.optimizer)
    loss_fn = spectral_gram if loss == "gram" else spectral_kk

    def batch(key, world, cell):
        k_anchor, k_views = jax.random.split(key)
        anchors = family.anchors(k_anchor, world, cell, spec.batch)
        if views == "concat":
            k1, k2 = jax.random.split(k_views)
            x1 = family.augment(k1, world, cell, anchors.x)
            x2 = family.augment(k2, world, cell, anchors.x)
            return jnp.concatenate([x1, x2], axis=0)
        if views == "vmap":
            keys = jax.random.split(k_views)
            x = jax.vmap(lambda k: family.augment(k, world, cell, anchors.x))(keys)
        else:
            noise = jax.random.normal(k_views, (2, spec.batch, family.dim))
            x = anchors.x[None] + (family.noise / family.dim**0.5) * noise
        return x.reshape(2 * spec.batch, family.dim)

    def run(state, cell):
        opt = tx(learning_rate=cell.lr, weight_decay=cell.weight_decay)
        data_key = cell_keys(cell.seed)["data"]

        def step(carry, t):
            params, opt_state = carry
            x = batch(jax.random.fold_in(data_key, t), state.world, cell)

            def objective(p):
                z = trainer.encode(p, cell, x)
                return loss_fn(z[: spec.batch], z[spec.batch :])

            value, grads = jax.value_and_grad(objective)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        return jax.lax.scan(step, (state.params, state.opt_state), jnp.arange(steps))

    return trainer, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="reference")
    parser.add_argument("--loss", choices=("gram", "kk"), default="gram")
    parser.add_argument("--views", choices=("concat", "vmap", "broadcast"), default="concat")
    parser.add_argument("--shard", action="store_true")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for program in clj.plan_programs(clj.preset(args.preset)):
        trainer, run = make_run(program, args.steps, args.loss, args.views)
        cells = stack_cells(list(program.cells))
        if args.shard:
            sharding = NamedSharding(
                Mesh(np.array(jax.devices()), ("cells",)), PartitionSpec("cells")
            )
            cells = jax.device_put(cells, sharding)
            init = jax.jit(jax.vmap(trainer.init), out_shardings=sharding)
            step = jax.jit(jax.vmap(run), in_shardings=(sharding, sharding), out_shardings=sharding)
        else:
            init, step = jax.jit(jax.vmap(trainer.init)), jax.jit(jax.vmap(run))
        state = init(cells)
        compiled = step.lower(state, cells).compile()
        jax.block_until_ready(compiled(state, cells))
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            _, losses = jax.block_until_ready(compiled(state, cells))
            best = min(best, time.perf_counter() - t0)
        row = {
            "program": program.label,
            "loss": args.loss,
            "views": args.views,
            "devices": len(jax.devices()) if args.shard else 1,
            "ms_per_step": round(1e3 * best / args.steps, 1),
            "last_loss_cell0": float(losses[0, -1]),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
