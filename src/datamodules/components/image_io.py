"""Reading image files, with errors that name the file.

A corrupt or unreadable image is an error unless the run sets ``data.skip_corrupt=true``; then it is
skipped and recorded with :func:`src.utils.skipped_files.record_skipped` (re-exported here for the datasets).
Nothing is dropped silently.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from src.utils.skipped_files import SKIPPED_FILE, read_skipped, record_skipped, skipped_log_path

__all__ = [
    "SKIPPED_FILE",
    "CorruptImageError",
    "read_image_rgb",
    "read_skipped",
    "record_skipped",
    "skipped_log_path",
]


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
