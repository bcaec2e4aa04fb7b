"""The work of one request, run on a pool thread: decode the upload, apply the method, encode the result.

Every image leaves through :func:`src.inference.inputs.encode_image` (pixels only: no EXIF, GPS, ICC or text
chunk of the upload survives) and every video through the SDK's MP4 writer (video stream only). Messages
never show the server's scratch paths (they name the upload) and records never carry the password.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.inference.faces import FaceRegion
from src.inference.inputs import decode_image, encode_image
from src.inference.methods import NoFaceError, ServingError
from src.serving.catalog import Catalog
from src.serving.portal.uploads import Media
from src.serving.sdk import Detector, Protector

__all__ = ["Job", "Output", "parse_regions", "run_detect", "run_protect"]

MAX_REGIONS = 64
REDACTED = "[redacted]"
#: a password this long is blanked wherever it appears inside a string; a shorter one only as a whole string
#: (blanking every "e" of a record would make it unreadable while hiding nothing)
MIN_SEARCHED_SECRET = 6


@dataclass
class Job:
    """One request's inputs for the worker (the upload is a file in the request's scratch folder)."""

    method: str
    action: str
    path: Path
    name: str
    media: Media
    scratch: Path
    faces: str = "detect"
    password: str | None = None
    regions: list[FaceRegion] | None = None
    #: the upload's name without its suffix (results are named after it)
    stem: str = "upload"


@dataclass
class Output:
    """A result: the encoded file (None for detection) and its JSON record."""

    record: dict[str, Any]
    data: bytes | None = None
    media_type: str = "application/json"
    filename: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_regions(text: str) -> list[FaceRegion]:
    """Face squares as a protect response lists them (``left``, ``top``, ``side``; ``box``/``score``),
    so recovery works on exactly the protected squares."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ServingError(f"regions: not JSON ({exc})") from exc
    if not isinstance(items, list) or not items or len(items) > MAX_REGIONS:
        raise ServingError(
            f"regions: expected a list of 1 to {MAX_REGIONS} faces as a protect response gives"
        )
    regions = []
    for index, item in enumerate(items):
        try:
            left, top, side = (int(item[key]) for key in ("left", "top", "side"))
            box = tuple(float(v) for v in item.get("box") or (left, top, left + side, top + side))
            score = float(item.get("score", 1.0))
        except (TypeError, KeyError, ValueError) as exc:
            raise ServingError(f"regions[{index}]: needs integer left, top and side ({exc})") from exc
        if len(box) != 4 or not (side >= 1 or side == -1) or max(abs(left), abs(top), side) > 1_000_000:
            raise ServingError(
                f"regions[{index}]: a 4-number box and a side >= 1 (or -1 for the whole image)"
            )
        regions.append(FaceRegion(box, score, left, top, side))  # type: ignore[arg-type]
    return regions


def redact(value: Any, secret: str | None) -> Any:
    """``value`` (a JSON-able record) with every string holding ``secret`` replaced by ``[redacted]``."""
    if not secret:
        return value
    if isinstance(value, str):
        leaked = secret in value if len(secret) >= MIN_SEARCHED_SECRET else value == secret
        return REDACTED if leaked else value
    if isinstance(value, dict):
        return {key: redact(item, secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secret) for item in value]
    return value


def without_paths(value: Any) -> Any:
    """``value`` (a JSON-able record) with absolute file paths cut to their file name: where the server keeps
    its checkpoints says nothing to a user and tells an outsider about the machine."""
    if isinstance(value, str):
        return Path(value).name if value.startswith("/") and "\n" not in value else value
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_paths(item) for item in value]
    return value


def _scrubbed(exc: ServingError, job: Job) -> ServingError:
    """The same error with the scratch paths replaced by the upload's name."""
    message = str(exc).replace(str(job.path), job.name).replace(str(job.scratch), "upload")
    if job.password and len(job.password) >= MIN_SEARCHED_SECRET:
        message = message.replace(job.password, REDACTED)
    try:
        scrubbed = type(exc)(message)
    except TypeError:
        scrubbed = ServingError(message)
    return scrubbed


def _no_face(job: Job) -> NoFaceError:
    return NoFaceError(
        f"{job.name}: no face found. If the whole image is one aligned face, tick 'whole image is one "
        "aligned face' (faces=whole)"
    )


def run_protect(catalog: Catalog, job: Job) -> Output:
    """Protect or recover the faces of an uploaded image or video."""
    try:
        return _protect(catalog, job)
    except NoFaceError:
        raise _no_face(job) from None
    except ServingError as exc:
        raise _scrubbed(exc, job) from exc


def _protect(catalog: Catalog, job: Job) -> Output:
    served = catalog.load(job.method)
    if not isinstance(served, Protector):
        raise ServingError(f"method '{job.method}' is a detector: use /api/detect")
    if job.media.kind == "video":
        if job.regions is not None:
            raise ServingError("regions apply to images only")
        target = job.scratch / "result.mp4"
        video = served.protect_video(
            job.path,
            target,
            job.password,
            recover=job.action == "recover",
            faces=job.faces,  # type: ignore[arg-type]
        )
        record = {
            "kind": "video",
            "action": job.action,
            "method": job.method,
            "source": job.name,
            "width": job.media.width,
            "height": job.media.height,
            "frames": video.frames,
            "frames_without_face": video.frames_without_face,
            "privacy": video.privacy,
        }
        return Output(
            without_paths(redact(record, job.password)),
            target.read_bytes(),
            "video/mp4",
            f"{job.stem}_{job.action}.mp4",
        )
    image = decode_image(job.path.read_bytes(), job.name, served.limits)
    apply = served.recover if job.action == "recover" else served.protect
    regions = None if job.regions is None else [job.regions]
    result = apply(image, job.password, faces=job.faces, regions=regions)[0]  # type: ignore[arg-type]
    fmt = "JPEG" if job.media.format == "JPEG" else "PNG"
    suffix = "jpg" if fmt == "JPEG" else "png"
    record = {
        "kind": "image",
        "action": job.action,
        "method": job.method,
        "source": job.name,
        "width": int(result.image.shape[1]),
        "height": int(result.image.shape[0]),
        "faces": [face.to_dict() for face in result.faces],
        "privacy": result.privacy,
    }
    data = encode_image(result.image, fmt)
    return Output(
        without_paths(redact(record, job.password)),
        data,
        f"image/{fmt.lower()}",
        f"{job.stem}_{job.action}.{suffix}",
    )


def run_detect(catalog: Catalog, job: Job) -> Output:
    """Per-face fake probabilities of an uploaded image, or per-frame ones of a video."""
    try:
        return _detect(catalog, job)
    except ServingError as exc:
        raise _scrubbed(exc, job) from exc


def _detect(catalog: Catalog, job: Job) -> Output:
    served = catalog.load(job.method)
    if not isinstance(served, Detector):
        raise ServingError(f"method '{job.method}' is a protection method: use /api/protect")
    common = {"method": job.method, "source": job.name, "width": job.media.width, "height": job.media.height}
    if job.media.kind == "video":
        video = served.detect_video(job.path, faces=job.faces)  # type: ignore[arg-type]
        data = video.to_dict()
        for frame in data.get("per_frame", []):
            frame.pop("source", None)
        data.pop("output", None)
        return Output({**data, "kind": "video", **common, "score": video.score})
    image = decode_image(job.path.read_bytes(), job.name, served.limits)
    result = served.detect(image, faces=job.faces)[0]  # type: ignore[union-attr,arg-type]
    data = result.to_dict()
    data.update({**common, "kind": "image", "width": int(image.shape[1]), "height": int(image.shape[0])})
    data["detector"] = result.method
    return Output(data)
