"""Reading image files, with errors that name the file, and a record of files skipped on purpose.

A corrupt or unreadable image is an error unless the run sets ``data.skip_corrupt=true``; then it is
skipped and appended to ``<run_dir>/skipped_files.csv`` (from any dataloader worker), and the run record's
``data.json`` lists it at the end of the run. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

from src.utils.run_record import ENV_RUN_DIR

SKIPPED_FILE = "skipped_files.csv"


class CorruptImageError(OSError):
    """An image file that exists but cannot be decoded (or cannot be read)."""


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to ``[H, W, 3]`` uint8 RGB; raises naming the file when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise CorruptImageError(f"cannot decode image file (corrupt or not an image): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def skipped_log_path(run_dir: str | Path | None = None) -> Path | None:
    """Where skipped files are recorded: the current run's ``skipped_files.csv`` (None outside a run)."""
    run_dir = run_dir or os.environ.get(ENV_RUN_DIR)
    return Path(run_dir) / SKIPPED_FILE if run_dir else None


def record_skipped(path: str | Path, reason: str, log_path: Path | None = None) -> None:
    """Append one skipped file to the run's record (safe from several worker processes: one short write)."""
    log_path = log_path or skipped_log_path()
    if log_path is None:
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    new = not log_path.exists()
    with log_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["path", "reason"])
        writer.writerow([str(path), reason])


def read_skipped(log_path: Path) -> list[dict[str, str]]:
    """The distinct skipped files recorded so far, in first-seen order."""
    if not log_path.is_file():
        return []
    seen: dict[str, dict[str, str]] = {}
    with log_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            seen.setdefault(row["path"], row)
    return list(seen.values())
