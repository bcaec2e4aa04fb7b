"""FaceForensics++ face frames, as written by ``python -m src.preprocess.videos ffpp`` (``index.csv``).

The preprocessing CLI validates the raw layout (videos, official pair split JSONs) and records each frame's
split, so loading needs only the preprocessed folder: ``root`` is ``OUT_DIR/ffpp`` (or ``OUT_DIR``), from the
config or the ``PROFACE_FFPP_ROOT`` environment variable. Batches: ``image`` (float [0, 1], RGB), ``label``
(1 = fake, 0 = real), ``video_idx`` (int from a :class:`VideoIdEncoder` over the split's full id list, so
ranks agree), ``frame_index`` (index in the source video) and ``index``. ``methods`` / ``compression`` filter
the index; ``describe()`` reports frames, videos (real / fake / per method) and preprocessing failures.

Source / target pairing (FF++ only): a manipulated video ``<target>_<source>`` takes its frames from the
original ``<target>`` and the face (Deepfakes, FaceSwap, FaceShifter) or the expressions (Face2Face,
NeuralTextures) from ``<source>``. Batches carry ``target_video`` and ``source_video`` (the original
sequence numbers; both the video's own number for a real video). With ``conversion_dict`` (the FF++
repository's ``dataset/conversion_dict.json``, ``"000": "<YouTube id> <n>"``; the preprocessing copies it
next to ``index.csv`` when the raw root has it) they also carry ``target_identity``, ``source_identity`` and
``face_identity`` (whose face the frame shows): the number of the YouTube video the original was cut
from, in sorted YouTube-id order, so originals cut from one YouTube video (one person) share an identity.
See docs/datasets.md, "FaceForensics++".
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.datamodules.base import FaceDataModule
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.transforms import build_albumentations, check_transform_splits
from src.datatypes.video_ids import VideoIdEncoder
from src.utils.seeding import albumentations_seed, global_rank

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("video_uid", "frame_index", "label", "method", "compression", "split", "path")


class FrameIndexDataset(Dataset):
    """Face crops listed by an index: decoded with OpenCV (→ RGB), resized, optionally augmented."""

    def __init__(
        self,
        root: Path,
        rows: list[dict[str, str]],
        encoder: VideoIdEncoder,
        image_size: int,
        transform: Any = None,
        extras: dict[str, np.ndarray] | None = None,
        box_margin: float | None = None,
    ) -> None:
        self.root = root
        self.extras = dict(extras or {})
        self.box_margin = box_margin
        self.boxes = face_boxes(rows, root) if box_margin is not None else None
        self.paths = [row["path"] for row in rows]
        self.labels = np.asarray([int(row["label"]) for row in rows], np.int64)
        self.frame_index = np.asarray([int(row["frame_index"]) for row in rows], np.int64)
        self.video_idx = encoder.encode([row["video_uid"] for row in rows]).numpy().astype(np.int64)
        self.image_size = int(image_size)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import cv2

        path = self.root / self.paths[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read frame {path}")
        image = image[..., ::-1]
        if self.boxes is not None:
            image = crop_box(image, self.boxes[index], float(self.box_margin or 0.0))
        if image.shape[0] != self.image_size or image.shape[1] != self.image_size:
            image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        if self.transform is not None:
            image = self.transform(image=np.ascontiguousarray(image))["image"]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
        item = {
            "image": tensor,
            "label": torch.tensor(self.labels[index]),
            "video_idx": torch.tensor(self.video_idx[index]),
            "frame_index": torch.tensor(self.frame_index[index]),
            "index": torch.tensor(index),
        }
        for key, values in self.extras.items():
            item[key] = torch.tensor(values[index])
        return item


BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")


def face_boxes(rows: list[dict[str, str]], root: Path) -> np.ndarray:
    """``[N, 4]`` face boxes (x0, y0, x1, y1 in crop pixels) of index rows; raises when they are absent."""
    if rows and any(c not in rows[0] for c in BOX_COLUMNS):
        raise DatasetLayoutError(
            f"{root / 'index.csv'} has no face-box columns {list(BOX_COLUMNS)} (datamodule.box_margin "
            "needs them); "
            "preprocess again with this version of `python -m src.preprocess.videos`"
        )
    return np.asarray([[float(row[c]) for c in BOX_COLUMNS] for row in rows], np.float64).reshape(-1, 4)


def crop_box(image: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """The face box enlarged by ``margin`` × its width (height) on the left and right (top and bottom),
    clipped to the image: the SBI test crop (margin 1/8)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    height, width = image.shape[:2]
    left, top = max(0, round(x0 - margin * w)), max(0, round(y0 - margin * h))
    right, bottom = min(width, round(x1 + margin * w)), min(height, round(y1 + margin * h))
    if right - left < 2 or bottom - top < 2:
        raise ValueError(f"face box {box.tolist()} lies outside the {width}x{height} crop")
    return image[top:bottom, left:right]


def resolve_root(root: str | None, env_var: str, dataset: str) -> Path:
    """``root`` from the config, else from ``env_var``; raises naming both when neither is set."""
    value = root if root not in (None, "", "???") else os.environ.get(env_var)
    if not value:
        raise ValueError(f"datamodule.root must name the preprocessed {dataset} folder (or set ${env_var})")
    return Path(str(value)).expanduser()


def read_index(root: Path, dataset: str) -> tuple[Path, list[dict[str, str]]]:
    """The folder holding ``index.csv`` (``root`` or ``root/<dataset>``) and its rows; checks the columns."""
    for folder in (root, root / dataset):
        if (folder / "index.csv").is_file():
            break
    else:
        raise DatasetLayoutError(
            f"{dataset}: index.csv not found in {root} or {root / dataset}; run "
            f"`python -m src.preprocess.videos {dataset} RAW_ROOT OUT_DIR` first"
        )
    path = folder / "index.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetLayoutError(
                f"{path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}"
            )
        rows = list(reader)
    for number, row in enumerate(rows, start=2):
        if row["label"] not in ("0", "1") or row["split"] not in SPLITS:
            raise DatasetLayoutError(
                f"{path} line {number}: bad label {row['label']!r} or split {row['split']!r}"
            )
    return folder, rows


def face_index_extra(rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """``face_index`` per row when the index has one row per face (0 = the largest face of the frame)."""
    if not rows or "face_index" not in rows[0]:
        return {}
    return {"face_index": np.asarray([int(row["face_index"] or 0) for row in rows], np.int64)}


FAILURE_COLUMNS = ("video_uid", "frame_index", "reason", "label", "method", "compression", "split")


def read_failures(folder: Path) -> tuple[list[dict[str, str]], int]:
    """Rows of ``failures.csv`` that say their split and label, and how many older rows do not (an index
    preprocessed before failures carried them; those cannot be scored)."""
    path = folder / "failures.csv"
    if not path.is_file():
        return [], 0
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    usable = [row for row in rows if all(row.get(c) not in (None, "") for c in FAILURE_COLUMNS[3:])]
    for row in usable:
        if row["label"] not in ("0", "1") or row["split"] not in SPLITS:
            raise DatasetLayoutError(f"{path}: bad label {row['label']!r} or split {row['split']!r} ({row})")
    return usable, len(rows) - len(usable)


class VideoFramesDataModule(FaceDataModule):
    """Shared loader of a preprocessed frame index: filters, per-split datasets, counts for the run record."""

    dataset_name: ClassVar[str] = ""
    env_var: ClassVar[str] = ""

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 256,
        methods: Sequence[str] | None = None,
        compression: str | None = None,
        transform: Sequence[Any] | None = None,
        transform_splits: Sequence[str] = ("train",),
        transform_seed: int = 0,
        check_files: bool = True,
        box_margin: float | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if box_margin is not None and not 0.0 <= float(box_margin) <= 2.0:
            raise ValueError(f"datamodule.box_margin must be null or in [0, 2], got {box_margin}")
        self.box_margin = None if box_margin is None else float(box_margin)
        self.failures: dict[str, list[dict[str, str]]] = {}
        self.failures_without_split = 0
        self.root = resolve_root(root, self.env_var, self.dataset_name)
        self.image_size = int(image_size)
        self.methods = None if methods is None else tuple(methods)
        self.compression = compression
        self.transform_spec = transform
        self.transform_splits = check_transform_splits(transform_splits)
        self.transform_seed = int(transform_seed)
        self.check_files = bool(check_files)
        self.datasets: dict[str, FrameIndexDataset] = {}
        self.encoders: dict[str, VideoIdEncoder] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.index_dir: Path | None = None

    def filter_rows(
        self, rows: list[dict[str, str]], known_rows: list[dict[str, str]] | None = None
    ) -> list[dict[str, str]]:
        """Keep the rows of the requested methods (real frames always kept) and compression; ``known_rows``
        (default ``rows``) lists the methods a filter may name."""
        if self.methods is not None:
            known = {
                row["method"] for row in (rows if known_rows is None else known_rows) if row["label"] == "1"
            }
            unknown = sorted(set(self.methods) - known)
            if unknown:
                raise ValueError(
                    f"datamodule.methods: {unknown} not in the index of {self.root} (has {sorted(known)})"
                )
            rows = [row for row in rows if row["label"] == "0" or row["method"] in self.methods]
        if self.compression is not None:
            rows = [row for row in rows if row["compression"] == self.compression]
            if not rows and known_rows is None:
                raise ValueError(f"datamodule.compression={self.compression!r}: no frames in {self.root}")
        return rows

    def row_extras(self, rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
        """Per-frame integer fields added to the batches (none by default)."""
        return {}

    def extras_info(self) -> dict[str, Any]:
        """What :meth:`row_extras` read, for the run record."""
        return {}

    def setup(self, stage: str | None = None) -> None:
        """Read and validate the index, then build one dataset per split present."""
        if self.datasets:
            return
        if not self.root.is_dir():
            raise DatasetLayoutError(f"{self.dataset_name} root not found: {self.root}")
        self.index_dir, all_rows = read_index(self.root, self.dataset_name)
        rows = self.filter_rows(all_rows)
        failures, self.failures_without_split = read_failures(self.index_dir)
        failures = self.filter_rows(failures, known_rows=all_rows + failures) if failures else []
        if self.check_files:
            missing = [row["path"] for row in rows if not (self.index_dir / row["path"]).is_file()]
            if missing:
                raise DatasetLayoutError(
                    f"{len(missing)} frame(s) listed in {self.index_dir / 'index.csv'} are missing, "
                    f"e.g. {[str(self.index_dir / m) for m in missing[:3]]}"
                )
        rank = global_rank()
        for split in SPLITS:
            split_rows = [row for row in rows if row["split"] == split]
            if not split_rows:
                continue
            self.rows[split] = split_rows
            self.failures[split] = [row for row in failures if row["split"] == split]
            # failed videos get ids too: an evaluation scores them (0.5) instead of losing them
            self.encoders[split] = VideoIdEncoder(
                row["video_uid"] for row in (*split_rows, *self.failures[split])
            )
            transform = None
            if split in self.transform_splits:
                transform = build_albumentations(
                    self.transform_spec, albumentations_seed(self.transform_seed, rank)
                )
            self.datasets[split] = FrameIndexDataset(
                self.index_dir,
                split_rows,
                self.encoders[split],
                self.image_size,
                transform,
                {**face_index_extra(split_rows), **self.row_extras(split_rows)},
                self.box_margin,
            )
        if not self.datasets:
            raise ValueError(f"{self.dataset_name}: no frames left in {self.root} after the filters")

    def failed_items(self, split: str) -> dict[str, torch.Tensor]:
        """The split's preprocessing failures as items to score: ``video_idx`` (same encoder as the frames),
        ``frame_index`` (-1 for a whole video that failed), ``label`` and the failure ``reason`` code
        (index into ``FAILURE_REASONS`` order of appearance is not stable, so reasons stay in
        :attr:`failures`)."""
        rows = self.failures.get(split, [])
        encoder = self.encoders[split]
        return {
            "video_idx": encoder.encode([row["video_uid"] for row in rows])
            if rows
            else torch.zeros(0, dtype=torch.long),
            "frame_index": torch.tensor(
                [int(row["frame_index"]) if row["frame_index"] != "" else -1 for row in rows],
                dtype=torch.long,
            ),
            "label": torch.tensor([int(row["label"]) for row in rows], dtype=torch.long),
        }

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            raise ValueError(f"{self.dataset_name} under {self.root} has no {split} split")
        return self.make_loader(self.datasets[split], train=train)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training frames."""
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        """Validation frames in index order."""
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        """Test frames in index order."""
        return self._loader("test", False)

    def describe(self) -> dict[str, Any]:
        """Frames, videos (real/fake, per method), failures and settings per split for the run record."""
        info: dict[str, Any] = {
            **super().describe(),
            "dataset": self.dataset_name,
            "root": str(self.root),
            "methods": None if self.methods is None else list(self.methods),
            "compression": self.compression,
            "box_margin": self.box_margin,
            "failures_without_split": self.failures_without_split,
        }
        for split, rows in self.rows.items():
            videos = {row["video_uid"]: row for row in rows}
            info[split] = {
                "images": len(rows),
                "videos": len(videos),
                "real_videos": sum(1 for row in videos.values() if row["label"] == "0"),
                "fake_videos": sum(1 for row in videos.values() if row["label"] == "1"),
                "videos_by_method": dict(sorted(Counter(r["method"] for r in videos.values()).items())),
                "video_id_fingerprint": self.encoders[split].fingerprint(),
                "failed_frames": sum(1 for f in self.failures.get(split, []) if f["frame_index"] != ""),
                "failed_videos": len({f["video_uid"] for f in self.failures.get(split, [])} - set(videos)),
            }
        if self.index_dir is not None and (self.index_dir / "summary.json").is_file():
            summary = json.loads((self.index_dir / "summary.json").read_text())
            info["preprocessing_failures"] = summary.get("counts", {}).get("failures_by_reason", {})
        info.update(self.extras_info())
        return info


FACE_FROM_SOURCE = ("Deepfakes", "FaceSwap", "FaceShifter")  # identity swaps; the others reenact
CONVERSION_VALUE = re.compile(r"^(\S+)\s+(\d+)$")


def parse_conversion_dict(path: Path) -> dict[str, str]:
    """FF++ ``conversion_dict.json`` → original sequence id (``"000"``) → YouTube id (``"--b1Ua-kWJE"``).

    Values are ``"<YouTube id> <sequence number>"``; any other shape raises naming the file and key.
    """
    if not path.is_file():
        raise DatasetLayoutError(
            f"FF++ conversion_dict not found: {path} (the FaceForensics repository's "
            "dataset/conversion_dict.json; a relative datamodule.conversion_dict is taken next to index.csv)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetLayoutError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict) or not data:
        raise DatasetLayoutError(f"{path}: expected a JSON object mapping '000' to '<YouTube id> <n>'")
    out = {}
    for key, value in data.items():
        match = CONVERSION_VALUE.match(value.strip()) if isinstance(value, str) else None
        if not str(key).isdigit() or match is None:
            raise DatasetLayoutError(
                f"{path}: entry {key!r}: {value!r} is not '<YouTube id> <sequence number>' under a numeric id"
            )
        out[str(key)] = match.group(1)
    return out


def target_and_source(video_uid: str) -> tuple[str, str]:
    """``ffpp/<method>/<c>/<target>_<source>`` → (target, source); a real ``.../<id>`` → (id, id)."""
    name = video_uid.rsplit("/", 1)[-1]
    parts = name.split("_")
    if len(parts) == 1 and name.isdigit():
        return name, name
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return parts[0], parts[1]
    raise DatasetLayoutError(
        f"FF++ video {video_uid}: expected an original '<id>' or a manipulated '<target>_<source>' name "
        "made of sequence numbers"
    )


class FFPPFramesDataModule(VideoFramesDataModule):
    """FF++ frames (official pair split, label 1 = fake) from the preprocessed index, with source/target."""

    dataset_name = "ffpp"
    env_var = "PROFACE_FFPP_ROOT"

    def __init__(self, *args: Any, conversion_dict: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conversion_dict = conversion_dict or None
        self.youtube_of: dict[str, str] | None = None
        self._conversion_path: Path | None = None

    def _read_conversion(self) -> dict[str, str] | None:
        if self.conversion_dict is None:
            return None
        if self.youtube_of is None:
            assert self.index_dir is not None
            path = Path(str(self.conversion_dict)).expanduser()
            self._conversion_path = path if path.is_absolute() else self.index_dir / path
            self.youtube_of = parse_conversion_dict(self._conversion_path)
        return self.youtube_of

    def row_extras(self, rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
        """``target_video``/``source_video`` from the names; identities through the conversion dict."""
        pairs = [target_and_source(row["video_uid"]) for row in rows]
        out = {
            "target_video": np.asarray([int(t) for t, _ in pairs], np.int64),
            "source_video": np.asarray([int(s) for _, s in pairs], np.int64),
        }
        youtube_of = self._read_conversion()
        if youtube_of is None:
            return out
        unknown = sorted({v for pair in pairs for v in pair if v not in youtube_of})
        if unknown:
            raise DatasetLayoutError(
                f"{self._conversion_path} has no entry for original video(s) {unknown[:5]} used by "
                f"{self.index_dir / 'index.csv'} (a conversion_dict of another dataset?)"
            )
        number = {youtube: i for i, youtube in enumerate(sorted(set(youtube_of.values())))}
        target = np.asarray([number[youtube_of[t]] for t, _ in pairs], np.int64)
        source = np.asarray([number[youtube_of[s]] for _, s in pairs], np.int64)
        from_source = np.asarray([row["method"] in FACE_FROM_SOURCE for row in rows])
        out.update(
            {
                "target_identity": target,
                "source_identity": source,
                "face_identity": np.where(from_source, source, target),
            }
        )
        return out

    def extras_info(self) -> dict[str, Any]:
        """The conversion dict used: path, originals and how many share a YouTube video."""
        if self.youtube_of is None:
            return {"conversion_dict": None}
        counts = Counter(self.youtube_of.values())
        return {
            "conversion_dict": {
                "path": str(self._conversion_path),
                "originals": len(self.youtube_of),
                "youtube_videos": len(counts),
                "originals_sharing_a_youtube_video": sum(c for c in counts.values() if c > 1),
            }
        }
