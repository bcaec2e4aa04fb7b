"""Shared machinery of the file-based face DataModules (FFHQ, VGGFace2, CelebA, CelebA-HQ, LFW, folders).

A subclass only reads and validates its layout: :meth:`SplitFaceDataModule.build_records` returns, per
split, the image files its lists name (relative names under one folder), per-split identity labels, the
identity token of each image, extra per-image arrays and the geometry (crop/alignment). This base turns
them into datasets and loaders:

* ``transform``: an albumentations spec (``[{name: HorizontalFlip, p: 0.5}, ...]``) applied to the splits in
  ``transform_splits`` (train only by default), seeded from ``transform_seed`` and the rank and reseeded
  per dataloader worker (:mod:`src.utils.seeding`), so workers and ranks differ and reruns repeat;
* ``eval_protocol``: ``images`` (image batches for val/test) or ``pairs`` (verification pairs with folds);
  ``train_protocol``: ``images`` or ``triplets`` (anchor / positive / negative);
* pair and triplet lists are read from ``pairs_file`` / ``triplets_file`` when given (LFW-format pair
  lists, the released protection code's ``filenames_*`` + ``triplets_*`` index lists, or this project's
  CSVs; :mod:`~src.datamodules.components.pairs`), else derived and stored as CSV under ``splits_dir``
  (versioned in ``data/splits/``) and read back on later runs; a stored list that names images the split
  lacks is an error;
* listed images missing from the copy are reported once (:mod:`~src.datamodules.components.layout`): an
  error by default, or with ``allow_partial`` the present images are used and the missing ones recorded;
* ``skip_corrupt``: evaluation images are decoded once at set-up and unreadable ones dropped and recorded.

Labels keep the numbering of the full listing on a partial copy, so they match a complete copy's and
``num_classes`` counts the listed training identities.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import DataLoader, Dataset

from src.config.errors import ConfigError
from src.datamodules.base import FaceDataModule
from src.datamodules.components.face_dataset import (
    FaceImageDataset,
    PairDataset,
    TripletDataset,
    readable_mask,
)
from src.datamodules.components.geometry import Geometry
from src.datamodules.components.layout import DatasetLayoutError, MissingFiles
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.components.pairs import (
    PAIR_NAMINGS,
    ListedFile,
    NamedPairs,
    PairList,
    PairNamer,
    PairRefs,
    derive_pairs,
    derive_triplets,
    is_triplets_csv,
    match_listed_name,
    read_filenames_list,
    read_index_triplets,
    read_pair_list_file,
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
    ``labels`` are per-split identity labels 0..K-1 (None for unlabelled data); ``identity_names`` the
    identity token of each image as pair lists write it (folder name, CelebA identity number);
    ``extras`` are per-image arrays delivered in batches under their keys; ``geometry`` crops/aligns each
    image to the output size.
    """

    image_root: Path
    names: list[str]
    labels: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    geometry: Geometry | None = None
    identity_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if len(self.labels) != len(self.names):
                raise ValueError(f"{len(self.names)} names but {len(self.labels)} labels")
        if self.identity_names is not None and len(self.identity_names) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.identity_names)} identity names")

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
            None if self.identity_names is None else [self.identity_names[i] for i in index],
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
        pairs_file: str | Mapping[str, str] | None = None,
        pairs_naming: str = "auto",
        triplets_file: str | None = None,
        triplet_filenames_file: str | None = None,
        triplet_index_base: int = 0,
        allow_partial: bool = False,
        skip_corrupt: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ConfigError(f"datamodule.root must name the {self.dataset_name} folder, got {root!r}")
        self.root = Path(str(root)).expanduser()
        if int(image_size) < 8:
            raise ConfigError(f"datamodule.image_size must be >= 8, got {image_size}")
        self.image_size = int(image_size)
        self.transform_spec = list(transform) if transform else []
        build_albumentations(self.transform_spec)  # validate now: a typo fails at construction
        self.transform_splits = check_transform_splits(transform_splits)
        self.transform_seed = int(transform_seed)
        if eval_protocol not in EVAL_PROTOCOLS:
            raise ConfigError(
                f"datamodule.eval_protocol must be one of {EVAL_PROTOCOLS}, got {eval_protocol!r}"
            )
        if train_protocol not in TRAIN_PROTOCOLS:
            raise ConfigError(
                f"datamodule.train_protocol must be one of {TRAIN_PROTOCOLS}, got {train_protocol!r}"
            )
        self.eval_protocol = eval_protocol
        self.train_protocol = train_protocol
        self.pair_folds, self.pairs_per_fold = int(pair_folds), int(pairs_per_fold)
        self.split_seed = int(split_seed)
        self.splits_dir = Path(splits_dir).expanduser() if splits_dir else None
        self.expected_train_identities = None if train_identities is None else int(train_identities)
        self.pairs_files = _pairs_files(pairs_file)
        if pairs_naming not in PAIR_NAMINGS:
            raise ConfigError(f"datamodule.pairs_naming must be one of {PAIR_NAMINGS}, got {pairs_naming!r}")
        self.pairs_naming = pairs_naming
        self.triplets_file = str(triplets_file) if triplets_file else None
        self.triplet_filenames_file = str(triplet_filenames_file) if triplet_filenames_file else None
        if self.triplets_file and train_protocol != "triplets":
            raise ConfigError(
                "datamodule.triplets_file is set but datamodule.train_protocol is "
                f"{train_protocol!r}; set train_protocol=triplets to train on the listed triplets"
            )
        if self.triplet_filenames_file and not self.triplets_file:
            raise ConfigError(
                "datamodule.triplet_filenames_file is set without datamodule.triplets_file (the filenames "
                "list is what an index triplets file points into)"
            )
        if int(triplet_index_base) not in (0, 1):
            raise ConfigError(f"datamodule.triplet_index_base must be 0 or 1, got {triplet_index_base}")
        self.triplet_index_base = int(triplet_index_base)
        self.allow_partial = bool(allow_partial)
        self.skip_corrupt = bool(skip_corrupt)
        self.listed: dict[str, SplitRecords] = {}
        self.records: dict[str, SplitRecords] = {}
        self.datasets: dict[str, FaceImageDataset] = {}
        self.dropped: dict[str, set[str]] = {}
        self.missing_names: dict[str, set[str]] = {}
        self.missing = MissingFiles(self.dataset_name)
        self.splits_without_images: list[str] = []
        self.split_files: dict[str, dict[str, object]] = {}
        self._pairs: dict[str, PairList] = {}
        self._triplets: np.ndarray | None = None
        self._pair_files_read: dict[Path, PairRefs | NamedPairs] = {}
        self._info: dict[str, Any] = {}

    # --- subclass interface ------------------------------------------------------------------------

    @abstractmethod
    def build_records(self) -> dict[str, SplitRecords]:
        """Read and validate the layout; per split, the records of every **listed** image.

        Raise naming paths on bad input. Listed images absent from the copy are reported with
        :meth:`note_missing` (and kept in the records): the base reports them all at once.
        """

    def layout_info(self) -> dict[str, Any]:
        """Dataset-specific counts and metadata facts for :meth:`describe` (after set-up)."""
        return {}

    def note_missing(
        self,
        listed_in: Path,
        folder: Path,
        names: Sequence[str],
        details: dict[str, str] | None = None,
        verb: str = "listed in",
    ) -> None:
        """Record listed images (``names`` relative to ``folder``) that the copy lacks."""
        self.missing.note(listed_in, folder, list(names), details, verb)

    def data_path(self, value: str, key: str) -> Path:
        """A file named in the config: absolute, or relative to ``root``; raises naming the config key."""
        path = Path(str(value)).expanduser()
        path = path if path.is_absolute() else self.root / path
        if not path.is_file():
            raise DatasetLayoutError(
                f"{self.dataset_name}: datamodule.{key} not found: {path} (a relative path is taken under "
                f"datamodule.root)"
            )
        return path

    def read_pairs_file(self, split: str) -> PairRefs | NamedPairs:
        """The parsed ``pairs_file`` of ``split`` (parsed once per file)."""
        path = self.data_path(self.pairs_files[split], "pairs_file")
        if path not in self._pair_files_read:
            self._pair_files_read[path] = read_pair_list_file(path)
        return self._pair_files_read[path]

    def provided_pairs(self, split: str) -> tuple[NamedPairs, dict[str, object]]:
        """The user's ``pairs_file`` of ``split`` by image name, with what the run record says about it."""
        parsed = self.read_pairs_file(split)
        assert parsed.source is not None
        info: dict[str, object] = {**split_file_info(parsed.source, derived_now=False), "provided": True}
        if isinstance(parsed, NamedPairs):
            return parsed, {**info, "format": "csv"}
        listed = self.listed[split]
        namer = PairNamer(listed.names, listed.identity_names, f"{split} split of {self.dataset_name}")
        naming = namer.choose(parsed, self.pairs_naming)
        return namer.name_pairs(parsed, naming), {**info, "format": "lfw", "naming": naming}

    def named_pairs(self, split: str) -> tuple[NamedPairs, dict[str, object]]:
        """The pair list of ``split`` by image name: the ``pairs_file``, else derived and stored."""
        if split in self.pairs_files:
            return self.provided_pairs(split)
        records = self.records[split]
        if records.labels is None:
            raise ValueError(f"{self.dataset_name} has no identity labels, so it has no verification pairs")
        shape = f"{self.pair_folds}x{self.pairs_per_fold}"
        file_name = f"{self.dataset_name}_{split}_pairs_{shape}_seed{self.split_seed}{self._tag(split)}.csv"
        path = self.splits_dir / file_name if self.splits_dir else None
        if path is not None and path.is_file():
            return read_pairs_csv(path), split_file_info(path, derived_now=False)
        try:
            pairs = derive_pairs(records.labels, self.pair_folds, self.pairs_per_fold, self.split_seed)
        except ValueError as exc:
            raise ConfigError(
                f"{self.dataset_name} {split} pairs: {exc} (set datamodule.pair_folds)"
            ) from exc
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

    def _tag(self, split: str) -> str:
        """File-name tag of lists derived from a partial copy (so a complete copy never reads them)."""
        if not self.missing_names.get(split):
            return ""
        return f"_partial-{self.missing.digest(self.records[split].image_root)}"

    # --- set-up ----------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Validate the layout, build the datasets (once) and, per protocol, the pair/triplet lists."""
        if self.datasets:
            return
        self.missing = MissingFiles(self.dataset_name)
        records = self.build_records()
        if not records:
            raise ValueError(f"{self.dataset_name}: no split found under {self.root}")
        missing = self._settle_missing()
        self._check_expected_identities(records)
        self.listed = records
        verified: dict[int, tuple[SplitRecords, SplitRecords, set[str], set[str]]] = {}
        for split, listed in records.items():
            if id(listed) not in verified:
                present, absent = listed, set()
                if missing:
                    here = np.asarray([path not in missing for path in listed.paths], dtype=bool)
                    absent = {n for n, k in zip(listed.names, here, strict=True) if not k}
                    present = listed.subset(here) if absent else listed
                kept, dropped = present, set()
                if present.names and self.skip_corrupt and split != "train":  # training substitutes
                    keep = readable_mask(present.paths, self.skipped_files, f"checking {split} images")
                    dropped = {n for n, k in zip(present.names, keep, strict=True) if not k}
                    kept = present.subset(keep) if dropped else present
                verified[id(listed)] = (present, kept, absent, dropped)
            present, kept, absent, dropped = verified[id(listed)]
            if not present.names:  # only with allow_partial: nothing of this split is on disk
                self.splits_without_images.append(split)
                self.missing_names[split] = absent
                continue
            if not kept.names:
                raise ValueError(f"{self.dataset_name}: every image of the {split} split is unreadable")
            self.records[split], self.missing_names[split], self.dropped[split] = present, absent, dropped
            self.datasets[split] = self._dataset(split, kept)
        if not self.datasets:
            raise DatasetLayoutError(
                f"{self.dataset_name}: none of the listed images is present under {self.root}"
            )
        for split in self.pairs_files:
            if split not in self.listed:
                raise ConfigError(
                    f"datamodule.pairs_file is given for the {split} split, but {self.dataset_name} under "
                    f"{self.root} has no {split} split"
                )
            if split in self.datasets:
                self.pair_list(split)
        if self.eval_protocol == "pairs":
            for split in ("val", "test"):
                if split in self.datasets:
                    self.pair_list(split)
        if self.train_protocol == "triplets" and "train" in self.datasets:
            self.triplets()
        self._info = self.layout_info()

    def _settle_missing(self) -> set[Path]:
        """Report the missing listed images once: raise, or (``allow_partial``) return their paths."""
        if not self.missing:
            return set()
        self.missing.write_list()
        if not self.allow_partial:
            raise self.missing.error()
        logging.getLogger(__name__).warning(
            "%s: using a partial copy (datamodule.allow_partial=true): %s",
            self.dataset_name,
            self.missing.summary(),
        )
        return self.missing.paths()

    def _check_expected_identities(self, records: dict[str, SplitRecords]) -> None:
        expected = self.expected_train_identities
        if expected is None or "train" not in records:
            return
        found = records["train"].num_identities
        if found != expected:
            raise ConfigError(
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

    def _unavailable(self, split: str) -> tuple[set[str], set[str]]:
        return self.missing_names.get(split, set()), self.dropped.get(split, set())

    def pair_list(self, split: str) -> PairList:
        """The verification pairs of ``split`` as positions in its image dataset (with fold ids)."""
        if split in self._pairs:
            return self._pairs[split]
        self._require(split)
        named, info = self.named_pairs(split)
        absent, dropped = self._unavailable(split)
        try:
            pairs, left_out = resolve_pairs(
                named, self._positions(split), absent | dropped, self.datasets[split].labels
            )
        except MetadataFormatError as exc:
            stale = info.get("derived_now") is False and not (info.get("official") or info.get("provided"))
            raise MetadataFormatError(f"{exc}; {STALE_HINT}" if stale else str(exc)) from exc
        if not len(pairs):
            raise ValueError(
                f"{self.dataset_name}: no {split} pair is left (all touch missing or unreadable images)"
            )
        left_missing = sum(
            1 for a, b in zip(named.name_a, named.name_b, strict=True) if a in absent or b in absent
        )
        self._pairs[split] = pairs
        self.split_files[f"{split}_pairs"] = {
            **info,
            **pairs.describe(),
            "left_out_unreadable": left_out - left_missing,
            "left_out_missing": left_missing,
        }
        return pairs

    def triplets(self) -> np.ndarray:
        """``[N, 3]`` (anchor, positive, negative) positions in the training dataset."""
        if self._triplets is not None:
            return self._triplets
        self._require("train")
        if self.triplets_file:
            self._triplets = self._provided_triplets()
            return self._triplets
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
        name = f"{self.dataset_name}_train_triplets_seed{self.split_seed}{self._tag('train')}.csv"
        path = self.splits_dir / name
        derived_now = not path.is_file()
        if derived_now:
            write_triplets_csv(path, derive_triplets(records.labels, self.split_seed), records.names)
        try:
            self._triplets, left_out = self._named_triplets(path, read_triplets_csv(path))
        except MetadataFormatError as exc:
            raise MetadataFormatError(f"{exc}; {STALE_HINT}" if not derived_now else str(exc)) from exc
        self.split_files["train_triplets"] = {
            **split_file_info(path, derived_now),
            "triplets": len(self._triplets),
            "left_out_unreadable": left_out,
        }
        return self._triplets

    def _named_triplets(self, path: Path, rows: list[tuple[int, list[str]]]) -> tuple[np.ndarray, int]:
        """Triplets by image name → positions; rows touching an unavailable image are left out."""
        positions = self._positions("train")
        absent, dropped = self._unavailable("train")
        out, lines, left_out = [], [], 0
        for number, row in rows:
            if any(name in absent or name in dropped for name in row):
                left_out += 1
                continue
            unknown = [name for name in row if name not in positions]
            if unknown:
                raise MetadataFormatError(f"{path}:{number}: image {unknown[0]} is not in the training split")
            out.append([positions[name] for name in row])
            lines.append(number)
        triplets = np.asarray(out, dtype=np.int64).reshape(-1, 3)
        self._check_triplet_identities(path, triplets, lines)
        return triplets, left_out

    def _check_triplet_identities(self, path: Path, triplets: np.ndarray, lines: list[int]) -> None:
        labels = self.datasets["train"].labels
        if labels is None:
            return
        wrong = (labels[triplets[:, 0]] != labels[triplets[:, 1]]) | (
            labels[triplets[:, 0]] == labels[triplets[:, 2]]
        )
        if wrong.any():
            row = int(np.argmax(wrong))
            raise MetadataFormatError(
                f"{path}:{lines[row]}: the positive must share the anchor's identity and the negative must "
                "not, but the dataset's identities disagree (a list for another copy, or the wrong "
                "filenames list?)"
            )

    def _provided_triplets(self) -> np.ndarray:
        """The user's ``triplets_file``: a triplet CSV, or index triplets into ``triplet_filenames_file``."""
        assert self.triplets_file is not None
        path = self.data_path(self.triplets_file, "triplets_file")
        info: dict[str, object] = {**split_file_info(path, derived_now=False), "provided": True}
        if is_triplets_csv(path):
            if self.triplet_filenames_file:
                raise ConfigError(
                    f"{path} is a triplet CSV naming its images; datamodule.triplet_filenames_file is only "
                    "for index triplet lists (set it to null)"
                )
            triplets, left_out = self._named_triplets(path, read_triplets_csv(path))
            info["format"] = "csv"
        else:
            if not self.triplet_filenames_file:
                raise ConfigError(
                    f"{path} holds image indices; set datamodule.triplet_filenames_file to the filenames "
                    "list they index (e.g. filenames_train.txt next to triplets_train.txt)"
                )
            triplets, left_out = self._index_triplets(path)
            info.update({"format": "index", "index_base": self.triplet_index_base})
        if not len(triplets):
            raise ValueError(
                f"{self.dataset_name}: no triplet of {path} is left (all touch unavailable images)"
            )
        self.split_files["train_triplets"] = {
            **info,
            "triplets": len(triplets),
            "left_out_unavailable": left_out,
        }
        return triplets

    def _index_triplets(self, path: Path) -> tuple[np.ndarray, int]:
        """``anchor negative positive`` indices into the filenames list → positions in the training set."""
        assert self.triplet_filenames_file is not None
        list_path = self.data_path(self.triplet_filenames_file, "triplet_filenames_file")
        listed = read_filenames_list(list_path)
        known = set(self.listed["train"].names)
        names = []
        for entry in listed:
            name = match_listed_name(entry.name, known)
            if name is None:
                raise MetadataFormatError(
                    f"{list_path}:{entry.line}: image {entry.name} is not in the training split of "
                    f"{self.dataset_name} under {self.root}"
                )
            names.append(name)
        self._check_listed_labels(list_path, listed, names)
        index, lines = read_index_triplets(path, len(names), self.triplet_index_base, list_path)
        rows = [(line, [names[i] for i in row]) for line, row in zip(lines, index.tolist(), strict=True)]
        return self._named_triplets(path, rows)

    def _check_listed_labels(self, list_path: Path, listed: list[ListedFile], names: list[str]) -> None:
        """A filenames list's label column must group images exactly as the dataset's identities do."""
        if all(entry.label is None for entry in listed) or self.listed["train"].labels is None:
            return
        label_of = dict(zip(self.listed["train"].names, self.listed["train"].labels.tolist(), strict=True))
        forward: dict[int, tuple[int, int]] = {}
        backward: dict[int, tuple[int, int]] = {}
        for entry, name in zip(listed, names, strict=True):
            if entry.label is None:
                raise MetadataFormatError(
                    f"{list_path}:{entry.line}: a label is missing (other lines have one)"
                )
            ours = label_of[name]
            for table, key, value in ((forward, entry.label, ours), (backward, ours, entry.label)):
                seen = table.setdefault(key, (value, entry.line))
                if seen[0] != value:
                    raise MetadataFormatError(
                        f"{list_path}:{entry.line}: label {entry.label} of {name} groups images differently "
                        f"from the dataset's identities (compare line {seen[1]})"
                    )

    # --- loaders ---------------------------------------------------------------------------------

    def _require(self, split: str) -> None:
        if not self.datasets:
            self.setup()
        if split not in self.datasets:
            detail = " (none of its images is present)" if split in self.splits_without_images else ""
            raise ValueError(f"{self.dataset_name} under {self.root} has no {split} split{detail}")

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
        """Training identities of the listing (classes of a classification / ArcFace head)."""
        self._require("train")
        return self.listed["train"].num_identities

    # --- run record ------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Images and identities per split and in total, protocols, split files, missing and skipped files."""
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
        if self.missing:
            info["missing_files"] = {
                **self.missing.record(),
                "allow_partial": self.allow_partial,
                "per_split": {split: len(names) for split, names in self.missing_names.items() if names},
                "splits_without_images": list(self.splits_without_images),
            }
        return {**info, **super().describe()}


def _pairs_files(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """``pairs_file``: a path (the test split's list) or ``{val: path, test: path}``."""
    if value is None or value == "":
        return {}
    if isinstance(value, str | Path):
        return {"test": str(value)}
    if not isinstance(value, Mapping):
        raise ConfigError(f"datamodule.pairs_file must be a path or {{val: path, test: path}}, got {value!r}")
    unknown = sorted(set(value) - {"val", "test"})
    if unknown:
        raise ConfigError(f"datamodule.pairs_file: pairs are for the val and test splits, not {unknown}")
    return {str(split): str(path) for split, path in value.items() if path}
