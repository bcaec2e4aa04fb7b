"""Parsers for the metadata files of FFHQ, VGGFace2 and CelebA / CelebA-HQ, with their quirks.

Written from the formats described in docs/datasets.md ("FFHQ", "VGGFace2", "CelebA and CelebA-HQ") rather
than torchvision's readers, which check MD5 sums. Every parser raises :class:`MetadataFormatError` naming
the file and line when content is malformed, and :class:`DatasetLayoutError` naming the path when a file is
missing. Quirks handled: CRLF or LF line endings, count lines, header lines (with or without a file-name
column, trailing spaces), runs of spaces, CSV variants (Kaggle CelebA), quoted and doubled-quoted VGGFace2
fields, a trailing comma, and FFHQ's string keys.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.datamodules.components.layout import DatasetLayoutError

IMAGE_NAME = re.compile(r"\.(jpe?g|png|bmp|webp)$", re.IGNORECASE)


class MetadataFormatError(ValueError):
    """A metadata file whose content does not have the expected format (the message names file and line)."""


def find_path(root: Path, candidates: Sequence[str], what: str, directory: bool = False) -> Path:
    """The first ``root/<candidate>`` that exists (folder or file); raises listing every place tried."""
    for candidate in candidates:
        path = root / candidate
        if path.is_dir() if directory else path.is_file():
            return path
    tried = ", ".join(str(root / c) for c in candidates)
    raise DatasetLayoutError(f"{what} not found; looked for: {tried}")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines as ``(1-based line number, stripped text)``; CRLF, CR, LF and a BOM all accepted."""
    if not path.is_file():
        raise DatasetLayoutError(f"metadata file not found: {path}")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (for recording which split/metadata file a run used)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- CelebA ---------------------------------------------------------------------------------------------


@dataclass
class CelebATable:
    """One CelebA list file: per image file name, ``C`` integer values (file order kept)."""

    path: Path
    columns: list[str]
    files: list[str]
    values: np.ndarray
    declared_count: int | None = None
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {name: i for i, name in enumerate(self.files)}

    def __len__(self) -> int:
        return len(self.files)

    def lookup(self, files: Sequence[str]) -> np.ndarray:
        """Values of ``files`` (``[N, C]``); raises naming this file and the first image it lacks."""
        rows = [self.index.get(name, -1) for name in files]
        missing = [name for name, row in zip(files, rows, strict=True) if row < 0]
        if missing:
            raise MetadataFormatError(
                f"{self.path} has no line for {len(missing)} image(s) listed elsewhere, e.g. {missing[:3]} "
                "(a truncated or mismatched copy?)"
            )
        return self.values[np.asarray(rows, dtype=np.int64)]

    def describe(self) -> dict[str, object]:
        """Path, rows and the count line (a count that disagrees with the rows is reported, not fatal)."""
        info: dict[str, object] = {"path": str(self.path), "rows": len(self)}
        if self.declared_count is not None:
            info["declared_count"] = self.declared_count
            if self.declared_count != len(self):
                info["warning"] = f"count line says {self.declared_count} but the file has {len(self)} rows"
        return info


def _is_int(token: str) -> bool:
    return bool(re.fullmatch(r"[+-]?\d+", token))


def parse_celeba_txt(path: Path, num_values: int) -> CelebATable:
    """A whitespace-delimited CelebA list: optional count and header lines, then ``<file> v1 .. vC`` rows.

    Accepts runs of spaces, tabs, CRLF, a trailing space after the last header name, a header with or
    without the file-name column (``image_id x_1 ...`` for bbox), and an extra header line in files that
    officially have none (``identity_CelebA.txt`` copies).
    """
    lines = read_lines(path)
    position, declared, columns = 0, None, []
    if position < len(lines) and _is_int(lines[position][1]) and len(lines[position][1].split()) == 1:
        declared = int(lines[position][1])
        position += 1
    if position < len(lines) and not IMAGE_NAME.search(lines[position][1].split()[0]):
        columns = lines[position][1].split()
        if len(columns) == num_values + 1:
            columns = columns[1:]  # the header names the file-name column too (bbox: image_id)
        if len(columns) != num_values:
            number, text = lines[position]
            raise MetadataFormatError(
                f"{path}:{number}: header has {len(columns)} column names, expected {num_values}: {text!r}"
            )
        position += 1
    files: list[str] = []
    values = np.empty((max(0, len(lines) - position), num_values), dtype=np.int64)
    seen: set[str] = set()
    for number, text in lines[position:]:
        tokens = text.split()
        if not IMAGE_NAME.search(tokens[0]) or len(tokens) != num_values + 1:
            raise MetadataFormatError(
                f"{path}:{number}: expected '<image>.jpg' and {num_values} value(s), got {text!r}"
            )
        if tokens[0] in seen:
            raise MetadataFormatError(f"{path}:{number}: image {tokens[0]} is listed twice")
        try:
            values[len(files)] = [int(t) for t in tokens[1:]]
        except ValueError as exc:
            raise MetadataFormatError(f"{path}:{number}: non-integer value in {text!r}") from exc
        seen.add(tokens[0])
        files.append(tokens[0])
    if not files:
        raise MetadataFormatError(f"{path}: no data rows")
    return CelebATable(path, columns, files, values[: len(files)], declared)


def parse_celeba_csv(path: Path, num_values: int) -> CelebATable:
    """The Kaggle CSV variant: header ``image_id,<names>``, comma-separated rows."""
    if not path.is_file():
        raise DatasetLayoutError(f"metadata file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, skipinitialspace=True))
    rows = [[cell.strip() for cell in row] for row in rows if any(cell.strip() for cell in row)]
    if not rows or len(rows[0]) != num_values + 1:
        raise MetadataFormatError(f"{path}:1: expected a header 'image_id' + {num_values} column name(s)")
    columns, files = rows[0][1:], []
    values = np.empty((len(rows) - 1, num_values), dtype=np.int64)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != num_values + 1 or not IMAGE_NAME.search(row[0]):
            raise MetadataFormatError(f"{path}:{number}: expected '<image>.jpg' and {num_values} value(s)")
        try:
            values[len(files)] = [int(v) for v in row[1:]]
        except ValueError as exc:
            raise MetadataFormatError(f"{path}:{number}: non-integer value in {row}") from exc
        files.append(row[0])
    return CelebATable(path, columns, files, values[: len(files)], None)


def parse_celeba_list(path: Path, num_values: int) -> CelebATable:
    """A CelebA list file in the official TXT form or the Kaggle CSV form (by suffix)."""
    if path.suffix.lower() == ".csv":
        return parse_celeba_csv(path, num_values)
    return parse_celeba_txt(path, num_values)


def check_values(table: CelebATable, allowed: set[int], what: str) -> None:
    """Raise naming the file and first offending image when a value is outside ``allowed``."""
    bad = ~np.isin(table.values, sorted(allowed))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise MetadataFormatError(
            f"{table.path}: {what} values must be in {sorted(allowed)}; image {table.files[row]} has "
            f"{table.values[row].tolist()}"
        )


@dataclass
class CelebAHQMapping:
    """``CelebA-HQ-to-CelebA-mapping.txt``: HQ index → 0-based CelebA index and 1-based CelebA file name."""

    path: Path
    hq_index: np.ndarray
    orig_index: np.ndarray
    orig_file: list[str]


def parse_celeba_hq_mapping(path: Path) -> CelebAHQMapping:
    """Rows ``idx orig_idx orig_file`` with or without the header; ``orig_file`` must be ``orig_idx + 1``."""
    lines = read_lines(path)
    if lines and lines[0][1].split()[:1] == ["idx"]:
        lines = lines[1:]
    hq, orig, files = [], [], []
    for number, text in lines:
        tokens = text.split()
        if (
            len(tokens) < 3
            or not (_is_int(tokens[0]) and _is_int(tokens[1]))
            or not IMAGE_NAME.search(tokens[2])
        ):
            raise MetadataFormatError(f"{path}:{number}: expected 'idx orig_idx orig_file', got {text!r}")
        expected = f"{int(tokens[1]) + 1:06d}"
        if Path(tokens[2]).stem != expected:
            raise MetadataFormatError(
                f"{path}:{number}: orig_file {tokens[2]} does not match orig_idx {tokens[1]} "
                f"(orig_idx is 0-based, so the file should be {expected}.jpg)"
            )
        hq.append(int(tokens[0]))
        orig.append(int(tokens[1]))
        files.append(tokens[2])
    if not hq:
        raise MetadataFormatError(f"{path}: no data rows")
    if len(set(hq)) != len(hq):
        raise MetadataFormatError(f"{path}: an HQ index is listed twice")
    return CelebAHQMapping(path, np.asarray(hq, np.int64), np.asarray(orig, np.int64), files)


# --- VGGFace2 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VGGFace2Identity:
    """One row of ``identity_meta.csv``."""

    class_id: str
    name: str
    sample_num: int | None
    flag: int | None
    gender: str


def _clean(cell: str) -> str:
    """Strip spaces and (doubled) quotes around a field: ``' "14th_Dalai_Lama"'`` → ``14th_Dalai_Lama``."""
    return cell.strip().strip('"').strip()


def parse_identity_meta(path: Path) -> dict[str, VGGFace2Identity]:
    """``identity_meta.csv`` → class id → row.

    Handles the spaced header (``Class_ID, Name, ...``), rows of the form ``n000001, "Name", 424, 0, m``, the
    real copies' doubled quotes with no spaces before the numbers (docs/datasets.md, "VGGFace2"), commas
    inside quoted names, CRLF, a trailing comma and extra columns.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"metadata file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        rows = [(reader.line_num, row) for row in reader]
    rows = [(n, [_clean(c) for c in row]) for n, row in rows if any(c.strip() for c in row)]
    if not rows:
        raise MetadataFormatError(f"{path}: empty file")
    header = [c.lower() for c in rows[0][1]]
    while header and not header[-1]:
        header.pop()
    needed = ["class_id", "name", "sample_num", "flag", "gender"]
    if header[: len(needed)] != needed:
        raise MetadataFormatError(
            f"{path}:{rows[0][0]}: expected the header 'Class_ID, Name, Sample_Num, Flag, Gender', "
            f"got {rows[0][1]}"
        )
    out: dict[str, VGGFace2Identity] = {}
    for number, row in rows[1:]:
        while len(row) > len(header) and not row[-1]:
            row = row[:-1]
        if len(row) < len(needed) or not re.fullmatch(r"n\d+", row[0]):
            raise MetadataFormatError(
                f"{path}:{number}: expected 'Class_ID, Name, Sample_Num, Flag, Gender', got {row}"
            )
        try:
            sample_num = int(row[2]) if row[2] else None
            flag = int(row[3]) if row[3] else None
        except ValueError as exc:
            raise MetadataFormatError(
                f"{path}:{number}: Sample_Num and Flag must be integers, got {row}"
            ) from exc
        if row[0] in out:
            raise MetadataFormatError(f"{path}:{number}: class {row[0]} is listed twice")
        out[row[0]] = VGGFace2Identity(row[0], row[1], sample_num, flag, row[4])
    return out


def parse_image_list(path: Path) -> list[str]:
    """``train_list.txt`` / ``test_list.txt``: one ``<class>/<image>.jpg`` per line, no header."""
    names = []
    for number, text in read_lines(path):
        name = text.replace("\\", "/")
        if name.count("/") != 1 or not IMAGE_NAME.search(name):
            raise MetadataFormatError(f"{path}:{number}: expected '<class_id>/<image>.jpg', got {text!r}")
        names.append(name)
    if not names:
        raise MetadataFormatError(f"{path}: no image listed")
    return names


ATTRIBUTE_FILE = re.compile(r"^(\d+)-(.+)\.txt$", re.IGNORECASE)


@dataclass
class VGGFace2Attributes:
    """The VGGFace2 attribute lists (``attributes/NN-Name.txt``): image name → one 0/1 value per attribute."""

    folder: Path
    names: list[str]
    files: list[Path]
    index: dict[str, int]
    values: np.ndarray  # int64 [images, attributes]; -1 where a list does not name the image

    def lookup(self, images: Sequence[str]) -> np.ndarray:
        """``[N, A]`` values of ``images`` (``<class>/<image>.jpg``); -1 for images no list annotates."""
        out = np.full((len(images), len(self.names)), -1, dtype=np.int64)
        for row, name in enumerate(images):
            position = self.index.get(name)
            if position is not None:
                out[row] = self.values[position]
        return out

    def describe(self) -> dict[str, object]:
        """Folder, attribute names and annotated images per attribute."""
        return {
            "folder": str(self.folder),
            "names": list(self.names),
            "annotated_per_attribute": {
                name: int((self.values[:, k] >= 0).sum()) for k, name in enumerate(self.names)
            },
        }


def parse_vggface2_attributes(folder: Path) -> VGGFace2Attributes:
    """Every ``NN-Name.txt`` in ``folder`` (ordered by ``NN``): lines ``<class>/<image>.jpg<TAB>0|1``.

    CRLF or LF; fields split on any whitespace. A malformed line, a value other than 0/1 or an image named
    twice in one list raises naming the file and line.
    """
    found = []
    for path in sorted(folder.iterdir()):
        match = ATTRIBUTE_FILE.match(path.name)
        if path.is_file() and match:
            found.append((int(match.group(1)), match.group(2), path))
    if not found:
        raise DatasetLayoutError(
            f"no attribute list (NN-Name.txt, e.g. 01-Male.txt) in {folder}; expected the VGGFace2 "
            "repository's attributes/ folder"
        )
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise DatasetLayoutError(
            f"{folder}: two attribute lists share a number: {[p.name for _, _, p in found]}"
        )
    index: dict[str, int] = {}
    rows: list[list[int]] = []
    for column, (_, _, path) in enumerate(found):
        seen: set[str] = set()
        for number, text in read_lines(path):
            fields = text.split()
            if len(fields) != 2 or not IMAGE_NAME.search(fields[0]) or fields[1] not in ("0", "1"):
                raise MetadataFormatError(
                    f"{path}:{number}: expected '<class_id>/<image>.jpg<TAB>0|1', got {text!r}"
                )
            name = fields[0].replace("\\", "/")
            if name in seen:
                raise MetadataFormatError(f"{path}:{number}: image {name} is listed twice")
            seen.add(name)
            if name not in index:
                index[name] = len(rows)
                rows.append([-1] * len(found))
            rows[index[name]][column] = int(fields[1])
    values = np.asarray(rows, dtype=np.int64).reshape(-1, len(found))
    return VGGFace2Attributes(folder, [n for _, n, _ in found], [p for _, _, p in found], index, values)


BB_COLUMNS = ["NAME_ID", "X", "Y", "W", "H"]
LANDMARK_COLUMNS = ["NAME_ID", *(f"P{i}{axis}" for i in range(1, 6) for axis in "XY")]


@dataclass
class NamedRows:
    """Rows of a VGGFace2 ``bb_landmark`` CSV: ``NAME_ID`` (``n000002/0001_01``, no extension) → values."""

    path: Path
    names: np.ndarray
    values: np.ndarray

    def lookup(self, names: Sequence[str]) -> np.ndarray:
        """Values of ``names`` (extension-less ids); raises naming this file and the first missing id."""
        index = {name: i for i, name in enumerate(self.names.tolist())}
        rows = np.array([index.get(name, -1) for name in names], dtype=np.int64)
        if (rows < 0).any():
            missing = [n for n, r in zip(names, rows, strict=True) if r < 0]
            raise MetadataFormatError(
                f"{self.path} has no row for {len(missing)} image(s), e.g. {missing[:3]}"
            )
        return self.values[rows]


def parse_bb_landmark_csv(path: Path, columns: Sequence[str]) -> NamedRows:
    """``loose_bb_*.csv`` (``NAME_ID,X,Y,W,H``) or ``loose_landmark_*.csv`` (``NAME_ID,P1X,...,P5Y``)."""
    import pandas as pd

    if not path.is_file():
        raise DatasetLayoutError(f"metadata file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"NAME_ID": str}, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise MetadataFormatError(f"{path}: cannot parse as CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if list(frame.columns) != list(columns):
        raise MetadataFormatError(
            f"{path}:1: expected the header {','.join(columns)}, got {','.join(frame.columns)}"
        )
    try:
        values = frame[list(columns[1:])].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise MetadataFormatError(f"{path}: non-numeric coordinate: {exc}") from exc
    bad = np.isnan(values).any(axis=1) | frame["NAME_ID"].isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise MetadataFormatError(f"{path}:{row + 2}: missing value in row {frame.iloc[row].tolist()}")
    names = frame["NAME_ID"].str.strip().str.strip('"').str.replace("\\", "/", regex=False)
    return NamedRows(path, names.to_numpy(dtype=str), values)


# --- FFHQ -----------------------------------------------------------------------------------------------

FFHQ_CATEGORIES = ("training", "validation")


@dataclass
class FFHQTable:
    """The compact part of ``ffhq-dataset-v2.json``: index, split, file paths, size and 68 landmarks."""

    index: np.ndarray  # int64 [N]
    category: np.ndarray  # uint8 [N]: 0 training, 1 validation
    image_path: np.ndarray  # str [N], e.g. images1024x1024/00000/00000.png
    thumbnail_path: np.ndarray  # str [N]
    pixel_size: np.ndarray  # int64 [N, 2] (width, height) of the aligned image
    landmarks: np.ndarray  # float32 [N, 68, 2] in aligned-image pixels; NaN where absent

    def save(self, path: Path) -> None:
        """Write the table as ``.npz`` (atomically; the temporary name is per process, since DDP ranks may
        write the same cache file at once and one would rename the other's away)."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in self.__dataclass_fields__})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FFHQTable:
        """Read a table written by :meth:`save`."""
        with np.load(path) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def parse_ffhq_json(path: Path) -> FFHQTable:
    """``ffhq-dataset-v2.json`` (keys "0".."69999") → :class:`FFHQTable`, ordered by integer index."""
    if not path.is_file():
        raise DatasetLayoutError(f"metadata file not found: {path}")
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise MetadataFormatError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise MetadataFormatError(f"{path}: expected a JSON object keyed by image index")
    keys = sorted(data, key=lambda k: int(k) if str(k).isdigit() else -1)
    n = len(keys)
    table = FFHQTable(
        index=np.empty(n, np.int64),
        category=np.empty(n, np.uint8),
        image_path=np.empty(n, dtype=object),
        thumbnail_path=np.empty(n, dtype=object),
        pixel_size=np.full((n, 2), 1024, np.int64),
        landmarks=np.full((n, 68, 2), np.nan, np.float32),
    )
    for row, key in enumerate(keys):
        if not str(key).isdigit():
            raise MetadataFormatError(f"{path}: key {key!r} is not an image index")
        entry = data[key]
        where = f"{path} [{key!r}]"
        if not isinstance(entry, dict) or entry.get("category") not in FFHQ_CATEGORIES:
            got = entry.get("category") if isinstance(entry, dict) else entry
            raise MetadataFormatError(f"{where}: 'category' must be one of {FFHQ_CATEGORIES}, got {got!r}")
        image = entry.get("image") or {}
        thumbnail = entry.get("thumbnail") or {}
        table.index[row] = int(key)
        table.category[row] = FFHQ_CATEGORIES.index(entry["category"])
        table.image_path[row] = str(image.get("file_path", ""))
        table.thumbnail_path[row] = str(thumbnail.get("file_path", ""))
        if "pixel_size" in image:
            size = image["pixel_size"]
            if not (isinstance(size, list) and len(size) == 2):
                raise MetadataFormatError(f"{where}: image.pixel_size must be [width, height], got {size!r}")
            table.pixel_size[row] = size
        if "face_landmarks" in image:
            points = np.asarray(image["face_landmarks"], dtype=np.float32)
            if points.shape != (68, 2):
                raise MetadataFormatError(
                    f"{where}: image.face_landmarks must hold 68 [x, y] pairs, got shape {points.shape}"
                )
            table.landmarks[row] = points
    table.image_path = table.image_path.astype(str)
    table.thumbnail_path = table.thumbnail_path.astype(str)
    return table
