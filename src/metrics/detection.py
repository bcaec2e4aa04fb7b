"""Deepfake-detection metrics: ROC-AUC, AP, EER and accuracy at frame and video level, per-method breakdowns,
cross-dataset tables, and a DDP-safe :class:`DetectionMetrics` collector.

Conventions
-----------
* **Labels: 1 = fake, 0 = real.** Boolean or integer 0/1 tensors (or arrays / lists). Anything else is
  refused; multi-class method labels (0 = real, 1..k = methods) must be binarised by the caller
  (``labels > 0``) — DeepfakeBench clips them silently, here it is explicit.
* **Scores** are any real number that grows with "fake": ``softmax(logits)[:, 1]``, ``sigmoid(logit)`` or the
  raw logit. AUC, AP and EER only use the order of the scores; accuracy compares with a ``threshold`` (0.5 for
  probabilities, 0.0 for logits). Scores are evaluated in float64; NaN / ±inf are refused.
* Ties in scores are handled as scikit-learn does: one ROC / PR point per *distinct* score, so a tie between a
  real and a fake sample counts half in the AUC (the Mann–Whitney convention).
* AUC, AP and EER need both classes; a single class raises ``ValueError("<metric>: needs both real and fake
  samples ...")``. Every error names the function (or metric) and the problem.

Definitions (all match scikit-learn / DeepfakeBench; checked against them in the tests)
----------------------------------------------------------------------------------------
* ROC points: for each distinct score ``t`` (descending), the rule "fake iff score >= t" gives
  ``(FPR, TPR)``; the curve starts at ``(0, 0)`` (threshold ``+inf``) and ends at ``(1, 1)``.
* :func:`frame_auc` = trapezoidal area under those points = ``sklearn.metrics.roc_auc_score`` =
  DeepfakeBench's ``auc(*roc_curve(y, p)[:2])``.
* :func:`average_precision` = ``sum_k (R_k - R_{k-1}) P_k`` over the distinct thresholds (no interpolation)
  = ``sklearn.metrics.average_precision_score``.
* :func:`eer` — ``method="interpolate"`` (default): the intersection of the piecewise-linear ROC curve with
  the line ``FNR = FPR`` (``FNR = 1 - TPR``), i.e. linear interpolation between the last ROC point with
  ``FNR > FPR`` and the first with ``FNR <= FPR``. Equal to the ``brentq`` root used by Inspector's meters.
  ``method="deepfakebench"``: DeepfakeBench's ``fpr[nanargmin(|fnr - fpr|)]`` on sklearn's *default*
  ``roc_curve`` (``drop_intermediate=True``) — the nearest ROC point, no interpolation, reproduced exactly.
* :func:`accuracy_at_threshold`: ``mean((score > threshold) == label)`` — strictly greater, as DeepfakeBench's
  ``p > 0.5``.

Video level
-----------
Frames are grouped by **explicit video ids** (strings or integers), never by the frame's folder name: FF++
reuses folder names across manipulation methods (``000_003`` exists under DF, F2F, FS and NT), so folder-name
grouping merges four fake videos into one (baselines.md §5.6, pitfall 4). Build ids with
:func:`unique_video_id` (dataset + method + name). A video whose frames carry different labels is refused
(it is almost always such an id collision; DeepfakeBench would silently call it real via ``int(mean label)``).
Aggregators: ``"mean"`` of frame scores (DeepfakeBench), ``"max"``, and ``"max_face_then_mean"`` (SBI / EG /
FPG: the score of a frame is the max over its faces, the video score the mean over frames; needs frame ids).
A video that failed entirely (no face, decode error) must be fed as one row scored ``FAILED_VIDEO_SCORE``
(0.5, the SBI convention) so that it is counted; keep the number of failures in the results record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors

from src.datatypes.video_ids import VideoIdEncoder

__all__ = [
    "EER_METHODS",
    "FAILED_VIDEO_SCORE",
    "VIDEO_REDUCTIONS",
    "DetectionMetrics",
    "VideoIdEncoder",
    "VideoScores",
    "accuracy_at_threshold",
    "average_precision",
    "cross_dataset_report",
    "eer",
    "frame_auc",
    "per_group_breakdown",
    "roc_points",
    "unique_video_id",
    "video_auc",
    "video_scores",
]

#: Score given to a video in which no face could be scored (SBI test protocol, baselines.md §3.3).
FAILED_VIDEO_SCORE = 0.5
#: Ways of turning frame (or face) scores into one video score.
VIDEO_REDUCTIONS = ("mean", "max", "max_face_then_mean")
#: EER definitions, see the module docstring.
EER_METHODS = ("interpolate", "deepfakebench")

#: Accepted inputs: tensors (any device), numpy arrays, pandas Series, lists / tuples.
ArrayLike = Tensor | np.ndarray | pd.Series | Sequence[Any]


# ----------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------


def _to_tensor(name: str, arg: str, x: object) -> Tensor:
    """A detached tensor (left on its device) from a tensor, numpy array or sequence of numbers."""
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, pd.Series | pd.Index):
        x = x.to_numpy()
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name}: `{arg}` must hold numbers, got an array of dtype {arr.dtype}")
        return torch.tensor(arr)  # a copy: arrays from pandas may be read-only
    raise ValueError(
        f"{name}: `{arg}` must be a torch.Tensor, numpy array, pandas Series or list of numbers, "
        f"got {type(x).__name__}"
    )


def _check_scores(name: str, scores: object, arg: str = "scores") -> Tensor:
    """1-D, non-empty, real-valued, finite scores → float64 tensor (on the input's device)."""
    s = _to_tensor(name, arg, scores)
    if s.ndim != 1:
        raise ValueError(f"{name}: `{arg}` must be 1-D [N], got shape {tuple(s.shape)}")
    if s.numel() == 0:
        raise ValueError(f"{name}: `{arg}` is empty")
    if s.is_complex() or s.dtype == torch.bool:
        raise ValueError(f"{name}: `{arg}` must be real numbers, got {s.dtype}")
    s = s.to(torch.float64)
    if not bool(torch.isfinite(s).all()):
        n_nan, n_inf = int(torch.isnan(s).sum()), int(torch.isinf(s).sum())
        raise ValueError(f"{name}: `{arg}` contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    return s


def _check_labels(name: str, labels: object, n: int) -> Tensor:
    """Labels of length ``n`` with values in {0, 1} (1 = fake) → bool tensor (on the input's device)."""
    y = _to_tensor(name, "labels", labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: `labels` must have shape [{n}] like the scores, got {tuple(y.shape)}")
    if y.dtype == torch.bool:
        return y
    if y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name}: `labels` must be boolean or integer 0/1 (1 = fake), got {y.dtype}")
    bad = (y != 0) & (y != 1)
    if bool(bad.any()):
        values = torch.unique(y[bad])[:5].tolist()
        raise ValueError(
            f"{name}: `labels` must be 0 (real) or 1 (fake), found {values}; binarise multi-class method "
            "labels with `labels > 0`"
        )
    return y.bool()


def _scores_labels(name: str, scores: object, labels: object) -> tuple[Tensor, Tensor]:
    """Validated (float64 scores, bool labels), both on the CPU where every curve is computed."""
    s = _check_scores(name, scores).cpu()
    return s, _check_labels(name, labels, s.numel()).cpu()


def _require_both_classes(name: str, y: Tensor) -> None:
    n_fake = int(y.sum())
    n_real = y.numel() - n_fake
    if n_fake == 0 or n_real == 0:
        raise ValueError(
            f"{name}: needs both real and fake samples, got {n_real} real (label 0) and "
            f"{n_fake} fake (label 1)"
        )


def _check_threshold(name: str, threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(t):
        raise ValueError(f"{name}: threshold must be finite, got {threshold!r}")
    return t


def _check_choice(name: str, arg: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: {arg} must be one of {list(choices)}, got {value!r}")
    return value


def _group_index(name: str, arg: str, ids: object, n: int) -> tuple[list[Any], Tensor]:
    """Encode ids (strings or integers; tensor, array or list) → (sorted unique ids, inverse LongTensor[n]).

    Unique ids are sorted (integers numerically, strings lexicographically), so the output never depends on
    the order of the rows. Floats, booleans and a mix of strings and integers are refused.
    """
    if isinstance(ids, Tensor):
        t = ids.detach().cpu()
        if t.ndim != 1 or t.shape[0] != n:
            raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {tuple(t.shape)}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name}: `{arg}` must be integer ids or strings, got a {t.dtype} tensor")
        uniq, inverse = torch.unique(t, sorted=True, return_inverse=True)
        return uniq.tolist(), inverse.long()
    if isinstance(ids, pd.Series | pd.Index):
        ids = ids.to_numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or ids.shape[0] != n:
            raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {ids.shape}")
        if ids.dtype.kind in "iuU":
            uniq, inverse = np.unique(ids, return_inverse=True)
            return uniq.tolist(), torch.from_numpy(inverse.reshape(-1).astype(np.int64))
        if ids.dtype.kind != "O":
            raise ValueError(
                f"{name}: `{arg}` must be integer ids or strings, got an array of dtype {ids.dtype}"
            )
        ids = ids.tolist()
    if isinstance(ids, list | tuple):
        if len(ids) != n:
            raise ValueError(f"{name}: `{arg}` must have {n} entries (one per score), got {len(ids)}")
        kinds = {type(v) for v in ids}
        if all(issubclass(k, str) for k in kinds):
            arr = np.asarray(ids, dtype=str)
        elif all(issubclass(k, int | np.integer) and not issubclass(k, bool | np.bool_) for k in kinds):
            arr = np.asarray(ids, dtype=np.int64)
        else:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(f"{name}: `{arg}` must be all strings or all integers, got types {names}")
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq.tolist(), torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    raise ValueError(
        f"{name}: `{arg}` must be a tensor, numpy array or list of ids (strings or integers), "
        f"got {type(ids).__name__}"
    )


# ----------------------------------------------------------------------------------------------------
# ROC / PR core (float64, CPU)
# ----------------------------------------------------------------------------------------------------


def _binary_curve(s: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Counts at each distinct threshold, descending: ``(fps, tps, thresholds)`` for the rule score >= t."""
    order = torch.argsort(s, descending=True, stable=True)
    s_sorted = s[order]
    y_sorted = y[order].to(torch.float64)
    last_of_run = torch.nonzero(s_sorted[1:] != s_sorted[:-1]).flatten()
    idx = torch.cat([last_of_run, torch.tensor([s.numel() - 1])])
    tps = torch.cumsum(y_sorted, 0)[idx]
    fps = (idx + 1).to(torch.float64) - tps
    return fps, tps, s_sorted[idx]


def roc_points(scores: ArrayLike, labels: ArrayLike) -> tuple[Tensor, Tensor, Tensor]:
    """Full ROC curve ``(fpr, tpr, thresholds)`` (float64): one point per distinct score plus the ``(0, 0)``
    start at threshold ``+inf``, as sklearn's ``roc_curve(..., drop_intermediate=False)``. Needs both classes.
    """
    name = "roc_points"
    s, y = _scores_labels(name, scores, labels)
    _require_both_classes(name, y)
    fps, tps, thr = _binary_curve(s, y)
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fps]) / fps[-1]
    tpr = torch.cat([zero, tps]) / tps[-1]
    return fpr, tpr, torch.cat([torch.tensor([torch.inf], dtype=torch.float64), thr])


def _auc(s: Tensor, y: Tensor) -> float:
    fps, tps, _ = _binary_curve(s, y)
    zero = torch.zeros(1, dtype=torch.float64)
    fp = torch.cat([zero, fps])
    tp = torch.cat([zero, tps])
    area = ((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1])).sum() / 2
    return float(area / (fps[-1] * tps[-1]))


def _ap(s: Tensor, y: Tensor) -> float:
    fps, tps, _ = _binary_curve(s, y)
    gained = torch.diff(tps, prepend=torch.zeros(1, dtype=torch.float64))
    return float((gained * tps / (tps + fps)).sum() / tps[-1])


def _eer(s: Tensor, y: Tensor, method: str) -> tuple[float, float]:
    fps, tps, thr = _binary_curve(s, y)
    n_neg, n_pos = fps[-1].clone(), tps[-1].clone()
    if method == "deepfakebench" and fps.numel() > 2:
        # sklearn roc_curve(drop_intermediate=True): drop points collinear with both neighbours.
        corner = (torch.diff(fps, n=2) != 0) | (torch.diff(tps, n=2) != 0)
        keep = torch.cat([torch.tensor([True]), corner, torch.tensor([True])])
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fps]) / n_neg
    tpr = torch.cat([zero, tps]) / n_pos
    thr = torch.cat([torch.tensor([torch.inf], dtype=torch.float64), thr])
    fnr = 1 - tpr
    if method == "deepfakebench":
        i = int(torch.argmin(torch.abs(fnr - fpr)))  # first minimum, as np.nanargmin
        return float(fpr[i]), float(thr[i])
    gap = fnr - fpr  # strictly decreasing from 1 at (0, 0) to -1 at (1, 1)
    i = int(torch.nonzero(gap <= 0)[0])  # >= 1
    g0, g1 = float(gap[i - 1]), float(gap[i])
    if g1 == 0.0:
        value = float(fpr[i])
    else:
        w = g0 / (g0 - g1)
        value = float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))
    # Threshold: the ROC vertex of the crossing segment nearer the line (ties → the lower threshold);
    # vertex 0 (threshold +inf) has |gap| = 1 >= |gap[i]|, so the threshold is always a real score.
    threshold = float(thr[i - 1]) if abs(g0) < abs(g1) else float(thr[i])
    return value, threshold


# ----------------------------------------------------------------------------------------------------
# Frame-level (per-row) functional metrics
# ----------------------------------------------------------------------------------------------------


def frame_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC-AUC of per-row scores (frames, faces or anything else), = ``sklearn.metrics.roc_auc_score``."""
    name = "frame_auc"
    s, y = _scores_labels(name, scores, labels)
    _require_both_classes(name, y)
    return _auc(s, y)


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """Average precision (fake = positive), = ``sklearn.metrics.average_precision_score``."""
    name = "average_precision"
    s, y = _scores_labels(name, scores, labels)
    _require_both_classes(name, y)
    return _ap(s, y)


def eer(scores: ArrayLike, labels: ArrayLike, method: str = "interpolate") -> tuple[float, float]:
    """Equal error rate and a decision threshold → ``(eer, threshold)``.

    ``method="interpolate"``: the ROC polyline (points at every distinct score, from ``(0, 0)`` to ``(1, 1)``)
    crosses ``FNR = FPR`` on exactly one segment, between vertex ``i-1`` (FNR > FPR) and vertex ``i``
    (FNR <= FPR); with ``g = FNR - FPR`` the EER is
    ``FPR[i-1] + g[i-1] / (g[i-1] - g[i]) * (FPR[i] - FPR[i-1])`` (= FNR at that point). The returned
    threshold is the score of the segment's vertex nearer the line (``|g|`` smaller; ties → vertex ``i``, the
    lower threshold), to be used as "fake iff score >= threshold" — an interpolated point is not reachable by
    one deterministic threshold.

    ``method="deepfakebench"``: ``fpr[argmin |fnr - fpr|]`` over sklearn's default
    (``drop_intermediate=True``) ROC points, and that point's threshold, exactly as DeepfakeBench's
    ``get_test_metrics``. Its threshold may be ``+inf`` (e.g. a constant scorer, where it also reports EER 0).
    """
    name = "eer"
    _check_choice(name, "method", method, EER_METHODS)
    s, y = _scores_labels(name, scores, labels)
    _require_both_classes(name, y)
    return _eer(s, y, method)


def accuracy_at_threshold(scores: ArrayLike, labels: ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows with ``(score > threshold) == label`` (strict ``>``, as DeepfakeBench's ``p > 0.5``).

    Use ``threshold=0.5`` for probabilities and ``0.0`` for logits. Defined with a single class too.
    """
    name = "accuracy_at_threshold"
    t = _check_threshold(name, threshold)
    s, y = _scores_labels(name, scores, labels)
    return float(((s > t) == y).double().mean())


# ----------------------------------------------------------------------------------------------------
# Video level
# ----------------------------------------------------------------------------------------------------


class VideoScores(NamedTuple):
    """Per-video result of :func:`video_scores`: ids (sorted), float64 scores, labels (bool) or ``None``."""

    ids: list[Any]
    scores: Tensor
    labels: Tensor | None


def _segment_reduce(values: Tensor, inverse: Tensor, n_groups: int, reduce: str) -> Tensor:
    """Reduce ``values`` by group index ``inverse`` (every group non-empty) with ``mean`` or ``amax``."""
    if reduce == "mean":
        total = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, inverse, values)
        count = torch.bincount(inverse, minlength=n_groups).to(torch.float64)
        return total / count
    out = torch.empty(n_groups, dtype=torch.float64)
    return out.scatter_reduce_(0, inverse, values, reduce="amax", include_self=False)


def _constant_per_group(
    name: str, what: str, values: Tensor, inverse: Tensor, n_groups: int, ids: list[Any]
) -> Tensor:
    """The per-group value of ``values`` (long/bool), refusing groups in which it varies."""
    v = values.long()
    lo = torch.full((n_groups,), torch.iinfo(torch.long).max).scatter_reduce_(0, inverse, v, "amin")
    hi = torch.full((n_groups,), torch.iinfo(torch.long).min).scatter_reduce_(0, inverse, v, "amax")
    mixed = torch.nonzero(lo != hi).flatten()
    if mixed.numel():
        shown = [ids[int(i)] for i in mixed[:3]]
        raise ValueError(
            f"{name}: {mixed.numel()} video(s) have frames with different {what}, e.g. {shown}; video ids "
            "must be unique per video (dataset + method + name, see unique_video_id) — folder names collide "
            "across FF++ methods"
        )
    return lo


def _video_reduce(
    name: str,
    s: Tensor,
    video_ids: object,
    reduce: str,
    frame_ids: object | None,
) -> tuple[list[Any], Tensor, Tensor]:
    """(video ids, video index of each row, per-video scores)."""
    _check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
    ids, inverse = _group_index(name, "video_ids", video_ids, s.numel())
    n_videos = len(ids)
    if reduce == "max_face_then_mean":
        if frame_ids is None:
            raise ValueError(
                f"{name}: reduce='max_face_then_mean' needs `frame_ids` (which frame each face is)"
            )
        frames, f_inverse = _group_index(name, "frame_ids", frame_ids, s.numel())
        key = inverse * len(frames) + f_inverse
        uniq_keys, k_inverse = torch.unique(key, return_inverse=True)
        frame_scores = _segment_reduce(s, k_inverse, uniq_keys.numel(), "amax")
        frame_video = torch.div(uniq_keys, len(frames), rounding_mode="floor")
        return ids, inverse, _segment_reduce(frame_scores, frame_video, n_videos, "mean")
    if frame_ids is not None:
        raise ValueError(
            f"{name}: `frame_ids` is only used with reduce='max_face_then_mean', got reduce={reduce!r}"
        )
    return ids, inverse, _segment_reduce(s, inverse, n_videos, "mean" if reduce == "mean" else "amax")


def video_scores(
    frame_scores: ArrayLike,
    video_ids: ArrayLike,
    reduce: str = "mean",
    labels: ArrayLike | None = None,
    frame_ids: ArrayLike | None = None,
) -> VideoScores:
    """Aggregate per-row scores into one score per video, grouped by explicit ``video_ids``.

    ``video_ids``: one id per row, strings or integers (tensor, numpy array or list) — unique per *video*
    across the whole evaluation set, never a folder name (FF++ reuses folder names across methods; see
    :func:`unique_video_id`). ``reduce``: ``"mean"`` (DeepfakeBench), ``"max"``, or ``"max_face_then_mean"``
    (SBI: rows are faces, ``frame_ids`` says which frame of the video each face is from; max over the faces
    of a frame, then mean over frames). With ``labels``, the per-video label is returned too and a video whose
    rows disagree is refused. Videos come out sorted by id.
    """
    name = "video_scores"
    s = _check_scores(name, frame_scores, "frame_scores").cpu()
    ids, inverse, v_scores = _video_reduce(name, s, video_ids, reduce, frame_ids)
    v_labels = None
    if labels is not None:
        y = _check_labels(name, labels, s.numel()).cpu()
        v_labels = _constant_per_group(name, "labels", y, inverse, len(ids), ids).bool()
    return VideoScores(ids, v_scores, v_labels)


def video_auc(
    frame_scores: ArrayLike,
    labels: ArrayLike,
    video_ids: ArrayLike,
    reduce: str = "mean",
    frame_ids: ArrayLike | None = None,
) -> float:
    """ROC-AUC over videos: :func:`video_scores` then AUC of the per-video scores against per-video labels."""
    name = "video_auc"
    s, y = _scores_labels(name, frame_scores, labels)
    ids, inverse, v_scores = _video_reduce(name, s, video_ids, reduce, frame_ids)
    v_labels = _constant_per_group(name, "labels", y, inverse, len(ids), ids).bool()
    _require_both_classes(name, v_labels)
    return _auc(v_scores, v_labels)


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
    aggregated to videos (``reduce`` / ``frame_ids`` as in :func:`video_scores`; group and label must be
    constant within a video).

    Returns a DataFrame indexed by group (sorted), columns ``n_fake``, ``n_real``, ``auc``, ``ap``, ``eer``.
    """
    name = "per_group_breakdown"
    _check_choice(name, "eer_method", eer_method, EER_METHODS)
    s, y = _scores_labels(name, scores, labels)
    group_names, g_inverse = _group_index(name, "groups", groups, s.numel())
    if video_ids is not None:
        ids, inverse, s = _video_reduce(name, s, video_ids, reduce, frame_ids)
        y = _constant_per_group(name, "labels", y, inverse, len(ids), ids).bool()
        g_inverse = _constant_per_group(name, "groups", g_inverse, inverse, len(ids), ids)
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
        e, _ = _eer(gs, gy, eer_method)
        rows.append(
            {
                "group": group,
                "n_fake": int(fake.sum()),
                "n_real": int(real.sum()),
                "auc": _auc(gs, gy),
                "ap": _ap(gs, gy),
                "eer": e,
            }
        )
    if not rows:
        raise ValueError(f"{name}: needs both real and fake samples, got no fake (label 1) sample")
    return pd.DataFrame(rows).set_index("group")


def _frame_and_video_metrics(
    name: str,
    s: Tensor,
    y: Tensor,
    video_index: object | None,
    frame_index: object | None,
    threshold: float,
    reduce: str,
) -> dict[str, float]:
    """Every detection number of one evaluation set (validated float64 scores and bool labels)."""
    try:
        _require_both_classes(name, y)
    except ValueError as err:
        raise ValueError(f"{err} (frame AUC / AP / EER)") from None
    out = {
        "frame_auc": _auc(s, y),
        "frame_ap": _ap(s, y),
        "frame_eer": _eer(s, y, "interpolate")[0],
        "frame_eer_nearest": _eer(s, y, "deepfakebench")[0],
        "frame_acc": float(((s > threshold) == y).double().mean()),
    }
    if video_index is not None:
        ids, inverse, v_scores = _video_reduce(name, s, video_index, reduce, frame_index)
        v_labels = _constant_per_group(name, "labels", y, inverse, len(ids), ids).bool()
        try:
            _require_both_classes(name, v_labels)
        except ValueError as err:
            raise ValueError(f"{err} (video AUC)") from None
        out["video_auc"] = _auc(v_scores, v_labels)
        out["video_ap"] = _ap(v_scores, v_labels)
        out["n_videos"] = float(len(ids))
    return out


def cross_dataset_report(
    results: Mapping[str, Sequence[Any]],
    threshold: float = 0.5,
    reduce: str = "mean",
) -> pd.DataFrame:
    """One row per test set: frame AUC, AP, EER (interpolated and DeepfakeBench nearest-point), ACC, and
    video AUC / AP.

    ``results`` maps a dataset name to ``(scores, labels)``, ``(scores, labels, video_ids)`` or, for
    ``reduce="max_face_then_mean"``, ``(scores, labels, video_ids, frame_ids)`` (``video_ids`` may be
    ``None``: video columns are then NaN). Columns: ``n_frames, n_videos, frame_auc, frame_ap, frame_eer,
    frame_eer_nearest, frame_acc, video_auc, video_ap``; index ``dataset`` in the given order. ``reduce``
    names the video aggregator (report it with the table). Errors name the dataset.
    """
    name = "cross_dataset_report"
    t = _check_threshold(name, threshold)
    _check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
    if not isinstance(results, Mapping) or not results:
        raise ValueError(
            f"{name}: `results` must be a non-empty mapping dataset -> (scores, labels, video_ids)"
        )
    columns = [
        "n_frames",
        "n_videos",
        "frame_auc",
        "frame_ap",
        "frame_eer",
        "frame_eer_nearest",
        "frame_acc",
        "video_auc",
        "video_ap",
    ]
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
        s, y = _scores_labels(where, scores, labels)
        if video_ids is None and frame_ids is not None:
            raise ValueError(f"{where}: frame_ids given without video_ids")
        row: dict[str, Any] = dict.fromkeys(columns, float("nan"))
        row.update(_frame_and_video_metrics(where, s, y, video_ids, frame_ids, t, reduce))
        row["n_frames"] = s.numel()
        row["dataset"] = dataset
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("dataset")[columns]
    frame["n_videos"] = frame["n_videos"].astype("Int64")
    return frame


# ----------------------------------------------------------------------------------------------------
# DDP-safe metric
# ----------------------------------------------------------------------------------------------------


class DetectionMetrics(Metric):
    """Collects detection scores over batches and ranks, then reports frame- and video-level numbers.

    States are ``dist_reduce_fx="cat"`` lists (scores float64; labels, video, frame and sample indices int64),
    so ``compute()`` sees exactly the rows of every rank — uneven shards and ranks without data included —
    and returns the same numbers on every rank as one process over all rows would.

    ``update(scores, labels, video_idx=None, frame_idx=None, sample_idx=None)``:

    * ``scores`` ``[B]`` (probability or logit of fake), ``labels`` ``[B]`` (1 = fake, 0 = real);
    * ``video_idx`` ``[B]`` integer video ids, required iff ``video_level`` (strings cannot cross ranks: map
      them with a :class:`VideoIdEncoder` built from the full split on every rank, or use any other stable
      integer id); ``frame_idx`` ``[B]`` required iff ``reduce="max_face_then_mean"`` (rows are faces);
    * ``sample_idx`` ``[B]`` (the batch's ``"index"``) required iff ``dedupe``: rows whose sample index was
      already seen are dropped at ``compute()`` (first occurrence kept), which undoes the duplicates a
      ``DistributedSampler`` pads uneven datasets with (framework_notes.md §5.2). Results tables still run on
      one device.

    ``compute()`` returns float32 scalars: ``frame_auc``, ``frame_ap``, ``frame_eer`` (interpolated),
    ``frame_eer_nearest`` (DeepfakeBench), ``frame_acc`` (``score > threshold``), and with ``video_level``
    also ``video_auc`` and ``video_ap`` — keys prefixed by ``prefix``. Log with
    ``self.log_dict(metric.compute())`` then ``metric.reset()`` (a dict cannot be logged as a metric object).
    A single class, an empty state or a video id collision raises :class:`ValueError`.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    scores: list[Tensor] | Tensor
    labels: list[Tensor] | Tensor
    video_idx: list[Tensor] | Tensor
    frame_idx: list[Tensor] | Tensor
    sample_idx: list[Tensor] | Tensor

    #: dtype of every list state (the typed placeholder of a rank without data uses it).
    _STATE_DTYPES: ClassVar[dict[str, torch.dtype]] = {
        "scores": torch.float64,
        "labels": torch.long,
        "video_idx": torch.long,
        "frame_idx": torch.long,
        "sample_idx": torch.long,
    }

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
        self.threshold = _check_threshold(name, threshold)
        self.reduce = _check_choice(name, "reduce", reduce, VIDEO_REDUCTIONS)
        self.video_level = bool(video_level)
        self.dedupe = bool(dedupe)
        self.prefix = str(prefix)
        for state in self._STATE_DTYPES:
            self.add_state(state, default=[], dist_reduce_fx="cat")

    def _check_index(self, arg: str, value: object, n: int, needed: bool, setting: str) -> Tensor | None:
        """Validate an optional integer index of :meth:`update` (``setting`` says when it is used)."""
        name = "DetectionMetrics"
        if value is None:
            if needed:
                raise ValueError(f"{name}: update() needs `{arg}` when {setting}")
            return None
        if not needed:
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
        s = _check_scores(name, scores)  # validated where it lives: no host round trip per batch
        y = _check_labels(name, labels, s.numel())
        n = s.numel()
        v = self._check_index("video_idx", video_idx, n, self.video_level, "video_level=True")
        f = self._check_index(
            "frame_idx",
            frame_idx,
            n,
            self.video_level and self.reduce == "max_face_then_mean",
            "video_level=True and reduce='max_face_then_mean'",
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

    def _sync_dist(self, dist_sync_fn: Any = gather_all_tensors, process_group: Any | None = None) -> None:
        """Give empty list states a typed, empty placeholder, then let torchmetrics gather.

        torchmetrics' own placeholder for a rank without data is float32, which would not match the int64
        states of the other ranks.
        """
        for state, dtype in self._STATE_DTYPES.items():
            value = getattr(self, state)
            if isinstance(value, list) and not value:
                setattr(self, state, [torch.zeros(0, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group=process_group)

    @staticmethod
    def _cat(value: list[Tensor] | Tensor, dtype: torch.dtype) -> Tensor:
        if isinstance(value, Tensor):
            return value.detach().cpu().to(dtype).reshape(-1)
        if not value:
            return torch.zeros(0, dtype=dtype)
        return torch.cat([v.detach().cpu().to(dtype).reshape(-1) for v in value])

    def compute(self) -> dict[str, Tensor]:
        """Frame- and video-level metrics over every row of every rank."""
        name = "DetectionMetrics"
        s = self._cat(self.scores, torch.float64)
        if s.numel() == 0:
            raise ValueError(
                f"{name}: compute() called on an empty state (no update() with data on any rank)"
            )
        y = self._cat(self.labels, torch.long)
        video = self._cat(self.video_idx, torch.long) if self.video_level else None
        frame = (
            self._cat(self.frame_idx, torch.long)
            if self.video_level and self.reduce == "max_face_then_mean"
            else None
        )
        if self.dedupe:
            sample = self._cat(self.sample_idx, torch.long)
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
        values = _frame_and_video_metrics(name, s, y.bool(), video, frame, self.threshold, self.reduce)
        values.pop("n_videos", None)
        return {
            f"{self.prefix}{k}": torch.tensor(v, dtype=torch.float32, device=self.device)
            for k, v in values.items()
        }
