"""Frame- and video-level evaluation of a frame detector, with the faces and frames it could not score.

A test set is a list of rows, one per face crop: score (probability of fake), label (1 = fake), integer video
id and frame index (and face index when several faces of a frame are kept). :func:`evaluate_detection`

1. reduces faces to frames: **the frame score is the max over its faces** (one face: itself);
2. adds every frame whose face could not be found, and every video that could not be read at all, as rows
   scored :data:`FAILED_SCORE` (0.5, the SBI convention), so they count instead of vanishing (a video that
   failed as a whole has no frame: it counts at video level only);
3. computes frame-level AUC / AP / EER (interpolated and nearest-point) / accuracy over the frames and
   video-level ones over videos (**video score = mean over its frames**, or the max), grouped by the
   explicit, globally unique video id (never by a folder name);
4. breaks AUC / AP / EER down per manipulation method (each method's fakes against all reals) when the
   video names are known (``dataset/method/compression/name``).

The per-frame table it returns is what the run record stores, so any other aggregation can be recomputed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from src.metrics.detection import FAILED_VIDEO_SCORE, frame_and_video_metrics, per_group_breakdown

FAILED_SCORE = float(FAILED_VIDEO_SCORE)
VIDEO_REDUCES = ("mean", "max")


@dataclass(frozen=True)
class DetectionResult:
    """Metrics (floats), the per-method breakdown and the per-frame / per-video tables of one test set."""

    metrics: dict[str, float]
    per_method: pd.DataFrame
    frames: pd.DataFrame
    videos: pd.DataFrame


def faces_to_frames(scores: Tensor, labels: Tensor, video_idx: Tensor, frame_idx: Tensor) -> pd.DataFrame:
    """One row per (video, frame): the max score over its faces and the label (which must agree)."""
    table = pd.DataFrame(
        {
            "video_idx": video_idx.cpu().numpy().astype(np.int64),
            "frame_index": frame_idx.cpu().numpy().astype(np.int64),
            "label": labels.cpu().numpy().astype(np.int64),
            "score": scores.detach().cpu().to(torch.float64).numpy(),
        }
    )
    grouped = table.groupby(["video_idx", "frame_index"], sort=True)
    frames = grouped.agg(score=("score", "max"), label=("label", "first"), faces=("label", "size"))
    mixed = grouped["label"].nunique()
    if bool((mixed > 1).any()):
        where = mixed[mixed > 1].index[0]
        raise ValueError(
            f"evaluate_detection: faces of video {where[0]} frame {where[1]} have different labels"
        )
    frames["failed"] = False
    return frames.reset_index()


def add_failures(frames: pd.DataFrame, failed: dict[str, Tensor] | None) -> pd.DataFrame:
    """Append failed frames (``frame_index >= 0``) and failed videos (``-1``) as rows scored 0.5.

    A failed frame that nevertheless has a scored face row, or a failed video that has scored frames, is
    an inconsistent input and raises (it would be counted twice).
    """
    if failed is None or failed["video_idx"].numel() == 0:
        return frames
    rows = pd.DataFrame(
        {
            "video_idx": failed["video_idx"].cpu().numpy().astype(np.int64),
            "frame_index": failed["frame_index"].cpu().numpy().astype(np.int64),
            "label": failed["label"].cpu().numpy().astype(np.int64),
        }
    )
    scored = set(zip(frames["video_idx"], frames["frame_index"], strict=True))
    scored_videos = set(frames["video_idx"])
    twice = [
        (v, f)
        for v, f in zip(rows["video_idx"], rows["frame_index"], strict=True)
        if (v, f) in scored or (f < 0 and v in scored_videos)
    ]
    if twice:
        raise ValueError(f"evaluate_detection: failures also have scored rows (video, frame): {twice[:3]}")
    rows = rows.drop_duplicates(["video_idx", "frame_index"])
    rows["score"], rows["faces"], rows["failed"] = FAILED_SCORE, 0, True
    return pd.concat([frames, rows[frames.columns]], ignore_index=True)


def method_of(video_name: str) -> str:
    """The method part of a ``dataset/method/compression/name`` video id (the whole id otherwise)."""
    parts = video_name.split("/")
    return parts[1] if len(parts) == 4 else video_name


def evaluate_detection(
    scores: Tensor,
    labels: Tensor,
    video_idx: Tensor,
    frame_idx: Tensor,
    failed: dict[str, Tensor] | None = None,
    video_names: Sequence[str] | None = None,
    video_reduce: str = "mean",
    threshold: float = 0.5,
) -> DetectionResult:
    """Evaluate one test set (see the module docstring). ``failed``: ``video_idx``, ``frame_index`` (-1 =
    whole video) and ``label`` of what preprocessing could not crop; ``video_names[i]`` names video id ``i``.

    A set with one class only (all real or all fake) gets accuracies and counts, no AUC / AP / EER, and a
    warning. ``metrics`` holds ``frame_*`` / ``video_*`` (AUC, AP, EER, nearest-point EER, accuracy), the
    counts ``n_frames``, ``n_videos``, ``n_faces``, ``failed_frames``, ``failed_videos``, and per method
    ``<method>/frame_auc``, ``<method>/video_auc`` (fakes of the method against all reals).
    """
    if video_reduce not in VIDEO_REDUCES:
        raise ValueError(
            f"evaluate_detection: video_reduce must be one of {VIDEO_REDUCES}, got {video_reduce!r}"
        )
    n_faces = int(scores.numel())
    frames = add_failures(faces_to_frames(scores, labels, video_idx, frame_idx), failed)
    frames = frames.sort_values(["video_idx", "frame_index"], ignore_index=True)
    s = torch.tensor(frames["score"].to_numpy(), dtype=torch.float64)
    y = torch.tensor(frames["label"].to_numpy(), dtype=torch.bool)
    vid = torch.tensor(frames["video_idx"].to_numpy(), dtype=torch.long)
    agg = "mean" if video_reduce == "mean" else "max"
    videos = frames.groupby("video_idx", sort=True).agg(
        score=("score", agg), label=("label", "first"), frames=("score", "size"), failed=("failed", "all")
    )
    videos = videos.reset_index()
    is_frame = torch.tensor(frames["frame_index"].to_numpy() >= 0)  # whole-video failures count per video
    both = 0 < int(y.sum()) < y.numel()
    if both:
        metrics = frame_and_video_metrics("evaluate_detection", s, y, vid, None, threshold, video_reduce)
        if not bool(is_frame.all()):
            sf, yf = s[is_frame], y[is_frame]
            frame_only = frame_and_video_metrics(
                "evaluate_detection", sf, yf, None, None, threshold, video_reduce
            )
            metrics.update(frame_only)
    else:  # AUC, AP and EER are undefined on one class; accuracy still says how many were called right
        warnings.warn(
            f"evaluate_detection: every frame is {'fake' if bool(y.all()) else 'real'}: AUC, AP and EER are "
            "undefined, only accuracy is reported",
            stacklevel=2,
        )
        metrics = {
            "n_frames": float(is_frame.sum()),
            "n_videos": float(len(videos)),
            "frame_acc": float(((s > threshold) == y)[is_frame].double().mean()),
            "video_acc": float(((videos["score"] > threshold) == videos["label"].astype(bool)).mean()),
        }
    failed_rows = frames[frames["failed"]]
    metrics.update(
        {
            "n_faces": float(n_faces),
            "failed_frames": float((failed_rows["frame_index"] >= 0).sum()),
            "failed_videos": float((failed_rows["frame_index"] < 0).sum()),
        }
    )
    per_method = pd.DataFrame()
    if video_names is not None:
        names = list(video_names)
        frames.insert(1, "video", [names[i] for i in frames["video_idx"]])
        videos.insert(1, "video", [names[i] for i in videos["video_idx"]])
        groups = [method_of(n) for n in frames["video"]]
        fake_groups = {g for g, label in zip(groups, frames["label"], strict=True) if label == 1}
        if both and len(fake_groups) > 1:
            frame_groups = [g for g, keep in zip(groups, is_frame.tolist(), strict=True) if keep]
            frame_level = per_group_breakdown(s[is_frame], y[is_frame], frame_groups)
            video_level = per_group_breakdown(s, y, groups, video_ids=vid, reduce=video_reduce)
            per_method = frame_level.add_prefix("frame_").join(video_level.add_prefix("video_"))
            for method, row in per_method.iterrows():
                metrics[f"{method}/frame_auc"] = float(row["frame_auc"])
                metrics[f"{method}/video_auc"] = float(row["video_auc"])
    return DetectionResult({k: float(v) for k, v in metrics.items()}, per_method, frames, videos)
