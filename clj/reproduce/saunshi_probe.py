"""A binary logistic-regression linear probe, fitted by damped Newton steps in plain JAX.

The ridge probe of :mod:`clj.metrics` regresses one-hot targets by least squares; on the hypercube
of Saunshi et al. (2022) that is not a linear *classifier* in the usual sense: for a label
``sign(w·x̄_{1:k})`` with ``k ≥ 4`` the least-squares direction (the label's Chow parameters) often
misclassifies whole vertices, although the classes are linearly separable. Their "linear probe
accuracy" is that of a trained linear classifier, which this module provides:

- features are standardised with the training set's mean and standard deviation (columns with no
  variance, such as the zero padding of a masked encoder, become zero);
- ``θ = (β, b)`` minimises ``mean_i log(1 + exp(−s_i (β·z_i + b))) + (l2 / 2) ‖β‖²`` with
  ``s_i = ±1`` and an unpenalised intercept (scikit-learn's ``LogisticRegression`` with
  ``C = 1 / (l2 · n_train)`` on the standardised features);
- ``iters`` Newton steps from zero, each with a backtracking (Armijo) line search over the step
  sizes ``1, 1/2, …, 2^-(SEARCH − 1)``, all evaluated at once, so the fit is a fixed-length
  ``lax.scan`` with no data-dependent control flow: safe under ``jax.jit`` and ``jax.vmap``.

The linear solves use :func:`clj.metrics._linalg.spd_solve` (plain JAX, no LAPACK call).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from clj.metrics._distances import HIGHEST
from clj.metrics._linalg import spd_solve

__all__ = [
    "LogisticProbe",
    "logistic_probe_accuracy",
    "logistic_probe_fit",
    "logistic_probe_predict",
]

SEARCH = 12
"""Step sizes tried by each line search: ``2^0 … 2^-(SEARCH − 1)``."""

ARMIJO = 1e-4
"""Sufficient-decrease constant of the line search."""

JITTER = 1e-9
"""Added to the Hessian's diagonal so that the solve stays positive definite when every training
point is fitted with probability ≈ 1 (separable data)."""


class LogisticProbe(NamedTuple):
    """A fitted probe.

    Attributes:
      mean, scale: ``[dim]`` standardisation of the features (``scale`` is 1 on constant columns).
      coef: ``[dim]`` weights on the standardised features.
      intercept: scalar bias.
      objective: scalar regularised training objective at ``(coef, intercept)``.
    """

    mean: jax.Array
    scale: jax.Array
    coef: jax.Array
    intercept: jax.Array
    objective: jax.Array


def _objective(theta: jax.Array, xa: jax.Array, sign: jax.Array, l2: float) -> jax.Array:
    """Mean logistic loss plus ``(l2/2)‖β‖²``; ``theta`` ``[dim + 1]`` ends with the intercept."""
    margins = sign * jnp.matmul(xa, theta, precision=HIGHEST)
    return jnp.mean(jax.nn.softplus(-margins)) + 0.5 * l2 * jnp.sum(theta[:-1] ** 2)


def logistic_probe_fit(
    z_train: jax.Array, y_train: jax.Array, l2: float = 1e-6, iters: int = 40
) -> LogisticProbe:
    """Fits the probe.

    Args:
      z_train: ``[n, dim]`` float features.
      y_train: ``[n]`` labels in ``{0, 1}``.
      l2: per-sample penalty on the weights (``> 0``).
      iters: Newton steps.

    Returns:
      The fitted :class:`LogisticProbe` (NaN-free whenever the features are finite).
    """
    chex.assert_rank(z_train, 2)
    chex.assert_shape(y_train, (z_train.shape[0],))
    if not l2 > 0:
        raise ValueError(f"l2={l2!r} must be positive")
    if iters < 1:
        raise ValueError(f"iters={iters!r} must be at least 1")
    z = jnp.asarray(z_train, jnp.float32)
    n, dim = z.shape
    mean = jnp.mean(z, axis=0)
    std = jnp.std(z, axis=0)
    scale = jnp.where(std > 1e-12, std, 1.0)
    xa = jnp.concatenate([(z - mean) / scale, jnp.ones((n, 1), jnp.float32)], axis=1)
    sign = 2.0 * jnp.asarray(y_train, jnp.float32) - 1.0
    target = (sign + 1.0) / 2.0
    penalty = jnp.concatenate([jnp.full((dim,), l2, jnp.float32), jnp.zeros((1,), jnp.float32)])
    steps = 2.0 ** -jnp.arange(SEARCH, dtype=jnp.float32)

    def newton(theta: jax.Array, _: None) -> tuple[jax.Array, None]:
        logits = jnp.matmul(xa, theta, precision=HIGHEST)
        p = jax.nn.sigmoid(logits)
        grad = jnp.matmul(xa.T, p - target, precision=HIGHEST) / n + penalty * theta
        weights = p * (1.0 - p)
        hess = jnp.matmul(xa.T * weights, xa, precision=HIGHEST) / n
        hess = hess + jnp.diag(penalty + JITTER)
        direction = -spd_solve(hess, grad[:, None])[:, 0]
        current = _objective(theta, xa, sign, l2)
        trial = jax.vmap(lambda t: _objective(theta + t * direction, xa, sign, l2))(steps)
        slope = jnp.dot(grad, direction)
        ok = trial <= current + ARMIJO * steps * slope
        # The largest step with sufficient decrease; none (at the optimum, to rounding): stay.
        t = jnp.where(jnp.any(ok), steps[jnp.argmax(ok)], 0.0)
        return theta + t * direction, None

    theta, _ = jax.lax.scan(newton, jnp.zeros((dim + 1,), jnp.float32), None, length=iters)
    return LogisticProbe(mean, scale, theta[:-1], theta[-1], _objective(theta, xa, sign, l2))


def logistic_probe_predict(probe: LogisticProbe, z_test: jax.Array) -> jax.Array:
    """``[n_test]`` int32 predictions in ``{0, 1}``; ``-1`` on rows whose score is not finite.

    Args:
      probe: a fitted probe.
      z_test: ``[n_test, dim]`` features.
    """
    chex.assert_rank(z_test, 2)
    x = (jnp.asarray(z_test, jnp.float32) - probe.mean) / probe.scale
    score = jnp.matmul(x, probe.coef, precision=HIGHEST) + probe.intercept
    return jnp.where(jnp.isfinite(score), (score > 0).astype(jnp.int32), -1)


def logistic_probe_accuracy(
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    l2: float = 1e-6,
    iters: int = 40,
) -> jax.Array:
    """Test accuracy of the probe fitted on ``(z_train, y_train)``; NaN if any feature is not
    finite.

    Args:
      z_train: ``[n_train, dim]``; y_train: ``[n_train]`` in ``{0, 1}``.
      z_test: ``[n_test, dim]``; y_test: ``[n_test]`` in ``{0, 1}``.
    """
    finite = jnp.all(jnp.isfinite(z_train)) & jnp.all(jnp.isfinite(z_test))
    z_train = jnp.where(finite, z_train, 0.0)
    z_test = jnp.where(finite, z_test, 0.0)
    pred = logistic_probe_predict(logistic_probe_fit(z_train, y_train, l2, iters), z_test)
    return jnp.where(finite, jnp.mean((pred == y_test).astype(jnp.float32)), jnp.nan)
