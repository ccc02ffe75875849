"""The static half of a program: everything that fixes shapes and code, shared by all its cells."""

from __future__ import annotations

import dataclasses

from clj.data import DataFamily

__all__ = ["Spec"]


@dataclasses.dataclass(frozen=True)
class Spec:
    """Static configuration of one compiled program of cells.

    Attributes:
      family: the data family, already sized (input ``dim``, padded ``max_clusters``).
      encoder: encoder name (``clj.encoders.ENCODERS``).
      depth: hidden layers of the MLP encoder.
      max_width: hidden width the cells are padded to.
      max_out_dim: output dimension the cells are padded to.
      loss: loss name (``clj.losses.LOSSES``).
      optimizer: optimiser name (``clj.optim.OPTIMIZERS``).
      batch: positive pairs per step.
      steps: training steps.
      eval_size: held-out anchors for the probe's training set, and again for its test set.
      log_every: steps between points of the loss curve (divides ``steps``).
      pool_size: if set, each cell draws a fixed pool of this many anchors once and every step
        augments a random batch of them; otherwise fresh anchors every step.
      views: augmented views per group of objectives that use groups (``simvae``'s J).
      knn_k: neighbours of the k-NN probe.
      kmeans_iters: Lloyd iterations of the k-means used for NMI and ARI.
    """

    family: DataFamily
    encoder: str = "mlp"
    depth: int = 2
    max_width: int = 64
    max_out_dim: int = 8
    loss: str = "spectral"
    optimizer: str = "adam"
    batch: int = 256
    steps: int = 1000
    eval_size: int = 1024
    log_every: int = 10
    pool_size: int | None = None
    views: int = 2
    knn_k: int = 10
    kmeans_iters: int = 30

    @property
    def curve_length(self) -> int:
        """Number of points of each cell's loss curve."""
        return self.steps // self.log_every
