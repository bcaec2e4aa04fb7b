"""What the SDK returns: a protected (or recovered) image with its faces and privacy record, or detection
scores with per-face boxes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from src.inference.faces import FaceRegion
from src.inference.inputs import write_image

__all__ = ["DetectionResult", "FaceScore", "ImageResult", "VideoResult"]


@dataclass
class ImageResult:
    """One protected or recovered image: pixels (``[H, W, 3]`` uint8 RGB), the faces processed, the record."""

    image: np.ndarray
    faces: list[FaceRegion]
    #: the method's privacy record (formal guarantee or none, provenance) plus what this call did
    privacy: dict[str, Any]
    #: the input's name (path or ``image <i>``)
    source: str = ""

    def save(self, path: str | Path) -> Path:
        """Write the image (PNG, or JPEG for ``.jpg``), without any metadata."""
        return write_image(self.image, path)

    def to_pil(self) -> Image.Image:
        """The image as a PIL image (no metadata)."""
        return Image.fromarray(self.image)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no pixels)."""
        return {"source": self.source, "faces": [f.to_dict() for f in self.faces], "privacy": self.privacy}


@dataclass(frozen=True)
class FaceScore:
    """One face of a detection: where it is and how likely it is fake."""

    region: FaceRegion
    fake_probability: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.region.to_dict(), "fake_probability": round(self.fake_probability, 6)}


@dataclass
class DetectionResult:
    """Detection of one image or video frame: per-face fake probabilities (image score: the largest)."""

    faces: list[FaceScore]
    method: dict[str, Any]
    source: str = ""
    frame: int | None = None

    @property
    def score(self) -> float | None:
        """The largest fake probability over the faces (None when no face was found)."""
        return max((face.fake_probability for face in self.faces), default=None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "score": self.score,
            "faces": [f.to_dict() for f in self.faces],
        }
        if self.frame is not None:
            data["frame"] = self.frame
        return data


@dataclass
class VideoResult:
    """A processed video: where it was written (protect/recover) or the per-frame detections (detect)."""

    source: str
    frames: int
    #: frames in which no face was found (kept unchanged when protecting; unscored when detecting)
    frames_without_face: list[int] = field(default_factory=list)
    output: Path | None = None
    detections: list[DetectionResult] = field(default_factory=list)
    privacy: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float | None:
        """Video-level fake score: the mean over frames of each frame's largest face score."""
        scores = [d.score for d in self.detections if d.score is not None]
        return float(np.mean(scores)) if scores else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "frames": self.frames,
            "frames_without_face": self.frames_without_face,
        }
        if self.output is not None:
            data["output"] = str(self.output)
        if self.detections:
            data["score"] = self.score
            data["per_frame"] = [d.to_dict() for d in self.detections]
        if self.privacy:
            data["privacy"] = self.privacy
        return data
