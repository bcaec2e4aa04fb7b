"""Finding faces in a photo, cutting them out as a method expects, and pasting the results back.

A face region is a square around the detector's box (side = ``crop.scale`` × the box's larger side, shifted
by ``crop.shift`` box heights), cut with edge replication where it leaves the image and resized (antialiased)
to the method's input size. Pasting back resizes the result to the region and blends it in with a feathered
edge, so a protected face has no visible seam; pixels outside every face region are untouched.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from src.face.detection import FaceDetection, FaceDetector, build_detector
from src.inference.methods import FaceCrop

__all__ = ["FaceFinder", "FaceRegion", "crop_faces", "exact_region", "paste_faces", "whole_image_region"]


@dataclass(frozen=True)
class FaceRegion:
    """A face in image pixels: the detector's box and score, and the square region the method sees."""

    #: detector box ``(x0, y0, x1, y1)`` (``x1, y1`` exclusive); the whole image in whole-image mode
    box: tuple[float, float, float, float]
    #: detector confidence (1.0 in whole-image mode)
    score: float
    #: the square cut for the method: left, top, side (integers; may reach outside the image)
    left: int
    top: int
    side: int
    #: five landmarks ``(x, y)`` (eyes, nose, mouth corners) when the detector gave them
    landmarks: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-able: box, score, crop square and landmarks (rounded to 0.1 pixel)."""
        data = asdict(self)
        data["box"] = [round(v, 1) for v in self.box]
        data["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        data["score"] = round(self.score, 4)
        return data


def square_region(detection: FaceDetection, crop: FaceCrop) -> FaceRegion:
    """The square a method with ``crop`` sees around ``detection``."""
    x0, y0, x1, y1 = (float(v) for v in detection.box)
    side = max(1, round(max(x1 - x0, y1 - y0) * crop.scale))
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + crop.shift * (y1 - y0)
    landmarks = tuple((float(x), float(y)) for x, y in np.asarray(detection.landmarks).reshape(-1, 2))
    return FaceRegion(
        (x0, y0, x1, y1), float(detection.score), round(cx - side / 2), round(cy - side / 2), side, landmarks
    )


def whole_image_region(height: int, width: int) -> FaceRegion:
    """The whole image as one face (for images that already are an aligned face crop)."""
    return FaceRegion((0.0, 0.0, float(width), float(height)), 1.0, 0, 0, -1)


def exact_region(region: FaceRegion, height: int, width: int, size: int) -> FaceRegion | None:
    """``region`` made pixel-exact for a method of input side ``size``: a square of ``k × size`` pixels
    (``k`` the integer nearest the region's side / ``size``) with the same centre, moved inside the image.

    Cutting it by ``k × k`` averaging and pasting back by ``k × k`` replication are exact inverses, so a
    reversible method finds its output again, pixel for pixel. None when the image is smaller than ``size``.
    """
    if region.side < 0:  # whole image: the largest centred square
        cx, cy, side = width / 2, height / 2, min(height, width)
    else:
        cx, cy, side = region.left + region.side / 2, region.top + region.side / 2, region.side
    k = min(max(1, round(side / size)), min(height, width) // size)
    if k < 1:
        return None
    side = k * size
    left = int(min(max(round(cx - side / 2), 0), width - side))
    top = int(min(max(round(cy - side / 2), 0), height - side))
    return FaceRegion(region.box, region.score, left, top, side, region.landmarks)


class FaceFinder:
    """A face detector shared by every request (built on first use; one detection at a time)."""

    def __init__(self, detector: str = "mtcnn", min_score: float = 0.9) -> None:
        self.detector_name = detector
        self.min_score = float(min_score)
        self._detector: FaceDetector | None = None
        self._lock = threading.Lock()

    def find(self, image: np.ndarray, crop: FaceCrop) -> list[FaceRegion]:
        """Face regions of ``image`` (uint8 RGB), largest first."""
        with self._lock:
            if self._detector is None:
                self._detector = build_detector(self.detector_name, min_score=self.min_score)
            detections = self._detector.detect(image)
        detections = sorted(detections, key=lambda d: -d.area)
        return [square_region(detection, crop) for detection in detections]


def _cut(image: Tensor, region: FaceRegion) -> Tensor:
    """The region's pixels ``[3, side, side]``, edges replicated where the square leaves the image."""
    _, height, width = image.shape
    left, top, side = region.left, region.top, region.side
    pad = (max(0, -left), max(0, left + side - width), max(0, -top), max(0, top + side - height))
    x0, y0 = max(0, left), max(0, top)
    inside = image[:, y0 : min(height, top + side), x0 : min(width, left + side)]
    if any(pad):
        inside = F.pad(inside[None], pad, mode="replicate")[0]
    return inside


def _resize(image: Tensor, height: int, width: int) -> Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(
        image[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )[0]


def crop_faces(image: Tensor, regions: list[FaceRegion], size: int, exact: bool = False) -> Tensor:
    """``[N, 3, size, size]`` face crops of ``image`` (``[3, H, W]`` in [0, 1]) for ``regions``.

    ``exact``: the regions are :func:`exact_region` squares, reduced by ``k × k`` averaging (antialiased
    bilinear resizing otherwise).
    """
    crops = []
    for region in regions:
        part = image if region.side < 0 else _cut(image, region)
        if exact:
            factor = region.side // size
            crops.append(F.avg_pool2d(part[None], factor)[0] if factor > 1 else part)
        else:
            crops.append(_resize(part, size, size).clamp(0, 1))
    return torch.stack(crops) if crops else image.new_zeros((0, 3, size, size))


def _feather_mask(side: int, feather: float, device: torch.device) -> Tensor:
    """``[side, side]`` weights: 1 inside, falling linearly to 0 over ``feather × side`` at the edges."""
    if feather <= 0:
        return torch.ones(side, side, device=device)
    ramp = max(1.0, feather * side)
    position = torch.arange(side, device=device, dtype=torch.float32) + 0.5
    edge = torch.minimum(position, side - position)
    weight = (edge / ramp).clamp(0, 1)
    return torch.outer(weight, weight)


def paste_faces(
    image: Tensor, faces: Tensor, regions: list[FaceRegion], feather: float, exact: bool = False
) -> Tensor:
    """``image`` with each processed face resized back into its region and blended in (feathered edge).

    ``exact``: the regions are :func:`exact_region` squares; faces are enlarged by pixel replication and
    pasted without feathering, so cutting the region again gives the face back exactly.
    """
    out = image.clone()
    _, height, width = image.shape
    for face, region in zip(faces, regions, strict=True):
        if region.side < 0:
            out = _resize(face, height, width).clamp(0, 1)
            continue
        left, top, side = region.left, region.top, region.side
        if exact:
            factor = side // face.shape[-1]
            patch = face.repeat_interleave(factor, 1).repeat_interleave(factor, 2).clamp(0, 1)
            mask = torch.ones(side, side, device=image.device)
        else:
            patch = _resize(face, side, side).clamp(0, 1)
            mask = _feather_mask(side, feather, image.device)
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, left + side), min(height, top + side)
        if x1 <= x0 or y1 <= y0:
            continue
        sub_patch = patch[:, y0 - top : y1 - top, x0 - left : x1 - left]
        sub_mask = mask[y0 - top : y1 - top, x0 - left : x1 - left]
        target = out[:, y0:y1, x0:x1]
        out[:, y0:y1, x0:x1] = target * (1 - sub_mask) + sub_patch * sub_mask
    return out
