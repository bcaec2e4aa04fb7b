"""Face-crop geometry shared by the offline preprocessing and the online crops: boxes, regions, coordinate
maps.

Conventions (as in ``src.face``): points are ``(x, y)`` in pixel-index units (pixel ``(c, r)`` has its centre
at ``(c, r)``); boxes are ``(x0, y0, x1, y1)`` with exclusive ``x1, y1`` (width ``x1 - x0``, as
``FaceDetection.box``), i.e. their edges lie at ``x0 - 0.5`` and ``x1 - 0.5`` in point coordinates. A crop is
described by the ``2×3`` matrix mapping frame points to crop points (``src.face.alignment`` convention).

- ``sbi_coarse_box``: SBI's coarse training crop around a landmark box of size ``w × h``: ``w/2`` added left
  and right, ``h`` above, ``2h/5`` below (Shiohara & Yamasaki, CVPR 2022, public code).
- ``dlib_box_from_mtcnn``: the square box dlib's shape predictors expect (they were trained on dlib HOG
  detector boxes, which sit lower and are squarer than MTCNN's). Fitted on faces both detectors find (the
  astronaut and synthetic faces): centre shifted down by 6 % of the MTCNN box height, side ``(1.067 w + 0.843
  h) / 2``; on the astronaut the 68 points then differ from those predicted from dlib's own box by 0.24 px on
  average (1.0 px from the raw MTCNN box).
"""

from __future__ import annotations

import math

import numpy as np

SBI_MARGINS = (0.5, 1.0, 0.5, 0.4)  # left, top, right, bottom, in units of the landmark box's width / height


def landmark_box(points: np.ndarray) -> np.ndarray:
    """``(x0, y0, x1, y1)`` of the extreme points (min and max; the convention of SBI's landmark crop)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.concatenate([points.min(0), points.max(0)])


def sbi_coarse_box(box: np.ndarray) -> np.ndarray:
    """SBI's coarse crop around a landmark box (not clipped): ``w/2`` left and right, ``h`` above, ``2h/5``
    below."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    left, top, right, bottom = SBI_MARGINS
    return np.array([x0 - left * w, y0 - top * h, x1 + right * w, y1 + bottom * h])


def expand_box(box: np.ndarray, slack: float) -> np.ndarray:
    """``box`` grown by ``slack`` times its width on the left and right and its height above and below."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = slack * (x1 - x0), slack * (y1 - y0)
    return np.array([x0 - dx, y0 - dy, x1 + dx, y1 + dy])


def pixel_region(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixels ``[x0, x1) × [y0, y1)`` covering ``box``, clipped to a ``width × height`` frame (≥ 1
    px)."""
    x0 = min(max(math.floor(float(box[0])), 0), width - 1)
    y0 = min(max(math.floor(float(box[1])), 0), height - 1)
    x1 = max(min(math.ceil(float(box[2])), width), x0 + 1)
    y1 = max(min(math.ceil(float(box[3])), height), y0 + 1)
    return x0, y0, x1, y1


def crop_matrix(x0: int, y0: int, scale_x: float = 1.0, scale_y: float = 1.0) -> np.ndarray:
    """Frame → crop point map of cutting at ``(x0, y0)`` then resizing by ``scale_x, scale_y`` (pixel
    centres)."""
    return np.array(
        [
            [scale_x, 0.0, (0.5 - x0) * scale_x - 0.5],
            [0.0, scale_y, (0.5 - y0) * scale_y - 0.5],
        ]
    )


def transform_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The axis-aligned box (exclusive ``x1, y1``) enclosing ``box`` mapped by a ``2×3`` point matrix.

    The box's edges (at ``x0 - 0.5`` … ``x1 - 0.5``) are mapped, so a pure crop shifts it and a resize by
    ``s`` scales its width by ``s``; a rotated crop gives the enclosing box of the rotated rectangle.
    """
    x0, y0, x1, y1 = (float(v) - 0.5 for v in box)
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
    matrix = np.asarray(matrix, dtype=np.float64)
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([mapped.min(0), mapped.max(0)]) + 0.5


def dlib_box_from_mtcnn(box: np.ndarray) -> np.ndarray:
    """The dlib-style square box for an MTCNN box (see the module docstring)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.06 * h
    half = (1.067 * w + 0.843 * h) / 4
    return np.array([cx - half, cy - half, cx + half, cy + half])
