"""Accuracy of a classifier behind a defence that can reject inputs (adversarial-defence evaluation).

A defence that can reject (refuse to classify) an input changes what "accuracy" means, so each sample is
summarised by two flags: ``correct`` (the defended prediction equals the label) and ``rejected`` (the defence
refused the sample; ``correct`` is then ignored). Every convention in use is reported, so a results table can
pick the one its protocol defines:

* **On adversarial inputs** a rejection is a success of the defence — it caught the attack — so the robust
  accuracy counts it as correct (``acc_reject_as_correct``); a stricter reading excludes rejected samples and
  reports the accuracy on the accepted ones only (``acc_accepted``; NaN when every sample was rejected).
* **On clean inputs** a rejection is an error — a benign input was refused — so the natural accuracy is
  ``acc_reject_as_error``.
* ``rejection_rate`` is the detection rate of the rejecting detector: its true-positive rate (TPR) on
  adversarial inputs and its false-positive rate (FPR) on clean inputs.

:class:`RejectionAwareAccuracy` keeps three integer counters reduced with ``sum`` across processes, so the DDP
value is exactly the single-process value over the samples of every rank, for uneven shards and batches
alike. :func:`rejection_aware_accuracy` is the one-shot form (same code path). Definitions:
``docs/metrics.md`` ("Robust accuracy with rejection").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from src.metrics._checks import check_tensor

__all__ = ["RejectionAwareAccuracy", "rejection_aware_accuracy"]


def _check_flags(name: str, arg: str, x: object) -> Tensor:
    """A 1-D boolean or integer 0/1 tensor → bool tensor; floats are refused (scores are not flags)."""
    t = check_tensor(name, arg, x).detach()
    if t.ndim != 1:
        raise ValueError(f"{name}: `{arg}` must be 1-D [B], got shape {tuple(t.shape)}")
    if t.dtype == torch.bool:
        return t
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name}: `{arg}` must be boolean or integer 0/1, got {t.dtype}")
    bad = (t != 0) & (t != 1)
    if bool(bad.any()):
        values = torch.unique(t[bad])[:5].tolist()
        raise ValueError(f"{name}: `{arg}` must hold only 0 or 1, found {values}")
    return t.bool()


class RejectionAwareAccuracy(Metric):
    """Accuracy of a classifier behind a defence that may reject (refuse) inputs.

    ``update(correct, rejected)`` with two ``[B]`` boolean (or integer 0/1) tensors: ``correct`` — the
    defended prediction equals the label (ignored where rejected) — and ``rejected`` — the defence refused the
    sample. States are ``long`` scalars ``count``, ``rejected``, ``accepted_correct`` reduced with ``sum``, so
    the DDP result is exact for uneven shards and ranks without data.

    ``compute()`` returns float32 scalar tensors ``rejection_rate``, ``acc_reject_as_correct`` (attacked
    inputs), ``acc_reject_as_error`` (clean inputs: natural accuracy), ``acc_accepted`` (rejections excluded;
    NaN when all were rejected) and ``count``; see the module docstring. It raises :class:`ValueError` when no
    sample was seen on any rank.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False
    metric_name: str = "RejectionAwareAccuracy"

    count: Tensor
    rejected: Tensor
    accepted_correct: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for state in ("count", "rejected", "accepted_correct"):
            self.add_state(state, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, correct: Tensor, rejected: Tensor) -> None:
        """Add one batch of per-sample flags to the counters (an empty batch adds nothing)."""
        name = self.metric_name
        ok = _check_flags(name, "correct", correct)
        rej = _check_flags(name, "rejected", rejected)
        if ok.shape != rej.shape:
            raise ValueError(
                f"{name}: `correct` and `rejected` must have the same shape, got {tuple(ok.shape)} and "
                f"{tuple(rej.shape)}"
            )
        device = self.count.device
        self.count += rej.numel()
        self.rejected += rej.sum().to(device=device, dtype=torch.long)
        self.accepted_correct += (ok & ~rej).sum().to(device=device, dtype=torch.long)

    def compute(self) -> dict[str, Tensor]:
        """The four accuracies / rates and the sample count (all ranks), as float32 scalar tensors."""
        n = int(self.count)
        if n == 0:
            raise ValueError(
                f"{self.metric_name}: compute() called on an empty state (no update() with data on any rank)"
            )
        count = self.count.to(torch.float64)
        rejected = self.rejected.to(torch.float64)
        accepted_correct = self.accepted_correct.to(torch.float64)
        accepted = count - rejected
        acc_accepted = (
            accepted_correct / accepted if int(accepted) > 0 else torch.full_like(count, float("nan"))
        )
        out = {
            "rejection_rate": rejected / count,
            "acc_reject_as_correct": (accepted_correct + rejected) / count,
            "acc_reject_as_error": accepted_correct / count,
            "acc_accepted": acc_accepted,
            "count": count,
        }
        return {key: value.to(torch.float32) for key, value in out.items()}


def rejection_aware_accuracy(correct: Tensor, rejected: Tensor) -> dict[str, float]:
    """One-shot :class:`RejectionAwareAccuracy` over full ``[N]`` flag tensors, as Python floats."""
    metric = RejectionAwareAccuracy()
    metric.update(correct, rejected)
    return {key: float(value) for key, value in metric.compute().items()}
