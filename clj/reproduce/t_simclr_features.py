"""Measurements of ``t-simclr`` beyond the sweep's metrics: features in the loss's own geometry.

``info_nce`` compares unit vectors (cosine similarity), ``t_info_nce`` compares raw feature
vectors (Euclidean distance). :func:`loss_space_features` encodes held-out anchors with every
cell's final parameters and returns the features as the cell's loss sees them: divided by their
norm for ``info_nce``, unchanged for every other loss (so for ``t_info_nce`` they are the
encoder's outputs). On them it measures the k-NN accuracy and the Calinski–Harabasz score of the
true clusters, and, as a reference, the k-NN accuracy on the inputs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clj import metrics
from clj.cell import Cell, stack_cells
from clj.plan import Program
from clj.train import cell_keys, make_train

__all__ = ["LossSpace", "loss_space_features", "to_loss_space"]

_SALT = 7919
"""Folded into each cell's evaluation key, so these anchors differ from the sweep's own."""


class LossSpace(NamedTuple):
    """Held-out measurements of a program's cells (``C`` cells, ``n`` test anchors).

    Attributes:
      x: ``[C, n, dim]`` clean test inputs.
      labels: ``[C, n]`` int32 fine labels of the test inputs.
      z: ``[C, n, max_out_dim]`` their features in the loss's geometry.
      knn: ``[C]`` k-NN accuracy (``spec.knn_k`` neighbours, Euclidean distance on ``z``), trained
        on ``n`` further anchors of the training distribution.
      knn_input: ``[C]`` the same k-NN accuracy on the inputs ``x`` themselves (a reference).
      calinski_harabasz: ``[C]`` Calinski–Harabasz score of ``z`` grouped by ``labels``.
    """

    x: np.ndarray
    labels: np.ndarray
    z: np.ndarray
    knn: np.ndarray
    knn_input: np.ndarray
    calinski_harabasz: np.ndarray


def to_loss_space(z: jax.Array, loss: str) -> jax.Array:
    """Features as ``loss`` compares them: rows scaled to unit norm for ``info_nce``.

    Args:
      z: ``[n, k]`` features.
      loss: the loss name.

    Returns:
      ``[n, k]`` features (all-zero rows stay zero).
    """
    if loss != "info_nce":
        return z
    norms = jnp.sqrt(jnp.sum(z**2, axis=-1, keepdims=True))
    return z / jnp.maximum(norms, 1e-12)


def loss_space_features(program: Program, states: Any, n: int) -> LossSpace:
    """Encodes ``n`` held-out anchors per cell and measures them in the loss's geometry.

    Each cell draws its anchors from its own seed (never from another cell's), the training half
    with ``family.anchors`` and the test half with ``family.heldout_anchors``, as the sweep's own
    evaluation does, but from a different key.

    Args:
      program: a program of the sweep.
      states: its cells' final states (``[C, ...]`` leaves, cells in ``program.cells`` order).
      n: anchors in each half.
    """
    spec = program.spec
    family = spec.family
    trainer = make_train(spec)
    classes = family.num_fine_classes

    def one(params: Any, world: Any, cell: Cell) -> tuple[jax.Array, ...]:
        key = jax.random.fold_in(cell_keys(cell.seed)["eval"], _SALT)
        k_train, k_test = jax.random.split(key)
        train = family.anchors(k_train, world, cell, n)
        test = family.heldout_anchors(k_test, world, cell, n)
        z_train = to_loss_space(trainer.encode(params, cell, train.x), spec.loss)
        z_test = to_loss_space(trainer.encode(params, cell, test.x), spec.loss)
        knn = metrics.knn_accuracy(z_train, train.fine, z_test, test.fine, classes, k=spec.knn_k)
        knn_x = metrics.knn_accuracy(train.x, train.fine, test.x, test.fine, classes, k=spec.knn_k)
        ch = metrics.calinski_harabasz(z_test, test.fine, classes)
        return test.x, test.fine, z_test, knn, knn_x, ch

    cells = stack_cells(list(program.cells))
    out = jax.jit(jax.vmap(one))(states.params, states.world, cells)
    return LossSpace(*(np.asarray(a) for a in out))
