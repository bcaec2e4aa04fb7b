"""ProFace Lab's Python SDK: apply a trained method to photos and videos (``docs/sdk.md``).

>>> from src.sdk import load, available_methods
>>> blur = load("blur")
>>> blur.protect("photo.jpg")[0].save("photo_blurred.png")
"""

from src.inference.faces import FaceRegion
from src.inference.inputs import InputError, InputLimits
from src.inference.methods import (
    FaceCrop,
    NoFaceError,
    NotReversibleError,
    PasswordError,
    ServingError,
)
from src.serving.results import DetectionResult, FaceScore, ImageResult, VideoResult
from src.serving.sdk import Detector, Protector, available_methods, load

__all__ = [
    "DetectionResult",
    "Detector",
    "FaceCrop",
    "FaceRegion",
    "FaceScore",
    "ImageResult",
    "InputError",
    "InputLimits",
    "NoFaceError",
    "NotReversibleError",
    "PasswordError",
    "Protector",
    "ServingError",
    "VideoResult",
    "available_methods",
    "load",
]
