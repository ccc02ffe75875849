"""``clj reproduce simvae-style`` at its smoke size, and the style regression's R²."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from clj.cell import stack_cells
from clj.cli import main
from clj.data import make_family
from clj.data.style import render_glyphs, translate_images
from clj.reproduce import simvae_style as ss


def test_ridge_r2_matches_scikit_learn():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 5)) * [1.0, 2.0, 0.5, 3.0, 1.0] + 4.0
    z[:, 4] = 1.5  # a constant feature is dropped
    style = z[:, :2] @ np.array([[1.0, -0.5], [0.3, 2.0]]) + rng.normal(size=(300, 2))
    fit, score = slice(0, 200), slice(200, 300)
    mean, sd = z[fit, :4].mean(0), z[fit, :4].std(0)
    model = Ridge(alpha=1e-3 * 200).fit((z[fit, :4] - mean) / sd, style[fit])
    ref = r2_score(style[score], model.predict((z[score, :4] - mean) / sd))
    got = ss.ridge_r2(z[fit], style[fit], z[score], style[score], ridge=1e-3)
    assert got == pytest.approx(ref, rel=1e-9)
    assert 0.5 < got < 1.0
    assert np.isnan(ss.ridge_r2(z[fit] * np.nan, style[fit], z[score], style[score]))


def test_simvae_style_smoke_through_the_command(tmp_path, monkeypatch):
    monkeypatch.setitem(ss.SIZES, "quick", ss.SIZES["smoke"])
    out = tmp_path / "sv"
    assert main(["reproduce", "simvae-style", "--quick", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv")
    size = ss.SIZES["smoke"]
    per_dataset = size.seeds * (2 + len(size.prior_vars))
    assert len(table) == per_dataset * len(size.datasets)
    assert set(table.objective) == {"SimCLR", "VAE", "SimVAE"}
    assert set(table.loss) == {"info_nce", "vae_bernoulli", "simvae_bernoulli"}
    simvae = table[table.objective == "SimVAE"]
    assert sorted(simvae.prior_var) == sorted(size.prior_vars * size.seeds)
    assert (table.diverged == 0).all() and np.isfinite(table.eval_loss).all()
    assert table.content_acc.between(0, 1).all() and np.isfinite(table.style_r2).all()
    assert (table.style_r2 <= 1).all()
    run = json.loads((out / "run.json").read_text())
    assert len(run["checks"]) == 4 * len(size.datasets)
    assert run["verdict"] in {"agrees", "partly agrees", "disagrees"}
    assert (out / "content_vs_style.png").is_file()
    assert "simvae-style" in (out / "summary.md").read_text()


# -- the style_glyphs family ----------------------------------------------------------------------
def test_translate_images_matches_scipy_bilinear_shift():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(3, 9, 7)).astype(np.float32)
    dy, dx = np.float32([1.0, -0.4, 2.3]), np.float32([0.0, 1.7, -3.0])
    got = np.asarray(translate_images(jnp.asarray(images), jnp.asarray(dy), jnp.asarray(dx)))
    for i in range(3):
        ref = ndimage.shift(images[i], (dy[i], dx[i]), order=1, mode="grid-constant", cval=0.0)
        np.testing.assert_allclose(got[i], ref, atol=1e-5)


def test_render_glyphs_matches_the_formula():
    offsets = np.float32([[[0.0, 0.0], [1.5, -2.0]]])
    position = np.float32([[0.5, -1.0]])
    got = np.asarray(render_glyphs(jnp.asarray(offsets), jnp.asarray(position), 0.8, 10))[0]
    r, c = np.mgrid[:10, :10]
    strokes = 4.5 + position[0] + offsets[0]
    ink = [np.exp(-((r - y) ** 2 + (c - x) ** 2) / (2 * 0.8**2)) for y, x in strokes]
    np.testing.assert_allclose(got, 1 - (1 - ink[0]) * (1 - ink[1]), atol=1e-6)


def test_style_glyphs_anchors_carry_their_position_and_views_move_them():
    family = make_family("style_glyphs", 256, 4, noise=0.0, jitter=0.0)
    cell = jax.tree.map(
        lambda a: a[0],
        stack_cells(
            [
                dict(
                    seed=3,
                    width=4,
                    clusters=4,
                    out_dim=2,
                    lr=1e-3,
                    weight_decay=0.0,
                    temperature=0.5,
                    dof=5.0,
                    lam=1.0,
                )
            ]
        ),
    )
    world = family.world(jax.random.key(0), cell)
    anchors, style = family.styled_anchors(jax.random.key(1), world, cell, 64)
    assert anchors.x.shape == (64, 256) and style.shape == (64, 2)
    assert np.abs(np.asarray(style)).max() <= family.position_range
    assert set(np.asarray(anchors.fine).tolist()) <= set(range(4))
    # Each glyph's ink is centred near its position (strokes are centred on it).
    images = np.asarray(anchors.x).reshape(64, 16, 16)
    r, c = np.mgrid[:16, :16]
    centroid = np.stack([(images * r).sum((1, 2)), (images * c).sum((1, 2))], 1)
    centroid = centroid / images.sum((1, 2))[:, None] - 7.5
    assert np.median(np.abs(centroid - np.asarray(style))) < 0.5
    # Same class and position -> same image; a view keeps the pixels' range [0, 1].
    again, _ = family.styled_anchors(jax.random.key(1), world, cell, 64)
    np.testing.assert_array_equal(again.x, anchors.x)
    views = np.asarray(family.augment(jax.random.key(2), world, cell, anchors.x))
    assert views.shape == (64, 256) and views.min() >= 0 and views.max() <= 1
    assert np.abs(views - np.asarray(anchors.x)).max() > 0.1
    with pytest.raises(ValueError, match="dim=250"):
        make_family("style_glyphs", 250, 4)
    with pytest.raises(ValueError, match="thickness=0"):
        make_family("style_glyphs", 256, 4, thickness=0)
