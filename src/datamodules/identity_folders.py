"""Any face set laid out as one folder per identity: ``<root>/<identity>/<image>.{jpg,png,...}``.

Identities are split identity-disjointly (train / val / test) by a seeded shuffle of the sorted folder
names, so the split is reproducible and independent of file-system order. This is the layout of LFW's
``lfw/`` folder, VGGFace2's ``train``/``test`` folders, the output of ``python -m src.preprocess.align``,
re-indexed ``id*/`` copies of FFHQ and VGGFace2-HQ, and of a user's own data.

The config's default root is ``<data dir>/faces`` (``data/faces``, or ``$PROFACE_DATA/faces``); any other
folder is given with ``datamodule.root=<folder>`` (data/README.md, "Your own faces").

A ``pairs_file`` for a split (an LFW-format list or a pair CSV; docs/datasets.md, "Pair and triplet files")
fixes that split's identities: the identities it names form the split (whatever their image count), as
LFW's ``pairs.txt`` defines LFW's evaluation set, and the split's ``*_identities`` count is not used (the
run record says so). The other splits are drawn from the remaining identities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from src.config.errors import ConfigError
from src.datamodules.components.layout import IMAGE_EXTENSIONS, DatasetLayoutError
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.components.pairs import NamedPairs
from src.datamodules.split import SplitFaceDataModule, SplitRecords, labels_from_keys

__all__ = [
    "IMAGE_EXTENSIONS",
    "LAYOUT",
    "DatasetLayoutError",
    "IdentityFoldersDataModule",
    "scan_identity_folders",
]

LAYOUT = "<root>/<identity>/<image>.jpg (one folder per identity, images inside)"
ROOT_HINT = 'set datamodule.root=<folder> (the default is <data dir>/faces); data/README.md, "Your own faces"'


def check_identity_root(root: Path) -> int:
    """Without scanning images: ``root`` exists and holds identity folders, not loose images; their count."""
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset root not found: {root}. Expected layout: {LAYOUT}; {ROOT_HINT}")
    entries = list(root.iterdir())
    folders = sum(1 for entry in entries if entry.is_dir())
    if folders:
        return folders
    loose = sum(1 for entry in entries if entry.suffix.lower() in IMAGE_EXTENSIONS)
    found = f"{loose} images directly in it" if loose else "no identity folder"
    raise DatasetLayoutError(
        f"{root} has {found}. Expected layout: {LAYOUT}: put each identity's images in its own sub-folder"
    )


def scan_identity_folders(root: Path, min_images: int) -> dict[str, list[Path]]:
    """Identity name → sorted image paths; errors name the root and the expected layout."""
    check_identity_root(root)
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


class IdentityFoldersDataModule(SplitFaceDataModule):
    """Face images in identity folders, with identity-disjoint train/val/test splits.

    ``val_identities``/``test_identities`` are counts; identities with fewer than ``min_images_per_identity``
    images are left out (and counted in ``describe()``) unless a pair list names them. Batches: ``image``,
    ``index`` and ``identity`` (labels 0..K-1 per split in sorted folder order). With ``skip_corrupt``
    every validation/test image is decoded once at set-up and unreadable ones are removed and recorded, so
    evaluation never counts a substitute twice; unreadable training images are recorded and replaced by
    the next readable one. Pairs, triplets and transforms as for every file-based DataModule
    (:class:`~src.datamodules.split.SplitFaceDataModule`).
    """

    dataset_name = "identity_folders"

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        val_identities: int = 0,
        test_identities: int = 0,
        min_images_per_identity: int = 2,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        self.val_identities, self.test_identities = int(val_identities), int(test_identities)
        if self.val_identities < 0 or self.test_identities < 0:
            raise ConfigError("datamodule.val_identities and datamodule.test_identities must be >= 0")
        self.min_images = int(min_images_per_identity)
        self.splits: dict[str, dict[str, list[Path]]] = {}
        self.excluded_identities = 0
        self._from_pairs: dict[str, str] = {}

    def check_layout(self) -> None:
        """The root exists and holds more identity folders than val and test take (no image is listed)."""
        folders = check_identity_root(self.root)
        counts = {
            s: 0 if s in self.pairs_files else getattr(self, f"{s}_identities") for s in ("val", "test")
        }
        if folders <= counts["val"] + counts["test"]:
            raise self._too_few(folders, counts, "")

    def _too_few(self, identities: int, counts: dict[str, int], which: str) -> ConfigError:
        return ConfigError(
            f"{self.root}: {identities} identities{which} cannot give {counts['val']} validation and "
            f"{counts['test']} test identities and still leave training identities: lower "
            "datamodule.val_identities / datamodule.test_identities"
        )

    def _pair_identities(self, split: str, scanned: dict[str, list[Path]]) -> list[str]:
        """The identities the ``pairs_file`` of ``split`` names (each must have a folder)."""
        parsed = self.read_pairs_file(split)
        if isinstance(parsed, NamedPairs):
            named = []
            for a, b, line in zip(parsed.name_a, parsed.name_b, parsed.lines, strict=True):
                named += [(a.split("/")[0], line), (b.split("/")[0], line)]
        else:
            named = parsed.identities
        out: dict[str, None] = {}
        for identity, line in named:
            if identity not in scanned:
                raise MetadataFormatError(
                    f"{parsed.source}:{line}: identity {identity!r} has no folder (with images) under "
                    f"{self.root}"
                )
            out[identity] = None
        return sorted(out)

    def _split(
        self, identities: dict[str, list[Path]], scanned: dict[str, list[Path]]
    ) -> dict[str, list[str]]:
        fixed: dict[str, list[str]] = {}
        owner: dict[str, str] = {}
        for split in ("val", "test"):
            if split in self.pairs_files:
                fixed[split] = self._pair_identities(split, scanned)
                for identity in fixed[split]:
                    if owner.setdefault(identity, split) != split:
                        raise ValueError(
                            f"identity {identity!r} is named by the pair lists of both the {owner[identity]} "
                            f"and the {split} split; splits must be identity-disjoint"
                        )
                self._from_pairs[split] = self.pairs_files[split]
        pool = sorted(n for n in identities if n not in owner)
        counts = {s: 0 if s in fixed else getattr(self, f"{s}_identities") for s in ("val", "test")}
        needed = counts["val"] + counts["test"]
        if needed >= len(pool):
            raise self._too_few(len(pool), counts, f" (with {self.min_images}+ images)")
        order = np.random.default_rng(self.split_seed).permutation(len(pool))
        shuffled = [pool[i] for i in order]
        drawn = {
            "test": shuffled[: counts["test"]],
            "val": shuffled[counts["test"] : needed],
            "train": shuffled[needed:],
        }
        return {split: sorted(fixed.get(split, drawn[split])) for split in ("train", "val", "test")}

    def build_records(self) -> dict[str, SplitRecords]:
        """Scan the root and split the identities (pair lists fix the identities of their split)."""
        scanned = scan_identity_folders(self.root, 1)
        identities = {n: p for n, p in scanned.items() if len(p) >= self.min_images}
        if not identities and not self.pairs_files:
            raise DatasetLayoutError(f"no identity under {self.root} has {self.min_images} or more images")
        chosen = self._split(identities, scanned)
        used = {name for names in chosen.values() for name in names}
        self.excluded_identities = len(set(scanned) - used)
        self.splits = {split: {n: scanned[n] for n in names} for split, names in chosen.items()}
        records = {}
        for split, folders in self.splits.items():
            if not folders:
                continue
            keys = [name for name in folders for _ in folders[name]]
            names = [path.relative_to(self.root).as_posix() for name in folders for path in folders[name]]
            records[split] = SplitRecords(self.root, names, labels_from_keys(keys), identity_names=keys)
        return records

    def layout_info(self) -> dict[str, Any]:
        """Identities per split (also of empty splits), identities left out, pair-list splits."""
        info: dict[str, Any] = {}
        for split, identities in self.splits.items():
            info[f"{split}_identities"] = len(identities)
            if split not in self.datasets:
                info[f"{split}_images"] = 0
        info["excluded_identities_below_min_images"] = self.excluded_identities
        info["min_images_per_identity"] = self.min_images
        if self._from_pairs:
            info["identities_from_pairs_file"] = dict(self._from_pairs)
        return info
