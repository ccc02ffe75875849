"""Compiling lowered programs on one background thread.

Tracing and lowering a program is Python and holds the GIL; XLA's compile releases it. Handing
each lowered program to :func:`compile_in_background` lets the caller trace and lower the next
program while XLA compiles this one. The programs compile one at a time, in the order given: two
XLA compiles at once each took about twice as long on the 2-core reference machine, and one
compile already keeps about 1.4 cores busy.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

__all__ = ["compile_in_background", "wait_for_compiles"]

_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pending: list[concurrent.futures.Future] = []


def compile_in_background(
    lowered: Any, options: dict[str, Any] | None = None
) -> concurrent.futures.Future:
    """Starts ``lowered.compile(options)`` (a :class:`jax.stages.Lowered`) after every compile
    started before it; ``.result()`` of the returned future is the compiled program (or raises
    the compile's error)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clj-compile")
        future = _pool.submit(lowered.compile, options)
        _pending[:] = [f for f in _pending if not f.done()] + [future]
    return future


def wait_for_compiles() -> None:
    """Returns once every compile started so far has finished (successfully or not)."""
    with _lock:
        pending = list(_pending)
    concurrent.futures.wait(pending)
