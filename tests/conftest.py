"""Test settings: small XLA optimisation effort and one compile cache for the whole run, since
tests are dominated by compile time."""

import os
import shutil
import tempfile

# Must be set before JAX initialises its backend. Compiling with less LLVM optimisation roughly
# halves compile time; the tiny shapes in these tests run fast either way.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_configure(config):
    """Gives ``clj sweep`` (in process and in subprocesses) a compile cache of its own for this
    test run, never ``~/.cache/clj/xla``: many tests compile the same small programs. The
    controlling process makes it before xdist starts its workers, which inherit it;
    tests/test_compile_cache.py uses directories of its own."""
    if hasattr(config, "workerinput"):
        return
    path = tempfile.mkdtemp(prefix="clj-test-xla-")
    config._clj_compile_cache = path
    os.environ["CLJ_COMPILE_CACHE"] = path


def pytest_unconfigure(config):
    path = getattr(config, "_clj_compile_cache", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
