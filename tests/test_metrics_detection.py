"""Detection metrics against independent references: scikit-learn (ROC-AUC, AP, roc_curve), a geometric numpy
EER, scipy brentq (Inspector's EER), DeepfakeBench's nearest-point EER formula, and pandas groupby for video
aggregation; plus a 2-process gloo DDP test with uneven shards (docs/metrics.md, "Distributed evaluation")."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from src.metrics.detection import (
    FAILED_VIDEO_SCORE,
    DetectionMetrics,
    VideoIdEncoder,
    accuracy_at_threshold,
    average_precision,
    cross_dataset_report,
    detection_metrics,
    eer,
    frame_auc,
    per_group_breakdown,
    roc_points,
    unique_video_id,
    video_auc,
    video_detection_metrics,
    video_scores,
)

TOL = 1e-12  # float64 sums in a different order than sklearn's


def _sk() -> ModuleType:
    """sklearn.metrics, imported on first use (the DDP worker processes import this module, not sklearn)."""
    import sklearn.metrics

    return sklearn.metrics


# ----------------------------------------------------------------------------------------------------
# Independent references (sklearn curves, formulated differently from the implementation)
# ----------------------------------------------------------------------------------------------------


def _eer_geometric(y: np.ndarray, s: np.ndarray) -> float:
    """Intersection of sklearn's ROC polyline with the line TPR = 1 - FPR (segment/line intersection)."""
    fpr, tpr, _ = _sk().roc_curve(y, s)  # default drop_intermediate=True: the same polyline, fewer vertices
    for k in range(1, len(fpr)):
        x0, y0, x1, y1 = fpr[k - 1], tpr[k - 1], fpr[k], tpr[k]
        # point (x0 + u dx, y0 + u dy) on the line x + y = 1
        u = (1.0 - x0 - y0) / ((x1 - x0) + (y1 - y0))
        if 0.0 <= u <= 1.0:
            return float(x0 + u * (x1 - x0))
    raise AssertionError("ROC polyline does not cross FPR = 1 - TPR")


def _eer_brentq(y: np.ndarray, s: np.ndarray) -> float:
    """Inspector-style EER: root of 1 - x - TPR(x) with TPR linearly interpolated in FPR."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    fpr, tpr, _ = _sk().roc_curve(y, s)
    return float(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0, xtol=1e-14))


def _eer_deepfakebench(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """DeepfakeBench get_test_metrics: fpr[nanargmin |fnr - fpr|] on sklearn's default roc_curve."""
    fpr, tpr, thr = _sk().roc_curve(y, s)
    fnr = 1 - tpr
    i = np.nanargmin(np.absolute(fnr - fpr))
    return float(fpr[i]), float(thr[i])


def _random_case(seed: int, n: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)  # many tied scores, across classes too
    return s, y


CASES = [(seed, n, ties) for seed, n in ((0, 50), (1, 333), (2, 2000), (3, 7)) for ties in (False, True)]


# ----------------------------------------------------------------------------------------------------
# Frame-level parity
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "ties"), CASES)
def test_frame_metrics_match_references(seed: int, n: int, ties: bool) -> None:
    s, y = _random_case(seed, n, ties)
    assert frame_auc(s, y) == pytest.approx(_sk().roc_auc_score(y, s), abs=TOL)
    assert average_precision(s, y) == pytest.approx(_sk().average_precision_score(y, s), abs=TOL)
    value, threshold = eer(s, y)
    assert value == pytest.approx(_eer_geometric(y, s), abs=TOL)
    if not ties:  # interp1d over repeated FPR values (vertical segments) is ill-posed for brentq
        assert value == pytest.approx(_eer_brentq(y, s), abs=1e-9)
    assert threshold in set(s.tolist())
    # The threshold is the ROC vertex nearest to FNR = FPR on the crossing segment.
    fpr, tpr, thr = _sk().roc_curve(y, s, drop_intermediate=False)
    gap = (1 - tpr) - fpr
    k = int(np.argmax(gap <= 0))
    nearest = thr[k - 1] if abs(gap[k - 1]) < abs(gap[k]) else thr[k]
    assert threshold == nearest
    assert eer(s, y, method="deepfakebench") == _eer_deepfakebench(y, s)  # bit-exact
    assert accuracy_at_threshold(s, y, 0.3) == pytest.approx(np.mean((s > 0.3) == y), abs=0)
    # Tensors (float32 and float64) and lists give the same numbers as numpy input.
    assert frame_auc(torch.from_numpy(s), torch.from_numpy(y)) == frame_auc(s, y)
    assert frame_auc(list(s), list(y)) == frame_auc(s, y)
    assert frame_auc(torch.from_numpy(s).float(), torch.from_numpy(y).bool()) == pytest.approx(
        _sk().roc_auc_score(y, s.astype(np.float32)), abs=TOL
    )


def test_roc_points_match_sklearn_full_curve() -> None:
    s, y = _random_case(5, 300, ties=True)
    fpr, tpr, thr = roc_points(s, y)
    ref_fpr, ref_tpr, ref_thr = _sk().roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr.numpy(), ref_fpr, rtol=0, atol=TOL)
    np.testing.assert_allclose(tpr.numpy(), ref_tpr, rtol=0, atol=TOL)
    np.testing.assert_array_equal(thr.numpy(), ref_thr)


def test_ties_and_degenerate_scorers() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    const = np.full(6, 0.7)
    assert frame_auc(const, y) == 0.5 == _sk().roc_auc_score(y, const)
    assert eer(const, y) == (0.5, 0.7)  # the (0,0)-(1,1) diagonal crosses FNR = FPR at 0.5
    assert eer(const, y, method="deepfakebench") == (0.0, float("inf"))  # DeepfakeBench's quirk, kept
    assert average_precision(const, y) == pytest.approx(_sk().average_precision_score(y, const), abs=TOL)
    # A fake tied with a real counts half.
    assert frame_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)
    # Perfect and inverted scorers.
    perfect = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.95])
    assert frame_auc(perfect, y) == 1.0
    assert eer(perfect, y)[0] == 0.0
    assert frame_auc(-perfect, y) == 0.0
    assert eer(-perfect, y)[0] == 1.0
    # Integer scores and boolean labels are fine.
    assert frame_auc(torch.tensor([1, 2, 3, 4]), torch.tensor([False, True, False, True])) == 0.75


def test_accuracy_threshold_is_strict() -> None:
    s = torch.tensor([0.5, 0.5, 0.51, 0.2])
    y = torch.tensor([0, 1, 1, 0])
    assert accuracy_at_threshold(s, y) == 0.75  # 0.5 is not > 0.5: predicted real
    assert accuracy_at_threshold(torch.tensor([-1.0, 2.0]), torch.tensor([0, 1]), threshold=0.0) == 1.0
    assert accuracy_at_threshold([0.9, 0.8], [1, 1]) == 1.0  # one class is fine for accuracy


# ----------------------------------------------------------------------------------------------------
# Video level
# ----------------------------------------------------------------------------------------------------


def _video_frame_table(seed: int) -> pd.DataFrame:
    """Frames of videos with unique ids; every video has its own label and 1-9 frames (shuffled rows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for method, label in (
        ("real", 0),
        ("Deepfakes", 1),
        ("Face2Face", 1),
        ("FaceSwap", 1),
        ("NeuralTextures", 1),
    ):
        for name in range(12 if label == 0 else 6):
            vid = unique_video_id("ffpp", method, f"{name:03d}_{(name * 7) % 13:03d}")
            for frame in range(int(rng.integers(1, 10))):
                for _face in range(int(rng.integers(1, 3))):
                    score = float(np.round(rng.normal() + 0.7 * label, 2))
                    rows.append((vid, method, frame, label, score))
    table = pd.DataFrame(rows, columns=["video", "method", "frame", "label", "score"])
    return table.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_video_auc_matches_pandas_groupby(seed: int) -> None:
    t = _video_frame_table(seed)
    s, y, vids = t["score"].to_numpy(), t["label"].to_numpy(), t["video"].tolist()
    mean = t.groupby("video").agg(score=("score", "mean"), label=("label", "first"))
    assert video_auc(s, y, vids) == pytest.approx(_sk().roc_auc_score(mean["label"], mean["score"]), abs=TOL)
    vmax = t.groupby("video").agg(score=("score", "max"), label=("label", "first"))
    assert video_auc(s, y, vids, reduce="max") == pytest.approx(
        _sk().roc_auc_score(vmax["label"], vmax["score"]), abs=TOL
    )
    sbi = t.groupby(["video", "frame"]).agg(score=("score", "max"), label=("label", "first"))
    sbi = sbi.groupby(level="video").agg(score=("score", "mean"), label=("label", "first"))
    got = video_auc(s, y, vids, reduce="max_face_then_mean", frame_ids=t["frame"].tolist())
    assert got == pytest.approx(_sk().roc_auc_score(sbi["label"], sbi["score"]), abs=TOL)

    out = video_scores(s, vids, labels=y)
    assert out.ids == sorted(mean.index)  # pandas sorts group keys too
    np.testing.assert_allclose(out.scores.numpy(), mean["score"].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out.labels.numpy(), mean["label"].to_numpy().astype(bool))

    # Integer ids (tensor, numpy, list) give the same result as the strings.
    codes = pd.factorize(t["video"])[0]
    ref = video_auc(s, y, vids)
    assert video_auc(s, y, torch.from_numpy(codes)) == ref
    assert video_auc(s, y, codes) == ref
    assert video_auc(s, y, codes.tolist()) == ref
    assert video_auc(s, y, np.asarray(vids, dtype=object)) == ref
    assert video_auc(t["score"], t["label"], t["video"]) == ref  # pandas Series


def test_folder_name_ids_collide_and_are_refused() -> None:
    # DeepfakeBench groups by the frame's folder name: 000_003 exists under every FF++ method (and here, as
    # in the combined FF++ test set, also as a real video's folder) — the labels then disagree.
    t = _video_frame_table(0)
    folder = t["video"].str.split("/").str[-1]
    assert folder.nunique() < t["video"].nunique()
    with pytest.raises(ValueError, match=r"video_auc: .*different labels.*unique_video_id"):
        video_auc(t["score"].to_numpy(), t["label"].to_numpy(), folder.tolist())
    assert unique_video_id("ffpp", "Deepfakes", "000_003") == "ffpp/Deepfakes/000_003"
    with pytest.raises(ValueError, match="unique_video_id: .*no '/'"):
        unique_video_id("ffpp", "a/b")


def test_failed_video_row_is_counted() -> None:
    scores = [0.9, 0.8, FAILED_VIDEO_SCORE, 0.1]
    labels = [1, 1, 1, 0]
    vids = ["a", "a", "failed", "r"]
    out = video_scores(scores, vids, labels=labels)
    assert out.ids == ["a", "failed", "r"]
    assert out.scores.tolist() == pytest.approx([0.85, 0.5, 0.1])


# ----------------------------------------------------------------------------------------------------
# One call per level
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "ties"), CASES[:4])
def test_detection_metrics_one_call_matches_references(seed: int, n: int, ties: bool) -> None:
    s, y = _random_case(seed, n, ties)
    got = detection_metrics(s, y, threshold=0.3)
    assert set(got) == {
        "auc",
        "ap",
        "eer",
        "eer_threshold",
        "eer_nearest",
        "accuracy",
        "n",
        "n_real",
        "n_fake",
    }
    assert all(isinstance(v, float | int) for v in got.values())
    assert abs(got["auc"] - _sk().roc_auc_score(y, s)) <= TOL  # float64: sklearn to 1e-12
    assert abs(got["ap"] - _sk().average_precision_score(y, s)) <= TOL
    assert abs(got["eer"] - _eer_geometric(y, s)) <= TOL
    assert (got["eer"], got["eer_threshold"]) == eer(s, y)
    assert got["eer_nearest"] == _eer_deepfakebench(y, s)[0]
    assert got["accuracy"] == accuracy_at_threshold(s, y, 0.3)
    assert (got["n"], got["n_real"], got["n_fake"]) == (n, int((y == 0).sum()), int(y.sum()))


def test_frame_auc_is_float64_exact_against_sklearn() -> None:
    """float32 scores are promoted to float64 before the curve: the AUC of the promoted values equals
    sklearn's on the same values to 1e-12, also through DetectionMetrics (which used to return float32)."""
    s, y = _random_case(11, 5000, ties=False)
    s32 = torch.from_numpy(s).float()
    ref = _sk().roc_auc_score(y, s32.double().numpy())
    assert abs(frame_auc(s32, y) - ref) <= TOL
    metric = DetectionMetrics(video_level=False)
    metric.update(s32, torch.from_numpy(y))
    out = metric.compute()["frame_auc"]
    assert out.dtype == torch.float64 and abs(float(out) - ref) <= TOL


@pytest.mark.parametrize("reduce", ["mean", "max", "max_face_then_mean"])
def test_video_detection_metrics_one_call(reduce: str) -> None:
    t = _video_frame_table(6)
    s, y, vids, frames = (
        t["score"].to_numpy(),
        t["label"].to_numpy(),
        t["video"].tolist(),
        t["frame"].tolist(),
    )
    frame_ids = frames if reduce == "max_face_then_mean" else None
    got = video_detection_metrics(s, y, vids, reduce=reduce, frame_ids=frame_ids)
    # the pandas reference of each reduction, then sklearn on the per-video scores
    if reduce == "max_face_then_mean":
        per_frame = t.groupby(["video", "frame"]).agg(score=("score", "max"), label=("label", "first"))
        v = per_frame.groupby(level="video").agg(score=("score", "mean"), label=("label", "first"))
    else:
        v = t.groupby("video").agg(score=("score", reduce), label=("label", "first"))
    vs, vy = v["score"].to_numpy(), v["label"].to_numpy()
    assert abs(got["auc"] - _sk().roc_auc_score(vy, vs)) <= TOL
    assert abs(got["ap"] - _sk().average_precision_score(vy, vs)) <= TOL
    assert abs(got["eer"] - _eer_geometric(vy, vs)) <= TOL
    assert got["eer_nearest"] == _eer_deepfakebench(vy, vs)[0]
    assert got["accuracy"] == np.mean((vs > 0.5) == vy)
    assert got["n"] == len(v) and got["n_frames"] == len(t) and got["n_fake"] == int(vy.sum())
    assert got["auc"] == video_auc(s, y, vids, reduce, frame_ids)  # the same argument order


def test_video_id_collisions_are_refused_even_when_labels_agree() -> None:
    # Two fake videos named "000_003" (one per manipulation method, different frame counts): the labels
    # agree, so only the frame ids or the sources can reveal the collision.
    rows = [("000_003", "Deepfakes", f, 0.9) for f in range(3)] + [
        ("000_003", "FaceSwap", f, 0.2) for f in range(5)
    ]
    rows += [("100_200", "real", f, 0.1) for f in range(4)]
    vids = [r[0] for r in rows]
    sources = [r[1] for r in rows]
    frames = [r[2] for r in rows]
    scores = [r[3] for r in rows]
    labels = [int(src != "real") for src in sources]
    assert video_detection_metrics(scores, labels, vids)["n"] == 2  # without more information: merged
    with pytest.raises(
        ValueError, match=r"video_detection_metrics: 1 video\(s\) have the same frame id more"
    ):
        video_detection_metrics(scores, labels, vids, frame_ids=frames)
    with pytest.raises(
        ValueError, match=r"video_detection_metrics: 1 video\(s\) have frames with different sources"
    ):
        video_detection_metrics(scores, labels, vids, sources=sources)
    with pytest.raises(ValueError, match="video_scores: .*same frame id"):
        video_scores(scores, vids, frame_ids=frames)
    # unique ids pass both checks
    unique = [unique_video_id("ffpp", src, v) for v, src in zip(vids, sources, strict=True)]
    out = video_detection_metrics(scores, labels, unique, frame_ids=frames, sources=sources)
    assert out["n"] == 3 and out["auc"] == 1.0
    # faces of one frame legitimately share (video, frame) with max_face_then_mean
    faces = video_detection_metrics(
        [*scores, 0.3], [*labels, 1], [*unique, unique[0]], "max_face_then_mean", [*frames, 0]
    )
    assert faces["n"] == 3
    # DetectionMetrics: the same check when frame_idx is given with reduce="mean"
    metric = DetectionMetrics()
    metric.update(
        torch.tensor(scores),
        torch.tensor(labels),
        torch.tensor([0] * 8 + [1] * 4),
        frame_idx=torch.tensor(frames),
    )
    with pytest.raises(ValueError, match="DetectionMetrics: 1 video.*same frame id"):
        metric.compute()


# ----------------------------------------------------------------------------------------------------
# Per-group breakdown and cross-dataset table
# ----------------------------------------------------------------------------------------------------


def test_per_group_breakdown_matches_manual_sklearn() -> None:
    t = _video_frame_table(3)
    s, y, groups = t["score"].to_numpy(), t["label"].to_numpy(), t["method"].tolist()
    table = per_group_breakdown(s, y, groups)
    assert list(table.index) == ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]  # no "real" row
    real = y == 0
    for method, row in table.iterrows():
        keep = real | ((t["method"] == method).to_numpy() & (y == 1))
        assert row["auc"] == pytest.approx(_sk().roc_auc_score(y[keep], s[keep]), abs=TOL)
        assert row["ap"] == pytest.approx(_sk().average_precision_score(y[keep], s[keep]), abs=TOL)
        assert row["eer"] == pytest.approx(_eer_geometric(y[keep], s[keep]), abs=TOL)
        assert row["n_fake"] == int(((t["method"] == method) & (t["label"] == 1)).sum())
        assert row["n_real"] == int(real.sum())

    # Video level: aggregate first (pandas reference), then the same convention.
    video_table = per_group_breakdown(s, y, groups, video_ids=t["video"].tolist())
    v = t.groupby("video").agg(score=("score", "mean"), label=("label", "first"), method=("method", "first"))
    for method, row in video_table.iterrows():
        keep = (v["label"] == 0) | (v["method"] == method)
        assert row["auc"] == pytest.approx(_sk().roc_auc_score(v["label"][keep], v["score"][keep]), abs=TOL)
        assert row["n_real"] == 12 and row["n_fake"] == 6


def test_cross_dataset_report_matches_functions() -> None:
    a = _video_frame_table(4)
    b_s, b_y = _random_case(9, 120, ties=False)
    results = {
        "FF++": (a["score"].to_numpy(), a["label"].to_numpy(), a["video"].tolist()),
        "CDF": (torch.from_numpy(b_s), torch.from_numpy(b_y)),
    }
    report = cross_dataset_report(results)
    assert list(report.index) == ["FF++", "CDF"]
    assert list(report.columns) == [
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
    ]
    s, y = a["score"].to_numpy(), a["label"].to_numpy()
    ff = report.loc["FF++"]
    assert ff["n_frames"] == len(a) and ff["n_videos"] == a["video"].nunique()
    assert ff["frame_auc"] == pytest.approx(_sk().roc_auc_score(y, s), abs=TOL)
    assert ff["frame_ap"] == pytest.approx(_sk().average_precision_score(y, s), abs=TOL)
    assert ff["frame_eer"] == pytest.approx(_eer_geometric(y, s), abs=TOL)
    assert ff["frame_eer_nearest"] == _eer_deepfakebench(y, s)[0]
    assert ff["frame_acc"] == pytest.approx(np.mean((s > 0.5) == y))
    assert ff["video_auc"] == video_auc(s, y, a["video"].tolist())
    video = video_detection_metrics(s, y, a["video"].tolist())
    for column, key in (("video_ap", "ap"), ("video_eer", "eer"), ("video_eer_nearest", "eer_nearest")):
        assert ff[column] == video[key]
    assert ff["video_acc"] == video["accuracy"]
    cdf = report.loc["CDF"]
    assert cdf["frame_auc"] == pytest.approx(_sk().roc_auc_score(b_y, b_s), abs=TOL)
    assert pd.isna(cdf["video_auc"]) and pd.isna(cdf["video_acc"]) and pd.isna(cdf["n_videos"])
    with pytest.raises(ValueError, match=r"cross_dataset_report\['bad'\]: needs both real and fake"):
        cross_dataset_report({"bad": ([0.1, 0.2], [1, 1])})


# ----------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "metric"),
    [
        (frame_auc, "frame_auc"),
        (average_precision, "average_precision"),
        (eer, "eer"),
        (lambda s, y: video_auc(s, y, ["a", "b", "c"]), "video_auc"),
        (lambda s, y: per_group_breakdown(s, y, ["m", "m", "m"]), "per_group_breakdown"),
    ],
)
def test_single_class_is_refused(fn: object, metric: str) -> None:
    for labels in ([1, 1, 1], [0, 0, 0]):
        with pytest.raises(ValueError, match=rf"^{metric}: needs both real and fake samples"):
            fn([0.1, 0.4, 0.9], labels)  # type: ignore[operator]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"frame_auc: `scores` contains non-finite values \(1 NaN"):
        frame_auc([0.1, float("nan"), 0.3], [0, 1, 1])
    with pytest.raises(ValueError, match="eer: `scores` contains non-finite"):
        eer(torch.tensor([0.1, float("inf")]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"frame_auc: `labels` must have shape \[3\]"):
        frame_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match=r"average_precision: `scores` must be 1-D"):
        average_precision(torch.rand(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="frame_auc: `scores` is empty"):
        frame_auc(torch.tensor([]), torch.tensor([], dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"frame_auc: `labels` must be 0 \(real\) or 1 \(fake\), found \[2\]"
    ):
        frame_auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="frame_auc: `labels` must be boolean or integer"):
        frame_auc([0.1, 0.2], [0.0, 1.0])
    with pytest.raises(
        ValueError, match="frame_auc: `scores` must be a torch.Tensor, numpy array, pandas Series or list"
    ):
        frame_auc("0.1", [0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eer: method must be one of"):
        eer([0.1, 0.9], [0, 1], method="nearest")
    with pytest.raises(ValueError, match=r"video_scores: `video_ids` must be all strings or all integers"):
        video_scores([0.1, 0.2], ["a", 1])
    with pytest.raises(ValueError, match=r"video_scores: `video_ids` must be integer ids or strings.*float"):
        video_scores([0.1, 0.2], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"video_scores: `video_ids` must have 2 entries"):
        video_scores([0.1, 0.2], ["a"])
    with pytest.raises(ValueError, match="video_scores: reduce must be one of"):
        video_scores([0.1, 0.2], ["a", "b"], reduce="median")
    with pytest.raises(ValueError, match="video_auc: reduce='max_face_then_mean' needs `frame_ids`"):
        video_auc([0.1, 0.2], [0, 1], ["a", "b"], reduce="max_face_then_mean")
    with pytest.raises(ValueError, match="accuracy_at_threshold: threshold must be finite"):
        accuracy_at_threshold([0.1], [0], threshold=float("nan"))


# ----------------------------------------------------------------------------------------------------
# DetectionMetrics and VideoIdEncoder (single process)
# ----------------------------------------------------------------------------------------------------


def test_video_id_encoder_is_stable_and_order_free() -> None:
    ids = ["ffpp/NT/000_003", "ffpp/DF/000_003", "cdf/real/id0_0001", "ffpp/DF/000_003"]
    enc = VideoIdEncoder(ids)
    again = VideoIdEncoder(reversed(ids))
    assert enc.ids == again.ids == ("cdf/real/id0_0001", "ffpp/DF/000_003", "ffpp/NT/000_003")
    assert enc.fingerprint() == again.fingerprint() != VideoIdEncoder(ids[:2]).fingerprint()
    codes = enc.encode(["ffpp/NT/000_003", "cdf/real/id0_0001"])
    assert codes.dtype == torch.long and codes.tolist() == [2, 0]
    assert enc.decode(codes) == ["ffpp/NT/000_003", "cdf/real/id0_0001"]
    assert len(enc) == 3 and "ffpp/DF/000_003" in enc
    with pytest.raises(ValueError, match="VideoIdEncoder: unknown video id 'x'"):
        enc.encode(["x"])
    with pytest.raises(ValueError, match="VideoIdEncoder: index 7 is outside"):
        enc.decode([7])
    with pytest.raises(ValueError, match="VideoIdEncoder: ids must be strings"):
        VideoIdEncoder([1, 2])  # type: ignore[list-item]


def test_detection_metrics_equals_functional_and_is_batch_invariant() -> None:
    t = _video_frame_table(5)
    enc = VideoIdEncoder(t["video"])
    s = torch.tensor(t["score"].to_numpy(), dtype=torch.float32)
    y = torch.tensor(t["label"].to_numpy())
    v = enc.encode(t["video"].tolist())
    f = torch.tensor(t["frame"].to_numpy())

    whole, split = DetectionMetrics(prefix="test/"), DetectionMetrics(prefix="test/")
    whole.update(s, y, v)
    for idx in torch.arange(len(t)).split(17):
        assert split(s[idx], y[idx], v[idx]) is None  # forward() only accumulates (batches may be one class)
    got, got_split = whole.compute(), split.compute()
    s64 = s.double().numpy()
    assert set(got) == {
        "test/frame_auc",
        "test/frame_ap",
        "test/frame_eer",
        "test/frame_eer_nearest",
        "test/frame_acc",
        "test/video_auc",
        "test/video_ap",
        "test/video_eer",
        "test/video_eer_nearest",
        "test/video_acc",
    }
    for key in got:
        assert torch.equal(got[key], got_split[key]) and got[key].dtype == torch.float64
    # float64 end to end: the collector agrees with the float64 references to 1e-12 (float32 outputs were
    # off by up to ~3e-8).
    assert float(got["test/frame_auc"]) == pytest.approx(_sk().roc_auc_score(y.numpy(), s64), abs=TOL)
    assert float(got["test/frame_ap"]) == pytest.approx(
        _sk().average_precision_score(y.numpy(), s64), abs=TOL
    )
    assert float(got["test/frame_eer"]) == pytest.approx(_eer_geometric(y.numpy(), s64), abs=TOL)
    video = video_detection_metrics(s, y, t["video"].tolist())
    assert float(got["test/video_auc"]) == video_auc(s, y, t["video"].tolist()) == video["auc"]
    for key in ("ap", "eer", "eer_nearest"):
        assert float(got[f"test/video_{key}"]) == video[key]
    assert float(got["test/video_acc"]) == video["accuracy"]

    sbi = DetectionMetrics(reduce="max_face_then_mean")
    sbi.update(s, y, v, frame_idx=f)
    expected = video_auc(s, y, t["video"].tolist(), reduce="max_face_then_mean", frame_ids=f)
    assert float(sbi.compute()["video_auc"]) == expected

    frame_only = DetectionMetrics(video_level=False, threshold=0.0)
    frame_only.update(s, y)
    out = frame_only.compute()
    assert "video_auc" not in out
    assert float(out["frame_acc"]) == accuracy_at_threshold(s, y, 0.0)


def test_detection_metrics_dedupe_drops_sampler_padding() -> None:
    s = torch.tensor([0.1, 0.9, 0.4, 0.6, 0.35])
    y = torch.tensor([0, 1, 0, 1, 1])
    v = torch.tensor([0, 1, 2, 3, 4])
    idx = torch.arange(5)
    ref = DetectionMetrics(dedupe=True)
    ref.update(s, y, v, sample_idx=idx)
    padded = DetectionMetrics(dedupe=True)
    padded.update(s, y, v, sample_idx=idx)
    padded.update(s[:1], y[:1], v[:1], sample_idx=idx[:1])  # DistributedSampler-style duplicate of sample 0
    assert padded.compute() == ref.compute()
    no_dedupe = DetectionMetrics()
    no_dedupe.update(torch.cat([s, s[:1]]), torch.cat([y, y[:1]]), torch.cat([v, v[:1]]))
    assert no_dedupe.compute()["frame_auc"] != ref.compute()["frame_auc"]  # the duplicate skews AUC
    clash = DetectionMetrics(dedupe=True)
    clash.update(s, y, v, sample_idx=torch.tensor([0, 1, 2, 3, 0]))
    with pytest.raises(
        ValueError, match="DetectionMetrics: rows with the same sample_idx have different labels"
    ):
        clash.compute()


def test_detection_metrics_errors() -> None:
    m = DetectionMetrics()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute() before update()
        with pytest.raises(ValueError, match="DetectionMetrics: compute\\(\\) called on an empty state"):
            m.compute()
    with pytest.raises(ValueError, match="DetectionMetrics: update\\(\\) needs `video_idx` when video_level"):
        m.update(torch.rand(3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="DetectionMetrics: `video_idx` must be an integer tensor, got list"):
        m.update(torch.rand(2), torch.tensor([0, 1]), ["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="DetectionMetrics: `scores` contains non-finite values"):
        m.update(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"DetectionMetrics: `labels` must have shape \[2\]"):
        m.update(torch.rand(2), torch.tensor([0, 1, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="DetectionMetrics: `frame_idx` is only used when"):
        DetectionMetrics(video_level=False).update(
            torch.rand(2), torch.tensor([0, 1]), frame_idx=torch.tensor([0, 0])
        )
    m.update(torch.rand(4), torch.ones(4, dtype=torch.long), torch.arange(4))
    with pytest.raises(ValueError, match=r"DetectionMetrics: needs both real and fake samples.*frame AUC"):
        m.compute()
    with pytest.raises(ValueError, match="DetectionMetrics: reduce must be one of"):
        DetectionMetrics(reduce="median")


# ----------------------------------------------------------------------------------------------------
# DDP: 2 gloo processes, uneven shards (13 and 20 frames), videos spanning both ranks
# ----------------------------------------------------------------------------------------------------

WORLD_SIZE = 2
SHARDS = {0: (0, 13), 1: (13, 33)}
BATCH = {0: 5, 1: 7}


def _ddp_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """33 frames of 7 videos (5 frames each, the last 3; video 2 = frames 10-14 has frames on both ranks)."""
    g = torch.Generator().manual_seed(77)
    video = torch.arange(33) // 5
    video_label = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    labels = video_label[video]
    scores = torch.rand(33, generator=g) * 0.8 + 0.25 * labels
    frame = torch.arange(33) % 5 // 2  # two faces per frame (pairs of rows), for max_face_then_mean
    return scores, labels, video, frame


def _ddp_metrics() -> dict[str, DetectionMetrics]:
    return {
        "mean": DetectionMetrics(),
        "sbi": DetectionMetrics(reduce="max_face_then_mean"),
        "rank1_only": DetectionMetrics(dedupe=True),
    }


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*called before the ``update``.*")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        scores, labels, video, frame = _ddp_data()
        metrics = _ddp_metrics()
        lo, hi = SHARDS[rank]
        for idx in torch.arange(lo, hi).split(BATCH[rank]):
            metrics["mean"].update(scores[idx], labels[idx], video[idx])
            metrics["sbi"].update(scores[idx], labels[idx], video[idx], frame_idx=frame[idx])
            if rank == 1:  # rank 0 has no data at all for this one
                metrics["rank1_only"].update(scores[idx], labels[idx], video[idx], sample_idx=idx)
        results = {key: m.compute() for key, m in metrics.items()}
        results["local_rows"] = sum(t.numel() for t in metrics["mean"].scores)  # un-synced after compute()
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore:.*called before the ``update``.*")
def test_detection_metrics_ddp_uneven_shards(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(str(tmp_path / "pg_init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)

    scores, labels, video, frame = _ddp_data()
    expected = _ddp_metrics()
    expected["mean"].update(scores, labels, video)
    expected["sbi"].update(scores, labels, video, frame_idx=frame)
    expected["rank1_only"].update(scores[13:], labels[13:], video[13:], sample_idx=torch.arange(13, 33))
    want = {key: m.compute() for key, m in expected.items()}
    # sanity: the single-process values are the functional ones
    assert float(want["mean"]["video_auc"]) == video_auc(scores, labels, video)

    for rank in range(WORLD_SIZE):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key in want:
            assert got[key].keys() == want[key].keys()
            for name, value in want[key].items():
                assert torch.equal(got[key][name], value), (rank, key, name, got[key][name], value)
        lo, hi = SHARDS[rank]
        assert got["local_rows"] == hi - lo
