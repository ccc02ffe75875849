"""Tests of clj.random's fused Threefry: known-answer vectors, and bit equality with JAX's own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.random import FUSED_THREEFRY, seed_key, threefry2x32
from clj.train import cell_keys

# Known-answer vectors of Threefry-2x32 with 20 rounds, from the Random123 distribution
# (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): key, counter, output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize(("key", "counter", "expected"), KNOWN_ANSWERS)
def test_threefry2x32_known_answers(key, counter, expected):
    words = [jnp.asarray(w, jnp.uint32) for w in (*key, *counter)]
    out = jax.jit(threefry2x32)(*words)
    assert tuple(int(w) for w in out) == expected


def test_threefry2x32_is_elementwise():
    x1 = jnp.arange(6, dtype=jnp.uint32).reshape(2, 3)
    x2 = jnp.full((2, 3), 7, jnp.uint32)
    k1, k2 = jnp.uint32(11), jnp.uint32(12)
    y1, y2 = threefry2x32(k1, k2, x1, x2)
    for i in range(2):
        for j in range(3):
            z1, z2 = threefry2x32(k1, k2, x1[i, j], x2[i, j])
            assert (int(y1[i, j]), int(y2[i, j])) == (int(z1), int(z2))


DRAWS = {
    "bits32": lambda k: jax.random.bits(k, (5, 7)),
    "bits16": lambda k: jax.random.bits(k, (9,), jnp.uint16),
    "bits8": lambda k: jax.random.bits(k, (3, 3), jnp.uint8),
    "scalar": lambda k: jax.random.normal(k, ()),
    "normal": lambda k: jax.random.normal(k, (4, 33)),
    "uniform": lambda k: jax.random.uniform(k, (100,), minval=-2.0, maxval=3.0),
    "randint": lambda k: jax.random.randint(k, (17,), 0, 64),
    "categorical": lambda k: jax.random.categorical(k, jnp.linspace(-1, 1, 40).reshape(4, 10)),
    "permutation": lambda k: jax.random.permutation(k, 50),
    "truncated_normal": lambda k: jax.random.truncated_normal(k, -2.0, 2.0, (3, 5)),
    "split": lambda k: jax.random.key_data(jax.random.split(k, 5)),
    "split_2d": lambda k: jax.random.key_data(jax.random.split(k, (2, 3))),
    "fold_in": lambda k: jax.random.key_data(jax.random.fold_in(k, 12345)),
    "fold_in_large": lambda k: jax.random.key_data(jax.random.fold_in(k, 2**31 + 5)),
    "chain": lambda k: jax.random.normal(jax.random.split(jax.random.fold_in(k, 3))[1], (6,)),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1])
def test_draws_equal_jax_threefry(name, seed):
    draw = jax.jit(DRAWS[name])
    with jax.threefry_partitionable(True):
        expected = np.asarray(draw(jax.random.key(seed, impl="threefry2x32")))
    np.testing.assert_array_equal(np.asarray(draw(seed_key(seed))), expected)


def test_draws_ignore_the_partitionable_setting():
    draw = jax.jit(lambda k: jax.random.normal(jax.random.fold_in(k, 2), (10,)))
    with jax.threefry_partitionable(True):
        expected = np.asarray(draw(jax.random.key(3, impl="threefry2x32")))
    with jax.threefry_partitionable(False):
        np.testing.assert_array_equal(np.asarray(draw(seed_key(3))), expected)


def test_vmapped_draws_equal_one_by_one():
    seeds = jnp.arange(4)
    draw = jax.jit(jax.vmap(lambda s: jax.random.normal(seed_key(s), (3,))))
    batched = np.asarray(draw(seeds))
    for s in range(4):
        np.testing.assert_array_equal(batched[s], jax.random.normal(seed_key(s), (3,)))


def test_cell_keys_use_the_fused_implementation():
    keys = cell_keys(jnp.int32(5))
    assert all(jax.random.key_impl(k) == jax.random.key_impl(seed_key(0)) for k in keys.values())
    assert str(jax.random.key_impl(seed_key(0))) == str(FUSED_THREEFRY)
    np.testing.assert_array_equal(
        jax.random.key_data(seed_key(5)), jax.random.key_data(jax.random.key(5))
    )
