"""Evaluation of one trained cell on held-out samples, in three stages that vmap over a grid.

1. :func:`make_heldout`: sample the held-out data (probe anchors, test anchors, positive pairs)
   from the cell's world. It depends only on the data family and ``eval_size``
   (:func:`heldout_key`), so one compiled program serves every width bucket of a grid.
2. :func:`make_features` (one compiled program per training program): encode the held-out data
   with the cell's network and compute the held-out loss. It depends on the encoder.
3. :func:`make_score` (the metrics): probes, k-NN, k-means, NMI/ARI, geometry. It sees only
   features and labels, so one compiled program serves every training program whose
   :func:`score_key` is the same.

:func:`make_evaluate` composes the three for a single cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from clj import metrics
from clj.cell import Cell
from clj.data.base import Views
from clj.random import FUSED_THREEFRY
from clj.spec import Spec
from clj.train import Trainer, TrainState, cell_keys

__all__ = [
    "METRICS",
    "Features",
    "HeldOut",
    "features_shapes",
    "heldout_key",
    "make_evaluate",
    "make_features",
    "make_heldout",
    "make_score",
    "score_key",
]

METRICS: dict[str, str] = {
    "eval_loss": "the training objective on held-out positive pairs",
    "probe_fine": "linear-probe (ridge) accuracy on fine labels",
    "probe_coarse": "linear-probe (ridge) accuracy on coarse labels",
    "knn_fine": "k-NN accuracy on fine labels",
    "knn_coarse": "k-NN accuracy on coarse labels",
    "kmeans_nmi": "NMI between k-means clusters (k = number of fine clusters) and fine labels",
    "kmeans_ari": "ARI between k-means clusters and fine labels",
    "recovered_clusters": "exp(mutual information) of fine labels and fine-probe predictions",
    "recovered_coarse": "exp(mutual information) of coarse labels and coarse-probe predictions",
    "alignment": "mean squared distance of normalised positive pairs (lower is better)",
    "uniformity": "log mean exp(-2 squared distance) of normalised features (lower: more uniform)",
    "diverged": "1 if training produced a non-finite loss or parameter, else 0",
}
"""Every metric of a cell's row in ``results.csv``, with what it measures."""


class HeldOut(NamedTuple):
    """A cell's held-out data, with ``n = spec.eval_size`` rows of ``dim = family.dim`` inputs.

    Attributes:
      x_train, x_test: ``[n, dim]`` anchors that train and test the probes (the test
        anchors from the family's held-out split).
      train_fine, train_coarse, test_fine, test_coarse: ``[n]`` int32 labels of those anchors.
      x1, x2: ``[n, dim]`` the two views of ``n`` held-out positive pairs.
      pair_fine, pair_coarse: ``[n]`` int32 labels of the pairs' anchors.
      kmeans_key: uint32 key data seeding k-means.
    """

    x_train: jax.Array
    train_fine: jax.Array
    train_coarse: jax.Array
    x_test: jax.Array
    test_fine: jax.Array
    test_coarse: jax.Array
    x1: jax.Array
    x2: jax.Array
    pair_fine: jax.Array
    pair_coarse: jax.Array
    kmeans_key: jax.Array


class Features(NamedTuple):
    """What the metrics of one cell need, with ``n = spec.eval_size`` and ``d = max_out_dim``.

    Attributes:
      z_train, z_test: ``[n, d]`` features of the probes' training and test anchors.
      train_fine, train_coarse, test_fine, test_coarse: ``[n]`` int32 labels of those anchors.
      z1, z2: ``[n, d]`` features of ``n`` held-out positive pairs.
      eval_loss: scalar training objective on those pairs.
      trained_finite: scalar bool, every parameter and every point of the loss curve is finite.
      fine_count: scalar int32, the cell's number of fine clusters (k of k-means).
      kmeans_key: uint32 key data seeding k-means.
    """

    z_train: jax.Array
    train_fine: jax.Array
    train_coarse: jax.Array
    z_test: jax.Array
    test_fine: jax.Array
    test_coarse: jax.Array
    z1: jax.Array
    z2: jax.Array
    eval_loss: jax.Array
    trained_finite: jax.Array
    fine_count: jax.Array
    kmeans_key: jax.Array


def heldout_key(spec: Spec) -> tuple:
    """What the compiled held-out sampling depends on: programs with equal keys share one."""
    return (spec.family, spec.eval_size)


def make_heldout(spec: Spec) -> Callable[[Any, Cell], HeldOut]:
    """Builds ``heldout(world, cell) -> HeldOut`` for one cell of ``world`` (``state.world``).

    ``eval_size`` anchors train the probes and ``eval_size`` fresh ones test them;
    ``eval_size`` fresh positive pairs give the loss, alignment and uniformity. Test anchors and
    pairs come from ``family.heldout_anchors`` (a dataset's test split; the probes' training
    anchors from its train split). Every draw comes from the cell's ``eval`` key.
    """
    family = spec.family
    n = spec.eval_size

    def heldout(world: Any, cell: Cell) -> HeldOut:
        k_train, k_test, k_pairs, k_kmeans = jax.random.split(cell_keys(cell.seed)["eval"], 4)
        train = family.anchors(k_train, world, cell, n)
        test = family.heldout_anchors(k_test, world, cell, n)
        k_anchor, k_views = jax.random.split(k_pairs)  # as family.sample splits its key
        pairs = family.views(k_views, world, cell, family.heldout_anchors(k_anchor, world, cell, n))
        out = HeldOut(
            x_train=train.x,
            train_fine=train.fine.astype(jnp.int32),
            train_coarse=train.coarse.astype(jnp.int32),
            x_test=test.x,
            test_fine=test.fine.astype(jnp.int32),
            test_coarse=test.coarse.astype(jnp.int32),
            x1=pairs.x1,
            x2=pairs.x2,
            pair_fine=pairs.fine.astype(jnp.int32),
            pair_coarse=pairs.coarse.astype(jnp.int32),
            kmeans_key=jax.random.key_data(k_kmeans),
        )
        chex.assert_shape([out.x_train, out.x_test, out.x1, out.x2], (n, family.dim))
        return out

    return heldout


def make_features(trainer: Trainer) -> Callable[[TrainState, Cell, jax.Array, HeldOut], Features]:
    """Builds ``features(state, cell, curve, heldout) -> Features`` for one cell.

    ``heldout`` is the cell's :class:`HeldOut` data (:func:`make_heldout` of ``state.world``);
    ``curve`` is the cell's ``[curve_length]`` training loss.
    """
    spec = trainer.spec
    family = spec.family

    def features(state: TrainState, cell: Cell, curve: jax.Array, heldout: HeldOut) -> Features:
        def encode(x: jax.Array) -> jax.Array:
            return trainer.encode(state.params, cell, x).astype(jnp.float32)

        pairs = Views(heldout.x1, heldout.x2, heldout.pair_fine, heldout.pair_coarse)
        finite_params = jnp.all(
            jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(state.params)])
        )
        out = Features(
            z_train=encode(heldout.x_train),
            train_fine=heldout.train_fine,
            train_coarse=heldout.train_coarse,
            z_test=encode(heldout.x_test),
            test_fine=heldout.test_fine,
            test_coarse=heldout.test_coarse,
            z1=encode(heldout.x1),
            z2=encode(heldout.x2),
            eval_loss=trainer.eval_loss(state, cell, pairs).astype(jnp.float32),
            trained_finite=finite_params & jnp.all(jnp.isfinite(curve)),
            fine_count=jnp.asarray(family.fine_count(cell), jnp.int32),
            kmeans_key=heldout.kmeans_key,
        )
        z_shape = (spec.eval_size, spec.max_out_dim)
        chex.assert_shape([out.z_train, out.z_test, out.z1, out.z2], z_shape)
        return out

    return features


def features_shapes(spec: Spec) -> Features:
    """The shapes and dtypes of one cell's :class:`Features` (what :func:`make_features`
    returns), from ``spec`` alone: the metrics can be lowered without tracing the features."""
    n, d = spec.eval_size, spec.max_out_dim

    def like(shape: tuple[int, ...], dtype: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype))

    z, labels = like((n, d), jnp.float32), like((n,), jnp.int32)
    return Features(
        z_train=z,
        train_fine=labels,
        train_coarse=labels,
        z_test=z,
        test_fine=labels,
        test_coarse=labels,
        z1=z,
        z2=z,
        eval_loss=like((), jnp.float32),
        trained_finite=like((), jnp.bool_),
        fine_count=like((), jnp.int32),
        kmeans_key=like((2,), jnp.uint32),
    )


def score_key(spec: Spec) -> tuple:
    """What the compiled metrics depend on: programs with equal keys share one."""
    family = spec.family
    return (
        spec.eval_size,
        spec.max_out_dim,
        family.num_fine_classes,
        family.num_coarse_classes,
        spec.knn_k,
        spec.kmeans_iters,
    )


def make_score(spec: Spec) -> Callable[[Features], dict[str, jax.Array]]:
    """Builds ``score(features) -> {metric: scalar}`` (:data:`METRICS`) for one cell.

    A diverged cell (non-finite parameters, training loss or held-out loss) reports NaN for every
    metric but ``diverged``.
    """
    n_fine = spec.family.num_fine_classes
    n_coarse = spec.family.num_coarse_classes

    def score(f: Features) -> dict[str, jax.Array]:
        pred_fine = metrics.linear_probe_predict(f.z_train, f.train_fine, f.z_test, n_fine)
        pred_coarse = metrics.linear_probe_predict(f.z_train, f.train_coarse, f.z_test, n_coarse)
        clusters = metrics.kmeans(
            jax.random.wrap_key_data(f.kmeans_key, impl=FUSED_THREEFRY),
            f.z_test,
            f.fine_count,
            n_fine,
            iters=spec.kmeans_iters,
        )
        nearest = metrics.knn_neighbours(f.z_train, f.z_test, k=spec.knn_k)  # fine and coarse

        def knn(y_train: jax.Array, y_test: jax.Array, classes: int) -> jax.Array:
            return metrics.accuracy(metrics.knn_vote(nearest, y_train, classes), y_test)

        result = {
            "eval_loss": f.eval_loss,
            "probe_fine": jnp.mean(pred_fine == f.test_fine),
            "probe_coarse": jnp.mean(pred_coarse == f.test_coarse),
            "knn_fine": knn(f.train_fine, f.test_fine, n_fine),
            "knn_coarse": knn(f.train_coarse, f.test_coarse, n_coarse),
            "kmeans_nmi": metrics.nmi(f.test_fine, clusters, n_fine),
            "kmeans_ari": metrics.ari(f.test_fine, clusters, n_fine),
            "recovered_clusters": metrics.recovered_clusters(f.test_fine, pred_fine, n_fine),
            "recovered_coarse": metrics.recovered_clusters(f.test_coarse, pred_coarse, n_coarse),
            "alignment": metrics.alignment(f.z1, f.z2),
            "uniformity": metrics.uniformity(f.z_test),
        }
        diverged = ~(f.trained_finite & jnp.isfinite(f.eval_loss))
        result = {k: jnp.where(diverged, jnp.nan, v.astype(jnp.float32)) for k, v in result.items()}
        result["diverged"] = diverged.astype(jnp.int32)
        return result

    return score


def make_evaluate(trainer: Trainer) -> Callable[[TrainState, Cell, jax.Array], dict]:
    """Builds ``evaluate(state, cell, curve) -> {metric: scalar}`` for one cell: the metrics of
    :func:`make_score` on the features of :func:`make_features` of the held-out data of
    :func:`make_heldout`."""
    heldout = make_heldout(trainer.spec)
    features = make_features(trainer)
    score = make_score(trainer.spec)

    def evaluate(state: TrainState, cell: Cell, curve: jax.Array) -> dict[str, jax.Array]:
        return score(features(state, cell, curve, heldout(state.world, cell)))

    return evaluate
