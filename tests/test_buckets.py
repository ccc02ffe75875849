"""Tests of the width-bucket planner against brute force, and of the FLOP model."""

import itertools

import numpy as np
import pytest

from clj.buckets import COMPILE_FLOPS, mlp_step_flops, plan_buckets


def _partitions(items):
    """Every split of ``items`` (a sorted list) into contiguous non-empty runs."""
    n = len(items)
    for cuts in itertools.product((False, True), repeat=n - 1):
        runs, start = [], 0
        for i, cut in enumerate(cuts, start=1):
            if cut:
                runs.append(tuple(items[start:i]))
                start = i
        runs.append(tuple(items[start:]))
        yield runs


def _total(buckets, counts, cost, compile_cost):
    """The cost model: each bucket compiles once and pads its cells to its widest width."""
    return sum(compile_cost + sum(counts[w] for w in b) * cost(max(b)) for b in buckets)


def _assert_valid(buckets, widths):
    flat = [w for b in buckets for w in b]
    assert flat == sorted(widths), buckets
    assert all(len(b) > 0 and list(b) == sorted(b) for b in buckets)


def test_partitions_helper_enumerates_all_splits():
    assert len(list(_partitions([1, 2, 3, 4]))) == 8
    assert [(1, 2, 3)] in list(_partitions([1, 2, 3]))
    assert [(1,), (2,), (3,)] in list(_partitions([1, 2, 3]))


@pytest.mark.parametrize("seed", range(40))
def test_plan_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    widths = sorted(rng.choice(np.arange(1, 300), size=n, replace=False).tolist())
    counts = {w: int(rng.integers(1, 20)) for w in widths}
    # Random increasing per-cell costs: sometimes quadratic, sometimes irregular steps.
    if seed % 2:
        cost = lambda w: float(w) ** 2
    else:
        steps = dict(zip(widths, np.cumsum(rng.uniform(0.1, 100.0, size=n)), strict=True))
        cost = lambda w: float(steps[w])
    compile_cost = float(rng.choice([0.0, 1.0, 1e2, 1e3, 1e4, 1e6]) * rng.uniform(0.5, 2))

    plan = plan_buckets(dict(reversed(list(counts.items()))), cost, compile_cost)  # any order
    _assert_valid(plan, widths)
    best = min(_total(p, counts, cost, compile_cost) for p in _partitions(widths))
    np.testing.assert_allclose(_total(plan, counts, cost, compile_cost), best, rtol=1e-12)


def test_huge_compile_cost_gives_one_bucket():
    counts = {2: 5, 8: 5, 32: 5, 128: 5}
    cost = lambda w: float(w) ** 2
    assert plan_buckets(counts, cost, compile_cost=1e12) == [(2, 8, 32, 128)]


def test_zero_compile_cost_gives_one_bucket_per_width():
    counts = {3: 1, 1: 4, 7: 2, 5: 9}
    assert plan_buckets(counts, lambda w: float(w), compile_cost=0.0) == [(1,), (3,), (5,), (7,)]


def test_one_width():
    assert plan_buckets({16: 3}, lambda w: 1.0, compile_cost=10.0) == [(16,)]


def test_split_where_the_widths_jump():
    """Two tight groups of widths far apart: two buckets, split at the gap."""
    counts = {1: 10, 2: 10, 3: 10, 1000: 10, 1001: 10}
    cost = lambda w: float(w) ** 2
    plan = plan_buckets(counts, cost, compile_cost=1e5)
    assert plan == [(1, 2, 3), (1000, 1001)]


def test_mlp_step_flops_hand_computed():
    # dim 3 -> width 4 -> out 2: 2·3·4 + 2·4·2 = 40 FLOPs a row forward, ×3 with the backward
    # pass, 2·batch rows (both views) with batch 5.
    assert mlp_step_flops(dim=3, width=4, out_dim=2, depth=1, batch=5) == 3 * 40 * 2 * 5
    # Two hidden layers add 2·4·4 = 32 a row.
    assert mlp_step_flops(dim=3, width=4, out_dim=2, depth=2, batch=5) == 3 * 72 * 2 * 5
    # depth 0 is the linear encoder: width does not matter.
    assert mlp_step_flops(dim=3, width=4, out_dim=2, depth=0, batch=5) == 3 * 12 * 2 * 5
    assert mlp_step_flops(dim=3, width=99, out_dim=2, depth=0, batch=5) == 3 * 12 * 2 * 5
    # Linear in batch, increasing in width.
    assert mlp_step_flops(8, 16, 4, 2, 64) == 2 * mlp_step_flops(8, 16, 4, 2, 32)
    assert mlp_step_flops(8, 32, 4, 2, 32) > mlp_step_flops(8, 16, 4, 2, 32)


def test_compile_prices_exist_for_every_backend():
    assert set(COMPILE_FLOPS) >= {"cpu", "gpu", "tpu"}
    assert all(v > 0 for v in COMPILE_FLOPS.values())
