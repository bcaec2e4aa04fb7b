"""insightface's five pose templates (SimSwap / PRO-Face "multi-template" alignment) and the best-fit choice.

insightface's ``face_align.estimate_norm`` in its multi-template mode (used by SimSwap and by PRO-Face's
``dataset/align_crop_celeba.py``) fits a least-squares similarity from the 5 landmarks (``LANDMARK_NAMES``
order: image-left eye, image-right eye, nose, image-left / image-right mouth corner) to each of five 112-px
pose templates scaled by ``size / 112``, and keeps the template whose fit has the smallest error

    error(T) = Σ_points ‖M_T · landmark − T‖₂   (output pixels; a sum of distances, not of squares).

Ties go to the lowest index (insightface replaces the best only on a strictly smaller error). The image is
then warped with the winner's ``M`` (``cv2.warpAffine``, bilinear, black border). Frontal winners
(``FRONTAL``) are the face-swap targets of SimSwap and PRO-Face.

The template names follow insightface's comments: in ``left`` / ``left_profile`` the nose lies towards the
image's left (the subject looks to its own right); ``right`` / ``right_profile`` mirror them.

Matrices come from ``src.face.alignment.estimate_similarity`` (closed-form 2-D Umeyama, no reflection: the
same transform as ``skimage.transform.SimilarityTransform.estimate``), in float64. insightface stores the
templates as float32; the float64 constants here can differ from it only on near-ties.
"""

from __future__ import annotations

import numpy as np
import torch

from src.face.alignment import estimate_similarity, transform_points

POSE_NAMES: tuple[str, ...] = ("left_profile", "left", "frontal", "right", "right_profile")
FRONTAL = 2
TEMPLATE_SIZE = 112

# [5 poses, 5 points, (x, y)] at 112×112, in POSE_NAMES order (insightface src1 … src5).
POSE_TEMPLATES_112 = np.array(
    [
        [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
        [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
        [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
        [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
    ],
    dtype=np.float64,
)
POSE_TEMPLATES_112.setflags(write=False)


def pose_templates(size: int = 224) -> np.ndarray:
    """The five templates ``[5, 5, 2]`` for a ``size``² output (the 112-px points × ``size / 112``)."""
    if size <= 0:
        raise ValueError(f"template size must be positive, got {size}")
    return POSE_TEMPLATES_112 * (float(size) / TEMPLATE_SIZE)


def best_pose_templates(landmarks, size: int = 224) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best pose template for a batch of faces.

    ``landmarks``: ``[B, 5, 2]`` (numpy or torch; ``[5, 2]`` is a batch of one) in image pixels. Returns
    ``(index [B] int64, matrices [B, 2, 3] float64, errors [B, 5] float64)``: the winning template per face,
    its image → ``size``² output matrix, and the fit error of every template (output pixels).
    """
    points = torch.as_tensor(np.asarray(landmarks, dtype=np.float64))
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.shape[1:] != (5, 2):
        raise ValueError(f"expected [B, 5, 2] landmarks, got {tuple(points.shape)}")
    count = points.shape[0]
    targets = torch.from_numpy(pose_templates(size))  # [5, 5, 2]
    if count == 0:
        return np.zeros(0, np.int64), np.zeros((0, 2, 3)), np.zeros((0, len(POSE_NAMES)))
    poses = len(POSE_NAMES)
    src = points.repeat_interleave(poses, dim=0)  # [B·5, 5, 2]: face b with template t at b·5 + t
    dst = targets.repeat(count, 1, 1)
    matrices = estimate_similarity(src, dst)  # [B·5, 2, 3]
    residual = transform_points(src, matrices) - dst
    errors = residual.norm(dim=-1).sum(-1).reshape(count, poses)
    index = torch.argmin(errors, dim=1)  # the first minimum: ties go to the lowest index
    best = matrices.reshape(count, poses, 2, 3)[torch.arange(count), index]
    return index.numpy().astype(np.int64), best.numpy(), errors.numpy()


def best_pose_template(landmarks, size: int = 224) -> tuple[int, np.ndarray, np.ndarray]:
    """Best pose template for one face: ``(index, matrix [2, 3], errors [5])`` (``best_pose_templates``)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected [5, 2] landmarks, got {points.shape}")
    index, matrices, errors = best_pose_templates(points[None], size)
    return int(index[0]), matrices[0], errors[0]
