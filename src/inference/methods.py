"""What a trained method offers to the people who apply it: the face-level interface of every served
method.

A paper serves its method by registering a builder (:func:`src.papers.registry.register_method`) that turns a
checkpoint into one of the classes below. They work on **face tensors**: ``[B, 3, S, S]`` float images in
``[0, 1]``, each a square face crop of side :attr:`ServedMethod.face_size` made the way the method saw faces
in training (:attr:`ServedMethod.crop`). Everything around them is written once for every method: reading
inputs within limits (:mod:`src.inference.inputs`), finding, cutting and pasting back faces
(:mod:`src.inference.faces`), batching and videos (:mod:`src.serving`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "DetectionMethod",
    "FaceCrop",
    "NoFaceError",
    "NotReversibleError",
    "PasswordError",
    "ProtectionMethod",
    "ServedMethod",
    "ServingError",
    "check_options",
    "crop_from_options",
]


class ServingError(ValueError):
    """A request a method cannot serve; the message says what is wrong (shown to the user as it is)."""


class PasswordError(ServingError):
    """A password that is missing, not accepted by the method, or given to a method that takes none."""


class NotReversibleError(ServingError):
    """``recover`` asked of a method whose protection cannot be undone."""


class NoFaceError(ServingError):
    """An image in which the face detector found no face (and whole-image mode was not asked for)."""


@dataclass(frozen=True)
class FaceCrop:
    """How a face is cut out of a photo for the method: a square around the detector's box.

    ``scale``: side of the square / the larger side of the detector box (the margin the method was trained
    with: tight crops ~1.2, CelebA-like crops with hair and chin ~1.8). ``shift``: vertical shift of the
    square's centre, in box heights (negative moves it up, toward the forehead). ``feather``: width of the
    soft edge used when pasting the result back, as a fraction of the crop side (0: a hard edge).
    """

    scale: float = 1.6
    shift: float = 0.0
    feather: float = 0.08

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"FaceCrop.scale must be > 0, got {self.scale}")
        if not 0 <= self.feather < 0.5:
            raise ValueError(f"FaceCrop.feather must be in [0, 0.5), got {self.feather}")


def check_options(name: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse options the method does not take (a misspelt option must not be silently ignored)."""
    allowed = list(allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ServingError(f"method '{name}': unknown option(s) {unknown}; options: {', '.join(allowed)}")


def crop_from_options(name: str, default: FaceCrop, options: Mapping[str, Any]) -> FaceCrop:
    """``default`` with the ``crop_scale`` / ``crop_shift`` options a user gave (bad values: ServingError)."""
    try:
        return FaceCrop(
            scale=float(options.get("crop_scale", default.scale)),
            shift=float(options.get("crop_shift", default.shift)),
            feather=default.feather,
        )
    except (TypeError, ValueError) as exc:
        raise ServingError(f"method '{name}': bad crop option ({exc})") from None


class ServedMethod(ABC):
    """A method ready to apply to face crops: its name, its input size and crop, its record.

    Subclasses set :attr:`name`, :attr:`paper` and :attr:`face_size` (usually from the checkpoint's own
    config) and put their networks on :attr:`device` in eval mode.
    """

    #: ``"protect"`` for privacy methods, ``"detect"`` for forgery detectors
    kind: Literal["protect", "detect"]

    def __init__(
        self,
        name: str,
        paper: str,
        face_size: int,
        *,
        crop: FaceCrop | None = None,
        device: str | torch.device = "cpu",
        description: str = "",
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        if int(face_size) < 8:
            raise ValueError(f"{name}: face_size must be >= 8 pixels, got {face_size}")
        self.name = name
        self.paper = paper
        self.face_size = int(face_size)
        self.crop = crop or FaceCrop()
        self.device = torch.device(device)
        self.description = description
        #: where the weights came from (checkpoint path, experiment, run id, sha256, "reconstructed", ...)
        self.provenance: dict[str, Any] = dict(provenance or {})

    def privacy_record(self) -> dict[str, Any]:
        """What a result of this method guarantees or not (returned with every result); override to add
        the method's own figures (e.g. a differential-privacy ε and whether it is certified)."""
        return {"method": self.name, "paper": self.paper, **self.provenance}

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (the portal's method list and ``python -m src.cli methods``)."""
        return {
            "name": self.name,
            "paper": self.paper,
            "kind": self.kind,
            "face_size": self.face_size,
            "description": self.description,
        }


class ProtectionMethod(ServedMethod):
    """A face-privacy method: protect faces and, when :attr:`reversible`, recover them."""

    kind = "protect"
    #: whether :meth:`recover_faces` can undo :meth:`protect_faces`
    reversible: bool = False
    #: whether protection needs a password (reversible methods key the recovery on it)
    needs_password: bool = False

    @property
    def pixel_exact(self) -> bool:
        """Whether its output must come back pixel for pixel to be undone (default: reversible methods).

        Such methods get faces cut as an integer multiple of :attr:`face_size`, averaged down, and pasted
        back by pixel replication without feathering (:func:`src.inference.faces.exact_region`): recovering
        the same squares of a losslessly saved result gives the method exactly what it produced.
        """
        return self.reversible

    @abstractmethod
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        """Protected faces ``[B, 3, S, S]`` in ``[0, 1]`` (clamped) from ``faces`` of the same shape."""

    def recover_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        """The original faces recovered from protected ones; only reversible methods can."""
        raise NotReversibleError(f"method '{self.name}' is not reversible: its protection cannot be undone")

    def check_password(self, password: str | None) -> None:
        """Refuse a missing password where one is needed, and one given to a method that takes none."""
        if self.needs_password and not password:
            raise PasswordError(f"method '{self.name}' needs a password")
        if password and not self.needs_password:
            raise PasswordError(f"method '{self.name}' takes no password (its protection is not keyed)")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reversible": self.reversible, "needs_password": self.needs_password}


class DetectionMethod(ServedMethod):
    """A forgery detector: the probability that each face is fake."""

    kind = "detect"

    @abstractmethod
    def detect_faces(self, faces: Tensor) -> Tensor:
        """Fake probability in ``[0, 1]`` for each face, shape ``[B]``."""
