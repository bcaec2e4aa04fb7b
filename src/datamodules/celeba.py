"""CelebA (aligned 178×218 JPEGs) and CelebA-HQ (through its mapping to CelebA), with the official split.

Layouts accepted (docs/datasets.md, "CelebA and CelebA-HQ"): files flat under the root (torchvision's
``celeba/`` folder), the official ``Img/``, ``Anno/``, ``Eval/`` tree, and Kaggle's doubly nested
``img_align_celeba/img_align_celeba/`` with CSV lists (Kaggle has no identity file: use ``targets: [attr]``
there). Splits: the official ``list_eval_partition.txt`` (0 train, 1 valid, 2 test), which is
identity-disjoint (8,192 / 985 / 1,000 identities) — so no derived recognition split is needed; ``setup()``
checks the disjointness. Images the partition file lists but the copy lacks are reported once (an error
unless ``allow_partial``). In LFW-format pair lists an identity is its CelebA number (``2880 1 3``).

Batches: ``image``, ``index``, ``image_id`` (the file number), and per ``targets``: ``identity`` (labels
0..K-1 within the split, numbered by sorted CelebA id) with ``identity_id`` (the CelebA id 1..10177),
``attributes`` (40 × {0, 1}, from −1/1), ``bbox`` (x, y, w, h in **in-the-wild** image pixels, as the file
gives them) and ``landmarks`` (5 × (x, y), aligned-image points mapped into the output pixels).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.datamodules.components.geometry import BoxCrop
from src.datamodules.components.layout import IMAGE_EXTENSIONS, DatasetLayoutError
from src.datamodules.components.metadata import (
    CelebAHQMapping,
    CelebATable,
    MetadataFormatError,
    check_values,
    find_path,
    parse_celeba_hq_mapping,
    parse_celeba_list,
)
from src.datamodules.split import SplitFaceDataModule, SplitRecords, labels_from_keys

PARTITION_SPLITS = {0: "train", 1: "val", 2: "test"}
TARGETS = ("identity", "attr", "bbox", "landmarks")
IMAGE_DIRS = (
    "img_align_celeba/img_align_celeba",
    "img_align_celeba",
    "Img/img_align_celeba",
    "celeba/img_align_celeba",
)
META_DIRS = ("", "Anno/", "Eval/", "celeba/")
# CelebA's standard 178×178 centre crop of the 178×218 aligned images (x, y, w, h).
CENTER_CROP_178 = (0, 20, 178, 178)
LAYOUT = (
    "<root>/img_align_celeba/000001.jpg ... and <root>/{identity_CelebA.txt, list_eval_partition.txt, "
    "list_attr_celeba.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt} (or under Anno/, Eval/)"
)


def find_metadata(root: Path, stem: str, what: str) -> Path:
    """``<stem>.txt`` (or Kaggle's ``<stem>.csv``) at the root or under ``Anno/``, ``Eval/``, ``celeba/``."""
    candidates = [f"{folder}{stem}{ext}" for ext in (".txt", ".csv") for folder in META_DIRS]
    try:
        return find_path(root, candidates, what)
    except DatasetLayoutError as exc:
        raise DatasetLayoutError(f"{exc}. Expected layout: {LAYOUT}") from exc


def numeric_key(name: str) -> tuple[int, str]:
    """Sort key by the integer file stem (``9.jpg`` before ``10.jpg``), then by name."""
    stem = Path(name).stem
    return (int(stem) if stem.isdigit() else -1, name)


def scan_images(folder: Path) -> set[str]:
    """Names of the image files directly inside ``folder``."""
    with os.scandir(folder) as entries:
        return {e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)}


def listed_but_absent(listed: Sequence[str], present: set[str]) -> list[str]:
    """The listed names that are not on disk (reported with ``note_missing``)."""
    return [name for name in listed if name not in present]


class CelebAMetadata:
    """The CelebA list files a run needs, parsed once and looked up by CelebA file name."""

    def __init__(self, root: Path, targets: Sequence[str]) -> None:
        self.root = root
        self.partition = parse_celeba_list(
            find_metadata(root, "list_eval_partition", "CelebA partition file"), 1
        )
        check_values(self.partition, {0, 1, 2}, "partition")
        self.tables: dict[str, CelebATable] = {"partition": self.partition}
        if "identity" in targets:
            path = find_metadata(root, "identity_CelebA", "CelebA identity file")
            self.tables["identity"] = parse_celeba_list(path, 1)
        if "attr" in targets:
            table = parse_celeba_list(find_metadata(root, "list_attr_celeba", "CelebA attribute file"), 40)
            check_values(table, {-1, 0, 1}, "attribute")
            self.tables["attr"] = table
        if "bbox" in targets:
            self.tables["bbox"] = parse_celeba_list(
                find_metadata(root, "list_bbox_celeba", "CelebA bbox file"), 4
            )
        if "landmarks" in targets:
            path = find_metadata(root, "list_landmarks_align_celeba", "CelebA aligned-landmark file")
            self.tables["landmarks"] = parse_celeba_list(path, 10)

    def values(self, target: str, files: Sequence[str]) -> np.ndarray:
        """Per-file values of one table (raises naming the table file when a file has no line)."""
        return self.tables[target].lookup(files)

    @property
    def attribute_names(self) -> list[str]:
        """The 40 attribute names from the header (trailing spaces stripped)."""
        return [name.strip() for name in self.tables["attr"].columns if name.strip()]

    def describe(self) -> dict[str, Any]:
        """Path and row count (and count-line warnings) of every table read."""
        return {f"{name}_file": table.describe() for name, table in self.tables.items()}


def check_identity_disjoint(ids: np.ndarray, splits: np.ndarray, source: Path) -> None:
    """Raise naming the identity file when an identity appears in more than one partition split."""
    owners: dict[int, set[int]] = {}
    for identity, split in zip(ids.tolist(), splits.tolist(), strict=True):
        owners.setdefault(identity, set()).add(split)
    shared = sorted(i for i, s in owners.items() if len(s) > 1)
    if shared:
        raise MetadataFormatError(
            f"{source}: {len(shared)} identities appear in more than one partition split "
            f"(e.g. {shared[:5]}); "
            "the official partition is identity-disjoint. Set datamodule.check_identity_disjoint=false to "
            "accept this copy anyway"
        )


def split_records(
    image_root: Path,
    names: list[str],
    partition: np.ndarray,
    identity_ids: np.ndarray | None,
    extras: dict[str, np.ndarray],
    geometry: BoxCrop,
) -> dict[str, SplitRecords]:
    """Records per partition split; labels are numbered within each split by sorted identity id."""
    out = {}
    for code, split in PARTITION_SPLITS.items():
        index = np.flatnonzero(partition == code)
        if not len(index):
            continue
        split_extras = {key: value[index] for key, value in extras.items()}
        labels, identity_names = None, None
        if identity_ids is not None:
            labels = labels_from_keys(identity_ids[index].tolist())
            split_extras["identity_id"] = identity_ids[index]
            identity_names = [str(i) for i in identity_ids[index].tolist()]
        out[split] = SplitRecords(
            image_root, [names[i] for i in index], labels, split_extras, geometry, identity_names
        )
    return out


def _check_targets(targets: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    unknown = sorted(set(targets) - set(allowed))
    if unknown:
        raise ValueError(
            f"datamodule.targets: unknown target(s) {unknown}; expected a subset of {list(allowed)}"
        )
    return targets


class CelebADataModule(SplitFaceDataModule):
    """CelebA aligned images with the official partition and the requested ``targets``.

    ``crop_box`` (x, y, w, h in the 178×218 image; default the 178×178 centre crop, ``null`` = resize the
    whole image) is applied before resizing to ``image_size``. ``image_dir`` overrides the image-folder
    search. ``check_identity_disjoint`` verifies the partition shares no identity across splits.
    """

    dataset_name = "celeba"

    def __init__(
        self,
        root: str,
        image_size: int = 112,
        targets: Sequence[str] = ("identity",),
        crop_box: Sequence[int] | None = CENTER_CROP_178,
        image_dir: str | None = None,
        check_identity_disjoint: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        self.targets = _check_targets(targets, TARGETS)
        if crop_box is not None and (len(crop_box) != 4 or min(crop_box[2:]) <= 0):
            raise ValueError(f"datamodule.crop_box must be [x, y, w, h] with w, h > 0, got {crop_box}")
        self.crop_box = None if crop_box is None else tuple(int(v) for v in crop_box)
        self.image_dir = image_dir
        self.check_disjoint = bool(check_identity_disjoint)
        self.metadata: CelebAMetadata | None = None
        self._identity_total = 0

    def find_image_dir(self) -> Path:
        """The folder of the aligned JPEGs."""
        if not self.root.is_dir():
            raise DatasetLayoutError(f"dataset root not found: {self.root}. Expected layout: {LAYOUT}")
        candidates = (self.image_dir,) if self.image_dir else IMAGE_DIRS
        try:
            return find_path(self.root, candidates, "CelebA image folder", directory=True)
        except DatasetLayoutError as exc:
            raise DatasetLayoutError(f"{exc}. Expected layout: {LAYOUT}") from exc

    def build_records(self) -> dict[str, SplitRecords]:
        """Parse the lists, check every listed image exists, and split by the partition file."""
        image_dir = self.find_image_dir()
        self.metadata = metadata = CelebAMetadata(self.root, self.targets)
        names = sorted(metadata.partition.files, key=numeric_key)
        absent = listed_but_absent(names, scan_images(image_dir))
        self.note_missing(metadata.partition.path, image_dir, absent)
        partition = metadata.values("partition", names)[:, 0]
        geometry = BoxCrop(self.image_size, None if self.crop_box is None else np.asarray(self.crop_box))
        extras: dict[str, np.ndarray] = {"image_id": np.asarray([numeric_key(n)[0] for n in names], np.int64)}
        if "attr" in self.targets:
            extras["attributes"] = (metadata.values("attr", names) > 0).astype(np.int64)
        if "bbox" in self.targets:
            extras["bbox"] = metadata.values("bbox", names)
        if "landmarks" in self.targets:
            points = metadata.values("landmarks", names).reshape(-1, 5, 2).astype(np.float64)
            # points are in the 178×218 aligned image's pixels
            extras["landmarks"] = geometry.map_points(points, 0, (218, 178)).astype(np.float32)
        ids = None
        if "identity" in self.targets:
            ids = metadata.values("identity", names)[:, 0]
            if self.check_disjoint:
                check_identity_disjoint(ids, partition, metadata.tables["identity"].path)
        self._identity_total = 0 if ids is None else len(np.unique(ids))
        return split_records(image_dir, names, partition, ids, extras, geometry)

    def layout_info(self) -> dict[str, Any]:
        """Total identities, targets, crop, metadata files and attribute names."""
        info: dict[str, Any] = {"targets": list(self.targets), "crop_box": self.crop_box}
        if "identity" in self.targets:
            info["identities"] = self._identity_total
            info["identity_disjoint_checked"] = self.check_disjoint
        if self.metadata is not None:
            info.update(self.metadata.describe())
            if "attr" in self.targets:
                info["attribute_names"] = self.metadata.attribute_names
        return info


class CelebAHQDataModule(SplitFaceDataModule):
    """CelebA-HQ images (``0.jpg``/``00000.jpg``, any size); CelebA identities and partition via the mapping.

    ``root`` holds ``CelebA-HQ-img/`` and ``CelebA-HQ-to-CelebA-mapping.txt`` (or both under
    ``CelebAMask-HQ/``); ``celeba_root`` holds CelebA's list files. HQ index → ``orig_file`` → identity and
    partition (not the 0-based ``orig_idx`` against 1-based boundaries; docs/datasets.md, "CelebA and
    CelebA-HQ"). Targets:
    ``identity`` and ``attr`` (CelebA's attributes of the source image). Batches carry ``image_id`` (HQ
    index) and ``celeba_image_id`` (the source CelebA file number).
    """

    dataset_name = "celeba_hq"

    def __init__(
        self,
        root: str,
        celeba_root: str,
        image_size: int = 256,
        targets: Sequence[str] = ("identity",),
        image_dir: str = "CelebA-HQ-img",
        mapping_file: str = "CelebA-HQ-to-CelebA-mapping.txt",
        check_identity_disjoint: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        self.celeba_root = Path(str(celeba_root)).expanduser()
        self.targets = _check_targets(targets, ("identity", "attr"))
        self.image_dir, self.mapping_file = image_dir, mapping_file
        self.check_disjoint = bool(check_identity_disjoint)
        self.metadata: CelebAMetadata | None = None
        self.mapping: CelebAHQMapping | None = None
        self._counts: dict[str, Any] = {}

    def build_records(self) -> dict[str, SplitRecords]:
        """Map HQ images to CelebA files, check every mapped image exists, split by CelebA's partition."""
        if not self.root.is_dir():
            raise DatasetLayoutError(f"dataset root not found: {self.root}")
        folders = (self.image_dir, f"CelebAMask-HQ/{self.image_dir}")
        image_dir = find_path(self.root, folders, "CelebA-HQ image folder", directory=True)
        mapping_path = find_path(
            self.root, (self.mapping_file, f"CelebAMask-HQ/{self.mapping_file}"), "CelebA-HQ mapping file"
        )
        self.mapping = mapping = parse_celeba_hq_mapping(mapping_path)
        if not self.celeba_root.is_dir():
            raise DatasetLayoutError(
                f"CelebA root not found: {self.celeba_root} (CelebA-HQ takes identities and the partition "
                "from "
                "CelebA's identity_CelebA.txt and list_eval_partition.txt; set datamodule.celeba_root)"
            )
        self.metadata = metadata = CelebAMetadata(self.celeba_root, self.targets)
        by_index: dict[int, str] = {}
        for name in sorted(scan_images(image_dir)):
            stem = Path(name).stem
            if not stem.isdigit():
                continue
            if int(stem) in by_index:
                raise DatasetLayoutError(
                    f"two files for CelebA-HQ image {int(stem)} in {image_dir}: {by_index[int(stem)]}, {name}"
                )
            by_index[int(stem)] = name
        order = np.argsort(mapping.hq_index, kind="stable")
        missing = [int(mapping.hq_index[i]) for i in order if int(mapping.hq_index[i]) not in by_index]
        self.note_missing(mapping_path, image_dir, [f"{i}.jpg" for i in missing])
        names = [by_index.get(int(mapping.hq_index[i]), f"{int(mapping.hq_index[i])}.jpg") for i in order]
        orig_files = [mapping.orig_file[i] for i in order]
        partition = metadata.values("partition", orig_files)[:, 0]
        extras: dict[str, np.ndarray] = {
            "image_id": mapping.hq_index[order],
            "celeba_image_id": mapping.orig_index[order] + 1,
        }
        if "attr" in self.targets:
            extras["attributes"] = (metadata.values("attr", orig_files) > 0).astype(np.int64)
        ids = None
        if "identity" in self.targets:
            ids = metadata.values("identity", orig_files)[:, 0]
            if self.check_disjoint:
                check_identity_disjoint(ids, partition, metadata.tables["identity"].path)
        self._counts = {
            "identities": 0 if ids is None else len(np.unique(ids)),
            "hq_images_not_in_mapping": len(by_index) - (len(names) - len(missing)),
            "mapping_file": str(mapping_path),
            "celeba_root": str(self.celeba_root),
        }
        return split_records(image_dir, names, partition, ids, extras, BoxCrop(self.image_size))

    def layout_info(self) -> dict[str, Any]:
        """Total identities, mapping and CelebA files used."""
        info: dict[str, Any] = {"targets": list(self.targets), **self._counts}
        if self.metadata is not None:
            info.update(self.metadata.describe())
            if "attr" in self.targets:
                info["attribute_names"] = self.metadata.attribute_names
        return info
