"""Images in and out of the serving layer: decoded by content, size-limited, written without metadata.

Inputs may be file paths, encoded bytes, PIL images, NumPy arrays or tensors. Files and bytes are decoded by
what they contain (never by their name): only the formats in :data:`IMAGE_FORMATS` are accepted, the pixel
count is checked from the header before anything is decoded (a "decompression bomb" is refused without being
expanded), and the EXIF orientation is applied so faces are upright. Outputs are re-encoded from pixels alone,
so no EXIF, GPS, ICC or text chunk of the input survives.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from src.inference.methods import ServingError

__all__ = [
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "InputError",
    "InputLimits",
    "as_image",
    "as_images",
    "decode_image",
    "encode_image",
    "from_tensor",
    "to_tensor",
    "write_image",
]

#: formats (as PIL names them from the file's content) accepted as input images
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class InputError(ServingError):
    """An input that cannot be served: unreadable, not an image, corrupt, too large."""


@dataclass(frozen=True)
class InputLimits:
    """Upper bounds on one input (the web portal's defaults; the SDK's are the same unless given)."""

    #: bytes of one uploaded or read file
    max_bytes: int = 25 * 1024 * 1024
    #: pixels (width × height) of one image or video frame
    max_pixels: int = 24_000_000
    #: frames of one video
    max_frames: int = 900
    #: smallest side of an image, in pixels
    min_side: int = 16


DEFAULT_LIMITS = InputLimits()


def decode_image(data: bytes, name: str = "<upload>", limits: InputLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode encoded image bytes to ``[H, W, 3]`` uint8 RGB (EXIF orientation applied), within ``limits``."""
    if len(data) == 0:
        raise InputError(f"{name}: the file is empty")
    if len(data) > limits.max_bytes:
        raise InputError(f"{name}: {len(data):,} bytes is more than the limit of {limits.max_bytes:,} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise InputError(
                    f"{name}: a {image.format} image is not accepted (accepted: {', '.join(IMAGE_FORMATS)})"
                )
            _check_size(image.size, name, limits)
            image.load()
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not an image (the content is no {'/'.join(IMAGE_FORMATS)} file)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{name}: too many pixels to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name}: corrupt image ({exc})") from exc
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()


def _check_size(size: tuple[int, int], name: str, limits: InputLimits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise InputError(
            f"{name}: {width}x{height} = {width * height:,} pixels is more than the limit of "
            f"{limits.max_pixels:,}"
        )
    if min(width, height) < limits.min_side:
        raise InputError(f"{name}: {width}x{height} is smaller than {limits.min_side} pixels on a side")


def read_image_file(path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode an image file (by content) to uint8 RGB; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputError(f"{path}: {size:,} bytes is more than the limit of {limits.max_bytes:,} bytes")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, str(path), limits)


def as_image(value: Any, limits: InputLimits = DEFAULT_LIMITS, name: str = "image") -> np.ndarray:
    """One image as ``[H, W, 3]`` uint8 RGB from a path, bytes, a PIL image, an array or a tensor.

    Arrays: ``[H, W, 3]`` (or ``[H, W]`` grey) uint8, or float in ``[0, 1]``. Tensors: ``[3, H, W]`` float in
    ``[0, 1]`` (or uint8).
    """
    if isinstance(value, (str, Path)):
        return read_image_file(value, limits)
    if isinstance(value, (bytes, bytearray)):
        return decode_image(bytes(value), name, limits)
    if isinstance(value, Image.Image):
        _check_size(value.size, name, limits)
        return np.asarray(value.convert("RGB")).copy()
    if isinstance(value, Tensor):
        if value.ndim != 3 or value.shape[0] not in (1, 3):
            raise InputError(
                f"{name}: a tensor image must be [3, H, W] (or [1, H, W]), got {list(value.shape)}"
            )
        value = value.detach().cpu().expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(value, np.ndarray):
        return _array_image(value, limits, name)
    raise InputError(
        f"{name}: cannot read a {type(value).__name__} as an image (path, bytes, PIL, array, tensor)"
    )


def _array_image(array: np.ndarray, limits: InputLimits, name: str) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(
            f"{name}: an array image must be [H, W, 3] (or [H, W] grey), got {list(array.shape)}"
        )
    array = array[:, :, :3]
    _check_size((array.shape[1], array.shape[0]), name, limits)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InputError(f"{name}: a float image must hold finite values in [0, 1]")
        return np.round(array * 255.0).astype(np.uint8)
    raise InputError(f"{name}: unsupported array dtype {array.dtype} (uint8, or float in [0, 1])")


def as_images(values: Any, limits: InputLimits = DEFAULT_LIMITS) -> list[np.ndarray]:
    """A batch of images: one input, a list/tuple of inputs, a ``[B, 3, H, W]`` tensor or ``[B, H, W, 3]``
    array."""
    if isinstance(values, Tensor) and values.ndim == 4:
        return [as_image(image, limits, f"image {i}") for i, image in enumerate(values)]
    if isinstance(values, np.ndarray) and values.ndim == 4:
        return [as_image(image, limits, f"image {i}") for i, image in enumerate(values)]
    if isinstance(values, (list, tuple)):
        return [as_image(value, limits, _label(value, i)) for i, value in enumerate(values)]
    return [as_image(values, limits, _label(values, 0))]


def _label(value: Any, index: int) -> str:
    return str(value) if isinstance(value, (str, Path)) else f"image {index}"


def to_tensor(image: np.ndarray) -> Tensor:
    """``[H, W, 3]`` uint8 → ``[3, H, W]`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def from_tensor(image: Tensor) -> np.ndarray:
    """``[3, H, W]`` float in ``[0, 1]`` → ``[H, W, 3]`` uint8 (rounded, clamped)."""
    return image.detach().clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()


def encode_image(image: np.ndarray, fmt: str = "PNG", quality: int = 95) -> bytes:
    """Encode pixels only (no EXIF, ICC profile or text chunks) as PNG or JPEG."""
    fmt = fmt.upper().replace("JPG", "JPEG")
    if fmt not in ("PNG", "JPEG"):
        raise InputError(f"output format must be PNG or JPEG, got {fmt}")
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": quality} if fmt == "JPEG" else {}
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def format_for(path: str | Path) -> str:
    """The output format a file name asks for (``.jpg``/``.jpeg`` → JPEG, anything else → PNG)."""
    return "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"


def write_image(image: np.ndarray, path: str | Path) -> Path:
    """Write ``image`` to ``path`` (format by suffix; metadata-free), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(image, format_for(path)))
    return path


def iter_media(paths: Iterable[Path]) -> list[Path]:
    """Image and video files among ``paths`` (folders are walked, sorted); other files are kept too, so the
    caller reports them as failures rather than skipping them silently."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            found.append(path)
    return found
