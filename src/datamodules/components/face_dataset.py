"""Datasets over face image files: single images, verification pairs and training triplets.

Pipeline of one image: decode (RGB, errors name the file) → geometry (crop / alignment to ``S``×``S``,
:mod:`~src.datamodules.components.geometry`) → albumentations ``transform`` → resize back to ``S`` if the
transform changed the size → float32 ``[3, S, S]`` in [0, 1]. Geometry comes first so transform parameters
given in pixels refer to the output size and augmentation never runs on a 1024² original.

Unreadable files raise (naming the file) unless ``skip_corrupt``; then they are recorded in the run's
``skipped_files.csv`` and the next readable item takes their place (training only: evaluation sets drop
unreadable files once at set-up, see :func:`readable_mask`, so nothing is scored twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from src.datamodules.components.geometry import BoxCrop, Geometry, resize
from src.datamodules.components.image_io import CorruptImageError, read_image_rgb, record_skipped
from src.datamodules.components.transforms import to_chw_float

SKIP_HINT = "(set data.skip_corrupt=true to skip such files)"


def readable_mask(
    paths: Sequence[Path], skipped: list[dict[str, str]], desc: str = "checking images"
) -> np.ndarray:
    """Decode every file once; unreadable ones are recorded (run log and ``skipped``) and masked out."""
    keep = np.ones(len(paths), dtype=bool)
    for i, path in enumerate(tqdm(paths, desc=desc, leave=False, disable=len(paths) < 500)):
        try:
            read_image_rgb(path)
        except (CorruptImageError, FileNotFoundError) as exc:
            record_skipped(path, str(exc))
            skipped.append({"path": str(path), "reason": str(exc)})
            keep[i] = False
    return keep


class FaceImageDataset(Dataset):
    """Items ``{"image": float32 [3, S, S], "index": int64, "identity": int64 (if labels), **extras}``.

    ``extras`` maps batch keys to per-item arrays (first axis = item), e.g. ``identity_id``, ``attributes``,
    ``landmarks``; they are returned as tensors. ``geometry`` defaults to a plain resize to ``image_size``.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        image_size: int,
        labels: Sequence[int] | np.ndarray | None = None,
        extras: Mapping[str, np.ndarray] | None = None,
        geometry: Geometry | None = None,
        transform: Callable[..., dict[str, Any]] | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        if not len(paths):
            raise ValueError("FaceImageDataset: no image files")
        self.paths = [Path(p) for p in paths]
        self.image_size = int(image_size)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(self.paths):
            raise ValueError(f"FaceImageDataset: {len(self.paths)} paths but {len(self.labels)} labels")
        self.extras = {key: np.asarray(value) for key, value in (extras or {}).items()}
        for key, value in self.extras.items():
            if len(value) != len(self.paths):
                raise ValueError(
                    f"FaceImageDataset: extra '{key}' has {len(value)} rows for {len(self.paths)} files"
                )
        self.geometry = geometry if geometry is not None else BoxCrop(self.image_size)
        self.transform = transform
        self.skip_corrupt = bool(skip_corrupt)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, position: int) -> np.ndarray:
        """The ``uint8 [S, S, 3]`` image at ``position``, transformed (raises if unreadable)."""
        path = self.paths[position]
        try:
            decoded = read_image_rgb(path)
        except (CorruptImageError, FileNotFoundError) as exc:
            exc.filename = str(path)  # so substitutes are recorded under the right file
            raise
        image = self.geometry(decoded, position)
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        if image.shape[:2] != (self.image_size, self.image_size):
            image = resize(image, self.image_size, self.image_size)
        return image

    def item(self, position: int) -> dict[str, torch.Tensor]:
        """The item at ``position`` (no substitution; raises naming the file when it cannot be read)."""
        out = {
            "image": torch.from_numpy(to_chw_float(self.load(position))),
            "index": torch.tensor(position, dtype=torch.long),
        }
        if self.labels is not None:
            out["identity"] = torch.tensor(self.labels[position], dtype=torch.long)
        for key, value in self.extras.items():
            out[key] = torch.as_tensor(value[position])
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = substitute_unreadable(len(self), index, self.item, self.paths_of, self.skip_corrupt)
        item["index"] = torch.tensor(index, dtype=torch.long)
        return item

    def paths_of(self, position: int) -> list[Path]:
        """The files item ``position`` reads."""
        return [self.paths[position]]


def substitute_unreadable(
    length: int,
    index: int,
    load: Callable[[int], dict[str, torch.Tensor]],
    paths_of: Callable[[int], list[Path]],
    skip_corrupt: bool,
) -> dict[str, torch.Tensor]:
    """``load(index)``; with ``skip_corrupt``, unreadable items are recorded and the next one is used."""
    for offset in range(length):
        position = (index + offset) % length
        try:
            return load(position)
        except (CorruptImageError, FileNotFoundError) as exc:
            if not skip_corrupt:
                raise CorruptImageError(f"{exc} {SKIP_HINT}") from exc
            record_skipped(exc.filename or paths_of(position)[0], str(exc))
    raise CorruptImageError(f"no readable item left in the dataset (first file {paths_of(0)[0]})")


class PairDataset(Dataset):
    """Verification pairs over a :class:`FaceImageDataset`: ``image_a``, ``image_b``, ``is_same``, ``fold``.

    Also ``index`` (pair number), ``index_a``/``index_b`` (positions in ``dataset``) and, where the images
    have labels, ``identity_a``/``identity_b``. Evaluation data: no substitution of unreadable images (drop
    such pairs at set-up instead).
    """

    def __init__(
        self,
        dataset: FaceImageDataset,
        index_a: np.ndarray,
        index_b: np.ndarray,
        is_same: np.ndarray,
        fold: np.ndarray,
    ) -> None:
        self.dataset = dataset
        self.index_a = np.asarray(index_a, dtype=np.int64)
        self.index_b = np.asarray(index_b, dtype=np.int64)
        self.is_same = np.asarray(is_same, dtype=bool)
        self.fold = np.asarray(fold, dtype=np.int64)
        if not len(self.index_a):
            raise ValueError("PairDataset: no pairs")

    def __len__(self) -> int:
        return len(self.index_a)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        a, b = int(self.index_a[index]), int(self.index_b[index])
        try:
            item_a, item_b = self.dataset.item(a), self.dataset.item(b)
        except (CorruptImageError, FileNotFoundError) as exc:
            raise CorruptImageError(f"{exc} {SKIP_HINT}") from exc
        out = {
            "image_a": item_a["image"],
            "image_b": item_b["image"],
            "is_same": torch.tensor(bool(self.is_same[index])),
            "fold": torch.tensor(int(self.fold[index]), dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "index_a": torch.tensor(a, dtype=torch.long),
            "index_b": torch.tensor(b, dtype=torch.long),
        }
        if "identity" in item_a:
            out["identity_a"], out["identity_b"] = item_a["identity"], item_b["identity"]
        return out


class TripletDataset(Dataset):
    """Training triplets: ``image``/``identity`` (anchor), ``image_positive``, ``image_negative`` and
    ``identity_negative``.

    Positions refer to ``dataset``; an unreadable image (with ``skip_corrupt``) replaces the whole triplet by
    the next one, so anchor, positive and negative always keep their identity relation.
    """

    def __init__(
        self, dataset: FaceImageDataset, anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray
    ) -> None:
        self.dataset = dataset
        self.anchor = np.asarray(anchor, dtype=np.int64)
        self.positive = np.asarray(positive, dtype=np.int64)
        self.negative = np.asarray(negative, dtype=np.int64)
        if not len(self.anchor):
            raise ValueError("TripletDataset: no triplets")

    def __len__(self) -> int:
        return len(self.anchor)

    def _item(self, position: int) -> dict[str, torch.Tensor]:
        anchor = self.dataset.item(int(self.anchor[position]))
        positive = self.dataset.item(int(self.positive[position]))
        negative = self.dataset.item(int(self.negative[position]))
        out = dict(anchor)
        out["anchor_index"] = out.pop("index")
        out["image_positive"] = positive["image"]
        out["image_negative"] = negative["image"]
        if "identity" in negative:
            out["identity_negative"] = negative["identity"]
        return out

    def _paths(self, position: int) -> list[Path]:
        return [self.dataset.paths[int(i[position])] for i in (self.anchor, self.positive, self.negative)]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = substitute_unreadable(len(self), index, self._item, self._paths, self.dataset.skip_corrupt)
        item["index"] = torch.tensor(index, dtype=torch.long)
        return item
