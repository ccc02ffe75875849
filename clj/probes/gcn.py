"""A transductive graph-convolutional probe over the relative-local-density graph.

Zhang et al. (2023) argue that contrastive representations form *locally* dense clusters, which a
linear probe cannot exploit but a classifier that passes labels along a similarity graph can.
This probe does that:

- **Graph.** The nodes are the training and test points together. Edge weights are the ``W`` of
  :func:`clj.metrics.rld` (from :func:`clj.metrics.rld_log_weights`, the same code), at a chosen
  temperature.
- **Normalisation.** With ``D = diag(Σ_j W_ij)`` the propagation matrix is
  ``P = ½ (I + D^(−1/2) W D^(−1/2))``: the usual symmetric GCN normalisation of ``W + D``, i.e.
  each node's self-loop weighs as much as all of its edges together. ``P`` does not change when
  ``W`` is scaled, and it is formed in log space so that no row underflows at small temperature.
- **Inputs.** A node's input is a learned embedding of its label, or of a separate "unknown"
  token when its label is hidden. Test labels are always hidden.
- **Layers.** Two graph convolutions: ``H = relu(P E W₁ + b₁)``, logits ``= P H W₂ + b₂``.
- **Training.** Adam inside ``jax.lax.scan``; every step hides a random fraction of the training
  labels and minimises the cross-entropy of predicting the hidden ones from the rest. Nothing is
  chosen on the test points; after training, every training label is shown and the test nodes are
  predicted.

Every function is pure and safe under ``jax.jit`` and ``jax.vmap`` (over the key, features and
labels; the :class:`GCNConfig` is static).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from clj.metrics import rld_log_weights

__all__ = [
    "GCNConfig",
    "gcn_fit",
    "gcn_init",
    "gcn_logits",
    "gcn_predict",
    "gcn_probe_accuracy",
    "gcn_probe_predict",
    "parameter_counts",
    "propagation",
]


@dataclasses.dataclass(frozen=True)
class GCNConfig:
    """Static hyper-parameters of the GCN probe.

    Attributes:
      hidden: width of the label embedding and of the hidden graph convolution.
      steps: Adam steps.
      lr: Adam learning rate.
      hide: fraction of the training labels hidden (and predicted) at each step, in ``(0, 1)``.
      temperature: temperature of the RLD graph built from features.
    """

    hidden: int = 32
    steps: int = 200
    lr: float = 1e-2
    hide: float = 0.5
    temperature: float = 0.1

    def __post_init__(self) -> None:
        for name in ("hidden", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if not isinstance(self.hide, int | float) or not 0 < self.hide < 1:
            raise ValueError(f"hide={self.hide!r} must be a fraction strictly between 0 and 1")


def parameter_counts(dim: int, num_classes: int, hidden: int = GCNConfig.hidden) -> dict[str, int]:
    """Trainable parameters of the linear probe and of the GCN probe.

    The linear probe (:func:`clj.metrics.linear_probe_predict`) has a ``[dim, num_classes]``
    weight and a bias per class. The GCN has a ``[num_classes + 1, hidden]`` embedding (the
    classes and "unknown"), a ``[hidden, hidden]`` and a ``[hidden, num_classes]`` weight, and
    their biases; it never sees the features, only the graph they induce.

    Returns:
      ``{"linear_probe": int, "gcn": int}``.
    """
    for name, value in (("dim", dim), ("num_classes", num_classes), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    linear = dim * num_classes + num_classes
    gcn = (num_classes + 1) * hidden + hidden * hidden + hidden + hidden * num_classes + num_classes
    return {"linear_probe": linear, "gcn": gcn}


def propagation(log_w: jax.Array) -> jax.Array:
    """The propagation matrix ``P = ½ (I + D^(−1/2) W D^(−1/2))`` of a weighted graph.

    Args:
      log_w: ``[n, n]`` symmetric log edge weights, ``−inf`` where there is no edge (the
        diagonal is ignored). A node without edges keeps only its self-loop.

    Returns:
      ``[n, n]`` float32, symmetric, entries in ``[0, 1]``.
    """
    log_w = jnp.asarray(log_w, jnp.float32)
    n = log_w.shape[0]
    chex.assert_shape(log_w, (n, n))
    eye = jnp.eye(n, dtype=bool)
    log_w = jnp.where(eye, -jnp.inf, log_w)
    log_deg = jax.nn.logsumexp(log_w, axis=1)
    log_deg = jnp.where(jnp.isfinite(log_deg), log_deg, 0.0)  # isolated node: no edges to scale
    # W_ij ≤ min(k_i, k_j) ≤ √(k_i k_j), so every normalised entry is at most 1.
    normalised = jnp.exp(log_w - 0.5 * log_deg[:, None] - 0.5 * log_deg[None, :])
    return 0.5 * (normalised + jnp.eye(n, dtype=jnp.float32))


def gcn_init(key: jax.Array, num_classes: int, hidden: int) -> dict[str, jax.Array]:
    """Initial GCN parameters.

    Returns:
      ``{"embed": [num_classes + 1, hidden], "w1": [hidden, hidden], "b1": [hidden],
      "w2": [hidden, num_classes], "b2": [num_classes]}``; row ``num_classes`` of ``embed`` is
      the "unknown" token. Embeddings are ``N(0, 1)``, ``w1`` He- and ``w2`` LeCun-scaled.
    """
    k_embed, k_w1, k_w2 = jax.random.split(key, 3)
    return {
        "embed": jax.random.normal(k_embed, (num_classes + 1, hidden)),
        "w1": jax.random.normal(k_w1, (hidden, hidden)) * math.sqrt(2.0 / hidden),
        "b1": jnp.zeros((hidden,), jnp.float32),
        "w2": jax.random.normal(k_w2, (hidden, num_classes)) * math.sqrt(1.0 / hidden),
        "b2": jnp.zeros((num_classes,), jnp.float32),
    }


def gcn_logits(
    params: dict[str, jax.Array], prop: jax.Array, labels: jax.Array, known: jax.Array
) -> jax.Array:
    """Class logits of every node.

    Args:
      params: from :func:`gcn_init`.
      prop: ``[n, n]`` propagation matrix (:func:`propagation`).
      labels: ``[n]`` int labels in ``[0, num_classes)``; only entries with ``known`` are read.
      known: ``[n]`` bool, which labels the network sees.

    Returns:
      ``[n, num_classes]`` logits.
    """
    n = labels.shape[0]
    unknown = params["embed"].shape[0] - 1
    chex.assert_shape(prop, (n, n))
    chex.assert_shape(known, (n,))
    tokens = jnp.where(known, labels, unknown)
    h = params["embed"][tokens]
    h = jax.nn.relu(prop @ (h @ params["w1"]) + params["b1"])
    return prop @ (h @ params["w2"]) + params["b2"]


def gcn_fit(
    key: jax.Array,
    prop: jax.Array,
    labels: jax.Array,
    train_mask: jax.Array,
    num_classes: int,
    config: GCNConfig = GCNConfig(),
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Trains the GCN to predict hidden training labels from the visible ones.

    Step ``t`` hides each training label with probability ``config.hide`` (key
    ``fold_in(key, t)``) and takes an Adam step on the mean cross-entropy over the hidden
    training nodes. Labels outside ``train_mask`` are never read.

    Args:
      key: PRNG key (initialisation and the hidden subsets).
      prop: ``[n, n]`` propagation matrix.
      labels: ``[n]`` int labels; only training entries are read.
      train_mask: ``[n]`` bool, the training nodes.
      num_classes: static number of classes.
      config: static hyper-parameters.

    Returns:
      ``(params, losses)``, ``losses`` ``[config.steps]`` the training loss of each step.
    """
    n = labels.shape[0]
    chex.assert_shape(train_mask, (n,))
    k_init, k_steps = jax.random.split(key)
    labels = jnp.where(train_mask, labels, 0)  # test labels are never read
    params = gcn_init(k_init, num_classes, config.hidden)
    tx = optax.adam(config.lr)
    targets = jax.nn.one_hot(labels, num_classes)

    def loss_fn(params: Any, hidden: jax.Array) -> jax.Array:
        logits = gcn_logits(params, prop, labels, train_mask & ~hidden)
        per_node = optax.softmax_cross_entropy(logits, targets)
        count = jnp.maximum(jnp.sum(hidden), 1)
        return jnp.sum(jnp.where(hidden, per_node, 0.0)) / count

    def step(carry: tuple[Any, Any], t: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
        params, opt_state = carry
        draw = jax.random.uniform(jax.random.fold_in(k_steps, t), (n,))
        hidden = train_mask & (draw < config.hide)
        loss, grads = jax.value_and_grad(loss_fn)(params, hidden)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(
        step, (params, tx.init(params)), jnp.arange(config.steps, dtype=jnp.int32)
    )
    return params, losses


def gcn_predict(
    key: jax.Array,
    prop: jax.Array,
    labels: jax.Array,
    train_mask: jax.Array,
    num_classes: int,
    config: GCNConfig = GCNConfig(),
) -> jax.Array:
    """Trains the GCN (:func:`gcn_fit`), then predicts every node with all training labels shown.

    Args:
      key: PRNG key.
      prop: ``[n, n]`` propagation matrix.
      labels: ``[n]`` int labels; entries outside ``train_mask`` are never read.
      train_mask: ``[n]`` bool, the training nodes.
      num_classes: static number of classes.
      config: static hyper-parameters.

    Returns:
      ``[n]`` int32 predicted labels (meaningful for the nodes outside ``train_mask``).
    """
    params, _ = gcn_fit(key, prop, labels, train_mask, num_classes, config)
    logits = gcn_logits(params, prop, jnp.where(train_mask, labels, 0), train_mask)
    return jnp.argmax(logits, axis=1).astype(jnp.int32)


def gcn_probe_predict(
    key: jax.Array,
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    num_classes: int,
    config: GCNConfig = GCNConfig(),
) -> jax.Array:
    """Predicts test labels with the GCN over the RLD graph of train and test features together.

    Args:
      key: PRNG key.
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels in ``[0, num_classes)``.
      z_test: ``[n_test, dim]`` float features.
      num_classes: static number of classes.
      config: static hyper-parameters (``config.temperature`` sets the graph).

    Returns:
      ``[n_test]`` int32 predicted labels; ``-1`` everywhere if any feature is not finite.
    """
    z_train = jnp.asarray(z_train, jnp.float32)
    z_test = jnp.asarray(z_test, jnp.float32)
    y_train = jnp.asarray(y_train, jnp.int32)
    n_train, n_test = z_train.shape[0], z_test.shape[0]
    chex.assert_shape(y_train, (n_train,))
    chex.assert_equal_shape_suffix([z_train, z_test], 1)
    finite = jnp.all(jnp.isfinite(z_train)) & jnp.all(jnp.isfinite(z_test))
    z = jnp.where(finite, jnp.concatenate([z_train, z_test]), 0.0)
    prop = propagation(rld_log_weights(z, config.temperature))
    labels = jnp.concatenate([y_train, jnp.zeros((n_test,), jnp.int32)])
    train_mask = jnp.arange(n_train + n_test) < n_train
    pred = gcn_predict(key, prop, labels, train_mask, num_classes, config)[n_train:]
    return jnp.where(finite, pred, -1)


def gcn_probe_accuracy(
    key: jax.Array,
    z_train: jax.Array,
    y_train: jax.Array,
    z_test: jax.Array,
    y_test: jax.Array,
    num_classes: int,
    config: GCNConfig = GCNConfig(),
) -> jax.Array:
    """Test accuracy of :func:`gcn_probe_predict`; NaN if any feature is not finite.

    Args:
      key: PRNG key.
      z_train: ``[n_train, dim]`` float features.
      y_train: ``[n_train]`` int labels.
      z_test: ``[n_test, dim]`` float features.
      y_test: ``[n_test]`` int labels (used only to score).
      num_classes: static number of classes.
      config: static hyper-parameters.

    Returns:
      Scalar float32 in ``[0, 1]``.
    """
    pred = gcn_probe_predict(key, z_train, y_train, z_test, num_classes, config)
    accuracy = jnp.mean((pred == y_test).astype(jnp.float32))
    return jnp.where(jnp.all(pred >= 0), accuracy, jnp.nan)
