"""Face detectors that work offline: MTCNN (facenet-pytorch) and dlib's HOG and MMOD detectors.

Every detector takes ``[H, W, 3]`` uint8 RGB numpy images and returns, per image, a list of ``FaceDetection``
sorted by score (highest first), each with 5 landmarks in the order of ``src.face.landmarks.LANDMARK_NAMES``:
**image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner** ("left" =
smaller x in the image, i.e. the subject's right; the MTCNN / insightface / CelebA order).

- ``MTCNNDetector``: weights ship inside ``facenet-pytorch`` (install with ``--no-deps``); gives the 5 points
  itself.
- ``DlibHOGDetector``: fast on CPU (~0.15 s per 512² image at upsample 0); misses faces under ~80 px unless
  ``upsample >= 1`` and produces weak false positives (score ~0.1 on the astronaut's suit), hence
  ``min_score=0.5``.
- ``DlibMMODDetector``: dlib's CNN detector; accurate but **slow on CPU** (2.5 s per 512² image at upsample 0
  on a quiet 2-core machine, ~4× more per upsampling step; dlib-bin has no CUDA).

dlib detectors get their 5 points from dlib's 68-point predictor by default (``landmarks="68"``: eye centres,
nose tip, real mouth corners). ``landmarks="5"`` uses dlib's 5-point predictor instead (faster to load, 9 MB
vs 100 MB), which has no mouth, so the mouth corners are estimated (``FaceDetection.mouth_estimated``); see
``src.face.landmarks``. dlib detections also carry the raw dlib 5-point shape (``dlib5``) used by the dlib
face chip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from src.face.landmarks import (
    DlibShapePredictor,
    dlib_model_file,
    landmarks5_from_dlib5,
    landmarks5_from_dlib68,
)


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One detected face in pixel-index coordinates of the input image.

    ``box``: ``(x1, y1, x2, y2)`` float64 with ``x2, y2`` exclusive (width = ``x2 - x1``); ``score``: the
    detector's confidence (MTCNN probability in [0, 1]; dlib HOG/MMOD margin, unbounded); ``landmarks``: ``(5,
    2)`` float64 ``(x, y)`` in ``LANDMARK_NAMES`` order; ``landmarks68``: the dlib 68 points when computed;
    ``dlib5``: dlib's 5-point shape in dlib's order when computed; ``source``: which models produced box and
    points.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    landmarks68: np.ndarray | None = None
    dlib5: np.ndarray | None = None
    source: str = ""
    mouth_estimated: bool = False

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        """Box area in pixels² (used to pick the largest face)."""
        return max(self.width, 0.0) * max(self.height, 0.0)


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an ``[H, W, 3]`` uint8 RGB numpy image (returned C-contiguous); raises naming the problem."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a numpy array [H, W, 3] uint8 RGB, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must have shape [H, W, 3] (RGB), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0–255), got dtype {image.dtype}")
    return np.ascontiguousarray(image)


def largest_face(detections: list[FaceDetection]) -> FaceDetection:
    """The detection with the largest box (ties: the higher score, then the first)."""
    if not detections:
        raise ValueError("largest_face got no detections")
    return max(detections, key=lambda d: (d.area, d.score))


class FaceDetector(ABC):
    """Common interface: ``detect`` one image, ``detect_batch`` a list; results sorted best score first."""

    name: str = "detector"

    def __init__(self, min_score: float) -> None:
        self.min_score = float(min_score)

    @abstractmethod
    def _detect_many(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        """Detect on already-validated images (subclasses batch where the backend can)."""

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in one ``[H, W, 3]`` uint8 RGB image with ``score >= min_score``, highest score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        """``detect`` for a list of images (any sizes); returns one list of detections per image, in order."""
        checked = [check_image(image, f"image {i}") for i, image in enumerate(images)]
        results = self._detect_many(checked) if checked else []
        return [
            sorted((d for d in dets if d.score >= self.min_score), key=lambda d: -d.score) for dets in results
        ]


def _group_by_shape(images: list[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Indices of images grouped by shape (backends batch only equal-size images)."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        groups[image.shape].append(index)
    return groups


def _as_float_array(value, shape: tuple[int, ...]) -> np.ndarray | None:
    """facenet-pytorch output → float64 array, or None for "no face".

    With ``keep_all=True`` and numpy 2, MTCNN returns object-dtype arrays (ragged per-image results), on which
    ``np.round`` and friends raise ``TypeError``; ``tolist()`` then a float conversion fixes that.
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.dtype == object:
        if value.size == 0 or any(v is None for v in value.ravel()):
            return None
        value = value.tolist()
    array = np.asarray(value, dtype=np.float64)
    return array.reshape(shape)


class MTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN (P/R/O-Net weights shipped in the wheel), ``keep_all=True``.

    ``min_score`` filters on MTCNN's face probability (default 0.9); ``min_face_size``, ``thresholds`` and
    ``factor`` are MTCNN's own parameters. ``detect_batch`` runs equal-size images through MTCNN together
    (``batch_size`` at a time); MTCNN cannot batch different sizes.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_score: float = 0.9,
        device: str = "cpu",
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int = 16,
    ) -> None:
        super().__init__(min_score)
        from facenet_pytorch import MTCNN

        self.batch_size = int(batch_size)
        self._mtcnn = MTCNN(
            keep_all=True,
            device=device,
            min_face_size=min_face_size,
            thresholds=list(thresholds),
            factor=factor,
            post_process=False,
            select_largest=False,
        )

    def _detect_many(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        results: list[list[FaceDetection]] = [[] for _ in images]
        for indices in _group_by_shape(images).values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                stacked = np.stack([images[i] for i in chunk])
                boxes, probs, points = self._mtcnn.detect(stacked, landmarks=True)
                for position, index in enumerate(chunk):
                    results[index] = self._to_detections(boxes[position], probs[position], points[position])
        return results

    @staticmethod
    def _to_detections(boxes, probs, points) -> list[FaceDetection]:
        box_array = _as_float_array(boxes, (-1, 4))
        if box_array is None or len(box_array) == 0:
            return []
        prob_array = _as_float_array(probs, (-1,))
        point_array = _as_float_array(points, (-1, 5, 2))
        return [
            FaceDetection(box=box, score=float(prob), landmarks=lm, source="mtcnn")
            for box, prob, lm in zip(box_array, prob_array, point_array, strict=True)
        ]


class _DlibDetector(FaceDetector):
    """Shared landmark step of the dlib detectors: 5-point shape always, 68-point when ``landmarks="68"``."""

    def __init__(self, min_score: float, upsample: int, landmarks: Literal["68", "5"]) -> None:
        super().__init__(min_score)
        if str(landmarks) not in ("68", "5"):
            raise ValueError(f"landmarks must be '68' or '5', got {landmarks!r}")
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.upsample = int(upsample)
        self.landmarks = str(landmarks)
        self._shape5 = DlibShapePredictor(5)
        self._shape68 = DlibShapePredictor(68) if self.landmarks == "68" else None

    def _with_landmarks(self, image: np.ndarray, box: np.ndarray, score: float) -> FaceDetection:
        dlib5 = self._shape5.predict(image, box)
        if self._shape68 is not None:
            points68 = self._shape68.predict(image, box)
            return FaceDetection(
                box=box,
                score=score,
                landmarks=landmarks5_from_dlib68(points68),
                landmarks68=points68,
                dlib5=dlib5,
                source=f"{self.name}+dlib68",
            )
        return FaceDetection(
            box=box,
            score=score,
            landmarks=landmarks5_from_dlib5(dlib5),
            dlib5=dlib5,
            source=f"{self.name}+dlib5",
            mouth_estimated=True,
        )


def _rect_to_box(rect) -> np.ndarray:
    """dlib rectangle (inclusive right/bottom) → ``xyxy`` float64 with exclusive ``x2, y2``."""
    return np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)


class DlibHOGDetector(_DlibDetector):
    """dlib's HOG + linear SVM frontal face detector (``get_frontal_face_detector``).

    ``upsample`` doubles the image that many times first (finds smaller faces, ~3–4× slower per step);
    ``min_score`` is the SVM margin cut-off (dlib's default is 0; 0.5 drops the weak false positives).
    """

    name = "dlib_hog"

    def __init__(
        self, min_score: float = 0.5, upsample: int = 1, landmarks: Literal["68", "5"] = "68"
    ) -> None:
        super().__init__(min_score, upsample, landmarks)
        import dlib

        self._detector = dlib.get_frontal_face_detector()

    def _detect_many(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        results = []
        for image in images:
            rects, scores, _ = self._detector.run(image, self.upsample, min(self.min_score, 0.0))
            results.append(
                [
                    self._with_landmarks(image, _rect_to_box(rect), float(score))
                    for rect, score in zip(rects, scores, strict=True)
                    if score >= self.min_score
                ]
            )
        return results


class DlibMMODDetector(_DlibDetector):
    """dlib's CNN (max-margin object detection) face detector, ``mmod_human_face_detector.dat``.

    **Slow on CPU**: ~2.5 s per 512² image at ``upsample=0`` (measured on a quiet 2-core machine; much more
    under load), ~4× that per upsampling step. Finds faces of ~80 px and up at ``upsample=0``.
    ``detect_batch`` passes equal-size images to dlib together (``batch_size`` at a time).
    """

    name = "dlib_mmod"

    def __init__(
        self,
        min_score: float = 0.0,
        upsample: int = 0,
        landmarks: Literal["68", "5"] = "68",
        batch_size: int = 8,
    ) -> None:
        super().__init__(min_score, upsample, landmarks)
        import dlib

        self.batch_size = int(batch_size)
        self._detector = dlib.cnn_face_detection_model_v1(str(dlib_model_file("mmod")))

    def _detect_many(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        results: list[list[FaceDetection]] = [[] for _ in images]
        for indices in _group_by_shape(images).values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                if len(chunk) == 1:
                    batches = [self._detector(images[chunk[0]], self.upsample)]
                else:
                    batches = self._detector([images[i] for i in chunk], self.upsample, batch_size=len(chunk))
                for index, found in zip(chunk, batches, strict=True):
                    results[index] = [
                        self._with_landmarks(images[index], _rect_to_box(d.rect), float(d.confidence))
                        for d in found
                        if d.confidence >= self.min_score
                    ]
        return results


DETECTORS: dict[str, type[FaceDetector]] = {
    "mtcnn": MTCNNDetector,
    "hog": DlibHOGDetector,
    "mmod": DlibMMODDetector,
}


def build_detector(name: str, **kwargs) -> FaceDetector:
    """A detector by CLI name (``mtcnn``, ``hog``, ``mmod``); ``kwargs`` go to its constructor."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)
