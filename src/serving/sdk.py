"""The Python SDK: load a trained method by name and apply it to photos and videos.

>>> from src.sdk import load
>>> method = load("<method>", ckpt="runs/<experiment>/<run>/checkpoints/best-003.ckpt")
>>> result = method.protect("me.jpg", password="...")[0]
>>> result.save("me_protected.png"); result.privacy
>>> detector = load(ckpt="runs/<detector experiment>/<run>/checkpoints/best-001.ckpt")
>>> detector.detect("clip.mp4").score

Methods are found in the registry (:data:`src.papers.registry.METHODS`); each paper builds its own
face-level method from its checkpoint, and everything else — inputs, face detection, cropping, paste-back,
batching, videos — is done here, the same way for every method. See ``docs/sdk.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from src.inference.checkpoints import open_method_checkpoint
from src.inference.faces import (
    FaceFinder,
    FaceRegion,
    crop_faces,
    exact_region,
    paste_faces,
    whole_image_region,
)
from src.inference.inputs import (
    DEFAULT_LIMITS,
    VIDEO_SUFFIXES,
    InputLimits,
    as_images,
    from_tensor,
    to_tensor,
)
from src.inference.methods import DetectionMethod, NoFaceError, ProtectionMethod, ServedMethod, ServingError
from src.papers.registry import METHODS, MethodEntry, discover, served_targets
from src.serving.results import DetectionResult, FaceScore, ImageResult, VideoResult
from src.serving.video import VideoWriter, probe_video, read_video_frames

__all__ = ["Detector", "Protector", "available_methods", "load", "method_entry"]

FaceMode = Literal["detect", "whole"]
Progress = Callable[[int], None]
FACE_MODES = ("detect", "whole")


def available_methods() -> dict[str, MethodEntry]:
    """Every registered method, by name (sorted)."""
    discover()
    return dict(sorted(METHODS.items()))


def method_entry(name: str) -> MethodEntry:
    """The registered method ``name``; an unknown name lists the known ones."""
    methods = available_methods()
    if name not in methods:
        raise ServingError(f"unknown method '{name}'; methods: {', '.join(methods)}")
    return methods[name]


def _entry_for_checkpoint(target: str | None, path: Path) -> MethodEntry:
    matches = [entry for entry in available_methods().values() if target in served_targets(entry)]
    if len(matches) != 1:
        names = ", ".join(entry.name for entry in matches) or "none"
        raise ServingError(
            f"checkpoint {path} holds a {target or 'unknown'} model; methods serving it: {names}"
            + (": name one" if matches else "")
        )
    return matches[0]


def load(
    name: str | None = None,
    ckpt: str | Path | None = None,
    device: str | torch.device = "cpu",
    *,
    detector: str = "mtcnn",
    min_face_score: float = 0.9,
    limits: InputLimits = DEFAULT_LIMITS,
    batch_size: int = 16,
    **options: Any,
) -> Protector | Detector:
    """A served method: :class:`Protector` for privacy methods, :class:`Detector` for forgery detectors.

    ``name``: a registered method (``available_methods()``); may be left out when ``ckpt`` says which paper
    trained it. ``ckpt``: a checkpoint of a training run of this framework (its embedded config rebuilds the
    networks; only registered targets are built). ``detector``/``min_face_score``: the face detector
    (``mtcnn``, ``hog``, ``mmod``). ``options``: the method's own (``MethodEntry.options``).
    """
    if name is None:
        if ckpt is None:
            raise ServingError("load() needs a method name or a checkpoint (ckpt=...)")
        checkpoint = open_method_checkpoint(ckpt)
        entry = _entry_for_checkpoint(checkpoint.info.model_target, checkpoint.path)
    else:
        entry = method_entry(name)
        if entry.needs_checkpoint and ckpt is None:
            hint = (
                f" (e.g. the best.ckpt of a run of experiment={entry.experiment})" if entry.experiment else ""
            )
            raise ServingError(f"method '{entry.name}' needs a trained checkpoint: ckpt=<file>{hint}")
        if not entry.needs_checkpoint and ckpt is not None:
            raise ServingError(
                f"method '{entry.name}' needs no checkpoint (it is not trained); leave ckpt out"
            )
        checkpoint = open_method_checkpoint(ckpt) if ckpt is not None else None
    method = entry.build(checkpoint, torch.device(device), **options)
    finder = FaceFinder(detector, min_face_score)
    if isinstance(method, ProtectionMethod):
        return Protector(method, finder, limits, batch_size)
    if isinstance(method, DetectionMethod):
        return Detector(method, finder, limits, batch_size)
    raise ServingError(f"method '{entry.name}' built a {type(method).__name__}, not a served method")


@dataclass
class _Prepared:
    """Images with their face regions and crops, ready for the method."""

    images: list[np.ndarray]
    regions: list[list[FaceRegion]]
    crops: Tensor  # all faces of all images, in order
    exact: list[bool]  # per image: pixel-exact squares (see src.inference.faces.exact_region)


class _Served:
    """What protectors and detectors share: face finding, cropping, batching."""

    method: ServedMethod

    def __init__(
        self, method: ServedMethod, finder: FaceFinder, limits: InputLimits, batch_size: int
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.method = method
        self.finder = finder
        self.limits = limits
        self.batch_size = int(batch_size)

    @property
    def name(self) -> str:
        return self.method.name

    def describe(self) -> dict[str, Any]:
        """The method's summary (name, paper, kind, face size, ...)."""
        return self.method.describe()

    def _regions(
        self,
        image: np.ndarray,
        faces: FaceMode,
        source: str,
        given: Sequence[FaceRegion] | None,
        require: bool,
    ) -> list[FaceRegion]:
        if faces not in FACE_MODES:
            raise ServingError(f"faces must be one of {FACE_MODES}, got {faces!r}")
        if given is not None:
            return list(given)
        if faces == "whole":
            return [whole_image_region(*image.shape[:2])]
        regions = self.finder.find(image, self.method.crop)
        if not regions and require:
            raise NoFaceError(f"{source}: no face found (faces='whole' treats the image as one aligned face)")
        return regions

    def _prepare(
        self,
        images: list[np.ndarray],
        sources: list[str],
        faces: FaceMode,
        regions: Sequence[Sequence[FaceRegion]] | None,
        require: bool,
    ) -> _Prepared:
        if regions is not None and len(regions) != len(images):
            raise ServingError(f"regions: {len(regions)} lists for {len(images)} images")
        found = [
            self._regions(image, faces, source, None if regions is None else regions[i], require)
            for i, (image, source) in enumerate(zip(images, sources, strict=True))
        ]
        size = self.method.face_size
        exact = [
            self._exact(image, image_regions) for image, image_regions in zip(images, found, strict=True)
        ]
        found = [regions if fitted is None else fitted for regions, fitted in zip(found, exact, strict=True)]
        crops = [
            crop_faces(to_tensor(image), image_regions, size, exact=fitted is not None)
            for image, image_regions, fitted in zip(images, found, exact, strict=True)
        ]
        return _Prepared(
            images,
            found,
            torch.cat(crops) if crops else torch.zeros(0, 3, size, size),
            [fitted is not None for fitted in exact],
        )

    def _exact(self, image: np.ndarray, regions: list[FaceRegion]) -> list[FaceRegion] | None:
        """The pixel-exact squares of a method that needs them (None: not needed, or the image is smaller
        than the method's input, and the faces are resized instead)."""
        if not getattr(self.method, "pixel_exact", False):
            return None
        fitted = [
            exact_region(region, image.shape[0], image.shape[1], self.method.face_size) for region in regions
        ]
        return None if any(region is None for region in fitted) else fitted  # type: ignore[return-value]

    def _batched(self, crops: Tensor, apply: Callable[[Tensor], Tensor]) -> Tensor:
        outputs = []
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start : start + self.batch_size].to(self.method.device)
            with torch.no_grad():
                outputs.append(apply(batch).detach().float().cpu())
        return torch.cat(outputs) if outputs else crops


def _sources(inputs: Any) -> list[str]:
    if isinstance(inputs, (list, tuple)):
        return [str(x) if isinstance(x, (str, Path)) else f"image {i}" for i, x in enumerate(inputs)]
    if isinstance(inputs, (Tensor, np.ndarray)) and inputs.ndim == 4:
        return [f"image {i}" for i in range(len(inputs))]
    return [str(inputs) if isinstance(inputs, (str, Path)) else "image 0"]


def is_video(value: Any) -> bool:
    """Whether ``value`` is a path to a video file (by its suffix; its content is checked when opened)."""
    return isinstance(value, (str, Path)) and Path(value).suffix.lower() in VIDEO_SUFFIXES


class Protector(_Served):
    """A privacy method applied to whole photos and videos: ``protect`` and, if reversible, ``recover``."""

    method: ProtectionMethod

    @property
    def reversible(self) -> bool:
        return self.method.reversible

    @property
    def needs_password(self) -> bool:
        return self.method.needs_password

    def protect(
        self,
        images: Any,
        password: str | None = None,
        *,
        faces: FaceMode = "detect",
        regions: Sequence[Sequence[FaceRegion]] | None = None,
    ) -> list[ImageResult]:
        """Protect every face of each image; one :class:`ImageResult` per input image.

        ``images``: a path, bytes, PIL image, ``[H, W, 3]`` array or ``[3, H, W]`` tensor, or a list (or a
        ``[B, ...]`` batch) of them. ``faces="whole"`` treats each image as one aligned face (no detection).
        An image without a face is an error (:class:`NoFaceError`) naming it.
        """
        self.method.check_password(password)
        return self._apply(
            images, lambda x: self.method.protect_faces(x, password), "protect", faces, regions
        )

    def recover(
        self,
        images: Any,
        password: str | None = None,
        *,
        faces: FaceMode = "detect",
        regions: Sequence[Sequence[FaceRegion]] | None = None,
    ) -> list[ImageResult]:
        """Recover the original faces of protected images (reversible methods; the same password).

        ``regions``: the faces as :meth:`protect` returned them (``[r.faces for r in results]``): recovery is
        most faithful on exactly the protected squares; without them the faces are detected again.
        """
        if not self.method.reversible:
            self.method.recover_faces(torch.zeros(0))  # raises NotReversibleError naming the method
        self.method.check_password(password)
        return self._apply(
            images, lambda x: self.method.recover_faces(x, password), "recover", faces, regions
        )

    def _apply(
        self,
        inputs: Any,
        apply: Callable[[Tensor], Tensor],
        action: str,
        faces: FaceMode,
        regions: Sequence[Sequence[FaceRegion]] | None,
    ) -> list[ImageResult]:
        images = as_images(inputs, self.limits)
        sources = _sources(inputs)
        prepared = self._prepare(images, sources, faces, regions, require=True)
        outputs = self._batched(prepared.crops, apply)
        results, start = [], 0
        for image, image_regions, source, exact in zip(
            prepared.images, prepared.regions, sources, prepared.exact, strict=True
        ):
            count = len(image_regions)
            pasted = paste_faces(
                to_tensor(image),
                outputs[start : start + count],
                image_regions,
                self.method.crop.feather,
                exact=exact,
            )
            start += count
            record = {
                **self.method.privacy_record(),
                "action": action,
                "faces": count,
                "face_mode": faces,
                "pixel_exact": exact,
            }
            results.append(ImageResult(from_tensor(pasted), image_regions, record, source))
        return results

    def protect_video(
        self,
        source: str | Path,
        target: str | Path,
        password: str | None = None,
        *,
        recover: bool = False,
        faces: FaceMode = "detect",
        progress: Progress | None = None,
    ) -> VideoResult:
        """Protect (or ``recover``) every face of every frame of a video into ``target`` (H.264 MP4).

        Frames without a face are written unchanged and listed in the result's ``frames_without_face``.
        """
        if recover and not self.method.reversible:
            self.method.recover_faces(torch.zeros(0))
        self.method.check_password(password)
        action = self.method.recover_faces if recover else self.method.protect_faces
        _, _, rate = probe_video(source, self.limits)
        result = VideoResult(str(source), 0, output=Path(target))
        with VideoWriter(target, rate) as writer:
            for index, frame in enumerate(read_video_frames(source, self.limits)):
                prepared = self._prepare([frame], [f"{source} frame {index}"], faces, None, require=False)
                if not prepared.regions[0]:
                    result.frames_without_face.append(index)
                    writer.write(frame)
                else:
                    outputs = self._batched(prepared.crops, lambda x: action(x, password))
                    pasted = paste_faces(
                        to_tensor(frame),
                        outputs,
                        prepared.regions[0],
                        self.method.crop.feather,
                        exact=prepared.exact[0],
                    )
                    writer.write(from_tensor(pasted))
                result.frames = index + 1
                if progress is not None:
                    progress(index + 1)
        result.privacy = {
            **self.method.privacy_record(),
            "action": "recover" if recover else "protect",
            # each frame with a face is one release of that face (a DP method's epsilon composes over them)
            "frames": result.frames,
            "frames_with_faces": result.frames - len(result.frames_without_face),
        }
        return result


class Detector(_Served):
    """A forgery detector applied to photos and videos: per-face fake probabilities."""

    method: DetectionMethod

    def detect(
        self, inputs: Any, *, faces: FaceMode = "detect", progress: Progress | None = None
    ) -> list[DetectionResult] | VideoResult:
        """Score every face: a list of :class:`DetectionResult` for images, a :class:`VideoResult` (per-frame
        results and a video score) for a video path. An image without a face gets an empty result."""
        if is_video(inputs):
            return self.detect_video(inputs, faces=faces, progress=progress)
        images = as_images(inputs, self.limits)
        return self._detect_images(images, _sources(inputs), faces)

    def _detect_images(
        self, images: list[np.ndarray], sources: list[str], faces: FaceMode, frame: int | None = None
    ) -> list[DetectionResult]:
        prepared = self._prepare(images, sources, faces, None, require=False)
        scores = self._batched(prepared.crops, self.method.detect_faces).reshape(-1)
        record = self.method.describe()
        results, start = [], 0
        for image_regions, source in zip(prepared.regions, sources, strict=True):
            face_scores = [
                FaceScore(region, float(score))
                for region, score in zip(
                    image_regions, scores[start : start + len(image_regions)], strict=True
                )
            ]
            start += len(image_regions)
            results.append(DetectionResult(face_scores, record, source, frame))
        return results

    def detect_video(
        self, source: str | Path, *, faces: FaceMode = "detect", progress: Progress | None = None
    ) -> VideoResult:
        """Per-frame detections of a video; its score is the mean over frames of the largest face score."""
        result = VideoResult(str(source), 0)
        for index, frame in enumerate(read_video_frames(source, self.limits)):
            detection = self._detect_images([frame], [f"{source} frame {index}"], faces, frame=index)[0]
            if not detection.faces:
                result.frames_without_face.append(index)
            result.detections.append(detection)
            result.frames = index + 1
            if progress is not None:
                progress(index + 1)
        return result


def iter_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths`` (folders walked recursively, sorted)."""
    from src.inference.inputs import iter_media

    return iter_media(Path(p) for p in paths)
