"""Tests of clj.losses against plain-NumPy float64 transcriptions of DESIGN.md's formulas.

The references below are written with explicit loops over rows and pairs so that they share no
code (and no vectorisation trick) with the library. Each loss is checked eagerly, under
``jax.jit``, under ``jax.vmap`` (a stack of batches equals the batches one by one) and under
``jax.grad`` (against central finite differences of the float64 reference).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj import losses

# ----------------------------------------------------------------------------- references


def ref_spectral(z1, z2):
    """−(2/B) Σ_i z1_i·z2_i + 1/(B(B−1)) Σ_{i≠j} (z1_i·z2_j)²."""
    b = z1.shape[0]
    positive = 0.0
    negative = 0.0
    for i in range(b):
        positive += float(np.dot(z1[i], z2[i]))
        for j in range(b):
            if i != j:
                negative += float(np.dot(z1[i], z2[j])) ** 2
    return -2.0 / b * positive + negative / (b * (b - 1))


def ref_spectral_lambda(z1, z2, lam, mask=None):
    """E‖f(x) − f(x⁺)‖² + λ‖E[f fᵀ] − I‖²_F, the moment taken over both views' 2B rows."""
    b, k = z1.shape
    invariance = sum(float(np.sum((z1[i] - z2[i]) ** 2)) for i in range(b)) / b
    moment = np.zeros((k, k))
    for row in [*z1, *z2]:
        moment += np.outer(row, row)
    moment /= 2 * b
    target = np.eye(k) if mask is None else np.diag(np.asarray(mask, np.float64))
    penalty = 0.0
    for p in range(k):
        for q in range(k):
            penalty += (moment[p, q] - target[p, q]) ** 2
    return invariance + lam * penalty


def _stacked_rows(z1, z2):
    b = z1.shape[0]
    rows = [*z1, *z2]
    partner = [i + b for i in range(b)] + [i for i in range(b)]
    return rows, partner


def ref_info_nce(z1, z2, temperature):
    """NT-Xent: cosine similarity / temperature over the 2B rows, positive = the other view."""
    rows, partner = _stacked_rows(z1, z2)
    n = len(rows)
    total = 0.0
    for i in range(n):
        sims = {}
        for j in range(n):
            if j != i:
                cos = np.dot(rows[i], rows[j]) / (np.linalg.norm(rows[i]) * np.linalg.norm(rows[j]))
                sims[j] = cos / temperature
        top = max(sims.values())
        log_norm = top + np.log(sum(np.exp(s - top) for s in sims.values()))
        total += -(sims[partner[i]] - log_norm)
    return total / n


def ref_t_info_nce(z1, z2, temperature, dof):
    """Student-t kernel q_ij = (1 + ‖z_i − z_j‖² / (temperature·dof))^(−(dof+1)/2)."""
    rows, partner = _stacked_rows(z1, z2)
    n = len(rows)
    total = 0.0
    for i in range(n):
        q = {}
        for j in range(n):
            if j != i:
                sq = float(np.sum((rows[i] - rows[j]) ** 2))
                q[j] = (1.0 + sq / (temperature * dof)) ** (-(dof + 1.0) / 2.0)
        total += -np.log(q[partner[i]] / sum(q.values()))
    return total / n


# ----------------------------------------------------------------------------- cases

# (name, library loss, reference, hyper-parameter names): hyper-parameters are passed by keyword.
LOSS_CASES = {
    "spectral": (losses.spectral, ref_spectral, ()),
    "spectral_lambda": (losses.spectral_lambda, ref_spectral_lambda, ("lam",)),
    "info_nce": (losses.info_nce, ref_info_nce, ("temperature",)),
    "t_info_nce": (losses.t_info_nce, ref_t_info_nce, ("temperature", "dof")),
}
SHAPES = [(2, 1), (3, 4), (8, 3), (16, 6)]

# Jitted once so that tests with equal shapes share compilations (eager dispatch compiles every
# primitive separately and costs more than one jitted program).
JIT = {name: jax.jit(case[0]) for name, case in LOSS_CASES.items()}


def _hyper(names, rng):
    draws = {
        "lam": rng.uniform(0.0, 3.0),
        "temperature": rng.uniform(0.2, 2.0),
        "dof": rng.uniform(1.0, 10.0),
    }
    return {name: float(np.float32(draws[name])) for name in names}


def _pair(rng, b, k, scale=None):
    """Correlated positive pairs ``(z1, z2)`` in float32 (the references see the same values)."""
    scale = rng.uniform(0.3, 1.5) if scale is None else scale
    z1 = rng.normal(size=(b, k)) * scale
    z2 = z1 + 0.5 * scale * rng.normal(size=(b, k))
    return z1.astype(np.float32), z2.astype(np.float32)


def _ref(reference, z1, z2, **hyper):
    return reference(np.float64(z1), np.float64(z2), **hyper)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", LOSS_CASES)
@pytest.mark.parametrize(("b", "k"), SHAPES)
def test_loss_matches_reference_under_jit(name, b, k):
    _, reference, names = LOSS_CASES[name]
    rng = np.random.default_rng(b * 100 + k)
    for _ in range(3):
        z1, z2 = _pair(rng, b, k)
        hyper = _hyper(names, rng)
        # Hyper-parameters traced, as they are inside a sweep.
        value = JIT[name](z1, z2, **{h: jnp.float32(v) for h, v in hyper.items()})
        chex.assert_shape(value, ())
        chex.assert_type(value, jnp.float32)
        np.testing.assert_allclose(value, _ref(reference, z1, z2, **hyper), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", LOSS_CASES)
def test_loss_eager_with_default_hyper_parameters(name):
    """Eager calls, and the defaults DESIGN.md names: temperature 0.5 (InfoNCE), 1.0 and dof 5
    (t-InfoNCE), λ 1."""
    fn, reference, _ = LOSS_CASES[name]
    defaults = {
        "spectral": {},
        "spectral_lambda": {"lam": 1.0},
        "info_nce": {"temperature": 0.5},
        "t_info_nce": {"temperature": 1.0, "dof": 5.0},
    }[name]
    z1, z2 = _pair(np.random.default_rng(0), 8, 3)
    value = fn(z1, z2)
    chex.assert_shape(value, ())
    np.testing.assert_allclose(value, _ref(reference, z1, z2, **defaults), rtol=2e-5, atol=2e-5)


def test_losses_registry_and_shape_checks():
    assert set(losses.LOSSES) == set(LOSS_CASES)
    for name, (fn, _, _) in LOSS_CASES.items():
        assert losses.LOSSES[name] is fn
    z = jnp.ones((4, 3))
    for fn, _, _ in LOSS_CASES.values():
        with pytest.raises(AssertionError):
            fn(z, jnp.ones((4, 2)))  # views of different shape
        with pytest.raises(AssertionError):
            fn(z[0], z[0])  # not batch-first [B, k]


# ----------------------------------------------------------------------------- transformations


@pytest.mark.parametrize("name", LOSS_CASES)
def test_loss_vmap_equals_per_item(name):
    """vmap over a stack of batches (with per-item hyper-parameters) equals each item alone."""
    fn, reference, names = LOSS_CASES[name]
    rng = np.random.default_rng(7)
    items = [(*_pair(rng, 5, 3), _hyper(names, rng)) for _ in range(4)]
    z1s = np.stack([z1 for z1, _, _ in items])
    z2s = np.stack([z2 for _, z2, _ in items])
    hypers = {h: np.array([hyper[h] for _, _, hyper in items], np.float32) for h in names}
    batched = jax.jit(jax.vmap(lambda a, b, h: fn(a, b, **h)))(z1s, z2s, hypers)
    chex.assert_shape(batched, (len(items),))
    for i, (z1, z2, hyper) in enumerate(items):
        np.testing.assert_allclose(batched[i], JIT[name](z1, z2, **hyper), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            batched[i], _ref(reference, z1, z2, **hyper), rtol=2e-5, atol=2e-5
        )


def _finite_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", LOSS_CASES)
@pytest.mark.parametrize(("b", "k"), [(3, 2), (6, 4)])
def test_loss_grad_matches_finite_differences(name, b, k):
    """jax.grad in float32 against central differences of the float64 reference."""
    fn, reference, names = LOSS_CASES[name]
    rng = np.random.default_rng(b + 10 * k)
    z1, z2 = _pair(rng, b, k, scale=0.8)
    hyper = _hyper(names, rng)
    g1, g2 = jax.jit(jax.grad(lambda a, c: fn(a, c, **hyper), argnums=(0, 1)))(z1, z2)
    chex.assert_equal_shape([g1, z1])
    chex.assert_equal_shape([g2, z2])
    z1_64, z2_64 = np.float64(z1), np.float64(z2)
    fd1 = _finite_difference(lambda a: reference(a, z2_64, **hyper), z1_64)
    fd2 = _finite_difference(lambda c: reference(z1_64, c, **hyper), z2_64)
    scale = max(np.abs(fd1).max(), np.abs(fd2).max())
    np.testing.assert_allclose(g1, fd1, rtol=1e-3, atol=1e-4 * scale)
    np.testing.assert_allclose(g2, fd2, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("name", ["spectral_lambda", "info_nce", "t_info_nce"])
def test_loss_grad_wrt_hyper_parameters(name):
    """Hyper-parameters may be traced, so their gradients must be right too."""
    fn, reference, names = LOSS_CASES[name]
    rng = np.random.default_rng(3)
    z1, z2 = _pair(rng, 5, 3)
    hyper = _hyper(names, rng)
    grads = jax.jit(jax.grad(lambda h: fn(z1, z2, **h)))(
        {h: jnp.float32(v) for h, v in hyper.items()}
    )
    for h in names:

        def along(value, h=h):
            return _ref(reference, z1, z2, **{**hyper, h: value})

        eps = 1e-6
        expected = (along(hyper[h] + eps) - along(hyper[h] - eps)) / (2 * eps)
        np.testing.assert_allclose(grads[h], expected, rtol=1e-3, atol=1e-5)


def test_check_grads_both_modes():
    """Forward- and reverse-mode derivatives agree with numerical ones (jax.test_util)."""
    rng = np.random.default_rng(11)
    z1, z2 = (jnp.asarray(a) for a in _pair(rng, 4, 3, scale=0.7))
    for name in LOSS_CASES:
        jax.test_util.check_grads(
            JIT[name], (z1, z2), order=1, modes=("fwd", "rev"), eps=1e-2, rtol=2e-2
        )


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize(("b", "k", "pad"), [(4, 2, 3), (8, 5, 1)])
def test_zero_padded_columns_leave_losses_unchanged(b, k, pad):
    rng = np.random.default_rng(b * k + pad)
    z1, z2 = _pair(rng, b, k)
    p1, p2 = (np.pad(z, ((0, 0), (0, pad))) for z in (z1, z2))
    for name in ("spectral", "info_nce", "t_info_nce"):
        hyper = _hyper(LOSS_CASES[name][2], rng)
        np.testing.assert_allclose(
            JIT[name](p1, p2, **hyper),
            JIT[name](z1, z2, **hyper),
            rtol=1e-6,
            atol=1e-6,
            err_msg=name,
        )

    lam = 0.7
    mask = np.r_[np.ones(k), np.zeros(pad)].astype(np.float32)
    unpadded = JIT["spectral_lambda"](z1, z2, lam=lam)
    np.testing.assert_allclose(
        JIT["spectral_lambda"](p1, p2, lam=lam, mask=mask), unpadded, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        JIT["spectral_lambda"](p1, p2, lam=lam, mask=mask),
        _ref(ref_spectral_lambda, p1, p2, lam=lam, mask=mask),
        rtol=2e-5,
    )
    # Without the mask the identity target counts each padded unit: (0 − 1)² per unit.
    np.testing.assert_allclose(
        JIT["spectral_lambda"](p1, p2, lam=lam), unpadded + lam * pad, rtol=1e-5
    )
    # An all-ones mask is the same as no mask.
    np.testing.assert_allclose(
        JIT["spectral_lambda"](z1, z2, lam=lam, mask=np.ones(k, np.float32)), unpadded, rtol=1e-6
    )


def test_spectral_lambda_mask_under_jit_and_vmap():
    """The mask may be traced and differ per cell, as in a vmapped grid of output dims."""
    rng = np.random.default_rng(5)
    k_max = 4
    out_dims = np.array([1, 2, 4])
    z1s, z2s = [], []
    for k in out_dims:
        z1, z2 = _pair(rng, 6, int(k))
        z1s.append(np.pad(z1, ((0, 0), (0, k_max - k))))
        z2s.append(np.pad(z2, ((0, 0), (0, k_max - k))))

    def cell_loss(z1, z2, k):
        return JIT["spectral_lambda"](z1, z2, lam=1.5, mask=(jnp.arange(k_max) < k) * 1.0)

    batched = jax.jit(jax.vmap(cell_loss))(np.stack(z1s), np.stack(z2s), out_dims)
    for i, k in enumerate(out_dims):
        expected = JIT["spectral_lambda"](z1s[i][:, :k], z2s[i][:, :k], lam=1.5)
        np.testing.assert_allclose(batched[i], expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- λ-form vs spectral


def test_spectral_lambda_at_one_is_spectral_value_formula():
    """At λ = 1 the invariance term's squared norms cancel the trace of the identity target.

    Exactly, for any batch: ``spectral_lambda(z1, z2, 1) = −(2/B) Σ z1_i·z2_i + ‖M‖²_F + k`` with
    ``M`` the second moment over the 2B rows. ``spectral`` has the same first term, and estimates
    the population ``‖E[f fᵀ]‖²_F`` by the off-diagonal U-statistic instead of ``‖M‖²_F``. So the
    two differ by exactly ``k + ‖M‖²_F − U`` per batch (tested here), and by the constant ``k``
    in the population (tested below with a large batch); batch values are not equal up to ``k``.
    """
    rng = np.random.default_rng(1)
    for b, k in [(4, 2), (9, 3), (16, 5)]:
        z1, z2 = _pair(rng, b, k)
        a, c = np.float64(z1), np.float64(z2)
        rows = np.concatenate([a, c])
        moment = rows.T @ rows / (2 * b)
        positive = -2.0 / b * np.sum(a * c)
        u_stat = ref_spectral(a, c) - positive
        lam_one = JIT["spectral_lambda"](z1, z2, lam=1.0)
        np.testing.assert_allclose(lam_one, positive + np.sum(moment**2) + k, rtol=1e-5)
        np.testing.assert_allclose(
            lam_one - JIT["spectral"](z1, z2), k + np.sum(moment**2) - u_stat, rtol=1e-4, atol=1e-4
        )
        # λ enters linearly.
        lam0 = JIT["spectral_lambda"](z1, z2, lam=0.0)
        np.testing.assert_allclose(
            JIT["spectral_lambda"](z1, z2, lam=2.5), lam0 + 2.5 * (lam_one - lam0), rtol=1e-5
        )


def test_spectral_lambda_at_one_is_spectral_plus_k_in_population():
    """HaoChen & Ma: at λ = 1 the two losses differ by the constant k for large batches."""
    rng = np.random.default_rng(2)
    b, k = 4000, 3
    mix = rng.normal(size=(k, k)) * 0.6
    x = rng.normal(size=(b, k))
    z1 = (x + 0.3 * rng.normal(size=(b, k))) @ mix
    z2 = (x + 0.3 * rng.normal(size=(b, k))) @ mix
    z1, z2 = z1.astype(np.float32), z2.astype(np.float32)
    diff = float(JIT["spectral_lambda"](z1, z2, lam=1.0) - JIT["spectral"](z1, z2))
    assert abs(diff - k) < 0.05 * k, diff
