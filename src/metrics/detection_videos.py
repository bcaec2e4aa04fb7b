"""Video-level deepfake-detection metrics: frame scores grouped by explicit video ids, reduced to one score
per video, and :func:`video_detection_metrics`, which returns every metric at video level from one call with
the argument order of :func:`src.metrics.detection_frames.detection_metrics`. Conventions (ids, collisions,
reductions, failed videos): :mod:`src.metrics.detection` and ``docs/metrics.md`` ("Detection").
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from src.metrics._inputs import (
    ArrayLike,
    check_binary_labels,
    check_choice,
    check_scores,
    check_threshold,
    group_index,
    require_both_classes,
    scores_labels,
)
from src.metrics.curves import roc_auc
from src.metrics.detection_frames import summarize

__all__ = [
    "FAILED_VIDEO_SCORE",
    "VIDEO_REDUCTIONS",
    "VideoScores",
    "unique_video_id",
    "video_auc",
    "video_detection_metrics",
    "video_scores",
]

#: Score given to a video in which no face could be scored (the SBI test protocol).
FAILED_VIDEO_SCORE = 0.5
#: Ways of turning frame (or face) scores into one video score.
VIDEO_REDUCTIONS = ("mean", "max", "max_face_then_mean")


class VideoScores(NamedTuple):
    """Per-video result of :func:`video_scores`: ids (sorted), float64 scores, labels (bool) or ``None``."""

    ids: list[Any]
    scores: Tensor
    labels: Tensor | None


def unique_video_id(*parts: str | int) -> str:
    """Globally unique video id from its parts, e.g. ``unique_video_id("ffpp", "Deepfakes", "000_003")`` →
    ``"ffpp/Deepfakes/000_003"``. Parts must be non-empty and free of ``"/"`` so ids cannot collide."""
    if not parts:
        raise ValueError("unique_video_id: needs at least one part (dataset, method, name)")
    out = []
    for p in parts:
        text = str(p)
        if not text or "/" in text:
            raise ValueError(f"unique_video_id: parts must be non-empty and contain no '/', got {p!r}")
        out.append(text)
    return "/".join(out)


def _segment_reduce(values: Tensor, inverse: Tensor, n_groups: int, reduce: str) -> Tensor:
    """Reduce ``values`` by group index ``inverse`` (every group non-empty) with ``mean`` or ``amax``."""
    if reduce == "mean":
        total = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, inverse, values)
        count = torch.bincount(inverse, minlength=n_groups).to(torch.float64)
        return total / count
    out = torch.empty(n_groups, dtype=torch.float64)
    return out.scatter_reduce_(0, inverse, values, reduce="amax", include_self=False)


def _collision(name: str, what: str, ids: list[Any], groups: Tensor) -> ValueError:
    shown = [ids[int(i)] for i in groups[:3]]
    return ValueError(
        f"{name}: {groups.numel()} video(s) have {what}, e.g. {shown}; video ids must be unique per video "
        "(dataset + method + name, see unique_video_id) — folder names collide across FF++ methods"
    )


def constant_per_video(
    name: str, what: str, values: Tensor, inverse: Tensor, n_groups: int, ids: list[Any]
) -> Tensor:
    """The per-video value of ``values`` (long/bool), refusing videos in which it varies (an id collision)."""
    v = values.long()
    lo = torch.full((n_groups,), torch.iinfo(torch.long).max).scatter_reduce_(0, inverse, v, "amin")
    hi = torch.full((n_groups,), torch.iinfo(torch.long).min).scatter_reduce_(0, inverse, v, "amax")
    mixed = torch.nonzero(lo != hi).flatten()
    if mixed.numel():
        raise _collision(name, f"frames with different {what}", ids, mixed)
    return lo


def group_videos(
    name: str,
    s: Tensor,
    video_ids: object,
    reduce: str,
    frame_ids: object | None = None,
    sources: object | None = None,
) -> tuple[list[Any], Tensor, Tensor]:
    """``(video ids, video index of each row, per-video scores)`` after the collision checks.

    Collision checks (the label check is the caller's, with :func:`constant_per_video`): with ``frame_ids``
    and ``reduce`` ``"mean"``/``"max"`` (one row per frame), a ``(video id, frame id)`` pair that occurs twice
    is refused; with ``sources``, a video id whose rows carry different sources is refused.
    """
    check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
    ids, inverse = group_index(name, "video_ids", video_ids, s.numel())
    n_videos = len(ids)
    if sources is not None:
        _, source_index = group_index(name, "sources", sources, s.numel())
        constant_per_video(name, "sources", source_index, inverse, n_videos, ids)
    if frame_ids is None:
        if reduce == "max_face_then_mean":
            raise ValueError(
                f"{name}: reduce='max_face_then_mean' needs `frame_ids` (which frame each face is)"
            )
        return ids, inverse, _segment_reduce(s, inverse, n_videos, "mean" if reduce == "mean" else "amax")
    frames, f_inverse = group_index(name, "frame_ids", frame_ids, s.numel())
    key = inverse * len(frames) + f_inverse
    uniq_keys, k_inverse, k_counts = torch.unique(key, return_inverse=True, return_counts=True)
    if reduce == "max_face_then_mean":  # rows are faces: several per frame
        frame_scores = _segment_reduce(s, k_inverse, uniq_keys.numel(), "amax")
        frame_video = torch.div(uniq_keys, len(frames), rounding_mode="floor")
        return ids, inverse, _segment_reduce(frame_scores, frame_video, n_videos, "mean")
    repeated = torch.unique(torch.div(uniq_keys[k_counts > 1], len(frames), rounding_mode="floor"))
    if repeated.numel():
        raise _collision(name, "the same frame id more than once", ids, repeated)
    return ids, inverse, _segment_reduce(s, inverse, n_videos, "mean" if reduce == "mean" else "amax")


def video_scores(
    frame_scores: ArrayLike,
    video_ids: ArrayLike,
    reduce: str = "mean",
    labels: ArrayLike | None = None,
    frame_ids: ArrayLike | None = None,
    sources: ArrayLike | None = None,
) -> VideoScores:
    """Aggregate per-row scores into one score per video, grouped by explicit ``video_ids``.

    ``video_ids``: one id per row, strings or integers (tensor, numpy array or list) — unique per *video*
    across the whole evaluation set, never a folder name (FF++ reuses folder names across methods; see
    :func:`unique_video_id`). ``reduce``: ``"mean"`` (DeepfakeBench), ``"max"``, or ``"max_face_then_mean"``
    (SBI: rows are faces, ``frame_ids`` says which frame of the video each face is from; max over the faces
    of a frame, then mean over frames). With ``labels``, the per-video label is returned too and a video whose
    rows disagree is refused; ``frame_ids`` (with ``"mean"``/``"max"``) and ``sources`` add the collision
    checks of :func:`video_detection_metrics`. Videos come out sorted by id.
    """
    name = "video_scores"
    s = check_scores(name, frame_scores, "frame_scores").cpu()
    ids, inverse, v_scores = group_videos(name, s, video_ids, reduce, frame_ids, sources)
    v_labels = None
    if labels is not None:
        y = check_binary_labels(name, labels, s.numel()).cpu()
        v_labels = constant_per_video(name, "labels", y, inverse, len(ids), ids).bool()
    return VideoScores(ids, v_scores, v_labels)


def video_auc(
    frame_scores: ArrayLike,
    labels: ArrayLike,
    video_ids: ArrayLike,
    reduce: str = "mean",
    frame_ids: ArrayLike | None = None,
) -> float:
    """ROC-AUC over videos: :func:`video_scores` then AUC of the per-video scores against per-video labels.

    :func:`video_detection_metrics` returns this number with every other video-level metric.
    """
    name = "video_auc"
    s, y = scores_labels(name, frame_scores, labels)
    ids, inverse, v_scores = group_videos(name, s, video_ids, reduce, frame_ids)
    v_labels = constant_per_video(name, "labels", y, inverse, len(ids), ids).bool()
    require_both_classes(name, v_labels)
    return roc_auc(v_scores, v_labels, name)


def video_summary(
    name: str,
    s: Tensor,
    y: Tensor,
    video_ids: object,
    reduce: str,
    frame_ids: object | None,
    sources: object | None,
    threshold: float,
) -> dict[str, float]:
    """Video-level :func:`~src.metrics.detection_frames.summarize` of validated scores and labels."""
    ids, inverse, v_scores = group_videos(name, s, video_ids, reduce, frame_ids, sources)
    v_labels = constant_per_video(name, "labels", y, inverse, len(ids), ids).bool()
    out = summarize(name, v_scores, v_labels, threshold)
    out["n_frames"] = s.numel()
    return out


def video_detection_metrics(
    frame_scores: ArrayLike,
    labels: ArrayLike,
    video_ids: ArrayLike,
    reduce: str = "mean",
    frame_ids: ArrayLike | None = None,
    *,
    sources: ArrayLike | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Every video-level detection metric in one call (float64), arguments in the order of
    :func:`src.metrics.detection_frames.detection_metrics` plus the grouping.

    Per-row scores and labels are grouped by ``video_ids`` and reduced with ``reduce`` (``"mean"``, ``"max"``
    or ``"max_face_then_mean"`` with ``frame_ids``; see :func:`video_scores`); the per-video scores then get
    the frame-level metrics. Returns ``{"auc", "ap", "eer", "eer_threshold", "eer_nearest", "accuracy", "n",
    "n_real", "n_fake", "n_frames"}`` — ``n``, ``n_real``, ``n_fake`` count videos, ``n_frames`` rows.

    **Id collisions are refused** (one id naming two videos, e.g. a folder name reused across datasets or
    manipulation methods): a video whose rows carry different labels; with ``frame_ids`` and
    ``reduce="mean"``/``"max"`` (one row per frame), a ``(video id, frame id)`` pair that occurs twice — two
    sources with a frame 0 each; with ``sources`` (any per-row tag: dataset, method, file), a video id whose
    rows come from different sources. Build ids with :func:`unique_video_id`.
    """
    name = "video_detection_metrics"
    t = check_threshold(name, threshold)
    s, y = scores_labels(name, frame_scores, labels)
    return video_summary(name, s, y, video_ids, reduce, frame_ids, sources, t)
