"""Optimisers with per-cell learning rate and weight decay.

Each optimiser is wrapped in ``optax.inject_hyperparams`` so that ``learning_rate`` and
``weight_decay`` live in the optimiser state: initialised from a cell's values, they differ per
cell under ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable

import optax

__all__ = ["OPTIMIZERS", "make_optimizer"]

SGD_MOMENTUM = 0.9


def _adam(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """Adam with coupled L2 weight decay (the decay is added to the gradient)."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))


def _adamw(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """Adam with decoupled weight decay."""
    return optax.adamw(learning_rate, weight_decay=weight_decay)


def _sgd(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """SGD with heavy-ball momentum 0.9 and coupled L2 weight decay."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.sgd(learning_rate, momentum=SGD_MOMENTUM),
    )


OPTIMIZERS: dict[str, Callable[[float, float], optax.GradientTransformation]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
}
"""Optimiser constructors ``(learning_rate, weight_decay)`` by name."""


def make_optimizer(name: str) -> Callable[..., optax.GradientTransformation]:
    """The optimiser ``name`` with injectable ``learning_rate`` and ``weight_decay``.

    Returns:
      A function of ``(learning_rate, weight_decay)`` (scalars, may be traced) returning an optax
      transformation whose state holds both hyper-parameters.

    Raises:
      ValueError: naming an unknown optimiser.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return optax.inject_hyperparams(OPTIMIZERS[name])
