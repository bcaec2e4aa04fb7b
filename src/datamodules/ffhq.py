"""FFHQ: 70,000 aligned 1024² PNGs (+ 128² thumbnails), the metadata JSON, and its training/validation split.

Layout (docs/datasets.md, "FFHQ"): ``<root>/ffhq-dataset-v2.json`` and
``<root>/images1024x1024/<shard>/<index>.png`` (shard = index rounded down to 1000, 5 digits; a
``LICENSE.txt`` sits in the image folder) or ``thumbnails128x128/``; flat copies (``00000.png`` ... in one
folder, e.g. the root: ``image_dir: .``) and resized copies (``ffhq256/``) work too — images are found by the
integer file stem, sorted numerically.

Split: the JSON's ``category`` (0–59,999 ``training``, 60,000–69,999 ``validation``); FFHQ has no test split,
so ``test`` is the validation set. Images the JSON lists but the copy lacks are reported once (an error unless
``allow_partial``); images the JSON does not list are ignored and counted. ``metadata_file: null`` splits by
index without the JSON (no landmarks then). The ~255 MB JSON is parsed once per set-up into a compact table,
cached under ``cache_dir`` when one is given (keyed by the JSON's path, size and modification time).

**No identity labels**: batches carry ``image``, ``index``, ``image_id`` (the FFHQ index) and, with
``return_landmarks``, ``landmarks`` (68 × (x, y) in output pixels; NaN where the JSON has none).
``pseudo_identity: true`` adds ``identity`` = one pseudo-identity per image. FFHQ has no pair or triplet lists
(``pairs_file`` / ``triplets_file`` raise): copies re-indexed into identity folders load with
:class:`~src.datamodules.identity_folders.IdentityFoldersDataModule`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from src.datamodules.components.geometry import BoxCrop
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.metadata import FFHQTable, parse_ffhq_json
from src.datamodules.split import SplitFaceDataModule, SplitRecords

VALIDATION_START = 60_000
LAYOUT = (
    "<root>/ffhq-dataset-v2.json and <root>/images1024x1024/00000/00000.png ... (or thumbnails128x128/, or a "
    "flat folder of 00000.png ...)"
)


def scan_indexed_pngs(folder: Path) -> tuple[dict[int, str], int]:
    """Integer stem → relative path of every PNG under ``folder`` (nested or flat); count of other PNGs."""
    found: dict[int, str] = {}
    ignored = 0
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        for name in files:
            if not name.lower().endswith(".png"):
                continue
            stem = name[:-4]
            if not stem.isdigit():
                ignored += 1
                continue
            relative = (Path(directory) / name).relative_to(folder).as_posix()
            if int(stem) in found:
                raise DatasetLayoutError(
                    f"two files for FFHQ image {int(stem)} under {folder}: {found[int(stem)]} and {relative}"
                )
            found[int(stem)] = relative
    return found, ignored


def shard_path(folder: Path, index: int) -> Path:
    """Where FFHQ keeps image ``index``: ``<folder>/<index rounded down to 1000>/<index>.png``."""
    return folder / f"{index - index % 1000:05d}" / f"{index:05d}.png"


class FFHQDataModule(SplitFaceDataModule):
    """FFHQ images (no identity labels) with the official training / validation split."""

    dataset_name = "ffhq"

    def __init__(
        self,
        root: str,
        image_size: int = 256,
        image_dir: str = "images1024x1024",
        metadata_file: str | None = "ffhq-dataset-v2.json",
        return_landmarks: bool = False,
        pseudo_identity: bool = False,
        cache_dir: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        if self.eval_protocol != "images" or self.train_protocol != "images":
            raise ValueError("FFHQ has no identity labels: eval_protocol and train_protocol must be 'images'")
        if self.pairs_files or self.triplets_file:
            raise ValueError(
                "FFHQ has no identity labels, so it takes no pairs_file or triplets_file; a copy re-indexed "
                "into identity folders (<root>/<identity>/<image>.png) loads with "
                "src.datamodules.identity_folders.IdentityFoldersDataModule, which reads both"
            )
        if return_landmarks and not metadata_file:
            raise ValueError(
                "datamodule.return_landmarks needs datamodule.metadata_file (the landmarks are in the JSON)"
            )
        self.image_dir = image_dir
        self.metadata_file = metadata_file
        self.return_landmarks = bool(return_landmarks)
        self.pseudo_identity = bool(pseudo_identity)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._counts: dict[str, Any] = {}

    def read_metadata(self, path: Path) -> FFHQTable:
        """The compact metadata table, from the cache when it matches the JSON file."""
        if not path.is_file():
            raise DatasetLayoutError(
                f"FFHQ metadata file not found: {path} (set datamodule.metadata_file=null to split by image "
                f"index without it). Expected layout: {LAYOUT}"
            )
        if self.cache_dir is None:
            return parse_ffhq_json(path)
        stat = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        cached = self.cache_dir / f"ffhq_metadata_{key}.npz"
        if cached.is_file():
            return FFHQTable.load(cached)
        table = parse_ffhq_json(path)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        table.save(cached)
        return table

    def build_records(self) -> dict[str, SplitRecords]:
        """Scan the image folder, read the JSON, check every listed image exists, split by category."""
        if not self.root.is_dir():
            raise DatasetLayoutError(f"dataset root not found: {self.root}. Expected layout: {LAYOUT}")
        folder = self.root / self.image_dir if self.image_dir not in (".", "") else self.root
        if not folder.is_dir():
            raise DatasetLayoutError(f"FFHQ image folder not found: {folder}. Expected layout: {LAYOUT}")
        found, ignored = scan_indexed_pngs(folder)
        if not found:
            raise DatasetLayoutError(f"no <index>.png image under {folder}. Expected layout: {LAYOUT}")
        if self.metadata_file:
            json_path = self.root / self.metadata_file
            table = self.read_metadata(json_path)
            missing = [int(i) for i in table.index if int(i) not in found]
            for i in missing:  # where the JSON's layout keeps it
                found[i] = shard_path(folder, i).relative_to(folder).as_posix()
            self.note_missing(json_path, folder, [found[i] for i in missing])
            indices, category = table.index, table.category
            self._counts["metadata_file"] = str(json_path)
            self._counts["images_not_in_metadata"] = len(found) - len(indices)
        else:
            indices = np.asarray(sorted(found), dtype=np.int64)
            category = (indices >= VALIDATION_START).astype(np.uint8)
            table = None
            self._counts["metadata_file"] = None
        self._counts.update({"image_folder": str(folder), "non_index_pngs_ignored": ignored, "identities": 0})
        extras: dict[str, np.ndarray] = {"image_id": indices}
        if self.return_landmarks and table is not None:
            scale = self.image_size / table.pixel_size.astype(np.float32)
            extras["landmarks"] = (table.landmarks * scale[:, None, :]).astype(np.float32)
        geometry = BoxCrop(self.image_size)
        records = {}
        for code, split in ((0, "train"), (1, "val")):
            index = np.flatnonzero(category == code)
            if not len(index):
                continue
            split_extras = {k: v[index] for k, v in extras.items()}
            labels = np.arange(len(index), dtype=np.int64) if self.pseudo_identity else None
            if labels is not None:
                split_extras["identity_id"] = indices[index]
            names = [found[int(i)] for i in indices[index]]
            records[split] = SplitRecords(folder, names, labels, split_extras, geometry)
        if "val" in records:
            records["test"] = records["val"]  # FFHQ has no test split
        return records

    def layout_info(self) -> dict[str, Any]:
        """Folder, metadata file, ignored files; the note that FFHQ has no identities and no test split."""
        return {
            **self._counts,
            "identity_labels": "pseudo (one per image)" if self.pseudo_identity else "none",
            "test_split": "validation (FFHQ has no test split)",
            "return_landmarks": self.return_landmarks,
        }
