"""``make_train(spec)``: pure functions that train and evaluate one cell; vmap them over a grid.

A cell's randomness comes from its seed alone: ``world``, ``init``, ``data`` and ``eval`` keys are
folded from ``seed_key(seed)``, and step ``t`` draws its batch from ``fold_in(data_key, t)``.
So training in chunks (for a progress bar or checkpoints) gives exactly the same result as one
scan, and a cell's result never depends on the other cells of its grid.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from clj.cell import Cell
from clj.data import Anchors, Views
from clj.encoders import make_encoder, unit_mask
from clj.losses import LOSSES
from clj.optim import make_optimizer
from clj.random import seed_key
from clj.spec import Spec

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_DESCRIPTIONS",
    "TrainState",
    "Trainer",
    "apply_gradients",
    "cell_keys",
    "make_train",
    "scan_windows",
]

OBJECTIVES: dict[str, str] = {}
"""Training objectives other than the pair losses of :data:`clj.losses.LOSSES` (e.g. generative or
supervised ones), by name: the module whose ``make_trainer(spec) -> Trainer`` builds the trainer.
``spec.loss`` selects them like a loss; the module is imported only when used."""
OBJECTIVES["supervised"] = "clj.models.supervised"
OBJECTIVES.update(
    {name: "clj.models.simvae" for name in ("vae", "simvae", "vae_bernoulli", "simvae_bernoulli")}
)
OBJECTIVE_DESCRIPTIONS: dict[str, str] = {
    "supervised": "cross-entropy of a linear head on the fine labels, on the same views "
    "(supervised baseline of the same encoder)",
    "vae": "VAE: ELBO of each input, Gaussian decoder with a learned variance, N(0, I) prior",
    "simvae": "SimVAE (Bizeul et al. 2024): ELBO of J = --views views sharing a Gaussian "
    "group prior of variance --prior-var, Gaussian decoder",
    "vae_bernoulli": "the VAE with a Bernoulli decoder (inputs in [0, 1])",
    "simvae_bernoulli": "SimVAE with a Bernoulli decoder (inputs in [0, 1])",
}
"""One line per objective of :data:`OBJECTIVES`, for ``clj list``."""

_WORLD, _INIT, _DATA, _EVAL, _POOL = range(5)


class TrainState(NamedTuple):
    """Everything a cell carries between steps.

    Attributes:
      step: int32 number of steps taken.
      params: encoder parameters (padded pytree).
      opt_state: optimiser state, holding the cell's learning rate and weight decay.
      world: the data family's fixed structure for this cell.
      pool: the fixed anchor pool (``[pool_size, dim]`` and labels) or an empty placeholder.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    world: Any
    pool: Anchors | None


def cell_keys(seed: jax.Array) -> dict[str, jax.Array]:
    """The independent PRNG keys of a cell, all derived from its seed."""
    root = seed_key(seed)
    names = {"world": _WORLD, "init": _INIT, "data": _DATA, "eval": _EVAL, "pool": _POOL}
    return {name: jax.random.fold_in(root, i) for name, i in names.items()}


def loss_fn(spec: Spec, z1: jax.Array, z2: jax.Array, cell: Cell) -> jax.Array:
    """The spec's loss with the cell's hyper-parameters.

    Args:
      z1, z2: ``[B, max_out_dim]`` representations (zero beyond the cell's ``out_dim``).
    """
    if spec.loss == "spectral":
        return LOSSES["spectral"](z1, z2)
    if spec.loss == "spectral_lambda":
        mask = unit_mask(cell.out_dim, spec.max_out_dim)
        return LOSSES["spectral_lambda"](z1, z2, lam=cell.lam, mask=mask)
    if spec.loss == "info_nce":
        return LOSSES["info_nce"](z1, z2, temperature=cell.temperature)
    if spec.loss == "t_info_nce":
        return LOSSES["t_info_nce"](z1, z2, temperature=cell.temperature, dof=cell.dof)
    raise ValueError(f"unknown loss {spec.loss!r}; choose from {', '.join(LOSSES)}")


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Pure per-cell functions for one :class:`Spec`; all are safe under ``jit`` and ``vmap``.

    Attributes:
      spec: the static configuration.
      init: ``cell -> TrainState`` at step 0.
      run: ``(state, cell, num_steps) -> (state, curve)``: ``num_steps`` more steps (a static
        multiple of ``spec.log_every``); ``curve`` is ``[num_steps // log_every]``, the mean
        training loss over each window of ``log_every`` steps.
      encode: ``(params, cell, x) -> z``, ``[n, dim] -> [n, max_out_dim]``.
      train: ``cell -> (state, curve)``: ``init`` then ``spec.steps`` steps in one scan.
      eval_loss: ``(state, cell, views) -> scalar``: the training objective on held-out
        positive pairs (:class:`~clj.data.Views` of ``n`` anchors).
      run_shared: ``(states, cells, num_steps) -> (states, curves)`` over a leading ``[G]`` axis
        of cells that draw the same data (they agree on the family's
        :attr:`~clj.data.DataFamily.cell_fields`): each step's batch is drawn once, from the
        first cell, and trains them all; ``curves`` is ``[G, num_steps // log_every]``. Equal,
        bit for bit, to ``jax.vmap(run)`` over such cells. ``None`` for a trainer without it.
      draw: ``(state, cell) -> pair``: the positive pairs ``[2, batch, dim]`` that step
        ``state.step`` trains on; reads only the state's ``step``, ``world`` and ``pool``.
        ``None`` for a trainer without it.
      update: ``(state, cell, pair) -> (state, loss)``: one optimiser step on ``pair``, so
        ``run``'s step is ``update(state, cell, draw(state, cell))``. ``None`` for a trainer
        without it.
    """

    spec: Spec
    init: Callable[[Cell], TrainState]
    run: Callable[[TrainState, Cell, int], tuple[TrainState, jax.Array]]
    encode: Callable[[Any, Cell, jax.Array], jax.Array]
    train: Callable[[Cell], tuple[TrainState, jax.Array]]
    eval_loss: Callable[[TrainState, Cell, Views], jax.Array]
    run_shared: Callable[[TrainState, Cell, int], tuple[TrainState, jax.Array]] | None = None
    draw: Callable[[TrainState, Cell], jax.Array] | None = None
    update: Callable[[TrainState, Cell, jax.Array], tuple[TrainState, jax.Array]] | None = None


def apply_gradients(state: TrainState, tx: optax.GradientTransformation, grads: Any) -> TrainState:
    """One optimiser update of ``state.params`` by ``grads``, counting the step."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state._replace(step=state.step + 1, params=params, opt_state=opt_state)


def scan_windows(
    step: Callable[[TrainState, Cell], tuple[TrainState, jax.Array]], log_every: int
) -> Callable[[TrainState, Cell, int], tuple[TrainState, jax.Array]]:
    """``run(state, cell, num_steps)`` of a trainer: ``num_steps`` calls of ``step`` in
    ``jax.lax.scan``, returning the final state and the curve ``[num_steps // log_every, ...]`` of
    the mean loss over each window of ``log_every`` steps (``step``'s loss may have any shape, one
    per cell of a group, say, or be a pytree of such losses: each gets its curve)."""

    def run(state: TrainState, cell: Cell, num_steps: int) -> tuple[TrainState, jax.Array]:
        if num_steps % log_every:
            raise ValueError(f"num_steps={num_steps} is not a multiple of {log_every}")

        def window(state: TrainState, _: None) -> tuple[TrainState, jax.Array]:
            state, losses = jax.lax.scan(lambda s, _: step(s, cell), state, None, length=log_every)
            return state, jax.tree.map(lambda loss: jnp.mean(loss, axis=0), losses)

        state, curve = jax.lax.scan(window, state, None, length=num_steps // log_every)
        jax.tree.map(lambda c: chex.assert_axis_dimension(c, 0, num_steps // log_every), curve)
        return state, curve

    return run


def make_train(spec: Spec) -> Trainer:
    """Builds the pure training functions of one cell for ``spec``."""
    if spec.loss in OBJECTIVES:
        return importlib.import_module(OBJECTIVES[spec.loss]).make_trainer(spec)
    family = spec.family
    model = make_encoder(
        spec.encoder, spec.depth, spec.max_width, spec.max_out_dim, family.input_shape
    )
    make_tx = make_optimizer(spec.optimizer)
    if spec.loss not in LOSSES:
        raise ValueError(f"unknown loss {spec.loss!r}; choose from {', '.join(LOSSES)}")

    def encode(params: Any, cell: Cell, x: jax.Array) -> jax.Array:
        return model.apply({"params": params}, x, *cell_values(cell))

    def cell_values(cell: Cell) -> tuple[jax.Array, ...]:
        return tuple(getattr(cell, name) for name in model.cell_inputs)

    def tx(cell: Cell) -> optax.GradientTransformation:
        return make_tx(learning_rate=cell.lr, weight_decay=cell.weight_decay)

    def init(cell: Cell) -> TrainState:
        keys = cell_keys(cell.seed)
        world = family.world(keys["world"], cell)
        dummy = jnp.zeros((1, family.dim), jnp.float32)
        params = model.init(keys["init"], dummy, *cell_values(cell))["params"]
        pool = None
        if spec.pool_size is not None:
            pool = family.anchors(keys["pool"], world, cell, spec.pool_size)
        return TrainState(jnp.zeros((), jnp.int32), params, tx(cell).init(params), world, pool)

    def batch_at(state: TrainState, cell: Cell) -> jax.Array:
        """Step ``state.step``'s positive pairs, ``[2, batch, dim]``."""
        key = jax.random.fold_in(cell_keys(cell.seed)["data"], state.step)
        if state.pool is None:
            return family.sample_pair(key, state.world, cell, spec.batch)
        k_index, k_views = jax.random.split(key)
        index = jax.random.randint(k_index, (spec.batch,), 0, spec.pool_size)
        return family.view_pair(k_views, state.world, cell, state.pool.x[index])

    def update(state: TrainState, cell: Cell, pair: jax.Array) -> tuple[TrainState, jax.Array]:
        """One optimiser step on the positive pairs ``pair`` (``[2, batch, dim]``)."""

        def objective(params: Any) -> jax.Array:
            # Both views in one [2B, dim] batch; the reshapes are free.
            z = encode(params, cell, pair.reshape(2 * spec.batch, -1))
            z = z.reshape(2, spec.batch, -1)
            return loss_fn(spec, z[0], z[1], cell)

        loss, grads = jax.value_and_grad(objective)(state.params)
        return apply_gradients(state, tx(cell), grads), loss

    def step(state: TrainState, cell: Cell) -> tuple[TrainState, jax.Array]:
        return update(state, cell, batch_at(state, cell))

    def shared_step(states: TrainState, cells: Cell) -> tuple[TrainState, jax.Array]:
        """One step of ``[G]`` cells that draw the same data: the first cell's batch, drawn
        once, trains every cell."""
        pair = batch_at(*jax.tree.map(lambda a: a[0], (states, cells)))
        # One copy per cell keeps each cell's products exactly as `step` computes them.
        pairs = jnp.broadcast_to(pair, (cells.seed.shape[0], *pair.shape))
        return jax.vmap(update)(states, cells, pairs)

    run = scan_windows(step, spec.log_every)
    run_group = scan_windows(shared_step, spec.log_every)

    def run_shared(states: TrainState, cells: Cell, num_steps: int) -> tuple[TrainState, jax.Array]:
        states, curves = run_group(states, cells, num_steps)
        return states, curves.T

    def train(cell: Cell) -> tuple[TrainState, jax.Array]:
        return run(init(cell), cell, spec.steps)

    def eval_loss(state: TrainState, cell: Cell, views: Views) -> jax.Array:
        z1, z2 = encode(state.params, cell, views.x1), encode(state.params, cell, views.x2)
        return loss_fn(spec, z1, z2, cell)

    return Trainer(
        spec=spec,
        init=init,
        run=run,
        encode=encode,
        train=train,
        eval_loss=eval_loss,
        run_shared=run_shared,
        draw=batch_at,
        update=update,
    )
