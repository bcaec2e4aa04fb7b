"""Does a face detector still find the face, in the same place, after anonymisation?

Anonymisation methods that re-synthesise the face (rather than blur it) are expected to keep it detectable,
with the same box and landmarks, so that downstream vision still works. Per image pair (original, modified):

* ``detected``: 1 when the detector finds a face in the modified image (0 otherwise);
* ``box_iou``: IoU of the largest detections' boxes (``torchvision.ops.box_iou``; NaN when either has none);
* ``landmark_nme``: the mean distance between their 5 landmarks divided by the original's inter-ocular
  distance (the normalised mean error of face alignment; NaN when either has none).

Boxes follow :class:`src.face.detection.FaceDetection` (``x0, y0, x1, y1``); landmarks are its 5 points,
eyes first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from src.face.detection import FaceDetection, largest_face

FIELDS = ("detected", "box_iou", "landmark_nme")


def pair_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    a = torch.as_tensor(np.asarray(box_a, dtype=np.float64)).view(1, 4)
    b = torch.as_tensor(np.asarray(box_b, dtype=np.float64)).view(1, 4)
    return float(box_iou(a, b)[0, 0])


def landmark_nme(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean point distance between two ``(5, 2)`` landmark sets over the reference's inter-ocular distance."""
    reference = np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    other = np.asarray(other, dtype=np.float64).reshape(-1, 2)
    if reference.shape != other.shape or len(reference) < 2:
        raise ValueError(
            f"landmark_nme: two (N >= 2, 2) point sets expected, got {reference.shape}, {other.shape}"
        )
    interocular = float(np.linalg.norm(reference[0] - reference[1]))
    if interocular <= 0:
        raise ValueError("landmark_nme: the reference's eyes coincide (inter-ocular distance 0)")
    return float(np.linalg.norm(reference - other, axis=1).mean() / interocular)


def face_consistency(
    original: Sequence[FaceDetection], modified: Sequence[FaceDetection]
) -> dict[str, float]:
    """The :data:`FIELDS` of one image pair from the detector's detections of each."""
    detected = 1.0 if modified else 0.0
    if not original or not modified:
        return {"detected": detected, "box_iou": math.nan, "landmark_nme": math.nan}
    a, b = largest_face(list(original)), largest_face(list(modified))
    return {
        "detected": detected,
        "box_iou": pair_iou(a.box, b.box),
        "landmark_nme": landmark_nme(a.landmarks, b.landmarks),
    }
