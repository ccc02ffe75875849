"""SimVAE and VAE: ELBO terms against NumPy/SciPy, the J = 1 reduction, masking, training."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from clj.cell import stack_cells
from clj.config import ConfigError, SweepConfig
from clj.data import make_family
from clj.data.base import Views
from clj.models import simvae as sv
from clj.spec import Spec
from clj.train import OBJECTIVES, make_train

RNG = np.random.default_rng(0)


def _base(**values):
    base = dict(seed=0, width=8, clusters=3, out_dim=3, lr=3e-3, weight_decay=0.0)
    return base | dict(temperature=0.5, dof=5.0, lam=1.0) | values


def _cell(**values):
    return stack_cells([_base(**values)])


def _one(cells, i=0):
    return jax.tree.map(lambda a: a[i], cells)


# -- the ELBO's terms ---------------------------------------------------------------------------
def test_gaussian_terms_match_scipy():
    k, active = 5, 3
    mask = (np.arange(k) < active).astype(np.float32)
    mean = RNG.normal(size=(4, k)).astype(np.float32)
    log_var = RNG.normal(size=(4, k)).astype(np.float32)
    z = RNG.normal(size=(4, k)).astype(np.float32)
    sd = np.exp(0.5 * log_var[:, :active])
    ref_entropy = stats.norm(scale=sd).entropy().sum(-1)
    ref_log_n = stats.norm(mean[:, :active], math.sqrt(0.3)).logpdf(z[:, :active]).sum(-1)
    np.testing.assert_allclose(sv.gaussian_entropy(log_var, mask), ref_entropy, rtol=1e-5)
    np.testing.assert_allclose(sv.log_normal(z, mean, 0.3, mask), ref_log_n, rtol=1e-5)

    x, recon = RNG.normal(size=(4, 7)), RNG.normal(size=(4, 7))
    ref = stats.norm(recon, math.exp(0.5 * -0.7)).logpdf(x).sum(-1)
    got = sv.gaussian_log_likelihood(jnp.asarray(x), jnp.asarray(recon), jnp.float32(-0.7))
    np.testing.assert_allclose(got, ref, rtol=1e-5)

    pixels, logits = RNG.uniform(size=(4, 7)), RNG.normal(size=(4, 7)) * 3
    p = 1 / (1 + np.exp(-logits))
    ref = (pixels * np.log(p) + (1 - pixels) * np.log(1 - p)).sum(-1)
    got = sv.bernoulli_log_likelihood(jnp.asarray(pixels), jnp.asarray(logits))
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_kl_matches_numerical_integration():
    mean, log_var = np.float32([[0.7, -1.2]]), np.float32([[-0.5, 0.8]])
    ref = 0.0
    for m, lv in zip(mean[0], log_var[0], strict=True):
        q = stats.norm(m, math.exp(0.5 * lv))
        ref += integrate.quad(
            lambda t, q=q: q.pdf(t) * (q.logpdf(t) - stats.norm.logpdf(t)), -20, 20
        )[0]
    got = sv.kl_to_standard_normal(mean, log_var, np.float32([1.0, 1.0]))
    np.testing.assert_allclose(got, [ref], rtol=1e-5)


def _numpy_group_elbo(log_lik, z, log_var, active, prior_var):
    """DESIGN.md's per-group objective, view by view, with SciPy densities."""
    j, b, _ = z.shape
    out = np.zeros(b)
    for i in range(b):
        z_bar = z[:, i, :active].mean(0)
        total = stats.multivariate_normal(np.zeros(active)).logpdf(z_bar)
        for v in range(j):
            cov = np.diag(np.exp(log_var[v, i, :active]))
            entropy = stats.multivariate_normal(np.zeros(active), cov).entropy()
            tie = stats.multivariate_normal(z_bar, prior_var * np.eye(active)).logpdf(
                z[v, i, :active]
            )
            total += log_lik[v, i] + entropy + tie
        out[i] = total
    return out


def test_group_elbo_matches_numpy_reference():
    j, b, k, active, prior_var = 3, 4, 6, 4, 0.25
    mask = (np.arange(k) < active).astype(np.float32)
    log_lik = RNG.normal(size=(j, b)).astype(np.float32) * 10
    z = (RNG.normal(size=(j, b, k)) * mask).astype(np.float32)
    log_var = (RNG.normal(size=(j, b, k)) * 0.5).astype(np.float32)
    got = sv.group_elbo(log_lik, z, log_var, mask, prior_var)
    assert got.shape == (b,)
    ref = _numpy_group_elbo(log_lik, z, log_var, active, prior_var)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # Masked units contribute nothing, whatever their values.
    junk = np.where(mask > 0, 0.0, 5.0).astype(np.float32)
    np.testing.assert_allclose(
        sv.group_elbo(log_lik, z + junk, log_var + junk, mask, prior_var), got, rtol=1e-6
    )


def test_one_view_with_standard_prior_is_the_vae_elbo_plus_a_constant():
    b, k, active, prior_var = 3, 4, 3, 0.4
    mask = (np.arange(k) < active).astype(np.float32)
    mean = (RNG.normal(size=(b, k)) * mask).astype(np.float32)
    log_var = (RNG.normal(size=(b, k)) * 0.3 * mask).astype(np.float32)
    log_lik = RNG.normal(size=(b,)).astype(np.float32)
    constant = -0.5 * active * math.log(2 * math.pi * prior_var)

    n = 20000
    eps = RNG.normal(size=(n, 1, b, k)).astype(np.float32)
    z = (mean + np.exp(0.5 * log_var) * eps) * mask  # [n, 1, b, k]
    per_sample = jax.vmap(
        lambda zz: sv.group_elbo(log_lik[None], zz, log_var[None], mask, prior_var)
    )
    simvae = np.asarray(per_sample(z))  # [n, b]
    # Exactly: log-likelihood + entropy + log N(z; 0, I) + constant, sample by sample.
    exact = log_lik + sv.gaussian_entropy(log_var, mask) + sv.log_normal(z[:, 0], 0.0, 1.0, mask)
    np.testing.assert_allclose(simvae, np.asarray(exact) + constant, rtol=1e-5, atol=1e-4)
    # In expectation: the VAE ELBO (closed-form KL) plus the constant.
    vae = np.asarray(sv.vae_elbo(log_lik, mean, log_var, mask))
    stderr = simvae.std(0) / math.sqrt(n)
    np.testing.assert_array_less(np.abs(simvae.mean(0) - (vae + constant)), 5 * stderr + 1e-4)


def test_split_moments_takes_the_first_2k_outputs():
    k_max, k = 4, 3
    h = np.zeros((2, 2 * k_max), np.float32)
    h[:, : 2 * k] = RNG.normal(size=(2, 2 * k))
    mean, log_var = sv.split_moments(jnp.asarray(h), jnp.int32(k), k_max)
    np.testing.assert_array_equal(mean[:, :k], h[:, :k])
    np.testing.assert_array_equal(log_var[:, :k], h[:, k : 2 * k])
    assert not np.any(mean[:, k:]) and not np.any(log_var[:, k:])


# -- the trainer --------------------------------------------------------------------------------
def test_objectives_are_registered_and_unknown_ones_rejected():
    for name in ("vae", "simvae", "vae_bernoulli", "simvae_bernoulli"):
        assert OBJECTIVES[name] == "clj.models.simvae"
    spec = Spec(family=make_family("gaussian_mixture", 4, 2), loss="simvae_poisson")
    with pytest.raises(ValueError, match="simvae_poisson"):
        sv.make_trainer(spec)
    with pytest.raises(ConfigError, match=r"prior_var: -1\.0"):
        SweepConfig(loss="simvae", prior_var=(-1.0,))
    with pytest.raises(ConfigError, match="views: 0"):
        SweepConfig(loss="simvae", views=0)


def test_padded_cell_has_the_elbo_of_the_unpadded_network():
    family = make_family("gaussian_mixture", 6, 3)
    cell = _one(_cell(out_dim=2, width=5))
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(size=(2, 8, 6)), jnp.float32)  # Bernoulli targets in [0, 1]
    pairs = Views(x[0], x[1], 0, 0)
    values = {}
    for k_max, w_max in ((2, 5), (4, 9)):
        spec = Spec(family=family, loss="vae_bernoulli", max_width=w_max, max_out_dim=k_max)
        trainer = make_train(spec)

        def loss_and_features(cell, trainer=trainer):
            state = trainer.init(cell)
            return trainer.eval_loss(state, cell, pairs), trainer.encode(state.params, cell, x[0])

        loss, z = jax.jit(loss_and_features)(cell)
        values[k_max] = float(loss)
        assert z.shape == (8, k_max) and not np.any(z[:, 2:]) and np.all(np.any(z[:, :2], 0))
    assert values[4] == pytest.approx(values[2], rel=1e-5)


def test_training_increases_the_elbo_and_masked_units_stay_zero():
    # Whole grids of these objectives run through clj.sweep in tests/test_reproduce_simvae_style.py.
    family = make_family("gaussian_mixture", 8, 3, spread=0.3)
    spec = Spec(
        family=family,
        loss="simvae",
        max_width=16,
        max_out_dim=4,
        batch=32,
        steps=200,
        log_every=20,
        views=3,
    )
    trainer = make_train(spec)
    grid = [(k, v) for k in (2, 4) for v in (0.1, 1.0)]
    cells = stack_cells([_base(width=16, out_dim=k, prior_var=v, lr=3e-3) for k, v in grid])
    states, curves = jax.jit(jax.vmap(trainer.train))(cells)
    curves = np.asarray(curves)
    assert curves.shape == (4, 10) and np.isfinite(curves).all()
    # The loss (negative ELBO per view, on fresh samples each step) falls well below its start.
    assert np.all(curves[:, -1] < curves[:, 0] - 1.0)
    # A different group-prior variance gives a different result.
    assert np.all(np.abs(curves[0::2, -1] - curves[1::2, -1]) > 1e-3)
    # Masked latent units: their decoder rows and encoder columns are still exactly zero.
    for i, (k, _) in enumerate(grid):
        decoder_in = np.asarray(states.params["decoder"]["hidden_0"]["kernel"][i])
        encoder_out = np.asarray(states.params["encoder"]["out"]["kernel"][i])
        assert not np.any(decoder_in[k:]) and np.any(decoder_in[:k])
        assert not np.any(encoder_out[:, 2 * k :]) and np.any(encoder_out[:, : 2 * k])
    z = jax.vmap(trainer.encode, in_axes=(0, 0, None))(states.params, cells, np.ones((5, 8)))
    assert not np.any(np.asarray(z)[:2, :, 2:])
