"""Detection consistency of modified faces: box IoU and landmark NME against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.face.detection import FaceDetection
from src.metrics.face_consistency import face_consistency, landmark_nme, pair_iou

EYES = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])


def face(
    box: tuple[float, float, float, float], points: np.ndarray = EYES, score: float = 0.99
) -> FaceDetection:
    return FaceDetection(box=np.asarray(box, dtype=np.float64), score=score, landmarks=points)


def test_box_iou_by_hand() -> None:
    # [0, 10) x [0, 10) and [5, 15) x [0, 10): intersection 50, union 150
    assert pair_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert pair_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert pair_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_landmark_nme_by_hand() -> None:
    shifted = EYES + np.array([3.0, 4.0])  # every point moves 5 px; the eyes are 40 px apart
    assert landmark_nme(EYES, shifted) == pytest.approx(5 / 40)
    with pytest.raises(ValueError, match="inter-ocular distance 0"):
        landmark_nme(np.zeros((5, 2)), EYES)
    with pytest.raises(ValueError, match="two \\(N >= 2, 2\\) point sets"):
        landmark_nme(EYES, EYES[:3])


def test_face_consistency_uses_the_largest_faces_and_marks_misses() -> None:
    original = [face((0, 0, 10, 10)), face((0, 0, 100, 100))]
    modified = [face((10, 0, 110, 100), EYES + np.array([0.0, 2.0]))]
    row = face_consistency(original, modified)
    assert row["detected"] == 1.0
    assert row["box_iou"] == pytest.approx(90 * 100 / (2 * 100 * 100 - 90 * 100))
    assert row["landmark_nme"] == pytest.approx(2 / 40)
    missed = face_consistency(original, [])
    assert missed["detected"] == 0.0 and math.isnan(missed["box_iou"]) and math.isnan(missed["landmark_nme"])
