"""Sample frames from FaceForensics++ / Celeb-DF v2 videos, detect the faces, crop them and index the crops.

Usage: ``python -m src.preprocess.videos ffpp|celeb_df ROOT OUT_DIR [--frames 32] [--profile dfb|sbi]
[--landmarks dlib68|dlib81|none] [--faces largest|all] [--detector mtcnn|hog] [--detect-side 360]
[--compression c23] [--methods Deepfakes Face2Face ...] [--size 256] [--margin 1.3] [--max-side 512]
[--workers N]``.

Per video, ``--frames`` indices are taken evenly (``linspace(0, N - 1, frames)`` cast to int, the
DeepfakeBench rule) and decoded with PyAV (sequentially; only the sampled frames are converted to RGB). Faces
are detected on the full-resolution frames of a video together (MTCNN computed as in ``src.face.fast_mtcnn``:
the boxes of facenet-pytorch's MTCNN, with the pyramid levels finer than on a copy of shorter side
``--detect-side`` skipped, i.e. faces under ~``20 * shorter side / detect side`` px (±16 %) are not searched
for; ``--detect-side 0`` keeps every level). ``--landmarks``: dlib's 68-point predictor, the 81-point one
(``shape_predictor_81_face_landmarks.dat``, resolved through the weights manifest entry
``dlib-shape-predictor-81``) or none, run on the full-resolution frame from the detector box (an MTCNN box is
first made the square box dlib's predictors were trained on). ``--faces
largest`` keeps the largest face of a frame; ``all`` keeps every face whose box area is at least half the
largest one's (the others are counted as ``small_faces_dropped``), numbered by decreasing area (``face_index``
0 = largest). Profiles:

- ``dfb`` (DeepfakeBench-style): the face's 5 detector points align the frame to the ArcFace template scaled
  to ``--size`` with ``--margin`` (the face fills ~1/margin of the crop);
- ``sbi`` (SBI-style): no alignment; the axis-aligned region of the frame around SBI's coarse crop of the face
  (landmark box of size ``w × h`` (68 points; the detector box with ``--landmarks none``) grown by ``w/2``
  left and right, ``h`` above and ``2h/5`` below), plus 10 % of that crop's width / height on each side,
  clipped to the frame, at native resolution, scaled down (aspect kept) when its longer side exceeds
  ``--max-side``. The final crop and resize happen online.

Writes

- ``OUT/<dataset>/<split>/<video uid>/<frame:03d>.png`` for face 0, ``<frame:03d>_<face>.png`` for the others,
  and with landmarks ``<same stem>.npy`` (float32 ``(68, 2)`` or ``(81, 2)``, crop pixels); uid =
  ``dataset/method/compression/name``;
- ``OUT/<dataset>/index.csv``: ``video_uid, frame_index, label (1 = fake, 0 = real), method, compression,
  split, path`` (relative to ``OUT/<dataset>``), ``score`` (detector), the 5 detector points in crop pixels,
  then ``face_index``, ``box_x0, box_y0, box_x1, box_y1`` (the detector box in crop pixels, exclusive ``x1,
  y1``; the enclosing box for a rotated ``dfb`` crop; it may reach past the crop for a face cut by the frame
  edge) and ``landmarks`` (path of the ``.npy``, empty with ``--landmarks none``). Points use pixel-index
  coordinates (pixel ``(c, r)`` has its centre at ``(c, r)``);
- ``OUT/<dataset>/failures.csv``: ``video_uid, frame_index`` (empty for a whole video), ``reason``
  (``unreadable``, ``no_frames``, ``no_face``, ``decode_error``, ``error``), ``detail``, ``label, method,
  compression, split`` (so failed frames and videos can be scored without the raw dataset);
- ``OUT/<dataset>/summary.json``: counts (videos, frames, faces, small faces dropped, failures by reason),
  settings and frames/s;
- ``OUT/ffpp/conversion_dict.json``: a copy of FF++'s ``conversion_dict.json`` (original sequence → YouTube
  video) when ``ROOT`` holds one (at its top or under ``dataset/``), for the DataModule's
  ``conversion_dict`` option (identities of source and target videos).

Every worker (``--workers``; about one per CPU core) runs one torch / OpenCV thread; workers start from a fork
server that imports the libraries once (~4.5 s). With 2 workers on 2 cores: ~21–28 frames/s at 854×480 and
1280×720 after that start (``benchmarks/bench_data.py``).

Resumable: each finished video leaves ``<video dir>/_video.json`` with its rows; a later run skips those
(unless the outcome was ``error``, which is retried) and rebuilds the CSVs from all of them, so the outputs
do not depend on ``--workers`` or on interruptions. Settings that change the outputs must match
``OUT/<dataset>/config.json``. Exit status 0, or 2 for usage/layout errors (also a missing landmark model).
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
from src.preprocess.video_decode import VideoOpenError, frame_count, read_frames

DATASETS = ("ffpp", "celeb_df")
PROFILES = ("dfb", "sbi")
LANDMARK_MODELS = ("dlib68", "dlib81", "none")
FACE_MODES = ("largest", "all")
DLIB81_WEIGHTS = "dlib-shape-predictor-81"
SBI_SLACK = 0.1  # fraction of SBI's coarse crop added on each side of the saved sbi region
SMALL_FACE_RATIO = 0.5  # --faces all: faces below this fraction of the largest box area are dropped
POINT_COLUMNS = [
    f"{name}_{axis}"
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    for axis in ("x", "y")
]
BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]
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
    "face_index",
    *BOX_COLUMNS,
    "landmarks",
]
FAILURE_COLUMNS = ["video_uid", "frame_index", "reason", "detail", "label", "method", "compression", "split"]
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
    profile: str = "dfb"
    landmarks: str = "dlib68"
    faces: str = "largest"
    max_side: int = 512
    detect_side: int = 360
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


def margin_template(size: int, margin: float):
    """The ArcFace 5-point template scaled to ``size`` and shrunk by ``margin`` about the crop centre."""
    from src.face.alignment import ARCFACE_112, AlignmentTemplate

    points = ARCFACE_112 * (size / 112.0)
    points = (points - size / 2.0) / margin + size / 2.0
    return AlignmentTemplate(f"arcface{size}m{margin:g}", "points", int(size), points)


def video_dir(out_dir: Path, entry: VideoEntry) -> Path:
    """Folder of one video's crops: ``OUT/<dataset>/<split>/<uid>``."""
    return out_dir / entry.split / entry.uid


def select_faces(detections: list, mode: str) -> tuple[list, int]:
    """Faces by decreasing box area (ties: higher score first) and how many small ones were dropped.

    ``largest``: the first one only (nothing counted as dropped); ``all``: every face whose box area is at
    least ``SMALL_FACE_RATIO`` of the largest one's.
    """
    ordered = sorted(detections, key=lambda d: (-d.area, -d.score))
    if not ordered or mode == "largest":
        return ordered[:1], 0
    kept = [d for d in ordered if d.area >= SMALL_FACE_RATIO * ordered[0].area]
    return kept, len(ordered) - len(kept)


def warp_region(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``src.face.alignment.warp_image`` (constant border, antialiased); when the crop is box-shrunk first (a
    face much larger than the crop), only the frame region the crop samples is shrunk, not the whole frame
    (same pixels up to ±1 where cv2's fixed-point sample positions round differently)."""
    from src.face.alignment import invert_affine, shrink_factor, warp_image

    factor = shrink_factor(matrix)
    if factor == 1:
        return warp_image(image, matrix, size)
    corners = np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]])
    inverse = invert_affine(np.asarray(matrix, dtype=np.float64))
    source = corners @ inverse[:, :2].T + inverse[:, 2]
    pad = 2 * factor + 2
    height, width = image.shape[:2]
    x0 = int(np.clip(np.floor(source[:, 0].min()) - pad, 0, width)) // factor * factor
    y0 = int(np.clip(np.floor(source[:, 1].min()) - pad, 0, height)) // factor * factor
    x1 = int(np.clip(np.ceil(source[:, 0].max()) + pad, 0, width))
    y1 = int(np.clip(np.ceil(source[:, 1].max()) + pad, 0, height))
    if x1 - x0 < factor or y1 - y0 < factor:  # the crop lies outside the frame: all border
        return np.zeros((size, size, image.shape[2]), dtype=image.dtype)
    shifted = np.array(matrix, dtype=np.float64)
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return warp_image(image[y0:y1, x0:x1], shifted, size)


class VideoWorker:
    """Per-process state (detector, landmark model, template); ``process`` turns one video into its rows.

    ``decode_threads``: FFmpeg decoder threads. The models run in the caller's torch threads; the CLI uses one
    per worker (MTCNN's small convolutions gain little from more, and lose much on a busy machine).
    """

    def __init__(
        self, config: VideoConfig, landmark_path: Path | None = None, decode_threads: int = 1
    ) -> None:
        from src.face.detection import build_detector
        from src.face.face_landmarkers import FaceLandmarker
        from src.face.fast_mtcnn import FastMTCNNDetector

        kwargs: dict = {} if config.min_score is None else {"min_score": config.min_score}
        self.config = config
        self.threads = int(decode_threads)
        if config.detector == "mtcnn":
            self.detector = FastMTCNNDetector(detect_side=config.detect_side or None, **kwargs)
        else:
            self.detector = build_detector(config.detector, **kwargs)
        self.landmarker = (
            None if config.landmarks == "none" else FaceLandmarker(config.landmarks, landmark_path)
        )
        self.template = margin_template(config.size, config.margin)

    def process(self, entry: VideoEntry, dataset_dir: Path) -> dict:
        """Rows, failures and counts of one video, also saved as ``_video.json``; never raises."""
        folder = video_dir(dataset_dir, entry)
        started = time.process_time()
        try:
            result = self._process(entry, folder, dataset_dir)
        except Exception as error:  # one bad video must not stop the run; retried on resume
            detail = f"{type(error).__name__}: {error}".replace("\n", " ")[:300]
            result = _empty_result(entry, "error", detail)
        result["cpu_seconds"] = round(time.process_time() - started, 4)
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{VIDEO_JSON}.{os.getpid()}.tmp"
        temp.write_text(json.dumps(result))
        os.replace(temp, folder / VIDEO_JSON)
        return result

    def _process(self, entry: VideoEntry, folder: Path, dataset_dir: Path) -> dict:
        try:
            count = frame_count(entry.path, self.threads)
        except VideoOpenError as error:
            return _empty_result(entry, "unreadable", str(error)[:300])
        if count == 0:
            return _empty_result(entry, "no_frames", "0 frames")
        indices = sample_indices(count, self.config.frames)
        frames = read_frames(entry.path, indices, self.threads)
        failures = [
            _failure(entry, index, "decode_error", f"frame {index} of {count} not decoded")
            for index in indices
            if index not in frames
        ]
        present = [index for index in indices if index in frames]
        detections = self.detector.detect_batch([frames[index] for index in present]) if present else []
        rows, dropped = [], 0
        folder.mkdir(parents=True, exist_ok=True)
        for index, found in zip(present, detections, strict=True):
            image = frames.pop(index)
            faces, small = select_faces(found, self.config.faces)
            dropped += small
            if not faces:
                failures.append(_failure(entry, index, "no_face", "no face above the score threshold"))
                continue
            for face_index, face in enumerate(faces):
                rows.append(self._save_face(entry, folder, dataset_dir, image, index, face_index, face))
        failures.sort(key=lambda f: int(f["frame_index"]))
        return {"rows": rows, "failures": failures, "decoded": len(present), "small_faces_dropped": dropped}

    def _crop(self, image: np.ndarray, face, points: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The crop of ``face`` for the profile and the frame → crop point matrix."""
        import cv2

        from src.face.crop_regions import crop_matrix, expand_box, landmark_box, pixel_region, sbi_coarse_box

        if self.config.profile == "dfb":
            from src.face.alignment import alignment_matrix

            matrix = alignment_matrix(face.landmarks, self.template)
            return warp_region(image, matrix, self.template.size), matrix
        base = landmark_box(points[:68]) if points is not None else face.box
        height, width = image.shape[:2]
        x0, y0, x1, y1 = pixel_region(expand_box(sbi_coarse_box(base), SBI_SLACK), width, height)
        crop = image[y0:y1, x0:x1]
        longer = max(x1 - x0, y1 - y0)
        if longer <= self.config.max_side:
            return np.ascontiguousarray(crop), crop_matrix(x0, y0)
        scale = self.config.max_side / longer
        out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        resized = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
        return resized, crop_matrix(x0, y0, out_w / (x1 - x0), out_h / (y1 - y0))

    def _save_face(
        self,
        entry: VideoEntry,
        folder: Path,
        dataset_dir: Path,
        image: np.ndarray,
        index: int,
        face_index: int,
        face,
    ) -> dict:
        """Crop, landmarks and index row of one face."""
        import cv2

        from src.face.alignment import transform_points
        from src.face.crop_regions import transform_box

        points = None if self.landmarker is None else self.landmarker.predict(image, face)
        crop, matrix = self._crop(image, face, points)
        stem = f"{index:03d}" if face_index == 0 else f"{index:03d}_{face_index}"
        ok, data = cv2.imencode(".png", crop[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError(f"cannot encode {folder / stem}.png")
        (folder / f"{stem}.png").write_bytes(data.tobytes())
        landmarks_path = ""
        if points is not None:
            mapped = np.asarray(transform_points(points, matrix), dtype=np.float32)
            np.save(folder / f"{stem}.npy", mapped)
            landmarks_path = (folder / f"{stem}.npy").relative_to(dataset_dir).as_posix()
        five = np.asarray(transform_points(np.asarray(face.landmarks, np.float64), matrix)).reshape(5, 2)
        box = transform_box(face.box, matrix)
        return {
            **_entry_columns(entry),
            "frame_index": str(index),
            "path": (folder / f"{stem}.png").relative_to(dataset_dir).as_posix(),
            "score": f"{face.score:.6f}",
            **{c: f"{v:.3f}" for c, v in zip(POINT_COLUMNS, five.ravel(), strict=True)},
            "face_index": str(face_index),
            **{c: f"{v:.3f}" for c, v in zip(BOX_COLUMNS, box, strict=True)},
            "landmarks": landmarks_path,
        }


def _entry_columns(entry: VideoEntry) -> dict:
    return {
        "video_uid": entry.uid,
        "label": str(entry.label),
        "method": entry.method,
        "compression": entry.compression,
        "split": entry.split,
    }


def _failure(entry: VideoEntry, frame: int | str, reason: str, detail: str) -> dict:
    return {**_entry_columns(entry), "frame_index": str(frame), "reason": reason, "detail": detail}


def _empty_result(entry: VideoEntry, reason: str, detail: str) -> dict:
    """The result of a video that failed as a whole."""
    return {
        "rows": [],
        "failures": [_failure(entry, "", reason, detail)],
        "decoded": 0,
        "small_faces_dropped": 0,
    }


_WORKER: VideoWorker | None = None


def _init_worker(config: VideoConfig, landmark_path: Path | None, decode_threads: int) -> None:
    """Pool initializer: one torch / OpenCV thread per process, models loaded once."""
    global _WORKER
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER = VideoWorker(config, landmark_path, decode_threads)


# Imported once by the fork server (~3.5 s of CPU: torch, torchvision via facenet-pytorch, dlib), not per
# worker.
WORKER_PRELOAD = [
    "torch",
    "cv2",
    "av",
    "dlib",
    "facenet_pytorch",
    "src.face.fast_mtcnn",
    "src.face.face_landmarkers",
]


def _pool_context(multiprocessing):
    """``forkserver`` with the heavy imports preloaded where available (workers start in ~1 s instead of ~4 s
    each), else ``spawn``; never a plain fork of this possibly multi-threaded process."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _run_in_process(
    config: VideoConfig, landmark_path: Path | None, todo: list, dataset_dir: Path, bar
) -> dict:
    """Process ``todo`` here, with one torch / OpenCV thread (restored afterwards)."""
    import cv2
    import torch

    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        worker = VideoWorker(config, landmark_path, os.cpu_count() or 1)
        results = {}
        for entry in todo:
            results[entry.uid] = worker.process(entry, dataset_dir)
            bar.update(1)
        return results
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


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


def landmark_model_path(config: VideoConfig) -> Path | None:
    """The 81-point model's verified path (weights manifest) for ``--landmarks dlib81``; a usage error naming
    the file and where to put it when it is missing or unpinned."""
    if config.landmarks != "dlib81":
        return None
    from src.weights import WeightsError, resolve

    try:
        return resolve(DLIB81_WEIGHTS)
    except WeightsError as error:
        raise UsageError(f"--landmarks dlib81: {error}") from error


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
    for row in result.get("rows", []):
        if not (dataset_dir / row["path"]).is_file():
            return None
        if row.get("landmarks") and not (dataset_dir / row["landmarks"]).is_file():
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


def check_settings(config: VideoConfig) -> None:
    """Usage errors for settings out of range."""
    checks = [
        (config.frames >= 1, f"--frames must be >= 1, got {config.frames}"),
        (config.profile in PROFILES, f"--profile must be one of {PROFILES}, got {config.profile!r}"),
        (config.landmarks in LANDMARK_MODELS, f"--landmarks must be one of {LANDMARK_MODELS}"),
        (config.faces in FACE_MODES, f"--faces must be one of {FACE_MODES}, got {config.faces!r}"),
        (config.max_side >= 16, f"--max-side must be >= 16, got {config.max_side}"),
        (config.detect_side >= 0, f"--detect-side must be >= 0, got {config.detect_side}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def run_videos(config: VideoConfig) -> dict:
    """Preprocess every video of ``config.dataset``; returns the summary (also saved)."""
    from tqdm import tqdm

    check_settings(config)
    entries = list_videos(config)
    landmark_path = landmark_model_path(config)
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
        if todo and (config.workers <= 1 or len(todo) <= 1):
            results.update(_run_in_process(config, landmark_path, todo, dataset_dir, bar))
        elif todo:
            import multiprocessing

            workers = min(config.workers, len(todo))
            threads = max(1, (os.cpu_count() or 1) // workers)
            context = _pool_context(multiprocessing)
            tasks = [(entry, dataset_dir) for entry in todo]
            initargs = (config, landmark_path, threads)
            with context.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
                for uid, result in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    results[uid] = result
                    bar.update(1)
    elapsed = time.perf_counter() - started
    order = sorted(entries, key=lambda e: e.uid)
    rows = [
        r
        for e in order
        for r in sorted(results[e.uid]["rows"], key=lambda r: (int(r["frame_index"]), int(r["face_index"])))
    ]
    failures = [f for e in order for f in results[e.uid]["failures"]]
    _write_csv(dataset_dir / "index.csv", INDEX_COLUMNS, rows)
    _write_csv(dataset_dir / "failures.csv", FAILURE_COLUMNS, failures)
    processed_frames = sum(results[e.uid]["decoded"] for e in todo)
    reasons = Counter(f["reason"] for f in failures)
    frames_with_faces = len({(r["video_uid"], r["frame_index"]) for r in rows})
    summary = {
        "counts": {
            "videos": len(entries),
            "videos_with_frames": len({r["video_uid"] for r in rows}),
            "videos_without_frames": len(entries) - len({r["video_uid"] for r in rows}),
            "frames": frames_with_faces,
            "faces": len(rows),
            "small_faces_dropped": sum(results[e.uid].get("small_faces_dropped", 0) for e in entries),
            "failures": len(failures),
            "failures_by_reason": dict(sorted(reasons.items())),
            "videos_by_split": dict(sorted(Counter(e.split for e in entries).items())),
        },
        "settings": config.output_settings(),
        "conversion_dict": None if conversion is None else str(conversion),
        "landmark_model": None if landmark_path is None else str(landmark_path),
        "run": {
            "processed_videos": len(todo),
            "skipped_videos": len(entries) - len(todo),
            "decoded_frames": processed_frames,
            "workers": config.workers,
            "cpu_seconds": round(sum(results[e.uid].get("cpu_seconds", 0.0) for e in todo), 3),
            "seconds": round(elapsed, 3),
            "frames_per_second": round(processed_frames / elapsed, 3) if elapsed > 0 and todo else 0.0,
        },
    }
    (dataset_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(
        f"videos: {len(entries)} videos -> {frames_with_faces} frames, {len(rows)} faces, {len(failures)} "
        f"failures ({dict(reasons) or 'none'}); processed {len(todo)} videos, {processed_frames} frames in "
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
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="dfb",
        help="dfb: aligned --size crops (DeepfakeBench); sbi: unaligned region around SBI's coarse crop",
    )
    parser.add_argument(
        "--landmarks",
        choices=LANDMARK_MODELS,
        default="dlib68",
        help="dense landmarks saved per face (dlib81 needs shape_predictor_81_face_landmarks.dat)",
    )
    parser.add_argument(
        "--faces", choices=FACE_MODES, default="largest", help="largest face, or all faces >= 1/2 its area"
    )
    parser.add_argument("--detector", choices=("mtcnn", "hog"), default="mtcnn")
    parser.add_argument(
        "--detect-side",
        type=int,
        default=360,
        help="MTCNN skips the pyramid levels finer than on a copy with this shorter side (default 360; "
        "0 = all levels, slower, also finds faces under 20*short/360 px)",
    )
    parser.add_argument("--compression", default="c23", help="FF++ level: raw|c0|c23|c40 (default c23)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(FFPP_METHODS[:4]),
        help="FF++ manipulations (default: the 4 classic)",
    )
    parser.add_argument("--size", type=int, default=256, help="dfb crop side in pixels (default 256)")
    parser.add_argument("--margin", type=float, default=1.3, help="dfb face margin scale (default 1.3)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=512,
        help="sbi regions are scaled down to this longer side (default 512)",
    )
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
        profile=args.profile,
        landmarks=args.landmarks,
        faces=args.faces,
        max_side=args.max_side,
        detect_side=args.detect_side,
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
