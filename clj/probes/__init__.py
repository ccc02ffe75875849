"""Downstream probes beyond the closed-form ones of :mod:`clj.metrics`.

- :mod:`clj.probes.gcn`: a transductive graph-convolutional probe over the relative-local-density
  graph of the features (Zhang et al., 2023), trained by hiding and predicting training labels.
"""

from clj.probes.gcn import (
    GCNConfig,
    gcn_fit,
    gcn_init,
    gcn_logits,
    gcn_predict,
    gcn_probe_accuracy,
    gcn_probe_predict,
    parameter_counts,
    propagation,
)

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
