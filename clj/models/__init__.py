"""Objectives with trainers of their own (``clj.train.OBJECTIVES``): supervised and generative."""

from clj.models import supervised
from clj.models.supervised import head_logits, supervised_loss

__all__ = ["head_logits", "supervised", "supervised_loss"]
