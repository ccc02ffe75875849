"""Tests of the lipschitz_regions family and the Lipschitz-capped MLP encoder."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.cli import main
from clj.config import ConfigError, SweepConfig
from clj.data import LipschitzRegions, make_family
from clj.data.lipschitz_regions import uniform_ball
from clj.encoders import LipschitzMLP, MaskedMLP, capped_kernel, make_encoder, spectral_norm_bound


def _cell(**values):
    defaults = dict(
        seed=0, width=4, clusters=8, out_dim=2, lr=1e-3, weight_decay=0.0, temperature=0.5
    )
    defaults |= dict(dof=5.0, lam=1.0)
    return jax.tree.map(lambda a: a[0], stack_cells([{**defaults, **values}]))


def _pairwise(a, b):
    return np.sqrt(np.maximum(np.sum((a[:, None, :] - b[None, :, :]) ** 2, -1), 0.0))


# ----------------------------------------------------------------------------- data family


def test_cell_lipschitz_defaults_to_uncapped():
    assert math.isinf(float(_cell().lipschitz))
    assert float(_cell(lipschitz=2.5).lipschitz) == 2.5


def test_regions_geometry_labels_and_augmentation():
    """Labels are pure; sub-clusters are closer than regions; views never cross half a gap."""
    family = make_family(
        "lipschitz_regions", 20, 12, regions=3, region_radius=3.0, sub_radius=0.6, spread=0.15
    )
    cell = _cell(clusters=12, seed=4)

    @jax.jit
    def draw(key):
        k_world, k_anchor, k_view = jax.random.split(key, 3)
        world = family.world(k_world, cell)
        anchors = family.anchors(k_anchor, world, cell, 600)
        return world, anchors, family.views(k_view, world, cell, anchors)

    world, anchors, views = draw(jax.random.key(0))
    centres, region = np.asarray(world.centres), np.asarray(world.region)
    x, fine, coarse = np.asarray(anchors.x), np.asarray(anchors.fine), np.asarray(anchors.coarse)
    chex.assert_shape(world.centres, (12, 20))
    chex.assert_shape([anchors.fine, anchors.coarse], (600,))

    # Centre distances: a·√2 within a region, √(2R² + 2a²) across regions.
    np.testing.assert_array_equal(region, np.arange(12) % 3)
    d = _pairwise(centres, centres)
    same = (region[:, None] == region[None, :]) & ~np.eye(12, dtype=bool)
    other = region[:, None] != region[None, :]
    np.testing.assert_allclose(d[same], 0.6 * math.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(d[other], math.sqrt(2 * 3.0**2 + 2 * 0.6**2), rtol=1e-5)

    # Label purity: coarse = region of fine; each anchor is nearest its own centre, within spread.
    np.testing.assert_array_equal(coarse, fine % 3)
    np.testing.assert_array_equal(np.argmin(_pairwise(x, centres), 1), fine)
    assert np.max(np.linalg.norm(x - centres[fine], axis=1)) <= 0.15 + 1e-5

    # Anchors of different sub-clusters are ≥ gap apart; different regions farther than any
    # two anchors of one region.
    dx = _pairwise(x, x)
    diff_fine = fine[:, None] != fine[None, :]
    diff_region = coarse[:, None] != coarse[None, :]
    assert np.min(dx[diff_fine]) >= family.gap - 1e-5
    assert np.min(dx[diff_region]) > np.max(dx[~diff_region])

    # Views move a point by at most noise < gap / 2, so views of different sub-clusters stay apart.
    for v in (np.asarray(views.x1), np.asarray(views.x2)):
        moved = np.linalg.norm(v - x, axis=1)
        assert np.max(moved) <= family.noise + 1e-5 < family.gap / 2
    v = np.concatenate([views.x1, views.x2])
    fv = np.concatenate([fine, fine])
    gap_views = np.min(_pairwise(v, v)[fv[:, None] != fv[None, :]])
    assert gap_views >= family.gap - 2 * family.noise - 1e-5 > 0


def test_uniform_ball_matches_the_uniform_distribution():
    """Norms ≤ radius; E‖u‖² = r²·d/(d+2); P(‖u‖ ≤ r/2) = 2^-d; mean ≈ 0."""
    dim, radius, n = 3, 2.0, 20000
    u = np.asarray(
        jax.jit(uniform_ball, static_argnums=(1, 2, 3))(jax.random.key(1), n, dim, radius)
    )
    norms = np.linalg.norm(u, axis=1)
    assert norms.max() <= radius * (1 + 1e-6)
    np.testing.assert_allclose(np.mean(norms**2), radius**2 * dim / (dim + 2), rtol=0.02)
    np.testing.assert_allclose(np.mean(norms <= radius / 2), 0.5**dim, atol=0.01)
    np.testing.assert_allclose(u.mean(0), 0.0, atol=0.05)


@pytest.mark.parametrize(
    "options, bad",
    [
        ({"noise": 0.3}, "noise=0.3"),
        ({"regions": 0}, "regions=0"),
        ({"spread": -0.1}, "spread=-0.1"),
        ({"sub_radius": 5.0}, "sub_radius=5.0"),
    ],
)
def test_bad_options_name_the_value(options, bad):
    with pytest.raises(ValueError, match=bad):
        make_family("lipschitz_regions", 32, 8, **options)


def test_cluster_counts_are_checked():
    family = make_family("lipschitz_regions", 12, 8, regions=4)
    family.check_clusters(8)
    with pytest.raises(ValueError, match="clusters=6"):
        family.check_clusters(6)
    with pytest.raises(ValueError, match="dim=12"):
        make_family("lipschitz_regions", 12, 12, regions=4)
    assert isinstance(family, LipschitzRegions) and family.num_coarse_classes == 4


def test_config_validates_the_lipschitz_axis():
    assert SweepConfig(lipschitz=(0.5, math.inf)).lipschitz == (0.5, math.inf)
    for bad in (0.0, -1.0, math.nan, -math.inf):
        with pytest.raises(ConfigError, match=f"lipschitz: {bad!r}"):
            SweepConfig(lipschitz=(bad,))
    cells = SweepConfig(lipschitz=(1.0, 2.0), seeds=1, widths=(2,), clusters=(8,), out_dims=(4,))
    assert [c["lipschitz"] for c in cells.cells()] == [1.0, 2.0]


def test_cli_lipschitz_flag_is_one_line_error_naming_the_value(tmp_path, capsys):
    assert main(["sweep", "--lipschitz", "1,0", "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lipschitz: 0.0" in err
    assert not (tmp_path / "never").exists()


# ----------------------------------------------------------------------------- spectral bound


@pytest.mark.parametrize("shape, rank", [((7, 5), 5), ((4, 9), 4), ((12, 12), 3)])
def test_spectral_norm_bound_brackets_the_svd(shape, rank):
    """σ ≤ σ̂ ≤ σ·rank^(1/4p) (float32 slack 1e-5); zero padding changes nothing."""
    rng = np.random.default_rng(sum(shape))
    w = rng.normal(size=(shape[0], rank)) @ rng.normal(size=(rank, shape[1]))
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    for squarings in (0, 2, 8):
        bound = float(spectral_norm_bound(jnp.asarray(w, jnp.float32), squarings))
        p = 2**squarings
        assert sigma * (1 - 1e-5) <= bound <= sigma * rank ** (1 / (4 * p)) * (1 + 1e-5)
    # No squaring: ‖WᵀW‖_F^(1/2).
    np.testing.assert_allclose(
        spectral_norm_bound(jnp.asarray(w, jnp.float32), 0),
        np.sqrt(np.linalg.norm(w.T @ w)),
        rtol=1e-5,
    )
    padded = np.zeros((shape[0] + 3, shape[1] + 2))
    padded[: shape[0], : shape[1]] = w
    np.testing.assert_allclose(
        spectral_norm_bound(jnp.asarray(padded, jnp.float32)),
        spectral_norm_bound(jnp.asarray(w, jnp.float32)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="squarings=-1"):
        spectral_norm_bound(jnp.ones((2, 2)), -1)


# ----------------------------------------------------------------------------- encoder

DIM, DEPTH, MAX_WIDTH, MAX_OUT = 6, 2, 12, 5
N = 128  # inputs per probe, one size so that each function compiles once
_CAPPED = LipschitzMLP(DEPTH, MAX_WIDTH, MAX_OUT)
_PLAIN = MaskedMLP(DEPTH, MAX_WIDTH, MAX_OUT)


@jax.jit
def _init_capped(key, width, out_dim):
    return _CAPPED.init(key, jnp.zeros((1, DIM)), width, out_dim, 1.0)["params"]


def _params(width, out_dim, key=0, factor=3.0):
    """Initial parameters with every kernel scaled by ``factor``, so that the caps bind."""
    params = _init_capped(jax.random.key(key), width, out_dim)
    return {k: {**v, "kernel": v["kernel"] * factor} for k, v in params.items()}


def _sum_squares(apply, params, x, *cell_values):
    return jnp.sum(apply({"params": params}, x, *cell_values) ** 2)


@jax.jit
def _probe(params, x, width, out_dim, cap):
    """The capped network at ``x`` ``[N, DIM]``: outputs, applied kernels, input Jacobians
    ``[N, MAX_OUT, DIM]`` and the gradient of ``Σ z²`` with respect to the parameters."""
    z, state = _CAPPED.apply({"params": params}, x, width, out_dim, cap, mutable=["intermediates"])
    kernels = {k: v[0] for k, v in state["intermediates"].items()}

    def one(v):
        return _CAPPED.apply({"params": params}, v[None], width, out_dim, cap)[0]

    jac = jax.vmap(jax.jacfwd(one))(x)
    grad = jax.grad(_sum_squares, argnums=1)(_CAPPED.apply, params, x, width, out_dim, cap)
    return z, kernels, jac, grad


@jax.jit
def _plain(key, params, x, width, out_dim):
    """The plain MLP: its own initial parameters, and outputs and gradient with ``params``."""
    init = _PLAIN.init(key, jnp.zeros((1, DIM)), width, out_dim)["params"]
    z = _PLAIN.apply({"params": params}, x, width, out_dim)
    grad = jax.grad(_sum_squares, argnums=1)(_PLAIN.apply, params, x, width, out_dim)
    return init, z, grad


def _inputs(key):
    return jax.random.normal(jax.random.key(key), (N, DIM))


def test_registered_with_its_cell_inputs():
    model = make_encoder("lipschitz_mlp", DEPTH, MAX_WIDTH, MAX_OUT, (DIM,))
    assert isinstance(model, LipschitzMLP)
    assert model.cell_inputs == ("width", "out_dim", "lipschitz")


@pytest.mark.parametrize("cap", [0.3, 2.0, 25.0])
def test_network_is_at_most_cap_lipschitz(cap):
    """Layer norms by numpy SVD, Jacobian norms and difference quotients all stay ≤ cap."""
    params = _params(9, 4)
    c = cap ** (1 / (DEPTH + 1))
    x = _inputs(1)
    y = x + 1e-2 * _inputs(2)
    z, sown, jac, _ = _probe(params, x, 9, 4, cap)

    kernels = [np.asarray(sown[f"kernel_{i}"]) for i in range(DEPTH + 1)]
    norms = np.array([np.linalg.svd(k, compute_uv=False)[0] for k in kernels])
    assert np.all(norms <= c * (1 + 1e-5)), norms
    assert np.prod(norms) <= cap * (1 + 1e-5)
    assert np.prod(norms) >= 0.98 * cap  # the boosted layers all bind, each within 0.7% of c
    raw = [params[name]["kernel"] for name in ("hidden_0", "hidden_1", "out")]
    hidden = jnp.asarray(np.arange(MAX_WIDTH) < 9, jnp.float32)
    out = jnp.asarray(np.arange(MAX_OUT) < 4, jnp.float32)
    masks = [(jnp.ones(DIM), hidden), (hidden, hidden), (hidden, out)]
    for i, k in enumerate(kernels):  # the sown kernel is the documented capped kernel
        np.testing.assert_allclose(k, capped_kernel(raw[i], *masks[i], c), rtol=1e-6, atol=1e-7)

    z_y = _probe(params, y, 9, 4, cap)[0]
    ratio = np.linalg.norm(z - z_y, axis=1) / np.linalg.norm(x - y, axis=1)
    assert ratio.max() <= cap * (1 + 1e-4)
    chex.assert_shape(jac, (N, MAX_OUT, DIM))
    jac_norms = np.linalg.svd(np.asarray(jac), compute_uv=False)[:, 0]
    assert jac_norms.max() <= cap * (1 + 1e-4)
    assert jac_norms.max() > 0.05 * cap  # not trivially satisfied by a collapsed network


def test_infinite_cap_is_the_plain_mlp_exactly():
    """Same initial parameters; with them, the same outputs (bit for bit) and gradients."""
    x = _inputs(3)
    params = _params(7, 3, key=5, factor=1.0)
    boosted = _params(7, 3, key=5)  # large weights: no rescaling happens all the same
    z, _, _, grad = _probe(boosted, x, 7, 3, jnp.inf)
    plain_init, plain_z, plain_grad = _plain(jax.random.key(5), boosted, x, 7, 3)
    chex.assert_trees_all_close(params, plain_init, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(z, plain_z)
    chex.assert_trees_all_close(grad, plain_grad, rtol=1e-5, atol=1e-6)


def test_padded_cell_equals_the_unpadded_network():
    """Width 5, out_dim 3 padded to 12 and 5 equals the unpadded network, under a binding cap."""
    cap = 0.7
    p_big = _params(5, 3, key=7)
    small = LipschitzMLP(DEPTH, 5, 3)
    shapes = {"hidden_0": (DIM, 5), "hidden_1": (5, 5), "out": (5, 3)}
    p_small = {
        name: {"kernel": p_big[name]["kernel"][:a, :b], "bias": p_big[name]["bias"][:b]}
        for name, (a, b) in shapes.items()
    }
    x = _inputs(4)
    z_big = _probe(p_big, x, 5, 3, cap)[0]
    z_small = jax.jit(small.apply)({"params": p_small}, x, 5, 3, cap)
    chex.assert_shape(z_big, (N, MAX_OUT))
    np.testing.assert_allclose(z_big[:, :3], z_small, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(z_big[:, 3:], 0.0)
    assert np.abs(z_small).max() > 0


def test_gradients_flow_through_the_cap_and_skip_masked_units():
    cap = 0.5
    params = _params(5, 3, key=9)
    x = _inputs(6)
    z, _, _, grads = _probe(params, x, 5, 3, cap)
    chex.assert_tree_all_finite(grads)
    for name, g in grads.items():
        kernel = np.asarray(g["kernel"])
        assert np.abs(kernel).max() > 0, name
        n_out = 3 if name == "out" else 5
        n_in = DIM if name == "hidden_0" else 5
        assert not kernel[n_in:].any() and not kernel[:, n_out:].any(), name
    # A small step against the gradient lowers Σ z²: the normalisation does not block descent.
    stepped = jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)
    assert np.sum(_probe(stepped, x, 5, 3, cap)[0] ** 2) < np.sum(np.asarray(z) ** 2)
