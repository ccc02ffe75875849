"""Compiles handed to the background thread: results, order, errors, waiting."""

from __future__ import annotations

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.background_compile import compile_in_background, wait_for_compiles


def test_compiled_program_equals_a_direct_compile():
    f = jax.jit(lambda x: jnp.sin(x) * 2.0)
    x = jnp.arange(5.0)
    future = compile_in_background(f.lower(x))
    np.testing.assert_array_equal(future.result()(x), f.lower(x).compile()(x))


class _Slow:
    """Stands in for a ``jax.stages.Lowered`` whose compile takes a while."""

    def __init__(self, log: list, name: str, fail: bool = False):
        self.log, self.name, self.fail = log, name, fail

    def compile(self, options=None):
        self.log.append(("start", self.name, threading.current_thread().name))
        time.sleep(0.05)
        self.log.append(("end", self.name, threading.current_thread().name))
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        return self.name


def test_one_compile_at_a_time_in_order_off_the_calling_thread():
    log: list = []
    futures = [compile_in_background(_Slow(log, str(i))) for i in range(3)]
    wait_for_compiles()
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == ["0", "1", "2"]
    assert [(event, name) for event, name, _ in log] == [
        ("start", "0"), ("end", "0"), ("start", "1"), ("end", "1"), ("start", "2"), ("end", "2"),
    ]  # fmt: skip
    assert {thread for _, _, thread in log} != {threading.current_thread().name}


def test_a_failed_compile_raises_from_its_result_only():
    log: list = []
    bad = compile_in_background(_Slow(log, "bad", fail=True))
    good = compile_in_background(_Slow(log, "good"))
    wait_for_compiles()
    with pytest.raises(RuntimeError, match="bad failed"):
        bad.result()
    assert good.result() == "good"
