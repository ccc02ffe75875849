"""Tests of the masked 2-D CNN encoder: its convolution against NumPy, padding that is invisible
(outputs, gradients, initial weights), the registry, and training on digits."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.data import make_family
from clj.encoders import ENCODER_DESCRIPTIONS, ENCODERS, MaskedCNN2D, make_encoder
from clj.encoders.cnn2d import conv2d_same
from clj.spec import Spec
from clj.train import make_train

SHAPE = (6, 5, 2)  # H, W, C
DIM = 6 * 5 * 2


def _np_conv(h, kernel):
    """Reference: zero-padded stride-1 cross-correlation, one output value at a time."""
    n, height, width, _ = h.shape
    size = kernel.shape[0]
    p = size // 2
    padded = np.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))
    out = np.zeros((n, height, width, kernel.shape[-1]))
    for r in range(height):
        for c in range(width):
            window = padded[:, r : r + size, c : c + size, :]  # [n, s, s, c_in]
            out[:, r, c] = np.einsum("nijc,ijcf->nf", window, kernel)
    return out


@pytest.mark.parametrize("size", [1, 3])
def test_conv_matches_numpy_by_both_methods(size):
    rng = np.random.default_rng(0)
    h = rng.normal(size=(3, *SHAPE)).astype(np.float32)
    kernel = rng.normal(size=(size, size, 2, 4)).astype(np.float32)
    expected = _np_conv(h, kernel)
    for method in ("im2col", "xla"):
        got = jax.jit(conv2d_same, static_argnums=2)(h, kernel, method)
        chex.assert_shape(got, (3, 6, 5, 4))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=method)
    with pytest.raises(ValueError, match="'fft'"):
        conv2d_same(h, kernel, "fft")


def _model(depth, max_width, max_out_dim):
    return MaskedCNN2D(depth=depth, max_width=max_width, max_out_dim=max_out_dim, input_shape=SHAPE)


@functools.cache
def _init_fn(model):
    dummy = jnp.zeros((1, DIM))
    return jax.jit(lambda key, width, out_dim: model.init(key, dummy, width, out_dim)["params"])


def _slice_like(padded, small):
    """The block of each ``padded`` leaf that an unpadded network of ``small``'s shapes has."""
    return jax.tree.map(
        lambda p, s: np.asarray(p)[tuple(slice(0, n) for n in s.shape)], padded, small
    )


def _perturb(params, scale=0.1, seed=7):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, noisy)


def test_padded_equals_unpadded_outputs_and_gradients():
    """Width 3 of 7 and out_dim 2 of 5 against the network built at width 3 and out_dim 2."""
    depth, width, out_dim = 2, 3, 2
    big, small = _model(depth, 7, 5), _model(depth, width, out_dim)
    key = jax.random.key(4)
    p_big = _init_fn(big)(key, width, out_dim)
    p_small = _init_fn(small)(key, width, out_dim)
    # Same initial weights in the active block, zeros elsewhere.
    chex.assert_trees_all_equal(_slice_like(p_big, p_small), jax.tree.map(np.asarray, p_small))
    kernel = np.asarray(p_big["conv_1"]["kernel"])
    assert np.all(kernel[:, :, width:] == 0) and np.all(kernel[..., width:] == 0)

    # Trained-looking parameters: every entry, padded ones included, perturbed.
    p_big = _perturb(p_big)
    p_small = jax.tree.map(jnp.asarray, _slice_like(p_big, p_small))
    x = jax.random.uniform(jax.random.key(5), (4, DIM))

    def loss(model, params, w, k):
        z = model.apply({"params": params}, x, w, k)
        return jnp.sum(jnp.sin(z) * jnp.arange(1, z.shape[1] + 1)), z

    (l_big, z_big), g_big = jax.jit(jax.value_and_grad(functools.partial(loss, big), has_aux=True))(
        p_big, width, out_dim
    )
    (l_small, z_small), g_small = jax.jit(
        jax.value_and_grad(functools.partial(loss, small), has_aux=True)
    )(p_small, width, out_dim)
    chex.assert_shape(z_big, (4, 5))
    np.testing.assert_allclose(z_big[:, :out_dim], z_small, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(z_big[:, out_dim:]) == 0)
    np.testing.assert_allclose(l_big, l_small, rtol=1e-5)
    chex.assert_trees_all_close(_slice_like(g_big, g_small), g_small, rtol=1e-4, atol=1e-6)
    # Every padded parameter gets exactly zero gradient.
    for (path, g), active in zip(
        jax.tree_util.tree_leaves_with_path(g_big),
        jax.tree.leaves(_slice_like(g_big, g_small)),
        strict=True,
    ):
        g = np.asarray(g).copy()
        g[tuple(slice(0, n) for n in active.shape)] = 0
        assert np.all(g == 0), jax.tree_util.keystr(path)


def test_masked_channels_are_exactly_zero():
    model = _model(2, 7, 5)  # as in the test above, so that its compiled init is reused
    params = _perturb(_init_fn(model)(jax.random.key(4), 3, 2), scale=0.5)
    x = jax.random.uniform(jax.random.key(1), (3, DIM))
    _, state = jax.jit(lambda p: model.apply({"params": p}, x, 3, 2, capture_intermediates=True))(
        params
    )
    for layer in ("conv_0", "conv_1"):
        h = np.asarray(state["intermediates"][layer]["__call__"][0])
        chex.assert_shape(h, (3, 6, 5, 7))
        assert np.all(h[..., 3:] == 0) and np.any(h[..., :3] != 0), layer


def test_initial_scale_uses_true_fan_in():
    model = MaskedCNN2D(depth=2, max_width=64, max_out_dim=2, input_shape=(4, 4, 3))
    params = jax.jit(lambda key: model.init(key, jnp.zeros((1, 48)), 40, 2)["params"])(
        jax.random.key(0)
    )
    first = np.asarray(params["conv_0"]["kernel"])[..., :40]
    np.testing.assert_allclose(first.std(), np.sqrt(2 / (9 * 3)), rtol=0.05)
    second = np.asarray(params["conv_1"]["kernel"])[:, :, :40, :40]
    np.testing.assert_allclose(second.std(), np.sqrt(2 / (9 * 40)), rtol=0.05)
    out = np.asarray(params["out"]["kernel"])[:40, :2]
    assert 0.5 / np.sqrt(40) < out.std() < 1.5 / np.sqrt(40)


def test_registry_and_errors():
    assert "cnn2d" in ENCODERS and "cnn2d" in ENCODER_DESCRIPTIONS
    model = make_encoder("cnn2d", 2, 8, 4, (8, 8, 1))
    assert isinstance(model, MaskedCNN2D) and model.input_shape == (8, 8, 1)
    assert model.cell_inputs == ("width", "out_dim")
    with pytest.raises(ValueError, match=r"cnn2d needs image inputs.*input_shape=\(32,\)"):
        make_encoder("cnn2d", 2, 8, 4, (32,))


def _cells(*widths):
    base = dict(
        seed=1,
        clusters=4,
        out_dim=3,
        lr=1e-2,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return stack_cells([{**base, "width": w} for w in widths])


def test_trains_on_digits():
    """A width-3 cell padded to 5, vmapped beside a width-5 cell, trains a few steps; its padded
    kernels stay zero (the padded-equals-unpadded test above covers the rest)."""
    family = make_family("digits", 64, 4)
    spec = Spec(
        family=family,
        encoder="cnn2d",
        depth=1,
        max_width=5,
        max_out_dim=3,
        loss="info_nce",
        batch=16,
        steps=4,
        log_every=2,
    )
    state, curve = jax.jit(jax.vmap(make_train(spec).train))(_cells(3, 5))
    chex.assert_shape(curve, (2, 2))
    chex.assert_tree_all_finite(curve)
    kernel = np.asarray(state.params["conv_0"]["kernel"])  # [cells, 3, 3, 1, 5]
    assert np.all(kernel[0, ..., 3:] == 0) and np.any(kernel[1, ..., 3:] != 0)
    assert not np.array_equal(curve[0], curve[1])
