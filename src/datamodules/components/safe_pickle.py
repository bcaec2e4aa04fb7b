"""Reading face-verification ``.bin`` files (the face.evoLVe / insightface format) without running their code.

A ``.bin`` file is a pickle of ``(bins, issame_list)``: ``bins`` holds 2N encoded images (JPEG/PNG ``bytes``,
or 1-D ``uint8`` arrays of those bytes), images ``2i`` and ``2i + 1`` form pair ``i``; ``issame_list`` holds N
booleans. A pickle can call any importable function while it loads, so these files (downloaded from third
parties) are never read with plain ``pickle.load``: :class:`RestrictedUnpickler` lets through only what the
format needs — bytes, lists, tuples, booleans and NumPy arrays (the few NumPy globals that rebuild an
``ndarray``, a ``dtype`` without Python objects, or a scalar) — and refuses every other global and every
persistent id with an error naming the file and the global. What loads is then checked against the format
(:func:`load_verification_bin`). See docs/datasets.md, "Verification sets (.bin)".
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.metadata import MetadataFormatError

try:  # NumPy >= 2 (the project's); files written under NumPy 1 name numpy.core, mapped to the same objects
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

__all__ = [
    "ALLOWED_GLOBALS",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "VerificationBin",
    "VerificationBinError",
    "decode_bin_image",
    "kfold_ids",
    "load_verification_bin",
    "restricted_load",
]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for a global (or persistent id) outside the ``.bin`` format's allow-list."""


class VerificationBinError(MetadataFormatError):
    """A ``.bin`` file that cannot be read or does not have the ``(bins, issame_list)`` structure."""


class _RefusedError(Exception):
    """Raised by the allow-listed wrappers when their arguments are outside the format (becomes
    :class:`UnsafePickleError` naming the file)."""


class _NdarrayType:
    """Stands in for ``numpy.ndarray`` in a pickle: accepted only as ``_reconstruct``'s first argument, so
    the class itself cannot be called (``ndarray(shape)`` would allocate whatever a file asks for)."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayType()


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` without Python objects (an object array would unpickle arbitrary items)."""
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.hasobject:
        raise _RefusedError(f"numpy.dtype {dtype} (a dtype holding Python objects)")
    return dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` of a plain ``ndarray`` (NumPy pickles, protocol < 5)."""
    if subtype is not _NDARRAY:
        raise _RefusedError(f"_reconstruct of {subtype!r} (only numpy.ndarray)")
    return _multiarray._reconstruct(np.ndarray, shape, dtype)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer`` (how NumPy pickles with protocol 5), on an in-band buffer."""
    if not isinstance(buffer, bytes | bytearray) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _RefusedError("numpy _frombuffer of anything but bytes and a plain dtype")
    return _numeric._frombuffer(buffer, dtype, shape, order)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` (a NumPy scalar such as ``numpy.bool_``) of a plain dtype."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise _RefusedError("numpy scalar of anything but a plain dtype and bytes")
    return _multiarray.scalar(dtype, data)


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode(str, 'latin1')``: how Python 3 pickles ``bytes`` with protocol 2 (only that)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _RefusedError(f"_codecs.encode with encoding {encoding!r} (only latin1 of a str)")
    return text.encode("latin1")


def _bytes(*args: Any) -> bytes:
    """``bytes()`` / ``bytes(b"...")`` as protocol-2 pickles write empty bytes (never ``bytes(huge int)``)."""
    if len(args) > 1 or (args and not isinstance(args[0], bytes | bytearray)):
        raise _RefusedError("bytes() of anything but bytes")
    return bytes(args[0]) if args else b""


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    **{(f"{m}.multiarray", "_reconstruct"): _reconstruct for m in ("numpy.core", "numpy._core")},
    **{(f"{m}.multiarray", "scalar"): _scalar for m in ("numpy.core", "numpy._core")},
    **{(f"{m}.numeric", "_frombuffer"): _frombuffer for m in ("numpy.core", "numpy._core")},
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "bytes"): _bytes,
    ("__builtin__", "bytes"): _bytes,
}
"""Every global a ``.bin`` pickle may name, mapped to the (argument-checking) callable it gets instead."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds bytes, lists, tuples, booleans, numbers, strings and NumPy arrays.

    Any other global (``os.system``, ``builtins.eval``, any class) and any persistent id raise
    :class:`UnsafePickleError` naming ``path`` and the global before anything is called.
    """

    def __init__(self, file: Any, path: Path | str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.path = Path(path)

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed stand-in for ``module.name``; anything else is refused."""
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self.path}: refused to load the global {module}.{name} (a .bin file may only hold bytes, "
                "lists, tuples, booleans and NumPy arrays; this file is not a plain verification set and "
                "may run code if unpickled normally)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids are not part of the format."""
        raise UnsafePickleError(f"{self.path}: refused a persistent id {pid!r} (not part of the .bin format)")


def restricted_load(path: Path | str) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``encoding='bytes'``, as insightface reads).

    Raises :class:`UnsafePickleError` for a refused global and :class:`VerificationBinError` (one line,
    naming the file) for a truncated or corrupt file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            unpickler = RestrictedUnpickler(handle, path, encoding="bytes")
            try:
                return unpickler.load()
            except _RefusedError as exc:
                raise UnsafePickleError(f"{path}: refused {exc} (not part of the .bin format)") from None
    except UnsafePickleError:
        raise
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as exc:
        detail = " ".join(str(exc).split()) or "unexpected end of data"
        raise VerificationBinError(
            f"{path}: cannot read this .bin file (truncated or corrupt?): {type(exc).__name__}: {detail}"
        ) from None


def kfold_ids(count: int, folds: int) -> np.ndarray:
    """Fold id of each of ``count`` pairs: ``folds`` consecutive folds as ``KFold(folds, shuffle=False)``."""
    sizes = np.full(folds, count // folds, dtype=np.int64)
    sizes[: count % folds] += 1
    return np.repeat(np.arange(folds, dtype=np.int64), sizes)


@dataclass(frozen=True)
class VerificationBin:
    """A loaded ``.bin`` set: ``images`` (2N encoded images, pair ``i`` = images ``2i``, ``2i + 1``),
    ``is_same`` (bool ``[N]``) and ``fold`` (int64 ``[N]``, consecutive equal folds)."""

    path: Path
    images: list[bytes | np.ndarray]
    is_same: np.ndarray
    fold: np.ndarray

    def __len__(self) -> int:
        return len(self.is_same)

    def decode(self, index: int) -> np.ndarray:
        """Image ``index`` (0..2N-1) as ``uint8 [H, W, 3]`` RGB."""
        return decode_bin_image(self.images[index], self.path, index)


def decode_bin_image(data: bytes | np.ndarray, path: Path, index: int) -> np.ndarray:
    """Decode one encoded image with OpenCV to ``uint8 [H, W, 3]`` **RGB**; raises naming file and index."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise CorruptImageError(
            f"{path}: image {index} (pair {index // 2}) cannot be decoded (corrupt or not a JPEG/PNG)"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _check_structure(path: Path, loaded: Any) -> tuple[list[bytes | np.ndarray], np.ndarray]:
    """The images and match flags of a loaded ``.bin``; any other structure raises naming the file."""
    if not isinstance(loaded, tuple | list) or len(loaded) != 2:
        kind = f"a {len(loaded)}-item {type(loaded).__name__}" if isinstance(loaded, tuple | list) else None
        raise VerificationBinError(
            f"{path}: expected a pickled (bins, issame_list) pair, got {kind or type(loaded).__name__}"
        )
    bins, issame = loaded
    if not isinstance(bins, list | tuple):
        raise VerificationBinError(
            f"{path}: bins must be a list of encoded images, got {type(bins).__name__}"
        )
    images: list[bytes | np.ndarray] = []
    for i, item in enumerate(bins):
        if isinstance(item, bytes | bytearray):
            images.append(bytes(item))
        elif isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype == np.uint8:
            images.append(item)
        else:
            what = (
                f"a {item.ndim}-D {item.dtype} array" if isinstance(item, np.ndarray) else type(item).__name__
            )
            raise VerificationBinError(
                f"{path}: bins[{i}] must be encoded image bytes or a 1-D uint8 array, got {what}"
            )
    if isinstance(issame, np.ndarray):
        if issame.ndim != 1 or issame.dtype != np.bool_:
            raise VerificationBinError(
                f"{path}: issame_list must be a 1-D bool array, got a {issame.ndim}-D {issame.dtype} array"
            )
        flags = issame.copy()
    elif isinstance(issame, list | tuple):
        bad = next((i for i, v in enumerate(issame) if not _is_bool(v)), None)
        if bad is not None:
            raise VerificationBinError(
                f"{path}: issame_list[{bad}] must be a boolean, got {type(issame[bad]).__name__}"
            )
        flags = np.asarray([bool(v) for v in issame], dtype=bool)
    else:
        raise VerificationBinError(
            f"{path}: issame_list must be a list of booleans, got {type(issame).__name__}"
        )
    return images, flags


def load_verification_bin(path: Path | str, folds: int = 10) -> VerificationBin:
    """Load and validate a ``.bin`` verification set safely (:func:`restricted_load`), with fold ids.

    Errors name the file: a refused global, a truncated file, a wrong structure, ``len(bins) != 2 *
    len(issame_list)`` (both lengths), no pairs, or a pair count that ``folds`` does not divide.
    """
    path = Path(path)
    if int(folds) < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    images, flags = _check_structure(path, restricted_load(path))
    if len(images) != 2 * len(flags):
        raise VerificationBinError(
            f"{path}: {len(images)} images for {len(flags)} issame flags; a .bin file needs exactly two "
            f"images per pair (len(bins) == 2 * len(issame_list), i.e. {2 * len(flags)})"
        )
    if not len(flags):
        raise VerificationBinError(f"{path}: the file holds no pairs")
    if len(flags) % int(folds):
        raise VerificationBinError(
            f"{path}: {len(flags)} pairs cannot be cut into {folds} equal folds (the verification protocol "
            "needs a pair count divisible by datamodule.folds)"
        )
    return VerificationBin(path, images, flags, kfold_ids(len(flags), int(folds)))
