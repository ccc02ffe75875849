"""The supervised objective: its loss, padding invariance, and learning a separable mixture.

A supervised grid through ``clj.sweep`` (both objectives, one program each) runs in
``tests/test_reproduce_rld_gcn.py``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.data import make_family
from clj.models import head_logits, supervised_loss
from clj.models.supervised import make_trainer
from clj.spec import Spec
from clj.train import OBJECTIVES, make_train

DIM = 6


def _cell(**values):
    defaults = dict(
        seed=3,
        width=8,
        clusters=3,
        out_dim=3,
        lr=1e-2,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return {**defaults, **values}


def test_loss_and_head_match_numpy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 4)).astype(np.float32)
    head = {"kernel": rng.normal(size=(4, 5)).astype(np.float32), "bias": np.ones(5, np.float32)}
    labels = rng.integers(0, 3, 7).astype(np.int32)
    logits = np.asarray(head_logits(head, z, 3))
    expected = z @ head["kernel"] + head["bias"]
    np.testing.assert_allclose(logits[:, :3], expected[:, :3], rtol=1e-5)
    assert np.all(np.isneginf(logits[:, 3:]))
    shifted = expected[:, :3] - expected[:, :3].max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(
        supervised_loss(logits, labels), -log_p[np.arange(7), labels].mean(), rtol=1e-5
    )


def test_registered_and_rejects_other_losses():
    assert OBJECTIVES["supervised"] == "clj.models.supervised"
    spec = Spec(family=make_family("gaussian_mixture", DIM, 3), loss="spectral")
    with pytest.raises(ValueError, match="loss='spectral'"):
        make_trainer(spec)


def test_padded_cell_trains_like_unpadded_network_and_learns():
    """Width 8 in 16, out_dim 3 in 5, classes 3 in 5, vmapped beside a full-size cell, against the
    unpadded network: same loss curve and active parameters, zero padding; and the head learns
    the separable mixture."""
    w, k, c, W, K, C = 8, 3, 3, 16, 5, 5
    common = dict(depth=2, loss="supervised", batch=32, steps=150, log_every=10, eval_size=32)
    small = Spec(
        family=make_family("gaussian_mixture", DIM, c), max_width=w, max_out_dim=k, **common
    )
    padded = Spec(
        family=make_family("gaussian_mixture", DIM, C), max_width=W, max_out_dim=K, **common
    )
    grid = stack_cells(
        [_cell(width=w, out_dim=k, clusters=c), _cell(seed=4, width=W, out_dim=K, clusters=C)]
    )
    state_p, curve_p = jax.jit(jax.vmap(make_train(padded).train))(grid)
    cell = jax.tree.map(lambda a: a[0], grid)
    trainer = make_train(small)
    state_s, curve_s = jax.jit(trainer.train)(cell)

    assert curve_p.shape == (2, padded.curve_length) and np.all(np.isfinite(curve_p))
    np.testing.assert_allclose(curve_p[0], curve_s, rtol=1e-5, atol=1e-6)
    assert np.all(curve_p[:, -1] < 0.5 * curve_p[:, 0])
    params_p = jax.tree.map(lambda a: a[0], state_p.params)
    for a, b in zip(jax.tree.leaves(state_s.params), jax.tree.leaves(params_p), strict=True):
        block = np.asarray(b)[tuple(slice(0, n) for n in a.shape)]
        np.testing.assert_allclose(block, a, rtol=1e-5, atol=1e-5)
        assert np.abs(b).sum() == pytest.approx(np.abs(block).sum(), rel=1e-6)  # zero elsewhere

    # The head classifies fresh views of the cell's clusters.
    views = small.family.sample(jax.random.key(5), state_s.world, cell, 256)
    z = trainer.encode(state_s.params, cell, views.x1)
    pred = np.argmax(np.asarray(head_logits(state_s.params["head"], z, c)), axis=1)
    assert np.mean(pred == np.asarray(views.fine)) >= 0.95
