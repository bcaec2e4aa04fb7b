"""Detect and align every face image under a folder.

Usage: ``python -m src.preprocess.align IN_DIR OUT_DIR [--detector mtcnn|hog|mmod] [--template arcface112]
[--workers N] [--multi-face skip|largest] ...`` (``--help`` lists all options).

Mirrors the input tree under ``OUT_DIR`` with one aligned crop per image (PNG by default) and writes

- ``landmarks.csv`` — one row per aligned file: input ``file`` (relative, ``/``-separated), ``output``,
  ``n_faces`` found, detector ``score``, box ``x1 y1 x2 y2``, the 5 landmarks (image-left eye, image-right
  eye, nose, image-left / image-right mouth corner; input-image pixels), ``fit_rmse`` (template fit residual,
  output pixels; 5-point templates only), the image → crop matrix ``m00 … m12``, the landmark ``source`` and
  the input's size and mtime;
- ``failures.csv`` — one row per file that gave no crop: ``file``, ``reason`` (``unreadable``, ``not_image``,
  ``no_face``, ``multiple_faces`` with ``--multi-face skip``, ``error`` for anything unexpected), ``detail``;
- ``summary.json`` — counts per outcome and the settings; ``config.json`` — the settings the folder was made
  with.

Every file under ``IN_DIR`` ends up in exactly one of the two CSVs (checked at the end of every run), so
nothing is dropped silently. Runs are resumable: a file whose row is present, whose input is unchanged (size,
mtime) and whose crop exists is skipped; everything else is (re)done and its old rows replaced, and ``error``
rows are retried. The CSVs are appended to as files finish (a killed run loses nothing) and rewritten sorted
by file at the end, so the outputs do not depend on ``--workers``. Settings that change the outputs must match
``config.json`` (use a new OUT_DIR otherwise). Exit status: 0 whatever the per-file outcomes, 2 for usage
errors (bad options or folders, settings that differ from ``config.json``, a detector that cannot be built).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jp2"}
)
FAILURE_REASONS = ("unreadable", "not_image", "no_face", "multiple_faces", "error")
RETRY_REASONS = frozenset({"error"})
LANDMARKS_CSV, FAILURES_CSV, SUMMARY_JSON, CONFIG_JSON = (
    "landmarks.csv",
    "failures.csv",
    "summary.json",
    "config.json",
)
_POINT_COLUMNS = [
    f"{name}_{axis}"
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    for axis in ("x", "y")
]
LANDMARK_COLUMNS = [
    "file",
    "output",
    "n_faces",
    "score",
    "x1",
    "y1",
    "x2",
    "y2",
    *_POINT_COLUMNS,
    "fit_rmse",
    "m00",
    "m01",
    "m02",
    "m10",
    "m11",
    "m12",
    "source",
    "source_size",
    "source_mtime_ns",
]
TEMPLATE_CHOICES = (
    "alignment template: arcface112 (arcfaceN: ArcFace 5 points scaled to N), ffhq256 (ffhqN: FFHQ quad "
    "recipe), ffhq5pt512 (ffhq5ptN: FFHQ 5-point template), dlib150 (dlibN: dlib face chip)"
)
FAILURE_COLUMNS = ["file", "reason", "detail", "n_faces", "source_size", "source_mtime_ns"]


class UsageError(Exception):
    """A problem with the command line or the folders (exit status 2)."""


class WorkerStartError(RuntimeError):
    """The detector/aligner could not be built (bad device, missing model files); exit status 2."""


@dataclass(frozen=True)
class AlignConfig:
    """Everything one alignment run needs; ``output_settings`` are the fields that change the outputs."""

    in_dir: Path
    out_dir: Path
    detector: str = "mtcnn"
    template: str = "arcface112"
    multi_face: str = "skip"
    min_score: float | None = None
    upsample: int | None = None
    dlib_landmarks: str = "68"
    image_format: str = "png"
    jpeg_quality: int = 95
    border: str | None = None
    antialias: bool = True
    device: str = "cpu"
    workers: int = 1
    threads: int | None = None
    progress: bool = True

    def output_settings(self) -> dict:
        """The settings recorded in ``config.json`` and required to match when resuming."""
        settings = asdict(self)
        for key in ("in_dir", "out_dir", "device", "workers", "threads", "progress"):
            settings.pop(key)
        return settings


# ------------------------------------------------------------------------------------------------ file plan


def list_inputs(in_dir: Path) -> list[str]:
    """Every file under ``in_dir`` (recursive, hidden ones too) as sorted ``/``-separated relative paths."""
    files = []
    for root, dirs, names in os.walk(in_dir):
        dirs.sort()
        for name in names:
            path = Path(root) / name
            if path.is_file() or path.is_symlink():
                files.append(path.relative_to(in_dir).as_posix())
    return sorted(files)


def is_image_name(rel: str) -> bool:
    """Whether a file name has an image extension this tool decodes."""
    return Path(rel).suffix.lower() in IMAGE_EXTENSIONS


def plan_outputs(inputs: Iterable[str], image_format: str) -> dict[str, str]:
    """Output crop path (relative) per image input: same folders, extension replaced by ``image_format``.

    When two inputs would share a crop name (``a.jpg`` and ``a.png``), both keep their full name
    (``a.jpg.png``, ``a.png.png``).
    """
    suffix = "." + image_format
    images = [rel for rel in inputs if is_image_name(rel)]
    wanted = {rel: Path(rel).with_suffix(suffix).as_posix() for rel in images}
    counts = Counter(wanted.values())
    plan = {rel: (out if counts[out] == 1 else rel + suffix) for rel, out in wanted.items()}
    if len(set(plan.values())) != len(plan):
        raise UsageError("input file names collide even after keeping their extensions; rename them")
    return plan


def _stat(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file, ``(-1, -1)`` when it cannot be stat'ed (e.g. a broken link)."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return int(stat.st_size), int(stat.st_mtime_ns)


# ---------------------------------------------------------------------------------------------------- worker


def _fmt(value: float, digits: int = 3) -> str:
    """Fixed-precision text for the CSVs (stable across runs)."""
    return f"{float(value):.{digits}f}"


class AlignWorker:
    """Per-process state: the detector (built once) and the template; ``process`` handles one input file."""

    def __init__(self, config: AlignConfig) -> None:
        from src.face.alignment import get_template
        from src.face.detection import build_detector
        from src.face.landmarks import DlibShapePredictor

        self.config = config
        self.template = get_template(config.template)
        kwargs: dict = {}
        if config.min_score is not None:
            kwargs["min_score"] = config.min_score
        if config.detector == "mtcnn":
            kwargs["device"] = config.device
        else:
            kwargs["landmarks"] = config.dlib_landmarks
            if config.upsample is not None:
                kwargs["upsample"] = config.upsample
        self.detector = build_detector(config.detector, **kwargs)
        needs_dlib5 = self.template.kind == "dlib_chip" and config.detector == "mtcnn"
        self.shape5 = DlibShapePredictor(5) if needs_dlib5 else None

    def process(self, task: tuple[str, str | None]) -> tuple[str, dict[str, str]]:
        """``(rel, output rel or None)`` → ``("ok", landmarks row)`` or ``("fail", failure row)``; never
        raises."""
        rel, out_rel = task
        path = self.config.in_dir / rel
        size, mtime = _stat(path)
        base = {"file": rel, "source_size": str(size), "source_mtime_ns": str(mtime)}
        try:
            return self._process(path, out_rel, base)
        except Exception as error:  # one bad file must not stop the run; recorded and retried on resume
            detail = f"{type(error).__name__}: {error}".replace("\n", " ")[:300]
            return "fail", {**base, "reason": "error", "detail": detail, "n_faces": ""}

    def _process(self, path: Path, out_rel: str | None, base: dict) -> tuple[str, dict[str, str]]:
        from src.datamodules.components.image_io import read_image_rgb
        from src.face.alignment import alignment_matrix, fit_rmse, warp_image
        from src.face.detection import largest_face

        def fail(reason: str, detail: str, n_faces: str = "") -> tuple[str, dict[str, str]]:
            return "fail", {**base, "reason": reason, "detail": detail, "n_faces": n_faces}

        if out_rel is None:
            return fail("not_image", f"extension {path.suffix or '(none)'} is not an image type")
        try:
            image = read_image_rgb(path)
        except (OSError, ValueError) as error:
            detail = "cannot decode image (corrupt or not an image)"
            if not isinstance(error, ValueError) and getattr(error, "strerror", None):
                detail = f"{type(error).__name__}: {error.strerror}"
            return fail("unreadable", detail)
        detections = self.detector.detect(image)
        n_faces = len(detections)
        if n_faces == 0:
            return fail("no_face", "no face above the detector's score threshold", "0")
        if n_faces > 1 and self.config.multi_face == "skip":
            scores = ", ".join(f"{d.score:.3f}" for d in detections[:10])
            return fail("multiple_faces", f"{n_faces} faces (scores {scores})", str(n_faces))
        face = largest_face(detections)
        points = face.landmarks
        if self.template.kind == "dlib_chip":
            points = face.dlib5 if face.dlib5 is not None else self.shape5.predict(image, face.box)
        matrix = alignment_matrix(points, self.template)
        border = self.config.border or self.template.border
        crop = warp_image(image, matrix, self.template.size, border, self.config.antialias)
        self._write(crop, self.config.out_dir / out_rel)
        rmse = fit_rmse(points, matrix, self.template)
        row = {
            **base,
            "output": out_rel,
            "n_faces": str(n_faces),
            "score": _fmt(face.score, 6),
            **dict(zip(("x1", "y1", "x2", "y2"), (_fmt(v) for v in face.box), strict=True)),
            **dict(zip(_POINT_COLUMNS, (_fmt(v) for v in face.landmarks.ravel()), strict=True)),
            "fit_rmse": "" if rmse is None else _fmt(rmse),
            **{f"m{r}{c}": f"{matrix[r, c]:.9g}" for r in range(2) for c in range(3)},
            "source": face.source + ("(mouth estimated)" if face.mouth_estimated else ""),
        }
        return "ok", row

    def _write(self, crop_rgb: np.ndarray, target: Path) -> None:
        """Encode and write atomically (temp file + rename), so a present crop is always a complete one."""
        import cv2

        if self.config.image_format == "png":
            ok, data = cv2.imencode(".png", crop_rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
        else:
            ok, data = cv2.imencode(
                ".jpg", crop_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
            )
        if not ok:
            raise OSError(f"cannot encode crop for {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_bytes(data.tobytes())
        os.replace(temp, target)


_WORKER: AlignWorker | None = None
_WORKER_ERROR: str | None = None


def _init_worker(config: AlignConfig, threads: int) -> None:
    """Pool initializer: limit threads, then build the detector once per worker process.

    A failure is kept and raised by the first task (an initializer that raises makes the Pool respawn
    workers forever), so a broken setup stops the run with its message instead of hanging.
    """
    global _WORKER, _WORKER_ERROR
    try:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(1)
        _WORKER = AlignWorker(config)
    except Exception as error:
        _WORKER_ERROR = f"{type(error).__name__}: {error}"


def _run_task(task: tuple[str, str | None]) -> tuple[str, dict[str, str]]:
    """Pool task: process one file with this process's worker."""
    if _WORKER is None:
        raise WorkerStartError(f"alignment worker failed to start: {_WORKER_ERROR}")
    return _WORKER.process(task)


def _results(
    config: AlignConfig, tasks: list[tuple[str, str | None]]
) -> Iterator[tuple[str, dict[str, str]]]:
    """Process tasks here (``workers == 1``) or in a spawn Pool whose workers build their detector once."""
    if not tasks:
        return
    if config.workers <= 1 or len(tasks) == 1:
        import torch

        previous = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            try:
                worker = AlignWorker(config)
            except Exception as error:
                raise WorkerStartError(
                    f"alignment worker failed to start: {type(error).__name__}: {error}"
                ) from error
            for task in tasks:
                yield worker.process(task)
        finally:
            torch.set_num_threads(previous)
        return
    import multiprocessing

    workers = min(config.workers, len(tasks))
    threads = config.threads or max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(config, threads)) as pool:
        yield from pool.imap_unordered(_run_task, tasks, chunksize=1)


# --------------------------------------------------------------------------------------------- manifests


def _read_rows(path: Path, columns: list[str]) -> tuple[dict[str, dict[str, str]], bool]:
    """Rows of a manifest by file (last one wins) and whether it needs rewriting (duplicates, broken rows)."""
    if not path.is_file():
        return {}, False
    rows: dict[str, dict[str, str]] = {}
    dirty = False
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is not None and list(reader.fieldnames) != columns:
            raise UsageError(f"{path} has columns {reader.fieldnames}, expected {columns}; use a new OUT_DIR")
        for row in reader:
            if any(row.get(column) is None for column in columns) or None in row or not row["file"]:
                dirty = True  # a truncated last line from a killed run
                continue
            dirty |= row["file"] in rows
            rows[row["file"]] = row
    return rows, dirty


def _write_rows(path: Path, columns: list[str], rows: dict[str, dict[str, str]]) -> None:
    """Rewrite a manifest atomically, sorted by file."""
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow({column: rows[key][column] for column in columns})
    os.replace(temp, path)


class _Appender:
    """Appends rows to a manifest as results arrive (header first if the file is new); flushes every row."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        new = not path.is_file() or path.stat().st_size == 0
        self.handle = path.open("a", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=columns, lineterminator="\n")
        if new:
            self.writer.writeheader()

    def write(self, row: dict[str, str]) -> None:
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _is_done(
    rel: str,
    stat: tuple[int, int],
    out_rel: str | None,
    out_dir: Path,
    aligned: dict[str, dict[str, str]],
    failed: dict[str, dict[str, str]],
) -> bool:
    """Whether a file's recorded outcome still holds (same input, crop present, not a retryable error)."""
    row_ok, row_fail = aligned.get(rel), failed.get(rel)
    if (row_ok is None) == (row_fail is None):
        return False  # never processed, or (inconsistently) in both manifests
    row = row_ok or row_fail
    if (row["source_size"], row["source_mtime_ns"]) != (str(stat[0]), str(stat[1])):
        return False
    if row_fail is not None:
        return row_fail["reason"] not in RETRY_REASONS
    return out_rel is not None and row_ok["output"] == out_rel and (out_dir / out_rel).is_file()


def _write_if_changed(path: Path, text: str) -> None:
    """Write a text file only when its content changes (a run with nothing to do touches nothing)."""
    if path.is_file() and path.read_text() == text:
        return
    path.write_text(text)


def _check_folders(config: AlignConfig) -> None:
    """Usage errors for missing or nested folders."""
    in_dir, out_dir = config.in_dir.resolve(), config.out_dir.resolve()
    if not in_dir.is_dir():
        raise UsageError(f"input folder not found: {config.in_dir}")
    if out_dir == in_dir or in_dir in out_dir.parents or out_dir in in_dir.parents:
        raise UsageError(f"OUT_DIR {config.out_dir} and IN_DIR {config.in_dir} must not contain each other")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR exists and is not a folder: {config.out_dir}")


def _check_config(config: AlignConfig) -> None:
    """Record the settings on first use of OUT_DIR; refuse to mix outputs made with different settings."""
    path = config.out_dir / CONFIG_JSON
    settings = config.output_settings()
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise UsageError(f"{path} is not valid JSON ({error}); use a new OUT_DIR") from error
        differing = sorted(
            key for key in set(settings) | set(recorded) if settings.get(key) != recorded.get(key)
        )
        if differing:
            changes = ", ".join(f"{k}: {recorded.get(k)!r} → {settings.get(k)!r}" for k in differing)
            raise UsageError(f"{config.out_dir} was made with other settings ({changes}); use a new OUT_DIR")
    _write_if_changed(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def run_alignment(config: AlignConfig) -> dict:
    """Align every file under ``config.in_dir`` into ``config.out_dir``; returns the summary (also saved)."""
    from tqdm import tqdm

    from src.face.alignment import get_template

    _check_folders(config)
    get_template(config.template)  # fail early on a bad template name (ValueError → usage error)
    started = time.perf_counter()
    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_config(config)

    inputs = list_inputs(config.in_dir)
    plan = plan_outputs(inputs, config.image_format)
    stats = {rel: _stat(config.in_dir / rel) for rel in inputs}
    landmarks_path, failures_path = out_dir / LANDMARKS_CSV, out_dir / FAILURES_CSV
    aligned, dirty_ok = _read_rows(landmarks_path, LANDMARK_COLUMNS)
    failed, dirty_fail = _read_rows(failures_path, FAILURE_COLUMNS)

    done = {rel for rel in inputs if _is_done(rel, stats[rel], plan.get(rel), out_dir, aligned, failed)}
    todo = [rel for rel in inputs if rel not in done]
    stale = (set(aligned) | set(failed)) - done
    for rel in stale:  # redone files, and rows of files no longer in IN_DIR
        aligned.pop(rel, None)
        failed.pop(rel, None)
    changed = bool(stale) or dirty_ok or dirty_fail
    if changed:
        _write_rows(landmarks_path, LANDMARK_COLUMNS, aligned)
        _write_rows(failures_path, FAILURE_COLUMNS, failed)

    tasks = [(rel, plan.get(rel)) for rel in todo]
    if tasks:
        changed = True
        ok_out, fail_out = (
            _Appender(landmarks_path, LANDMARK_COLUMNS),
            _Appender(failures_path, FAILURE_COLUMNS),
        )
        try:
            with tqdm(
                total=len(inputs), initial=len(done), unit="file", desc="align", disable=not config.progress
            ) as bar:
                for kind, row in _results(config, tasks):
                    (ok_out if kind == "ok" else fail_out).write(row)
                    (aligned if kind == "ok" else failed)[row["file"]] = row
                    bar.update(1)
        finally:
            ok_out.close()
            fail_out.close()
    if changed or not landmarks_path.is_file() or not failures_path.is_file():
        _write_rows(landmarks_path, LANDMARK_COLUMNS, aligned)
        _write_rows(failures_path, FAILURE_COLUMNS, failed)

    # The invariant: every input is in exactly one manifest, and every aligned row has its crop.
    missing = sorted(set(inputs) - set(aligned) - set(failed))
    both = sorted(set(aligned) & set(failed))
    extra = sorted((set(aligned) | set(failed)) - set(inputs))
    no_crop = sorted(rel for rel, row in aligned.items() if not (out_dir / row["output"]).is_file())
    if missing or both or extra or no_crop:
        raise RuntimeError(
            f"manifest invariant violated: missing {missing[:5]}, in both {both[:5]}, extra {extra[:5]}, "
            f"crop missing {no_crop[:5]}"
        )

    reasons = Counter(row["reason"] for row in failed.values())
    summary = {
        "counts": {
            "input_files": len(inputs),
            "aligned": len(aligned),
            "failed": len(failed),
            "failures_by_reason": {reason: reasons.get(reason, 0) for reason in FAILURE_REASONS},
            "aligned_with_several_faces": sum(1 for row in aligned.values() if int(row["n_faces"]) > 1),
        },
        "settings": config.output_settings(),
        "outputs": {"landmarks": LANDMARKS_CSV, "failures": FAILURES_CSV, "config": CONFIG_JSON},
    }
    _write_if_changed(out_dir / SUMMARY_JSON, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    reason_text = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items())) or "none"
    print(
        f"align: {len(inputs)} input files -> {len(aligned)} aligned, {len(failed)} failed ({reason_text}); "
        f"this run processed {len(tasks)}, skipped {len(done)} already done "
        f"({time.perf_counter() - started:.1f} s); outputs in {out_dir}"
    )
    return {**summary, "run": {"processed": len(tasks), "skipped": len(done)}}


# ------------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    # No torch import here: ``--help`` stays instant. The names are parsed by src.face.alignment.get_template.
    parser = argparse.ArgumentParser(
        prog="python -m src.preprocess.align",
        description="Detect faces, align them to a template, mirror IN_DIR's tree into OUT_DIR with crops, "
        "landmarks.csv, failures.csv and summary.json. Resumable; every input file is accounted for.",
    )
    parser.add_argument("in_dir", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("out_dir", type=Path, help="output folder (created; reused when resuming)")
    parser.add_argument("--detector", choices=("mtcnn", "hog", "mmod"), default="mtcnn")
    parser.add_argument("--template", default="arcface112", help=TEMPLATE_CHOICES)
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument(
        "--multi-face",
        choices=("skip", "largest"),
        default="skip",
        help="several faces: record as a failure (skip) or align the largest (default skip)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="detection score threshold (default: mtcnn 0.9 probability, hog 0.5, mmod 0.0)",
    )
    parser.add_argument(
        "--upsample", type=int, default=None, help="dlib upsampling steps (default hog 1, mmod 0)"
    )
    parser.add_argument(
        "--dlib-landmarks",
        choices=("68", "5"),
        default="68",
        help="dlib detectors: landmark model for the 5 points (5 = estimated mouth corners)",
    )
    parser.add_argument("--format", dest="image_format", choices=("png", "jpg"), default="png")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument(
        "--border",
        choices=("constant", "reflect", "replicate"),
        default=None,
        help="border fill (default: template's; black for arcface/dlib, reflect for ffhq)",
    )
    parser.add_argument("--no-antialias", dest="antialias", action="store_false", help="no box pre-shrink")
    parser.add_argument("--device", default="cpu", help="torch device for MTCNN (default cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default: torch's own with 1 worker, else CPUs // workers)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0, or 2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from src.face.alignment import get_template  # after parsing: ``--help`` needs no torch

    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if not 1 <= args.jpeg_quality <= 100:
        parser.error(f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.upsample is not None and args.upsample < 0:
        parser.error(f"--upsample must be >= 0, got {args.upsample}")
    try:
        template = get_template(args.template).name
    except ValueError as error:
        parser.error(str(error))
    config = AlignConfig(
        in_dir=args.in_dir,
        out_dir=args.out_dir,
        detector=args.detector,
        template=template,
        multi_face=args.multi_face,
        min_score=args.min_score,
        upsample=args.upsample,
        dlib_landmarks=args.dlib_landmarks,
        image_format=args.image_format,
        jpeg_quality=args.jpeg_quality,
        border=args.border,
        antialias=args.antialias,
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        progress=args.progress,
    )
    try:
        run_alignment(config)
    except (UsageError, WorkerStartError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
