"""Frame-level (per-row) deepfake-detection metrics: ROC points, AUC, AP, EER, accuracy, and
:func:`detection_metrics`, which returns all of them from one call. Conventions: :mod:`src.metrics.detection`.
"""

from __future__ import annotations

from torch import Tensor

from src.metrics import curves
from src.metrics._inputs import (
    ArrayLike,
    check_choice,
    check_threshold,
    require_both_classes,
    scores_labels,
)

__all__ = [
    "EER_METHODS",
    "accuracy_at_threshold",
    "average_precision",
    "detection_metrics",
    "eer",
    "frame_auc",
    "roc_points",
]

#: EER definitions, see :func:`eer`.
EER_METHODS = ("interpolate", "deepfakebench")


def roc_points(scores: ArrayLike, labels: ArrayLike) -> tuple[Tensor, Tensor, Tensor]:
    """Full ROC curve ``(fpr, tpr, thresholds)`` (float64): one point per distinct score plus the ``(0, 0)``
    start at threshold ``+inf``, as sklearn's ``roc_curve(..., drop_intermediate=False)``. Needs both classes.
    """
    name = "roc_points"
    s, y = scores_labels(name, scores, labels)
    require_both_classes(name, y)
    return tuple(curves.roc_curve(s, y, name))  # type: ignore[return-value]


def frame_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC-AUC of per-row scores (frames, faces or anything else), float64; agrees with
    ``sklearn.metrics.roc_auc_score`` to 1e-12 (measured: ``docs/metrics.md``)."""
    name = "frame_auc"
    s, y = scores_labels(name, scores, labels)
    require_both_classes(name, y)
    return curves.roc_auc(s, y, name)


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """Average precision (fake = positive), float64; agrees with ``sklearn.metrics.average_precision_score``
    to 1e-12."""
    name = "average_precision"
    s, y = scores_labels(name, scores, labels)
    require_both_classes(name, y)
    return curves.average_precision(s, y, name)


def eer(scores: ArrayLike, labels: ArrayLike, method: str = "interpolate") -> tuple[float, float]:
    """Equal error rate and a decision threshold → ``(eer, threshold)``.

    ``method="interpolate"``: the intersection of the ROC polyline with ``FNR = FPR``
    (:func:`src.metrics.curves.equal_error_rate`); the returned threshold is the score of the crossing
    segment's vertex nearer the line (ties → the lower threshold), to be used as "fake iff score >= threshold"
    — an interpolated point is not reachable by one deterministic threshold.

    ``method="deepfakebench"``: ``fpr[argmin |fnr - fpr|]`` over sklearn's default
    (``drop_intermediate=True``) ROC points, and that point's threshold, as DeepfakeBench's
    ``get_test_metrics`` (bit-equal in the tests). Its threshold may be ``+inf`` (e.g. a constant scorer,
    where it also reports EER 0).
    """
    name = "eer"
    check_choice(name, "method", method, EER_METHODS)
    s, y = scores_labels(name, scores, labels)
    require_both_classes(name, y)
    if method == "deepfakebench":
        return curves.nearest_point_eer(s, y, name)
    result = curves.equal_error_rate(s, y, name)
    return result.eer, result.threshold_nearest


def accuracy_at_threshold(scores: ArrayLike, labels: ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows with ``(score > threshold) == label`` (strict ``>``, as DeepfakeBench's ``p > 0.5``).

    Use ``threshold=0.5`` for probabilities and ``0.0`` for logits. Defined with a single class too.
    """
    name = "accuracy_at_threshold"
    t = check_threshold(name, threshold)
    s, y = scores_labels(name, scores, labels)
    return float(((s > t) == y).double().mean())


def summarize(name: str, s: Tensor, y: Tensor, threshold: float) -> dict[str, float]:
    """Every detection number of validated float64 CPU scores and bool labels (both classes required)."""
    require_both_classes(name, y)
    out = curves.curve_summary(s, y, name)
    del out["eer_threshold_interpolated"]
    n_fake = int(y.sum())
    out.update(
        {
            "accuracy": float(((s > threshold) == y).double().mean()),
            "n": s.numel(),
            "n_real": s.numel() - n_fake,
            "n_fake": n_fake,
        }
    )
    return out


def detection_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """Every frame-level (per-row) detection metric in one call, float64.

    Returns ``{"auc", "ap", "eer", "eer_threshold", "eer_nearest", "accuracy", "n", "n_real", "n_fake"}``:
    :func:`frame_auc`, :func:`average_precision`, :func:`eer` (interpolated, with its nearest-vertex
    threshold), ``eer_nearest`` (DeepfakeBench's nearest-point EER), :func:`accuracy_at_threshold` at
    ``threshold`` (0.5 for probabilities, 0.0 for logits) and the row counts. Needs both classes.
    The video-level twin, with the same argument order, is
    :func:`src.metrics.detection_videos.video_detection_metrics`.
    """
    name = "detection_metrics"
    t = check_threshold(name, threshold)
    s, y = scores_labels(name, scores, labels)
    return summarize(name, s, y, t)
