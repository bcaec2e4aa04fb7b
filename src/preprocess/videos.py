"""Sample frames from FaceForensics++ / Celeb-DF v2 videos, detect, align and index the face crops.

Usage: ``python -m src.preprocess.videos ffpp|celeb_df ROOT OUT_DIR [--frames 32] [--detector mtcnn|hog]
[--compression c23] [--methods Deepfakes Face2Face ...] [--size 256] [--margin 1.3] [--workers N]``.

Per video, ``--frames`` indices are taken evenly (``linspace(0, N - 1, frames)`` cast to int, the
DeepfakeBench rule) and decoded with OpenCV; the largest face's 5 landmarks align the frame
to the ArcFace template scaled to ``--size`` with ``--margin`` (the face fills ~1/margin of the crop). Writes

- ``OUT/<dataset>/<split>/<video uid>/<frame:03d>.png`` (uid = ``dataset/method/compression/name``);
- ``OUT/<dataset>/index.csv``: ``video_uid, frame_index, label (1 = fake, 0 = real), method, compression,
  split, path`` (relative to ``OUT/<dataset>``), the 5 landmarks in crop pixels and the detector score;
- ``OUT/<dataset>/failures.csv``: ``video_uid, frame_index`` (empty for a whole video), ``reason``
  (``unreadable``, ``no_frames``, ``no_face``, ``decode_error``, ``error``), ``detail``;
- ``OUT/<dataset>/summary.json``: counts (videos, frames, failures by reason), settings and frames/s;
- ``OUT/ffpp/conversion_dict.json``: a copy of FF++'s ``conversion_dict.json`` (original sequence → YouTube
  video) when ``ROOT`` holds one (at its top or under ``dataset/``), for the DataModule's
  ``conversion_dict`` option (identities of source and target videos).

Resumable: each finished video leaves ``<video dir>/_video.json`` with its rows; a later run skips those
(unless the outcome was ``error``, which is retried) and rebuilds the CSVs from all of them, so the outputs
do not depend on ``--workers`` or on interruptions. Settings that change the outputs must match
``OUT/<dataset>/config.json``. Exit status 0, or 2 for usage/layout errors.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.video_index import (
    FFPP_METHODS,
    MetadataFileError,
    VideoEntry,
    list_celeb_df_videos,
    list_ffpp_videos,
)

DATASETS = ("ffpp", "celeb_df")
POINT_COLUMNS = [
    f"{name}_{axis}"
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    for axis in ("x", "y")
]
INDEX_COLUMNS = [
    "video_uid",
    "frame_index",
    "label",
    "method",
    "compression",
    "split",
    "path",
    "score",
    *POINT_COLUMNS,
]
FAILURE_COLUMNS = ["video_uid", "frame_index", "reason", "detail"]
RETRY_REASONS = frozenset({"error"})
VIDEO_JSON = "_video.json"


class UsageError(Exception):
    """A problem with the command line, the folders or the dataset layout (exit status 2)."""


@dataclass(frozen=True)
class VideoConfig:
    """Settings of one preprocessing run; ``output_settings`` must match when resuming."""

    dataset: str
    root: Path
    out_dir: Path
    frames: int = 32
    detector: str = "mtcnn"
    compression: str = "c23"
    methods: tuple[str, ...] = field(default_factory=lambda: FFPP_METHODS[:4])
    size: int = 256
    margin: float = 1.3
    min_score: float | None = None
    workers: int = 1
    progress: bool = True

    def output_settings(self) -> dict:
        """The settings recorded in ``config.json``."""
        settings = asdict(self)
        for key in ("root", "out_dir", "workers", "progress"):
            settings.pop(key)
        settings["methods"] = list(self.methods)
        if self.dataset != "ffpp":
            settings.pop("methods")
            settings.pop("compression")
        return settings


def sample_indices(frame_count: int, frames: int) -> list[int]:
    """``frames`` evenly spaced frame indices in ``[0, frame_count)`` (duplicates removed, sorted)."""
    if frame_count <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, frame_count - 1, frames)})


def read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the wanted frames (RGB uint8) by reading sequentially with OpenCV (seeking is unreliable)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"cannot open video {path}")
    wanted, out, position = set(indices), {}, 0
    last = max(indices) if indices else -1
    try:
        while position <= last:
            ok = capture.grab()
            if not ok:
                break
            if position in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    out[position] = np.ascontiguousarray(frame[..., ::-1])
            position += 1
    finally:
        capture.release()
    return out


def frame_count(path: Path) -> int:
    """The container's frame count (OpenCV), counted by decoding when the header lacks it."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return -1
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while capture.grab():
                count += 1
    finally:
        capture.release()
    return count


def margin_template(size: int, margin: float):
    """The ArcFace 5-point template scaled to ``size`` and shrunk by ``margin`` about the crop centre."""
    from src.face.alignment import ARCFACE_112, AlignmentTemplate

    points = ARCFACE_112 * (size / 112.0)
    points = (points - size / 2.0) / margin + size / 2.0
    return AlignmentTemplate(f"arcface{size}m{margin:g}", "points", int(size), points)


def video_dir(out_dir: Path, entry: VideoEntry) -> Path:
    """Folder of one video's crops: ``OUT/<dataset>/<split>/<uid>``."""
    return out_dir / entry.split / entry.uid


class VideoWorker:
    """Per-process state (detector, template); ``process`` turns one video into its rows and failures."""

    def __init__(self, config: VideoConfig) -> None:
        from src.face.detection import build_detector

        kwargs: dict = {} if config.min_score is None else {"min_score": config.min_score}
        self.config = config
        self.detector = build_detector(config.detector, **kwargs)
        self.template = margin_template(config.size, config.margin)

    def process(self, entry: VideoEntry, dataset_dir: Path) -> dict:
        """Rows, failures and frame count of one video, also saved as ``_video.json``; never raises."""
        folder = video_dir(dataset_dir, entry)
        try:
            result = self._process(entry, folder, dataset_dir)
        except Exception as error:  # one bad video must not stop the run; retried on resume
            detail = f"{type(error).__name__}: {error}".replace("\n", " ")[:300]
            result = {"rows": [], "failures": [_failure(entry, "", "error", detail)], "decoded": 0}
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{VIDEO_JSON}.{os.getpid()}.tmp"
        temp.write_text(json.dumps(result))
        os.replace(temp, folder / VIDEO_JSON)
        return result

    def _process(self, entry: VideoEntry, folder: Path, dataset_dir: Path) -> dict:
        import cv2

        from src.face.alignment import alignment_matrix, transform_points, warp_image
        from src.face.detection import largest_face

        count = frame_count(entry.path)
        if count < 0:
            return {"rows": [], "failures": [_failure(entry, "", "unreadable", "cannot open")], "decoded": 0}
        if count == 0:
            return {"rows": [], "failures": [_failure(entry, "", "no_frames", "0 frames")], "decoded": 0}
        indices = sample_indices(count, self.config.frames)
        frames = read_frames(entry.path, indices)
        rows, failures = [], []
        folder.mkdir(parents=True, exist_ok=True)
        for index in indices:
            if index not in frames:
                failures.append(
                    _failure(entry, index, "decode_error", f"frame {index} of {count} not decoded")
                )
                continue
            image = frames[index]
            detections = self.detector.detect(image)
            if not detections:
                failures.append(_failure(entry, index, "no_face", "no face above the score threshold"))
                continue
            face = largest_face(detections)
            matrix = alignment_matrix(face.landmarks, self.template)
            crop = warp_image(image, matrix, self.template.size)
            points = np.asarray(transform_points(face.landmarks, matrix), dtype=np.float64).reshape(5, 2)
            name = f"{index:03d}.png"
            ok, data = cv2.imencode(".png", crop[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                raise OSError(f"cannot encode {folder / name}")
            (folder / name).write_bytes(data.tobytes())
            rows.append(
                {
                    "video_uid": entry.uid,
                    "frame_index": str(index),
                    "label": str(entry.label),
                    "method": entry.method,
                    "compression": entry.compression,
                    "split": entry.split,
                    "path": (folder / name).relative_to(dataset_dir).as_posix(),
                    "score": f"{face.score:.6f}",
                    **{c: f"{v:.3f}" for c, v in zip(POINT_COLUMNS, points.ravel(), strict=True)},
                }
            )
        return {"rows": rows, "failures": failures, "decoded": len(frames)}


def _failure(entry: VideoEntry, frame: int | str, reason: str, detail: str) -> dict:
    return {"video_uid": entry.uid, "frame_index": str(frame), "reason": reason, "detail": detail}


_WORKER: VideoWorker | None = None


def _init_worker(config: VideoConfig, threads: int) -> None:
    """Pool initializer: few threads per process, detector built once."""
    global _WORKER
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    _WORKER = VideoWorker(config)


def _run_task(task: tuple[VideoEntry, Path]) -> tuple[str, dict]:
    """Pool task: one video with this process's worker."""
    assert _WORKER is not None
    return task[0].uid, _WORKER.process(*task)


def list_videos(config: VideoConfig) -> list[VideoEntry]:
    """The dataset's videos; layout problems become usage errors naming the path."""
    try:
        if config.dataset == "ffpp":
            return list_ffpp_videos(config.root, tuple(config.methods), config.compression)
        return list_celeb_df_videos(config.root)
    except (DatasetLayoutError, MetadataFileError, ValueError) as error:
        raise UsageError(str(error)) from error


def _load_done(folder: Path, dataset_dir: Path) -> dict | None:
    """A finished video's saved result, or None when it must be (re)done."""
    path = folder / VIDEO_JSON
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if any(f["reason"] in RETRY_REASONS for f in result.get("failures", [])):
        return None
    if any(not (dataset_dir / r["path"]).is_file() for r in result.get("rows", [])):
        return None
    return result


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Write a CSV atomically."""
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temp, path)


def _check_config(config: VideoConfig, dataset_dir: Path) -> None:
    """Refuse to mix outputs made with different settings."""
    path = dataset_dir / "config.json"
    settings = config.output_settings()
    if path.is_file():
        recorded = json.loads(path.read_text())
        if recorded != settings:
            differing = sorted(k for k in set(settings) | set(recorded) if settings.get(k) != recorded.get(k))
            raise UsageError(f"{dataset_dir} was made with other settings ({differing}); use a new OUT_DIR")
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


CONVERSION_DICT = "conversion_dict.json"


def copy_conversion_dict(root: Path, dataset_dir: Path) -> Path | None:
    """Copy FF++'s ``conversion_dict.json`` (``ROOT/`` or ``ROOT/dataset/``) next to the index, if present."""
    import shutil

    for source in (root / CONVERSION_DICT, root / "dataset" / CONVERSION_DICT):
        if source.is_file():
            target = dataset_dir / CONVERSION_DICT
            temp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, temp)
            os.replace(temp, target)
            return source
    return None


def run_videos(config: VideoConfig) -> dict:
    """Preprocess every video of ``config.dataset``; returns the summary (also saved)."""
    from tqdm import tqdm

    if config.frames < 1:
        raise UsageError(f"--frames must be >= 1, got {config.frames}")
    entries = list_videos(config)
    dataset_dir = config.out_dir / config.dataset
    dataset_dir.mkdir(parents=True, exist_ok=True)
    _check_config(config, dataset_dir)
    conversion = copy_conversion_dict(config.root, dataset_dir) if config.dataset == "ffpp" else None
    started = time.perf_counter()
    results: dict[str, dict] = {}
    todo = []
    for entry in entries:
        done = _load_done(video_dir(dataset_dir, entry), dataset_dir)
        if done is None:
            todo.append(entry)
        else:
            results[entry.uid] = done
    with tqdm(total=len(entries), initial=len(results), unit="video", disable=not config.progress) as bar:
        if config.workers <= 1 or len(todo) <= 1:
            worker = VideoWorker(config) if todo else None
            for entry in todo:
                results[entry.uid] = worker.process(entry, dataset_dir)
                bar.update(1)
        else:
            import multiprocessing

            workers = min(config.workers, len(todo))
            threads = max(1, (os.cpu_count() or 1) // workers)
            context = multiprocessing.get_context("spawn")
            tasks = [(entry, dataset_dir) for entry in todo]
            with context.Pool(workers, initializer=_init_worker, initargs=(config, threads)) as pool:
                for uid, result in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    results[uid] = result
                    bar.update(1)
    elapsed = time.perf_counter() - started
    order = sorted(entries, key=lambda e: e.uid)
    rows = [r for e in order for r in sorted(results[e.uid]["rows"], key=lambda r: int(r["frame_index"]))]
    failures = [f for e in order for f in results[e.uid]["failures"]]
    _write_csv(dataset_dir / "index.csv", INDEX_COLUMNS, rows)
    _write_csv(dataset_dir / "failures.csv", FAILURE_COLUMNS, failures)
    processed_frames = sum(results[e.uid]["decoded"] for e in todo)
    reasons = Counter(f["reason"] for f in failures)
    summary = {
        "counts": {
            "videos": len(entries),
            "videos_with_frames": len({r["video_uid"] for r in rows}),
            "frames": len(rows),
            "failures": len(failures),
            "failures_by_reason": dict(sorted(reasons.items())),
            "videos_by_split": dict(sorted(Counter(e.split for e in entries).items())),
        },
        "settings": config.output_settings(),
        "conversion_dict": None if conversion is None else str(conversion),
        "run": {
            "processed_videos": len(todo),
            "skipped_videos": len(entries) - len(todo),
            "decoded_frames": processed_frames,
            "seconds": round(elapsed, 3),
            "frames_per_second": round(processed_frames / elapsed, 3) if elapsed > 0 and todo else 0.0,
        },
    }
    (dataset_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(
        f"videos: {len(entries)} videos -> {len(rows)} frames, {len(failures)} failures "
        f"({dict(reasons) or 'none'}); processed {len(todo)} videos, {processed_frames} frames in "
        f"{elapsed:.1f} s ({summary['run']['frames_per_second']:.2f} frames/s); outputs in {dataset_dir}"
    )
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.preprocess.videos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("root", type=Path, help="raw dataset root (FaceForensics++/ or Celeb-DF-v2/)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--frames", type=int, default=32, help="frames sampled evenly per video (default 32)")
    parser.add_argument("--detector", choices=("mtcnn", "hog"), default="mtcnn")
    parser.add_argument("--compression", default="c23", help="FF++ level: raw|c0|c23|c40 (default c23)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(FFPP_METHODS[:4]),
        help="FF++ manipulations (default: the 4 classic)",
    )
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    parser.add_argument("--margin", type=float, default=1.3, help="face margin scale (default 1.3)")
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; 0, or 2 for usage and layout errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.margin < 1.0 or args.size < 16:
        parser.error("--margin must be >= 1 and --size >= 16")
    config = VideoConfig(
        dataset=args.dataset,
        root=args.root,
        out_dir=args.out_dir,
        frames=args.frames,
        detector=args.detector,
        compression=args.compression,
        methods=tuple(args.methods),
        size=args.size,
        margin=args.margin,
        min_score=args.min_score,
        workers=args.workers,
        progress=args.progress,
    )
    try:
        run_videos(config)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
