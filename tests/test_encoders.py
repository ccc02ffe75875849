"""Tests of the masked encoders: padded units are inert, and a padded cell trains like its own net.

A cell of hidden width ``w`` and output dimension ``k`` runs inside arrays padded to ``W ≥ w`` and
``K ≥ k``. The padding must be invisible: zero activations and gradients, zero (and staying zero)
weights, the same initial weights as the unpadded network, and the same training trajectory.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.data import make_family
from clj.encoders import ENCODERS, dense_product, make_encoder, unit_mask
from clj.losses import spectral
from clj.spec import Spec
from clj.train import make_train

DIM, BATCH = 6, 8


def _inputs(seed=0, n=BATCH, dim=DIM):
    return jax.random.normal(jax.random.key(seed), (n, dim))


@functools.cache
def _jitted_init(model, dim):
    dummy = jnp.zeros((1, dim))
    return jax.jit(lambda key, width, out_dim: model.init(key, dummy, width, out_dim)["params"])


def _init(model, width, out_dim, seed=0, dim=DIM):
    """The model's initial parameters (jitted: eager Flax init dispatches op by op, slowly)."""
    return _jitted_init(model, dim)(jax.random.key(seed), width, out_dim)


def _active(params, depth, width, out_dim):
    """0/1 trees like ``params``: 1 on the entries an unpadded network of this size has."""
    w_max = params["out"]["kernel"].shape[0]
    k_max = params["out"]["kernel"].shape[1]
    hidden = (np.arange(w_max) < width).astype(np.float32)
    out = (np.arange(k_max) < out_dim).astype(np.float32)
    mask = {}
    for layer in range(depth):
        name = f"hidden_{layer}"
        fan_in = np.ones(params[name]["kernel"].shape[0]) if layer == 0 else hidden
        mask[name] = {"kernel": np.outer(fan_in, hidden), "bias": hidden}
    last_in = hidden if depth else np.ones(params["out"]["kernel"].shape[0])
    mask["out"] = {"kernel": np.outer(last_in, out), "bias": out}
    return mask


def _assert_zero_outside(tree, mask):
    for (path, leaf), m in zip(
        jax.tree_util.tree_leaves_with_path(tree), jax.tree.leaves(mask), strict=True
    ):
        chex.assert_equal_shape([leaf, m])
        outside = np.asarray(leaf)[np.asarray(m) == 0]
        assert np.all(outside == 0), (jax.tree_util.keystr(path), np.abs(outside).max())


def _active_block(leaf, shape):
    return np.asarray(leaf)[tuple(slice(0, n) for n in shape)]


# ----------------------------------------------------------------------------- forward, backward


def _perturb(params, scale, seed=99):
    """``params`` plus ``scale`` × noise on every entry, padded ones included."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, noisy)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_masked_units_have_zero_activation(depth):
    """Masked units are exactly zero for any parameters, not just because they start at zero."""
    W, K = 9, 5
    model = make_encoder("mlp", depth, W, K)

    @jax.jit
    def forward(width, out_dim, x, scale):
        params = _perturb(_init(model, width, out_dim), scale)
        z, state = model.apply(
            {"params": params}, x, width, out_dim, capture_intermediates=True, mutable=True
        )
        inter = state["intermediates"]
        hidden = [inter[f"hidden_{i}"]["__call__"][0] for i in range(depth)]
        return z, hidden

    x = _inputs()
    for width, out_dim in [(1, 1), (4, 3), (W, K)]:
        for scale in (0.0, 0.5):
            z, hidden = forward(width, out_dim, x, scale)
            chex.assert_shape(z, (BATCH, K))
            chex.assert_shape(hidden, (BATCH, W))
            assert np.all(np.asarray(z)[:, out_dim:] == 0)
            assert np.count_nonzero(np.asarray(z)[:, :out_dim]) > 0
            for h in hidden:
                assert np.all(np.asarray(h)[:, width:] == 0)
                assert np.count_nonzero(np.asarray(h)[:, :width]) > 0


@pytest.mark.parametrize(("name", "depth"), [("mlp", 2), ("mlp", 1), ("linear", 3)])
def test_masked_parameters_get_zero_gradient(name, depth):
    """Also for an objective that would pull zero outputs away from zero, and at parameters whose
    padded entries are not zero: the masks, not the losses' structure, stop the gradient."""
    W, K, width, out_dim = 10, 6, 3, 2
    model = make_encoder(name, depth, W, K)
    depth = depth if name == "mlp" else 0
    params = _init(model, width, out_dim)
    mask = _active(params, depth, width, out_dim)
    _assert_zero_outside(params, mask)
    x1, x2 = _inputs(1), _inputs(1) + 0.1 * _inputs(2)

    def objective(p):
        z1 = model.apply({"params": p}, x1, width, out_dim)
        z2 = model.apply({"params": p}, x2, width, out_dim)
        return spectral(z1, z2) + jnp.sum((z1 + 1.0) ** 2)

    grad = jax.jit(jax.grad(objective))
    for point in (params, _perturb(params, 0.3)):
        grads = grad(point)
        _assert_zero_outside(grads, mask)
        for leaf, m in zip(jax.tree.leaves(grads), jax.tree.leaves(mask), strict=True):
            assert np.count_nonzero(np.asarray(leaf)[m == 1]) > 0  # the active block does learn


# ----------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize(("name", "depth"), [("mlp", 2), ("linear", 0)])
def test_initial_weights_match_unpadded_network(name, depth):
    width, out_dim = 4, 3
    small = _init(make_encoder(name, depth, width, out_dim), width, out_dim, seed=7)
    padded = _init(make_encoder(name, depth, 11, 8), width, out_dim, seed=7)
    assert jax.tree.structure(small) == jax.tree.structure(padded)
    for a, b in zip(jax.tree.leaves(small), jax.tree.leaves(padded), strict=True):
        np.testing.assert_array_equal(_active_block(b, a.shape), a)
    _assert_zero_outside(padded, _active(padded, depth if name == "mlp" else 0, width, out_dim))
    for layer in small.values():
        assert np.all(np.asarray(layer["bias"]) == 0)
    # Another seed gives other weights.
    other = _init(make_encoder(name, depth, width, out_dim), width, out_dim, seed=8)
    assert not np.array_equal(other["out"]["kernel"], small["out"]["kernel"])


def test_initial_scale_uses_true_fan_in():
    """He (gain √2) for hidden layers, LeCun (gain 1) for the output; fan-in = the true width."""
    dim, width, w_max, out_dim, k_max = 64, 128, 256, 32, 48
    params = _init(make_encoder("mlp", 2, w_max, k_max), width, out_dim, dim=dim)
    blocks = {
        "hidden_0": ((dim, width), np.sqrt(2 / dim)),
        "hidden_1": ((width, width), np.sqrt(2 / width)),  # padded fan-in 256 would give 0.088
        "out": ((width, out_dim), np.sqrt(1 / width)),
    }
    for name, (shape, std) in blocks.items():
        w = _active_block(params[name]["kernel"], shape)
        assert abs(w.mean()) < 4 * std / np.sqrt(w.size), name
        np.testing.assert_allclose(w.std(), std, rtol=0.05, err_msg=name)
    linear = _init(make_encoder("linear", 0, 1, k_max), 1, out_dim, dim=dim)
    w = _active_block(linear["out"]["kernel"], (dim, out_dim))
    np.testing.assert_allclose(w.std(), np.sqrt(1 / dim), rtol=0.05)


def test_encoder_registry_and_errors():
    assert {"mlp", "linear"} <= set(ENCODERS)
    with pytest.raises(ValueError, match="'resnet'"):
        make_encoder("resnet", 1, 4, 2)
    np.testing.assert_array_equal(unit_mask(3, 5), [1, 1, 1, 0, 0])
    chex.assert_type(unit_mask(0, 2), jnp.float32)


# ----------------------------------------------------------------------------- training


def _cell(**values):
    defaults = dict(
        seed=3,
        width=5,
        clusters=3,
        out_dim=3,
        lr=1e-2,
        weight_decay=0.05,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return {**defaults, **values}


OPTIMIZER_LR = {"adam": 1e-2, "adamw": 1e-2, "sgd": 1e-2}


@pytest.mark.parametrize("loss", ["spectral", "info_nce"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
def test_padded_cell_trains_like_unpadded_network(optimizer, loss):
    """Width 8 in 16, out_dim 3 in 5, clusters 3 in 5, vmapped beside a full-size cell, against the
    unpadded network: same loss curve and active parameters, padded parameters stay zero.

    Padding changes float rounding only, so the trajectories agree to ~1e-6 unless the problem
    itself is ill-conditioned. Very narrow ReLU nets are: with width ~5, an input on which every
    first-layer unit is dead feeds the second layer a pre-activation equal to its bias, whose
    sign after a step can be rounding noise, and with InfoNCE's 1/‖z‖ that forks the trajectory
    (with or without padding: compiling the same unpadded program differently forks it too).
    Width 8 keeps this test on the well-conditioned side.
    """
    w, k, c, W, K, C = 8, 3, 3, 16, 5, 5
    lr = OPTIMIZER_LR[optimizer]
    common = dict(
        depth=2, loss=loss, optimizer=optimizer, batch=16, steps=30, log_every=5, eval_size=32
    )
    small = Spec(
        family=make_family("gaussian_mixture", DIM, c), max_width=w, max_out_dim=k, **common
    )
    padded = Spec(
        family=make_family("gaussian_mixture", DIM, C), max_width=W, max_out_dim=K, **common
    )

    cell = _cell(width=w, out_dim=k, clusters=c, lr=lr)
    neighbour = _cell(seed=4, width=W, out_dim=K, clusters=C, lr=lr)
    grid = stack_cells([cell, neighbour])
    state_p, curve_p = jax.jit(jax.vmap(make_train(padded).train))(grid)
    trainer_s = make_train(small)
    init_s, (state_s, curve_s) = jax.jit(
        lambda cell: (trainer_s.init(cell), trainer_s.train(cell))
    )(jax.tree.map(lambda a: a[0], grid))

    chex.assert_shape(curve_p, (2, padded.curve_length))
    chex.assert_tree_all_finite((curve_p, curve_s))
    np.testing.assert_allclose(curve_p[0], curve_s, rtol=1e-5, atol=1e-6)
    params_p = jax.tree.map(lambda a: a[0], state_p.params)
    for a, b in zip(jax.tree.leaves(state_s.params), jax.tree.leaves(params_p), strict=True):
        np.testing.assert_allclose(_active_block(b, a.shape), a, rtol=1e-5, atol=1e-5)
    _assert_zero_outside(params_p, _active(params_p, 2, w, k))
    # Training moved the weights (so the comparison above is not of two near-initial networks).
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), state_s.params, init_s.params)
    assert min(jax.tree.leaves(moved)) > 1e-3, moved


@pytest.mark.parametrize("n_in, n_out", [(40, 5), (5, 40), (16, 16)])
def test_dense_product_derivatives_are_those_of_a_plain_product(n_in, n_out):
    """Values, gradients (both operands), forward-mode derivatives and second derivatives of
    ``dense_product`` equal those of ``x @ kernel``, under ``vmap`` over cells."""
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (3, 64, n_in))
    kernel = jax.random.normal(keys[1], (3, n_in, n_out))
    g = jax.random.normal(keys[2], (3, 64, n_out))

    def loss(product):
        return lambda k, x: jnp.sum(jax.vmap(product)(x, k) * g)

    ours, plain = loss(dense_product), loss(jnp.matmul)
    np.testing.assert_allclose(jax.vmap(dense_product)(x, kernel), x @ kernel, rtol=1e-6, atol=1e-5)
    ours_grads, plain_grads = jax.grad(ours, (0, 1))(kernel, x), jax.grad(plain, (0, 1))(kernel, x)
    for a, b in zip(ours_grads, plain_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    tangent = jax.random.normal(keys[0], kernel.shape)
    np.testing.assert_allclose(
        jax.jvp(lambda k: ours(k, x), (kernel,), (tangent,))[1],
        jax.jvp(lambda k: plain(k, x), (kernel,), (tangent,))[1],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jax.hessian(lambda k: ours(k[:1], x[:1]))(kernel[:1]),
        jax.hessian(lambda k: plain(k[:1], x[:1]))(kernel[:1]),
        atol=1e-6,
    )


def test_dense_product_kernel_gradient_is_output_major_on_cpu():
    """On a CPU the kernel gradient of a layer with fewer outputs than inputs is one product of
    shape ``[cells, n_out, n_in]`` (the output-major form XLA runs fast), and the input (which
    needs no gradient here) costs no product at all."""
    if jax.default_backend() != "cpu":
        pytest.skip("the output-major kernel gradient is CPU-only")
    x = jax.ShapeDtypeStruct((4, 512, 256), jnp.float32)
    kernel = jax.ShapeDtypeStruct((4, 256, 8), jnp.float32)
    grad = jax.jit(jax.grad(lambda k, x: jnp.sum(jax.vmap(dense_product)(x, k) ** 2)))
    hlo = grad.lower(kernel, x).compile().as_text()
    products = [line for line in hlo.splitlines() if " dot(" in line]
    assert len(products) == 2, products  # the forward product and the kernel gradient
    assert sum("f32[4,8,256]" in line for line in products) == 1, products


def test_an_existing_parameter_is_returned_without_tracing_its_initialiser(monkeypatch):
    """Applying a layer whose parameters exist never calls their initialisers (Flax's own
    ``param`` traces each again to check its shape); a parameter of the wrong shape is named."""
    from clj.encoders import mlp

    layer = mlp.MaskedDense(5)
    x, in_mask, out_mask = jnp.ones((3, 4)), jnp.ones(4), unit_mask(3, 5)
    params = layer.init(jax.random.key(0), x, in_mask, out_mask)
    calls = []
    monkeypatch.setattr(mlp, "indexed_normal", lambda *a: calls.append(a))
    out = layer.apply(params, x, in_mask, out_mask)
    chex.assert_shape(out, (3, 5))
    assert calls == []
    wrong = {"params": {**params["params"], "kernel": jnp.zeros((4, 6))}}
    with pytest.raises(
        ValueError, match=r"parameter 'kernel' has shape \(4, 6\), expected \(4, 5\)"
    ):
        layer.apply(wrong, x, in_mask, out_mask)
