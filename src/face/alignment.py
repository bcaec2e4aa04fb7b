"""Face alignment: 5-point similarity transforms to a template, FFHQ-style crops and dlib face chips.

Every alignment here is a **similarity transform** (rotation, uniform scale, translation) from image pixels to
output pixels, written as a ``2×3`` matrix ``M`` with ``out = M @ [x, y, 1]`` in pixel-index coordinates
(pixel ``(c, r)`` has its centre at ``(c, r)``, as in ``cv2.warpAffine`` and ``kornia`` with
``align_corners=True``). Templates (``get_template``, CLI names):

- ``arcface112`` — insightface's 5 points (``ARCFACE_112``) in ``LANDMARK_NAMES`` order; ``arcfaceN`` scales
  them by N/112. Least-squares similarity (Umeyama without reflection) from the 5 detected points to the
  template.
- ``ffhq5ptN`` — the 5-point FFHQ template used by VGGFace2-HQ / GFPGAN pipelines (``FFHQ_5PT_512`` scaled by
  N/512).
- ``ffhqN`` — the FFHQ recipe (``ffhq_quad``): an oriented square from the eye centres and mouth corners
  (``x = d_ee − rot90(d_em)``, side ``2·max(2|d_ee|, 1.8|d_em|)``, centre ``ē + 0.1·d_em``) mapped onto N×N.
  Only the eyes and mouth corners are used, so 5 points (ours, or reduced from dlib's 68) give the same quad
  as the 68. FFHQ's reflect-pad + blur of the border is approximated by ``border="reflect"`` (no blur), its
  4096² supersampling by the box pre-shrink below.
- ``dlibN`` — dlib's face chip (``dlib.get_face_chip_details``, padding 0.25, default 150: the input of dlib's
  face recogniser). It is defined on **dlib's 5-point shape** (dlib order), not on our 5 points; the geometry
  comes from ``src.face.dlib_chip``. Unlike dlib, the warp here blends the border with black instead of
  blacking out every pixel whose bilinear neighbourhood leaves the image, and antialiases by box shrink
  instead of dlib's pyramid.

Two warping paths give the same numbers (tested): ``align_batch`` (torch/kornia, batched, differentiable with
respect to the images and the landmarks) and ``warp_image`` (cv2, numpy uint8, for the CLI).
Both first shrink the image by an integer box average when the output is < ½ the face's scale
(``shrink_factor``; FFHQ's rule), so large photos do not alias.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from src.face.landmarks import ARCFACE_112_POINTS, landmarks5_from_dlib68

ARCFACE_112 = ARCFACE_112_POINTS
FFHQ_5PT_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)

TemplateKind = Literal["points", "ffhq", "dlib_chip"]
Border = Literal["constant", "reflect", "replicate"]
_CV2_BORDER = {
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
}
_KORNIA_BORDER = {"constant": "zeros", "reflect": "reflection", "replicate": "border"}
TEMPLATE_HELP = (
    "arcface112 (arcfaceN), ffhq256 (ffhqN: FFHQ quad), ffhq5pt512 (ffhq5ptN), dlib150 (dlibN: dlib chip)"
)
_TEMPLATE_RE = re.compile(r"^(arcface|ffhq5pt|ffhq|dlib)(\d+)?$")
_DEFAULT_SIZES = {"arcface": 112, "ffhq5pt": 512, "ffhq": 1024, "dlib": 150}


@dataclass(frozen=True, eq=False)
class AlignmentTemplate:
    """Where faces go in the output.

    ``kind``: ``points`` (5 target points), ``ffhq`` (the FFHQ quad recipe) or ``dlib_chip``; ``size``: output
    side in pixels (square); ``points``: ``(5, 2)`` targets at that size (``points`` kind only); ``padding``:
    dlib chip padding; ``border``: default border handling for the warp.
    """

    name: str
    kind: TemplateKind
    size: int
    points: np.ndarray | None = None
    padding: float = 0.25
    border: Border = "constant"


def get_template(template: str | AlignmentTemplate, size: int | None = None) -> AlignmentTemplate:
    """A template by name (``arcface112``, ``arcface224``, ``ffhq256``, ``ffhq5pt512``, ``dlib150``, …).

    ``size`` overrides the output side (the 5-point templates are scaled to it).
    """
    if isinstance(template, AlignmentTemplate):
        base = template
        if size is None or size == base.size:
            return base
        points = None if base.points is None else base.points * (size / base.size)
        return AlignmentTemplate(
            f"{base.name}@{size}", base.kind, int(size), points, base.padding, base.border
        )
    match = _TEMPLATE_RE.match(str(template).strip().lower())
    if match is None:
        raise ValueError(f"unknown alignment template {template!r}; expected one of: {TEMPLATE_HELP}")
    family, digits = match.group(1), match.group(2)
    out = int(size) if size is not None else int(digits) if digits else _DEFAULT_SIZES[family]
    if out < 8 or out > 8192:
        raise ValueError(f"alignment template {template!r}: output size {out} is outside 8..8192")
    name = f"{family}{out}"
    if family == "arcface":
        return AlignmentTemplate(name, "points", out, ARCFACE_112 * (out / 112.0))
    if family == "ffhq5pt":
        return AlignmentTemplate(name, "points", out, FFHQ_5PT_512 * (out / 512.0))
    if family == "ffhq":
        return AlignmentTemplate(name, "ffhq", out, border="reflect")
    return AlignmentTemplate(name, "dlib_chip", out, padding=0.25)


# --------------------------------------------------------------------------------------------------- matrices


def _as_tensor(points) -> torch.Tensor:
    """numpy / tensor / list points → float tensor (ints become float64) with a batch axis ``[B, N, 2]``."""
    if isinstance(points, list | tuple):
        points = torch.stack(list(points)) if isinstance(points[0], torch.Tensor) else np.asarray(points)
    tensor = torch.as_tensor(points)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor


def estimate_similarity(src, dst) -> torch.Tensor:
    """Least-squares similarity ``[B, 2, 3]`` mapping ``src`` onto ``dst`` points (Umeyama, no reflection).

    ``src``: ``[B, N, 2]`` or ``[N, 2]``; ``dst``: same or ``[N, 2]`` shared by the batch. In 2-D the optimum
    of ``Σ‖dst − (sR·src + t)‖²`` has the closed form ``[[a, −b], [b, a]]`` with ``a = Σ(x·x' + y·y') /
    Σ|x|²``, ``b = Σ(x·y' − y·x') / Σ|x|²`` on centred points — Umeyama's solution whenever that is a proper
    rotation. Differentiable; returns the dtype of ``src`` (float64 for numpy input).
    """
    src_t = _as_tensor(src)
    dst_t = _as_tensor(dst).to(src_t)
    if dst_t.shape[0] == 1 and src_t.shape[0] > 1:
        dst_t = dst_t.expand(src_t.shape[0], -1, -1)
    if src_t.shape != dst_t.shape or src_t.shape[-1] != 2 or src_t.shape[-2] < 2:
        raise ValueError(
            f"similarity needs matching [B, N>=2, 2] points, got {tuple(src_t.shape)} and "
            f"{tuple(dst_t.shape)}"
        )
    src_c = src_t - src_t.mean(-2, keepdim=True)
    dst_c = dst_t - dst_t.mean(-2, keepdim=True)
    den = (src_c**2).sum((-1, -2)).clamp_min(1e-12)
    a = (src_c[..., 0] * dst_c[..., 0] + src_c[..., 1] * dst_c[..., 1]).sum(-1) / den
    b = (src_c[..., 0] * dst_c[..., 1] - src_c[..., 1] * dst_c[..., 0]).sum(-1) / den
    linear = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)
    shift = dst_t.mean(-2) - (linear @ src_t.mean(-2).unsqueeze(-1)).squeeze(-1)
    return torch.cat([linear, shift.unsqueeze(-1)], -1)


def _rot90(v: torch.Tensor) -> torch.Tensor:
    """``(x, y) → (−y, x)``: the FFHQ recipe's 90° turn (image coordinates, y down)."""
    return torch.stack([-v[..., 1], v[..., 0]], -1)


def _to_five(landmarks) -> torch.Tensor:
    """``[B, 5, 2]`` ours, or ``[B, 68, 2]`` dlib (reduced), as a float tensor."""
    points = _as_tensor(landmarks)
    if points.shape[-2] == 68:
        points = landmarks5_from_dlib68(points)
    if points.shape[-2:] != (5, 2):
        raise ValueError(f"expected [B, 5, 2] or [B, 68, 2] landmarks, got {tuple(points.shape)}")
    return points


def ffhq_quad(landmarks) -> torch.Tensor:
    """FFHQ crop quad ``[B, 4, 2]`` (top-left, bottom-left, bottom-right, top-right) from 5/68 landmarks."""
    points = _to_five(landmarks)
    eye_left, eye_right, mouth_left, mouth_right = (
        points[..., 0, :],
        points[..., 1, :],
        points[..., 3, :],
        points[..., 4, :],
    )
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    scale = torch.maximum(eye_to_eye.norm(dim=-1) * 2.0, eye_to_mouth.norm(dim=-1) * 1.8)
    x = x * scale.unsqueeze(-1)
    y = _rot90(x)
    centre = eye_avg + eye_to_mouth * 0.1
    return torch.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y], -2)


def ffhq_matrix(landmarks, size: int) -> torch.Tensor:
    """Image → ``size``² output matrices ``[B, 2, 3]`` of the FFHQ recipe.

    FFHQ warps the quad (+0.5, PIL's pixel-edge coordinates) onto the output's edges, so output pixel ``j``
    (centre ``j + 0.5`` in edge units) samples image point ``tl + (j + 0.5)/N · 2x + (i + 0.5)/N · 2y`` in
    index units.
    """
    quad = ffhq_quad(landmarks)
    top_left, x_axis, y_axis = (
        quad[..., 0, :],
        (quad[..., 3, :] - quad[..., 0, :]),
        (quad[..., 1, :] - quad[..., 0, :]),
    )
    # Output-index → image-index affine, then invert it.
    linear = torch.stack([x_axis / size, y_axis / size], -1)
    offset = top_left + 0.5 * (x_axis + y_axis) / size
    return invert_affine(torch.cat([linear, offset.unsqueeze(-1)], -1))


def invert_affine(matrix):
    """Inverse of ``[..., 2, 3]`` affine matrices (numpy or torch)."""
    if isinstance(matrix, np.ndarray):
        return invert_affine(torch.from_numpy(matrix)).numpy()
    linear, shift = matrix[..., :2], matrix[..., 2:]
    inverse = torch.linalg.inv(linear)
    return torch.cat([inverse, -(inverse @ shift)], -1)


def transform_points(points, matrix):
    """Apply ``[..., 2, 3]`` matrices to ``[..., N, 2]`` points (numpy or torch)."""
    if isinstance(points, np.ndarray) and isinstance(matrix, np.ndarray):
        return points @ matrix[..., :2].swapaxes(-1, -2) + matrix[..., None, :, 2]
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]


def dlib_chip_matrix(dlib5, size: int = 150, padding: float = 0.25) -> torch.Tensor:
    """Image → chip matrices ``[B, 2, 3]`` of ``dlib.get_face_chip(image, shape, size, padding)``.

    ``dlib5``: ``[B, 5, 2]`` (or ``[5, 2]``) points of dlib's 5-point predictor, in dlib's order. The chip →
    image map comes from ``src.face.dlib_chip.face_chip_affine`` (dlib's own geometry, differentiable); this
    inverts it.
    """
    from src.face.dlib_chip import face_chip_affine

    return invert_affine(face_chip_affine(_as_tensor(dlib5).to(torch.float64), int(size), float(padding)))


def _dlib_shape(points: np.ndarray):
    """A ``dlib.full_object_detection`` from ``(n, 2)`` points (dlib order) and their bounding box."""
    import dlib

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] not in (5, 68):
        raise ValueError(f"dlib shape must be (5, 2) or (68, 2) points in dlib order, got {points.shape}")
    rounded = np.rint(points).astype(int)
    x1, y1 = rounded.min(0)
    x2, y2 = rounded.max(0)
    parts = [dlib.point(int(x), int(y)) for x, y in rounded]
    return dlib.full_object_detection(dlib.rectangle(int(x1), int(y1), int(x2), int(y2)), parts)


def dlib_face_chip(
    image: np.ndarray, dlib5: np.ndarray, size: int = 150, padding: float = 0.25
) -> np.ndarray:
    """dlib's own face chip (``dlib.get_face_chip``) for an ``[H, W, 3]`` uint8 RGB image — the reference."""
    import dlib

    return dlib.get_face_chip(np.ascontiguousarray(image), _dlib_shape(dlib5), int(size), float(padding))


def alignment_matrices(landmarks, template: str | AlignmentTemplate, size: int | None = None) -> torch.Tensor:
    """Image → output matrices ``[B, 2, 3]`` for a batch of landmarks and a template.

    ``landmarks``: ``[B, 5, 2]`` in ``LANDMARK_NAMES`` order (``[B, 68, 2]`` dlib points are reduced), or for
    ``dlib`` chip templates dlib's 5-point shapes in dlib's order. A single face (``[5, 2]``) is a batch of
    one.
    """
    tmpl = get_template(template, size)
    if tmpl.kind == "dlib_chip":
        return dlib_chip_matrix(landmarks, tmpl.size, tmpl.padding)
    if tmpl.kind == "ffhq":
        return ffhq_matrix(landmarks, tmpl.size)
    five = _to_five(landmarks)
    return estimate_similarity(five, torch.as_tensor(tmpl.points).to(five))


def alignment_matrix(
    landmarks: np.ndarray, template: str | AlignmentTemplate, size: int | None = None
) -> np.ndarray:
    """``alignment_matrices`` for one face, as a float64 numpy ``2×3`` matrix."""
    points = torch.as_tensor(np.asarray(landmarks, dtype=np.float64))
    return alignment_matrices(points, template, size)[0].detach().cpu().numpy().astype(np.float64)


def fit_rmse(landmarks, matrix, template: str | AlignmentTemplate, size: int | None = None) -> float | None:
    """RMS distance (output pixels) between the warped landmarks and a ``points`` template; None for other
    kinds."""
    tmpl = get_template(template, size)
    if tmpl.kind != "points":
        return None
    warped = transform_points(np.asarray(landmarks, dtype=np.float64), np.asarray(matrix, dtype=np.float64))
    return float(np.sqrt(((warped - tmpl.points) ** 2).sum(-1).mean()))


# -----------------------------------------------------------------------------------------------------
# warping


def shrink_factor(matrix) -> int:
    """Integer box-shrink applied before warping: ``floor(0.5 / scale)`` when that is ≥ 2, else 1 (FFHQ's
    rule).

    ``scale`` is the output pixels per image pixel of the similarity ``matrix``.
    """
    linear = np.asarray(matrix, dtype=np.float64)[:2, :2]
    scale = math.sqrt(abs(np.linalg.det(linear)))
    factor = math.floor(0.5 / scale) if scale > 0 else 1
    return factor if factor >= 2 else 1


def _shrunk_matrix(matrix, factor: int):
    """The matrix acting on an image box-shrunk by ``factor`` (its pixel ``q`` covers ``factor·q +
    (factor−1)/2``)."""
    if factor == 1:
        return matrix
    out = matrix.clone() if isinstance(matrix, torch.Tensor) else np.array(matrix, dtype=np.float64)
    out[..., :2, 2] = matrix[..., :2, 2] + matrix[..., :2, :2].sum(-1) * (factor - 1) / 2
    out[..., :2, :2] = matrix[..., :2, :2] * factor
    return out


def warp_image(
    image: np.ndarray, matrix: np.ndarray, size: int, border: Border = "constant", antialias: bool = True
) -> np.ndarray:
    """cv2 path: warp an ``[H, W, C]`` image (uint8 or float) with an image → output ``2×3`` matrix to
    ``size²``.

    Bilinear, ``border`` ``constant`` (0) / ``reflect`` / ``replicate``; with ``antialias`` the image is first
    box-shrunk by ``shrink_factor(matrix)``. Returns the input dtype (uint8 rounded).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if border not in _CV2_BORDER:
        raise ValueError(f"border must be one of {sorted(_CV2_BORDER)}, got {border!r}")
    factor = shrink_factor(matrix) if antialias else 1
    source = image
    if factor > 1:
        height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
        cropped = image[:height, :width].astype(np.float32)
        source = cropped.reshape(height // factor, factor, width // factor, factor, -1).mean((1, 3))
        matrix = _shrunk_matrix(matrix, factor)
    warped = cv2.warpAffine(
        source,
        matrix,
        (int(size), int(size)),
        flags=cv2.INTER_LINEAR,
        borderMode=_CV2_BORDER[border],
        borderValue=0,
    )
    warped = warped.reshape(int(size), int(size), -1)
    if image.dtype == np.uint8 and warped.dtype != np.uint8:
        warped = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return warped.astype(image.dtype, copy=False)


def align_image(
    image: np.ndarray,
    landmarks: np.ndarray,
    template: str | AlignmentTemplate,
    size: int | None = None,
    border: Border | None = None,
    antialias: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """cv2 path for one ``[H, W, 3]`` uint8 image: returns ``(crop, matrix)`` (see ``alignment_matrices``)."""
    tmpl = get_template(template, size)
    matrix = alignment_matrix(landmarks, tmpl)
    return warp_image(image, matrix, tmpl.size, border or tmpl.border, antialias), matrix


def _warp_tensor(images: torch.Tensor, matrices: torch.Tensor, size: int, border: Border) -> torch.Tensor:
    from kornia.geometry.transform import warp_affine

    return warp_affine(
        images,
        matrices.to(images),
        (size, size),
        mode="bilinear",
        padding_mode=_KORNIA_BORDER[border],
        align_corners=True,
    )


def align_batch(
    images: torch.Tensor | list[torch.Tensor],
    landmarks,
    template: str | AlignmentTemplate = "arcface112",
    size: int | None = None,
    border: Border | None = None,
    antialias: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch path: align a batch with kornia ``warp_affine``; returns ``(crops [B, C, S, S], matrices [B, 2,
    3])``.

    ``images``: float ``[B, C, H, W]`` (any range; the project's is [0, 1]) or a list of ``[C, H, W]`` tensors
    of different sizes. ``landmarks``: as for ``alignment_matrices`` (``[B, 5, 2]``, in each image's pixel
    coordinates). Differentiable in the images and the landmarks.
    """
    tmpl = get_template(template, size)
    border = border or tmpl.border
    if border not in _KORNIA_BORDER:
        raise ValueError(f"border must be one of {sorted(_KORNIA_BORDER)}, got {border!r}")
    if isinstance(images, torch.Tensor) and images.dim() == 3:
        images = images.unsqueeze(0)
    count = len(images)
    if count == 0:
        raise ValueError("align_batch got an empty batch")
    matrices = alignment_matrices(landmarks, tmpl)
    if matrices.shape[0] != count:
        raise ValueError(f"align_batch got {count} images but {matrices.shape[0]} landmark sets")
    device = images[0].device
    matrices = matrices.to(device)
    factors = [shrink_factor(m.detach().cpu().numpy()) if antialias else 1 for m in matrices]
    if isinstance(images, torch.Tensor) and all(f == 1 for f in factors):
        return _warp_tensor(images, matrices, tmpl.size, border), matrices
    crops = []
    for image, matrix, factor in zip(images, matrices, factors, strict=True):
        source = image.unsqueeze(0)
        if factor > 1:
            source = F.avg_pool2d(source, factor)
        crops.append(_warp_tensor(source, _shrunk_matrix(matrix, factor).unsqueeze(0), tmpl.size, border))
    return torch.cat(crops), matrices
