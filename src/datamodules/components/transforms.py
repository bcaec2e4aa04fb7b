"""Albumentations pipelines from config: ``[{name: HorizontalFlip, p: 0.5}, ...]`` → ``A.Compose``.

Each entry names a class of the ``albumentations`` namespace and gives its keyword arguments; composition
classes (``OneOf``, ``SomeOf``, ``Sequential``, ...) take their children under ``transforms`` in the same
form. String values ``"cv2.<NAME>"`` (e.g. ``"cv2.BORDER_REFLECT_101"``) become OpenCV constants. Unknown
transform names or arguments raise naming the entry, so a typo in a YAML file never passes silently.

Seeding: the ``Compose`` gets ``seed`` (use :func:`src.utils.seeding.albumentations_seed` of the run seed and
the rank); dataloader workers reseed it per worker and rank through :func:`src.utils.seeding.seed_worker`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np

TRANSFORM_SPLITS = ("train", "val", "test")


def _constant(value: Any, where: str) -> Any:
    """``"cv2.NAME"`` → the OpenCV constant; lists become tuples (albumentations expects ranges as tuples)."""
    if isinstance(value, str) and value.startswith("cv2."):
        name = value[4:]
        if not hasattr(cv2, name):
            raise ValueError(f"{where}: unknown OpenCV constant {value!r}")
        return getattr(cv2, name)
    if isinstance(value, list):
        return tuple(_constant(v, where) for v in value)
    return value


def _accepted_arguments(cls: type) -> set[str] | None:
    """Keyword arguments ``cls`` declares (None when it takes ``**kwargs``)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.name != "self"}


def build_transform(entry: Any, where: str = "transform[0]") -> A.BasicTransform | A.BaseCompose:
    """One albumentations transform from ``{name: ..., **kwargs}`` (or an already built transform)."""
    if isinstance(entry, (A.BasicTransform, A.BaseCompose)):
        return entry
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ValueError(
            f"{where}: each transform must be a mapping with a 'name' key "
            "(e.g. {name: HorizontalFlip, p: 0.5}), "
            f"got {entry!r}"
        )
    name = str(entry["name"])
    cls = getattr(A, name, None)
    if not (isinstance(cls, type) and issubclass(cls, (A.BasicTransform, A.BaseCompose))):
        raise ValueError(f"{where}: unknown albumentations transform {name!r}")
    kwargs = {
        key: _constant(value, f"{where} ({name}.{key})") for key, value in entry.items() if key != "name"
    }
    accepted = _accepted_arguments(cls)
    unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
    if unknown:
        raise ValueError(f"{where}: {name} has no argument(s) {unknown}; it accepts {sorted(accepted or [])}")
    if issubclass(cls, A.BaseCompose):
        children = entry.get("transforms")
        if not isinstance(children, Sequence) or isinstance(children, str) or not children:
            raise ValueError(f"{where}: {name} needs a non-empty 'transforms' list")
        kwargs["transforms"] = [
            build_transform(child, f"{where}.transforms[{i}]") for i, child in enumerate(children)
        ]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot build {name}({kwargs}): {exc}") from exc


def build_albumentations(spec: Sequence[Any] | None, seed: int | None = None) -> A.Compose | None:
    """An ``A.Compose`` of the transforms in ``spec`` seeded with ``seed`` (None for an empty spec)."""
    if spec is None:
        return None
    if isinstance(spec, (str, Mapping)) or not isinstance(spec, Sequence):
        raise ValueError(f"transform must be a list of {{name: ..., ...}} entries, got {spec!r}")
    if not spec:
        return None
    return A.Compose([build_transform(entry, f"transform[{i}]") for i, entry in enumerate(spec)], seed=seed)


def check_transform_splits(splits: Sequence[str]) -> tuple[str, ...]:
    """Validated names of the splits the transform applies to (a subset of train/val/test)."""
    if isinstance(splits, str):
        splits = [splits]
    unknown = sorted(set(splits) - set(TRANSFORM_SPLITS))
    if unknown:
        raise ValueError(
            f"transform_splits: unknown split(s) {unknown}; expected a subset of {TRANSFORM_SPLITS}"
        )
    return tuple(splits)


def to_chw_float(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 (0..255) or float (0..1) to float32 ``[3, H, W]`` in [0, 1].

    Done in numpy, plane by plane: torch's multi-threaded cast stalls in a busy main process.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    out = np.empty((3, image.shape[0], image.shape[1]), dtype=np.float32)
    for c in range(3):
        if image.dtype == np.uint8:
            np.divide(image[..., c], np.float32(255.0), out=out[c])
        else:
            np.clip(image[..., c], 0.0, 1.0, out=out[c])
    return out
