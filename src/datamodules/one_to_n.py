"""1:N identification sets of N identities × 2 images: one query and one gallery image per identity.

Layout (docs/datasets.md, "1:N query/gallery sets"), e.g. the makeup-transfer test release's
``Dataset-test/lfw112x112_500`` (500 LFW identities, 112×112) and ``celeba_500_crop``::

    <root>/<image_dir>/<identity>/<2 image files>

Identities are the folders, in sorted order (label = position). Of the two files of a folder, the
**query** is the one whose file stem ends in the smaller digit (``Name_0001.jpg`` before ``Name_0002.jpg``;
the last digit is the key the original protocol sorts by, ties broken by name) and the other is the
**gallery** image. A model protects (makes up) each query and ranks every gallery image by similarity: the
genuine gallery image has the query's ``identity``, all others are impostors.

Items (one per identity): ``query`` float32 ``[3, S, S]`` and ``gallery`` float32 ``[3, G, G]`` in [0, 1]
(RGB; ``S`` = ``image_size``, ``G`` = ``gallery_size``), ``identity`` (int64 label), ``index``,
``identity_name``, ``query_name`` / ``gallery_name`` (``<identity>/<file>``), ``query_size`` int64 ``[2]``
(original height, width) and, with a ``reference_dir``, the makeup ``reference`` float32 ``[3, S, S]``
assigned to that query (drawn with ``reference_seed``), ``reference_index`` and ``reference_name``.
Evaluation data: val = test, no training split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from src.config.errors import ConfigError
from src.datamodules.base import EvaluationSetDataModule
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.makeup_io import ImageFolder, list_image_folder, load_rgb
from src.utils.seeding import derive_seed

__all__ = ["OneToNDataModule", "QueryGallery", "QueryGalleryDataset", "read_query_gallery"]

LAYOUT = "<root>/<image_dir>/<identity>/<Name>_0001.jpg (query) and <Name>_0002.jpg (gallery)"


@dataclass
class QueryGallery:
    """The identities of a 1:N set (sorted folder names) with their query and gallery files
    (``<identity>/<file>``, relative to ``folder``) and the entries of ``folder`` that are not folders."""

    folder: Path
    identities: list[str]
    queries: list[str]
    galleries: list[str]
    ignored: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.identities)

    def head(self, count: int) -> QueryGallery:
        """The first ``count`` identities."""
        return QueryGallery(
            self.folder, self.identities[:count], self.queries[:count], self.galleries[:count], self.ignored
        )


def _last_digit(folder: Path, name: str) -> int:
    stem = Path(name).stem
    if not stem or not stem[-1].isdigit():
        raise DatasetLayoutError(
            f"cannot tell the query from the gallery image in {folder}: {name} does not end in a number "
            f"(expected {LAYOUT})"
        )
    return int(stem[-1])


def query_and_gallery(files: ImageFolder) -> tuple[str, str]:
    """The (query, gallery) file names of one identity folder of exactly two images."""
    if len(files.names) != 2:
        raise DatasetLayoutError(
            f"1:N identity folder {files.folder} holds {len(files.names)} image(s) "
            f"({', '.join(files.names[:4])}); each identity needs exactly 2: a query and a gallery image"
        )
    first, second = sorted(files.names, key=lambda name: (_last_digit(files.folder, name), name))
    return first, second


def read_query_gallery(folder: Path) -> QueryGallery:
    """Scan ``folder``: one sub-folder per identity, two images each; raises naming the offending path."""
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"1:N image folder not found: {folder} (set datamodule.image_dir). Expected: {LAYOUT}"
        )
    entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    identities, queries, galleries = [], [], []
    for entry in (e for e in entries if e.is_dir()):
        files = list_image_folder(entry, "1:N identity", "image_dir")
        query, gallery = query_and_gallery(files)
        identities.append(entry.name)
        queries.append(f"{entry.name}/{query}")
        galleries.append(f"{entry.name}/{gallery}")
    if len(identities) < 2:
        raise DatasetLayoutError(
            f"1:N image folder {folder} holds {len(identities)} identity folder(s); ranking needs at least 2 "
            f"(expected {LAYOUT})"
        )
    ignored = [entry.name for entry in entries if not entry.is_dir()]
    if ignored:
        logging.getLogger(__name__).warning(
            "1:N image folder %s: %d entries that are not identity folders are not used (e.g. %s)",
            folder,
            len(ignored),
            ", ".join(ignored[:3]),
        )
    return QueryGallery(folder, identities, queries, galleries, ignored)


class QueryGalleryDataset(Dataset):
    """One item per identity: its query and gallery images (and, optionally, an assigned reference)."""

    def __init__(
        self,
        found: QueryGallery,
        image_size: int,
        gallery_size: int,
        references: list[Path] | None = None,
        reference_seed: int = 0,
    ) -> None:
        self.found = found
        self.image_size, self.gallery_size = int(image_size), int(gallery_size)
        self.references = list(references or [])
        self.reference_index = np.asarray(
            [
                int(np.random.default_rng(derive_seed(reference_seed, i)).integers(len(self.references)))
                for i in range(len(found) if self.references else 0)
            ],
            dtype=np.int64,
        )

    def __len__(self) -> int:
        return len(self.found)

    def __getitem__(self, index: int) -> dict[str, Any]:
        found = self.found
        query, (height, width) = load_rgb(found.folder / found.queries[index], self.image_size)
        gallery, _ = load_rgb(found.folder / found.galleries[index], self.gallery_size)
        item: dict[str, Any] = {
            "query": query,
            "gallery": gallery,
            "identity": torch.tensor(index, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "identity_name": found.identities[index],
            "query_name": found.queries[index],
            "gallery_name": found.galleries[index],
            "query_size": torch.tensor([height, width], dtype=torch.long),
        }
        if self.references:
            chosen = int(self.reference_index[index])
            item["reference"] = load_rgb(self.references[chosen], self.image_size)[0]
            item["reference_index"] = torch.tensor(chosen, dtype=torch.long)
            item["reference_name"] = self.references[chosen].name
        return item


class OneToNDataModule(EvaluationSetDataModule):
    """A 1:N query/gallery set (evaluation only: val = test), optionally with makeup references."""

    dataset_name = "one_to_n"
    no_training = "is a 1:N evaluation set (query and gallery); it has no training split"

    def __init__(
        self,
        root: str,
        image_dir: str = "lfw112x112_500",
        image_size: int = 256,
        gallery_size: int = 112,
        reference_dir: str | None = "reference",
        reference_seed: int = 0,
        max_identities: int | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ConfigError(f"datamodule.root must name the folder holding the 1:N set, got {root!r}")
        self.root = Path(str(root)).expanduser()
        for key, value in (("image_size", image_size), ("gallery_size", gallery_size)):
            if int(value) < 8:
                raise ConfigError(f"datamodule.{key} must be >= 8, got {value}")
        if max_identities is not None and int(max_identities) < 2:
            raise ConfigError(f"datamodule.max_identities must be >= 2 or null, got {max_identities}")
        self.image_dir = str(image_dir)
        self.image_size, self.gallery_size = int(image_size), int(gallery_size)
        self.reference_dir = None if reference_dir in (None, "") else str(reference_dir)
        self.reference_seed = int(reference_seed)
        self.max_identities = None if max_identities is None else int(max_identities)
        self.found: QueryGallery | None = None
        self.reference_folder: ImageFolder | None = None
        self.data: QueryGalleryDataset | None = None

    def _path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def check_layout(self) -> None:
        """The root, the image folder and the reference folder (if any) exist (nothing is listed)."""
        super().check_layout()
        folders = [("image_dir", self.image_dir)]
        folders += [("reference_dir", self.reference_dir)] if self.reference_dir else []
        for key, value in folders:
            if not self._path(value).is_dir():
                raise DatasetLayoutError(
                    f"{self.dataset_name}: folder not found: {self._path(value)} (datamodule.{key}). "
                    f"Expected layout: {LAYOUT}"
                )

    def setup(self, stage: str | None = None) -> None:
        """Scan the identity folders, split query / gallery, assign the references."""
        if self.data is not None:
            return
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f"{self.dataset_name}: root not found: {self.root}. Expected layout: {LAYOUT}"
            )
        found = read_query_gallery(self._path(self.image_dir))
        if self.max_identities is not None and self.max_identities < len(found):
            found = found.head(self.max_identities)
        references = None
        if self.reference_dir:
            self.reference_folder = list_image_folder(
                self._path(self.reference_dir), "reference", "reference_dir"
            )
            references = self.reference_folder.paths
        self.found = found
        self.data = QueryGalleryDataset(
            found, self.image_size, self.gallery_size, references, self.reference_seed
        )

    def dataset(self) -> QueryGalleryDataset:
        """One item per identity (query, gallery, identity, ...)."""
        if self.data is None:
            self.setup()
        assert self.data is not None
        return self.data

    def describe(self) -> dict[str, Any]:
        """Folder, identities, sizes, the reference folder and seed."""
        info: dict[str, Any] = {
            "dataset": self.dataset_name,
            "root": str(self.root),
            "image_dir": self.image_dir,
            "image_size": self.image_size,
            "gallery_size": self.gallery_size,
            "max_identities": self.max_identities,
            "reference_seed": self.reference_seed if self.reference_dir else None,
        }
        if self.found is not None:
            info["identities"] = len(self.found)
            if self.found.ignored:
                info["ignored_entries"] = len(self.found.ignored)
                info["ignored_examples"] = self.found.ignored[:5]
        if self.reference_folder is not None:
            info["references"] = self.reference_folder.report()
        return {**info, **super().describe()}
