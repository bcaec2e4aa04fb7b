"""Verification pairs and training triplets: LFW ``pairs.txt``, and derived lists versioned as split files.

* :func:`parse_lfw_pairs` reads LFW's View 2 ``pairs.txt`` (header ``10<TAB>300``: folds × matched pairs per
  fold; then per fold 300 matched ``Name i j`` and 300 mismatched ``Name1 i Name2 j`` lines) and View 1
  (``pairsDevTrain.txt``: one count, a single fold). Lines split on any whitespace (derived lists use
  ``10 300`` with a space and may lack the final newline; datasets.md §5 and Errata).
* :func:`derive_pairs` builds LFW-style pairs for a labelled split: identities are dealt into folds (so the
  folds are identity-disjoint, as LFW's), then each fold gets ``per_fold`` matched and ``per_fold``
  mismatched pairs. :func:`derive_triplets` gives one random positive and one random negative per anchor
  (PRO-Face's triplet lists). Both use ``torch.Generator().manual_seed(seed)`` only (datasets.md §7).
* Derived lists are stored as CSV with relative image names (``fold,is_same,image_a,image_b`` and
  ``anchor,positive,negative``) so they survive re-ordering and can be versioned under ``data/splits/``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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


def _positive_int(token: str, path: Path, number: int) -> int:
    if not token.isdigit() or int(token) < 1:
        raise MetadataFormatError(f"{path}:{number}: expected a 1-based image number, got {token!r}")
    return int(token)


def parse_lfw_pairs(path: Path) -> NamedPairs:
    """LFW ``pairs.txt`` (``folds n`` header) or ``pairsDevTrain/Test.txt`` (``n`` header, one fold).

    Each fold is ``n`` matched lines then ``n`` mismatched lines; any other order or count raises naming
    the file and line.
    """
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
    pairs = NamedPairs([], [], np.zeros(expected, bool), np.zeros(expected, np.int64), [], path)
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
        pairs.name_a.append(lfw_image_name(person_a, _positive_int(a, path, number)))
        pairs.name_b.append(lfw_image_name(person_b, _positive_int(b, path, number)))
        pairs.is_same[i] = matched
        pairs.fold[i] = fold
        pairs.lines.append(number)
    return pairs


def resolve_pairs(
    pairs: NamedPairs, positions: dict[str, int], dropped: set[str] | frozenset[str] = frozenset()
) -> tuple[PairList, int]:
    """Named pairs → positions; pairs touching a ``dropped`` (unreadable) image are left out and counted.

    A name that is neither known nor dropped raises naming the list file and line.
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
        keep.append(i)
        index_a.append(positions[a])
        index_b.append(positions[b])
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


def read_triplets_csv(
    path: Path, positions: dict[str, int], dropped: set[str] | frozenset[str] = frozenset()
) -> tuple[np.ndarray, int]:
    """Triplets by position; rows with an unreadable (``dropped``) image are left out and counted."""
    out, left_out = [], 0
    for number, row in _read_csv(path, TRIPLET_COLUMNS):
        if any(name in dropped for name in row):
            left_out += 1
            continue
        missing = [name for name in row if name not in positions]
        if missing:
            raise MetadataFormatError(f"{path}:{number}: image {missing[0]} is not in the training split")
        out.append([positions[name] for name in row])
    return np.asarray(out, dtype=np.int64).reshape(-1, 3), left_out


def split_file_info(path: Path, derived_now: bool) -> dict[str, object]:
    """What the run record says about a split file: path, SHA-256 and whether this run wrote it."""
    return {"path": str(path), "sha256": file_sha256(path), "derived_now": derived_now}
