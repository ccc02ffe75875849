"""Tests of clj.theory against independent references, and of the grid2x2 data family."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
import scipy.optimize
import scipy.sparse.csgraph

from clj import theory
from clj.data import Grid2x2, make_family
from clj.theory import make_cell
from clj.train import cell_keys


def _np_loss(w, sigma, cross):
    """The population spectral loss written out in NumPy (float64)."""
    return -2 * np.trace(w @ cross @ w.T) + np.sum((w @ sigma @ w.T) ** 2)


def _random_moments(rng, d, negative=False):
    """Random SPD Σ and a symmetric C with Σ^{-1/2} C Σ^{-1/2} eigenvalues in [-0.5, 1]."""
    a = rng.normal(size=(d, d))
    sigma = a @ a.T / d + 0.3 * np.eye(d)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    low = -0.5 if negative else 0.05
    t = (q * rng.uniform(low, 1.0, size=d)) @ q.T
    root = scipy.linalg.sqrtm(sigma).real
    return sigma, root @ t @ root + 0.01 * (a - a.T)  # an antisymmetric part must not matter


# ----------------------------------------------------------------------------- linear optimum


@pytest.mark.parametrize(("d", "k", "negative"), [(5, 2, False), (7, 7, True), (4, 1, False)])
def test_linear_optimum_matches_formula(d, k, negative):
    rng = np.random.default_rng(d + k)
    sigma, cross = _random_moments(rng, d, negative)
    w, loss = theory.linear_spectral_optimum(sigma, cross, k)
    chex.assert_shape(w, (k, d))
    # Independent route: T from scipy's matrix square root, eigenvalues from scipy.
    inv_root = np.linalg.inv(scipy.linalg.sqrtm(sigma).real)
    t = inv_root @ ((cross + cross.T) / 2) @ inv_root
    lam = np.sort(scipy.linalg.eigvalsh(t))[::-1][:k]
    np.testing.assert_allclose(loss, -np.sum(np.maximum(lam, 0) ** 2), rtol=1e-10)
    np.testing.assert_allclose(_np_loss(w, sigma, cross), loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        float(theory.population_spectral_loss(w, sigma, cross)), loss, rtol=1e-5
    )
    # The features are decorrelated: W Σ Wᵀ = diag(max(λ, 0)).
    np.testing.assert_allclose(w @ sigma @ w.T, np.diag(np.maximum(lam, 0)), atol=1e-9)
    if negative:
        assert np.all(lam[-1:] < 0) and np.allclose(w[lam < 0], 0)


def test_linear_optimum_is_the_numerical_minimum():
    """L-BFGS from many starts never goes below the closed form, and the best start reaches it."""
    rng = np.random.default_rng(0)
    d, k = 5, 3
    sigma, cross = _random_moments(rng, d)
    _, best = theory.linear_spectral_optimum(sigma, cross, k)

    def objective(flat):
        w = flat.reshape(k, d)
        grad = -2 * w @ (cross + cross.T) + 4 * (w @ sigma @ w.T) @ w @ sigma
        return _np_loss(w, sigma, cross), grad.ravel()

    found = [
        scipy.optimize.minimize(objective, rng.normal(size=k * d), jac=True, method="L-BFGS-B").fun
        for _ in range(5)
    ]
    assert min(found) >= best - 1e-9
    np.testing.assert_allclose(min(found), best, rtol=1e-6)
    # Random search never beats it either.
    w = rng.normal(size=(2000, k, d)) * rng.uniform(0.05, 1.5, size=(2000, 1, 1))
    gram = np.einsum("nkd,de,nle->nkl", w, sigma, w)
    losses = -2 * np.einsum("nkd,de,nke->n", w, cross, w) + np.sum(gram**2, axis=(1, 2))
    np.testing.assert_allclose(losses[0], _np_loss(w[0], sigma, cross))
    assert losses.min() > best


def test_gradient_descent_on_the_jax_loss_reaches_the_optimum():
    rng = np.random.default_rng(1)
    d, k = 6, 2
    sigma, cross = _random_moments(rng, d)
    _, best = theory.linear_spectral_optimum(sigma, cross, k)
    s32, c32 = jnp.asarray(sigma, jnp.float32), jnp.asarray(cross, jnp.float32)
    grad = jax.grad(theory.population_spectral_loss)
    tx = optax.sgd(0.02, momentum=0.9)

    @jax.jit
    def descend(w):
        def step(carry, _):
            w, state = carry
            updates, state = tx.update(grad(w, s32, c32), state)
            return (optax.apply_updates(w, updates), state), None

        (w, _), _ = jax.lax.scan(step, (w, tx.init(w)), None, length=3000)
        return w

    w = descend(jnp.asarray(0.1 * rng.normal(size=(k, d)), jnp.float32))
    reached = _np_loss(np.asarray(w, np.float64), sigma, cross)
    assert reached >= best - 1e-6
    np.testing.assert_allclose(reached, best, rtol=1e-4)


def test_affine_moments_give_the_loss_with_a_bias():
    """On a finite distribution, [W | b] on the bordered moments is the loss of f(x) = Wx + b."""
    dist = theory.discrete_grid2x2(side=2, spacing=3.0, step=0.5)
    moments = theory.discrete_moments(dist)
    sigma_a, cross_a = theory.affine_moments(*moments)
    chex.assert_shape([sigma_a, cross_a], (3, 3))
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(2, 2)), rng.normal(size=2)
    features = dist.points @ w.T + b
    expected = float(_graph_loss_reference(features, dist.graph.adjacency))
    np.testing.assert_allclose(_np_loss(np.c_[w, b], sigma_a, cross_a), expected, rtol=1e-10)
    # A constant feature is always an eigenfunction of eigenvalue 1 of the affine class.
    _, loss = theory.linear_spectral_optimum(sigma_a, cross_a, 1)
    np.testing.assert_allclose(loss, -1.0, rtol=1e-10)


def test_linear_optimum_errors_name_the_value():
    sigma, cross = np.eye(3), 0.5 * np.eye(3)
    for k in (0, 4, 1.5):
        with pytest.raises(ValueError, match=f"k={k}"):
            theory.linear_spectral_optimum(sigma, cross, k)
    with pytest.raises(ValueError, match="not positive definite"):
        theory.linear_spectral_optimum(np.diag([1.0, 1.0, 0.0]), cross, 1)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        theory.linear_spectral_optimum(sigma, np.eye(2), 1)
    with pytest.raises(ValueError, match="square"):
        theory.linear_spectral_optimum(np.ones((3, 2)), cross, 1)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        theory.population_spectral_loss(np.ones((2, 3)), np.eye(4), np.eye(4))


# ----------------------------------------------------------------------------- moments


@pytest.mark.parametrize(
    ("name", "dim", "clusters", "options"),
    [("hypercube", 6, 2, {}), ("grid2x2", 3, 3, {"spread": 0.4})],
)
def test_closed_form_moments_match_monte_carlo(name, dim, clusters, options):
    family = make_family(name, dim, 4, **options)
    closed = theory.second_moments(family, clusters, method="closed")
    mc = theory.second_moments(family, clusters, seed=3, method="monte_carlo", samples=2**16)
    chex.assert_shape([closed.sigma, closed.cross, mc.sigma, mc.cross], (dim, dim))
    chex.assert_shape([closed.mean, mc.mean], (dim,))
    for exact, estimate in zip(closed, mc, strict=True):
        # Each entry is a mean of 2^16 terms of order one: 0.02 is about five standard errors.
        np.testing.assert_allclose(estimate, exact, atol=0.02)
    np.testing.assert_allclose(mc.cross, mc.cross.T)


def test_hypercube_closed_form_values():
    family = make_family("hypercube", 5, 2)
    m = theory.second_moments(family, 2)
    np.testing.assert_allclose(np.diag(m.sigma), [1, 1, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(np.diag(m.cross), [1, 1, 1 / 4, 1 / 4, 1 / 4])
    # Optimum: the s invariant coordinates, eigenvalue 1 each.
    w, loss = theory.linear_spectral_optimum(m.sigma, m.cross, 2)
    assert loss == pytest.approx(-2.0)
    np.testing.assert_allclose(np.abs(w[:, 2:]), 0, atol=1e-12)


def test_monte_carlo_uses_the_trainers_world():
    """Gaussian-mixture moments (no closed form) follow the centres the trainer draws."""
    family = make_family("gaussian_mixture", 3, 4, spread=0.3, noise=0.2)
    with pytest.raises(ValueError, match="gaussian_mixture"):
        theory.second_moments(family, 4, method="closed")
    with pytest.raises(ValueError, match="method='exact'"):
        theory.second_moments(family, 4, method="exact")
    with pytest.raises(ValueError, match="clusters=9"):
        theory.second_moments(make_family("grid2x2", 3, 4), 9)
    m = theory.second_moments(family, 4, seed=5, samples=2**16)  # auto: Monte Carlo
    cell = make_cell(4, seed=5)
    centres = np.asarray(family.world(cell_keys(cell.seed)["world"], cell), np.float64)
    outer = centres.T @ centres / 4
    spread2, noise2 = 0.3**2 / 3, 0.2**2 / 3  # per-coordinate variances
    np.testing.assert_allclose(m.sigma, outer + (spread2 + noise2) * np.eye(3), atol=0.02)
    np.testing.assert_allclose(m.cross, outer + spread2 * np.eye(3), atol=0.02)
    np.testing.assert_allclose(m.mean, centres.mean(0), atol=0.02)


# ----------------------------------------------------------------------------- graphs


def _graph_loss_reference(f, adjacency):
    """HaoChen et al.'s population loss as the explicit double sum (float64)."""
    w = adjacency.sum(1)
    dots = f @ f.T
    return -2 * np.sum(adjacency * dots) + np.sum(np.outer(w, w) * dots**2)


def _graphs():
    rng = np.random.default_rng(7)
    sparse = rng.uniform(size=(30, 30)) * (rng.uniform(size=(30, 30)) < 0.06)
    yield "grid", theory.discrete_grid2x2(side=3).graph, 4
    yield "grid linked", theory.discrete_grid2x2(side=2, link=0.2).graph, 2
    yield "hypercube", theory.discrete_hypercube(3, 1, levels=2).graph, 8
    yield "random", theory.graph_from_joint(sparse), None


@pytest.mark.parametrize("case", list(_graphs()), ids=lambda c: c[0])
def test_components_and_spectrum_match_scipy(case):
    _, graph, expected = case
    count, labels = theory.connected_components(graph)
    ref_count, ref_labels = scipy.sparse.csgraph.connected_components(
        graph.adjacency > 0, directed=False
    )
    assert count == ref_count and (expected is None or count == expected)
    # The same partition (labels may be numbered differently).
    assert len(set(zip(labels, ref_labels, strict=True))) == count
    chex.assert_shape(labels, (graph.num_nodes,))

    values, vectors = theory.graph_spectrum(graph)
    isolated = graph.degree == 0
    degree = np.where(isolated, 1.0, graph.adjacency.sum(axis=0))
    reference = np.where(
        isolated[:, None] | isolated[None], 0.0, graph.adjacency / np.sqrt(np.outer(degree, degree))
    )
    np.testing.assert_allclose(theory.normalized_adjacency(graph), reference, atol=1e-12)
    np.testing.assert_allclose(values, np.sort(np.linalg.eigvalsh(reference))[::-1], atol=1e-10)
    np.testing.assert_allclose(reference @ vectors, vectors * values, atol=1e-10)
    assert np.all(np.diff(values) <= 1e-12)
    # Eigenvalue 1 has one eigenvector per component that has an edge.
    with_edges = len(set(labels[~isolated]))
    assert np.sum(values > 1 - 1e-9) == with_edges


@pytest.mark.parametrize("k", [1, 3, 6])
def test_graph_optimum_value_and_minimiser(k):
    graph = theory.discrete_grid2x2(side=2, link=0.1).graph
    f, loss = theory.graph_spectral_optimum(graph, k)
    chex.assert_shape(f, (graph.num_nodes, k))
    values, _ = theory.graph_spectrum(graph)
    np.testing.assert_allclose(loss, -np.sum(np.maximum(values[:k], 0) ** 2), rtol=1e-12)
    np.testing.assert_allclose(_graph_loss_reference(f, graph.adjacency), loss, rtol=1e-9)
    np.testing.assert_allclose(float(theory.graph_spectral_loss(f, graph)), loss, rtol=1e-5)


def test_free_embedding_trained_on_the_graph_loss_reaches_the_optimum():
    graph = theory.discrete_grid2x2(side=2, link=0.1).graph
    k = 3
    _, best = theory.graph_spectral_optimum(graph, k)
    tx = optax.adam(0.05)
    grad = jax.grad(theory.graph_spectral_loss)

    @jax.jit
    def train(f):
        def step(carry, _):
            f, state = carry
            updates, state = tx.update(grad(f, graph), state)
            return (optax.apply_updates(f, updates), state), None

        (f, _), _ = jax.lax.scan(step, (f, tx.init(f)), None, length=3000)
        return f

    start = jax.random.normal(jax.random.key(0), (graph.num_nodes, k)) * 0.1
    table = np.asarray(train(start), np.float64)
    reached = _graph_loss_reference(table, graph.adjacency)
    assert reached >= best - 1e-9
    np.testing.assert_allclose(reached, best, rtol=1e-4)


def test_graph_builders_agree_and_validate():
    # A reversible random walk on a weighted graph: joint = diag(p) T gives back the weights.
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(6, 6))
    a = a + a.T
    probs = a.sum(1) / a.sum()
    transition = a / a.sum(1, keepdims=True)
    from_walk = theory.graph_from_transition(probs, transition)
    np.testing.assert_allclose(from_walk.adjacency, a / a.sum(), atol=1e-15)
    np.testing.assert_allclose(from_walk.degree, probs)
    # Augmenting natural points: node probabilities are prior @ kernel.
    prior = np.array([0.2, 0.8])
    kernel = np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    graph = theory.graph_from_augmentation(prior, kernel)
    np.testing.assert_allclose(graph.degree, prior @ kernel)
    np.testing.assert_allclose(graph.adjacency[0, 1], 0.2 * 0.25)
    with pytest.raises(ValueError, match=r"row 1 sums to 1\.3"):
        theory.graph_from_augmentation(prior, kernel + np.array([[0], [0.1]]))
    with pytest.raises(ValueError, match="non-negative"):
        theory.graph_from_joint(-np.eye(2))
    with pytest.raises(ValueError, match="probability vector"):
        theory.graph_from_transition(np.array([0.5, 0.6]), np.eye(2))
    with pytest.raises(ValueError, match="k=0"):
        theory.graph_spectral_optimum(graph, 0)
    with pytest.raises(ValueError, match="side=0"):
        theory.discrete_grid2x2(side=0)
    with pytest.raises(ValueError, match="s=5"):
        theory.discrete_hypercube(3, 5)


def test_discrete_distributions_link_the_graph_and_linear_theories():
    """On a finite distribution, linear features Xwᵀ have the graph loss of the linear theory."""
    dist = theory.discrete_hypercube(4, 2, levels=2)
    n = 2**2 * 4**2
    chex.assert_shape(dist.points, (n, 4))
    np.testing.assert_allclose(dist.graph.adjacency.sum(), 1.0)
    # Every view keeps its vertex's invariant coordinates and the signs of the others.
    assert theory.connected_components(dist.graph)[0] == 2**4
    moments = theory.discrete_moments(dist)
    taus = np.array([0.5, 1.0])
    np.testing.assert_allclose(np.diag(moments.sigma), [1, 1, *[np.mean(taus**2)] * 2])
    np.testing.assert_allclose(np.diag(moments.cross), [1, 1, *[np.mean(taus) ** 2] * 2])
    w, linear_loss = theory.linear_spectral_optimum(moments.sigma, moments.cross, 2)
    features = dist.points @ w.T
    np.testing.assert_allclose(
        _graph_loss_reference(features, dist.graph.adjacency), linear_loss, rtol=1e-10
    )
    # The linear class cannot beat the unrestricted optimum, and here both reach −k at k = s.
    _, free_loss = theory.graph_spectral_optimum(dist.graph, 2)
    assert free_loss <= linear_loss + 1e-12 and linear_loss == pytest.approx(-2.0)

    grid = theory.discrete_grid2x2(side=3)
    chex.assert_shape(grid.points, (36, 2))
    np.testing.assert_array_equal(np.bincount(grid.labels), [9, 9, 9, 9])
    centres = np.array([[-2, -2], [2, -2], [-2, 2], [2, 2]])
    assert np.all(np.abs(grid.points - centres[grid.labels]) <= 0.5 + 1e-12)


# ----------------------------------------------------------------------------- angles


@pytest.mark.parametrize(("d", "p", "q"), [(6, 2, 2), (8, 3, 5), (5, 4, 1)])
def test_principal_angles_match_scipy(d, p, q):
    rng = np.random.default_rng(d * p * q)
    a, b = rng.normal(size=(d, p)), rng.normal(size=(d, q))
    ref = np.sort(scipy.linalg.subspace_angles(a, b))
    np.testing.assert_allclose(theory.principal_angles(a, b, degrees=False), ref, atol=1e-10)
    np.testing.assert_allclose(theory.principal_angles(a, b), np.degrees(ref), atol=1e-8)
    # Nearly identical spans: small angles stay accurate.
    tilted = a + 1e-7 * rng.normal(size=a.shape)
    small = theory.principal_angles(a, tilted, degrees=False)
    np.testing.assert_allclose(small, np.sort(scipy.linalg.subspace_angles(a, tilted)), atol=1e-12)
    assert np.all(small < 1e-5)
    # A span against itself and against its orthogonal complement.
    np.testing.assert_allclose(
        theory.principal_angles(a, 3.0 * a @ rng.normal(size=(p, p))), 0, atol=1e-6
    )
    complement = scipy.linalg.null_space(a.T)[:, : min(p, d - p)]
    np.testing.assert_allclose(theory.principal_angles(a, complement), 90.0, atol=1e-8)


def test_principal_angles_of_rank_deficient_input_use_the_span():
    a = np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])  # rank 1
    b = np.array([[1.0], [1.0], [0.0]])
    np.testing.assert_allclose(theory.principal_angles(a, b), [45.0])
    with pytest.raises(ValueError, match="3 rows but b has 2"):
        theory.principal_angles(a, np.ones((2, 1)))


# ----------------------------------------------------------------------------- grid2x2 family


def test_grid2x2_samplers_labels_and_purity():
    family = make_family("grid2x2", 5, 4, spacing=2.0, spread=0.3, noise=0.2)
    assert isinstance(family, Grid2x2)
    assert family.cluster_limit() == 4 and family.num_coarse_classes == 2
    cell = make_cell(4, seed=1)
    n = 2000

    @jax.jit
    def draw(key):
        k_world, k_anchor, k_views = jax.random.split(key, 3)
        world = family.world(k_world, cell)
        anchors = family.anchors(k_anchor, world, cell, n)
        return world, anchors, family.views(k_views, world, cell, anchors)

    world, anchors, views = draw(jax.random.key(0))
    chex.assert_shape(world, (4, 5))
    chex.assert_shape([anchors.x, views.x1, views.x2], (n, 5))
    chex.assert_type([anchors.fine, anchors.coarse], jnp.int32)
    centres = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], float)
    np.testing.assert_allclose(np.asarray(world)[:, :2], centres)
    np.testing.assert_allclose(np.asarray(world)[:, 2:], 0)
    fine, coarse = np.asarray(anchors.fine), np.asarray(anchors.coarse)
    np.testing.assert_array_equal(coarse, fine // 2)  # coarse label = row
    counts = np.bincount(fine, minlength=4)
    assert np.all(np.abs(counts - n / 4) < 4.5 * np.sqrt(n * 3 / 16)), counts
    np.testing.assert_array_equal(views.fine, fine)
    x = np.asarray(anchors.x)
    own = np.asarray(world)[fine]
    assert np.all(np.abs(x - own) <= 0.3 + 1e-6)
    for view in (np.asarray(views.x1), np.asarray(views.x2)):
        offset = view - x
        assert np.all(np.abs(offset) <= 0.2 + 1e-6)
        np.testing.assert_allclose(offset.var(), 0.2**2 / 3, rtol=0.05)
        # Purity: every view is nearest its own corner; no view leaves its cluster's box.
        nearest = np.argmin(((view[:, None, :2] - centres[None]) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(nearest, fine)
        assert np.all(np.abs(view - own) <= 0.5 + 1e-6)
    assert not np.array_equal(views.x1, views.x2)


def test_grid2x2_uses_the_first_corners_and_validates():
    family = make_family("grid2x2", 3, 4)
    cell = make_cell(2)
    anchors = jax.jit(lambda k: family.anchors(k, family.world(k, cell), cell, 400))(
        jax.random.key(0)
    )
    assert set(np.unique(anchors.fine)) == {0, 1} and set(np.unique(anchors.coarse)) == {0}
    with pytest.raises(ValueError, match="clusters=5"):
        family.check_clusters(5)
    with pytest.raises(ValueError, match="dim=1"):
        make_family("grid2x2", 1, 4)
    with pytest.raises(ValueError, match=r"spread \+ noise = 1\.2"):
        make_family("grid2x2", 2, 4, spacing=2.0, spread=0.6, noise=0.6)
    with pytest.raises(ValueError, match="spacing=-1"):
        make_family("grid2x2", 2, 4, spacing=-1.0)


def test_grid2x2_linear_optimum_is_the_axis_aligned_plane():
    family = make_family("grid2x2", 6, 4)
    m = theory.second_moments(family, 4)
    w, _ = theory.linear_spectral_optimum(m.sigma, m.cross, 2)
    axes = np.eye(6)[:, :2]
    np.testing.assert_allclose(theory.principal_angles(w.T, axes), 0.0, atol=1e-6)
    # With a bias, the constant takes one of the two dimensions (eigenvalue 1 beats the axes').
    w_affine, loss_affine = theory.linear_spectral_optimum(*theory.affine_moments(*m), 2)
    assert loss_affine < theory.linear_spectral_optimum(m.sigma, m.cross, 2)[1]
    assert np.linalg.matrix_rank(w_affine[:, :6], tol=1e-8) == 1
    assert list(itertools.chain(m.mean)) == [0.0] * 6
