"""The runner trains a device's cells in groups (``RunOptions.cells_at_once``) with the same
results as one vmap over all of them, whether or not the groups divide the cells."""

from __future__ import annotations

import numpy as np
import pytest

from clj.config import SweepConfig
from clj.distributed import cell_mesh
from clj.evaluate import METRICS
from clj.plan import plan_programs
from clj.runner import HeldOutSampler, RunOptions, Scorer, run_program


def test_training_in_groups_matches_one_vmap():
    config = SweepConfig(
        data="gaussian_mixture",
        dim=4,
        depth=1,
        batch=8,
        steps=20,
        eval_size=32,
        seeds=5,
        widths=(6,),
        clusters=(3,),
        out_dims=(2,),
        lr=(1e-2,),
        log_every=10,
    )
    (program,) = plan_programs(config)
    with pytest.raises(ValueError, match="cells_at_once=0"):
        run_program(program, options=RunOptions(cells_at_once=0))
    # Evaluation does not depend on how training groups cells: compile it once for all runs.
    shared = {"scorer": Scorer(cell_mesh()), "sampler": HeldOutSampler(cell_mesh())}
    whole = run_program(program, options=RunOptions(cells_at_once=len(program.cells)), **shared)
    for at_once in (1, 2):  # 5 cells: groups of 2 leave a remainder of 1
        grouped = run_program(program, options=RunOptions(cells_at_once=at_once), **shared)
        np.testing.assert_allclose(grouped.curves, whole.curves, rtol=1e-5, atol=1e-6)
        for name in METRICS:
            np.testing.assert_allclose(
                grouped.metrics[name], whole.metrics[name], rtol=1e-4, atol=1e-5, err_msg=name
            )


def test_cpu_compile_options_leave_what_xla_flags_sets_to_them(monkeypatch):
    """The run-once programs' older emitters, the LLVM level and the codegen split are asked for
    only where ``XLA_FLAGS`` does not set them; the training program keeps the fusion emitters."""
    from clj.runner import _can_choose_emitters, _cpu_options, _xla_accepts, codegen_modules

    monkeypatch.setenv("XLA_FLAGS", "")
    emitters = {"xla_cpu_use_fusion_emitters": False} if _can_choose_emitters() else {}
    split = "xla_cpu_parallel_codegen_split_count"
    modules = {split: codegen_modules()} if _xla_accepts(split, 1) else {}
    assert _cpu_options(1) == {"xla_backend_optimization_level": 1, **modules}
    assert _cpu_options(1, fusion_emitters=False) == {
        "xla_backend_optimization_level": 1,
        **modules,
        **emitters,
    }
    flags = f"--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=true --{split}=4"
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert _cpu_options(1, fusion_emitters=False) == {}


def test_codegen_modules_share_the_cores_among_the_compiles(monkeypatch):
    """One module per program while the concurrent compiles outnumber the cores, more with more
    cores; never fewer than one."""
    import clj.runner as R

    monkeypatch.setattr(R, "COMPILE_THREADS", 3)
    for cores, modules in ((1, 1), (2, 1), (3, 1), (5, 1), (6, 2), (16, 5), (96, 32)):
        monkeypatch.setattr(R.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert R.codegen_modules() == modules, cores
