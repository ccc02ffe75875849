"""Compiling lowered programs on background threads, and work for the caller while it waits.

Tracing and lowering a program is Python and holds the GIL; XLA's compile releases it. Handing
each lowered program to :func:`compile_in_background` lets the caller trace and lower the next
program while XLA compiles this one. :data:`COMPILE_THREADS` compiles run at once, started in the
order given.

Once everything is lowered the caller has nothing to do but wait (:func:`wait_for_compiles`);
:func:`run_while_waiting` queues work for that moment (importing the modules that write results,
say), so it runs on the otherwise idle calling thread rather than after training.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["COMPILE_THREADS", "compile_in_background", "run_while_waiting", "wait_for_compiles"]

COMPILE_THREADS = 3
"""Compiles that run at once. On the 2-core reference machine (2026-12-02, the reference grid as
one program trained in bundles of data streams, 30-step sweeps, five alternated pairs) three
threads finished the five compiles before training in 7.6-10.2 s (median 8.8) against 7.5-11.7 s
(median 10.3) for two: the training program's compile, the longest, runs on one thread while
the evaluation programs' compiles no longer queue behind one another on a single other thread
(with two threads the metrics, lowered last, waited for the features to compile, and finished
alone). Earlier (the reference grid without bundles, 2026-12-02) two threads had finished in
13.0-13.1 s from the start of the process against 14.2-15.0 s for one, and three had made no
difference beyond the host's noise."""

_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pending: list[concurrent.futures.Future] = []
_idle: list[Callable[[], Any]] = []


def compile_in_background(
    lowered: Any, options: dict[str, Any] | None = None
) -> concurrent.futures.Future:
    """Starts ``lowered.compile(options)`` (a :class:`jax.stages.Lowered`) on a compile thread
    once one is free (compiles start in the order they are handed in); ``.result()`` of the
    returned future is the compiled program (or raises the compile's error)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                COMPILE_THREADS, thread_name_prefix="clj-compile"
            )
        future = _pool.submit(lowered.compile, options)
        _pending[:] = [f for f in _pending if not f.done()] + [future]
    return future


def run_while_waiting(task: Callable[[], Any]) -> None:
    """Queues ``task()`` to run on the calling thread the next time it waits for compiles (see
    :func:`wait_for_compiles`); an error it raises is raised there."""
    with _lock:
        _idle.append(task)


def wait_for_compiles() -> None:
    """Runs the tasks queued by :func:`run_while_waiting` if a compile is still running, then
    returns once every compile started so far has finished (successfully or not)."""
    with _lock:
        pending = list(_pending)
        tasks = list(_idle) if any(not f.done() for f in pending) else []
        del _idle[: len(tasks)]
    for task in tasks:
        task()
    concurrent.futures.wait(pending)
