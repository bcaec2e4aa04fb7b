"""Shared metrics: image quality (PSNR, SSIM, MSE, MAE) and identity (verification, retrieval, collectors).

Every metric has a functional form (per-sample values or a result dict) and, where it is accumulated over a
dataloader, a DDP-safe ``torchmetrics.Metric`` class. Bad input raises ``ValueError`` naming the metric.
Later modules (perceptual/LPIPS, MS-SSIM, TAR@FAR, detection, DP) follow the same pattern: per-sample means
subclass :class:`src.metrics.base.PerSampleMeanMetric`; gather-style metrics use ``dist_reduce_fx="cat"``
list states like :class:`src.metrics.identity.EmbeddingCollector`.
"""

from src.metrics.base import PerSampleMeanMetric
from src.metrics.identity import (
    EmbeddingCollector,
    cosine_similarity_matrix,
    mean_average_precision,
    retrieval_rank_k,
    verification_accuracy,
    verification_pairs,
)
from src.metrics.image_quality import MAE, MSE, PSNR, PSNR_CAP_DB, SSIM, mae, mse, psnr, ssim

__all__ = [
    "MAE",
    "MSE",
    "PSNR",
    "PSNR_CAP_DB",
    "SSIM",
    "EmbeddingCollector",
    "PerSampleMeanMetric",
    "cosine_similarity_matrix",
    "mae",
    "mean_average_precision",
    "mse",
    "psnr",
    "retrieval_rank_k",
    "ssim",
    "verification_accuracy",
    "verification_pairs",
]
