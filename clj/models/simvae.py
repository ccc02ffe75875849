"""SimVAE (Bizeul, Schölkopf & Allen 2024) and the plain VAE, as objectives with their own trainer.

Model. The spec's encoder maps an input ``x`` ``[dim]`` to ``2k`` numbers, the mean ``μ`` and the
log-variance ``log s²`` of a diagonal Gaussian posterior ``q(z | x) = N(μ, diag s²)`` over a
``k``-dim latent (``k`` = the cell's ``out_dim``); a masked ReLU MLP decoder (``depth`` hidden
layers of the cell's width) maps a latent back to ``[dim]``: the mean of a Gaussian likelihood
``p(x | z) = N(x; dec(z), v I)`` whose variance ``v`` is *learned* (one scalar per cell,
``log v`` initialised at 0), or the logits of a Bernoulli likelihood (objectives ``*_bernoulli``,
for inputs in ``[0, 1]``; its targets are clipped to ``[0, 1]``).

Objectives, both estimated with one reparameterised sample ``z = μ + s ⊙ ε`` per input:

- ``simvae``: each step draws ``batch`` anchors and ``J = spec.views`` independent augmentations of
  each (a *group* of J views). Per group ``i``, with ``z̄_i = (1/J) Σ_j z_ij`` (the mean of the
  sampled latents, differentiated through)::

      ELBO_i = Σ_j { log p(x_ij | z_ij) + H[q(z_ij | x_ij)] + log N(z_ij; z̄_i, σ² I) }
               + log N(z̄_i; 0, I)

  with the entropy in closed form, ``H = Σ_u ½ (log 2πe + log s²_u)``, and ``σ²`` the cell's
  ``prior_var``. The loss is ``−Σ_i ELBO_i / (J · batch)`` (nats per view).
- ``vae``: ``J = 1`` view of each of ``batch`` anchors, the usual ELBO
  ``log p(x | z) − KL(q(z | x) ‖ N(0, I))`` with the KL in closed form; the loss is its negative
  mean (nats per input). In expectation over the sample, ``simvae`` with ``J = 1`` is this ELBO
  minus the constant ``(k/2) log 2πσ²``.

Only the cell's ``k`` latent units enter any sum; padded latent units are exactly zero and get
zero gradient. The representation (``encode``) is the posterior mean ``μ``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from clj.cell import Cell
from clj.data import Views
from clj.encoders import MaskedDense, make_encoder, unit_mask
from clj.optim import make_optimizer
from clj.random import indexed_normal
from clj.spec import Spec
from clj.train import Trainer, TrainState, apply_gradients, cell_keys, scan_windows

__all__ = [
    "LIKELIHOODS",
    "OBJECTIVE_KINDS",
    "MaskedDecoder",
    "bernoulli_log_likelihood",
    "gaussian_entropy",
    "gaussian_log_likelihood",
    "group_elbo",
    "kl_to_standard_normal",
    "log_normal",
    "make_trainer",
    "split_moments",
    "vae_elbo",
]

LIKELIHOODS = ("gaussian", "bernoulli")
"""Decoder likelihoods: Gaussian with a learned scalar variance, or Bernoulli on logits."""

OBJECTIVE_KINDS: dict[str, tuple[str, str]] = {
    "vae": ("vae", "gaussian"),
    "simvae": ("simvae", "gaussian"),
    "vae_bernoulli": ("vae", "bernoulli"),
    "simvae_bernoulli": ("simvae", "bernoulli"),
}
"""Objective name -> ``(model, likelihood)``."""

_LOG_2PI = math.log(2.0 * math.pi)
_EVAL_NOISE = 1  # folded into a cell's "eval" key for the held-out ELBO's sample


# -- the terms of the ELBO ----------------------------------------------------------------------
def gaussian_entropy(log_var: jax.Array, mask: jax.Array) -> jax.Array:
    """Entropy of ``N(μ, diag exp(log_var))`` over the unmasked units.

    Args:
      log_var: ``[..., K]`` log-variances.
      mask: ``[K]`` 0/1 mask of the active units.

    Returns:
      ``[...]``: ``Σ_u mask_u · ½ (log 2π + 1 + log_var_u)``.
    """
    return jnp.sum(mask * 0.5 * (_LOG_2PI + 1.0 + log_var), axis=-1)


def log_normal(z: jax.Array, mean: jax.Array, var: jax.Array, mask: jax.Array) -> jax.Array:
    """``log N(z; mean, var · I)`` over the unmasked units.

    Args:
      z, mean: ``[..., K]`` (broadcastable).
      var: variance, a scalar or broadcastable to ``[..., K]``.
      mask: ``[K]`` 0/1 mask of the active units.

    Returns:
      ``[...]``: ``Σ_u mask_u · (−½ log 2π var − (z_u − mean_u)² / (2 var))``.
    """
    terms = -0.5 * (_LOG_2PI + jnp.log(var)) - jnp.square(z - mean) / (2.0 * var)
    return jnp.sum(mask * terms, axis=-1)


def kl_to_standard_normal(mean: jax.Array, log_var: jax.Array, mask: jax.Array) -> jax.Array:
    """``KL(N(mean, diag exp(log_var)) ‖ N(0, I))`` over the unmasked units, ``[..., K] -> [...]``:
    ``Σ_u mask_u · ½ (mean_u² + exp(log_var_u) − 1 − log_var_u)``."""
    return jnp.sum(mask * 0.5 * (jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var), axis=-1)


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """``log N(x; mean, exp(log_var) I)`` summed over the last axis, ``[..., D] -> [...]``
    (``log_var`` a scalar: one variance for every entry)."""
    d = x.shape[-1]
    sq = jnp.sum(jnp.square(x - mean), axis=-1)
    return -0.5 * d * (_LOG_2PI + log_var) - 0.5 * sq * jnp.exp(-log_var)


def bernoulli_log_likelihood(x: jax.Array, logits: jax.Array) -> jax.Array:
    """``Σ_d x_d log σ(l_d) + (1 − x_d) log(1 − σ(l_d))`` for ``x`` in ``[0, 1]``,
    ``[..., D] -> [...]`` (computed stably from the logits ``l``)."""
    return jnp.sum(x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits), -1)


def group_elbo(
    log_lik: jax.Array,
    z: jax.Array,
    log_var: jax.Array,
    mask: jax.Array,
    prior_var: jax.Array | float,
) -> jax.Array:
    """SimVAE's ELBO of each group of ``J`` views (one-sample estimate, see the module docstring).

    Args:
      log_lik: ``[J, B]`` ``log p(x_ij | z_ij)`` at the sampled latents.
      z: ``[J, B, K]`` sampled latents (zero on masked units).
      log_var: ``[J, B, K]`` posterior log-variances.
      mask: ``[K]`` 0/1 mask of the active latent units.
      prior_var: ``σ²`` of the group prior ``N(z_ij; z̄_i, σ² I)`` (scalar).

    Returns:
      ``[B]``: ``Σ_j {log_lik_ij + H_ij + log N(z_ij; z̄_i, σ² I)} + log N(z̄_i; 0, I)``.
    """
    chex.assert_rank([log_lik, z, log_var], [2, 3, 3])
    chex.assert_equal_shape([z, log_var])
    chex.assert_equal_shape_prefix([log_lik, z], 2)
    z_bar = jnp.mean(z, axis=0)  # [B, K]
    per_view = (
        log_lik + gaussian_entropy(log_var, mask) + log_normal(z, z_bar[None], prior_var, mask)
    )
    return jnp.sum(per_view, axis=0) + log_normal(z_bar, 0.0, 1.0, mask)


def vae_elbo(log_lik: jax.Array, mean: jax.Array, log_var: jax.Array, mask: jax.Array) -> jax.Array:
    """The usual VAE ELBO ``log p(x | z) − KL(q(z | x) ‖ N(0, I))`` per input.

    Args:
      log_lik: ``[B]`` ``log p(x | z)`` at the sampled latent.
      mean, log_var: ``[B, K]`` posterior moments.
      mask: ``[K]`` 0/1 mask of the active latent units.

    Returns:
      ``[B]`` ELBOs.
    """
    chex.assert_equal_shape([mean, log_var])
    chex.assert_shape(log_lik, mean.shape[:1])
    return log_lik - kl_to_standard_normal(mean, log_var, mask)


def split_moments(h: jax.Array, out_dim: jax.Array, max_out_dim: int) -> tuple[jax.Array, ...]:
    """Splits an encoder output with ``2k`` active columns into the posterior moments.

    The encoder is built with ``2 · max_out_dim`` outputs and called with ``2k`` active ones, so a
    padded cell's first ``2k`` output units are those of an unpadded ``2k``-output network:
    columns ``0 .. k−1`` are the mean, columns ``k .. 2k−1`` the log-variance.

    Args:
      h: ``[n, 2 · max_out_dim]`` encoder outputs (zero beyond column ``2k``).
      out_dim: ``k`` (scalar, may be traced).
      max_out_dim: ``K``, the padded latent size.

    Returns:
      ``(mean, log_var)``, each ``[n, K]`` and exactly zero beyond column ``k``.
    """
    chex.assert_shape(h, (None, 2 * max_out_dim))
    mask = unit_mask(out_dim, max_out_dim)
    mean = h[:, :max_out_dim] * mask
    columns = jnp.minimum(out_dim + jnp.arange(max_out_dim), 2 * max_out_dim - 1)
    log_var = jnp.take(h, columns, axis=1) * mask
    return mean, log_var


# -- the decoder --------------------------------------------------------------------------------
class MaskedDecoder(nn.Module):
    """ReLU MLP from a padded latent ``[n, max_latent]`` (``out_dim`` active) to ``[n, features]``.

    ``depth`` hidden layers of the cell's (padded) width with He initialisation, then a linear
    output layer with LeCun initialisation; fan-ins are the true ``out_dim`` and ``width``, so a
    padded cell's decoder is the unpadded one.

    Attributes:
      depth: hidden layers.
      max_width: padded hidden width.
      max_latent: padded latent size ``K``.
      features: output size (the data's ``dim``).
    """

    depth: int
    max_width: int
    max_latent: int
    features: int

    cell_inputs: ClassVar[tuple[str, ...]] = ("width", "out_dim")

    @nn.compact
    def __call__(self, z: jax.Array, width: jax.Array, out_dim: jax.Array) -> jax.Array:
        """Decodes ``z`` ``[n, max_latent]`` (zero beyond ``out_dim``) to ``[n, features]``."""
        chex.assert_shape(z, (None, self.max_latent))
        in_mask = unit_mask(out_dim, self.max_latent)
        hidden_mask = unit_mask(width, self.max_width)
        h = z
        for layer in range(self.depth):
            h = MaskedDense(self.max_width, gain=2.0**0.5, name=f"hidden_{layer}")(
                h, in_mask, hidden_mask
            )
            h = nn.relu(h)
            in_mask = hidden_mask
        out_mask = jnp.ones((self.features,), jnp.float32)
        return MaskedDense(self.features, name="out")(h, in_mask, out_mask)


# -- the trainer --------------------------------------------------------------------------------
def make_trainer(spec: Spec) -> Trainer:
    """Pure per-cell training functions of ``spec.loss`` (a key of :data:`OBJECTIVE_KINDS`).

    Same contract as :func:`clj.train.make_train`: keys from :func:`~clj.train.cell_keys`, step
    ``t``'s batch and reparameterisation noise from ``fold_in(data_key, t)``, a loss curve of
    window means, and ``encode`` giving the posterior mean ``[n, max_out_dim]``. ``TrainState``'s
    ``params`` are ``{"encoder", "decoder"}`` (plus ``"log_var_x"``, the Gaussian likelihood's log
    variance).

    Raises:
      ValueError: naming an unknown objective.
    """
    if spec.loss not in OBJECTIVE_KINDS:
        raise ValueError(
            f"unknown generative objective {spec.loss!r}; choose from {', '.join(OBJECTIVE_KINDS)}"
        )
    kind, likelihood = OBJECTIVE_KINDS[spec.loss]
    family = spec.family
    k_max = spec.max_out_dim
    views = 1 if kind == "vae" else spec.views
    encoder = make_encoder(spec.encoder, spec.depth, spec.max_width, 2 * k_max, family.input_shape)
    decoder = MaskedDecoder(
        depth=spec.depth, max_width=spec.max_width, max_latent=k_max, features=family.dim
    )
    make_tx = make_optimizer(spec.optimizer)

    def encoder_inputs(cell: Cell) -> tuple[jax.Array, ...]:
        doubled = cell._replace(out_dim=2 * cell.out_dim)
        return tuple(getattr(doubled, name) for name in encoder.cell_inputs)

    def moments(params: Any, cell: Cell, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = encoder.apply({"params": params["encoder"]}, x, *encoder_inputs(cell))
        return split_moments(h, cell.out_dim, k_max)

    def encode(params: Any, cell: Cell, x: jax.Array) -> jax.Array:
        return moments(params, cell, x)[0]

    def log_likelihood(params: Any, cell: Cell, x: jax.Array, z: jax.Array) -> jax.Array:
        out = decoder.apply({"params": params["decoder"]}, z, cell.width, cell.out_dim)
        if likelihood == "bernoulli":
            # Targets outside [0, 1] (e.g. views with additive noise) would make the objective
            # unbounded above, so they are clipped; the encoder still sees the unclipped view.
            return bernoulli_log_likelihood(jnp.clip(x, 0.0, 1.0), out)
        return gaussian_log_likelihood(x, out, params["log_var_x"])

    def neg_elbo(params: Any, cell: Cell, x: jax.Array, key: jax.Array) -> jax.Array:
        """Mean negative ELBO per input of ``x`` ``[J, B, dim]`` (groups along axis 0)."""
        j, b = x.shape[:2]
        mask = unit_mask(cell.out_dim, k_max)
        mean, log_var = moments(params, cell, x.reshape(j * b, -1))
        # Latent unit u's noise depends on u alone, so padding the latent leaves it unchanged.
        eps = indexed_normal(key, (k_max, j * b)).T
        z = (mean + jnp.exp(0.5 * log_var) * eps) * mask
        log_lik = log_likelihood(params, cell, x.reshape(j * b, -1), z)
        if kind == "vae":
            return -jnp.mean(vae_elbo(log_lik, mean, log_var, mask))
        elbo = group_elbo(
            log_lik.reshape(j, b),
            z.reshape(j, b, k_max),
            log_var.reshape(j, b, k_max),
            mask,
            cell.prior_var,
        )
        return -jnp.sum(elbo) / (j * b)

    def tx(cell: Cell) -> optax.GradientTransformation:
        return make_tx(learning_rate=cell.lr, weight_decay=cell.weight_decay)

    def init(cell: Cell) -> TrainState:
        keys = cell_keys(cell.seed)
        k_encoder, k_decoder = jax.random.split(keys["init"])
        world = family.world(keys["world"], cell)
        x = jnp.zeros((1, family.dim), jnp.float32)
        z = jnp.zeros((1, k_max), jnp.float32)
        params = {
            "encoder": encoder.init(k_encoder, x, *encoder_inputs(cell))["params"],
            "decoder": decoder.init(k_decoder, z, cell.width, cell.out_dim)["params"],
        }
        if likelihood == "gaussian":
            params["log_var_x"] = jnp.zeros((), jnp.float32)
        pool = None
        if spec.pool_size is not None:
            pool = family.anchors(keys["pool"], world, cell, spec.pool_size)
        return TrainState(jnp.zeros((), jnp.int32), params, tx(cell).init(params), world, pool)

    def batch_at(state: TrainState, cell: Cell) -> tuple[jax.Array, jax.Array]:
        """Step ``state.step``'s groups ``[J, batch, dim]`` and its reparameterisation key."""
        key = jax.random.fold_in(cell_keys(cell.seed)["data"], state.step)
        k_anchor, k_views, k_noise = jax.random.split(key, 3)
        if state.pool is None:
            x = family.anchors(k_anchor, state.world, cell, spec.batch).x
        else:
            index = jax.random.randint(k_anchor, (spec.batch,), 0, spec.pool_size)
            x = state.pool.x[index]
        augment = lambda k: family.augment(k, state.world, cell, x)
        groups = jax.vmap(augment)(jax.random.split(k_views, views))
        chex.assert_shape(groups, (views, spec.batch, family.dim))
        return groups, k_noise

    def step(state: TrainState, cell: Cell) -> tuple[TrainState, jax.Array]:
        groups, k_noise = batch_at(state, cell)
        loss, grads = jax.value_and_grad(neg_elbo)(state.params, cell, groups, k_noise)
        return apply_gradients(state, tx(cell), grads), loss

    run = scan_windows(step, spec.log_every)

    def train(cell: Cell) -> tuple[TrainState, jax.Array]:
        return run(init(cell), cell, spec.steps)

    def eval_loss(state: TrainState, cell: Cell, pairs: Views) -> jax.Array:
        """Negative ELBO per input on held-out pairs: ``simvae`` takes each pair as a group of
        ``J = 2`` views, ``vae`` each view on its own."""
        key = jax.random.fold_in(cell_keys(cell.seed)["eval"], _EVAL_NOISE)
        x = jnp.stack([pairs.x1, pairs.x2])  # [2, n, dim]
        if kind == "vae":
            x = x.reshape(1, -1, family.dim)
        return neg_elbo(state.params, cell, x, key)

    return Trainer(spec=spec, init=init, run=run, encode=encode, train=train, eval_loss=eval_loss)
