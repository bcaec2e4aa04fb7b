"""Any face set laid out as one folder per identity: ``<root>/<identity>/<image>.{jpg,png,...}``.

Identities are split identity-disjointly (train / val / test) by a seeded shuffle of the sorted folder
names, so the split is reproducible and independent of file-system order. This is the layout of LFW's
``lfw/`` folder, VGGFace2's ``train``/``test`` folders and most aligned face sets, and of a user's own data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from src.datamodules.base import FaceDataModule
from src.datamodules.components.image_io import CorruptImageError, read_image_rgb, record_skipped
from src.datamodules.components.image_list import ImageListDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LAYOUT = "<root>/<identity>/<image>.jpg (one folder per identity, images inside)"


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder that does not have the expected layout."""


def scan_identity_folders(root: Path, min_images: int) -> dict[str, list[Path]]:
    """Identity name → sorted image paths; errors name the root and the expected layout."""
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset root not found: {root}. Expected layout: {LAYOUT}")
    identities: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if len(images) >= min_images:
            identities[folder.name] = images
    if not identities:
        raise DatasetLayoutError(
            f"no identity folder with at least {min_images} images under {root}. Expected layout: {LAYOUT}"
        )
    return identities


class IdentityFoldersDataModule(FaceDataModule):
    """Face images in identity folders, with identity-disjoint train/val/test splits.

    ``val_identities``/``test_identities`` are counts; identities with fewer than ``min_images_per_identity``
    images are left out (and counted in ``describe()``). With ``skip_corrupt`` every validation/test image
    is decoded once at set-up and unreadable ones are removed and recorded, so evaluation never counts a
    substitute twice; unreadable training images are recorded and replaced by the next readable one.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        val_identities: int = 0,
        test_identities: int = 0,
        min_images_per_identity: int = 2,
        split_seed: int = 0,
        skip_corrupt: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.root = Path(root).expanduser()
        self.image_size = int(image_size)
        self.val_identities, self.test_identities = int(val_identities), int(test_identities)
        self.min_images = int(min_images_per_identity)
        self.split_seed = int(split_seed)
        self.skip_corrupt = bool(skip_corrupt)
        self.splits: dict[str, dict[str, list[Path]]] = {}
        self.datasets: dict[str, ImageListDataset] = {}
        self.excluded_identities = 0

    def _split(self, identities: dict[str, list[Path]]) -> dict[str, dict[str, list[Path]]]:
        names = sorted(identities)
        needed = self.val_identities + self.test_identities
        if needed >= len(names):
            raise ValueError(
                f"{self.root}: {len(names)} identities cannot give {self.val_identities} validation and "
                f"{self.test_identities} test identities and still leave training identities"
            )
        order = np.random.default_rng(self.split_seed).permutation(len(names))
        shuffled = [names[i] for i in order]
        test = shuffled[: self.test_identities]
        val = shuffled[self.test_identities : needed]
        train = shuffled[needed:]
        return {
            split: {n: identities[n] for n in sorted(group)}
            for split, group in [("train", train), ("val", val), ("test", test)]
        }

    def _verified(self, files: list[tuple[Path, int]], split: str) -> list[tuple[Path, int]]:
        """Decode every file once; drop and record unreadable ones (only with ``skip_corrupt``)."""
        readable = []
        for path, label in tqdm(
            files, desc=f"checking {split} images", leave=False, disable=len(files) < 500
        ):
            try:
                read_image_rgb(path)
            except CorruptImageError as exc:
                record_skipped(path, str(exc))
                self.skipped_files.append({"path": str(path), "reason": str(exc)})
                continue
            readable.append((path, label))
        return readable

    def setup(self, stage: str | None = None) -> None:
        """Scan the root, split identities and build the datasets (once)."""
        if self.datasets:
            return
        scanned = scan_identity_folders(self.root, 1)
        all_identities = {n: p for n, p in scanned.items() if len(p) >= self.min_images}
        self.excluded_identities = len(scanned) - len(all_identities)
        if not all_identities:
            raise DatasetLayoutError(f"no identity under {self.root} has {self.min_images} or more images")
        self.splits = self._split(all_identities)
        for split, identities in self.splits.items():
            files = [(path, label) for label, name in enumerate(identities) for path in identities[name]]
            if split != "train" and self.skip_corrupt:
                files = self._verified(files, split)
            if files:
                paths, labels = zip(*files, strict=True)
                self.datasets[split] = ImageListDataset(
                    paths, labels, self.image_size, None, self.skip_corrupt
                )

    @property
    def num_classes(self) -> int:
        """Number of training identities (for classification heads)."""
        return len(self.splits.get("train", {}))

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            raise ValueError(f"{self.root}: the {split} split is empty (set datamodule.{split}_identities)")
        return self.make_loader(self.datasets[split], train=train)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def describe(self) -> dict[str, Any]:
        """Identities and images per split, identities left out, skipped files."""
        info: dict[str, Any] = {
            "dataset": "identity_folders",
            "root": str(self.root),
            "image_size": self.image_size,
        }
        for split, identities in self.splits.items():
            info[f"{split}_identities"] = len(identities)
            info[f"{split}_images"] = len(self.datasets[split]) if split in self.datasets else 0
        info["excluded_identities_below_min_images"] = self.excluded_identities
        return {**info, **super().describe()}
