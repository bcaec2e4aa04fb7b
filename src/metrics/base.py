"""Base class for metrics reported as a mean of per-sample values (PSNR, SSIM, MSE, MAE; later LPIPS).

The state is a float64 *sum* of per-sample values plus an integer *count*, both reduced with ``sum`` across
processes, so the DDP result is exactly the mean over every sample seen by every rank, also for uneven shards
and uneven batch sizes (a mean of per-batch means would weight small batches too heavily).
Subclasses implement :meth:`PerSampleMeanMetric.per_sample` only.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor
from torchmetrics import Metric


class PerSampleMeanMetric(Metric):
    """Mean over samples of a per-sample metric; DDP-safe via ``sum``/``count`` states.

    ``compute()`` returns a float32 scalar tensor and raises :class:`ValueError` when no sample was seen
    (on any rank).
    """

    is_differentiable = False
    full_state_update = False
    #: Name used in error messages; subclasses override.
    metric_name: str = "PerSampleMeanMetric"

    total: Tensor
    count: Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @abstractmethod
    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Return the metric of each sample as a 1-D tensor ``[B]`` (validation included)."""

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add the per-sample values of one batch to the running sum and count."""
        values = self.per_sample(preds.detach(), target.detach())
        self.total += values.detach().to(device=self.total.device, dtype=torch.float64).sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        """Mean of all per-sample values seen so far (all ranks)."""
        if int(self.count) == 0:
            raise ValueError(
                f"{self.metric_name}: compute() called on an empty state (no update() with data on any rank)"
            )
        return (self.total / self.count).to(torch.float32)
