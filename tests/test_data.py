"""Tests of the synthetic data families (clj.data) and of clj.random.indexed_normal."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import Cell, stack_cells
from clj.data import FAMILIES, Anchors, Views, make_family
from clj.random import indexed_normal

# Per family: input dim, padded max_clusters, the cell's clusters (smaller than max_clusters), the
# number of coarse labels such a cell uses, and the world's leaves as (shape, dtype).
CASES = {
    "gaussian_mixture": {
        "dim": 5,
        "max_clusters": 6,
        "clusters": 3,
        "coarse": 3,
        "world": lambda dim, m: [((m, dim), jnp.float32)],
    },
    "hierarchical_mixture": {
        "dim": 8,
        "max_clusters": 12,
        "clusters": 8,
        "coarse": 4,
        "world": lambda dim, m: [((m, dim), jnp.float32), ((m,), jnp.int32)],
    },
    "hypercube": {
        "dim": 6,
        "max_clusters": 4,
        "clusters": 3,
        "coarse": 2,
        "world": lambda dim, m: [((m,), jnp.float32)],
    },
    "lipschitz_regions": {  # 4 regions (the default); needs dim ≥ regions + max_clusters
        "dim": 16,
        "max_clusters": 12,
        "clusters": 8,
        "coarse": 4,
        "world": lambda dim, m: [((m, dim), jnp.float32), ((m,), jnp.int32)],
    },
    "patches": {  # 3 patches of 8; no random structure (fixed codes)
        "dim": 24,
        "max_clusters": 3,
        "clusters": 2,
        "coarse": 2,
        "world": lambda dim, m: [],
    },
    "grid2x2": {  # 4 corners; coarse = row, so corners 0-2 use both rows
        "dim": 3,
        "max_clusters": 4,
        "clusters": 3,
        "coarse": 2,
        "world": lambda dim, m: [((m, dim), jnp.float32)],
    },
    "style_glyphs": {  # 8 × 8 glyphs of 4 strokes; coarse = fine
        "dim": 64,
        "max_clusters": 6,
        "clusters": 4,
        "coarse": 4,
        "world": lambda dim, m: [((m, 4, 2), jnp.float32)],
    },
    "digits": {  # scikit-learn's 8 × 8 digits (bundled, no download); no world
        "dim": 64,
        "max_clusters": 10,
        "clusters": 6,
        "coarse": 6,
        "world": lambda dim, m: [],
    },
}
# Families backed by a downloaded dataset are tested in test_images.py with small fake files.
DOWNLOADED = {"cifar10", "mnist", "fashion_mnist"}
NAMES = sorted(CASES)
N = 1200  # samples per draw: one size for every test so that compiled draws are reused


def make_cell(**values) -> Cell:
    """One cell (scalar fields) with defaults for everything not given."""
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
    stacked = stack_cells([{**defaults, **values}])
    return jax.tree.map(lambda a: a[0], stacked)


def _family(name, max_clusters=None, **options):
    case = CASES[name]
    return make_family(name, case["dim"], max_clusters or case["max_clusters"], **options)


def _draw_fn(family, n):
    def draw(key, cell):
        """``(world, anchors, views of those anchors, sample)`` of one cell."""
        k_world, k_anchor, k_views, k_sample = jax.random.split(key, 4)
        world = family.world(k_world, cell)
        anchors = family.anchors(k_anchor, world, cell, n)
        views = family.views(k_views, world, cell, anchors)
        return world, anchors, views, family.sample(k_sample, world, cell, n)

    return draw


@functools.cache
def _jitted_draw(family, n):
    return jax.jit(_draw_fn(family, n))


def _draw(family, cell, n=N, seed=0):
    """``(world, anchors, views of those anchors, sample)`` for one cell, in one jitted program."""
    return _jitted_draw(family, n)(jax.random.key(seed), cell)


def test_every_family_has_a_case():
    assert set(FAMILIES) == set(CASES) | DOWNLOADED
    for name, cls in FAMILIES.items():
        assert cls.name == name
        assert cls.description


# ----------------------------------------------------------------------------- shapes, labels


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    case = CASES[name]
    family = _family(name)
    dim, m, n = case["dim"], case["max_clusters"], N
    world, anchors, views, sample = _draw(family, make_cell(clusters=case["clusters"]))

    leaves = jax.tree.leaves(world)
    expected = case["world"](dim, m)
    assert len(leaves) == len(expected)
    for leaf, (shape, dtype) in zip(leaves, expected, strict=True):
        chex.assert_shape(leaf, shape)
        chex.assert_type(leaf, dtype)

    assert isinstance(anchors, Anchors)
    chex.assert_shape(anchors.x, (n, dim))
    chex.assert_type(anchors.x, jnp.float32)
    chex.assert_shape([anchors.fine, anchors.coarse], (n,))
    chex.assert_type([anchors.fine, anchors.coarse], jnp.int32)

    for pairs in (views, sample):
        assert isinstance(pairs, Views)
        chex.assert_shape([pairs.x1, pairs.x2], (n, dim))
        chex.assert_type([pairs.x1, pairs.x2], jnp.float32)
        chex.assert_shape([pairs.fine, pairs.coarse], (n,))
        chex.assert_type([pairs.fine, pairs.coarse], jnp.int32)
        chex.assert_tree_all_finite(pairs)
        assert not np.array_equal(pairs.x1, pairs.x2)  # two independent augmentations
    # Views keep their anchors' labels.
    np.testing.assert_array_equal(views.fine, anchors.fine)
    np.testing.assert_array_equal(views.coarse, anchors.coarse)


@pytest.mark.parametrize("name", NAMES)
def test_labels_in_range_and_uniform(name):
    case = CASES[name]
    family = _family(name)
    cell = make_cell(clusters=case["clusters"])
    n = N
    _, anchors, _, sample = _draw(family, cell, seed=1)
    fine_count = int(family.fine_count(cell))
    assert fine_count <= family.num_fine_classes
    for labels in (anchors, sample):
        fine, coarse = np.asarray(labels.fine), np.asarray(labels.coarse)
        assert fine.min() >= 0 and fine.max() < fine_count
        assert coarse.min() >= 0 and coarse.max() < family.num_coarse_classes
        # Every fine cluster is used, each about equally often (within 4.5 standard deviations).
        counts = np.bincount(fine, minlength=fine_count)
        p = 1 / fine_count
        assert np.all(np.abs(counts - n * p) < 4.5 * np.sqrt(n * p * (1 - p))), counts
        assert len(np.unique(coarse)) == case["coarse"]


def test_gaussian_mixture_geometry():
    """Coarse = fine; centres near radius; anchors scatter by spread, views by noise."""
    dim = 6
    family = make_family("gaussian_mixture", dim, 64, radius=2.0, spread=0.3, noise=0.1)
    cell = make_cell(clusters=64)
    world, anchors, views, _ = _draw(family, cell, seed=2)
    np.testing.assert_array_equal(anchors.coarse, anchors.fine)
    assert family.num_coarse_classes == family.num_fine_classes == 64
    np.testing.assert_allclose(np.mean(np.sum(np.square(world), 1)), 2.0**2, rtol=0.2)
    offsets = np.asarray(anchors.x) - np.asarray(world)[np.asarray(anchors.fine)]
    np.testing.assert_allclose(np.mean(np.sum(offsets**2, 1)), 0.3**2, rtol=0.1)
    for x in (views.x1, views.x2):
        noise = np.asarray(x) - np.asarray(anchors.x)
        np.testing.assert_allclose(np.mean(np.sum(noise**2, 1)), 0.1**2, rtol=0.1)


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name):
    """A cell's data is the same in a family padded to its own clusters or to more."""
    case = CASES[name]
    c = case["clusters"]
    assert case["max_clusters"] > c
    cell = make_cell(clusters=c)
    small = _draw(_family(name, max_clusters=c), cell, seed=3)
    big = _draw(_family(name), cell, seed=3)
    world_small, world_big = small[0], big[0]
    for leaf_small, leaf_big in zip(
        jax.tree.leaves(world_small), jax.tree.leaves(world_big), strict=True
    ):
        np.testing.assert_array_equal(leaf_small, np.asarray(leaf_big)[:c])
    for part_small, part_big in zip(small[1:], big[1:], strict=True):
        chex.assert_trees_all_equal(part_small, part_big)


@pytest.mark.parametrize("name", NAMES)
def test_draws_read_only_the_cell_fields_the_family_names(name):
    """Cells that agree on a family's ``cell_fields`` draw the same world, anchors and pairs
    however their other fields differ (cells of one data stream may share their draws)."""
    family = _family(name)
    assert {"seed", "clusters"} <= set(family.cell_fields)
    base = make_cell(clusters=CASES[name]["clusters"])
    other = dict(width=9, out_dim=3, lr=0.1, weight_decay=0.01, temperature=0.1, dof=2.0, lam=3.0)
    other.update(lipschitz=2.0, prior_var=0.5)
    assert set(other) | set(family.cell_fields) == set(Cell._fields)
    changed = base._replace(**{k: jnp.asarray(v, getattr(base, k).dtype) for k, v in other.items()})
    chex.assert_trees_all_equal(_draw(family, base, seed=5), _draw(family, changed, seed=5))


# ----------------------------------------------------------------------------- hierarchical


def test_hierarchical_labels_and_group_structure():
    family = _family("hierarchical_mixture")
    groups, m = family.groups, family.max_clusters
    assert family.num_coarse_classes == groups
    ratios = []
    for seed in range(4):
        cell = make_cell(clusters=m)
        world, anchors, _, sample = _draw(family, cell, seed=seed)
        for labels in (anchors, sample):
            np.testing.assert_array_equal(labels.coarse, np.asarray(labels.fine) % groups)
        np.testing.assert_array_equal(world.group, np.arange(m) % groups)
        centres = np.asarray(world.centres)
        dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        group = np.asarray(world.group)
        same = group[:, None] == group[None]
        off_diagonal = ~np.eye(m, dtype=bool)
        within = dist[same & off_diagonal]
        between = dist[~same]
        ratios.append(within.mean() / between.mean())
        # Sub-clusters of one group are much closer together than the groups are.
        assert within.mean() < 0.4 * between.mean(), (seed, within.mean(), between.mean())
        # Anchors scatter far less than the sub-cluster spacing: the nearest centre is their own.
        x = np.asarray(anchors.x)
        nearest = np.argmin(np.linalg.norm(x[:, None] - centres[None], axis=-1), axis=1)
        assert np.mean(nearest == np.asarray(anchors.fine)) > 0.95
    assert np.mean(ratios) < 0.35


# ----------------------------------------------------------------------------- hypercube


def test_hypercube_views_and_labels():
    family = _family("hypercube")
    s = CASES["hypercube"]["clusters"]
    assert family.num_fine_classes == 2**family.max_clusters and family.num_coarse_classes == 2
    cell = make_cell(clusters=s)
    assert int(family.fine_count(cell)) == 2**s
    world, anchors, views, _ = _draw(family, cell, seed=5)
    x = np.asarray(anchors.x)
    assert set(np.unique(x)) == {-1.0, 1.0}
    # The label direction w lives on the s invariant coordinates only.
    w = np.asarray(world)
    assert np.all(w[s:] == 0) and np.all(w[:s] != 0)

    taus = []
    for view in (views.x1, views.x2):
        view = np.asarray(view)
        np.testing.assert_array_equal(view[:, :s], x[:, :s])
        tau = view[:, s:] / x[:, s:]  # the multiplier of each spurious coordinate
        assert np.all(tau > 0) and np.all(tau <= 1)
        assert np.all(np.abs(view[:, s:]) <= np.abs(x[:, s:]))
        taus.append(tau)
    # τ ~ U(0, 1], independent per view and per coordinate.
    for tau in taus:
        np.testing.assert_allclose(tau.mean(), 0.5, atol=0.02)
        np.testing.assert_allclose(tau.var(), 1 / 12, atol=0.01)
    assert abs(np.corrcoef(taus[0].ravel(), taus[1].ravel())[0, 1]) < 0.05
    assert abs(np.corrcoef(taus[0][:, 0], taus[0][:, 1])[0, 1]) < 0.12

    bits = x[:, :s] > 0
    vertex = np.sum(bits * 2 ** np.arange(s), axis=1)
    np.testing.assert_array_equal(anchors.fine, vertex)
    np.testing.assert_array_equal(anchors.coarse, (x[:, :s] @ w[:s] > 0).astype(np.int32))
    np.testing.assert_array_equal(views.fine, vertex)


def test_hypercube_limit_is_dim_and_limit():
    assert make_family("hypercube", 6, 2).cluster_limit() == 6
    assert make_family("hypercube", 30, 2).cluster_limit() == 10
    assert make_family("hypercube", 30, 2, limit=12).cluster_limit() == 12


# ----------------------------------------------------------------------------- errors


def test_make_family_errors_name_the_value():
    with pytest.raises(ValueError, match="'swiss_roll'"):
        make_family("swiss_roll", 4, 2)
    with pytest.raises(ValueError, match="'sprad'"):
        make_family("gaussian_mixture", 4, 2, sprad=0.1)
    with pytest.raises(ValueError, match="'groups'"):
        make_family("gaussian_mixture", 4, 2, groups=2)  # an option of another family
    with pytest.raises(ValueError, match="dim=0"):
        make_family("hypercube", 0, 2)
    family = make_family("hierarchical_mixture", 4, 8, groups=2)
    assert family.groups == 2


@pytest.mark.parametrize(
    ("name", "dim", "options", "bad"),
    [
        ("gaussian_mixture", 4, {}, 0),
        ("gaussian_mixture", 4, {"limit": 10}, 11),
        ("hierarchical_mixture", 4, {"groups": 4}, 6),  # not a multiple of groups
        ("hierarchical_mixture", 4, {}, -4),
        ("hypercube", 5, {}, 6),  # more invariant coordinates than dimensions
        ("hypercube", 20, {}, 11),
    ],
)
def test_check_clusters_names_the_value(name, dim, options, bad):
    family = make_family(name, dim, 8, **options)
    with pytest.raises(ValueError, match=f"clusters={bad}"):
        family.check_clusters(bad)


@pytest.mark.parametrize(
    ("name", "dim", "options", "good"),
    [
        ("gaussian_mixture", 4, {"limit": 10}, [1, 10]),
        ("hierarchical_mixture", 4, {"groups": 4}, [4, 8, 1024]),
        ("hypercube", 5, {}, [1, 5]),
    ],
)
def test_check_clusters_accepts_valid_values(name, dim, options, good):
    family = make_family(name, dim, 8, **options)
    for clusters in good:
        family.check_clusters(clusters)


# ----------------------------------------------------------------------------- indexed_normal

_jit_indexed_normal = jax.jit(indexed_normal, static_argnums=1)


@pytest.mark.parametrize(
    ("big", "small"),
    [((37,), (5,)), ((37,), (1,)), ((9, 13), (4, 6)), ((9, 13), (9, 1)), ((5, 6, 7), (2, 6, 3))],
)
def test_indexed_normal_prefix_property(big, small):
    key = jax.random.key(42)
    full = _jit_indexed_normal(key, big)
    part = _jit_indexed_normal(key, small)
    chex.assert_shape(full, big)
    chex.assert_type(full, jnp.float32)
    np.testing.assert_array_equal(np.asarray(full)[tuple(slice(0, n) for n in small)], part)


def test_indexed_normal_eager_equals_jit():
    key = jax.random.key(3)
    np.testing.assert_array_equal(indexed_normal(key, (3, 4)), _jit_indexed_normal(key, (3, 4)))


def test_indexed_normal_statistics():
    key = jax.random.key(0)
    for shape in [(20000,), (100, 200), (20, 25, 40)]:
        x = np.asarray(_jit_indexed_normal(key, shape)).ravel()
        n = x.size
        assert abs(x.mean()) < 4 / np.sqrt(n)
        assert abs(x.std() - 1) < 4 * np.sqrt(0.5 / n)
        assert abs(np.mean(np.abs(x) < 1) - 0.6827) < 0.02
        assert abs(np.mean(x**4) - 3) < 0.25
    # Rows and columns are not copies of each other, and other keys give other draws.
    x = np.asarray(_jit_indexed_normal(key, (100, 200)))
    corr = np.corrcoef(x)
    assert np.max(np.abs(corr[~np.eye(100, dtype=bool)])) < 0.35
    corr_cols = np.corrcoef(x.T)
    assert np.max(np.abs(corr_cols[~np.eye(200, dtype=bool)])) < 0.5
    other = np.asarray(_jit_indexed_normal(jax.random.key(1), (100, 200)))
    assert abs(np.corrcoef(x.ravel(), other.ravel())[0, 1]) < 0.02
