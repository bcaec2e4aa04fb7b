"""Face-region masks drawn from 68- or 81-point landmarks, and the landmark index maps they need.

Landmarks are ``(N, 2)`` ``(x, y)`` arrays in pixel-index units (see :mod:`src.face.landmarks`) with the iBUG
300-W 68-point indexing: jaw 0–16, brows 17–21 / 22–26 (image-left / image-right), nose ridge 27–30, nose base
31–35, eyes 36–41 / 42–47, outer lips 48–59, inner lips 60–67. The 81-point variant (dlib's community
``shape_predictor_81_face_landmarks``) appends 13 forehead points, 68–80, in an order that does not follow the
hairline; :func:`reorder_forehead` rewrites them as a left-to-right contour, as the original SBI code
(mapooon/SelfBlendedImages) does before it draws any mask.

The four mask types are those of Face X-ray's ``DeepFakeMask`` as SBI samples them:

* ``dfl_full``: union of three hulls: jaw + mouth, nose ridge, brows + eyes;
* ``components``: union of eight part hulls (both jaw halves, both cheeks, the brow bridge, both eye regions,
  the nose);
* ``extended``: ``components`` after pushing the brow points up the forehead (:func:`extend_brows`);
* ``facehull``: convex hull of all given points (with 81 points it includes the forehead).

Only the first 68 points enter the first three types. Every mask function returns a float32 ``(H, W)`` array
in ``{0, 1}``. :func:`mean_face_landmarks68` / :func:`mean_face_landmarks81` give a plausible frontal
landmark set inside a box, for synthetic test faces.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

HULL_TYPES: tuple[str, ...] = ("dfl_full", "extended", "components", "facehull")

#: ``new[68 + i] = old[FOREHEAD_ORDER[i]]`` turns dlib's 81-point forehead block into a left-to-right contour.
FOREHEAD_ORDER: tuple[int, ...] = (77, 75, 76, 68, 69, 70, 71, 80, 72, 73, 79, 74, 78)

SUPPORTED_POINTS: tuple[int, ...] = (68, 81)


def _check_points(landmarks: np.ndarray, allowed: tuple[int, ...] = SUPPORTED_POINTS) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] not in allowed:
        shapes = " or ".join(f"({n}, 2)" for n in allowed)
        raise ValueError(f"landmarks must have shape {shapes}, got {points.shape}")
    return points


def reorder_forehead(landmarks: np.ndarray) -> np.ndarray:
    """Copy of 81-point ``landmarks`` with points 68–80 rewritten in :data:`FOREHEAD_ORDER` (a contour)."""
    points = _check_points(landmarks, (81,)).copy()
    points[68:] = points[list(FOREHEAD_ORDER)]
    return points


def _reversed(start: int, stop: int) -> list[int]:
    return list(range(stop - 1, start - 1, -1))


def flip_permutation(num_points: int) -> np.ndarray:
    """Index map ``perm`` with ``flipped[i] = mirrored(landmarks[perm[i]])`` for a horizontal flip.

    Jaw, brows, nose base, lips and (81 points, after :func:`reorder_forehead`) the forehead contour are
    reversed; the nose ridge stays; the eyes swap with each other so that corner 36 ↔ 45, 39 ↔ 42 and the
    lids follow. The map is an involution.
    """
    if num_points not in SUPPORTED_POINTS:
        raise ValueError(f"flip_permutation: num_points must be 68 or 81, got {num_points}")
    perm = (
        _reversed(0, 17)  # jaw
        + _reversed(17, 27)  # both brows, as one block
        + list(range(27, 31))  # nose ridge
        + _reversed(31, 36)  # nose base
        + _reversed(42, 46)  # image-left eye ← image-right eye (upper lid and corners)
        + _reversed(46, 48)  # lower lid
        + _reversed(36, 40)  # image-right eye ← image-left eye
        + _reversed(40, 42)
        + _reversed(48, 55)  # upper outer lip with the corners
        + _reversed(55, 60)  # lower outer lip
        + _reversed(60, 65)  # upper inner lip with the corners
        + _reversed(65, 68)  # lower inner lip
    )
    if num_points == 81:
        perm += _reversed(68, 81)  # forehead contour (after reorder_forehead)
    return np.asarray(perm, dtype=np.int64)


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks of the horizontally flipped image (``x → width − 1 − x``), re-indexed by
    :func:`flip_permutation` so that each index keeps its anatomical meaning."""
    points = _check_points(landmarks)
    flipped = points[flip_permutation(len(points))].copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return flipped


def extend_brows(landmarks: np.ndarray) -> np.ndarray:
    """Copy of the first 68 points with each brow point moved up by half its offset from the eye below.

    The "eye below" of the five brow points of a side is the outer eye corner's quarter point towards the
    jaw, then the eye's corner and upper lid points; this widens the ``components`` mask over the forehead.
    """
    points = _check_points(landmarks)[:68].copy()
    mid_left = (points[36] + points[0]) / 2
    mid_right = (points[16] + points[45]) / 2
    below_left = np.stack([(points[36] + mid_left) / 2, points[36], points[37], points[38], points[39]])
    below_right = np.stack([points[42], points[43], points[44], points[45], (points[45] + mid_right) / 2])
    points[17:22] += (points[17:22] - below_left) / 2
    points[22:27] += (points[22:27] - below_right) / 2
    return points


def _fill_hulls(parts: list[np.ndarray], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.float32)
    for part in parts:
        hull = cv2.convexHull(np.round(part).astype(np.int32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(mask, hull, 1.0)
    return mask


def _take(points: np.ndarray, *blocks: tuple[int, int] | int) -> np.ndarray:
    rows = [points[b : b + 1] if isinstance(b, int) else points[b[0] : b[1]] for b in blocks]
    return np.concatenate(rows, axis=0)


def dfl_full_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Union of the hulls of jaw + mouth, nose ridge + nose tip, and brows + eyes (anchored at the jaw ends,
    the ridge top and the nose tip)."""
    p = _check_points(landmarks)
    parts = [
        _take(p, (0, 17), (48, 68)),
        _take(p, (27, 31), 33),
        _take(p, (17, 27), 0, 27, 16, 33),
    ]
    return _fill_hulls(parts, height, width)


def _component_parts(p: np.ndarray) -> list[np.ndarray]:
    return [
        _take(p, (0, 9), 17),  # image-left jaw half
        _take(p, (8, 17), 26),  # image-right jaw half
        _take(p, (17, 20), 8),  # image-left cheek
        _take(p, (24, 27), 8),  # image-right cheek
        _take(p, (19, 25), 8),  # between the brows down to the chin
        _take(p, (17, 22), 27, (31, 36), 8),  # image-left eye region
        _take(p, (22, 27), 27, (31, 36), 8),  # image-right eye region
        _take(p, (27, 36)),  # nose
    ]


def components_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Union of eight part hulls (jaw halves, cheeks, brow bridge, eye regions, nose) of the 68 points."""
    return _fill_hulls(_component_parts(_check_points(landmarks)), height, width)


def extended_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`components_mask` of the landmarks after :func:`extend_brows` (reaches up the forehead)."""
    return _fill_hulls(_component_parts(extend_brows(landmarks)), height, width)


def facehull_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Convex hull of all points (68, or 81 with the forehead; any ``(N, 2)`` set with N >= 3 works)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise ValueError(f"landmarks must have shape (N, 2) with N >= 3, got {points.shape}")
    return _fill_hulls([points], height, width)


HULL_MASKS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "dfl_full": dfl_full_mask,
    "extended": extended_mask,
    "components": components_mask,
    "facehull": facehull_mask,
}


def hull_mask(hull_type: str, landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``hull_type`` mask (one of :data:`HULL_TYPES`) as float32 ``(height, width)`` in ``{0, 1}``."""
    if hull_type not in HULL_MASKS:
        raise ValueError(f"unknown hull type {hull_type!r}; known: {', '.join(HULL_TYPES)}")
    return HULL_MASKS[hull_type](landmarks, height, width)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` (float64) bounding box of the points."""
    points = np.asarray(landmarks, dtype=np.float64)
    return np.array([*points.min(axis=0), *points.max(axis=0)], dtype=np.float64)


def hull_area(landmarks: np.ndarray) -> float:
    """Area in px² of the convex hull of the points (0 for collinear or coincident points)."""
    points = np.asarray(landmarks, dtype=np.float32).reshape(-1, 1, 2)
    return float(cv2.contourArea(cv2.convexHull(points)))


# A symmetric frontal 68-point shape in a unit face box (x right, y down; brows near the top edge, chin at
# the bottom edge), built by hand from simple curves for synthetic faces; not a statistical mean shape.
def _unit_face68() -> np.ndarray:
    t = np.linspace(0.0, np.pi, 17)
    jaw = np.stack([0.5 - 0.5 * np.cos(t), 0.2 + 0.8 * np.sin(t)], axis=1)
    s = np.linspace(0.0, 1.0, 5)
    brow_left = np.stack([0.08 + 0.34 * s, 0.12 - 0.07 * np.sin(np.pi * (0.3 + 0.6 * s))], axis=1)
    brow_right = brow_left[::-1] * [-1, 1] + [1, 0]
    ridge = np.stack([np.full(4, 0.5), [0.24, 0.33, 0.42, 0.52]], axis=1)
    nose_base = np.array([[0.40, 0.60], [0.45, 0.62], [0.50, 0.63], [0.55, 0.62], [0.60, 0.60]])
    eye_left = np.array([[0.19, 0.27], [0.25, 0.24], [0.31, 0.24], [0.37, 0.27], [0.31, 0.30], [0.25, 0.30]])
    eye_right = eye_left[[3, 2, 1, 0, 5, 4]] * [-1, 1] + [1, 0]
    outer_lips = np.array(
        [
            [0.34, 0.78],
            [0.40, 0.74],
            [0.46, 0.72],
            [0.50, 0.73],
            [0.54, 0.72],
            [0.60, 0.74],
            [0.66, 0.78],
            [0.60, 0.83],
            [0.55, 0.85],
            [0.50, 0.86],
            [0.45, 0.85],
            [0.40, 0.83],
        ]
    )
    inner_lips = np.array(
        [
            [0.37, 0.78],
            [0.44, 0.765],
            [0.50, 0.77],
            [0.56, 0.765],
            [0.63, 0.78],
            [0.56, 0.79],
            [0.50, 0.80],
            [0.44, 0.79],
        ]
    )
    return np.concatenate(
        [jaw, brow_left, brow_right, ridge, nose_base, eye_left, eye_right, outer_lips, inner_lips]
    )


def _scale_to_box(unit: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {[x1, y1, x2, y2]}")
    return unit * [x2 - x1, y2 - y1] + [x1, y1]


def mean_face_landmarks68(box: np.ndarray) -> np.ndarray:
    """A plausible, left-right symmetric frontal 68-point set (float64 ``(68, 2)``) filling ``box``.

    ``box`` is ``[x1, y1, x2, y2]``: the jaw ends touch the sides at 20 % of the height, the brows are near
    the top and the chin touches the bottom. Mirroring it with :func:`flip_landmarks` about the box centre
    gives the same set.
    """
    return _scale_to_box(_unit_face68(), box)


def mean_face_landmarks81(box: np.ndarray) -> np.ndarray:
    """:func:`mean_face_landmarks68` plus 13 forehead points (an arc above the brows reaching 30 % of the
    box height above it), in dlib's raw 81-point order, so :func:`reorder_forehead` makes them a contour."""
    phi = np.linspace(0.0, np.pi, 13)
    contour = np.stack([0.5 - 0.49 * np.cos(phi), 0.15 - 0.45 * np.sin(phi)], axis=1)
    raw = np.empty_like(contour)
    raw[np.asarray(FOREHEAD_ORDER) - 68] = contour
    return _scale_to_box(np.concatenate([_unit_face68(), raw]), box)
