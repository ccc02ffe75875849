"""The supervised objective: its loss, and a padded grid through ``clj.sweep`` that learns and
trains each cell like its unpadded network."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.config import SweepConfig
from clj.data import make_family
from clj.models import head_logits, supervised_loss
from clj.models.supervised import make_trainer
from clj.reproduce.grid import run_grid
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


def test_padded_cell_in_a_sweep_trains_like_unpadded_network_and_learns():
    """A supervised grid through ``clj.sweep``: width 8 in 16, out_dim 3 in 5, classes 3 in 5 in
    one padded program. The small cell matches the unpadded network (same loss curve, same
    active parameters, zero padding), and every cell learns its separable mixture."""
    w, k, c = 8, 3, 3
    config = SweepConfig(
        data="gaussian_mixture",
        dim=DIM,
        loss="supervised",
        widths=(w, 16),
        clusters=(c, 5),
        out_dims=(k, 5),
        lr=(1e-2,),
        seeds=1,
        steps=150,
        batch=32,
        eval_size=64,
        log_every=10,
        bucket_widths=False,
    )
    result = run_grid(config, progress=False)
    table = result.table
    assert len(table) == 8 and (table.loss == "supervised").all()
    assert (table.diverged == 0).all() and (table.probe_fine >= 0.95).all()
    curves = result.curves.groupby("cell").loss
    assert (curves.last() < 0.5 * curves.first()).all()

    ((program, states),) = result.states
    assert program.spec.max_width == 16 and program.spec.max_out_dim == 5
    j = next(
        i
        for i, cell in enumerate(program.cells)
        if (cell["width"], cell["out_dim"], cell["clusters"]) == (w, k, c)
    )
    cell = jax.tree.map(lambda a: a[0], stack_cells([program.cells[j]]))
    small = dataclasses.replace(
        program.spec, family=make_family("gaussian_mixture", DIM, c), max_width=w, max_out_dim=k
    )
    trainer = make_train(small)
    state_s, curve_s = jax.jit(trainer.train)(cell)
    curve_p = result.curves[result.curves.cell == program.index[j]].loss.to_numpy()
    np.testing.assert_allclose(curve_p, curve_s, rtol=1e-5, atol=1e-6)
    params_p = jax.tree.map(lambda a: a[j], states.params)
    for a, b in zip(jax.tree.leaves(state_s.params), jax.tree.leaves(params_p), strict=True):
        block = np.asarray(b)[tuple(slice(0, n) for n in a.shape)]
        np.testing.assert_allclose(block, a, rtol=1e-5, atol=1e-5)
        assert np.abs(b).sum() == pytest.approx(np.abs(block).sum(), rel=1e-6)  # zero elsewhere

    # The head itself classifies fresh views of the cell's clusters.
    views = small.family.sample(jax.random.key(5), state_s.world, cell, 256)
    z = trainer.encode(state_s.params, cell, views.x1)
    pred = np.argmax(np.asarray(head_logits(state_s.params["head"], z, c)), axis=1)
    assert np.mean(pred == np.asarray(views.fine)) >= 0.95
