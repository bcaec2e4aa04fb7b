"""The one ROC / precision-recall core of the package (float64, CPU): ROC vertices, AUC, average precision,
equal error rate, TAR at a fixed FAR. Verification (:mod:`src.metrics.verification`) and deepfake detection
(:mod:`src.metrics.detection`) both compute their curves here.

Vocabulary: a *positive* is a genuine pair (verification) or a fake sample (detection); higher scores mean
"more likely positive" and the decision rule is ``score >= threshold``. Definitions and the references they
were checked against are in ``docs/metrics.md`` ("Curves").

* Scores are compared in float64 and every rate is a ratio of integer counts computed in float64, so the
  results do not depend on the input dtype beyond its rounding to float64.
* One ROC vertex per **distinct** score (descending), after the ``(0, 0)`` vertex at threshold ``+inf``, as
  ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``: tied scores form one diagonal step, so a tie
  between a positive and a negative counts 1/2 in the AUC (the Mann-Whitney convention).
* The functions here take the already validated tensors of their callers (1-D, finite, same length, both
  classes present) and raise :class:`ValueError` naming ``name`` when that does not hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BinaryCounts",
    "EqualErrorRate",
    "RocCurve",
    "average_precision",
    "binary_counts",
    "check_fars",
    "curve_summary",
    "equal_error_rate",
    "far_threshold",
    "max_false_accepts",
    "nearest_point_eer",
    "roc_auc",
    "roc_curve",
    "tar_at_far",
    "threshold_at_far",
]


class BinaryCounts(NamedTuple):
    """Cumulative counts at each distinct threshold, descending: the rule ``score >= thresholds[k]`` accepts
    ``tps[k]`` positives and ``fps[k]`` negatives (float64 counts; the last entry counts everything)."""

    fps: Tensor
    tps: Tensor
    thresholds: Tensor


class RocCurve(NamedTuple):
    """ROC vertices ``(fpr, tpr, thresholds)`` in float64, starting at ``(0, 0)`` with threshold ``+inf``."""

    fpr: Tensor
    tpr: Tensor
    thresholds: Tensor


class EqualErrorRate(NamedTuple):
    """Equal error rate and two decision thresholds for it (see :func:`equal_error_rate`)."""

    eer: float
    threshold_nearest: float
    threshold_interpolated: float


def _prepare(name: str, scores: Tensor, positive: Tensor) -> tuple[Tensor, Tensor]:
    """CPU float64 scores and bool positives; both classes must be present."""
    if scores.ndim != 1 or positive.shape != scores.shape or scores.numel() == 0:
        raise ValueError(
            f"{name}: scores and labels must be non-empty 1-D tensors of one length, got "
            f"{tuple(scores.shape)} and {tuple(positive.shape)}"
        )
    s = scores.detach().to("cpu", torch.float64)
    y = positive.detach().cpu().bool()
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.numel():
        raise ValueError(
            f"{name}: needs both classes, got {n_pos} positive and {y.numel() - n_pos} negative samples"
        )
    return s, y


def _descending_order(s: Tensor) -> Tensor:
    """A descending order of ``s`` (numpy's stable sort on CPU, ≈30× faster than torch's stable sort)."""
    return torch.from_numpy(np.argsort(-s.numpy(), kind="stable"))


def binary_counts(scores: Tensor, positive: Tensor, name: str = "binary_counts") -> BinaryCounts:
    """Accepted positives / negatives at every distinct score, thresholds descending (float64)."""
    s, y = _prepare(name, scores, positive)
    order = _descending_order(s)
    s_sorted = s[order]
    last = torch.ones(s.numel(), dtype=torch.bool)
    last[:-1] = s_sorted[1:] != s_sorted[:-1]  # last element of each run of equal scores
    idx = torch.nonzero(last).flatten()
    tps = torch.cumsum(y[order].to(torch.float64), 0)[idx]
    fps = (idx + 1).to(torch.float64) - tps
    return BinaryCounts(fps, tps, s_sorted[idx])


def _rates(counts: BinaryCounts) -> RocCurve:
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, counts.fps]) / counts.fps[-1]
    tpr = torch.cat([zero, counts.tps]) / counts.tps[-1]
    thresholds = torch.cat([torch.full((1,), math.inf, dtype=torch.float64), counts.thresholds])
    return RocCurve(fpr, tpr, thresholds)


def roc_curve(scores: Tensor, positive: Tensor, name: str = "roc_curve") -> RocCurve:
    """Full ROC (every distinct score) as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``:
    thresholds bit-equal, rates to 1e-12 in the tests."""
    return _rates(binary_counts(scores, positive, name))


def _auc_from_counts(counts: BinaryCounts) -> float:
    zero = torch.zeros(1, dtype=torch.float64)
    fp = torch.cat([zero, counts.fps])
    tp = torch.cat([zero, counts.tps])
    # Trapezoids on integer counts (exact in float64 below 2**53), one division at the end.
    area = ((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1])).sum() / 2
    return float(area / (counts.fps[-1] * counts.tps[-1]))


def roc_auc(scores: Tensor, positive: Tensor, name: str = "roc_auc") -> float:
    """Area under the ROC (trapezoids; ties count 1/2); agrees with ``sklearn.metrics.roc_auc_score`` to
    1.1e-16 (measured; tests allow 1e-12)."""
    return _auc_from_counts(binary_counts(scores, positive, name))


def _ap_from_counts(counts: BinaryCounts) -> float:
    gained = torch.diff(counts.tps, prepend=torch.zeros(1, dtype=torch.float64))
    return float((gained * counts.tps / (counts.tps + counts.fps)).sum() / counts.tps[-1])


def average_precision(scores: Tensor, positive: Tensor, name: str = "average_precision") -> float:
    """``sum_k (R_k - R_{k-1}) P_k`` over the distinct thresholds (no interpolation); agrees with
    ``sklearn.metrics.average_precision_score`` to 1e-12 (measured: bit-equal on the test cases)."""
    return _ap_from_counts(binary_counts(scores, positive, name))


def _lerp(a: float, b: float, w: float) -> float:
    """``a + w (b - a)``, exact at ``w = 0`` and ``w = 1``."""
    return a + w * (b - a) if w < 0.5 else b - (1 - w) * (b - a)


def _eer_from_counts(counts: BinaryCounts) -> EqualErrorRate:
    fpr, _, thr = _rates(counts)
    # (FNR - FPR) · P · N in exact integers: +P·N at the +inf vertex, -P·N at the last one, non-increasing.
    n_neg, n_pos = int(counts.fps[-1]), int(counts.tps[-1])
    fp = torch.cat([torch.zeros(1, dtype=torch.long), counts.fps.long()])
    tp = torch.cat([torch.zeros(1, dtype=torch.long), counts.tps.long()])
    gap = (n_pos - tp) * n_neg - fp * n_pos
    i = int(torch.nonzero(gap <= 0)[0])  # >= 1
    g0, g1 = int(gap[i - 1]), int(gap[i])
    w = g0 / (g0 - g1)
    eer = _lerp(float(fpr[i - 1]), float(fpr[i]), w)
    # Nearest vertex of the crossing segment (ties → vertex i, the lower threshold); vertex 0 (+inf) has
    # |gap| = 1 >= |gap[i]|, so this threshold is always a real score.
    nearest = float(thr[i - 1]) if abs(g0) < abs(g1) else float(thr[i])
    interpolated = float(thr[i]) if i == 1 else _lerp(float(thr[i - 1]), float(thr[i]), w)
    return EqualErrorRate(eer, nearest, interpolated)


def equal_error_rate(scores: Tensor, positive: Tensor, name: str = "equal_error_rate") -> EqualErrorRate:
    """Equal error rate: where the ROC polyline (straight segments between vertices) crosses FNR = FPR.

    The crossing segment runs from vertex ``i-1`` (FNR > FPR) to vertex ``i`` (FNR <= FPR); with
    ``g = FNR - FPR``, ``w = g[i-1] / (g[i-1] - g[i])`` and ``eer = FPR[i-1] + w (FPR[i] - FPR[i-1])`` — the
    root of ``1 - x - interp(fpr, tpr)(x)`` that ``scipy.optimize.brentq`` finds, in closed form (measured:
    6e-15 from brentq with ``xtol=1e-14``, 1.1e-16 from a geometric segment intersection).
    ``threshold_nearest``: the threshold of the segment's vertex nearer the line (a threshold that realises a
    point of the ROC); ``threshold_interpolated``: linear interpolation between the segment's vertex
    thresholds with the same ``w`` (the upper vertex's threshold when the segment starts at ``+inf``).
    """
    return _eer_from_counts(binary_counts(scores, positive, name))


def _nearest_from_counts(counts: BinaryCounts) -> tuple[float, float]:
    fps, tps, thr = counts
    if fps.numel() > 2:  # drop vertices collinear with both neighbours, as sklearn does
        corner = (torch.diff(fps, n=2) != 0) | (torch.diff(tps, n=2) != 0)
        keep = torch.cat([torch.tensor([True]), corner, torch.tensor([True])])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    fpr, tpr, thresholds = _rates(BinaryCounts(fps, tps, thr))
    k = int(torch.argmin(torch.abs((1 - tpr) - fpr)))  # first minimum, as np.nanargmin
    return float(fpr[k]), float(thresholds[k])


def nearest_point_eer(
    scores: Tensor, positive: Tensor, name: str = "nearest_point_eer"
) -> tuple[float, float]:
    """``(fpr[k], threshold[k])`` at ``k = argmin |FNR - FPR|`` over sklearn's *default* ROC vertices
    (``drop_intermediate=True``): the nearest-point EER of DeepfakeBench's ``get_test_metrics``, without
    interpolation. Its threshold may be ``+inf`` (e.g. a constant scorer, where it also reports 0)."""
    return _nearest_from_counts(binary_counts(scores, positive, name))


def curve_summary(scores: Tensor, positive: Tensor, name: str) -> dict[str, float]:
    """AUC, AP, EER (both thresholds) and the nearest-point EER from one sort of the scores."""
    counts = binary_counts(scores, positive, name)
    eer = _eer_from_counts(counts)
    nearest = _nearest_from_counts(counts)
    return {
        "auc": _auc_from_counts(counts),
        "ap": _ap_from_counts(counts),
        "eer": eer.eer,
        "eer_threshold": eer.threshold_nearest,
        "eer_threshold_interpolated": eer.threshold_interpolated,
        "eer_nearest": nearest[0],
    }


# ----------------------------------------------------------------------------------------------------
# Fixed false-accept rates
# ----------------------------------------------------------------------------------------------------


def check_fars(name: str, fars: Sequence[float]) -> tuple[float, ...]:
    """FARs as a tuple of floats in (0, 1]."""
    fars = tuple(fars)
    if not fars or any(
        isinstance(f, bool) or not isinstance(f, int | float) or not 0 < float(f) <= 1 for f in fars
    ):
        raise ValueError(f"{name}: fars must be a non-empty sequence of numbers in (0, 1], got {fars!r}")
    return tuple(float(f) for f in fars)


def max_false_accepts(far: float, n_negative: int) -> int:
    """Largest ``k`` with ``k / n_negative <= far`` (the float comparison an ROC's FPR is tested with)."""
    k = min(math.floor(far * n_negative), n_negative)
    while k < n_negative and (k + 1) / n_negative <= far:
        k += 1
    while k > 0 and k / n_negative > far:
        k -= 1
    return k


def far_threshold(negatives_desc: Tensor, k: int) -> float:
    """Smallest float64 ``t`` with at most ``k`` negative scores ``>= t`` (scores sorted descending).

    That is the next float64 above the ``(k+1)``-th highest negative score (``-inf`` when ``k`` covers all
    of them): every threshold at or below that score accepts ``k + 1`` negatives.
    """
    if k >= negatives_desc.numel():
        return -math.inf
    return math.nextafter(float(negatives_desc[k]), math.inf)


def threshold_at_far(negatives: Tensor, far: float) -> float | None:
    """Conservative threshold of :func:`far_threshold` for ``k = max_false_accepts(far, n)``; ``None`` when
    ``far × n < 1`` (no negative may be accepted, so the FAR cannot be resolved with ``n`` negatives)."""
    k = max_false_accepts(far, negatives.numel())
    if k == 0:
        return None
    desc = torch.sort(negatives.detach().to("cpu", torch.float64), descending=True).values
    return far_threshold(desc, k)


def tar_at_far(
    scores: Tensor, positive: Tensor, fars: Sequence[float], name: str = "tar_at_far"
) -> dict[float, tuple[float, float]]:
    """``{far: (tar, threshold)}`` on all samples pooled: the threshold of :func:`threshold_at_far` on the
    negative scores and the share of positives with ``score >= threshold`` — the highest TPR of the ROC
    vertices with FPR <= far (no interpolation). ``(nan, nan)`` where ``far × #negatives < 1``."""
    s, y = _prepare(name, scores, positive)
    negatives = torch.sort(s[~y], descending=True).values
    pos = s[y]
    out = {}
    for far in check_fars(name, fars):
        k = max_false_accepts(far, negatives.numel())
        if k == 0:
            out[far] = (math.nan, math.nan)
            continue
        t = far_threshold(negatives, k)
        out[far] = (float((pos >= t).double().mean()), t)
    return out
