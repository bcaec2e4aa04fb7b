"""VGGFace2: ``train/`` and ``test/`` identity folders of loose face crops, with the official metadata.

Layout (docs/datasets.md, "VGGFace2"): ``<root>/{train,test}/nXXXXXX/<image>_<face>.jpg``;
``train_list.txt``, ``test_list.txt`` and ``identity_meta.csv`` at the root or under ``meta/``;
``bb_landmark/loose_bb_*.csv`` and ``loose_landmark_*.csv`` (also accepted under ``meta/`` or at the root);
optionally the attribute lists ``attributes/01-Male.txt ... 11-Mouth_Open.txt``. The image lists are the
reference: listed images that are missing are reported once (an error unless ``allow_partial``).

Splits: official ``train`` and ``test`` (identity-disjoint; checked). No official validation split:
``val_identities`` training identities are held out (open-set), drawn with ``torch.Generator`` seeded by
``split_seed`` from the listed training identities and stored as
``<splits_dir>/vggface2_val_identities_n<N>_seed<S>.csv`` (versioned in ``data/splits/``), then read back on
later runs. The hold-out needs the training split: with ``official_splits: [test]`` nothing is held out (the
test split is never cut into), there is no ``val`` split and the run record says why. Labels: per split,
0..K-1 in sorted class-id order (the test identities are a separate label space, as in the dataset);
``identity_id`` is the class number.

Crops (``crop``): ``landmarks`` — 5-point similarity warp of the loose crop to the ArcFace template at
``image_size`` (insightface style); ``bbox`` — the MTCNN box enlarged by ``bbox_margin`` (0.3 = VGG's
reference), made square, padded with black where it leaves the image; ``none`` — the whole loose crop resized.

Attributes (``attributes: true``): the 11 binary lists of the VGGFace2 repository (30,000 images each:
``n000002/0032_01.jpg<TAB>0|1``) become a per-image ``attributes`` vector in batches (1 / 0, and -1 where
the image is not annotated); ``describe()`` names the attributes and counts the annotated images.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.datamodules.components.geometry import BoxCrop, Geometry, LandmarkAlign
from src.datamodules.components.layout import IMAGE_EXTENSIONS, DatasetLayoutError
from src.datamodules.components.metadata import (
    BB_COLUMNS,
    LANDMARK_COLUMNS,
    MetadataFormatError,
    NamedRows,
    VGGFace2Attributes,
    find_path,
    parse_bb_landmark_csv,
    parse_identity_meta,
    parse_image_list,
    parse_vggface2_attributes,
)
from src.datamodules.components.pairs import split_file_info
from src.datamodules.split import (
    STALE_HINT,
    SplitFaceDataModule,
    SplitRecords,
    labels_from_keys,
)

OFFICIAL_SPLITS = ("train", "test")
CROPS = ("landmarks", "bbox", "none")
LAYOUT = (
    "<root>/train/n000002/0001_01.jpg, <root>/test/n000001/0019_01.jpg, "
    "<root>/{train_list.txt, test_list.txt, "
    "identity_meta.csv} (or under meta/), <root>/bb_landmark/loose_{bb,landmark}_{train,test}.csv"
)
ATTRIBUTE_DIRS = ("attributes", "meta/attributes")
CSV_CONTENT = {
    "loose_landmark": "the 5 MTCNN points of every image",
    "loose_bb": "the MTCNN face box of every image",
}


def scan_class_folder(folder: Path) -> set[str]:
    """Image names inside one identity folder (empty when the folder is missing)."""
    if not folder.is_dir():
        return set()
    with os.scandir(folder) as entries:
        return {e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)}


def class_number(class_id: str) -> int:
    """``n000123`` → 123."""
    return int(class_id.lstrip("n"))


class VGGFace2DataModule(SplitFaceDataModule):
    """VGGFace2 with the official identity-disjoint train/test split and a versioned validation hold-out.

    ``official_splits`` chooses which folders to load (``[test]`` alone for evaluation-only runs, with no
    validation split);
    ``use_image_lists=false`` scans the folders instead of reading ``*_list.txt``.
    """

    dataset_name = "vggface2"

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        crop: str = "landmarks",
        bbox_margin: float = 0.3,
        val_identities: int = 0,
        official_splits: Sequence[str] = OFFICIAL_SPLITS,
        use_image_lists: bool = True,
        attributes: bool = False,
        attributes_dir: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        if crop not in CROPS:
            raise ValueError(f"datamodule.crop must be one of {CROPS}, got {crop!r}")
        self.crop = crop
        self.bbox_margin = float(bbox_margin)
        if int(val_identities) < 0:
            raise ValueError(f"datamodule.val_identities must be >= 0, got {val_identities}")
        self.val_identities = int(val_identities)
        official = (official_splits,) if isinstance(official_splits, str) else tuple(official_splits)
        if not official or set(official) - set(OFFICIAL_SPLITS):
            raise ValueError(f"datamodule.official_splits must be a non-empty subset of {OFFICIAL_SPLITS}")
        self.official_splits = official
        self.use_image_lists = bool(use_image_lists)
        self.attributes = bool(attributes)
        self.attributes_dir = attributes_dir
        self.attribute_table: VGGFace2Attributes | None = None
        self._counts: dict[str, Any] = {}
        self._csv_cache: dict[str, NamedRows] = {}

    # --- metadata --------------------------------------------------------------------------------

    def _meta_file(self, name: str) -> Path:
        try:
            return find_path(self.root, (name, f"meta/{name}"), f"VGGFace2 {name}")
        except DatasetLayoutError as exc:
            raise DatasetLayoutError(f"{exc}. Expected layout: {LAYOUT}") from exc

    def _bb_file(self, name: str) -> Path:
        candidates = (f"bb_landmark/{name}", f"meta/bb_landmark/{name}", name)
        try:
            return find_path(self.root, candidates, f"VGGFace2 {name} (needed by crop={self.crop})")
        except DatasetLayoutError as exc:
            content = CSV_CONTENT[name.rsplit("_", 1)[0]]
            other = "crop=bbox (loose_bb_*.csv) or crop=none" if self.crop == "landmarks" else "crop=none"
            raise DatasetLayoutError(
                f"{exc}. crop={self.crop} reads {content} from {name}, which comes with VGGFace2's "
                f"bb_landmark.tar.gz metadata archive: extract it so that the file is "
                f"{self.root / 'bb_landmark' / name}. Or set datamodule.{other}, or detect landmarks "
                "yourself with `python -m src.preprocess.align` and load its output with identity_folders "
                '(docs/datasets.md, "VGGFace2")'
            ) from exc

    def _split_names(self, split: str) -> list[str]:
        """``<class>/<image>`` names of an official split; every listed image must exist."""
        folder = self.root / split
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"VGGFace2 {split} folder not found: {folder}. Expected layout: {LAYOUT}"
            )
        if not self.use_image_lists:
            with os.scandir(folder) as entries:
                classes = sorted(e.name for e in entries if e.is_dir())
            names = [f"{c}/{n}" for c in classes for n in sorted(scan_class_folder(folder / c))]
            if not names:
                raise DatasetLayoutError(f"no image under {folder}. Expected layout: {LAYOUT}")
            return names
        list_path = self._meta_file(f"{split}_list.txt")
        names = parse_image_list(list_path)
        present: dict[str, set[str]] = {}
        missing = []
        for name in names:
            class_id, image = name.split("/")
            if class_id not in present:
                present[class_id] = scan_class_folder(folder / class_id)
            if image not in present[class_id]:
                missing.append(name)
        self.note_missing(list_path, folder, missing)
        self._counts[f"{split}_unlisted_images"] = (
            sum(len(v) for v in present.values()) - len(set(names)) + len(set(missing))
        )
        return sorted(set(names))

    def _geometry(self, split: str, names: list[str]) -> Geometry:
        stems = [name.rsplit(".", 1)[0] for name in names]
        if self.crop == "landmarks":
            rows = self._csv(f"loose_landmark_{split}.csv", LANDMARK_COLUMNS)
            return LandmarkAlign(self.image_size, rows.lookup(stems).reshape(-1, 5, 2))
        if self.crop == "bbox":
            rows = self._csv(f"loose_bb_{split}.csv", BB_COLUMNS)
            return BoxCrop(self.image_size, rows.lookup(stems), margin=self.bbox_margin, square=True)
        return BoxCrop(self.image_size)

    def _csv(self, name: str, columns: Sequence[str]) -> NamedRows:
        """A ``bb_landmark`` CSV, parsed once per set-up (train and val share the train file)."""
        if name not in self._csv_cache:
            self._csv_cache[name] = parse_bb_landmark_csv(self._bb_file(name), columns)
        return self._csv_cache[name]

    def _check_meta(self, classes: dict[str, set[str]]) -> None:
        meta_path = self._meta_file("identity_meta.csv")
        meta = parse_identity_meta(meta_path)
        present = set().union(*classes.values())
        unknown = sorted(present - set(meta))
        if unknown:
            raise MetadataFormatError(
                f"{meta_path} has no row for {len(unknown)} identity folder(s), e.g. {unknown[:3]}"
            )
        flag_of_split = {"train": 1, "test": 0}
        mismatched = sorted(
            c
            for split, ids in classes.items()
            for c in ids
            if meta[c].flag not in (None, flag_of_split[split])
        )
        self._counts.update(
            {
                "identity_meta_file": str(meta_path),
                "identity_meta_rows": len(meta),
                "identity_meta_rows_without_folder": len(set(meta) - present),
                "identity_meta_flag_mismatches": mismatched[:20],
                "genders": {
                    g: sum(1 for c in present if meta[c].gender == g)
                    for g in sorted({meta[c].gender for c in present})
                },
            }
        )

    # --- validation hold-out ---------------------------------------------------------------------

    def _val_classes(self, train_classes: list[str]) -> list[str]:
        """The held-out validation identities: read from the split file, or derived (and stored)."""
        n = self.val_identities
        if n == 0:
            return []
        if n >= len(train_classes):
            raise ValueError(
                f"datamodule.val_identities={n} leaves no training identity "
                f"({len(train_classes)} in {self.root / 'train'})"
            )
        path = (
            self.splits_dir / f"vggface2_val_identities_n{n}_seed{self.split_seed}.csv"
            if self.splits_dir
            else None
        )
        if path is not None and path.is_file():
            with path.open(newline="") as handle:
                rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1) if row]
            if not rows or rows[0][1] != ["class_id"]:
                raise MetadataFormatError(f"{path}:1: expected the header class_id")
            chosen = [row[0].strip() for _, row in rows[1:]]
            known = set(train_classes)
            for number, row in rows[1:]:
                if row[0].strip() not in known:
                    raise MetadataFormatError(
                        f"{path}:{number}: {row[0]} is not a training identity under {self.root / 'train'}; "
                        f"{STALE_HINT}"
                    )
            if len(chosen) != n:
                raise MetadataFormatError(
                    f"{path}: lists {len(chosen)} identities, expected {n}; {STALE_HINT}"
                )
            self.split_files["val_identities"] = split_file_info(path, derived_now=False)
            return sorted(chosen)
        generator = torch.Generator().manual_seed(self.split_seed)
        order = torch.randperm(len(train_classes), generator=generator)[:n].tolist()
        chosen = sorted(train_classes[i] for i in order)
        if path is None:
            self.split_files["val_identities"] = {"path": None, "derived_now": True}
            return chosen
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("class_id\n" + "".join(f"{c}\n" for c in chosen))
        tmp.replace(path)
        self.split_files["val_identities"] = split_file_info(path, derived_now=True)
        return chosen

    # --- records ---------------------------------------------------------------------------------

    def _records(self, split: str, names: list[str], image_root: Path) -> SplitRecords:
        classes = [name.split("/")[0] for name in names]
        extras = {"identity_id": np.asarray([class_number(c) for c in classes], np.int64)}
        if self.attribute_table is not None:
            extras["attributes"] = self.attribute_table.lookup(names)
        return SplitRecords(
            image_root,
            names,
            labels_from_keys(classes),
            extras,
            self._geometry(split, names),
            identity_names=classes,
        )

    def _read_attributes(self, names: dict[str, list[str]]) -> None:
        """The attribute lists, checked against the loaded images (annotated counts per split)."""
        if not self.attributes:
            self.attribute_table = None
            return
        candidates = (self.attributes_dir,) if self.attributes_dir else ATTRIBUTE_DIRS
        try:
            folder = find_path(self.root, candidates, "VGGFace2 attribute folder", directory=True)
        except DatasetLayoutError as exc:
            raise DatasetLayoutError(
                f"{exc} (datamodule.attributes=true reads attributes/01-Male.txt ... 11-Mouth_Open.txt from "
                "the VGGFace2 repository; set datamodule.attributes_dir, or attributes=false)"
            ) from exc
        self.attribute_table = table = parse_vggface2_attributes(folder)
        loaded = {name for split_names in names.values() for name in split_names}
        self._counts["attributes"] = {
            **table.describe(),
            "annotated_images": {
                split: sum(1 for n in split_names if n in table.index) for split, split_names in names.items()
            },
            "rows_for_images_not_loaded": sum(1 for n in table.index if n not in loaded),
        }

    def build_records(self) -> dict[str, SplitRecords]:
        """Read lists and metadata, check the layout, hold out validation identities."""
        if not self.root.is_dir():
            raise DatasetLayoutError(f"dataset root not found: {self.root}. Expected layout: {LAYOUT}")
        names = {split: self._split_names(split) for split in self.official_splits}
        classes = {split: {n.split("/")[0] for n in split_names} for split, split_names in names.items()}
        if len(classes) == 2 and classes["train"] & classes["test"]:
            shared = sorted(classes["train"] & classes["test"])
            raise DatasetLayoutError(
                f"identities in both {self.root / 'train'} and {self.root / 'test'} (e.g. {shared[:3]}); "
                "VGGFace2's train and test identities are disjoint"
            )
        self._check_meta(classes)
        self._read_attributes(names)
        records: dict[str, SplitRecords] = {}
        if "train" not in names and self.val_identities:
            self._counts["val_identities_note"] = (
                f"datamodule.val_identities={self.val_identities} not used: validation identities are held "
                "out of the train split, which official_splits does not load (the test split is kept whole)"
            )
        if "train" in names:
            val = set(self._val_classes(sorted(classes["train"])))
            train_names = [n for n in names["train"] if n.split("/")[0] not in val]
            records["train"] = self._records("train", train_names, self.root / "train")
            if val:
                val_names = [n for n in names["train"] if n.split("/")[0] in val]
                records["val"] = self._records("train", val_names, self.root / "train")
        if "test" in names:
            records["test"] = self._records("test", names["test"], self.root / "test")
        self._counts["identities"] = sum(len(c) for c in classes.values())
        self._counts["official_images"] = {split: len(n) for split, n in names.items()}
        self._csv_cache.clear()
        return records

    def layout_info(self) -> dict[str, Any]:
        """Identities, official counts, metadata facts, crop."""
        return {
            "crop": self.crop,
            "bbox_margin": self.bbox_margin,
            "val_identities_held_out": self.val_identities if "train" in self.official_splits else 0,
            **self._counts,
        }
