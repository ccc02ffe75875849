"""Evaluation in two stages: the metrics of features scored in batches, shared by programs."""

from __future__ import annotations

import jax
import numpy as np

from clj.cell import stack_cells
from clj.config import SweepConfig
from clj.distributed import cell_mesh
from clj.evaluate import METRICS, make_evaluate, make_features, score_key
from clj.plan import plan_programs
from clj.runner import Scorer, run_program
from clj.train import make_train

GRID = dict(
    data="hierarchical_mixture",
    dim=4,
    depth=1,
    batch=8,
    steps=20,
    eval_size=32,
    seeds=1,
    clusters=(4, 8),
    out_dims=(2,),
    lr=(1e-2,),
    log_every=10,
)


def _program(width: int):
    (program,) = plan_programs(SweepConfig(**GRID, widths=(width,)))
    return program


def test_scoring_in_batches_matches_evaluate():
    program = _program(3)
    trainer = make_train(program.spec)
    cells = stack_cells([*program.cells, program.cells[0]])  # 3 cells
    state, curve = jax.vmap(trainer.train)(cells)
    expected = jax.vmap(make_evaluate(trainer))(state, cells, curve)
    features = jax.tree.map(np.asarray, jax.vmap(make_features(trainer))(state, cells, curve))
    mesh = cell_mesh(1)
    key = score_key(program.spec)
    for batch in (1, 2, 4):
        timings = {"compile_s": 0.0, "eval_s": 0.0}
        got = Scorer(mesh, {key: batch}).score(program.spec, features, timings)
        assert set(got) == set(METRICS)
        for name in METRICS:
            np.testing.assert_allclose(
                got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name
            )


def test_programs_of_one_shape_compile_their_metrics_once():
    narrow, wide = _program(3), _program(8)
    assert score_key(narrow.spec) == score_key(wide.spec)
    shared = Scorer(cell_mesh())
    for program in (narrow, wide):
        together = run_program(program, scorer=shared).metrics
        alone = run_program(program).metrics
        for name in METRICS:
            np.testing.assert_array_equal(together[name], alone[name], err_msg=name)
    assert shared.compiled_programs == 1
