"""Evaluation of one trained cell on held-out samples; vmap it over a grid like training."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from clj import metrics
from clj.cell import Cell
from clj.train import Trainer, TrainState, cell_keys

__all__ = ["METRICS", "make_evaluate"]

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


def make_evaluate(trainer: Trainer) -> Callable[[TrainState, Cell, jax.Array], dict]:
    """Builds ``evaluate(state, cell, curve) -> {metric: scalar}`` for one cell.

    Features are the encoder's outputs on clean anchors: ``eval_size`` anchors train the probes
    and ``eval_size`` fresh ones test them; ``eval_size`` fresh positive pairs give the loss,
    alignment and uniformity. Test anchors and pairs come from ``family.heldout_anchors`` (a
    dataset's test split; the probes' training anchors from its train split). A diverged cell
    reports NaN for every metric but ``diverged``.
    """
    spec = trainer.spec
    family = spec.family
    n = spec.eval_size
    n_fine, n_coarse = family.num_fine_classes, family.num_coarse_classes

    def evaluate(state: TrainState, cell: Cell, curve: jax.Array) -> dict[str, jax.Array]:
        k_train, k_test, k_pairs, k_kmeans = jax.random.split(cell_keys(cell.seed)["eval"], 4)
        train = family.anchors(k_train, state.world, cell, n)
        test = family.heldout_anchors(k_test, state.world, cell, n)
        k_anchor, k_views = jax.random.split(k_pairs)  # as family.sample splits its key
        held_out = family.heldout_anchors(k_anchor, state.world, cell, n)
        pairs = family.views(k_views, state.world, cell, held_out)

        def encode(x: jax.Array) -> jax.Array:
            return trainer.encode(state.params, cell, x)

        z_train, z_test = encode(train.x), encode(test.x)
        z1, z2 = encode(pairs.x1), encode(pairs.x2)

        pred_fine = metrics.linear_probe_predict(z_train, train.fine, z_test, n_fine)
        pred_coarse = metrics.linear_probe_predict(z_train, train.coarse, z_test, n_coarse)
        clusters = metrics.kmeans(
            k_kmeans, z_test, family.fine_count(cell), n_fine, iters=spec.kmeans_iters
        )
        result = {
            "eval_loss": trainer.eval_loss(state, cell, pairs),
            "probe_fine": jnp.mean(pred_fine == test.fine),
            "probe_coarse": jnp.mean(pred_coarse == test.coarse),
            "knn_fine": metrics.knn_accuracy(
                z_train, train.fine, z_test, test.fine, n_fine, k=spec.knn_k
            ),
            "knn_coarse": metrics.knn_accuracy(
                z_train, train.coarse, z_test, test.coarse, n_coarse, k=spec.knn_k
            ),
            "kmeans_nmi": metrics.nmi(test.fine, clusters, n_fine),
            "kmeans_ari": metrics.ari(test.fine, clusters, n_fine),
            "recovered_clusters": metrics.recovered_clusters(test.fine, pred_fine, n_fine),
            "recovered_coarse": metrics.recovered_clusters(test.coarse, pred_coarse, n_coarse),
            "alignment": metrics.alignment(z1, z2),
            "uniformity": metrics.uniformity(z_test),
        }
        finite_params = jnp.all(
            jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(state.params)])
        )
        diverged = ~(
            finite_params & jnp.all(jnp.isfinite(curve)) & jnp.isfinite(result["eval_loss"])
        )
        result = {k: jnp.where(diverged, jnp.nan, v.astype(jnp.float32)) for k, v in result.items()}
        result["diverged"] = diverged.astype(jnp.int32)
        return result

    return evaluate
