"""Shared metrics: image quality, identity (verification, retrieval, settings), plus submodules.

Heavier or optional parts are imported from their own modules: ``src.metrics.perceptual`` (LPIPS,
ST-LPIPS), ``src.metrics.detection`` (frame/video AUC, AP, EER), ``src.metrics.privacy`` (DP ε accounting)
and ``src.metrics.plots``.

Every metric has a functional form (per-sample values or a result dict) and, where it is accumulated over a
dataloader, a DDP-safe ``torchmetrics.Metric`` class. Bad input raises ``ValueError`` naming the metric.
All modules follow the same pattern: per-sample means
subclass :class:`src.metrics.base.PerSampleMeanMetric`; gather-style metrics use ``dist_reduce_fx="cat"``
list states like :class:`src.metrics.identity.EmbeddingCollector`.
"""

from src.metrics.base import PerSampleMeanMetric
from src.metrics.embeddings import extract_embeddings
from src.metrics.identity import (
    EmbeddingCollector,
    ProtectionSuccessRate,
    VerificationMetrics,
    cosine_similarity_matrix,
    match_rate,
    mean_average_precision,
    protection_success_rate,
    retrieval_rank_k,
    tar_at_far_kfold,
    threshold_at_far,
    verification_accuracy,
    verification_pairs,
    verification_roc,
    verification_summary,
)
from src.metrics.identity_settings import cosine_statistics, identity_settings
from src.metrics.image_quality import MAE, MSE, MSSSIM, PSNR, PSNR_CAP_DB, SSIM, mae, ms_ssim, mse, psnr, ssim

__all__ = [
    "MAE",
    "MSE",
    "MSSSIM",
    "PSNR",
    "PSNR_CAP_DB",
    "SSIM",
    "EmbeddingCollector",
    "PerSampleMeanMetric",
    "ProtectionSuccessRate",
    "VerificationMetrics",
    "cosine_similarity_matrix",
    "cosine_statistics",
    "extract_embeddings",
    "identity_settings",
    "mae",
    "match_rate",
    "mean_average_precision",
    "ms_ssim",
    "mse",
    "protection_success_rate",
    "psnr",
    "retrieval_rank_k",
    "ssim",
    "tar_at_far_kfold",
    "threshold_at_far",
    "verification_accuracy",
    "verification_pairs",
    "verification_roc",
    "verification_summary",
]
