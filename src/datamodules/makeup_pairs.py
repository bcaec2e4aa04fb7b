"""Makeup-transfer test pairs: every source face × every makeup reference, from two image folders.

Layout (docs/datasets.md, "Makeup test pairs"): the makeup-transfer test release ``Dataset-test/`` holds
source faces (``CelebA-HQ/``, ``LADN/before/``) and makeup references (``reference/``); any two folders of
face images work. Sources are ordered numerically when every file stem is a number (``2.jpg`` before
``10.jpg``), else by name; references by name. Item ``k`` is source ``k // R`` with reference ``k % R``
(``R`` references), so a model iterates every source with every reference exactly once.

There are no parsing maps in this data (a face parser computes them at test time), so items hold images
only: ``source`` / ``reference`` float32 ``[3, S, S]`` in [0, 1] (RGB), ``source_index`` /
``reference_index`` (positions in the two folders), ``index``, ``source_name`` / ``reference_name`` (file
names, for saving outputs per reference) and ``source_size`` int64 ``[2]`` (the source's original height and
width, to restore its aspect ratio). This is evaluation data: val = test, no training split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from src.config.errors import ConfigError
from src.datamodules.base import EvaluationSetDataModule
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.makeup_io import ImageFolder, list_image_folder, load_rgb

__all__ = ["AllPairs", "MakeupPairsDataModule"]

LAYOUT = "<root>/<source_dir>/*.jpg|png (faces) and <root>/<reference_dir>/*.jpg|png (makeup references)"


class AllPairs(Dataset):
    """Every (source, reference) pair, source-major: item ``k`` = (``k // R``, ``k % R``)."""

    def __init__(self, sources: list[Path], references: list[Path], image_size: int) -> None:
        if not sources or not references:
            raise ValueError("AllPairs: needs at least one source and one reference")
        self.sources, self.references = list(sources), list(references)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.sources) * len(self.references)

    def positions(self, index: int) -> tuple[int, int]:
        """The (source, reference) positions of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"pair {index} of {len(self)}")
        return divmod(index, len(self.references))

    def __getitem__(self, index: int) -> dict[str, Any]:
        source, reference = self.positions(index)
        source_image, (height, width) = load_rgb(self.sources[source], self.image_size)
        reference_image, _ = load_rgb(self.references[reference], self.image_size)
        return {
            "source": source_image,
            "reference": reference_image,
            "source_index": torch.tensor(source, dtype=torch.long),
            "reference_index": torch.tensor(reference, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "source_name": self.sources[source].name,
            "reference_name": self.references[reference].name,
            "source_size": torch.tensor([height, width], dtype=torch.long),
        }


class MakeupPairsDataModule(EvaluationSetDataModule):
    """Sources × references for makeup-transfer evaluation (val = test; no training split)."""

    dataset_name = "makeup_pairs"
    no_training = (
        "is evaluation data (sources x references); train on a makeup-transfer training set "
        "(datamodule=mt_makeup)"
    )

    def __init__(
        self,
        root: str,
        source_dir: str = "CelebA-HQ",
        reference_dir: str = "reference",
        image_size: int = 256,
        max_sources: int | None = None,
        max_references: int | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ConfigError(f"datamodule.root must name the folder holding the test folders, got {root!r}")
        self.root = Path(str(root)).expanduser()
        if int(image_size) < 8:
            raise ConfigError(f"datamodule.image_size must be >= 8, got {image_size}")
        for key, value in (("max_sources", max_sources), ("max_references", max_references)):
            if value is not None and int(value) < 1:
                raise ConfigError(f"datamodule.{key} must be >= 1 or null, got {value}")
        self.source_dir, self.reference_dir = str(source_dir), str(reference_dir)
        self.image_size = int(image_size)
        self.max_sources = None if max_sources is None else int(max_sources)
        self.max_references = None if max_references is None else int(max_references)
        self.folders: dict[str, ImageFolder] = {}
        self.pairs: AllPairs | None = None

    def _folder(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def check_layout(self) -> None:
        """The root and both folders exist (nothing is listed)."""
        super().check_layout()
        for key, value in (("source_dir", self.source_dir), ("reference_dir", self.reference_dir)):
            if not self._folder(value).is_dir():
                raise DatasetLayoutError(
                    f"{self.dataset_name}: {key.split('_')[0]} folder not found: {self._folder(value)} "
                    f"(datamodule.{key}). Expected layout: {LAYOUT}"
                )

    def setup(self, stage: str | None = None) -> None:
        """List both folders (in their fixed orders) and apply the limits."""
        if self.pairs is not None:
            return
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f"{self.dataset_name}: root not found: {self.root}. Expected layout: {LAYOUT}"
            )
        sources = list_image_folder(self._folder(self.source_dir), "source", "source_dir", numeric=True)
        references = list_image_folder(self._folder(self.reference_dir), "reference", "reference_dir")
        self.folders = {"sources": sources, "references": references}
        self.pairs = AllPairs(
            sources.paths[: self.max_sources], references.paths[: self.max_references], self.image_size
        )

    def dataset(self) -> AllPairs:
        """All (source, reference) pairs after the limits."""
        if self.pairs is None:
            self.setup()
        assert self.pairs is not None
        return self.pairs

    def describe(self) -> dict[str, Any]:
        """Folders, images found and used, the limits and the number of pairs."""
        info: dict[str, Any] = {
            "dataset": self.dataset_name,
            "root": str(self.root),
            "image_size": self.image_size,
            "max_sources": self.max_sources,
            "max_references": self.max_references,
        }
        if self.pairs is not None:
            info.update({key: folder.report() for key, folder in self.folders.items()})
            info["sources_used"] = len(self.pairs.sources)
            info["references_used"] = len(self.pairs.references)
            info["pairs"] = len(self.pairs)
        return {**info, **super().describe()}
