"""Detection breakdowns and tables: per-method AUC / AP / EER (each method's fakes against all reals) and the
cross-dataset table (one row per test set, frame and video level). Conventions: :mod:`src.metrics.detection`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from src.metrics import curves
from src.metrics._inputs import (
    ArrayLike,
    check_choice,
    check_threshold,
    group_index,
    require_both_classes,
    scores_labels,
)
from src.metrics.detection_frames import EER_METHODS, summarize
from src.metrics.detection_videos import VIDEO_REDUCTIONS, constant_per_video, group_videos

__all__ = ["REPORT_COLUMNS", "cross_dataset_report", "per_group_breakdown"]

#: Columns of :func:`cross_dataset_report`, in order.
REPORT_COLUMNS = (
    "n_frames",
    "n_videos",
    "frame_auc",
    "frame_ap",
    "frame_eer",
    "frame_eer_nearest",
    "frame_acc",
    "video_auc",
    "video_ap",
    "video_eer",
    "video_eer_nearest",
    "video_acc",
)


def per_group_breakdown(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    video_ids: ArrayLike | None = None,
    reduce: str = "mean",
    frame_ids: ArrayLike | None = None,
    eer_method: str = "interpolate",
) -> pd.DataFrame:
    """Per-group (e.g. per manipulation method) AUC / AP / EER: **each group's fakes against all reals**.

    This is the DeepfakeBench / FF++ convention for FF-DF, FF-F2F, FF-FS, FF-NT: every per-method test set is
    the method's fake videos plus *all* real test videos. The group of a real row is ignored (it may be
    anything, e.g. ``"real"``); groups holding no fake row get no row. With ``video_ids`` the rows are first
    aggregated to videos (``reduce`` / ``frame_ids`` as in
    :func:`src.metrics.detection_videos.video_scores`; group and label must be constant within a video).

    Returns a DataFrame indexed by group (sorted), columns ``n_fake``, ``n_real``, ``auc``, ``ap``, ``eer``.
    """
    name = "per_group_breakdown"
    check_choice(name, "eer_method", eer_method, EER_METHODS)
    s, y = scores_labels(name, scores, labels)
    group_names, g_inverse = group_index(name, "groups", groups, s.numel())
    if video_ids is not None:
        ids, inverse, s = group_videos(name, s, video_ids, reduce, frame_ids)
        y = constant_per_video(name, "labels", y, inverse, len(ids), ids).bool()
        g_inverse = constant_per_video(name, "groups", g_inverse, inverse, len(ids), ids)
    real = ~y
    if not bool(real.any()):
        raise ValueError(f"{name}: needs both real and fake samples, got no real (label 0) sample")
    rows = []
    for g, group in enumerate(group_names):
        fake = y & (g_inverse == g)
        if not bool(fake.any()):
            continue
        keep = fake | real
        gs, gy = s[keep], y[keep]
        summary = curves.curve_summary(gs, gy, name)
        rows.append(
            {
                "group": group,
                "n_fake": int(fake.sum()),
                "n_real": int(real.sum()),
                "auc": summary["auc"],
                "ap": summary["ap"],
                "eer": summary["eer_nearest" if eer_method == "deepfakebench" else "eer"],
            }
        )
    if not rows:
        raise ValueError(f"{name}: needs both real and fake samples, got no fake (label 1) sample")
    return pd.DataFrame(rows).set_index("group")


def frame_and_video_metrics(
    name: str,
    s: Tensor,
    y: Tensor,
    video_ids: object | None,
    frame_ids: object | None,
    threshold: float,
    reduce: str,
) -> dict[str, float]:
    """``frame_*`` and (with ``video_ids``) ``video_*`` metrics plus ``n_frames``/``n_videos`` of one set."""
    try:
        require_both_classes(name, y)
    except ValueError as err:
        raise ValueError(f"{err} (frame AUC / AP / EER)") from None
    frame = summarize(name, s, y, threshold)
    out = {
        "n_frames": float(s.numel()),
        "frame_auc": frame["auc"],
        "frame_ap": frame["ap"],
        "frame_eer": frame["eer"],
        "frame_eer_nearest": frame["eer_nearest"],
        "frame_acc": frame["accuracy"],
    }
    if video_ids is not None:
        ids, inverse, v_scores = group_videos(name, s, video_ids, reduce, frame_ids)
        v_labels = constant_per_video(name, "labels", y, inverse, len(ids), ids).bool()
        try:
            require_both_classes(name, v_labels)
        except ValueError as err:
            raise ValueError(f"{err} (video AUC)") from None
        video = summarize(name, v_scores, v_labels, threshold)
        out.update(
            {
                "n_videos": float(video["n"]),
                "video_auc": video["auc"],
                "video_ap": video["ap"],
                "video_eer": video["eer"],
                "video_eer_nearest": video["eer_nearest"],
                "video_acc": video["accuracy"],
            }
        )
    return out


def cross_dataset_report(
    results: Mapping[str, Sequence[Any]],
    threshold: float = 0.5,
    reduce: str = "mean",
) -> pd.DataFrame:
    """One row per test set: frame AUC, AP, EER (interpolated and DeepfakeBench nearest-point), ACC, and the
    same at video level.

    ``results`` maps a dataset name to ``(scores, labels)``, ``(scores, labels, video_ids)`` or
    ``(scores, labels, video_ids, frame_ids)`` (``video_ids`` may be ``None``: video columns are then NaN;
    ``frame_ids`` is needed by ``reduce="max_face_then_mean"`` and adds the duplicate-frame check otherwise).
    Columns: :data:`REPORT_COLUMNS`; index ``dataset`` in the given order. ``reduce`` names the video
    aggregator (report it with the table). Errors name the dataset.
    """
    name = "cross_dataset_report"
    t = check_threshold(name, threshold)
    check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
    if not isinstance(results, Mapping) or not results:
        raise ValueError(
            f"{name}: `results` must be a non-empty mapping dataset -> (scores, labels, video_ids)"
        )
    rows = []
    for dataset, entry in results.items():
        where = f"{name}[{dataset!r}]"
        if not isinstance(entry, Sequence) or not 2 <= len(entry) <= 4:
            raise ValueError(
                f"{where}: expected (scores, labels[, video_ids[, frame_ids]]), got {type(entry).__name__}"
            )
        scores, labels, *rest = entry
        video_ids = rest[0] if rest else None
        frame_ids = rest[1] if len(rest) > 1 else None
        s, y = scores_labels(where, scores, labels)
        if video_ids is None and frame_ids is not None:
            raise ValueError(f"{where}: frame_ids given without video_ids")
        row: dict[str, Any] = dict.fromkeys(REPORT_COLUMNS, float("nan"))
        row.update(frame_and_video_metrics(where, s, y.to(torch.bool), video_ids, frame_ids, t, reduce))
        row["dataset"] = dataset
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("dataset")[list(REPORT_COLUMNS)]
    frame["n_frames"] = frame["n_frames"].astype("int64")
    frame["n_videos"] = frame["n_videos"].astype("Int64")
    return frame
