"""MT-Dataset (BeautyGAN's makeup-transfer set): random (non-makeup source, makeup reference) training pairs.

Layout as downloaded (docs/datasets.md, "MT-Dataset (makeup transfer)")::

    <root>/makeup.txt                       one image name per line, e.g. makeup/vFG112.png
    <root>/non-makeup.txt                   e.g. non-makeup/vSYYZ306.png
    <root>/images/makeup/*.png              the faces
    <root>/images/non-makeup/*.png
    <root>/segs/makeup/*.png                one label map per image, same relative name, one channel of
    <root>/segs/non-makeup/*.png            face-parsing class ids
    <root>/test_target_image/...            target-identity photos (load with ``load_target``)

A listed name is relative to ``images/`` (and ``segs/``); a bare file name is taken in its list's folder
(``makeup/`` or ``non-makeup/``). Makeup-transfer training has no fixed pairing: an epoch holds as many
items as there are non-makeup images and each item draws its pair from a generator seeded by
(``pair_seed``, run seed, epoch, item), so an epoch repeats exactly on rerun and resume, and ranks and
workers never share draws. ``pairing: random`` draws both images (with replacement), ``each_source`` visits
every non-makeup image once per epoch with a random reference. Validation and test use one fixed set of
``eval_pairs`` distinct pairs drawn with ``eval_seed`` (from the same images: the set has no official split).

Items: ``source`` / ``reference`` float32 ``[3, S, S]`` in [0, 1] (RGB), ``source_labels`` /
``reference_labels`` int64 ``[S, S]`` (label ids, nearest-neighbour resized), ``source_index`` /
``reference_index`` (positions in the non-makeup / makeup lists), ``index``, ``source_name`` /
``reference_name``.
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.config.errors import ConfigError
from src.datamodules.base import FaceDataModule
from src.datamodules.components.layout import DatasetLayoutError, MissingFiles
from src.datamodules.components.makeup_io import load_label_map, load_rgb, load_target_image
from src.datamodules.components.metadata import MetadataFormatError, file_sha256, read_lines
from src.utils.seeding import derive_seed

__all__ = [
    "PAIRINGS",
    "FixedPairs",
    "MTMakeupDataModule",
    "MakeupPairReader",
    "RandomPairs",
    "read_name_list",
]

LAYOUT = (
    "<root>/makeup.txt, <root>/non-makeup.txt, <root>/images/{makeup,non-makeup}/<name>.png and "
    "<root>/segs/{makeup,non-makeup}/<name>.png"
)
PAIRINGS = ("random", "each_source")


def read_name_list(path: Path, folder: str) -> list[str]:
    """The image names of an MT list file, relative to ``images/``; bad lines raise naming file and line.

    ``folder`` (``makeup`` or ``non-makeup``) is prefixed to bare file names.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"MT-Dataset list not found: {path}. Expected layout: {LAYOUT}")
    names: list[str] = []
    first: dict[str, int] = {}
    for number, text in read_lines(path):
        if len(text.split()) != 1:
            raise MetadataFormatError(f"{path}:{number}: expected one image name per line, got {text!r}")
        token = text.replace("\\", "/")
        if token.startswith("/") or ".." in token.split("/"):
            raise MetadataFormatError(
                f"{path}:{number}: image name {text!r} must be relative to the images/ folder"
            )
        name = posixpath.normpath(token if "/" in token else f"{folder}/{token}")
        if name in first:
            raise MetadataFormatError(
                f"{path}:{number}: image {name} is listed twice (first on line {first[name]})"
            )
        first[name] = number
        names.append(name)
    if not names:
        raise MetadataFormatError(f"{path}: the list names no image")
    return names


class MakeupPairReader:
    """Loads one (non-makeup source, makeup reference) pair: both images and both label maps."""

    def __init__(
        self,
        image_root: Path,
        seg_root: Path,
        sources: list[str],
        references: list[str],
        image_size: int,
        num_labels: int,
    ) -> None:
        self.image_root, self.seg_root = image_root, seg_root
        self.sources, self.references = sources, references
        self.image_size, self.num_labels = int(image_size), int(num_labels)

    def _side(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        image, shape = load_rgb(self.image_root / name, self.image_size)
        labels = load_label_map(self.seg_root / name, self.image_size, self.num_labels, shape)
        return image, labels

    def pair(self, source: int, reference: int, index: int) -> dict[str, Any]:
        """The item for non-makeup image ``source`` and makeup image ``reference``."""
        source_name, reference_name = self.sources[source], self.references[reference]
        source_image, source_labels = self._side(source_name)
        reference_image, reference_labels = self._side(reference_name)
        return {
            "source": source_image,
            "reference": reference_image,
            "source_labels": source_labels,
            "reference_labels": reference_labels,
            "source_index": torch.tensor(source, dtype=torch.long),
            "reference_index": torch.tensor(reference, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "source_name": source_name,
            "reference_name": reference_name,
        }


class RandomPairs(Dataset):
    """Training items: ``len(sources)`` per epoch, each pair drawn from its own seed (module docstring).

    The training loader calls :meth:`set_random_seed` before each item with a seed of (``seed``, run seed,
    epoch, item); without that call item ``i`` draws from ``(seed, i)``.
    """

    def __init__(self, reader: MakeupPairReader, seed: int, pairing: str = "random") -> None:
        if pairing not in PAIRINGS:
            raise ConfigError(f"datamodule.pairing must be one of {PAIRINGS}, got {pairing!r}")
        self.reader, self.seed, self.pairing = reader, int(seed), pairing
        self._sample_seed: int | None = None

    def __len__(self) -> int:
        return len(self.reader.sources)

    def set_random_seed(self, seed: int) -> None:
        """Seed of the next item only."""
        self._sample_seed = int(seed)

    def draw(self, index: int, seed: int) -> tuple[int, int]:
        """The (source, reference) positions item ``index`` gets from ``seed``."""
        rng = np.random.default_rng(seed)
        reference = int(rng.integers(len(self.reader.references)))
        source = index if self.pairing == "each_source" else int(rng.integers(len(self.reader.sources)))
        return source, reference

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed, self._sample_seed = self._sample_seed, None
        source, reference = self.draw(index, derive_seed(self.seed, index) if seed is None else seed)
        return self.reader.pair(source, reference, index)


class FixedPairs(Dataset):
    """Evaluation items: the given (source, reference) position pairs, in order."""

    def __init__(self, reader: MakeupPairReader, sources: np.ndarray, references: np.ndarray) -> None:
        self.reader = reader
        self.source_index = np.asarray(sources, dtype=np.int64)
        self.reference_index = np.asarray(references, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.source_index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.reader.pair(int(self.source_index[index]), int(self.reference_index[index]), index)


def fixed_pairs(
    num_sources: int, num_references: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct (source, reference) position pairs drawn with ``seed``."""
    total = num_sources * num_references
    if count > total:
        raise ConfigError(
            f"datamodule.eval_pairs={count} but only {num_sources} x {num_references} = {total} distinct "
            f"pairs exist; set datamodule.eval_pairs to at most {total}"
        )
    drawn = np.random.default_rng(derive_seed(seed)).choice(total, size=count, replace=False)
    return drawn // num_references, drawn % num_references


class MTMakeupDataModule(FaceDataModule):
    """MT-Dataset pairs for makeup transfer: seeded random training pairs, a fixed evaluation set."""

    dataset_name = "mt_makeup"

    def __init__(
        self,
        root: str,
        image_dir: str = "images",
        seg_dir: str = "segs",
        makeup_list: str = "makeup.txt",
        non_makeup_list: str = "non-makeup.txt",
        image_size: int = 256,
        num_labels: int = 15,
        pairing: str = "random",
        pair_seed: int = 0,
        eval_pairs: int = 8,
        eval_seed: int = 0,
        allow_partial: bool = False,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ConfigError(f"datamodule.root must name the MT-Dataset folder, got {root!r}")
        self.root = Path(str(root)).expanduser()
        if int(image_size) < 8:
            raise ConfigError(f"datamodule.image_size must be >= 8, got {image_size}")
        if int(num_labels) < 1:
            raise ConfigError(f"datamodule.num_labels must be >= 1, got {num_labels}")
        if pairing not in PAIRINGS:
            raise ConfigError(f"datamodule.pairing must be one of {PAIRINGS}, got {pairing!r}")
        if int(eval_pairs) < 1:
            raise ConfigError(f"datamodule.eval_pairs must be >= 1, got {eval_pairs}")
        self.image_dir, self.seg_dir = str(image_dir), str(seg_dir)
        self.list_files = {"makeup": str(makeup_list), "non-makeup": str(non_makeup_list)}
        self.image_size, self.num_labels = int(image_size), int(num_labels)
        self.pairing, self.pair_seed = pairing, int(pair_seed)
        self.eval_pairs, self.eval_seed = int(eval_pairs), int(eval_seed)
        self.allow_partial = bool(allow_partial)
        self.reader: MakeupPairReader | None = None
        self.eval_set: FixedPairs | None = None
        self.missing = MissingFiles(self.dataset_name)
        self._lists: dict[str, dict[str, Any]] = {}

    def _path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def check_layout(self) -> None:
        """The root, both list files and the image and label-map folders exist (nothing is read)."""
        super().check_layout()
        for key, value in (
            ("makeup_list", self.list_files["makeup"]),
            ("non_makeup_list", self.list_files["non-makeup"]),
        ):
            if not self._path(value).is_file():
                raise DatasetLayoutError(
                    f"MT-Dataset list not found: {self._path(value)} (datamodule.{key}). "
                    f"Expected layout: {LAYOUT}"
                )
        for key, value in (("image_dir", self.image_dir), ("seg_dir", self.seg_dir)):
            if not self._path(value).is_dir():
                raise DatasetLayoutError(
                    f"MT-Dataset folder not found: {self._path(value)} (datamodule.{key}). "
                    f"Expected layout: {LAYOUT}"
                )

    def setup(self, stage: str | None = None) -> None:
        """Read both lists, check every listed image and label map exists, draw the evaluation pairs."""
        if self.reader is not None:
            return
        if not self.root.is_dir():
            raise DatasetLayoutError(f"MT-Dataset root not found: {self.root}. Expected layout: {LAYOUT}")
        self.check_layout()
        image_root, seg_root = self._path(self.image_dir), self._path(self.seg_dir)
        self.missing = MissingFiles(self.dataset_name)
        kept: dict[str, list[str]] = {}
        for folder, value in self.list_files.items():
            path = self._path(value)
            names = read_name_list(path, folder)
            no_image = [n for n in names if not (image_root / n).is_file()]
            no_labels = [n for n in names if not (seg_root / n).is_file()]
            self.missing.note(path, image_root, no_image)
            self.missing.note(path, seg_root, no_labels, verb="listed (label maps) in")
            absent = set(no_image) | set(no_labels)
            kept[folder] = [n for n in names if n not in absent]
            self._lists[folder] = {
                "path": str(path),
                "sha256": file_sha256(path),
                "listed": len(names),
                "used": len(kept[folder]),
            }
        if self.missing:
            self.missing.write_list()
            if not self.allow_partial:
                raise self.missing.error()
            logging.getLogger(__name__).warning(
                "MT-Dataset: using a partial copy (datamodule.allow_partial=true): %s", self.missing.summary()
            )
        for folder, names in kept.items():
            if not names:
                raise DatasetLayoutError(
                    f"MT-Dataset: no {folder} image of {self._path(self.list_files[folder])} is present "
                    f"with its label map under {image_root} and {seg_root}"
                )
        reader = MakeupPairReader(
            image_root, seg_root, kept["non-makeup"], kept["makeup"], self.image_size, self.num_labels
        )
        sources, references = fixed_pairs(
            len(reader.sources), len(reader.references), self.eval_pairs, self.eval_seed
        )
        self.eval_set = FixedPairs(reader, sources, references)
        self.reader = reader

    def _require(self) -> MakeupPairReader:
        if self.reader is None:
            self.setup()
        assert self.reader is not None
        return self.reader

    def train_dataset(self) -> RandomPairs:
        """The seeded random training pairs (one epoch = one item per non-makeup image)."""
        return RandomPairs(self._require(), self.pair_seed, self.pairing)

    def eval_dataset(self) -> FixedPairs:
        """The fixed evaluation pairs (val = test)."""
        self._require()
        assert self.eval_set is not None
        return self.eval_set

    def train_dataloader(self) -> DataLoader:
        """Random pairs, reseeded per (run seed, epoch, item); resumable mid-epoch."""
        return self.make_loader(self.train_dataset(), train=True)

    def val_dataloader(self) -> DataLoader:
        """The fixed evaluation pairs, in order."""
        return self.make_loader(self.eval_dataset(), train=False)

    def test_dataloader(self) -> DataLoader:
        """The fixed evaluation pairs, in order (the same as validation)."""
        return self.make_loader(self.eval_dataset(), train=False)

    def load_target(self, path: str | Path) -> torch.Tensor:
        """A target-identity image as float32 ``[3, S, S]`` in [0, 1]; relative paths are taken under ``root``
        (e.g. ``test_target_image/target/085807.jpg``). Raises naming the path when absent or unreadable."""
        return load_target_image(path, self.image_size, root=self.root)

    def describe(self) -> dict[str, Any]:
        """Lists used (path, SHA-256, counts), pairing and seeds, evaluation pairs, missing files."""
        info: dict[str, Any] = {
            "dataset": self.dataset_name,
            "root": str(self.root),
            "image_size": self.image_size,
            "num_labels": self.num_labels,
            "pairing": self.pairing,
            "pair_seed": self.pair_seed,
            "eval_pairs": self.eval_pairs,
            "eval_seed": self.eval_seed,
            "lists": dict(self._lists),
        }
        if self.reader is not None:
            info["train_items_per_epoch"] = len(self.reader.sources)
            info["non_makeup_images"] = len(self.reader.sources)
            info["makeup_images"] = len(self.reader.references)
        if self.missing:
            info["missing_files"] = {**self.missing.record(), "allow_partial": self.allow_partial}
        return {**info, **super().describe()}
