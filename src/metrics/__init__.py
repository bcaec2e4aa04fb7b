"""Shared metrics: image quality, identity (verification, retrieval, protection settings, impersonation, 1:N
protection rank), plus submodules.

Heavier or optional parts are imported from their own modules: ``src.metrics.perceptual`` (LPIPS,
ST-LPIPS), ``src.metrics.fid`` (FID with torch-fidelity's Inception), ``src.metrics.detection``
(frame/video AUC, AP, EER, accuracy), ``src.metrics.privacy`` (DP ε accounting) and ``src.metrics.plots``.
``src.metrics.curves`` is the one ROC / PR core (float64) that verification and detection share;
``src.metrics.gather`` the one base of the rank-gathering collectors.

Every metric has a functional form (per-sample values or a result dict) and, where it is accumulated over a
dataloader, a DDP-safe ``torchmetrics.Metric`` class. Bad input raises ``ValueError`` naming the metric.
Per-sample means subclass :class:`src.metrics.base.PerSampleMeanMetric`; gather-style metrics subclass
:class:`src.metrics.gather.GatherMetric`. Definitions, conventions (ranges, reductions, pooled vs fold mean)
and the measured agreement with independent references: ``docs/metrics.md``.
"""

from src.metrics.base import PerSampleMeanMetric
from src.metrics.embeddings import extract_embeddings
from src.metrics.gather import EmbeddingCollector, GatherMetric
from src.metrics.identity_settings import cosine_statistics, identity_settings, pair_scores
from src.metrics.image_quality import MAE, MSE, MSSSIM, PSNR, PSNR_CAP_DB, SSIM, mae, ms_ssim, mse, psnr, ssim
from src.metrics.impersonation import (
    PUBLISHED_FAR_THRESHOLDS,
    ImpersonationSuccessRate,
    impersonation_success_rate,
    published_threshold,
    target_similarities,
)
from src.metrics.protection_rank import impostors_at_or_above_genuine, protection_rank_success_rate
from src.metrics.retrieval import cosine_similarity_matrix, mean_average_precision, retrieval_rank_k
from src.metrics.verification import (
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
    "MAE",
    "MSE",
    "MSSSIM",
    "PSNR",
    "PSNR_CAP_DB",
    "PUBLISHED_FAR_THRESHOLDS",
    "SSIM",
    "EmbeddingCollector",
    "GatherMetric",
    "ImpersonationSuccessRate",
    "PerSampleMeanMetric",
    "ProtectionSuccessRate",
    "VerificationMetrics",
    "cosine_similarity_matrix",
    "cosine_statistics",
    "extract_embeddings",
    "identity_settings",
    "impersonation_success_rate",
    "impostors_at_or_above_genuine",
    "mae",
    "match_rate",
    "mean_average_precision",
    "ms_ssim",
    "mse",
    "pair_scores",
    "protection_rank_success_rate",
    "protection_success_rate",
    "psnr",
    "published_threshold",
    "retrieval_rank_k",
    "ssim",
    "tar_at_far_kfold",
    "target_similarities",
    "threshold_at_far",
    "verification_accuracy",
    "verification_pairs",
    "verification_roc",
    "verification_summary",
]
