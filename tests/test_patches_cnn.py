"""Tests of the ``patches`` data family and the masked ``cnn1d`` encoder.

The family is checked against a NumPy reading of its definition (codes, labels, one pattern patch
per row, views that keep it and re-draw the rest); the encoder against an unpadded network of the
cell's own width (outputs and one SGD step), exactly zero padded channels, and invariance to
cyclic shifts (and, for one-patch kernels, to any move of the pattern) that a fully connected
encoder does not have.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.config import ConfigError, SweepConfig
from clj.data import FAMILIES, Patches, make_family
from clj.data.patches import pattern_codes
from clj.encoders import ENCODERS, MaskedCNN1D, make_encoder
from clj.losses import spectral

P, L, N = 4, 6, 512


def _cell(**values):
    defaults = dict(
        seed=0,
        width=4,
        clusters=2,
        out_dim=2,
        lr=1e-3,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return jax.tree.map(lambda a: a[0], stack_cells([{**defaults, **values}]))


@functools.cache
def _draw_fn(family, n):
    @jax.jit
    def draw(key, cell):
        k_anchor, k_views = jax.random.split(key)
        world = family.world(jax.random.key(0), cell)
        anchors = family.anchors(k_anchor, world, cell, n)
        return anchors, family.views(k_views, world, cell, anchors)

    return draw


def _family(max_clusters=3, **options):
    return make_family("patches", P * L, max_clusters, patch_len=L, **options)


# ----------------------------------------------------------------------------- data


def test_registry_shape_and_codes():
    family = _family()
    assert FAMILIES["patches"] is Patches and isinstance(family, Patches)
    assert family.input_shape == (P, L) and family.num_patches == P
    assert family.num_fine_classes == 8 and family.num_coarse_classes == 2
    codes = np.asarray(pattern_codes(jnp.arange(8), jnp.int32(3), L))
    expected = np.array(
        [
            [1 if (v >> j) & 1 else -1 for j in range(3)] + [(-1) ** j for j in range(3, L)]
            for v in range(8)
        ]
    )
    np.testing.assert_array_equal(codes, expected)
    assert len({tuple(c) for c in codes}) == 8


def test_anchors_labels_and_one_pattern_patch():
    family = _family(noise=0.5)
    s = 2
    anchors, views = _draw_fn(family, N)(jax.random.key(1), _cell(clusters=s))
    chex.assert_shape(anchors.x, (N, P * L))
    chex.assert_shape([anchors.fine, anchors.coarse, views.fine], (N,))
    chex.assert_type([anchors.fine, anchors.coarse], jnp.int32)
    x = np.asarray(anchors.x).reshape(N, P, L)
    fine = np.asarray(anchors.fine)
    np.testing.assert_array_equal(np.asarray(anchors.coarse), fine & 1)
    counts = np.bincount(fine, minlength=2**s)
    assert len(counts) == 2**s and counts.min() > N / 2**s - 4.5 * np.sqrt(N / 2**s)
    # Exactly one patch is a ±1 code, and it is the code of the fine label.
    exact = np.all(np.abs(x) == 1.0, axis=-1)
    np.testing.assert_array_equal(exact.sum(axis=1), 1)
    position = exact.argmax(axis=1)
    np.testing.assert_array_equal(position, np.asarray(family.pattern_position(anchors.x)))
    bits = (fine[:, None] >> np.arange(s)) & 1
    np.testing.assert_array_equal(x[np.arange(N), position, :s], 2 * bits - 1)
    carrier = np.broadcast_to([(-1) ** j for j in range(s, L)], (N, L - s))
    np.testing.assert_array_equal(x[np.arange(N), position, s:], carrier)
    # Positions are uniform, noise patches are N(0, 0.5²).
    assert np.bincount(position, minlength=P).min() > N / P - 4.5 * np.sqrt(N / P)
    noise = x[~exact]
    np.testing.assert_allclose(noise.std(), 0.5, rtol=0.05)
    assert abs(noise.mean()) < 0.03


def test_views_keep_pattern_and_position_and_redraw_noise():
    family = _family(noise=0.5)
    anchors, views = _draw_fn(family, N)(jax.random.key(2), _cell(clusters=3))
    x = np.asarray(anchors.x).reshape(N, P, L)
    exact = np.all(np.abs(x) == 1.0, axis=-1)
    np.testing.assert_array_equal(views.fine, anchors.fine)
    for view in (views.x1, views.x2):
        v = np.asarray(view).reshape(N, P, L)
        np.testing.assert_array_equal(v[exact], x[exact])  # same pattern, same position
        np.testing.assert_array_equal(np.all(np.abs(v) == 1.0, axis=-1), exact)
        changed = v[~exact] - x[~exact]
        assert np.all(changed != 0)
        # Re-drawn, not perturbed: independent of the anchor's noise.
        assert abs(np.corrcoef(v[~exact].ravel(), x[~exact].ravel())[0, 1]) < 0.05
        np.testing.assert_allclose(v[~exact].std(), 0.5, rtol=0.05)
    assert not np.array_equal(views.x1, views.x2)


def test_padding_invariance_and_errors():
    """A cell's data does not depend on the padded ``max_clusters``; bad values are named."""
    cell = _cell(clusters=2)
    small = _draw_fn(_family(max_clusters=2), N)(jax.random.key(3), cell)
    big = _draw_fn(_family(max_clusters=3), N)(jax.random.key(3), cell)
    chex.assert_trees_all_equal(small, big)
    with pytest.raises(ValueError, match="dim=25"):
        make_family("patches", 25, 2, patch_len=L)
    with pytest.raises(ValueError, match="noise=0"):
        make_family("patches", 24, 2, noise=0.0)
    with pytest.raises(ValueError, match="patch_len=0"):
        make_family("patches", 24, 2, patch_len=0)
    with pytest.raises(ValueError, match="clusters=7"):
        _family().check_clusters(7)  # more bits than the patch holds
    with pytest.raises(ValueError, match="clusters=0"):
        _family().check_clusters(0)
    _family().check_clusters(L)
    with pytest.raises(ConfigError, match="dim=20"):
        SweepConfig(data="patches", dim=20, data_options={"patch_len": 8}, clusters=(2,))


# ----------------------------------------------------------------------------- encoder

W, K = 7, 5  # padded channels and output dimension


@functools.cache
def _apply_fn(model):
    """Jitted ``(x, width, out_dim, scale) -> (z, conv activations)`` at initial parameters
    plus ``scale`` × noise on every entry, padded ones included."""

    @jax.jit
    def forward(x, width, out_dim, scale):
        params = model.init(jax.random.key(5), x[:1], width, out_dim)["params"]
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.key(9), len(leaves))
        noisy = [
            p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)
        ]
        params = jax.tree.unflatten(tree, noisy)
        z, state = model.apply(
            {"params": params}, x, width, out_dim, capture_intermediates=True, mutable=True
        )
        inter = state["intermediates"]
        convs = [inter[f"conv_{i}"]["__call__"][0] for i in range(model.depth)]
        return z, convs

    return forward


def _x(n=64, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, P * L))


def test_masked_channels_are_zero():
    model = MaskedCNN1D(depth=2, max_width=W, max_out_dim=K, input_shape=(P, L), kernel=3)
    x = _x()
    for scale in (0.0, 0.5):  # padded weights perturbed too: the masks, not zeros, decide
        z, convs = _apply_fn(model)(x, 3, 2, scale)
        chex.assert_shape(z, (64, K))
        chex.assert_shape(convs, (64, P, W))
        assert np.all(np.asarray(z)[:, 2:] == 0) and np.count_nonzero(np.asarray(z)[:, :2])
        for h in convs:
            assert np.all(np.asarray(h)[..., 3:] == 0) and np.count_nonzero(np.asarray(h)[..., :3])


def test_padded_equals_unpadded_output_and_sgd_step():
    """Channels 48 of 64, out_dim 2 of 5, a 3-patch kernel: the same parameters, gradients, SGD
    step and outputs as the unpadded network, and exact zeros everywhere else; initial weights
    N(0, 2 / fan-in) with the true fan-in ``kernel · channels``."""
    width, out_dim, kernel = 48, 2, 3
    small = MaskedCNN1D(2, width, out_dim, (P, L), kernel)
    padded = MaskedCNN1D(2, 64, K, (P, L), kernel)
    x1, x2 = _x(seed=1), _x(seed=2)

    def init_step(model):
        params = model.init(jax.random.key(11), x1[:1], width, out_dim)["params"]

        def objective(p):
            z1 = model.apply({"params": p}, x1, width, out_dim)
            z2 = model.apply({"params": p}, x2, width, out_dim)
            return spectral(z1, z2) + jnp.sum(z1**2)

        grads = jax.grad(objective)(params)
        stepped = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
        return params, grads, stepped, model.apply({"params": stepped}, x1, width, out_dim)

    out_s, out_p = jax.jit(lambda: (init_step(small), init_step(padded)))()
    for tree_s, tree_p in zip(out_s[:3], out_p[:3], strict=True):
        assert jax.tree.structure(tree_s) == jax.tree.structure(tree_p)
        for a, b in zip(jax.tree.leaves(tree_s), jax.tree.leaves(tree_p), strict=True):
            block = np.asarray(b)[tuple(slice(0, n) for n in a.shape)]
            np.testing.assert_allclose(block, a, rtol=1e-5, atol=1e-6)
            # Everything outside the unpadded block is zero: weights, gradients, updates.
            rest = np.asarray(b).copy()
            rest[tuple(slice(0, n) for n in a.shape)] = 0
            assert np.all(rest == 0)
    np.testing.assert_allclose(np.asarray(out_p[3])[:, :out_dim], out_s[3], rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(out_s[1]["conv_0"]["kernel"])).max() > 0  # the step moved weights
    # He scale from the true fan-in (the padded fan-in 3 · 64 would give 0.102 for conv_1).
    for name, fan_in in (("conv_0", kernel * L), ("conv_1", kernel * width)):
        w = np.asarray(out_s[0][name]["kernel"])
        np.testing.assert_allclose(w.std(), np.sqrt(2 / fan_in), rtol=0.1, err_msg=name)
        assert abs(w.mean()) < 4 * np.sqrt(2 / fan_in / w.size)
        assert np.all(np.asarray(out_s[0][name]["bias"]) == 0)


def test_translation_invariance():
    """Cyclic shifts leave the CNN's output unchanged; a one-patch kernel ignores where the
    pattern is, while a 3-patch kernel, which sees the pattern's neighbours, does not (so the test
    can tell)."""
    family = _family()
    anchors, _ = _draw_fn(family, N)(jax.random.key(4), _cell(clusters=3))
    anchors = jax.tree.map(lambda a: a[:64], anchors)
    x = np.asarray(anchors.x).reshape(64, P, L)
    shifted = np.roll(x, 1, axis=1).reshape(64, P * L)
    # Move each row's pattern to position 0 by swapping it with the patch there (not a shift).
    position = np.asarray(family.pattern_position(anchors.x))
    moved = x.copy()
    rows = np.arange(64)
    moved[rows, position], moved[rows, 0] = x[rows, 0], x[rows, position]
    assert np.any(position != 0)
    moved = moved.reshape(64, P * L)
    flat = x.reshape(64, P * L)

    def outputs(model):
        forward = _apply_fn(model)
        return [np.asarray(forward(jnp.asarray(v), 5, 4, 0.3)[0]) for v in (flat, shifted, moved)]

    z, z_shift, z_moved = outputs(MaskedCNN1D(2, W, K, (P, L), kernel=3))
    np.testing.assert_allclose(z_shift, z, rtol=1e-5, atol=1e-6)
    assert np.abs(z_moved - z).max() > 1e-3  # a 3-patch kernel sees the pattern's neighbours
    z, z_shift, z_moved = outputs(MaskedCNN1D(2, W, K, (P, L), kernel=1))
    np.testing.assert_allclose(z_shift, z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z_moved, z, rtol=1e-5, atol=1e-6)


def test_encoder_registry():
    assert "cnn1d" in ENCODERS
    model = make_encoder("cnn1d", 2, 8, 4, (P, L))
    assert isinstance(model, MaskedCNN1D)
    assert model.input_shape == (P, L) and model.kernel == 1
    assert model.cell_inputs == ("width", "out_dim")
    with pytest.raises(ValueError, match=r"input_shape=\(24,\)"):
        make_encoder("cnn1d", 2, 8, 4, (24,))
