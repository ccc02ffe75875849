"""A persistent cache of compiled programs: a sweep whose programs have the same shapes as an
earlier one's (other seeds, learning rates or cluster counts under the same maxima) loads them
from disk instead of compiling them again.

``clj sweep`` and ``clj reproduce`` use it by default, in ``$CLJ_COMPILE_CACHE`` if set, else
``$XDG_CACHE_HOME/clj/xla`` (``~/.cache/clj/xla``); ``--compile-cache DIR`` chooses another
directory and ``--no-compile-cache`` (or ``CLJ_COMPILE_CACHE=off``) turns it off. It is JAX's
own persistent compilation cache: entries are keyed by the program, the compiler options, the
devices and the JAX version, so a stale entry is never used. Library users call
:func:`enable_compile_cache` themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "MIN_COMPILE_SECONDS", "default_cache_dir", "enable_compile_cache"]

ENV = "CLJ_COMPILE_CACHE"
"""Environment variable naming the cache directory (``off`` or empty: no cache)."""

MIN_COMPILE_SECONDS = 0.2
"""Programs that compile faster than this are not cached (JAX's default is 1 s, which would leave
out the initialisation programs)."""


def default_cache_dir() -> Path | None:
    """The directory ``clj`` caches compiled programs in, or ``None`` when turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "clj" / "xla"


def enable_compile_cache(path: str | Path | None = None) -> Path:
    """Makes this process read and write compiled programs in ``path`` (default:
    :func:`default_cache_dir`). Call it before the first compile.

    Raises:
      ValueError: naming ``path`` if it is not a directory that can be created and written, or if
        the cache is turned off and no ``path`` is given.
    """
    import jax

    target = Path(path).expanduser() if path is not None else default_cache_dir()
    if target is None:
        raise ValueError(f"the compile cache is turned off ({ENV}={os.environ.get(ENV)!r})")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"compile cache {str(target)!r}: {err.strerror or err}") from None
    if not os.access(target, os.W_OK):
        raise ValueError(f"compile cache {str(target)!r} is not writable")
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return target
