"""Shared machinery of the file-based face DataModules (FFHQ, VGGFace2, CelebA, CelebA-HQ, LFW).

A subclass only reads and validates its layout: :meth:`SplitFaceDataModule.build_records` returns, per
split, the image files (relative names under one folder), per-split identity labels, extra per-image
arrays and the geometry (crop/alignment). This base turns them into datasets and loaders:

* ``transform``: an albumentations spec (``[{name: HorizontalFlip, p: 0.5}, ...]``) applied to the splits in
  ``transform_splits`` (train only by default), seeded from ``transform_seed`` and the rank and reseeded
  per dataloader worker (:mod:`src.utils.seeding`), so workers and ranks differ and reruns repeat;
* ``eval_protocol``: ``images`` (image batches for val/test) or ``pairs`` (verification pairs with folds);
  ``train_protocol``: ``images`` or ``triplets`` (anchor / positive / negative);
* derived pair and triplet lists are stored as CSV under ``splits_dir`` (versioned in ``data/splits/``)
  and read back on later runs; a stored list that names images the split lacks is an error;
* ``skip_corrupt``: evaluation images are decoded once at set-up and unreadable ones dropped and recorded.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import DataLoader, Dataset

from src.datamodules.base import FaceDataModule
from src.datamodules.components.face_dataset import (
    FaceImageDataset,
    PairDataset,
    TripletDataset,
    readable_mask,
)
from src.datamodules.components.geometry import Geometry
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.components.pairs import (
    NamedPairs,
    PairList,
    derive_pairs,
    derive_triplets,
    read_pairs_csv,
    read_triplets_csv,
    resolve_pairs,
    split_file_info,
    write_pairs_csv,
    write_triplets_csv,
)
from src.datamodules.components.transforms import build_albumentations, check_transform_splits
from src.utils.seeding import albumentations_seed, global_rank

SPLITS = ("train", "val", "test")
EVAL_PROTOCOLS = ("images", "pairs")
TRAIN_PROTOCOLS = ("images", "triplets")
STALE_HINT = (
    "the split file was derived from a different copy of the data: delete it to derive it again, or set "
    "datamodule.splits_dir to another folder"
)


@dataclass
class SplitRecords:
    """The files of one split and what goes with them, before any image is read.

    ``names`` are relative to ``image_root`` (unique; they name images in pair and triplet files);
    ``labels`` are per-split identity labels 0..K-1 (None for unlabelled data); ``extras`` are per-image
    arrays delivered in batches under their keys; ``geometry`` crops/aligns each image to the output size.
    """

    image_root: Path
    names: list[str]
    labels: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    geometry: Geometry | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if len(self.labels) != len(self.names):
                raise ValueError(f"{len(self.names)} names but {len(self.labels)} labels")

    @property
    def paths(self) -> list[Path]:
        """Absolute image paths."""
        return [self.image_root / name for name in self.names]

    @property
    def num_identities(self) -> int:
        """Distinct identity labels (0 for unlabelled data)."""
        return 0 if self.labels is None else len(np.unique(self.labels))

    def subset(self, keep: np.ndarray) -> SplitRecords:
        """The records where ``keep`` is true."""
        index = np.flatnonzero(keep)
        return SplitRecords(
            self.image_root,
            [self.names[i] for i in index],
            None if self.labels is None else self.labels[index],
            {k: v[index] for k, v in self.extras.items()},
            _subset_geometry(self.geometry, index),
        )


def _subset_geometry(geometry: Geometry | None, index: np.ndarray) -> Geometry | None:
    """The geometry restricted to ``index`` (per-image boxes/points follow their images)."""
    if geometry is None:
        return None
    import copy

    out = copy.copy(geometry)
    for attr in ("boxes", "points"):
        value = getattr(out, attr, None)
        if isinstance(value, np.ndarray) and value.ndim >= 2:
            setattr(out, attr, value[index])
    return out


def labels_from_keys(keys: Sequence[Any]) -> np.ndarray:
    """Per-item labels 0..K-1 from identity keys, numbered in sorted key order."""
    unique = sorted(set(keys))
    lookup = {key: i for i, key in enumerate(unique)}
    return np.asarray([lookup[key] for key in keys], dtype=np.int64)


class SplitFaceDataModule(FaceDataModule):
    """Base of the file-based DataModules: datasets, loaders, protocols, split files and counts."""

    dataset_name: ClassVar[str] = "faces"

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        transform: Sequence[dict[str, Any]] | None = None,
        transform_splits: Sequence[str] = ("train",),
        transform_seed: int = 0,
        eval_protocol: str = "images",
        train_protocol: str = "images",
        pair_folds: int = 10,
        pairs_per_fold: int = 300,
        split_seed: int = 0,
        splits_dir: str | None = None,
        train_identities: int | None = None,
        skip_corrupt: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ValueError(f"datamodule.root must name the {self.dataset_name} folder, got {root!r}")
        self.root = Path(str(root)).expanduser()
        if int(image_size) < 8:
            raise ValueError(f"datamodule.image_size must be >= 8, got {image_size}")
        self.image_size = int(image_size)
        self.transform_spec = list(transform) if transform else []
        build_albumentations(self.transform_spec)  # validate now: a typo fails at construction
        self.transform_splits = check_transform_splits(transform_splits)
        self.transform_seed = int(transform_seed)
        if eval_protocol not in EVAL_PROTOCOLS:
            raise ValueError(
                f"datamodule.eval_protocol must be one of {EVAL_PROTOCOLS}, got {eval_protocol!r}"
            )
        if train_protocol not in TRAIN_PROTOCOLS:
            raise ValueError(
                f"datamodule.train_protocol must be one of {TRAIN_PROTOCOLS}, got {train_protocol!r}"
            )
        self.eval_protocol = eval_protocol
        self.train_protocol = train_protocol
        self.pair_folds, self.pairs_per_fold = int(pair_folds), int(pairs_per_fold)
        self.split_seed = int(split_seed)
        self.splits_dir = Path(splits_dir).expanduser() if splits_dir else None
        self.expected_train_identities = None if train_identities is None else int(train_identities)
        self.skip_corrupt = bool(skip_corrupt)
        self.records: dict[str, SplitRecords] = {}
        self.datasets: dict[str, FaceImageDataset] = {}
        self.dropped: dict[str, set[str]] = {}
        self.split_files: dict[str, dict[str, object]] = {}
        self._pairs: dict[str, PairList] = {}
        self._triplets: np.ndarray | None = None
        self._info: dict[str, Any] = {}

    # --- subclass interface ------------------------------------------------------------------------

    @abstractmethod
    def build_records(self) -> dict[str, SplitRecords]:
        """Read and validate the layout; per split, the records (raise naming paths on bad input)."""

    def layout_info(self) -> dict[str, Any]:
        """Dataset-specific counts and metadata facts for :meth:`describe` (after set-up)."""
        return {}

    def named_pairs(self, split: str) -> tuple[NamedPairs, dict[str, object]]:
        """The pair list of ``split`` by image name (default: derived, stored under ``splits_dir``)."""
        records = self.records[split]
        if records.labels is None:
            raise ValueError(f"{self.dataset_name} has no identity labels, so it has no verification pairs")
        shape = f"{self.pair_folds}x{self.pairs_per_fold}"
        file_name = f"{self.dataset_name}_{split}_pairs_{shape}_seed{self.split_seed}.csv"
        path = self.splits_dir / file_name if self.splits_dir else None
        if path is not None and path.is_file():
            return read_pairs_csv(path), split_file_info(path, derived_now=False)
        try:
            pairs = derive_pairs(records.labels, self.pair_folds, self.pairs_per_fold, self.split_seed)
        except ValueError as exc:
            raise ValueError(f"{self.dataset_name} {split} pairs: {exc} (set datamodule.pair_folds)") from exc
        names = records.names
        named = NamedPairs(
            [names[i] for i in pairs.index_a],
            [names[i] for i in pairs.index_b],
            pairs.is_same,
            pairs.fold,
            list(range(2, len(pairs) + 2)),
            path,
        )
        if path is None:
            return named, {"path": None, "derived_now": True}
        write_pairs_csv(path, pairs, names)
        return named, split_file_info(path, derived_now=True)

    # --- set-up ----------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Validate the layout, build the datasets (once) and, per protocol, the pair/triplet lists."""
        if self.datasets:
            return
        records = self.build_records()
        if not records:
            raise ValueError(f"{self.dataset_name}: no split found under {self.root}")
        self._check_expected_identities(records)
        self.records = records
        verified: dict[int, tuple[SplitRecords, set[str]]] = {}
        for split, split_records in records.items():
            if id(split_records) not in verified:
                kept, dropped = split_records, set()
                if self.skip_corrupt and split != "train":  # training substitutes instead
                    keep = readable_mask(split_records.paths, self.skipped_files, f"checking {split} images")
                    dropped = {n for n, k in zip(split_records.names, keep, strict=True) if not k}
                    kept = split_records.subset(keep) if dropped else split_records
                verified[id(split_records)] = (kept, dropped)
            kept, self.dropped[split] = verified[id(split_records)]
            if not kept.names:
                raise ValueError(f"{self.dataset_name}: every image of the {split} split is unreadable")
            self.datasets[split] = self._dataset(split, kept)
        if self.eval_protocol == "pairs":
            for split in ("val", "test"):
                if split in self.datasets:
                    self.pair_list(split)
        if self.train_protocol == "triplets" and "train" in self.datasets:
            self.triplets()
        self._info = self.layout_info()

    def _check_expected_identities(self, records: dict[str, SplitRecords]) -> None:
        expected = self.expected_train_identities
        if expected is None or "train" not in records:
            return
        found = records["train"].num_identities
        if found != expected:
            raise ValueError(
                f"{self.dataset_name}: datamodule.train_identities={expected} but the training split under "
                f"{self.root} has {found} identities (set datamodule.train_identities={found} or null)"
            )

    def _dataset(self, split: str, records: SplitRecords) -> FaceImageDataset:
        transform = None
        if split in self.transform_splits and self.transform_spec:
            seed = albumentations_seed(self.transform_seed + SPLITS.index(split), global_rank())
            transform = build_albumentations(self.transform_spec, seed=seed)
        return FaceImageDataset(
            records.paths,
            self.image_size,
            labels=records.labels,
            extras=records.extras,
            geometry=records.geometry,
            transform=transform,
            skip_corrupt=self.skip_corrupt,
        )

    def _positions(self, split: str) -> dict[str, int]:
        root = self.records[split].image_root
        return {path.relative_to(root).as_posix(): i for i, path in enumerate(self.datasets[split].paths)}

    def pair_list(self, split: str) -> PairList:
        """The verification pairs of ``split`` as positions in its image dataset (with fold ids)."""
        if split in self._pairs:
            return self._pairs[split]
        self._require(split)
        named, info = self.named_pairs(split)
        try:
            pairs, left_out = resolve_pairs(named, self._positions(split), self.dropped.get(split, set()))
        except MetadataFormatError as exc:
            stale = info.get("derived_now") is False and not info.get("official")
            raise MetadataFormatError(f"{exc}; {STALE_HINT}" if stale else str(exc)) from exc
        if not len(pairs):
            raise ValueError(f"{self.dataset_name}: no {split} pair is left (all touch unreadable images)")
        self._pairs[split] = pairs
        self.split_files[f"{split}_pairs"] = {**info, **pairs.describe(), "left_out_unreadable": left_out}
        return pairs

    def triplets(self) -> np.ndarray:
        """``[N, 3]`` (anchor, positive, negative) positions in the training dataset."""
        if self._triplets is not None:
            return self._triplets
        self._require("train")
        records = self.records["train"]
        if records.labels is None:
            raise ValueError(f"{self.dataset_name} has no identity labels, so it has no triplets")
        if self.splits_dir is None:  # derive in memory (training images are never dropped)
            self._triplets = derive_triplets(records.labels, self.split_seed)
            self.split_files["train_triplets"] = {
                "path": None,
                "derived_now": True,
                "triplets": len(self._triplets),
            }
            return self._triplets
        path = self.splits_dir / f"{self.dataset_name}_train_triplets_seed{self.split_seed}.csv"
        derived_now = not path.is_file()
        if derived_now:
            write_triplets_csv(path, derive_triplets(records.labels, self.split_seed), records.names)
        try:
            self._triplets, left_out = read_triplets_csv(
                path, self._positions("train"), self.dropped.get("train", set())
            )
        except MetadataFormatError as exc:
            raise MetadataFormatError(f"{exc}; {STALE_HINT}" if not derived_now else str(exc)) from exc
        self.split_files["train_triplets"] = {
            **split_file_info(path, derived_now),
            "triplets": len(self._triplets),
            "left_out_unreadable": left_out,
        }
        return self._triplets

    # --- loaders ---------------------------------------------------------------------------------

    def _require(self, split: str) -> None:
        if not self.datasets:
            self.setup()
        if split not in self.datasets:
            raise ValueError(f"{self.dataset_name} under {self.root} has no {split} split")

    def image_dataset(self, split: str) -> FaceImageDataset:
        """The image dataset of ``split`` (``index`` in its batches = position in it)."""
        self._require(split)
        return self.datasets[split]

    def pair_dataset(self, split: str) -> PairDataset:
        """Pair items (``image_a``, ``image_b``, ``is_same``, ``fold``, ...) of ``split``."""
        pairs = self.pair_list(split)
        return PairDataset(self.image_dataset(split), pairs.index_a, pairs.index_b, pairs.is_same, pairs.fold)

    def triplet_dataset(self) -> TripletDataset:
        """Triplet items of the training split."""
        triplets = self.triplets()
        return TripletDataset(self.image_dataset("train"), triplets[:, 0], triplets[:, 1], triplets[:, 2])

    def _eval_dataset(self, split: str) -> Dataset:
        return self.pair_dataset(split) if self.eval_protocol == "pairs" else self.image_dataset(split)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (images or triplets), last partial batch dropped."""
        dataset = self.triplet_dataset() if self.train_protocol == "triplets" else self.image_dataset("train")
        return self.make_loader(dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in order (images or pairs, per ``eval_protocol``), each exactly once."""
        return self.make_loader(self._eval_dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in order (images or pairs, per ``eval_protocol``), each exactly once."""
        return self.make_loader(self._eval_dataset("test"), train=False)

    def pair_dataloader(self, split: str = "test") -> DataLoader:
        """Pair batches of ``split`` whatever ``eval_protocol`` says."""
        return self.make_loader(self.pair_dataset(split), train=False)

    @property
    def num_classes(self) -> int:
        """Training identities (classes of a classification / ArcFace head)."""
        self._require("train")
        return self.records["train"].num_identities

    # --- run record ------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Images and identities per split and in total, protocols, split files and skipped files."""
        info: dict[str, Any] = {
            "dataset": self.dataset_name,
            "root": str(self.root),
            "image_size": self.image_size,
            "transform": self.transform_spec,
            "transform_splits": list(self.transform_splits),
            "eval_protocol": self.eval_protocol,
            "train_protocol": self.train_protocol,
        }
        seen: dict[int, SplitRecords] = {}
        for split in SPLITS:
            if split not in self.datasets:
                continue
            records = self.records[split]
            seen[id(records)] = records
            info[f"{split}_images"] = len(self.datasets[split])
            if records.labels is not None:
                info[f"{split}_identities"] = records.num_identities
        if seen:
            info["images"] = sum(len(r.names) for r in seen.values())
        info.update(self._info)
        if self.split_files:
            info["split_files"] = dict(self.split_files)
        return {**info, **super().describe()}
