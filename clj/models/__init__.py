"""Objectives with trainers of their own (``clj.train.OBJECTIVES``): supervised and generative."""

from clj.models import simvae, supervised
from clj.models.supervised import head_logits, supervised_loss

__all__ = ["head_logits", "simvae", "supervised", "supervised_loss"]
