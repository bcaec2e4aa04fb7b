"""Identity metrics on face embeddings — one import point for the verification, retrieval and collection
modules (kept so that ``from src.metrics.identity import ...`` keeps working):

* :mod:`src.metrics.verification`: k-fold accuracy, ROC AUC, EER, TAR@FAR (pooled and fold mean), thresholds
  at a fixed FAR, protection success rate, verification pairs, :class:`VerificationMetrics`,
  :class:`ProtectionSuccessRate`;
* :mod:`src.metrics.retrieval`: cosine similarity matrices, rank-k, mean average precision;
* :mod:`src.metrics.gather`: :class:`EmbeddingCollector`;
* :mod:`src.metrics.identity_settings`: the four protection settings, pair similarities, statistics.

Definitions, conventions and measured agreement with the references: ``docs/metrics.md``.
"""

from src.metrics.gather import EmbeddingCollector
from src.metrics.retrieval import (
    RETRIEVAL_CHUNK_BYTES,
    cosine_similarity_matrix,
    mean_average_precision,
    retrieval_rank_k,
)
from src.metrics.verification import (
    DEFAULT_FARS,
    ProtectionSuccessRate,
    VerificationMetrics,
    match_rate,
    protection_success_rate,
    tar_at_far_kfold,
    threshold_at_far,
    verification_accuracy,
    verification_pairs,
    verification_roc,
    verification_summary,
)

__all__ = [
    "DEFAULT_FARS",
    "RETRIEVAL_CHUNK_BYTES",
    "EmbeddingCollector",
    "ProtectionSuccessRate",
    "VerificationMetrics",
    "cosine_similarity_matrix",
    "match_rate",
    "mean_average_precision",
    "protection_success_rate",
    "retrieval_rank_k",
    "tar_at_far_kfold",
    "threshold_at_far",
    "verification_accuracy",
    "verification_pairs",
    "verification_roc",
    "verification_summary",
]
