"""Per-item geometry before augmentation: fixed crops, bounding-box crops and 5-point face alignment.

Each operation maps a decoded ``uint8 [H, W, 3]`` image (and item position, for per-image boxes or points)
to a square ``[S, S, 3]`` image, and can map points given in source pixels to the output pixels, so
landmarks delivered with a batch stay consistent with the pixels. Templates and procedures follow
docs/datasets.md ("Alignment templates"): the ArcFace 112×112 5-point template and a least-squares
similarity transform (Umeyama, as skimage's ``SimilarityTransform``).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

# ArcFace / insightface 112×112 destination points: image-left eye, image-right eye, nose tip, image-left
# mouth corner, image-right mouth corner (docs/datasets.md, "Alignment templates").
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


class Geometry(Protocol):
    """Maps image ``position`` of a dataset to a square output image of side ``size``."""

    size: int

    def __call__(self, image: np.ndarray, position: int) -> np.ndarray: ...

    def map_points(self, points: np.ndarray, position: int) -> np.ndarray: ...


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear interpolation when enlarging."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1] or height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def crop_padded(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` with zero padding where the box leaves the image."""
    h, w = image.shape[:2]
    out = np.zeros((max(1, y1 - y0), max(1, x1 - x0), image.shape[2]), dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


class BoxCrop:
    """Crop a box ``(x, y, w, h)`` (one for all images, or one per image), optionally enlarged, then resize.

    ``margin`` enlarges the box around its centre (0.3 → 1.3× width and height, VGGFace2's "extended by
    0.3"); ``square`` then grows the shorter side to the longer one so faces keep their aspect ratio.
    ``boxes=None`` uses the whole image (a plain resize to ``size``×``size``).
    """

    def __init__(
        self, size: int, boxes: np.ndarray | None = None, margin: float = 0.0, square: bool = False
    ) -> None:
        self.size = int(size)
        self.boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64)
        if self.boxes is not None and self.boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be (x, y, w, h), got shape {self.boxes.shape}")
        self.margin = float(margin)
        self.square = bool(square)

    def box(self, position: int, image_shape: tuple[int, ...] | None = None) -> tuple[int, int, int, int]:
        """The integer crop box ``(x0, y0, x1, y1)`` of item ``position``."""
        if self.boxes is None:
            if image_shape is None:
                raise ValueError("BoxCrop without boxes needs the image shape")
            return 0, 0, int(image_shape[1]), int(image_shape[0])
        x, y, w, h = self.boxes if self.boxes.ndim == 1 else self.boxes[position]
        cx, cy = x + w / 2.0, y + h / 2.0
        w, h = w * (1.0 + self.margin), h * (1.0 + self.margin)
        if self.square:
            w = h = max(w, h)
        x0, y0 = round(cx - w / 2.0), round(cy - h / 2.0)
        return x0, y0, x0 + max(1, round(w)), y0 + max(1, round(h))

    def __call__(self, image: np.ndarray, position: int) -> np.ndarray:
        x0, y0, x1, y1 = self.box(position, image.shape)
        if (x0, y0, x1, y1) != (0, 0, image.shape[1], image.shape[0]):
            image = crop_padded(image, x0, y0, x1, y1)
        return resize(image, self.size, self.size)

    def map_points(
        self, points: np.ndarray, position: int, image_shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Source-pixel points ``[..., 2]`` in output pixels."""
        x0, y0, x1, y1 = self.box(position, image_shape)
        scale = np.array([self.size / (x1 - x0), self.size / (y1 - y0)])
        return (np.asarray(points, dtype=np.float64) - np.array([x0, y0])) * scale


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 least-squares similarity (rotation, uniform scale, translation) taking ``src`` to ``dst``.

    Umeyama (1991), without reflection — the estimate skimage's ``SimilarityTransform`` computes.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(
            f"similarity_transform needs matching [N>=2, 2] point sets, got {src.shape}, {dst.shape}"
        )
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = (src_c**2).sum() / len(src)
    if variance == 0:
        raise ValueError("similarity_transform: the source points coincide")
    scale = (s * d).sum() / variance
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


class LandmarkAlign:
    """Warp each image so its 5 points land on the ArcFace template scaled to ``size`` (border 0)."""

    def __init__(self, size: int, points: np.ndarray, template: np.ndarray = ARCFACE_112) -> None:
        self.size = int(size)
        self.points = np.asarray(points, dtype=np.float64)
        if self.points.ndim != 3 or self.points.shape[1:] != (5, 2):
            raise ValueError(f"points must be [N, 5, 2], got shape {self.points.shape}")
        self.template = np.asarray(template, dtype=np.float64) * (self.size / 112.0)

    def matrix(self, position: int) -> np.ndarray:
        """The 2×3 warp of item ``position``."""
        return similarity_transform(self.points[position], self.template)

    def __call__(self, image: np.ndarray, position: int) -> np.ndarray:
        return cv2.warpAffine(
            image,
            self.matrix(position),
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def map_points(self, points: np.ndarray, position: int) -> np.ndarray:
        """Source-pixel points ``[..., 2]`` in output pixels."""
        m = self.matrix(position)
        return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]
