"""Supervised training of the same encoders: cross-entropy of a linear head on fine labels.

The objective ``"supervised"`` (``spec.loss``, ``SweepConfig(loss="supervised")``) trains the
spec's encoder followed by a linear head ``z ↦ z V + c`` to the fine labels, on augmented views:
step ``t`` draws the same anchors and the same two views as the contrastive trainer of
:func:`clj.train.make_train` does (key ``fold_in(data_key, t)``, or a batch of the fixed pool),
and minimises the mean cross-entropy over all ``2 · batch`` views. The representation is the
encoder's output, before the head, so supervised and contrastive features of one encoder compare
directly.

Padding follows the encoders: head rows beyond the cell's ``out_dim`` and columns beyond its
number of fine classes start at zero and get zero gradient (the padded classes' logits are
masked out of the softmax), and the head's initial scale uses the true ``out_dim``, so a padded
cell trains like the unpadded one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from clj.cell import Cell
from clj.data import Views
from clj.encoders import make_encoder, unit_mask
from clj.optim import make_optimizer
from clj.random import indexed_normal
from clj.spec import Spec
from clj.train import Trainer, TrainState, apply_gradients, cell_keys, scan_windows

__all__ = ["NAME", "head_logits", "make_trainer", "supervised_loss"]

NAME = "supervised"
"""The objective's name in :data:`clj.train.OBJECTIVES`."""

_HEAD_KEY = 1
"""The head's initialisation key is ``fold_in(init_key, _HEAD_KEY)``."""


def head_logits(head: dict[str, jax.Array], z: jax.Array, num_classes: jax.Array) -> jax.Array:
    """The linear head's logits with classes beyond ``num_classes`` masked to ``−inf``.

    Args:
      head: ``{"kernel": [max_out_dim, C], "bias": [C]}``.
      z: ``[n, max_out_dim]`` representations.
      num_classes: the cell's number of classes (scalar int, may be traced), ``≤ C``.

    Returns:
      ``[n, C]`` logits.
    """
    logits = z @ head["kernel"] + head["bias"]
    active = jnp.arange(logits.shape[-1]) < num_classes
    return jnp.where(active, logits, -jnp.inf)


def supervised_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of ``[n, C]`` logits (``−inf`` for absent classes) and ``[n]`` labels."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(picked)


def make_trainer(spec: Spec) -> Trainer:
    """Builds the pure per-cell functions that train ``spec.encoder`` with a supervised head.

    Same contract as :func:`clj.train.make_train`: ``init``, ``run``, ``train``, ``encode`` (the
    encoder alone, ``[n, dim] -> [n, max_out_dim]``) and ``eval_loss`` (the cross-entropy on
    both held-out views). The state's ``params`` are ``{"encoder": ..., "head": ...}``.
    """
    if spec.loss != NAME:
        raise ValueError(f"loss={spec.loss!r}: this trainer is for loss={NAME!r}")
    family = spec.family
    num_classes = family.num_fine_classes
    model = make_encoder(
        spec.encoder, spec.depth, spec.max_width, spec.max_out_dim, family.input_shape
    )
    make_tx = make_optimizer(spec.optimizer)

    def cell_values(cell: Cell) -> tuple[jax.Array, ...]:
        return tuple(getattr(cell, name) for name in model.cell_inputs)

    def encode(params: Any, cell: Cell, x: jax.Array) -> jax.Array:
        return model.apply({"params": params["encoder"]}, x, *cell_values(cell))

    def logits_of(params: Any, cell: Cell, x: jax.Array) -> jax.Array:
        return head_logits(params["head"], encode(params, cell, x), family.fine_count(cell))

    def tx(cell: Cell) -> optax.GradientTransformation:
        return make_tx(learning_rate=cell.lr, weight_decay=cell.weight_decay)

    def init_head(key: jax.Array, cell: Cell) -> dict[str, jax.Array]:
        rows = unit_mask(cell.out_dim, spec.max_out_dim)
        cols = unit_mask(family.fine_count(cell), num_classes)
        scale = jax.lax.rsqrt(jnp.maximum(cell.out_dim, 1).astype(jnp.float32))
        kernel = indexed_normal(key, (spec.max_out_dim, num_classes)) * scale
        return {
            "kernel": kernel * rows[:, None] * cols[None, :],
            "bias": jnp.zeros((num_classes,), jnp.float32),
        }

    def init(cell: Cell) -> TrainState:
        keys = cell_keys(cell.seed)
        world = family.world(keys["world"], cell)
        dummy = jnp.zeros((1, family.dim), jnp.float32)
        params = {
            "encoder": model.init(keys["init"], dummy, *cell_values(cell))["params"],
            "head": init_head(jax.random.fold_in(keys["init"], _HEAD_KEY), cell),
        }
        pool = None
        if spec.pool_size is not None:
            pool = family.anchors(keys["pool"], world, cell, spec.pool_size)
        return TrainState(jnp.zeros((), jnp.int32), params, tx(cell).init(params), world, pool)

    def batch_at(state: TrainState, cell: Cell) -> tuple[jax.Array, jax.Array]:
        """Step ``state.step``'s views ``[2, batch, dim]`` and their fine labels ``[batch]``."""
        key = jax.random.fold_in(cell_keys(cell.seed)["data"], state.step)
        k_anchor, k_views = jax.random.split(key)
        if state.pool is None:
            anchors = family.anchors(k_anchor, state.world, cell, spec.batch)
            x, fine = anchors.x, anchors.fine
        else:
            index = jax.random.randint(k_anchor, (spec.batch,), 0, spec.pool_size)
            x, fine = state.pool.x[index], state.pool.fine[index]
        return family.view_pair(k_views, state.world, cell, x), fine

    def step(state: TrainState, cell: Cell) -> tuple[TrainState, jax.Array]:
        pair, fine = batch_at(state, cell)
        labels = jnp.concatenate([fine, fine])

        def objective(params: Any) -> jax.Array:
            logits = logits_of(params, cell, pair.reshape(2 * spec.batch, -1))
            return supervised_loss(logits, labels)

        loss, grads = jax.value_and_grad(objective)(state.params)
        return apply_gradients(state, tx(cell), grads), loss

    run = scan_windows(step, spec.log_every)

    def train(cell: Cell) -> tuple[TrainState, jax.Array]:
        return run(init(cell), cell, spec.steps)

    def eval_loss(state: TrainState, cell: Cell, views: Views) -> jax.Array:
        x = jnp.concatenate([views.x1, views.x2])
        labels = jnp.concatenate([views.fine, views.fine])
        return supervised_loss(logits_of(state.params, cell, x), labels)

    return Trainer(spec=spec, init=init, run=run, encode=encode, train=train, eval_loss=eval_loss)
