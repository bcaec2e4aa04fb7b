"""Face images named by a torchkit / insightface-style image list: ``<relative image path> <integer label>``.

Recognition code bases built on Tencent's TFace ``torchkit`` train from an *index file* rather than from
identity folders: one line per image, the image path relative to an image root and its class label,
separated by a space (e.g. CelebA's aligned 112×112 crops ``align_crop_112/`` listed by
``Anno/loss/celebA_train.txt``). This DataModule reads such lists exactly as torchkit does, so that a network
trained here sees the same images under the same labels, and a released classification head (indexed by
those labels) fits:

* each non-blank line has two fields, ``path label`` (``label`` a non-negative integer); the image is
  ``<root>/<path>``, decoded with OpenCV and converted to RGB;
* labels are kept as the list gives them (not renumbered) and ``num_classes`` is the largest training label
  + 1, torchkit's class count (labels without an image are counted in ``describe()``);
* 4-field lines are torchkit's TFRecord index format (``tfr_name tfr_index tfr_offset label``): not read
  here, an error naming the file and line;
* the images are already aligned crops: no crop, only a resize to ``image_size`` when their size differs.

``list_file`` is the training list; ``val_list`` / ``test_list`` (same format, optional) give evaluation
splits, with their labels as listed. Without them a list is training data only, and asking for validation or
test data says which key to set. Bad lines (field count, label, a path that leaves ``root``, a path listed
twice) raise naming the file and line; listed images that the copy lacks are reported once like every other
dataset's (an error unless ``allow_partial``). Keys, layout and errors: docs/datasets.md, "Image lists
(torchkit format)".
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from src.config.errors import ConfigError
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.metadata import MetadataFormatError, file_sha256, read_lines
from src.datamodules.split import SplitFaceDataModule, SplitRecords

__all__ = ["LINE_FORMAT", "ImageList", "ImageListDataModule", "absent_images", "read_image_list"]

LINE_FORMAT = "'<image path relative to datamodule.root> <integer label>'"
LIST_KEYS = {"train": "list_file", "val": "val_list", "test": "test_list"}
INTEGER = re.compile(r"[+-]?\d+")
RECORDED_LABELS = 20


@dataclass
class ImageList:
    """One parsed list file: image names (normalised, relative to the root), labels and line numbers."""

    path: Path
    sha256: str
    names: list[str]
    labels: np.ndarray
    lines: list[int]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        """torchkit's class count: the largest label + 1."""
        return int(self.labels.max()) + 1

    def labels_without_images(self, first: int = RECORDED_LABELS) -> tuple[int, list[int]]:
        """How many labels in ``0 .. max`` no line uses, and the ``first`` of them (without a ``max``-sized
        table, so a stray huge label costs nothing)."""
        used = np.unique(self.labels).tolist()
        found: list[int] = []
        expected = 0
        for label in used:
            found += range(expected, min(label, expected + first - len(found)))
            if len(found) >= first:
                break
            expected = label + 1
        return self.num_classes - len(used), found

    def describe(self, classes: bool = False) -> dict[str, Any]:
        """Path, SHA-256, images, distinct labels and largest label; with ``classes`` (the training list) also
        the labels below the largest with no image, if any (each still has a class)."""
        info: dict[str, Any] = {
            "path": str(self.path),
            "sha256": self.sha256,
            "images": len(self.names),
            "labels": len(np.unique(self.labels)),
            "max_label": int(self.labels.max()),
        }
        count, first = self.labels_without_images()
        if classes and count:
            info["labels_without_images"] = count
            info["labels_without_images_first"] = first
        return info


def _listed_name(token: str, path: Path, number: int) -> str:
    """The image path of a line, normalised; raises when it is absolute or leaves the image root."""
    if token.startswith(("/", "\\")) or PureWindowsPath(token).drive:
        raise MetadataFormatError(
            f"{path}:{number}: image path {token!r} is absolute; list paths are relative to datamodule.root "
            "(the image folder they are joined to)"
        )
    if ".." in re.split(r"[/\\]", token):
        raise MetadataFormatError(
            f"{path}:{number}: image path {token!r} leaves datamodule.root ('..'); list paths must name "
            "images inside the image folder"
        )
    name = posixpath.normpath(token)
    if name in (".", ""):
        raise MetadataFormatError(f"{path}:{number}: image path {token!r} names no file")
    return name


def _label(token: str, path: Path, number: int) -> int:
    if not INTEGER.fullmatch(token):
        raise MetadataFormatError(
            f"{path}:{number}: label {token!r} is not an integer (expected {LINE_FORMAT})"
        )
    label = int(token)
    if label < 0:
        raise MetadataFormatError(
            f"{path}:{number}: label {label} is negative; labels index the classes 0 .. num_classes - 1"
        )
    return label


def read_image_list(path: Path) -> ImageList:
    """Parse a torchkit image list; every malformed line raises naming the file and line.

    Fields are separated by spaces (or tabs); blank lines, CRLF line ends and a BOM are accepted.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"image list not found: {path}")
    names: list[str] = []
    labels: list[int] = []
    lines: list[int] = []
    first_line: dict[str, int] = {}
    for number, text in read_lines(path):
        fields = text.split()
        if len(fields) == 4:
            raise MetadataFormatError(
                f"{path}:{number}: 4 fields ({text!r}) is torchkit's TFRecord index format "
                "'tfr_name tfr_index tfr_offset label', which is not supported: list the image files "
                f"instead, one {LINE_FORMAT} per line"
            )
        if len(fields) != 2:
            spaces = " (the format cannot hold a path with spaces)" if len(fields) > 2 else ""
            raise MetadataFormatError(
                f"{path}:{number}: expected {LINE_FORMAT}, got {len(fields)} field(s): {text!r}{spaces}"
            )
        name = _listed_name(fields[0], path, number)
        label = _label(fields[1], path, number)
        if name in first_line:
            raise MetadataFormatError(
                f"{path}:{number}: image {name} is listed twice (first on line {first_line[name]})"
            )
        first_line[name] = number
        names.append(name)
        labels.append(label)
        lines.append(number)
    if not names:
        raise MetadataFormatError(f"{path}: the image list is empty (expected one {LINE_FORMAT} per line)")
    return ImageList(path, file_sha256(path), names, np.asarray(labels, dtype=np.int64), lines)


def absent_images(root: Path, names: list[str]) -> list[str]:
    """The listed ``names`` (relative to ``root``) with no file, in list order; one scan per folder."""
    folders: dict[str, set[str]] = {}
    absent = []
    for name in names:
        folder, _, file_name = name.rpartition("/")
        if folder not in folders:
            try:
                with os.scandir(root / folder) as entries:
                    folders[folder] = {entry.name for entry in entries if entry.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                folders[folder] = set()
        if file_name not in folders[folder]:
            absent.append(name)
    return absent


class ImageListDataModule(SplitFaceDataModule):
    """Images and labels from torchkit image lists: ``list_file`` for training, ``val_list`` / ``test_list``.

    Batches: ``image``, ``index`` and ``identity`` (the label **as listed**). ``num_classes`` is the largest
    training label + 1 (torchkit's count, the rows of a head trained on the list) and ``train_identities``,
    when given, is checked against it. List paths are absolute or relative to ``root``. Pairs, triplets,
    transforms and partial copies as for every file-based DataModule
    (:class:`~src.datamodules.split.SplitFaceDataModule`); derived pair and triplet files are tagged with
    the list's SHA-256, so lists sharing ``splits_dir`` never read each other's.
    """

    dataset_name = "image_list"

    def __init__(
        self,
        root: str,
        list_file: str,
        val_list: str | None = None,
        test_list: str | None = None,
        image_size: int = 112,
        **common: Any,
    ) -> None:
        super().__init__(root, image_size, **common)
        if list_file is None or str(list_file) in ("", "???"):
            raise ConfigError(
                f"datamodule.list_file must name the training image list ({LINE_FORMAT} per line), "
                f"got {list_file!r}"
            )
        given = {"train": list_file, "val": val_list, "test": test_list}
        self.list_keys = {split: str(value) for split, value in given.items() if value not in (None, "")}
        self.lists: dict[str, ImageList] = {}

    def list_path(self, split: str) -> Path:
        """The list file of ``split`` (absolute, or under ``root``); raises naming the key if absent."""
        return self.data_path(self.list_keys[split], LIST_KEYS[split])

    def check_layout(self) -> None:
        """The image root and every configured list file exist (nothing is parsed)."""
        super().check_layout()
        for split in self.list_keys:
            self.list_path(split)

    def build_records(self) -> dict[str, SplitRecords]:
        """Parse the lists, check every listed image exists; one split per list, labels as listed."""
        if not self.root.is_dir():
            raise DatasetLayoutError(
                f"{self.dataset_name}: image root not found: {self.root} (the folder the list's paths are "
                "relative to; set datamodule.root)"
            )
        self.lists = {split: read_image_list(self.list_path(split)) for split in self.list_keys}
        records = {}
        for split, listed in self.lists.items():
            self.note_missing(listed.path, self.root, absent_images(self.root, listed.names))
            identity_names = [str(label) for label in listed.labels.tolist()]
            records[split] = SplitRecords(
                self.root, listed.names, listed.labels, identity_names=identity_names
            )
        return records

    def _check_expected_identities(self, records: dict[str, SplitRecords]) -> None:
        """``train_identities`` sizes classification heads, so it is checked against the class count."""
        expected = self.expected_train_identities
        if expected is None or "train" not in self.lists:
            return
        found = self.lists["train"].num_classes
        if found != expected:
            raise ConfigError(
                f"{self.dataset_name}: datamodule.train_identities={expected} but {self.lists['train'].path} "
                f"gives {found} classes (largest label + 1; set datamodule.train_identities={found} or null)"
            )

    def _tag(self, split: str) -> str:
        """Derived pair/triplet files name the list's SHA-256 (and a partial copy's missing files)."""
        listed = self.lists.get(split)
        own = f"_list-{listed.sha256[:10]}" if listed is not None else ""
        return f"{own}{super()._tag(split)}"

    def _require(self, split: str) -> None:
        if split not in self.list_keys:
            raise ConfigError(
                f"{self.dataset_name}: there is no {split} split: datamodule.list_file "
                f"({self.list_keys['train']}) is training data. Set datamodule.{LIST_KEYS[split]} to a list "
                f"of {split} images in the same format ({LINE_FORMAT} per line) to "
                f"{'validate' if split == 'val' else 'test'} on it"
            )
        super()._require(split)

    @property
    def num_classes(self) -> int:
        """torchkit's class count of the training list: its largest label + 1 (labels are kept as listed)."""
        self._require("train")
        return self.lists["train"].num_classes

    def layout_info(self) -> dict[str, Any]:
        """The class count and, per list file, its path, SHA-256, image and label counts."""
        info: dict[str, Any] = {
            "list_files": {split: listed.describe(split == "train") for split, listed in self.lists.items()}
        }
        if "train" in self.lists:
            info["num_classes"] = self.lists["train"].num_classes
        for split in self.lists:
            if split not in self.datasets:
                info[f"{split}_images"] = 0
        return info
