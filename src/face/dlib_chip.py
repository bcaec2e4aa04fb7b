"""dlib's 5-landmark face-chip alignment (``dlib.get_face_chip``) reproduced in torch, differentiably.

dlib aligns a face for its recognition ResNet by a similarity transform from five landmarks (the output of
``shape_predictor_5_face_landmarks.dat``: two corners of each eye and the base of the nose) to a fixed
template, then samples a ``size``×``size`` chip bilinearly. This module reproduces that mapping and sampling
so an identity loss can back-propagate through alignment (to the image and to the landmarks).

How dlib does it (established by experiment against ``dlib.get_face_chip_details`` and ``dlib.get_face_chip``
of dlib 20.0.1, see ``tests/test_dlib_resnet.py``):

1. Template: chip points ``c_i = (padding + u_i) / (1 + 2·padding) · size`` with the unit-box template
   :data:`DLIB_5POINT_TEMPLATE` ``u_i`` (recovered to ~1e-12 by least squares over random shapes).
2. ``(a, b, t)``: the least-squares similarity ``x ↦ [[a, -b], [b, a]]·x + t`` from chip points to landmarks
   (scale ``s = |(a, b)|``, angle ``θ = atan2(b, a)``).
3. dlib stores this as a rectangle of side ``size·s`` centred on the image of chip point ``(size/2, size/2)``
   and extracts it with corner-to-corner pixel mapping, so the chip→image map actually used has scale
   ``(size·s − 1)/(size − 1)`` about chip pixel ``((size−1)/2, (size−1)/2)`` — slightly different from ``s``.
4. Bilinear sampling at pixel centres on integer coordinates; a chip pixel whose 2×2 neighbourhood is not
   entirely inside the image is black (0).

dlib's uint8 chips truncate the bilinear value (``quantize=True`` reproduces that exactly). dlib
additionally blurs through an image pyramid when the chip is a strong *downscaling* (scale ``s`` about 2 or
more image pixels per chip pixel: big faces in big images); that path is not reproduced (a warning says so) —
:func:`face_chip_scale` gives the scale so callers can resize images first.
"""

from __future__ import annotations

import warnings

import kornia.geometry as KG
import torch
from torch import Tensor

FACE_CHIP_SIZE = 150
FACE_CHIP_PADDING = 0.25
# dlib 20.0.1 switches to pyramid-blurred extraction between chip scales 1.97 (bilinear, verified) and 2.00.
PYRAMID_SCALE = 1.97

# Unit-box template of dlib's 5-point face chip, in the order of the 5-point predictor's parts:
# (x, y) for 0/1 = outer/inner corner of the eye on the image right, 2/3 = outer/inner corner of the eye
# on the image left, 4 = base of the nose. Recovered by experiment (see module docstring).
DLIB_5POINT_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.859567459599, 0.213498153802),
    (0.646060476410, 0.228967438768),
    (0.120575062079, 0.213727452685),
    (0.334085061371, 0.229064240324),
    (0.490112313568, 0.627797531648),
)


def _check_landmarks(landmarks: Tensor) -> Tensor:
    """``[5, 2]`` or ``[B, 5, 2]`` landmarks → ``[B, 5, 2]``, with a clear error otherwise."""
    if landmarks.ndim == 2:
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or tuple(landmarks.shape[1:]) != (5, 2):
        raise ValueError(
            "landmarks must be [B, 5, 2] (x, y) points of dlib's 5-point predictor, "
            f"got {tuple(landmarks.shape)}"
        )
    return landmarks


def _similarity_fit(landmarks: Tensor, size: int, padding: float) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares similarity from the template chip points to ``landmarks`` ``[B, 5, 2]`` (float64).

    Returns ``a``, ``b`` (``[B]``) and the translation ``t`` (``[B, 2]``) of ``x ↦ [[a, -b], [b, a]]·x + t``.
    """
    template = torch.tensor(DLIB_5POINT_TEMPLATE, dtype=torch.float64, device=landmarks.device)
    chip_points = (padding + template) / (1.0 + 2.0 * padding) * size
    src = chip_points - chip_points.mean(0)
    dst_mean = landmarks.mean(1)
    dst = landmarks - dst_mean[:, None]
    norm2 = (src**2).sum()
    a = (src[:, 0] * dst[..., 0] + src[:, 1] * dst[..., 1]).sum(-1) / norm2
    b = (src[:, 0] * dst[..., 1] - src[:, 1] * dst[..., 0]).sum(-1) / norm2
    mx, my = chip_points.mean(0)
    t = dst_mean - torch.stack([a * mx - b * my, b * mx + a * my], dim=-1)
    return a, b, t


def face_chip_scale(
    landmarks: Tensor, size: int = FACE_CHIP_SIZE, padding: float = FACE_CHIP_PADDING
) -> Tensor:
    """Image pixels per chip pixel ``[B]`` of dlib's face chip (above ~1 the chip is a downscaling)."""
    a, b, _ = _similarity_fit(_check_landmarks(landmarks).to(torch.float64), size, padding)
    return torch.hypot(a, b)


def face_chip_affine(
    landmarks: Tensor, size: int = FACE_CHIP_SIZE, padding: float = FACE_CHIP_PADDING
) -> Tensor:
    """The chip→image pixel affine map ``[B, 2, 3]`` (float64) that dlib's ``get_face_chip`` samples with.

    ``landmarks``: ``[B, 5, 2]`` (or ``[5, 2]``) (x, y) pixel coordinates from dlib's 5-point predictor.
    Chip pixel ``(x, y)`` is read from image point ``A @ (x, y, 1)``. Differentiable w.r.t. the landmarks.
    """
    if size < 2:
        raise ValueError(f"face chip size must be at least 2, got {size}")
    landmarks = _check_landmarks(landmarks).to(torch.float64)
    a, b, t = _similarity_fit(landmarks, size, padding)
    scale = torch.hypot(a, b)
    half = size / 2.0
    centre = torch.stack([a * half - b * half, b * half + a * half], dim=-1) + t
    # dlib's rectangle of side size·s is extracted corner pixel to corner pixel:
    # scale (size·s − 1)/(size − 1).
    factor = (size * scale - 1.0) / ((size - 1) * scale)
    ea, eb = a * factor, b * factor
    c0 = (size - 1) / 2.0
    tx = centre[:, 0] - (ea * c0 - eb * c0)
    ty = centre[:, 1] - (eb * c0 + ea * c0)
    row0 = torch.stack([ea, -eb, tx], dim=-1)
    row1 = torch.stack([eb, ea, ty], dim=-1)
    return torch.stack([row0, row1], dim=1)


def _invert_affine(affine: Tensor) -> Tensor:
    """Inverse of a batch of 2×3 affine maps."""
    linear, shift = affine[:, :, :2], affine[:, :, 2:]
    inverse = torch.linalg.inv(linear)
    return torch.cat([inverse, -inverse @ shift], dim=2)


def extract_face_chips(
    images: Tensor,
    landmarks: Tensor,
    size: int = FACE_CHIP_SIZE,
    padding: float = FACE_CHIP_PADDING,
    quantize: bool = False,
) -> Tensor:
    """dlib's ``get_face_chip`` in torch: images ``[B, C, H, W]`` + landmarks ``[B, 5, 2]`` → chips.

    Chips are ``[B, C, size, size]``. Differentiable w.r.t. the images and the landmarks. Chip pixels whose
    bilinear neighbourhood leaves the image are 0, as in dlib. Without ``quantize`` the chip is the exact
    bilinear value (any value range; dlib's uint8 chips are these values truncated, on average 0.5/255
    lower). ``quantize=True`` (images in [0, 1] holding uint8/255 values) samples in float64 and truncates to
    multiples of 1/255 like dlib, with a straight-through gradient: the chips then equal
    ``dlib.get_face_chip(...)/255``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    landmarks = _check_landmarks(landmarks)
    if landmarks.shape[0] != images.shape[0]:
        raise ValueError(
            f"got {images.shape[0]} images but {landmarks.shape[0]} landmark sets (one set per image)"
        )
    chip_to_image = face_chip_affine(landmarks.to(images.device), size, padding)
    scale = torch.hypot(chip_to_image[:, 0, 0], chip_to_image[:, 1, 0]).detach()
    if bool((scale > PYRAMID_SCALE).any()):
        warnings.warn(
            f"face chip scale {scale.max().item():.2f} image pixels per chip pixel: above about 2 dlib blurs "
            "through an image pyramid, which is not reproduced (downscale the image first to match dlib)",
            stacklevel=2,
        )
    source = images.to(torch.float64) if quantize else images
    image_to_chip = _invert_affine(chip_to_image).to(source.dtype)
    chips = KG.warp_affine(
        source, image_to_chip, (size, size), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    # dlib's bilinear interpolation gives 0 unless all four neighbours are inside the image.
    height, width = images.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64, device=images.device),
        torch.arange(size, dtype=torch.float64, device=images.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, -1, 3)
    points = grid @ chip_to_image.detach().transpose(1, 2)  # [B, size*size, 2] image (x, y)
    inside = (
        (points[..., 0] >= 0)
        & (points[..., 0] < width - 1)
        & (points[..., 1] >= 0)
        & (points[..., 1] < height - 1)
    )
    chips = chips * inside.reshape(-1, 1, size, size).to(chips.dtype)
    if quantize:
        # dlib assigns the double result to uint8 by truncation; 1e-6 absorbs float64 rounding of exact
        # levels.
        levels = torch.floor(chips * 255.0 + 1e-6) / 255.0
        chips = chips + (levels - chips).detach()
    return chips.to(images.dtype)


def landmarks_from_dlib(shape: object) -> Tensor:
    """``[5, 2]`` float64 (x, y) landmarks from a ``dlib.full_object_detection`` of the 5-point predictor."""
    parts = shape.parts()  # type: ignore[attr-defined]
    if len(parts) != 5:
        raise ValueError(
            f"expected a 5-point dlib shape (shape_predictor_5_face_landmarks), got {len(parts)} parts"
        )
    return torch.tensor([[p.x, p.y] for p in parts], dtype=torch.float64)
