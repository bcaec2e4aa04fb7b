"""A dataset over a list of labelled image files (the building block of file-based DataModules)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from src.datamodules.components.image_io import CorruptImageError, read_image_rgb, record_skipped


class ImageListDataset(Dataset):
    """Items ``{"image": float32 [3, S, S] in [0, 1], "identity": int64, "index": int64}`` from image files.

    Images are resized to ``image_size`` (area interpolation) after the optional albumentations ``transform``.
    An unreadable file raises (naming it) unless ``skip_corrupt``: then it is recorded as skipped and the
    next readable file in the list is returned in its place.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        image_size: int,
        transform: Callable[..., dict[str, Any]] | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"ImageListDataset: {len(paths)} paths but {len(labels)} labels")
        if not paths:
            raise ValueError("ImageListDataset: no image files")
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.image_size = int(image_size)
        self.transform = transform
        self.skip_corrupt = bool(skip_corrupt)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """The image at ``index`` as uint8 RGB at ``image_size``, transform applied."""
        image = read_image_rgb(self.paths[index])
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        if image.shape[:2] != (self.image_size, self.image_size):
            image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        return image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for offset in range(len(self)):
            position = (index + offset) % len(self)
            try:
                image = self.load(position)
            except (CorruptImageError, FileNotFoundError) as exc:
                if not self.skip_corrupt:
                    raise CorruptImageError(f"{exc} (set data.skip_corrupt=true to skip such files)") from exc
                record_skipped(self.paths[position], str(exc))
                continue
            tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
            return {
                "image": tensor,
                "identity": torch.tensor(self.labels[position]),
                "index": torch.tensor(index),
            }
        raise CorruptImageError(f"no readable image left in the dataset (first file {self.paths[0]})")
