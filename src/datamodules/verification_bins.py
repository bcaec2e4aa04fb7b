"""Face-verification test sets (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW, ...) as ``.bin`` files or image folders.

Layout (docs/datasets.md, "Verification sets (.bin)"): per name in ``sets`` either ``<root>/<name>.bin`` (the
face.evoLVe / insightface pickle of ``(bins, issame_list)``, read with a restricted unpickler:
:mod:`~src.datamodules.components.safe_pickle`) or a folder ``<root>/<name>/`` of images with a pair list
``<root>/<name>/<pairs_file>`` — a pair CSV (``fold,is_same,image_a,image_b``, names relative to the
folder) or an LFW-format list, read by :func:`~src.datamodules.components.pairs.read_pair_list_file`.
A ``.bin`` file wins when both exist. A ``.bin`` set's folds are ``folds`` consecutive equal blocks of its
pairs (the standard protocol, ``KFold(folds, shuffle=False)``); a pair list's folds are its own and must
number ``folds``.

Evaluation data only: ``val`` and ``test`` are the pairs of every set, one after the other. Batches:
``image_a``, ``image_b`` (float32 ``[B, 3, S, S]`` RGB in [0, 1]), ``is_same``, ``fold``, ``index`` (pair
position over all sets), ``set`` (position of its set in :attr:`VerificationBinsDataModule.set_names`),
``pair_index`` (position in its set), ``index_a``/``index_b``. :meth:`VerificationBinsDataModule.set_pairs`
gives each set's slice, flags and folds, so a LightningModule scores each set with
:func:`src.metrics.identity.verification_accuracy` and averages over sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.config.errors import ConfigError
from src.datamodules.base import FaceDataModule
from src.datamodules.components.geometry import resize
from src.datamodules.components.image_io import read_image_rgb
from src.datamodules.components.layout import IMAGE_EXTENSIONS, DatasetLayoutError
from src.datamodules.components.metadata import file_sha256
from src.datamodules.components.pairs import (
    PAIR_NAMINGS,
    NamedPairs,
    PairList,
    PairNamer,
    read_pair_list_file,
)
from src.datamodules.components.safe_pickle import (
    VerificationBin,
    VerificationBinError,
    load_verification_bin,
)
from src.datamodules.components.transforms import to_chw_float

DEFAULT_SETS = ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")
LAYOUT = "<root>/<set>.bin per name in datamodule.sets, or images in <root>/<set>/ + <root>/<set>/pairs.csv"


@dataclass
class VerificationSet:
    """One verification set: its pairs (``is_same``, ``fold``) and where they sit in the combined dataset.

    Pair ``i`` is images ``2i`` and ``2i + 1`` of the set: encoded in ``bins`` (a ``.bin`` file) or the files
    ``paths[2i]``, ``paths[2i + 1]`` (a folder). ``offset`` is the set's first pair in the combined dataset.
    """

    name: str
    kind: str
    source: Path
    is_same: np.ndarray
    fold: np.ndarray
    offset: int = 0
    bins: VerificationBin | None = None
    paths: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.is_same)

    @property
    def pairs(self) -> slice:
        """The set's pairs in the combined dataset (``index`` of the batches)."""
        return slice(self.offset, self.offset + len(self))

    def image(self, position: int) -> np.ndarray:
        """Image ``position`` (0..2N-1) of the set, ``uint8 [H, W, 3]`` RGB; raises naming file/index."""
        if self.bins is not None:
            return self.bins.decode(position)
        assert self.paths is not None
        return read_image_rgb(self.paths[position])

    def describe(self) -> dict[str, Any]:
        """Source, pairs, matched / mismatched and folds, for the run record."""
        return {
            "kind": self.kind,
            "path": str(self.source),
            "sha256": file_sha256(self.source),
            "pairs": len(self),
            "matched": int(self.is_same.sum()),
            "mismatched": int((~self.is_same).sum()),
            "folds": len(np.unique(self.fold)),
        }


class VerificationPairsDataset(Dataset):
    """Pairs of every set, one set after the other (see the module docstring for the item keys)."""

    def __init__(self, sets: Sequence[VerificationSet], image_size: int) -> None:
        if not sets or not sum(len(s) for s in sets):
            raise ValueError("VerificationPairsDataset: no pairs")
        self.sets = list(sets)
        self.image_size = int(image_size)
        self.starts = np.asarray([s.offset for s in self.sets], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1]) + len(self.sets[-1])

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        if image.shape[:2] != (self.image_size, self.image_size):
            image = resize(image, self.image_size, self.image_size)
        return torch.from_numpy(to_chw_float(image))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        number = int(np.searchsorted(self.starts, index, side="right")) - 1
        chosen = self.sets[number]
        pair = index - chosen.offset
        return {
            "image_a": self._tensor(chosen.image(2 * pair)),
            "image_b": self._tensor(chosen.image(2 * pair + 1)),
            "is_same": torch.tensor(bool(chosen.is_same[pair])),
            "fold": torch.tensor(int(chosen.fold[pair]), dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "set": torch.tensor(number, dtype=torch.long),
            "pair_index": torch.tensor(pair, dtype=torch.long),
            "index_a": torch.tensor(2 * index, dtype=torch.long),
            "index_b": torch.tensor(2 * index + 1, dtype=torch.long),
        }


class VerificationBinsDataModule(FaceDataModule):
    """Several face-verification sets evaluated together with their 10-fold protocol (evaluation only)."""

    dataset_name: ClassVar[str] = "verification_bins"

    def __init__(
        self,
        root: str,
        sets: Sequence[str] = DEFAULT_SETS,
        image_size: int = 112,
        folds: int = 10,
        pairs_file: str = "pairs.csv",
        pairs_naming: str = "auto",
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if root is None or str(root) in ("", "???"):
            raise ConfigError(f"datamodule.root must name the folder holding the .bin files, got {root!r}")
        self.root = Path(str(root)).expanduser()
        if isinstance(sets, str):
            sets = [sets]
        self.sets_requested = [str(s) for s in sets]
        if not self.sets_requested:
            raise ConfigError("datamodule.sets must name at least one verification set (e.g. [lfw])")
        if len(set(self.sets_requested)) != len(self.sets_requested):
            raise ConfigError(f"datamodule.sets names a set twice: {self.sets_requested}")
        if int(image_size) < 8:
            raise ConfigError(f"datamodule.image_size must be >= 8, got {image_size}")
        self.image_size = int(image_size)
        if int(folds) < 1:
            raise ConfigError(f"datamodule.folds must be >= 1, got {folds}")
        self.folds = int(folds)
        self.pairs_file = str(pairs_file)
        if pairs_naming not in PAIR_NAMINGS:
            raise ConfigError(f"datamodule.pairs_naming must be one of {PAIR_NAMINGS}, got {pairs_naming!r}")
        self.pairs_naming = pairs_naming
        self.sets: list[VerificationSet] = []
        self.dataset: VerificationPairsDataset | None = None

    # --- layout ----------------------------------------------------------------------------------

    def _available(self) -> list[str]:
        """What ``root`` holds: ``<name>.bin`` files and folders with a pair list, by set name."""
        if not self.root.is_dir():
            return []
        with os.scandir(self.root) as entries:
            found = sorted(
                e.name if e.is_file() else f"{e.name}/"
                for e in entries
                if (e.is_file() and e.name.endswith(".bin"))
                or (e.is_dir() and (Path(e.path) / self.pairs_file).is_file())
            )
        return found

    def _source(self, name: str) -> tuple[str, Path]:
        """``("bin", <root>/<name>.bin)`` or ``("folder", <root>/<name>/<pairs_file>)``; else raises."""
        bin_path = self.root / f"{name}.bin"
        if bin_path.is_file():
            return "bin", bin_path
        pairs_path = self.root / name / self.pairs_file
        if pairs_path.is_file():
            return "folder", pairs_path
        held = ", ".join(self._available()) or "no .bin file and no folder with a pair list"
        raise DatasetLayoutError(
            f"verification set {name!r} not found: neither {bin_path} nor {pairs_path} exists ({self.root} "
            f"holds: {held}; set datamodule.sets). Expected layout: {LAYOUT}"
        )

    def check_layout(self) -> None:
        """Cheap check before a run is recorded: the root and every set in ``sets`` exist (nothing read)."""
        super().check_layout()
        for name in self.sets_requested:
            self._source(name)

    def _load_folder(self, name: str, pairs_path: Path) -> VerificationSet:
        """A set from an image folder and its pair list (pair CSV or LFW-format list)."""
        folder = pairs_path.parent
        parsed = read_pair_list_file(pairs_path)
        if isinstance(parsed, NamedPairs):
            named = parsed
        else:
            on_disk = sorted(
                p.relative_to(folder).as_posix()
                for p in folder.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            identities = [n.split("/")[0] for n in on_disk]
            namer = PairNamer(on_disk, identities, f"image folder {folder}")
            named = namer.name_pairs(parsed, namer.choose(parsed, self.pairs_naming))
        if not len(named):
            raise VerificationBinError(f"{pairs_path}: the pair list holds no pairs")
        paths: list[Path] = []
        for a, b, line in zip(named.name_a, named.name_b, named.lines, strict=True):
            for image in (a, b):
                if not (folder / image).is_file():
                    raise DatasetLayoutError(
                        f"{pairs_path}:{line}: image {image} is missing from {folder} (names are relative to "
                        "the set's folder)"
                    )
            paths += [folder / a, folder / b]
        distinct, fold = np.unique(np.asarray(named.fold), return_inverse=True)
        if len(distinct) != self.folds:
            raise VerificationBinError(
                f"{pairs_path}: the pair list has {len(distinct)} fold(s), datamodule.folds is {self.folds}"
            )
        return VerificationSet(
            name, "folder", pairs_path, np.asarray(named.is_same, bool), fold.astype(np.int64), paths=paths
        )

    def setup(self, stage: str | None = None) -> None:
        """Load every set (once): ``.bin`` files through the restricted unpickler, folders by their list."""
        if self.dataset is not None:
            return
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f"{self.dataset_name}: dataset root not found: {self.root} (set datamodule.root). "
                f"Expected layout: {LAYOUT}"
            )
        loaded, offset = [], 0
        for name in self.sets_requested:
            kind, path = self._source(name)
            if kind == "bin":
                data = load_verification_bin(path, self.folds)
                chosen = VerificationSet(name, "bin", path, data.is_same, data.fold, bins=data)
            else:
                chosen = self._load_folder(name, path)
            chosen.offset = offset
            offset += len(chosen)
            loaded.append(chosen)
        self.sets = loaded
        self.dataset = VerificationPairsDataset(loaded, self.image_size)

    # --- what a LightningModule needs ------------------------------------------------------------

    @property
    def set_names(self) -> list[str]:
        """The sets in batch order (``batch["set"]`` indexes this list)."""
        return list(self.sets_requested)

    def _require(self) -> VerificationPairsDataset:
        if self.dataset is None:
            self.setup()
        assert self.dataset is not None
        return self.dataset

    def set_pairs(self, name: str) -> VerificationSet:
        """Set ``name``: ``pairs`` (its slice of ``index``), ``is_same``, ``fold`` and its source."""
        self._require()
        for chosen in self.sets:
            if chosen.name == name:
                return chosen
        raise KeyError(f"no verification set {name!r}; the sets are {self.set_names}")

    def pair_list(self, split: str = "test") -> PairList:
        """Every pair over all sets (``index_a``/``index_b`` = image positions ``2i``, ``2i + 1``).

        Fold ids repeat across sets: score each set on its own (:meth:`set_pairs`, :meth:`set_ids`).
        """
        self._check_split(split)
        dataset = self._require()
        count = len(dataset)
        return PairList(
            np.arange(count, dtype=np.int64) * 2,
            np.arange(count, dtype=np.int64) * 2 + 1,
            np.concatenate([s.is_same for s in self.sets]),
            np.concatenate([s.fold for s in self.sets]),
        )

    def set_ids(self, split: str = "test") -> np.ndarray:
        """Per pair of :meth:`pair_list`, the position of its set in :attr:`set_names`."""
        self._check_split(split)
        self._require()
        return np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in enumerate(self.sets)])

    # --- loaders ---------------------------------------------------------------------------------

    def _check_split(self, split: str) -> None:
        if split not in ("val", "test"):
            raise ValueError(f"verification sets are evaluation data: no {split} split (use val or test)")

    def pair_dataset(self, split: str = "test") -> VerificationPairsDataset:
        """The pairs of every set (the same for ``val`` and ``test``)."""
        self._check_split(split)
        return self._require()

    def train_dataloader(self) -> DataLoader:
        """Verification sets are evaluation data."""
        raise ValueError("verification sets (.bin) are evaluation data; they have no training split")

    def val_dataloader(self) -> DataLoader:
        """Pair batches of every set, in order, each pair exactly once."""
        return self.make_loader(self.pair_dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        """Pair batches of every set, in order, each pair exactly once."""
        return self.make_loader(self.pair_dataset("test"), train=False)

    def pair_dataloader(self, split: str = "test") -> DataLoader:
        """Pair batches of ``split`` (as :meth:`test_dataloader`)."""
        return self.make_loader(self.pair_dataset(split), train=False)

    def describe(self) -> dict[str, Any]:
        """Root, image size, folds and, per set, its source (path, SHA-256), pairs and folds."""
        info: dict[str, Any] = {
            "dataset": self.dataset_name,
            "root": str(self.root),
            "image_size": self.image_size,
            "folds": self.folds,
            "sets": {s.name: s.describe() for s in self.sets},
            "pairs": sum(len(s) for s in self.sets),
        }
        return {**info, **super().describe()}
