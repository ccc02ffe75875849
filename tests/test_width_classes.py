"""Width classes: the chunk layout, and training a group at its class's width."""

import dataclasses
import functools
import os
import subprocess
import sys

import chex
import jax
import numpy as np
import pandas as pd
import pytest

from clj.cell import stack_cells, stream_ids
from clj.config import SweepConfig
from clj.evaluate import make_features, make_heldout
from clj.plan import plan_programs
from clj.runner import feature_classes
from clj.train import make_train
from clj.width_classes import (
    class_index,
    class_layout,
    map_by_class,
    run_by_class,
    run_by_stream,
)

TWO_CLASSES = dict(
    data="gaussian_mixture",
    dim=4,
    depth=1,
    batch=8,
    steps=20,
    eval_size=32,
    seeds=2,
    widths=(3, 8),
    clusters=(2, 3),
    out_dims=(2,),
    lr=(1e-2,),
    log_every=5,
)
"""A tiny grid whose widths 3 and 8 become two classes when classes cost nothing."""


def test_class_index_is_the_narrowest_class_that_fits():
    classes = (4, 16, 64)
    np.testing.assert_array_equal(class_index([1, 4, 5, 16, 17, 64], classes), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="width 65 is wider than the widest class 64"):
        class_index([3, 65], classes)


@pytest.mark.parametrize(
    ("counts", "devices", "at_once", "limit"),
    [
        ({256: 24, 64: 24, 32: 24, 16: 24, 8: 24, 4: 24}, 2, 4, 10_000),
        ({64: 5, 8: 7, 2: 3}, 2, 4, 10_000),
        ({64: 5, 8: 7, 2: 3}, 3, 2, 12),
        ({16: 9}, 4, 4, 16),
        ({64: 1, 8: 1}, 1, 4, 4),
    ],
)
def test_layout_places_every_cell_once_in_groups_of_one_class(counts, devices, at_once, limit):
    classes = (8, 32, 256)
    widths = [w for w, n in counts.items() for _ in range(n)]
    layout = class_layout(widths, classes, devices, at_once, limit)
    assert layout.chunk_cells <= max(limit, devices * at_once)
    assert layout.chunk_cells % (devices * at_once) == 0
    assert sorted(layout.index[layout.real]) == list(range(len(widths)))
    kind = class_index(np.asarray(widths), classes)[layout.index]
    groups = kind.reshape(layout.chunks, devices, -1, at_once)
    assert np.all(groups == groups[..., :1]), "a group mixes classes"
    # Every device of a chunk gets the same number of groups of each class, give or take one.
    for chunk in groups[..., 0]:
        per_device = np.stack([np.bincount(d, minlength=len(classes)) for d in chunk])
        assert np.all(per_device.max(axis=0) - per_device.min(axis=0) <= 1)


def test_layout_bundles_streams_whose_compositions_agree():
    """Reference-like cells (6 streams × widths 4, 8, 16, 32, 64, 256; classes 32, 64, 256):
    every stream holds 4, 1 and 1 cells of the classes, so the cells are dealt in bundles of
    three whole streams, each bundle class by class and stream by stream, every device getting
    one bundle."""
    classes, at_once, devices = (32, 64, 256), 3, 2
    widths = [w for _ in range(6) for w in (4, 8, 16, 32, 64, 256)]
    streams = [s for s in range(6) for _ in range(6)]
    layout = class_layout(widths, classes, devices, at_once, 10_000, streams)
    assert layout.bundle == (4, 1, 1) and layout.streams == 3 and layout.shared == ()
    assert layout.chunks == 1 and layout.chunk_cells == len(widths) and layout.real.all()
    assert sorted(layout.index[0]) == list(range(len(widths)))
    for bundle in layout.index.reshape(devices, 3 * 6):
        ids = [streams[i] for i in bundle]
        # Class 32: four cells of each stream in turn; then one cell of each stream per class.
        assert ids[:12] == [s for s in ids[:12:4] for _ in range(4)]
        assert ids[12:15] == ids[15:18] == ids[:12:4]
        assert [widths[i] for i in bundle] == [4, 8, 16, 32] * 3 + [64] * 3 + [256] * 3
    # A chunk too small for a bundle: groups of one class, class 32's of one stream.
    small = class_layout(widths, classes, devices, 4, 8, streams)
    assert small.bundle == () and small.shared == (True, False, False)
    # Nine streams in bundles of two, chunks of 36 cells: bundles would pad more width than
    # the groups.
    nine = class_layout(
        [w for _ in range(9) for w in (4, 8, 16, 32, 64, 256)],
        classes,
        devices,
        2,
        36,
        [s for s in range(9) for _ in range(6)],
    )
    assert nine.bundle == () and nine.shared == (True, False, False)


@pytest.mark.parametrize(
    ("num_streams", "devices", "at_once", "limit"),
    [(6, 2, 4, 10_000), (7, 2, 2, 16), (6, 3, 1, 12), (3, 1, 4, 16), (8, 2, 2, 32)],
)
def test_bundles_place_every_cell_once_in_chunks_of_whole_bundles(
    num_streams, devices, at_once, limit
):
    classes = (8, 64, 256)
    widths = [w for _ in range(num_streams) for w in (4, 8, 64, 256)]
    streams = [s for s in range(num_streams) for _ in range(4)]
    layout = class_layout(widths, classes, devices, at_once, limit, streams)
    n = layout.streams
    assert layout.bundle == (2, 1, 1) and n == at_once
    assert layout.chunk_cells <= limit and layout.chunk_cells % (devices * n * 4) == 0
    assert sorted(layout.index[layout.real]) == list(range(len(widths)))
    # No more padded slots than groups of one class would have.
    groups = class_layout(widths, classes, devices, at_once, limit)
    assert layout.index.size <= groups.index.size
    for bundle in layout.index.reshape(-1, n * 4):
        assert [widths[i] for i in bundle] == [4, 8] * n + [64] * n + [256] * n
        ids = [streams[i] for i in bundle]
        assert ids[: 2 * n : 2] == ids[2 * n : 3 * n] == ids[3 * n :]


def test_layout_gives_a_class_groups_of_one_stream_when_its_streams_fill_them():
    """Streams whose compositions differ (one stream lacks its width-256 cell): no bundles, but
    class 32 holds four cells of each stream, so each of its groups is one stream; classes 64
    and 256 keep their plain groups. Either way the chunk holds as many slots."""
    classes, at_once = (32, 64, 256), 4
    widths = [w for _ in range(4) for w in (4, 8, 16, 32, 64, 256)][:-1]
    streams = [s for s in range(4) for _ in range(6)][:-1]
    plain = class_layout(widths, classes, 2, at_once, 10_000)
    layout = class_layout(widths, classes, 2, at_once, 10_000, streams)
    assert plain.shared == (False, False, False) and plain.bundle == ()
    assert layout.shared == (True, False, False) and layout.bundle == ()
    assert layout.index.shape == plain.index.shape
    assert sorted(layout.index[layout.real]) == list(range(len(widths)))
    groups = layout.index.reshape(-1, at_once)
    for group in groups:
        if class_index(widths[group[0]], classes) == 0:
            assert len({streams[i] for i in group}) == 1, group
            assert sorted(widths[i] for i in group) == [4, 8, 16, 32]
    # A stream with fewer cells of the class than a group leaves the class unshared.
    odd = class_layout([*widths[:-5], 4, 8, 16], classes, 2, at_once, 10_000, streams[:-2])
    assert odd.shared == (False, False, False)


FOUR_WIDTHS = dict(
    data="gaussian_mixture",
    dim=4,
    depth=2,
    batch=8,
    steps=10,
    eval_size=16,
    widths=(2, 3, 7, 16),
    clusters=(3,),
    out_dims=(2,),
    log_every=5,
    bucket_widths=False,
)
"""Cells of widths 2, 3, 7 and 16 in one program padded to 16."""


def _trained_by_class(seeds: int, classes: tuple[int, ...]):
    """The :data:`FOUR_WIDTHS` cells of ``seeds`` seeds ordered by class and trained 10 steps by
    ``classes`` in groups of 2: ``(program, trainers per class, cells, shapes per class, state,
    curves)``."""
    (program,) = plan_programs(SweepConfig(**FOUR_WIDTHS, seeds=seeds))
    trainers = [make_train(dataclasses.replace(program.spec, max_width=w)) for w in classes]
    order = np.argsort([class_index(c["width"], classes) for c in program.cells], kind="stable")
    cells = stack_cells([program.cells[i] for i in order])
    one = jax.tree.map(lambda a: a[0], cells)
    shapes = [jax.eval_shape(t.init, one) for t in trainers]
    state = jax.jit(jax.vmap(trainers[-1].init))(cells)
    runs = [functools.partial(t.run, num_steps=10) for t in trainers]
    state, curves = jax.jit(run_by_class(runs, shapes, classes, at_once=2))(state, cells)
    return program, trainers, cells, shapes, state, curves


def test_a_group_trains_at_its_class_as_cells_padded_to_that_class_alone_do():
    """Cells of widths 2, 3 and 7 in a state padded to 16, trained by class (4 or 16): each
    equals (to float rounding) the same cell trained alone in a program padded to its class, and
    its state stays exactly zero beyond its class."""
    classes = (4, 16)
    _, trainers, cells, _, state, curves = _trained_by_class(2, classes)
    train_alone = [jax.jit(t.train) for t in trainers]

    for j in range(len(cells.width)):
        cell = jax.tree.map(lambda a, j=j: a[j], cells)
        k = int(class_index(int(cell.width), classes))
        alone, curve = train_alone[k](cell)
        np.testing.assert_allclose(curves[j], curve, rtol=1e-5, atol=1e-6)
        mine = jax.tree.map(lambda a, j=j: a[j], state.params)
        for got, want in zip(jax.tree.leaves(mine), jax.tree.leaves(alone.params), strict=True):
            cut = got[tuple(slice(0, n) for n in want.shape)]
            np.testing.assert_allclose(cut, want, rtol=1e-4, atol=1e-5)
            rest = np.asarray(got).copy()
            rest[tuple(slice(0, n) for n in want.shape)] = 0.0
            assert not rest.any(), "padding beyond the class is not zero"


def test_groups_of_one_stream_train_by_class_exactly_as_groups_that_draw_per_cell():
    """Two seeds' streams of widths 2, 3 (class 4) and 7, 16 (class 16), in groups of two cells
    of one stream: trained with ``run_shared`` (one draw a step per group), every state and
    curve equals, bit for bit, the same groups trained with ``run``."""
    (program,) = plan_programs(SweepConfig(**FOUR_WIDTHS, seeds=2))
    classes = (4, 16)
    trainers = [make_train(dataclasses.replace(program.spec, max_width=w)) for w in classes]
    order = sorted(
        range(len(program.cells)),
        key=lambda i: (program.cells[i]["width"] > 4, program.cells[i]["seed"]),
    )
    cells = stack_cells([program.cells[i] for i in order])
    one = jax.tree.map(lambda a: a[0], cells)
    shapes = [jax.eval_shape(t.init, one) for t in trainers]
    state = jax.jit(jax.vmap(trainers[-1].init))(cells)

    def trained(grouped):
        runs = [
            functools.partial(t.run_shared if grouped else t.run, num_steps=10) for t in trainers
        ]
        return jax.jit(run_by_class(runs, shapes, classes, 2, [grouped] * 2))(state, cells)

    np.testing.assert_array_equal(cells.seed.reshape(-1, 2)[:, 0], cells.seed.reshape(-1, 2)[:, 1])
    chex.assert_trees_all_equal(trained(True), trained(False))


def test_bundles_of_streams_train_exactly_as_groups_of_one_class():
    """Two seeds' streams of widths 2, 3 (class 4) and 7, 16 (class 16), laid out in one
    bundle of both streams: ``run_by_stream`` (one draw a step per stream, for both classes)
    gives every cell's state bit for bit as ``run_by_class`` over groups of one class, each
    cell drawing its own batches, and the same curves to float rounding."""
    (program,) = plan_programs(SweepConfig(**FOUR_WIDTHS, seeds=2))
    classes = (4, 16)
    trainers = [make_train(dataclasses.replace(program.spec, max_width=w)) for w in classes]
    widths = [c["width"] for c in program.cells]
    streams = stream_ids(program.cells, program.spec.family.cell_fields)
    layout = class_layout(widths, classes, 1, 2, 100, streams)
    assert layout.bundle == (2, 2) and layout.streams == 2 and layout.real.all()
    cells = stack_cells([program.cells[i] for i in layout.index[0]])
    np.testing.assert_array_equal(cells.width, [2, 3, 2, 3, 7, 16, 7, 16])
    one = jax.tree.map(lambda a: a[0], cells)
    shapes = [jax.eval_shape(t.init, one) for t in trainers]
    state = jax.jit(jax.vmap(trainers[-1].init))(cells)
    by_stream = run_by_stream(trainers, shapes, layout.bundle, layout.streams, num_steps=10)
    runs = [functools.partial(t.run, num_steps=10) for t in trainers]
    by_class = run_by_class(runs, shapes, classes, at_once=2)
    got, want = jax.jit(by_stream)(state, cells), jax.jit(by_class)(state, cells)
    chex.assert_shape(got[1], (8, 2))
    chex.assert_trees_all_equal(got[0], want[0])
    # A step's loss is summed over more cells at once, so it may round differently.
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    with pytest.raises(ValueError, match="num_steps=7 is not a multiple of 5"):
        run_by_stream(trainers, shapes, layout.bundle, 2, num_steps=7)


def test_the_planner_keeps_buckets_as_classes_on_a_cpu_only():
    reference = SweepConfig(
        data="gaussian_mixture",
        dim=32,
        seeds=4,
        widths=(4, 8, 16, 32, 64, 256),
        clusters=(2, 4, 8, 16, 32, 64),
        out_dims=(8,),
        depth=2,
        batch=256,
        steps=300,
    )
    (program,) = plan_programs(reference, backend="cpu")
    assert program.width_classes == (32, 64, 256)
    assert program.spec.max_width == 256
    assert len(program.cells) == 144
    assert "widths≤32/64/256" in program.label
    # On an accelerator a compile outprices the padding: one program, no classes.
    (on_gpu,) = plan_programs(reference, backend="gpu")
    assert on_gpu.width_classes == () and on_gpu.spec.max_width == 256
    # A CNN's padded channels are not cut by class: its buckets stay programs.
    cnn = SweepConfig(
        data="digits", dim=64, encoder="cnn2d", widths=[4, 64], clusters=[10], steps=2000
    )
    assert all(not p.width_classes for p in plan_programs(cnn, backend="cpu"))


def test_chunked_checkpointed_and_reloaded_class_sweeps_agree(tmp_path, monkeypatch):
    """A program with width classes run in one chunk, in chunks of 4 cells with training
    checkpoints, and again from those chunks' saved results: the same table."""
    from clj import buckets
    from clj.runner import RunOptions
    from clj.sweep import sweep

    monkeypatch.setitem(buckets.CLASS_FLOPS, "cpu", 0.0)
    config = SweepConfig(**TWO_CLASSES)
    (program,) = plan_programs(config, backend="cpu")
    assert program.width_classes == (3, 8)
    whole = sweep(config, progress=False)
    options = RunOptions(max_cells_per_chunk=4, checkpoint_dir=tmp_path, checkpoint_every=10)
    chunked = sweep(config, progress=False, options=options)
    assert chunked.programs[0]["chunks"] == 2
    reloaded = sweep(config, progress=False, options=options)
    for other in (chunked, reloaded):
        pd.testing.assert_frame_equal(other.table, whole.table, check_exact=False, rtol=1e-5)
        np.testing.assert_allclose(other.curves["loss"], whole.curves["loss"], rtol=1e-5)
    np.testing.assert_array_equal(reloaded.curves["loss"], chunked.curves["loss"])
    # Chunks of 8 cells would read the saved 4-cell chunk 0 as theirs: refused.
    regrouped = RunOptions(max_cells_per_chunk=8, checkpoint_dir=tmp_path, checkpoint_every=10)
    with pytest.raises(ValueError, match=r"saved chunk p0-c0 .* another arrangement of cells"):
        sweep(config, progress=False, options=regrouped)


def test_sweeps_that_draw_per_bundle_per_group_and_per_cell_are_equal(monkeypatch):
    """Two learning rates per seed, cluster count and class: the cells are dealt in bundles of
    two streams (one draw a step per stream for both classes); with bundles turned off each
    group of two is one stream (one draw a step per group); without streams every cell draws
    its own. The three tables are equal, bit for bit, and the curves to float rounding."""
    from clj import buckets, runner, width_classes
    from clj.runner import RunOptions
    from clj.sweep import sweep

    monkeypatch.setitem(buckets.CLASS_FLOPS, "cpu", 0.0)
    config = SweepConfig(**{**TWO_CLASSES, "lr": (1e-2, 3e-3), "steps": 10})
    (program,) = plan_programs(config, backend="cpu")
    options = RunOptions(cells_at_once=2)
    streams = runner.stream_ids(program.cells, program.spec.family.cell_fields)
    assert runner.cell_layout(program, options, streams).bundle == (2, 2)
    bundled = sweep(config, progress=False, options=options)
    monkeypatch.setattr(width_classes, "_bundle_layout", lambda *args: None)
    assert runner.cell_layout(program, options, streams).shared == (True, True)
    grouped = sweep(config, progress=False, options=options)
    monkeypatch.setattr(runner, "stream_ids", lambda cells, fields: None)
    assert runner.cell_layout(program, options).shared == (False, False)
    per_cell = sweep(config, progress=False, options=options)
    for other in (grouped, per_cell):
        pd.testing.assert_frame_equal(bundled.table, other.table, check_exact=True)
        pd.testing.assert_frame_equal(bundled.curves, other.curves, check_exact=False, rtol=1e-6)


_SWEEP_BY_CLASS = f"""
import sys
from clj import buckets
from clj.config import SweepConfig
from clj.sweep import sweep
buckets.CLASS_FLOPS["cpu"] = 0.0
config = SweepConfig(**{{**{TWO_CLASSES!r}, "steps": 10, "seeds": 3}})
result = sweep(config, progress=False)
assert result.programs[0]["width_classes"] == [3, 8], result.programs
result.table.to_csv(sys.argv[1], index=False)
"""


def test_classes_sharded_over_two_devices_equal_one_device(tmp_path):
    """12 cells, classes 3 and 8, groups of 4: on two devices the layout pads each class to whole
    groups per device; the results equal one device's."""
    tables = {}
    for devices in (1, 2):
        env = dict(os.environ)
        env["XLA_FLAGS"] = (
            f"--xla_backend_optimization_level=0 --xla_force_host_platform_device_count={devices}"
        )
        out = tmp_path / f"{devices}.csv"
        proc = subprocess.run(
            [sys.executable, "-c", _SWEEP_BY_CLASS, str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        tables[devices] = pd.read_csv(out)
    pd.testing.assert_frame_equal(tables[2], tables[1], check_exact=False, rtol=1e-4, atol=1e-5)


def test_features_by_class_equal_features_at_the_widest_width():
    """The features program encodes each group at its class (of the narrowest and the widest);
    its features equal (to float rounding) those of every cell encoded at the widest width."""
    classes = (4, 8, 16)
    ends = feature_classes(classes)
    assert [classes[k] for k in ends] == [4, 16]
    # Widths 2 and 3 form a group of class 4, widths 7 and 16 one of class 16.
    program, trainers, cells, shapes, state, curves = _trained_by_class(1, classes)
    heldout = jax.jit(jax.vmap(make_heldout(program.spec)))(state.world, cells)
    features = map_by_class(
        [make_features(trainers[k]) for k in ends], [shapes[k] for k in ends], [4, 16], 2
    )
    got = jax.jit(features)(state, cells, curves, heldout)
    want = jax.jit(jax.vmap(make_features(trainers[-1])))(state, cells, curves, heldout)
    for name, a, b in zip(want._fields, got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)

    # Which function each group got, and the state it saw:
    def seen(k):
        return lambda st, cell, *rest: (k, jax.tree.leaves(st.params)[0].shape[-1])

    k, width = jax.jit(map_by_class([seen(0), seen(1)], [shapes[0], shapes[-1]], [4, 16], 2))(
        state, cells, curves, heldout
    )
    np.testing.assert_array_equal(k, [0, 0, 1, 1])
    np.testing.assert_array_equal(width, [4, 4, 16, 16])
