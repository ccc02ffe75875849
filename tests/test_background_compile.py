"""Compiles handed to the background thread: results, order, errors, waiting."""

from __future__ import annotations

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.background_compile import (
    COMPILE_THREADS,
    compile_in_background,
    run_while_waiting,
    wait_for_compiles,
)


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


def test_compiles_start_in_order_a_few_at_a_time_off_the_calling_thread():
    log: list = []
    futures = [compile_in_background(_Slow(log, str(i))) for i in range(5)]
    wait_for_compiles()
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == ["0", "1", "2", "3", "4"]
    assert [name for event, name, _ in log if event == "start"] == ["0", "1", "2", "3", "4"]
    running = most = 0
    for event, _, _ in log:
        running += 1 if event == "start" else -1
        most = max(most, running)
    assert most == COMPILE_THREADS
    assert threading.current_thread().name not in {thread for _, _, thread in log}


class _Gated:
    """A compile that finishes only once ``gate`` is set (or after 10 s)."""

    def __init__(self, gate: threading.Event):
        self.gate = gate

    def compile(self, options=None):
        return "opened" if self.gate.wait(timeout=10) else "timed out"


def test_work_queued_for_the_wait_runs_on_the_waiting_thread_while_compiles_run():
    gate = threading.Event()
    seen = []

    def task():
        seen.append(threading.current_thread().name)
        gate.set()  # the compile can only end after the task ran

    run_while_waiting(task)
    future = compile_in_background(_Gated(gate))
    wait_for_compiles()
    assert seen == [threading.current_thread().name]
    assert future.result() == "opened"
    # Queued with nothing compiling, it waits for a later wait that has a compile to hide in.
    seen.clear()
    gate.clear()
    run_while_waiting(task)
    wait_for_compiles()
    assert seen == []
    future = compile_in_background(_Gated(gate))
    wait_for_compiles()
    assert seen == [threading.current_thread().name]
    assert future.result() == "opened"


def test_a_failed_compile_raises_from_its_result_only():
    log: list = []
    bad = compile_in_background(_Slow(log, "bad", fail=True))
    good = compile_in_background(_Slow(log, "good"))
    wait_for_compiles()
    with pytest.raises(RuntimeError, match="bad failed"):
        bad.result()
    assert good.result() == "good"
