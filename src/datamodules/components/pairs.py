"""Verification pairs and training triplets: the list formats of LFW and of the released protection code.

Formats read (docs/datasets.md, "Pair and triplet files"):

* **LFW-format pair lists** (:func:`parse_pairs_txt`): LFW's View 2 ``pairs.txt`` (header ``10<TAB>300``:
  folds × matched pairs per fold; then per fold 300 matched ``Name i j`` and 300 mismatched
  ``Name1 i Name2 j`` lines), View 1 (``pairsDevTrain.txt``: one count, a single fold), and the CelebA /
  VGGFace2 ``pairs.txt`` lists of the released protection code (same shape, header ``10 300`` with a space,
  maybe no final newline). Fields split on any whitespace. ``Name i`` becomes an image name by one of two
  conventions (:class:`PairNamer`): ``lfw`` — the file ``Name/Name_{i:04d}.<ext>`` — or ``index`` — the
  ``i``-th (1-based) image of identity ``Name`` in the split's listing order.
* **Pair CSVs** written by this project (``fold,is_same,image_a,image_b``, image names relative to the
  split's image folder), derived here or supplied by the user.
* **Index triplet lists** (:func:`read_index_triplets`): ``triplets_<split>.txt`` with ``anchor negative
  positive`` per line — integer positions in the matching ``filenames_<split>.txt``
  (:func:`read_filenames_list`: one image path per line, optionally followed by an integer identity label).
* **Triplet CSVs** written by this project (``anchor,positive,negative`` image names).

:func:`derive_pairs` builds LFW-style pairs for a labelled split (identities dealt into folds, so the folds
are identity-disjoint as LFW's); :func:`derive_triplets` gives one random positive and one random negative
per anchor, as the released triplet lists do. Both use ``torch.Generator().manual_seed(seed)`` only. Every
reader raises :class:`MetadataFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.metadata import MetadataFormatError, file_sha256, read_lines

PAIR_COLUMNS = ["fold", "is_same", "image_a", "image_b"]
TRIPLET_COLUMNS = ["anchor", "positive", "negative"]


@dataclass
class NamedPairs:
    """Pairs of relative image names with match flag, fold and the source line of each pair."""

    name_a: list[str]
    name_b: list[str]
    is_same: np.ndarray
    fold: np.ndarray
    lines: list[int]
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.name_a)


@dataclass
class PairList:
    """Pairs as positions into an image dataset — what :func:`verification_accuracy` needs.

    ``fold`` gives fold ids for ``verification_accuracy(scores, is_same, num_folds, fold_ids=fold)``.
    """

    index_a: np.ndarray
    index_b: np.ndarray
    is_same: np.ndarray
    fold: np.ndarray

    def __len__(self) -> int:
        return len(self.index_a)

    @property
    def num_folds(self) -> int:
        """Number of distinct folds."""
        return len(np.unique(self.fold))

    def tensors(self) -> dict[str, torch.Tensor]:
        """``index_a``, ``index_b`` (long), ``is_same`` (bool) and ``fold`` (long) as tensors."""
        return {
            "index_a": torch.from_numpy(self.index_a.astype(np.int64)),
            "index_b": torch.from_numpy(self.index_b.astype(np.int64)),
            "is_same": torch.from_numpy(self.is_same.astype(bool)),
            "fold": torch.from_numpy(self.fold.astype(np.int64)),
        }

    def describe(self) -> dict[str, object]:
        """Counts: pairs, matched, mismatched, folds and pairs per fold."""
        folds, counts = np.unique(self.fold, return_counts=True)
        return {
            "pairs": len(self),
            "matched": int(self.is_same.sum()),
            "mismatched": int((~self.is_same).sum()),
            "folds": len(folds),
            "pairs_per_fold": {int(f): int(c) for f, c in zip(folds, counts, strict=True)},
        }


def lfw_image_name(person: str, number: int) -> str:
    """``Name/Name_{number:04d}.jpg`` — LFW's file of image ``number`` (1-based) of ``person``."""
    return f"{person}/{person}_{number:04d}.jpg"


PAIR_NAMINGS = ("auto", "lfw", "index")


@dataclass
class PairRefs:
    """An LFW-format pair list before its ``Name i`` references are turned into image names."""

    person_a: list[str]
    number_a: list[int]
    person_b: list[str]
    number_b: list[int]
    is_same: np.ndarray
    fold: np.ndarray
    lines: list[int]
    source: Path

    def __len__(self) -> int:
        return len(self.person_a)

    @property
    def identities(self) -> list[tuple[str, int]]:
        """Every identity token with the first line naming it, in file order."""
        first: dict[str, int] = {}
        for a, b, line in zip(self.person_a, self.person_b, self.lines, strict=True):
            first.setdefault(a, line)
            first.setdefault(b, line)
        return list(first.items())


def _positive_int(token: str, path: Path, number: int) -> int:
    if not token.isdigit() or int(token) < 1:
        raise MetadataFormatError(f"{path}:{number}: expected a 1-based image number, got {token!r}")
    return int(token)


def parse_pairs_txt(path: Path) -> PairRefs:
    """An LFW-format pair list: ``folds n`` header (or ``n``: one fold), then per fold ``n`` matched and
    ``n`` mismatched lines; any other order or count raises naming the file and line."""
    lines = read_lines(path)
    if not lines:
        raise MetadataFormatError(f"{path}: empty pairs file")
    header_number, header = lines[0]
    tokens = header.split()
    if not tokens or len(tokens) > 2 or not all(t.isdigit() and int(t) > 0 for t in tokens):
        raise MetadataFormatError(
            f"{path}:{header_number}: expected a header '<folds> <pairs per fold>' (e.g. '10\\t300') or "
            f"'<pairs>', got {header!r}"
        )
    folds, per_class = (int(tokens[0]), int(tokens[1])) if len(tokens) == 2 else (1, int(tokens[0]))
    rows = lines[1:]
    expected = folds * 2 * per_class
    if len(rows) != expected:
        raise MetadataFormatError(
            f"{path}: header {header!r} announces {folds} fold(s) × ({per_class} matched + {per_class} "
            f"mismatched) = {expected} pair lines, but the file has {len(rows)}"
        )
    refs = PairRefs([], [], [], [], np.zeros(expected, bool), np.zeros(expected, np.int64), [], path)
    for i, (number, text) in enumerate(rows):
        fold, within = divmod(i, 2 * per_class)
        matched = within < per_class
        fields = text.split()
        if matched and len(fields) != 3:
            raise MetadataFormatError(
                f"{path}:{number}: fold {fold + 1}, pair {within + 1} should be a matched pair 'Name i j', "
                f"got {text!r}"
            )
        if not matched and len(fields) != 4:
            raise MetadataFormatError(
                f"{path}:{number}: fold {fold + 1}, pair {within + 1} should be a mismatched pair "
                f"'Name1 i Name2 j', got {text!r}"
            )
        if matched:
            person_a, a, person_b, b = fields[0], fields[1], fields[0], fields[2]
        else:
            person_a, a, person_b, b = fields
        refs.person_a.append(person_a)
        refs.number_a.append(_positive_int(a, path, number))
        refs.person_b.append(person_b)
        refs.number_b.append(_positive_int(b, path, number))
        refs.is_same[i] = matched
        refs.fold[i] = fold
        refs.lines.append(number)
    return refs


def parse_lfw_pairs(path: Path) -> NamedPairs:
    """LFW ``pairs.txt`` / ``pairsDevTrain/Test.txt`` with LFW's own file names (``Name/Name_0001.jpg``)."""
    refs = parse_pairs_txt(path)
    return NamedPairs(
        [lfw_image_name(p, n) for p, n in zip(refs.person_a, refs.number_a, strict=True)],
        [lfw_image_name(p, n) for p, n in zip(refs.person_b, refs.number_b, strict=True)],
        refs.is_same,
        refs.fold,
        list(refs.lines),
        path,
    )


def _strip_extension(name: str) -> str:
    head, dot, ext = name.rpartition(".")
    return head if dot and "/" not in ext else name


class PairNamer:
    """Turns an LFW-format ``Name i`` into an image name of one split.

    ``names`` are the split's image names in listing order and ``identity_names`` the identity token of
    each (the folder name, the CelebA identity number, ...). ``lfw``: ``Name/Name_{i:04d}`` with any image
    extension; ``index``: the ``i``-th image (1-based) of identity ``Name`` in listing order.
    """

    def __init__(self, names: Sequence[str], identity_names: Sequence[str] | None, what: str) -> None:
        self.what = what
        self.by_stem: dict[str, str] = {}
        for name in names:
            self.by_stem.setdefault(_strip_extension(name), name)
        self.by_identity: dict[str, list[str]] | None = None
        if identity_names is not None:
            self.by_identity = {}
            for name, identity in zip(names, identity_names, strict=True):
                self.by_identity.setdefault(str(identity), []).append(name)

    def lfw(self, person: str, number: int) -> str | None:
        """The ``lfw``-convention name, or None when the split has no such file."""
        return self.by_stem.get(f"{person}/{person}_{number:04d}")

    def choose(self, refs: PairRefs, naming: str) -> str:
        """``naming``; ``auto``: ``lfw`` when the first pair's first image exists by it, else ``index``."""
        if naming not in PAIR_NAMINGS:
            raise ValueError(f"datamodule.pairs_naming must be one of {PAIR_NAMINGS}, got {naming!r}")
        if naming != "auto":
            return naming
        if not len(refs) or self.lfw(refs.person_a[0], refs.number_a[0]) is not None:
            return "lfw"
        return "index"

    def name(self, person: str, number: int, naming: str, source: Path, line: int) -> str:
        """The image name of ``person`` ``number``; raises naming the list file and line."""
        if naming == "lfw":
            found = self.lfw(person, number)
            if found is None:
                raise MetadataFormatError(
                    f"{source}:{line}: no image {person}/{person}_{number:04d}.* in the {self.what} "
                    "(pairs_naming=lfw; set datamodule.pairs_naming=index if the list numbers each "
                    "identity's images in listing order)"
                )
            return found
        if self.by_identity is None:
            raise ValueError(f"the {self.what} has no identity names, so pairs_naming=index cannot be used")
        images = self.by_identity.get(person)
        if not images:
            raise MetadataFormatError(
                f"{source}:{line}: identity {person!r} has no image in the {self.what} (pairs_naming=index)"
            )
        if number > len(images):
            raise MetadataFormatError(
                f"{source}:{line}: identity {person!r} has {len(images)} image(s) in the {self.what}, the "
                f"pair asks for image {number} (pairs_naming=index)"
            )
        return images[number - 1]

    def name_pairs(self, refs: PairRefs, naming: str) -> NamedPairs:
        """Every pair of ``refs`` by image name (``naming`` as chosen by :meth:`choose`)."""
        name_a = [
            self.name(p, n, naming, refs.source, line)
            for p, n, line in zip(refs.person_a, refs.number_a, refs.lines, strict=True)
        ]
        name_b = [
            self.name(p, n, naming, refs.source, line)
            for p, n, line in zip(refs.person_b, refs.number_b, refs.lines, strict=True)
        ]
        return NamedPairs(name_a, name_b, refs.is_same, refs.fold, list(refs.lines), refs.source)


def _first_line(path: Path) -> str:
    lines = read_lines(path)
    return lines[0][1] if lines else ""


def read_pair_list_file(path: Path) -> PairRefs | NamedPairs:
    """A user-supplied pair list: this project's CSV (by its header) or an LFW-format list."""
    if not path.is_file():
        raise DatasetLayoutError(f"pairs file not found: {path}")
    if [c.strip() for c in _first_line(path).split(",")] == PAIR_COLUMNS:
        return read_pairs_csv(path)
    return parse_pairs_txt(path)


def resolve_pairs(
    pairs: NamedPairs,
    positions: dict[str, int],
    dropped: set[str] | frozenset[str] = frozenset(),
    labels: np.ndarray | None = None,
) -> tuple[PairList, int]:
    """Named pairs → positions; pairs touching a ``dropped`` (unreadable or missing) image are left out.

    A name that is neither known nor dropped raises naming the list file and line; so does a pair whose
    match flag contradicts the ``labels`` (identity per position) of its two images.
    """
    keep, index_a, index_b = [], [], []
    for i, (a, b) in enumerate(zip(pairs.name_a, pairs.name_b, strict=True)):
        if a in dropped or b in dropped:
            continue
        for name in (a, b):
            if name not in positions:
                raise MetadataFormatError(
                    f"{pairs.source}:{pairs.lines[i]}: image {name} is not in the dataset split this list is "
                    "for"
                )
        pa, pb = positions[a], positions[b]
        if labels is not None and bool(labels[pa] == labels[pb]) != bool(pairs.is_same[i]):
            kind = "matched" if pairs.is_same[i] else "mismatched"
            relation = "different identities" if pairs.is_same[i] else "the same identity"
            raise MetadataFormatError(
                f"{pairs.source}:{pairs.lines[i]}: a {kind} pair, but {a} and {b} have {relation} in the "
                "dataset (a list for another copy or another naming convention?)"
            )
        keep.append(i)
        index_a.append(pa)
        index_b.append(pb)
    keep_arr = np.asarray(keep, dtype=np.int64)
    result = PairList(
        np.asarray(index_a, np.int64),
        np.asarray(index_b, np.int64),
        pairs.is_same[keep_arr],
        pairs.fold[keep_arr],
    )
    return result, len(pairs) - len(keep)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Positions of each label 0..K-1 (sorted)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, bounds)


def derive_pairs(labels: np.ndarray, folds: int, per_fold: int, seed: int) -> PairList:
    """LFW-style pairs over items labelled ``labels``: identity-disjoint folds, ``per_fold`` of each kind.

    Identities are shuffled and dealt round-robin into ``folds``; in each fold, a matched pair is two
    distinct images of one identity (with at least two images) and a mismatched pair is one image each of
    two distinct identities, all drawn uniformly with the seeded generator.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if folds < 1 or per_fold < 1:
        raise ValueError(f"pair folds and pairs per fold must be >= 1, got {folds}, {per_fold}")
    groups = _groups(labels)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(groups), generator=generator).numpy()
    if len(groups) < 2 * folds:
        raise ValueError(f"{len(groups)} identities are too few for {folds} identity-disjoint pair folds")

    def draw(n: int) -> np.ndarray:
        return torch.randint(0, 2**62, (n,), generator=generator).numpy()

    index_a, index_b, is_same, fold_ids = [], [], [], []
    for fold in range(folds):
        members = [groups[k] for k in order[fold::folds]]
        multi = [g for g in members if len(g) >= 2]
        if not multi:
            raise ValueError(f"pair fold {fold} has no identity with two or more images")
        picks = draw(3 * per_fold)
        for r in range(per_fold):
            group = multi[picks[3 * r] % len(multi)]
            first = picks[3 * r + 1] % len(group)
            second = (first + 1 + picks[3 * r + 2] % (len(group) - 1)) % len(group)
            index_a.append(group[first])
            index_b.append(group[second])
        picks = draw(4 * per_fold)
        for r in range(per_fold):
            g1 = picks[4 * r] % len(members)
            g2 = (g1 + 1 + picks[4 * r + 1] % (len(members) - 1)) % len(members)
            index_a.append(members[g1][picks[4 * r + 2] % len(members[g1])])
            index_b.append(members[g2][picks[4 * r + 3] % len(members[g2])])
        is_same += [True] * per_fold + [False] * per_fold
        fold_ids += [fold] * (2 * per_fold)
    return PairList(
        np.asarray(index_a, np.int64),
        np.asarray(index_b, np.int64),
        np.asarray(is_same),
        np.asarray(fold_ids),
    )


def derive_triplets(labels: np.ndarray, seed: int) -> np.ndarray:
    """``[N, 3]`` (anchor, positive, negative) positions; each image of an identity with 2+ images anchors."""
    labels = np.asarray(labels, dtype=np.int64)
    groups = _groups(labels)
    if len(groups) < 2:
        raise ValueError("triplets need at least two identities")
    generator = torch.Generator().manual_seed(int(seed))
    anchors, positives = [], []
    for group in groups:
        if len(group) < 2:
            continue
        offsets = 1 + torch.randint(0, len(group) - 1, (len(group),), generator=generator).numpy()
        anchors.append(group)
        positives.append(group[(np.arange(len(group)) + offsets) % len(group)])
    if not anchors:
        raise ValueError("triplets need an identity with two or more images")
    anchor = np.concatenate(anchors)
    positive = np.concatenate(positives)
    negative = np.empty_like(anchor)
    todo = np.arange(len(anchor))
    while len(todo):  # rejection sampling: uniform over the images of other identities
        draw = torch.randint(0, len(labels), (len(todo),), generator=generator).numpy()
        ok = labels[draw] != labels[anchor[todo]]
        negative[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return np.stack([anchor, positive, negative], axis=1)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write atomically (several ranks may derive the same file at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def _read_csv(path: Path, header: Sequence[str]) -> list[tuple[int, list[str]]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if row]
    if not rows or rows[0][1] != list(header):
        raise MetadataFormatError(f"{path}:1: expected the header {','.join(header)}")
    for number, row in rows[1:]:
        if len(row) != len(header):
            raise MetadataFormatError(f"{path}:{number}: expected {len(header)} fields, got {row}")
    return rows[1:]


def write_pairs_csv(path: Path, pairs: PairList, names: Sequence[str]) -> None:
    """Store ``pairs`` (positions into ``names``) as ``fold,is_same,image_a,image_b`` rows."""
    rows = [
        (int(f), int(s), names[a], names[b])
        for f, s, a, b in zip(pairs.fold, pairs.is_same, pairs.index_a, pairs.index_b, strict=True)
    ]
    _write_csv(path, PAIR_COLUMNS, rows)


def read_pairs_csv(path: Path) -> NamedPairs:
    """A pair list written by :func:`write_pairs_csv`."""
    rows = _read_csv(path, PAIR_COLUMNS)
    try:
        fold = np.asarray([int(r[0]) for _, r in rows], np.int64)
        same = np.asarray([int(r[1]) for _, r in rows], np.int64)
    except ValueError as exc:
        raise MetadataFormatError(f"{path}: fold and is_same must be integers ({exc})") from exc
    if not np.isin(same, [0, 1]).all():
        raise MetadataFormatError(f"{path}: is_same must be 0 or 1")
    return NamedPairs(
        [r[2] for _, r in rows], [r[3] for _, r in rows], same.astype(bool), fold, [n for n, _ in rows], path
    )


def write_triplets_csv(path: Path, triplets: np.ndarray, names: Sequence[str]) -> None:
    """Store ``[N, 3]`` positions into ``names`` as ``anchor,positive,negative`` rows."""
    _write_csv(path, TRIPLET_COLUMNS, [[names[i] for i in row] for row in triplets])


def read_triplets_csv(path: Path) -> list[tuple[int, list[str]]]:
    """The ``(line, [anchor, positive, negative])`` rows of a triplet CSV (:func:`write_triplets_csv`)."""
    return _read_csv(path, TRIPLET_COLUMNS)


def is_triplets_csv(path: Path) -> bool:
    """Whether ``path`` starts with this project's triplet CSV header."""
    if not path.is_file():
        raise DatasetLayoutError(f"triplets file not found: {path}")
    return [c.strip() for c in _first_line(path).split(",")] == TRIPLET_COLUMNS


@dataclass
class ListedFile:
    """One line of a ``filenames_<split>.txt`` list: the image path and an optional identity label."""

    line: int
    name: str
    label: int | None


def read_filenames_list(path: Path) -> list[ListedFile]:
    """``filenames_<split>.txt``: one image path per line, optionally followed by an integer label.

    Backslashes become ``/``. Any other shape raises naming the file and line.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"triplet filenames list not found: {path}")
    out = []
    for number, text in read_lines(path):
        fields = text.split()
        if len(fields) > 2 or (len(fields) == 2 and not re.fullmatch(r"[+-]?\d+", fields[1])):
            raise MetadataFormatError(
                f"{path}:{number}: expected '<image path>' or '<image path> <integer label>', got {text!r}"
            )
        label = int(fields[1]) if len(fields) == 2 else None
        out.append(ListedFile(number, fields[0].replace("\\", "/"), label))
    if not out:
        raise MetadataFormatError(f"{path}: no image listed")
    return out


def read_index_triplets(path: Path, count: int, base: int, listed_in: Path) -> tuple[np.ndarray, list[int]]:
    """``triplets_<split>.txt``: ``anchor negative positive`` positions (``base``-based) into a list of
    ``count`` files → ``[N, 3]`` (anchor, **positive**, negative) 0-based positions and the line numbers."""
    if not path.is_file():
        raise DatasetLayoutError(f"triplets file not found: {path}")
    rows, lines = [], []
    for number, text in read_lines(path):
        fields = re.split(r"[\s,]+", text)
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise MetadataFormatError(
                f"{path}:{number}: expected three image indices 'anchor negative positive', got {text!r}"
            )
        anchor, negative, positive = (int(f) - base for f in fields)
        for value, token in zip((anchor, negative, positive), fields, strict=True):
            if not 0 <= value < count:
                hint = " (datamodule.triplet_index_base=1 if the indices start at 1)" if base == 0 else ""
                raise MetadataFormatError(
                    f"{path}:{number}: index {token} is outside {listed_in}, which lists {count} files "
                    f"(indices are {base}-based{hint})"
                )
        rows.append((anchor, positive, negative))
        lines.append(number)
    if not rows:
        raise MetadataFormatError(f"{path}: no triplet")
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3), lines


def match_listed_name(name: str, known: set[str] | dict[str, int]) -> str | None:
    """``name`` if known, else its longest known path suffix (``/data/x/000001.jpg`` → ``000001.jpg``)."""
    if name in known:
        return name
    parts = name.strip("/").split("/")
    for start in range(1, len(parts)):
        candidate = "/".join(parts[start:])
        if candidate in known:
            return candidate
    return None


def split_file_info(path: Path, derived_now: bool) -> dict[str, object]:
    """What the run record says about a split file: path, SHA-256 and whether this run wrote it."""
    return {"path": str(path), "sha256": file_sha256(path), "derived_now": derived_now}
