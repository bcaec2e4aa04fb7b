"""Deepfake-detection metrics: ROC-AUC, AP, EER and accuracy at frame and video level, per-method breakdowns,
cross-dataset tables, and a DDP-safe :class:`DetectionMetrics` collector.

This module is the public entry point; the code lives in :mod:`src.metrics.detection_frames` (per-row
metrics, :func:`detection_metrics`), :mod:`src.metrics.detection_videos` (video grouping,
:func:`video_detection_metrics`), :mod:`src.metrics.detection_reports` (per-method breakdown, cross-dataset
table) and :mod:`src.metrics.curves` (the ROC / PR core shared with verification). Definitions and measured
agreement with the references: ``docs/metrics.md`` ("Detection").

Conventions
-----------
* **Labels: 1 = fake, 0 = real.** Boolean or integer 0/1 tensors (or arrays / lists). Anything else is
  refused; multi-class method labels (0 = real, 1..k = methods) must be binarised by the caller
  (``labels > 0``) — DeepfakeBench clips them silently, here it is explicit.
* **Scores** are any real number that grows with "fake": ``softmax(logits)[:, 1]``, ``sigmoid(logit)`` or the
  raw logit. AUC, AP and EER only use the order of the scores; accuracy compares with a ``threshold`` (0.5 for
  probabilities, 0.0 for logits) with a strict ``score > threshold``, as DeepfakeBench's ``p > 0.5``.
* Everything is computed and returned in **float64** (functions return Python floats,
  :class:`DetectionMetrics` float64 tensors); NaN / ±inf scores are refused.
* Ties in scores are handled as scikit-learn does: one ROC / PR point per *distinct* score, so a tie between a
  real and a fake sample counts half in the AUC (the Mann–Whitney convention).
* AUC, AP and EER need both classes; a single class raises ``ValueError("<metric>: needs both real and fake
  samples ...")``. Every error names the function (or metric) and the problem.
* **One call per level**: :func:`detection_metrics` ``(scores, labels)`` and :func:`video_detection_metrics`
  ``(frame_scores, labels, video_ids, ...)`` return every metric (AUC, AP, EER with threshold, nearest-point
  EER, accuracy, counts) with the same keys.

Video level
-----------
Frames are grouped by **explicit video ids** (strings or integers), never by the frame's folder name: FF++
reuses folder names across manipulation methods (``000_003`` exists under DF, F2F, FS and NT), so folder-name
grouping merges four fake videos into one. Build ids with :func:`unique_video_id` (dataset + method + name).
An id collision is refused when it can be seen: frames of one id with different labels (DeepfakeBench would
silently call the video real via ``int(mean label)``), a repeated ``(video id, frame id)`` when frame ids are
given (one row per frame), or rows of one id from different ``sources`` when sources are given.
Aggregators: ``"mean"`` of frame scores (DeepfakeBench), ``"max"``, and ``"max_face_then_mean"`` (SBI / EG /
FPG: the score of a frame is the max over its faces, the video score the mean over frames; needs frame ids).
A video that failed entirely (no face, decode error) must be fed as one row scored ``FAILED_VIDEO_SCORE``
(0.5, the SBI convention) so that it is counted; keep the number of failures in the results record.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from src.datatypes.video_ids import VideoIdEncoder
from src.metrics._inputs import check_binary_labels, check_choice, check_scores, check_threshold
from src.metrics.detection_frames import (
    EER_METHODS,
    accuracy_at_threshold,
    average_precision,
    detection_metrics,
    eer,
    frame_auc,
    roc_points,
)
from src.metrics.detection_reports import (
    REPORT_COLUMNS,
    cross_dataset_report,
    frame_and_video_metrics,
    per_group_breakdown,
)
from src.metrics.detection_videos import (
    FAILED_VIDEO_SCORE,
    VIDEO_REDUCTIONS,
    VideoScores,
    unique_video_id,
    video_auc,
    video_detection_metrics,
    video_scores,
)
from src.metrics.gather import GatherMetric

__all__ = [
    "EER_METHODS",
    "FAILED_VIDEO_SCORE",
    "REPORT_COLUMNS",
    "VIDEO_REDUCTIONS",
    "DetectionMetrics",
    "VideoIdEncoder",
    "VideoScores",
    "accuracy_at_threshold",
    "average_precision",
    "cross_dataset_report",
    "detection_metrics",
    "eer",
    "frame_auc",
    "per_group_breakdown",
    "roc_points",
    "unique_video_id",
    "video_auc",
    "video_detection_metrics",
    "video_scores",
]


class DetectionMetrics(GatherMetric):
    """Collects detection scores over batches and ranks, then reports frame- and video-level numbers.

    States are ``cat`` lists (scores float64; labels, video, frame and sample indices int64) gathered by
    :class:`src.metrics.gather.GatherMetric`, so ``compute()`` sees exactly the rows of every rank — uneven
    shards and ranks without data included — and returns the same numbers on every rank as one process over
    all rows would.

    ``update(scores, labels, video_idx=None, frame_idx=None, sample_idx=None)``:

    * ``scores`` ``[B]`` (probability or logit of fake), ``labels`` ``[B]`` (1 = fake, 0 = real);
    * ``video_idx`` ``[B]`` integer video ids, required iff ``video_level`` (strings cannot cross ranks: map
      them with a :class:`VideoIdEncoder` built from the full split on every rank, or use any other stable
      integer id);
    * ``frame_idx`` ``[B]``: required when ``reduce="max_face_then_mean"`` (rows are faces); optional with
      ``"mean"``/``"max"``, where it turns on the duplicate-frame collision check (give it with every update
      or never);
    * ``sample_idx`` ``[B]`` (the batch's ``"index"``) required iff ``dedupe``: rows whose sample index was
      already seen are dropped at ``compute()`` (first occurrence kept), which undoes the duplicates a
      ``DistributedSampler`` pads uneven datasets with. Results tables still run on one device.

    ``compute()`` returns **float64** scalars: ``frame_auc``, ``frame_ap``, ``frame_eer`` (interpolated),
    ``frame_eer_nearest`` (DeepfakeBench), ``frame_acc`` (``score > threshold``), and with ``video_level``
    also ``video_auc``, ``video_ap``, ``video_eer``, ``video_eer_nearest``, ``video_acc`` — keys prefixed by
    ``prefix``. Log with ``self.log_dict(metric.compute())`` then ``metric.reset()`` (a dict cannot be logged
    as a metric object). A single class, an empty state or a video id collision raises :class:`ValueError`.
    """

    higher_is_better = None

    scores: list[Tensor] | Tensor
    labels: list[Tensor] | Tensor
    video_idx: list[Tensor] | Tensor
    frame_idx: list[Tensor] | Tensor
    sample_idx: list[Tensor] | Tensor

    def __init__(
        self,
        threshold: float = 0.5,
        video_level: bool = True,
        reduce: str = "mean",
        dedupe: bool = False,
        prefix: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = "DetectionMetrics"
        self.threshold = check_threshold(name, threshold)
        self.reduce = check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
        self.video_level = bool(video_level)
        self.dedupe = bool(dedupe)
        self.prefix = str(prefix)
        self.add_gather_state("scores", torch.float64)
        for state in ("labels", "video_idx", "frame_idx", "sample_idx"):
            self.add_gather_state(state, torch.long)

    def _check_index(
        self, arg: str, value: object, n: int, needed: bool | None, setting: str
    ) -> Tensor | None:
        """Validate an optional integer index of :meth:`update` (``needed``: True required, False refused,
        None optional; ``setting`` says when it is used)."""
        name = "DetectionMetrics"
        if value is None:
            if needed:
                raise ValueError(f"{name}: update() needs `{arg}` when {setting}")
            return None
        if needed is False:
            raise ValueError(f"{name}: `{arg}` is only used when {setting}; this instance does not use it")
        if not isinstance(value, Tensor):
            raise ValueError(
                f"{name}: `{arg}` must be an integer tensor, got {type(value).__name__}; map string "
                "video ids to integers with VideoIdEncoder"
            )
        if value.ndim != 1 or value.shape[0] != n:
            raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {tuple(value.shape)}")
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"{name}: `{arg}` must be an integer tensor, got {value.dtype}")
        return value.detach().to(device=self.device, dtype=torch.long)

    def update(
        self,
        scores: Tensor,
        labels: Tensor,
        video_idx: Tensor | None = None,
        frame_idx: Tensor | None = None,
        sample_idx: Tensor | None = None,
    ) -> None:
        """Append one batch (see the class docstring for the arguments)."""
        name = "DetectionMetrics"
        if not isinstance(scores, Tensor) or not isinstance(labels, Tensor):
            raise ValueError(f"{name}: `scores` and `labels` must be torch.Tensors")
        s = check_scores(name, scores)  # validated where it lives: no host round trip per batch
        y = check_binary_labels(name, labels, s.numel())
        n = s.numel()
        v = self._check_index("video_idx", video_idx, n, self.video_level, "video_level=True")
        if not self.video_level:
            frame_rule: bool | None = False
        else:
            frame_rule = True if self.reduce == "max_face_then_mean" else None
        f = self._check_index(
            "frame_idx",
            frame_idx,
            n,
            frame_rule,
            "video_level=True (required by reduce='max_face_then_mean')",
        )
        i = self._check_index("sample_idx", sample_idx, n, self.dedupe, "dedupe=True")
        self.scores.append(s.to(self.device))
        self.labels.append(y.to(device=self.device, dtype=torch.long))
        for state, value in (("video_idx", v), ("frame_idx", f), ("sample_idx", i)):
            if value is not None:
                getattr(self, state).append(value)

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Same as :meth:`update` (accumulate only): a per-batch AUC is noisy and undefined for single-class
        batches, so calling the metric on a batch returns nothing."""
        self.update(*args, **kwargs)

    def _rows(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(scores, labels, video, frame) of every row of every rank, de-duplicated when ``dedupe``."""
        name = "DetectionMetrics"
        s = self.gathered("scores").detach().cpu().to(torch.float64)
        if s.numel() == 0:
            raise ValueError(
                f"{name}: compute() called on an empty state (no update() with data on any rank)"
            )
        y = self.gathered("labels").cpu()
        video = self.gathered("video_idx").cpu() if self.video_level else None
        frame = self.gathered("frame_idx").cpu() if self.video_level else None
        if frame is not None and frame.numel() == 0:
            frame = None
        if frame is not None and frame.numel() != s.numel():
            raise ValueError(
                f"{name}: `frame_idx` was given for {frame.numel()} of {s.numel()} rows; pass it with every "
                "update or never"
            )
        if self.dedupe:
            sample = self.gathered("sample_idx").cpu()
            uniq, inverse = torch.unique(sample, return_inverse=True)
            positions = torch.arange(sample.numel())
            first = torch.full((uniq.numel(),), sample.numel()).scatter_reduce_(0, inverse, positions, "amin")
            for what, values in (("labels", y), ("video_idx", video), ("frame_idx", frame)):
                if values is not None and not torch.equal(values, values[first][inverse]):
                    raise ValueError(
                        f"{name}: rows with the same sample_idx have different {what}; sample_idx must "
                        "identify a sample uniquely"
                    )
            keep = torch.sort(first).values
            s, y = s[keep], y[keep]
            video = video[keep] if video is not None else None
            frame = frame[keep] if frame is not None else None
        return s, y, video, frame

    def compute(self) -> dict[str, Tensor]:
        """Frame- and video-level metrics over every row of every rank (float64 scalars)."""
        s, y, video, frame = self._rows()
        values = frame_and_video_metrics(
            "DetectionMetrics", s, y.bool(), video, frame, self.threshold, self.reduce
        )
        values.pop("n_frames")
        values.pop("n_videos", None)
        return {
            f"{self.prefix}{k}": torch.tensor(v, dtype=torch.float64, device=self.device)
            for k, v in values.items()
        }
