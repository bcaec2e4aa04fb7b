"""Reading one upload safely: bounded body, one file held in memory, then written only into a scratch
folder made for this request (and removed with it), and recognised by its content, never by its name.

Starlette's own form parsing spools files over 1 MiB to the system's temporary folder; the parser here keeps
the (size-limited) file in memory instead, so an upload never lands outside the request's own folder.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from src.inference.inputs import IMAGE_FORMATS, InputLimits
from src.serving.portal.errors import PortalError

__all__ = [
    "FORM_OVERHEAD",
    "Media",
    "Scratch",
    "Upload",
    "inspect_media",
    "read_upload",
    "safe_name",
    "safe_stem",
]

#: bytes a form may carry besides its file (other fields, part headers, boundaries)
FORM_OVERHEAD = 64 * 1024
#: largest value of a non-file field
MAX_FIELD_BYTES = 16 * 1024
#: containers (PyAV format names) accepted as video uploads
VIDEO_CONTAINERS = ("mov", "mp4", "matroska", "webm", "avi")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class Upload:
    """A parsed upload: its form fields, its file's bytes, and its name reduced to safe characters (to echo
    in messages, and to name the result)."""

    fields: dict[str, str]
    data: bytes
    name: str
    stem: str


@dataclass(frozen=True)
class Media:
    """What an upload turned out to be: an image (PIL format) or a video (container), and its size."""

    kind: str
    format: str
    width: int
    height: int
    frames: int = 1


class _InMemoryParser(MultiPartParser):
    """Starlette's multipart parser, keeping file parts in memory (the body is already size-limited)."""

    def __init__(self, *args: object, spool_bytes: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spool_max_size = spool_bytes


def safe_stem(filename: str | None) -> str:
    """A file name's stem reduced to ``[A-Za-z0-9_-]`` (at most 60 characters), for display and downloads."""
    stem = Path(filename or "").stem
    return _UNSAFE_NAME.sub("_", stem).strip("_")[:60] or "upload"


def safe_name(filename: str | None) -> str:
    """A file name reduced to safe characters (stem and a short suffix), to name the upload in messages."""
    suffix = _UNSAFE_NAME.sub("", Path(filename or "").suffix[1:])[:8]
    return safe_stem(filename) + (f".{suffix}" if suffix else "")


async def _limited(request: Request, max_body: int) -> AsyncIterator[bytes]:
    """The request body, refused with 413 as soon as it passes ``max_body`` bytes."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_body:
            raise PortalError(413, f"the upload is larger than the limit of {max_body:,} bytes")
        yield chunk


async def read_upload(request: Request, limits: InputLimits, fields: tuple[str, ...]) -> Upload:
    """Parse a ``multipart/form-data`` body with one ``file`` part and the named text ``fields``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise PortalError(415, "send the upload as multipart/form-data with a 'file' part")
    max_body = limits.max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise PortalError(
            413,
            f"the upload ({int(declared):,} bytes) is larger than the limit of {limits.max_bytes:,} bytes",
        )
    parser = _InMemoryParser(
        request.headers,
        _limited(request, max_body),
        max_files=1,
        max_fields=len(fields),
        max_part_size=MAX_FIELD_BYTES,
        spool_bytes=max_body + 1,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise PortalError(400, f"malformed upload: {exc.message}") from exc
    except ClientDisconnect as exc:
        raise PortalError(400, "the upload was interrupted") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise PortalError(422, "no file: upload the photo or video as the form field 'file'")
        data = await upload.read()
        values: dict[str, str] = {}
        for key, value in form.multi_items():
            if key == "file":
                continue
            if key not in fields or not isinstance(value, str):
                raise PortalError(
                    422, f"unexpected form field '{key[:40]}' (fields: file, {', '.join(fields)})"
                )
            values[key] = value
    finally:
        await form.close()
    if len(data) > limits.max_bytes:
        raise PortalError(
            413, f"the file ({len(data):,} bytes) is larger than the limit of {limits.max_bytes:,}"
        )
    if not data:
        raise PortalError(422, "the uploaded file is empty")
    return Upload(values, data, safe_name(upload.filename), safe_stem(upload.filename))


class Scratch:
    """A private folder (mode 0700) for one request's files, removed with everything in it."""

    def __init__(self, root: Path | None) -> None:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="lab-portal-", dir=root))

    def write(self, name: str, data: bytes) -> Path:
        path = self.path / name
        path.write_bytes(data)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def inspect_media(path: Path, name: str, limits: InputLimits) -> Media:
    """Recognise an uploaded file by its content (image formats first, then video containers) and check its
    pixel and frame counts against ``limits`` (413) before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt, (width, height) = str(image.format), image.size
    except UnidentifiedImageError:
        return _inspect_video(path, name, limits)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PortalError(413, f"{name}: too many pixels to decode safely") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise PortalError(422, f"{name}: corrupt image ({exc})") from exc
    if fmt not in IMAGE_FORMATS:
        raise PortalError(
            422, f"{name}: a {fmt} image is not accepted (accepted: {', '.join(IMAGE_FORMATS)})"
        )
    _check_pixels(name, width, height, limits)
    return Media("image", fmt, width, height)


def _check_pixels(name: str, width: int, height: int, limits: InputLimits) -> None:
    if width * height > limits.max_pixels:
        raise PortalError(
            413,
            f"{name}: {width}x{height} = {width * height:,} pixels is more than the limit of "
            f"{limits.max_pixels:,}",
        )


def _inspect_video(path: Path, name: str, limits: InputLimits) -> Media:
    import av

    not_media = f"{name}: not an image or a video (accepted: {', '.join(IMAGE_FORMATS)} images; MP4, MOV, "
    not_media += "MKV, WebM, AVI videos)"
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise PortalError(422, not_media) from exc
    try:
        formats = set(container.format.name.split(","))
        if not formats & set(VIDEO_CONTAINERS) or not container.streams.video:
            raise PortalError(422, not_media)
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        frames = int(stream.frames or 0)
    finally:
        container.close()
    _check_pixels(name, width, height, limits)
    if frames > limits.max_frames:
        raise PortalError(413, f"{name}: {frames} frames is more than the limit of {limits.max_frames}")
    return Media("video", container.format.name, width, height, frames)
