"""Tests of clj.sweep.sweep on a tiny grid, and of SweepConfig validation.

Three sweeps of the same grid run once for the module: one padded program for every width; one
program whose cells train at their own width class (the cost model forced to split by pricing
classes at zero); and one program per width (as planned for an accelerator, run here).
"""

import re

import numpy as np
import pytest

from clj import buckets
from clj.config import STATIC_AXES, ConfigError, SweepConfig
from clj.evaluate import METRICS
from clj.plan import plan_programs
from clj.sweep import CELL_COLUMNS, sweep

TINY = dict(
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
COLUMNS = ["cell", *STATIC_AXES, *CELL_COLUMNS, "program", *METRICS]


@pytest.fixture(scope="module")
def padded():
    config = SweepConfig(**TINY, bucket_widths=False)
    return sweep(config, progress=False)


def _free_compiles(mp: pytest.MonkeyPatch) -> None:
    for prices in (buckets.COMPILE_FLOPS, buckets.CLASS_FLOPS):
        for backend in list(prices):
            mp.setitem(prices, backend, 0.0)


@pytest.fixture(scope="module")
def classed():
    config = SweepConfig(**TINY, bucket_widths=True)
    with pytest.MonkeyPatch.context() as mp:
        _free_compiles(mp)
        return sweep(config, progress=False)


@pytest.fixture(scope="module")
def bucketed():
    config = SweepConfig(**TINY, bucket_widths=True)
    with pytest.MonkeyPatch.context() as mp:
        _free_compiles(mp)
        programs = plan_programs(config, backend="gpu")
    return sweep(config, progress=False, programs=programs)


def test_table_has_one_row_per_cell(padded):
    config, table = padded.config, padded.table
    assert config.num_cells == 8
    assert list(table.columns) == COLUMNS
    assert len(table) == config.num_cells
    assert table["cell"].tolist() == list(range(config.num_cells))
    for (_, row), cell in zip(table.iterrows(), config.cells(), strict=True):
        for name, value in cell.items():
            assert row[name] == value, name
    assert sorted(set(zip(table["seed"], table["width"], table["clusters"], strict=True))) == [
        (s, w, c) for s in (0, 1) for w in (3, 8) for c in (2, 3)
    ]
    assert (table["diverged"] == 0).all()
    metrics = table[[m for m in METRICS if m != "diverged"]].to_numpy(dtype=float)
    assert np.all(np.isfinite(metrics))


def test_curves_have_steps_over_log_every_points(padded):
    curves, config = padded.curves, padded.config
    points = config.steps[0] // config.log_every
    assert list(curves.columns) == ["cell", "step", "loss"]
    assert len(curves) == config.num_cells * points
    for _, group in curves.groupby("cell"):
        assert group["step"].tolist() == [config.log_every * (i + 1) for i in range(points)]
        assert np.all(np.isfinite(group["loss"]))
    assert sorted(curves["cell"].unique()) == list(range(config.num_cells))


def test_programs(padded, classed, bucketed):
    assert len(padded.programs) == 1
    assert padded.programs[0]["max_width"] == 8
    assert padded.programs[0]["cells"] == 8
    assert padded.programs[0]["width_classes"] == []
    assert (padded.table["program"] == 0).all()
    # With compiles priced at zero, every width gets a class of its own on a CPU ...
    assert len(classed.programs) == 1
    assert classed.programs[0]["width_classes"] == [3, 8]
    assert classed.programs[0]["max_width"] == 8
    assert (classed.table["program"] == 0).all()
    # ... and a program of its own, padded to that width, on an accelerator.
    assert [p["max_width"] for p in bucketed.programs] == [3, 8]
    assert [p["cells"] for p in bucketed.programs] == [4, 4]
    for _, row in bucketed.table.iterrows():
        assert bucketed.programs[row["program"]]["max_width"] == row["width"]
    assert padded.wall_s > 0


@pytest.mark.parametrize("split", ["classed", "bucketed"])
def test_bucketing_does_not_change_results(padded, split, request):
    a, b = padded.table, request.getfixturevalue(split).table
    assert list(b.columns) == COLUMNS
    np.testing.assert_array_equal(a["cell"], b["cell"])
    for name in [*STATIC_AXES, *CELL_COLUMNS]:
        assert a[name].tolist() == b[name].tolist(), name
    for name in METRICS:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-5, err_msg=name)
    curves = request.getfixturevalue(split).curves
    np.testing.assert_array_equal(curves["step"], padded.curves["step"])
    np.testing.assert_allclose(curves["loss"], padded.curves["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(curves["cell"], padded.curves["cell"])


# ----------------------------------------------------------------------------- validation


def test_valid_configs():
    config = SweepConfig(**TINY)
    assert config.data == ("gaussian_mixture",)  # scalars become 1-tuples
    assert config.widths == (3, 8)
    assert SweepConfig.from_dict(config.to_dict()) == config
    dashed = SweepConfig.from_dict({"out-dims": [3], "log-every": 5, "steps": [10]})
    assert dashed.out_dims == (3,) and dashed.log_every == 5
    SweepConfig()  # the flagship defaults are valid


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"widths": (4, 0)}, "widths: 0"),
        ({"widths": (-3,)}, "widths: -3"),
        ({"data": "hypercube", "dim": 4, "clusters": (2, 5)}, "clusters=5"),
        ({"data": "gaussian_mixture", "clusters": (5000,)}, "clusters=5000"),
        ({"data": "hierarchical_mixture", "clusters": (6,)}, "clusters=6"),
        ({"loss": ("spectral", "hinge")}, "'hinge'"),
        ({"data": "swiss_roll"}, "'swiss_roll'"),
        ({"encoder": "cnn"}, "'cnn'"),
        ({"optimizer": "lion"}, "'lion'"),
        ({"lr": (1e-3, -0.1)}, "-0.1"),
        ({"lr": (0.0,)}, "lr: 0.0"),
        ({"weight_decay": (-1.0,)}, "-1.0"),
        ({"temperature": (float("inf"),)}, "inf"),
        ({"batch": (1,)}, "batch: 1"),
        ({"steps": (25,), "log_every": 10}, "steps=25"),
        ({"seeds": 0}, "seeds: 0"),
        ({"dim": (2.5,)}, "dim: 2.5"),
        ({"widths": ()}, "widths"),
        ({"data_options": {"sprad": 0.1}}, "'sprad'"),
    ],
)
def test_invalid_values_raise_config_error_naming_them(change, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        SweepConfig(**{**TINY, **change})


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="'widht'"):
        SweepConfig.from_dict({"widht": [2]})
    with pytest.raises(ConfigError, match="'batch_size'"):
        SweepConfig.from_dict({**TINY, "batch_size": 8})
    with pytest.raises(ConfigError, match="batch: 1"):
        SweepConfig.from_dict({**TINY, "batch": 1})


def test_dim_defaults_to_each_familys_natural_input():
    from clj.data import FAMILIES

    fixed = {name: cls.fixed_dim() for name, cls in FAMILIES.items() if cls.fixed_dim()}
    assert fixed == {"digits": 64, "mnist": 784, "fashion_mnist": 784, "cifar10": 3072}
    assert SweepConfig(data="hypercube", clusters=[4]).dim == (32,)
    assert SweepConfig(data="digits", clusters=[10]).dim == (64,)  # 8 × 8 × 1 pixels
    assert SweepConfig.from_dict({"data": "digits", "clusters": [10]}).dim == (64,)
    assert SweepConfig(data="digits", dim=64, clusters=[10]).dim == (64,)
    with pytest.raises(ConfigError, match=re.escape("digits: 64, hypercube: 32")):
        SweepConfig(data=["digits", "hypercube"], clusters=[4])
    with pytest.raises(ConfigError, match="use dim=64"):
        SweepConfig(data="digits", dim=32, clusters=[10])
