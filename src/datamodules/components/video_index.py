"""Raw-video layouts of FaceForensics++ and Celeb-DF v2: list every video with its label, method and split.

FF++ (docs/datasets.md, "FaceForensics++"): ``original_sequences/youtube/<c>/videos/<id>.mp4`` and
``manipulated_sequences/<method>/<c>/videos/<target>_<source>.mp4``; the official split files
``{train,val,test}.json`` (lists of ``[a, b]`` pairs) are searched at the root, under ``splits/`` and under
``dataset/splits/``. A pair puts the originals ``a``, ``b`` and the fakes ``a_b``, ``b_a`` of every method in
its split. Celeb-DF v2 (docs/datasets.md, "Celeb-DF v2"): ``Celeb-real/``, ``YouTube-real/`` (any case),
``Celeb-synthesis/`` and ``List_of_testing_videos.txt`` whose lines are ``<flag> <folder>/<file>.mp4`` with
**1 = real, 0 = fake**; the flag is inverted here so that every label is 1 = fake, 0 = real. Everything off
the test list is train.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from src.datamodules.components.layout import DatasetLayoutError

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
#: Method folders that only the project's synthetic FF++ copies hold (``src.preprocess.synthetic_deepfakes``):
#: ``SelfBlended`` is SBI applied to whole videos. Listed like the real methods when asked for.
FFPP_EXTRA_METHODS = ("SelfBlended",)
FFPP_COMPRESSIONS = ("raw", "c0", "c23", "c40")
FFPP_SPLITS = ("train", "val", "test")
SPLIT_DIRS = ("", "splits", "dataset/splits")
CELEB_DF_FOLDERS = {"celeb-real": 0, "youtube-real": 0, "celeb-synthesis": 1}
CELEB_DF_TEST_LIST = "List_of_testing_videos.txt"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")


class MetadataFileError(ValueError):
    """A metadata file (split JSON, test list) whose content does not have the expected format."""


@dataclass(frozen=True)
class VideoEntry:
    """One raw video: ``uid`` is ``dataset/method/compression/name``, unique across methods and datasets."""

    uid: str
    path: Path
    label: int  # 1 = fake, 0 = real
    method: str
    compression: str
    split: str
    name: str


def video_uid(dataset: str, method: str, compression: str, name: str) -> str:
    """The globally unique video id used in every index and prediction row."""
    return f"{dataset}/{method}/{compression}/{name}"


def find_split_file(root: Path, split: str) -> Path:
    """The official ``<split>.json`` of FF++ (at the root, ``splits/`` or ``dataset/splits/``)."""
    candidates = [root / folder / f"{split}.json" for folder in SPLIT_DIRS]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise DatasetLayoutError(f"FF++ split file {split}.json not found (tried {tried})")


def parse_ffpp_split(path: Path) -> list[tuple[str, str]]:
    """The ``[[a, b], ...]`` pairs of an official split JSON; raises naming the file on any other shape."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise MetadataFileError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, list):
        raise MetadataFileError(f"{path}: expected a JSON list of [a, b] pairs, got {type(data).__name__}")
    pairs = []
    for position, item in enumerate(data):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise MetadataFileError(f"{path}: entry {position} is {item!r}, expected a pair of id strings")
        pairs.append((item[0], item[1]))
    return pairs


def ffpp_split_of_videos(root: Path, splits: tuple[str, ...] = FFPP_SPLITS) -> dict[str, str]:
    """Video name → split for originals (``a``) and fakes (``a_b``, ``b_a``); an id in two splits raises."""
    owner: dict[str, str] = {}
    for split in splits:
        path = find_split_file(root, split)
        for a, b in parse_ffpp_split(path):
            for name in (a, b, f"{a}_{b}", f"{b}_{a}"):
                if owner.get(name, split) != split:
                    raise MetadataFileError(f"{path}: video {name} is also in the {owner[name]} split")
                owner[name] = split
    return owner


def _videos_in(folder: Path) -> dict[str, Path]:
    """Video stem → path of the video files directly in ``folder``."""
    return {
        p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    }


def list_ffpp_videos(
    root: Path, methods: tuple[str, ...], compression: str, include_real: bool = True
) -> list[VideoEntry]:
    """Every video of the official split in ``root`` for ``methods`` at ``compression``.

    Raises when the root, a method's video folder, a split file or a video named by the split is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"FF++ root not found: {root}")
    if compression not in FFPP_COMPRESSIONS:
        raise ValueError(f"compression must be one of {FFPP_COMPRESSIONS}, got {compression!r}")
    unknown = sorted(set(methods) - set(FFPP_METHODS) - set(FFPP_EXTRA_METHODS))
    if unknown:
        raise ValueError(
            f"unknown FF++ method(s) {unknown}; expected a subset of {list(FFPP_METHODS)} "
            f"(or the synthetic {list(FFPP_EXTRA_METHODS)})"
        )
    owner = ffpp_split_of_videos(root)
    sources = [("youtube", 0, root / "original_sequences/youtube")] if include_real else []
    sources += [(m, 1, root / "manipulated_sequences" / m) for m in methods]
    entries = []
    for method, label, base in sources:
        folder = base / compression / "videos"
        if not folder.is_dir() and compression in ("raw", "c0"):
            folder = base / ("c0" if compression == "raw" else "raw") / "videos"
        if not folder.is_dir():
            raise DatasetLayoutError(f"FF++ video folder not found: {folder}")
        present = _videos_in(folder)
        wanted = sorted(n for n in owner if ("_" in n) == bool(label))
        missing = [n for n in wanted if n not in present]
        if missing:
            examples = ", ".join(str(folder / f"{n}.mp4") for n in missing[:3])
            raise DatasetLayoutError(
                f"{len(missing)} video(s) named by the FF++ split files are missing from {folder}, "
                f"e.g. {examples}"
            )
        for name in wanted:
            uid = video_uid("ffpp", method, compression, name)
            entries.append(VideoEntry(uid, present[name], label, method, compression, owner[name], name))
    return entries


def parse_celeb_df_test_list(path: Path) -> dict[str, int]:
    """``folder/file.mp4`` → label (1 = fake, 0 = real) from the test list, whose own flag is 1 = real."""
    out: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or "/" not in parts[1]:
            raise MetadataFileError(
                f"{path} line {number}: {line.strip()!r} is not '<1 real | 0 fake> <folder>/<file>.mp4'"
            )
        folder = parts[1].split("/")[0].lower()
        if folder not in CELEB_DF_FOLDERS:
            raise MetadataFileError(f"{path} line {number}: unknown folder {parts[1].split('/')[0]!r}")
        label = 1 - int(parts[0])  # the list says 1 = real
        if label != CELEB_DF_FOLDERS[folder]:
            raise MetadataFileError(
                f"{path} line {number}: flag {parts[0]} contradicts folder {folder} (the list uses 1 = real)"
            )
        out[parts[1].lower()] = label
    if not out:
        raise MetadataFileError(f"{path}: empty test list")
    return out


def list_celeb_df_videos(root: Path) -> list[VideoEntry]:
    """Every Celeb-DF v2 video (also in a ``videos/`` subfolder), test per the list, the rest train."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"Celeb-DF root not found: {root}")
    list_path = root / CELEB_DF_TEST_LIST
    if not list_path.is_file():
        raise DatasetLayoutError(f"Celeb-DF test list not found: {list_path}")
    test = parse_celeb_df_test_list(list_path)
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    entries, seen = [], set()
    for key, label in CELEB_DF_FOLDERS.items():
        if key not in folders:
            raise DatasetLayoutError(f"Celeb-DF folder {root / key} not found (matched case-insensitively)")
        folder = folders[key] / "videos" if (folders[key] / "videos").is_dir() else folders[key]
        method = "real" if label == 0 else "synthesis"
        for name, path in _videos_in(folder).items():
            rel = f"{key}/{path.name}".lower()
            seen.add(rel)
            uid = video_uid("celeb_df", folders[key].name, "orig", name)
            split = "test" if rel in test else "train"
            entries.append(VideoEntry(uid, path, label, method, "orig", split, name))
    missing = sorted(set(test) - seen)
    if missing:
        raise DatasetLayoutError(
            f"{len(missing)} video(s) in {list_path} are missing under {root}, e.g. {missing[:3]}"
        )
    return entries
