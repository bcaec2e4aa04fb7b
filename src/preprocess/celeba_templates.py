"""PRO-Face's CelebA alignment: every in-the-wild image warped to its best of five pose templates.

Usage: ``python -m src.preprocess.celeba_templates CELEBA_ROOT OUT_DIR [--size 224] [--workers N]
[--jpeg-quality 95] [--limit N] [--source wild|aligned]`` (``--help`` lists all options).

Reproduces lixionga/ProFace ``dataset/align_crop_celeba.py`` (docs/papers/proface.md, "Faithful to the
original code"; docs/datasets.md): no face detector; CelebA's own 5 in-the-wild landmarks
(``list_landmarks_celeba.txt``) are fitted by a least-squares similarity to each of insightface's five pose
templates (``src.face.pose_templates``: left-profile, left, frontal, right, right-profile; 112-px points
scaled to ``--size``), the template with the smallest error (sum of point distances) wins, and the image is
warped with its matrix (``cv2.warpAffine``, bilinear, black border) and saved as JPEG (quality 95). Unlike
the authors' script, which stops at image 182,637 so that ``test_frontal/`` is never made, every listed image
is aligned.

Inputs (the CelebA layouts of docs/datasets.md; the lists may sit at the root or under ``Anno/``, ``Eval/`` or
``celeba/``, as TXT or Kaggle CSV): ``CELEBA_ROOT/Img/img_celeba/`` (official tree) or
``CELEBA_ROOT/img_celeba/`` (flat; also ``celeba/img_celeba/`` and ``img_celeba/img_celeba/``),
``list_landmarks_celeba.txt`` and ``list_eval_partition.txt``. The images handled are those listed in the
landmark or the partition file (``--limit N``: the first N of them by file number).

Outputs in ``OUT_DIR``:

- ``images/<stem>.jpg`` — every aligned image (``--size``², JPEG ``--jpeg-quality``);
- ``train_frontal/``, ``valid_frontal/``, ``test_frontal/`` — the frontal winners of partition 0 / 1 / 2
  (hard links to the files in ``images/``, copies where the file system has no hard links);
- ``poses.csv`` — one row per aligned image: ``file``, ``partition`` (``train`` / ``valid`` / ``test``, or
  ``none`` when the partition file does not list it), ``pose`` (0..4) and ``pose_name``, the fit error of
  each template ``error_<pose>`` (output pixels), the image → output matrix ``m00 … m12``, the landmarks,
  ``output`` and the input's size and mtime;
- ``failures.csv`` — one row per listed image that gave no output: ``file``, ``partition``, ``reason``
  (``missing``: no image file; ``unreadable``: cannot be decoded; ``no_landmarks``: not in the landmark
  file; ``bad_landmarks``: the 5 points coincide; ``error``: anything unexpected, retried on resume),
  ``detail``, the landmarks and the input's size and mtime;
- ``summary.json`` — counts per pose, per partition (aligned, frontal, per pose) and per failure reason, the
  metadata files read and the settings; ``config.json`` — the settings the folder was made with.

Every handled image ends up in exactly one of the two CSVs, and the frontal folders hold exactly the frontal
rows of their partition (both checked at the end of every run). Runs are resumable: an image whose row is
present with the same input size, mtime and landmarks (and whose output exists) is skipped; a changed
partition only moves its frontal link. Settings that change the outputs (``--size``, ``--jpeg-quality``,
``--source``, ``--antialias``) must match ``config.json`` (use a new OUT_DIR otherwise). Exit status: 0
whatever the per-image outcomes, 2 for usage errors (a missing folder or list file, malformed lists, settings
that differ from ``config.json``).

``--source aligned`` classifies the official aligned ``img_align_celeba/`` images with
``list_landmarks_align_celeba.txt`` instead (for copies without the in-the-wild archive, e.g. Kaggle's). This
is an **approximation**: the pose choice is the same up to the rounding of the integer landmarks (the fit is
invariant to CelebA's own similarity alignment), but the crops are resampled twice, are blurrier (the aligned
faces are smaller than 224-px templates want: ~37 px between the eyes against ~65) and black where the
178×218 crop ends.

How PRO-Face experiments use the outputs (``experiments/proface/README.md``), with ``OUT_DIR`` inside the
CelebA root, e.g. ``python -m src.preprocess.celeba_templates $CELEBA $CELEBA/proface224 --workers 4``:

- training on the authors' alignment: ``datamodule.image_dir=proface224/images datamodule.crop_box=null``
  (``image_dir`` is relative to ``datamodule.root``; add ``datamodule.image_size=224`` for the rows that run
  at 224). The datamodule needs every image of the partition file, so ``failures.csv`` must be empty;
- face-swap targets (the ``faceshifter`` / ``simswap`` obfuscators): ``OUT_DIR/valid_frontal`` for training
  (``model.obfuscator.targets``) and ``OUT_DIR/test_frontal`` for evaluation (``eval_targets``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# Light helpers shared with the detect-and-align CLI (no torch import: ``--help`` stays instant).
from src.preprocess.align import (
    CONFIG_JSON,
    FAILURES_CSV,
    SUMMARY_JSON,
    UsageError,
    _Appender,
    _check_config,
    _fmt,
    _read_rows,
    _stat,
    _write_if_changed,
    _write_rows,
)

if TYPE_CHECKING:
    from src.datamodules.components.metadata import CelebATable

# = src.face.pose_templates.POSE_NAMES / FRONTAL (repeated so that ``--help`` needs no torch; tested equal)
POSE_NAMES = ("left_profile", "left", "frontal", "right", "right_profile")
FRONTAL = 2
PARTITIONS = {0: "train", 1: "valid", 2: "test"}
NO_PARTITION = "none"
FRONTAL_DIRS = {name: f"{name}_frontal" for name in PARTITIONS.values()}
IMAGES_DIR = "images"
POSES_CSV = "poses.csv"
FAILURE_REASONS = ("missing", "unreadable", "no_landmarks", "bad_landmarks", "error")
RETRY_REASONS = frozenset({"error"})
# In-the-wild folders, as src.datamodules.celeba.IMAGE_DIRS for the aligned ones (nested first).
WILD_IMAGE_DIRS = ("img_celeba/img_celeba", "img_celeba", "Img/img_celeba", "celeba/img_celeba")
SOURCES = {  # --source: (description, landmark list stem)
    "wild": ("in-the-wild", "list_landmarks_celeba"),
    "aligned": ("aligned", "list_landmarks_align_celeba"),
}
POINT_COLUMNS = [
    f"{name}_{axis}"
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    for axis in ("x", "y")
]
ERROR_COLUMNS = [f"error_{name}" for name in POSE_NAMES]
MATRIX_COLUMNS = [f"m{r}{c}" for r in range(2) for c in range(3)]
POSE_COLUMNS = [
    "file",
    "partition",
    "pose",
    "pose_name",
    *ERROR_COLUMNS,
    *MATRIX_COLUMNS,
    *POINT_COLUMNS,
    "output",
    "source_size",
    "source_mtime_ns",
]
FAILURE_COLUMNS = [
    "file",
    "partition",
    "reason",
    "detail",
    *POINT_COLUMNS,
    "source_size",
    "source_mtime_ns",
]


@dataclass(frozen=True)
class TemplateConfig:
    """One run's settings; ``output_settings`` are those that change the outputs (kept in config.json)."""

    root: Path
    out_dir: Path
    source: str = "wild"
    size: int = 224
    jpeg_quality: int = 95
    antialias: bool = False
    workers: int = 1
    limit: int | None = None
    progress: bool = True

    def output_settings(self) -> dict[str, Any]:
        """The settings recorded in ``config.json`` and required to match when resuming."""
        return {
            "tool": "celeba_templates",
            "templates": "insightface 5-pose (src.face.pose_templates)",
            "source": self.source,
            "size": self.size,
            "jpeg_quality": self.jpeg_quality,
            "antialias": self.antialias,
        }


@dataclass
class CelebASource:
    """The image folder and the two lists of one CelebA copy."""

    image_dir: Path
    landmarks: CelebATable
    partition: CelebATable


# ------------------------------------------------------------------------------------------------- layout


def find_source(root: Path, source: str) -> CelebASource:
    """Image folder, landmark and partition lists of ``source`` under ``root``; UsageError naming the paths.

    List files are looked for as the CelebA datamodule does (root, ``Anno/``, ``Eval/``, ``celeba/``; TXT or
    Kaggle CSV) and parsed with its parser.
    """
    from src.datamodules.celeba import IMAGE_DIRS, META_DIRS
    from src.datamodules.components.metadata import (
        MetadataFormatError,
        check_values,
        find_path,
        parse_celeba_list,
    )
    from src.datamodules.identity_folders import DatasetLayoutError

    what, landmark_stem = SOURCES[source]
    folders = {"wild": WILD_IMAGE_DIRS, "aligned": IMAGE_DIRS}
    if not root.is_dir():
        raise UsageError(f"CelebA root not found: {root}")
    try:
        image_dir = find_path(root, folders[source], f"CelebA {what} image folder", directory=True)
    except DatasetLayoutError as error:
        hint = (
            "extract img_celeba.7z there (official tree: Img/img_celeba/)"
            if source == "wild"
            else "extract img_align_celeba.zip there"
        )
        other = "aligned" if source == "wild" else "wild"
        found = [str(root / d) for d in folders[other] if (root / d).is_dir()]
        if found:
            hint += f"; found {found[0]}: use --source {other}" + (
                " (an approximation, see --help)" if other == "aligned" else ""
            )
        raise UsageError(f"{error}; {hint}") from error

    def find_list(stem: str, label: str) -> Path:
        candidates = [f"{folder}{stem}{ext}" for ext in (".txt", ".csv") for folder in META_DIRS]
        return find_path(root, candidates, label)

    try:
        landmarks = parse_celeba_list(find_list(landmark_stem, f"CelebA {what} landmark file"), 10)
        partition = parse_celeba_list(find_list("list_eval_partition", "CelebA partition file"), 1)
        check_values(partition, set(PARTITIONS), "partition")
    except (DatasetLayoutError, MetadataFormatError) as error:
        raise UsageError(str(error)) from error
    return CelebASource(image_dir, landmarks, partition)


def _check_folders(config: TemplateConfig, image_dir: Path) -> None:
    """OUT_DIR may sit inside the CelebA root, but not inside the image folder nor around the root."""
    root, out_dir, images = config.root.resolve(), config.out_dir.resolve(), image_dir.resolve()
    if out_dir == root or out_dir in root.parents:
        raise UsageError(f"OUT_DIR {config.out_dir} must not be or contain the CelebA root {config.root}")
    if out_dir == images or images in out_dir.parents:
        raise UsageError(f"OUT_DIR {config.out_dir} must not be inside the image folder {image_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR exists and is not a folder: {config.out_dir}")


# ------------------------------------------------------------------------------------------------ workers


@dataclass(frozen=True)
class _Task:
    """One image to warp: input path, output path and the winning matrix."""

    file: str
    path: str
    target: str
    matrix: tuple[float, ...]
    size: int
    jpeg_quality: int
    antialias: bool


def _write_jpeg(rgb: np.ndarray, target: Path, quality: int) -> None:
    """Encode and write atomically (temp file + rename), so a present output is always complete."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"cannot encode {target}")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.write_bytes(data.tobytes())
    os.replace(temp, target)


def align_one(task: _Task) -> tuple[str, str, str]:
    """Read, warp and write one image: ``(file, "", "")`` on success, else ``(file, reason, detail)``.

    Never raises: an unexpected exception becomes reason ``error`` (retried by the next run).
    """
    try:
        from src.datamodules.components.image_io import read_image_rgb
        from src.face.alignment import warp_image

        try:
            image = read_image_rgb(task.path)
        except FileNotFoundError:
            return task.file, "missing", f"image file not found: {task.path}"
        except (OSError, ValueError) as error:
            detail = "cannot decode image (corrupt or not an image)"
            if not isinstance(error, ValueError) and getattr(error, "strerror", None):
                detail = f"{type(error).__name__}: {error.strerror}"
            return task.file, "unreadable", detail
        matrix = np.asarray(task.matrix, dtype=np.float64).reshape(2, 3)
        crop = warp_image(image, matrix, task.size, "constant", task.antialias)
        _write_jpeg(crop, Path(task.target), task.jpeg_quality)
        return task.file, "", ""
    except Exception as error:  # one bad file must not stop the run; recorded and retried on resume
        return task.file, "error", f"{type(error).__name__}: {error}".replace("\n", " ")[:300]


def _init_worker() -> None:
    """Pool initializer: one thread per worker process (the pool provides the parallelism)."""
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a project dependency
        pass


def _results(tasks: list[_Task], workers: int) -> Iterator[tuple[str, str, str]]:
    """Warp here (one worker) or in a spawn Pool, yielding results as they finish."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield align_one(task)
        return
    import multiprocessing

    workers = min(workers, len(tasks))
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap_unordered(align_one, tasks, chunksize=chunk)


# ---------------------------------------------------------------------------------------------- helpers


def _numeric_key(name: str) -> tuple[int, str]:
    """Sort by file number (``9.jpg`` before ``10.jpg``), then by name."""
    stem = Path(name).stem
    return (int(stem) if stem.isdigit() else -1, name)


def _point_text(points: np.ndarray | None) -> dict[str, str]:
    """The 10 landmark columns (integers as written in CelebA's lists; empty when there are none)."""
    if points is None:
        return dict.fromkeys(POINT_COLUMNS, "")
    values = np.asarray(points).ravel()
    text = [str(int(v)) if float(v).is_integer() else f"{float(v):.3f}" for v in values]
    return dict(zip(POINT_COLUMNS, text, strict=True))


def _input_key(row: dict[str, str]) -> tuple[str, ...]:
    """What a recorded outcome depends on: the input's size, mtime and landmarks."""
    return (row["source_size"], row["source_mtime_ns"], *(row[c] for c in POINT_COLUMNS))


def _output_path(out_dir: Path, row: dict[str, str]) -> Path | None:
    """A pose row's output file, only when it is a plain file name under ``images/`` (ignores odd rows)."""
    rel = row.get("output", "")
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] != IMAGES_DIR or parts[1] in ("", ".", ".."):
        return None
    return out_dir / rel


def _same_file(source: Path, target: Path) -> bool:
    """``target`` is ``source`` (a hard link) or a copy made from it (same size and mtime, copy2 keeps it)."""
    try:
        if os.path.samefile(source, target):
            return True
        a, b = source.stat(), target.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _place(source: Path, target: Path) -> str:
    """Hard-link (or, failing that, copy) ``source`` to ``target`` atomically; returns how."""
    temp = target.with_name(f".{target.name}.tmp")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
        how = "hardlink"
    except OSError:
        shutil.copy2(source, temp)
        how = "copy"
    os.replace(temp, target)
    return how


def _frontal_wanted(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per frontal folder: file name → output rel of the frontal rows of its partition."""
    wanted: dict[str, dict[str, str]] = {folder: {} for folder in FRONTAL_DIRS.values()}
    for row in rows.values():
        if row["pose"] == str(FRONTAL) and row["partition"] in FRONTAL_DIRS:
            wanted[FRONTAL_DIRS[row["partition"]]][Path(row["output"]).name] = row["output"]
    return wanted


def _sync_frontal(out_dir: Path, rows: dict[str, dict[str, str]]) -> tuple[int, Counter]:
    """Make each frontal folder hold exactly its partition's frontal images; returns (changes, link kinds)."""
    changes, kinds = 0, Counter()
    for folder, wanted in _frontal_wanted(rows).items():
        path = out_dir / folder
        path.mkdir(exist_ok=True)
        with os.scandir(path) as entries:
            present = {entry.name for entry in entries if entry.is_file(follow_symlinks=False)}
        for name in sorted(present - set(wanted)):
            if name.lower().endswith(".jpg") or (name.startswith(".") and name.endswith(".tmp")):
                (path / name).unlink()
                changes += 1
        for name, rel in sorted(wanted.items()):
            source, target = out_dir / rel, path / name
            if name in present and _same_file(source, target):
                continue
            kinds[_place(source, target)] += 1
            changes += 1
    return changes, kinds


def _remove_temp_files(folder: Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` leftovers of a killed run."""
    if not folder.is_dir():
        return
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------- run


def run_templates(config: TemplateConfig) -> dict[str, Any]:
    """Align the listed CelebA images into ``config.out_dir``; returns the summary (also saved)."""
    from tqdm import tqdm

    from src.face.pose_templates import best_pose_templates

    started = time.perf_counter()
    celeba = find_source(config.root, config.source)
    _check_folders(config, celeba.image_dir)
    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_config(config)
    images_dir = out_dir / IMAGES_DIR
    images_dir.mkdir(exist_ok=True)
    _remove_temp_files(images_dir)

    # The images handled: those listed in either file (first --limit by file number).
    listed = sorted(set(celeba.landmarks.files) | set(celeba.partition.files), key=_numeric_key)
    selected = listed[: config.limit] if config.limit is not None else listed
    stems = Counter(Path(name).stem for name in listed)
    clashes = sorted(name for name in listed if stems[Path(name).stem] > 1)
    if clashes:
        raise UsageError(f"listed images share an output name images/<stem>.jpg: {clashes[:6]}")
    part_index, mark_index = celeba.partition.index, celeba.landmarks.index
    partition = {
        name: PARTITIONS[int(celeba.partition.values[part_index[name], 0])]
        if name in part_index
        else NO_PARTITION
        for name in listed
    }
    with_points = [name for name in selected if name in mark_index]
    points = celeba.landmarks.values[[mark_index[n] for n in with_points]].reshape(-1, 5, 2)
    poses, matrices, errors = best_pose_templates(points.astype(np.float64), config.size)
    spread = np.sqrt(((points - points.mean(1, keepdims=True)) ** 2).sum((1, 2)))
    fit = {name: i for i, name in enumerate(with_points)}
    stats = {name: _stat(celeba.image_dir / name) for name in selected}
    present = [name for name in selected if stats[name][0] >= 0]
    if selected and not present:
        example = celeba.image_dir / selected[0]
        raise UsageError(
            f"none of the {len(selected)} listed images is in {celeba.image_dir} (e.g. {example} is "
            "missing); is this the right image folder?"
        )

    def base_row(name: str) -> dict[str, str]:
        size, mtime = stats[name]
        marks = points[fit[name]] if name in fit else None
        return {
            "file": name,
            "partition": partition[name],
            **_point_text(marks),
            "source_size": str(size),
            "source_mtime_ns": str(mtime),
        }

    def output_rel(name: str) -> str:
        return f"{IMAGES_DIR}/{Path(name).stem}.jpg"

    poses_path, failures_path = out_dir / POSES_CSV, out_dir / FAILURES_CSV
    aligned, dirty_ok = _read_rows(poses_path, POSE_COLUMNS)
    failed, dirty_fail = _read_rows(failures_path, FAILURE_COLUMNS)

    def is_done(name: str) -> bool:
        row_ok, row_fail = aligned.get(name), failed.get(name)
        if (row_ok is None) == (row_fail is None):
            return False
        row = row_ok or row_fail
        if _input_key(row) != _input_key(base_row(name)):
            return False
        if row_fail is not None:
            return row_fail["reason"] not in RETRY_REASONS
        target = _output_path(out_dir, row_ok)
        return row_ok["output"] == output_rel(name) and target is not None and target.is_file()

    listed_set, selected_set = set(listed), set(selected)
    done = {name for name in selected if is_done(name)}
    todo = [name for name in selected if name not in done]
    # Rows redone now, and rows of images no longer listed; their outputs go too (images/ = poses.csv).
    stale = {
        n for n in set(aligned) | set(failed) if n not in listed_set or (n in selected_set and n not in done)
    }
    for name in stale:
        row = aligned.pop(name, None)
        failed.pop(name, None)
        target = None if row is None else _output_path(out_dir, row)
        if target is not None:
            target.unlink(missing_ok=True)
    changed = bool(stale) or dirty_ok or dirty_fail
    for rows in (aligned, failed):  # a changed partition file only relabels rows (and moves links below)
        for name, row in rows.items():
            if row["partition"] != partition[name]:
                row["partition"] = partition[name]
                changed = True
    if changed:
        _write_rows(poses_path, POSE_COLUMNS, aligned)
        _write_rows(failures_path, FAILURE_COLUMNS, failed)

    # Outcomes known without reading the image, then the warps.
    quick: list[tuple[str, str, str]] = []
    tasks: list[_Task] = []
    for name in todo:
        if name not in fit:
            quick.append((name, "no_landmarks", f"{celeba.landmarks.path} has no line for {name}"))
        elif stats[name][0] < 0:
            quick.append((name, "missing", f"image file not found: {celeba.image_dir / name}"))
        elif spread[fit[name]] < 1e-6:
            quick.append((name, "bad_landmarks", "the 5 landmarks coincide"))
        else:
            matrix = matrices[fit[name]]
            tasks.append(
                _Task(
                    name,
                    str(celeba.image_dir / name),
                    str(out_dir / output_rel(name)),
                    tuple(float(v) for v in matrix.ravel()),
                    config.size,
                    config.jpeg_quality,
                    config.antialias,
                )
            )

    def record(result: tuple[str, str, str]) -> None:
        name, reason, detail = result
        row = base_row(name)
        if reason:
            row = {**row, "reason": reason, "detail": detail}
            fail_out.write(row)
            failed[name] = row
            return
        i = fit[name]
        row = {
            **row,
            "pose": str(int(poses[i])),
            "pose_name": POSE_NAMES[int(poses[i])],
            **{column: _fmt(e, 4) for column, e in zip(ERROR_COLUMNS, errors[i], strict=True)},
            **{column: f"{m:.9g}" for column, m in zip(MATRIX_COLUMNS, matrices[i].ravel(), strict=True)},
            "output": output_rel(name),
        }
        ok_out.write(row)
        aligned[name] = row

    if todo:
        changed = True
        ok_out, fail_out = _Appender(poses_path, POSE_COLUMNS), _Appender(failures_path, FAILURE_COLUMNS)
        try:
            with tqdm(
                total=len(selected),
                initial=len(done),
                unit="img",
                desc="celeba templates",
                disable=not config.progress,
            ) as bar:
                for result in quick:
                    record(result)
                    bar.update(1)
                for result in _results(tasks, config.workers):
                    record(result)
                    bar.update(1)
        finally:
            ok_out.close()
            fail_out.close()
    if changed or not poses_path.is_file() or not failures_path.is_file():
        _write_rows(poses_path, POSE_COLUMNS, aligned)
        _write_rows(failures_path, FAILURE_COLUMNS, failed)
    link_changes, link_kinds = _sync_frontal(out_dir, aligned)

    _check_invariants(out_dir, selected, aligned, failed)
    summary = _summary(config, celeba, listed, selected, aligned, failed)
    _write_if_changed(out_dir / SUMMARY_JSON, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    reasons = Counter(row["reason"] for row in failed.values())
    reason_text = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items())) or "none"
    frontal = summary["counts"]["frontal"]
    print(
        f"celeba_templates: {len(selected)} listed images -> {len(aligned)} aligned, {len(failed)} failed "
        f"({reason_text}); frontal {', '.join(f'{k} {v}' for k, v in frontal.items())}; "
        f"this run processed {len(todo)}, skipped {len(done)} already done, {link_changes} frontal link "
        f"change(s) ({time.perf_counter() - started:.1f} s); outputs in {out_dir}"
    )
    run = {"processed": len(todo), "skipped": len(done), "frontal_changes": link_changes}
    return {**summary, "run": {**run, "frontal_link_kinds": dict(link_kinds)}}


def _check_invariants(
    out_dir: Path, selected: list[str], aligned: dict[str, dict[str, str]], failed: dict[str, dict[str, str]]
) -> None:
    """Every selected image in exactly one CSV, every pose row's output present, frontal folders exact."""
    missing = sorted(set(selected) - set(aligned) - set(failed))
    both = sorted(set(aligned) & set(failed))
    no_output = sorted(
        name
        for name, row in aligned.items()
        if (target := _output_path(out_dir, row)) is None or not target.is_file()
    )
    frontal_wrong = []
    for folder, wanted in _frontal_wanted(aligned).items():
        with os.scandir(out_dir / folder) as entries:
            present = {e.name for e in entries if e.name.lower().endswith(".jpg")}
        if present != set(wanted):
            frontal_wrong.append(folder)
    if missing or both or no_output or frontal_wrong:
        raise RuntimeError(
            f"output invariant violated: not accounted {missing[:5]}, in both CSVs {both[:5]}, output "
            f"missing {no_output[:5]}, frontal folders out of step {frontal_wrong}"
        )


def _summary(
    config: TemplateConfig,
    celeba: CelebASource,
    listed: list[str],
    selected: list[str],
    aligned: dict[str, dict[str, str]],
    failed: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """Counts per pose, partition and failure reason, the metadata read and the settings."""
    by_pose = Counter(row["pose_name"] for row in aligned.values())
    partitions = [*PARTITIONS.values(), NO_PARTITION]
    by_partition = {}
    for part in partitions:
        rows = [row for row in aligned.values() if row["partition"] == part]
        counts = Counter(row["pose_name"] for row in rows)
        by_partition[part] = {
            "aligned": len(rows),
            "failed": sum(1 for row in failed.values() if row["partition"] == part),
            "by_pose": {name: counts.get(name, 0) for name in POSE_NAMES},
        }
    reasons = Counter(row["reason"] for row in failed.values())
    frontal = {folder: len(wanted) for folder, wanted in _frontal_wanted(aligned).items()}
    accounted = set(aligned) | set(failed)
    return {
        "counts": {
            "listed": len(listed),
            "selected": len(selected),
            "aligned": len(aligned),
            "failed": len(failed),
            "complete": all(name in accounted for name in listed),
            "failures_by_reason": {reason: reasons.get(reason, 0) for reason in FAILURE_REASONS},
            "by_pose": {name: by_pose.get(name, 0) for name in POSE_NAMES},
            "by_partition": by_partition,
            "frontal": frontal,
            "not_in_landmark_file": sum(1 for n in listed if n not in celeba.landmarks.index),
            "not_in_partition_file": sum(1 for n in listed if n not in celeba.partition.index),
        },
        "settings": {**config.output_settings(), "limit": config.limit},
        "inputs": {
            "root": str(config.root),
            "image_dir": str(celeba.image_dir),
            "landmarks_file": celeba.landmarks.describe(),
            "partition_file": celeba.partition.describe(),
        },
        "outputs": {
            "images": f"{IMAGES_DIR}/",
            "frontal": {part: f"{folder}/" for part, folder in FRONTAL_DIRS.items()},
            "poses": POSES_CSV,
            "failures": FAILURES_CSV,
            "config": CONFIG_JSON,
        },
    }


# ------------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.preprocess.celeba_templates",
        description="PRO-Face's CelebA alignment: warp every in-the-wild image to the best of insightface's "
        "five pose templates (224 px JPEG q95) and collect the frontal ones per partition "
        "(train_frontal/, valid_frontal/, test_frontal/: the face-swap targets). Writes images/, poses.csv, "
        "failures.csv and summary.json; resumable; every listed image is accounted for.",
    )
    parser.add_argument(
        "root", type=Path, help="CelebA root (Img/img_celeba + Anno/ + Eval/, or img_celeba/ + lists flat)"
    )
    parser.add_argument("out_dir", type=Path, help="output folder (created; reused when resuming)")
    parser.add_argument("--size", type=int, default=224, help="output side in pixels (default 224)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality 1..100 (default 95)")
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N listed images (by file number)"
    )
    parser.add_argument(
        "--source",
        choices=tuple(SOURCES),
        default="wild",
        help="wild: img_celeba + list_landmarks_celeba (the authors' input, default); aligned: "
        "img_align_celeba + list_landmarks_align_celeba (an approximation: blurrier crops, black beyond the "
        "official crop; same pose choice up to landmark rounding)",
    )
    parser.add_argument(
        "--antialias",
        action="store_true",
        help="box-shrink large images before warping (default off: a plain cv2.warpAffine, as the authors)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0, or 2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if not 1 <= args.jpeg_quality <= 100:
        parser.error(f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}")
    if not 16 <= args.size <= 4096:
        parser.error(f"--size must be in 16..4096, got {args.size}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    config = TemplateConfig(
        root=args.root,
        out_dir=args.out_dir,
        source=args.source,
        size=args.size,
        jpeg_quality=args.jpeg_quality,
        antialias=args.antialias,
        workers=args.workers,
        limit=args.limit,
        progress=args.progress,
    )
    try:
        run_templates(config)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
