"""Metrics of representations and clusterings; pure JAX, safe under ``jax.jit`` and ``jax.vmap``.

- :mod:`clj.metrics.clustering`: agreement of labelings (contingency, MI, NMI, ARI, recovered
  clusters) and the Calinski–Harabasz score.
- :mod:`clj.metrics.kmeans`: k-means with a per-cell (traced) number of clusters.
- :mod:`clj.metrics.probes`: ridge linear probe and k-NN classifier.
- :mod:`clj.metrics.geometry`: alignment, uniformity, relative local density, neighbour agreement.
"""

from clj.metrics.clustering import (
    ari,
    calinski_harabasz,
    contingency,
    mutual_information,
    nmi,
    recovered_clusters,
)
from clj.metrics.geometry import (
    alignment,
    neighbour_agreement,
    rld,
    rld_log_weights,
    uniformity,
)
from clj.metrics.kmeans import kmeans
from clj.metrics.probes import (
    accuracy,
    knn_accuracy,
    knn_neighbours,
    knn_predict,
    knn_vote,
    linear_probe_accuracy,
    linear_probe_predict,
)

__all__ = [
    "accuracy",
    "alignment",
    "ari",
    "calinski_harabasz",
    "contingency",
    "kmeans",
    "knn_accuracy",
    "knn_neighbours",
    "knn_predict",
    "knn_vote",
    "linear_probe_accuracy",
    "linear_probe_predict",
    "mutual_information",
    "neighbour_agreement",
    "nmi",
    "recovered_clusters",
    "rld",
    "rld_log_weights",
    "uniformity",
]
