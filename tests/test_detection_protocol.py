"""The frame/video detection protocol: faces → frames (max) → videos (mean), failures at 0.5, unique ids,
per-method breakdown; checked against scikit-learn on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from src.datatypes.video_ids import VideoIdEncoder
from src.evaluation.detection_protocol import FAILED_SCORE, evaluate_detection

T = torch.tensor


def _failed(encoder: VideoIdEncoder, rows: list[tuple[str, int, int]]) -> dict[str, torch.Tensor]:
    return {
        "video_idx": encoder.encode([r[0] for r in rows]),
        "frame_index": T([r[1] for r in rows]),
        "label": T([r[2] for r in rows]),
    }


def test_faces_max_then_frames_mean_matches_sklearn_on_hand_built_scores() -> None:
    names = ["ffpp/youtube/c23/000", "ffpp/youtube/c23/001", "ffpp/Deepfakes/c23/000_001"]
    enc = VideoIdEncoder(names)
    # (video, frame, face, label, score)
    rows = [
        ("ffpp/youtube/c23/000", 0, 0, 0, 0.1),
        ("ffpp/youtube/c23/000", 0, 1, 0, 0.7),  # frame max 0.7
        ("ffpp/youtube/c23/000", 5, 0, 0, 0.2),
        ("ffpp/youtube/c23/001", 0, 0, 0, 0.4),
        ("ffpp/youtube/c23/001", 5, 0, 0, 0.3),
        ("ffpp/Deepfakes/c23/000_001", 0, 0, 1, 0.9),
        ("ffpp/Deepfakes/c23/000_001", 5, 0, 1, 0.35),
    ]
    result = evaluate_detection(
        T([r[4] for r in rows], dtype=torch.float64),
        T([r[3] for r in rows]),
        enc.encode([r[0] for r in rows]),
        T([r[1] for r in rows]),
        video_names=enc.ids,
    )
    # by (video id, frame): Deepfakes/000_001 < youtube/000 < youtube/001; 000 frame 0 = max(0.1, 0.7)
    frame_scores = [0.9, 0.35, 0.7, 0.2, 0.4, 0.3]
    frame_labels = [1, 1, 0, 0, 0, 0]
    assert result.frames["score"].tolist() == pytest.approx(frame_scores)
    assert result.metrics["frame_auc"] == pytest.approx(roc_auc_score(frame_labels, frame_scores), abs=1e-12)
    assert result.metrics["frame_ap"] == pytest.approx(average_precision_score(frame_labels, frame_scores))
    video = {"000": (0.7 + 0.2) / 2, "001": 0.35, "000_001": (0.9 + 0.35) / 2}
    assert result.metrics["video_auc"] == pytest.approx(
        roc_auc_score([0, 0, 1], [video["000"], video["001"], video["000_001"]]), abs=1e-12
    )
    assert (
        result.metrics["n_faces"] == 7 and result.metrics["n_frames"] == 6 and result.metrics["n_videos"] == 3
    )
    assert result.metrics["failed_frames"] == result.metrics["failed_videos"] == 0


def test_failures_are_scored_half_and_counted() -> None:
    names = ["ffpp/youtube/c23/000", "ffpp/youtube/c23/999", "ffpp/Deepfakes/c23/000_001"]
    enc = VideoIdEncoder(names)
    scores = T([0.2, 0.3, 0.8], dtype=torch.float64)
    labels = T([0, 0, 1])
    videos = enc.encode(["ffpp/youtube/c23/000"] * 2 + ["ffpp/Deepfakes/c23/000_001"])
    frames = T([0, 5, 0])
    failed = _failed(enc, [("ffpp/Deepfakes/c23/000_001", 5, 1), ("ffpp/youtube/c23/999", -1, 0)])
    result = evaluate_detection(scores, labels, videos, frames, failed=failed, video_names=enc.ids)
    assert result.metrics["failed_frames"] == 1 and result.metrics["failed_videos"] == 1
    failed_rows = result.frames[result.frames["failed"]]
    assert (failed_rows["score"] == FAILED_SCORE).all() and len(failed_rows) == 2
    # video scores: real 000 = 0.25, real 999 = 0.5 (failed), fake = mean(0.8, 0.5)
    expected = roc_auc_score([0, 0, 1], [0.25, 0.5, 0.65])
    assert result.metrics["video_auc"] == pytest.approx(expected, abs=1e-12)
    # frame level: the no-face frame counts (0.5); the unreadable video has no frame to count
    assert result.metrics["n_frames"] == 4 and result.metrics["n_videos"] == 3
    assert result.metrics["frame_auc"] == pytest.approx(
        roc_auc_score([0, 0, 1, 1], [0.2, 0.3, 0.8, 0.5]), abs=1e-12
    )
    twice = _failed(enc, [("ffpp/youtube/c23/000", 5, 0)])
    with pytest.raises(ValueError, match="failures also have scored rows"):
        evaluate_detection(scores, labels, videos, frames, failed=twice)


def test_two_methods_sharing_a_video_name_stay_two_videos() -> None:
    """FF++ reuses ``000_003`` under every method: folder-name grouping would merge the four fakes."""
    names = ["ffpp/youtube/c23/000", "ffpp/Deepfakes/c23/000_003", "ffpp/FaceSwap/c23/000_003"]
    enc = VideoIdEncoder(names)
    scores = T([0.1, 0.2, 0.9, 0.8, 0.3, 0.4], dtype=torch.float64)
    labels = T([0, 0, 1, 1, 1, 1])
    vids = enc.encode([names[0]] * 2 + [names[1]] * 2 + [names[2]] * 2)
    result = evaluate_detection(scores, labels, vids, T([0, 1, 0, 1, 0, 1]), video_names=enc.ids)
    assert result.metrics["n_videos"] == 3
    assert sorted(result.videos["video"]) == sorted(names)
    per = result.per_method
    assert set(per.index) == {"Deepfakes", "FaceSwap"}
    # each method's fakes against all reals, at video level: Deepfakes 0.85 vs 0.15; FaceSwap 0.35 vs 0.15
    assert per.loc["Deepfakes", "video_auc"] == 1.0 and per.loc["FaceSwap", "video_auc"] == 1.0
    assert result.metrics["Deepfakes/frame_auc"] == pytest.approx(
        roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.9, 0.8])
    )
    assert result.metrics["FaceSwap/frame_auc"] == pytest.approx(
        roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    )


def test_one_class_reports_accuracy_and_warns() -> None:
    enc = VideoIdEncoder(["celeb_df/Celeb-real/orig/id0_0000"])
    with pytest.warns(UserWarning, match="every frame is real"):
        result = evaluate_detection(
            T([0.2, 0.7], dtype=torch.float64),
            T([0, 0]),
            enc.encode(list(enc.ids) * 2),
            T([0, 1]),
            video_names=enc.ids,
        )
    assert "frame_auc" not in result.metrics and result.metrics["frame_acc"] == 0.5
    assert result.per_method.empty


def test_faces_of_one_frame_must_share_a_label() -> None:
    with pytest.raises(ValueError, match="different labels"):
        evaluate_detection(T([0.1, 0.2], dtype=torch.float64), T([0, 1]), T([0, 0]), T([3, 3]))
    with pytest.raises(ValueError, match="video_reduce"):
        evaluate_detection(T([0.1], dtype=torch.float64), T([0]), T([0]), T([0]), video_reduce="median")


def test_max_video_reduce() -> None:
    scores = T([0.1, 0.6, 0.7, 0.2], dtype=torch.float64)
    result = evaluate_detection(scores, T([0, 0, 1, 1]), T([0, 0, 1, 1]), T([0, 1, 0, 1]), video_reduce="max")
    assert result.videos["score"].tolist() == pytest.approx([0.6, 0.7])
    assert np.isclose(result.metrics["video_auc"], 1.0)
