"""Test settings: small XLA optimisation effort, since tests are dominated by compile time."""

import os

# Must be set before JAX initialises its backend. Compiling with less LLVM optimisation roughly
# halves compile time; the tiny shapes in these tests run fast either way.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `clj sweep` keeps compiled programs in ~/.cache/clj/xla by default; tests compile afresh
# (tests/test_compile_cache.py turns the cache on in directories of its own).
os.environ["CLJ_COMPILE_CACHE"] = "off"
