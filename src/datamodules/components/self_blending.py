"""Self-Blended Images (SBI; Shiohara & Yamasaki, CVPR 2022): online fakes made from real frames only.

A frame is blended with a colour-/sharpness-transformed, slightly shifted copy of itself inside a softened
landmark hull, which mimics the blending boundary and the source/target statistics mismatch of face swaps
without any generator. :func:`self_blend` is a pure function of (frame, landmarks, box, ``rng``): every
random draw comes from the ``numpy.random.Generator`` it is given (albumentations transforms get a fresh
generator seeded from it), so a sample is reproduced exactly by :func:`sample_rng` ``(seed, epoch, index)``.

Steps (as in the original SBI code, mapooon/SelfBlendedImages; the box choice is :func:`choose_box`):

1. with 81 points, rewrite the forehead points as a contour (:func:`src.face.face_hulls.reorder_forehead`);
2. training only: horizontal flip with ``flip_p`` (image, landmark indices, box);
3. coarse crop around the 68-point landmark box (``coarse_margins``);
4. :func:`self_blend_face`: raw hull mask, source/target colour transforms, affine jitter of source and
   mask, elastic deformation of the mask, :func:`soft_mask`, :func:`blend` ``F = M·S + (1 − M)·T``;
5. training only: the same random photometric augmentation on target, fake and source;
6. final crop by the face box with random (training) or fixed (evaluation) margins;
7. bilinear resize to ``size``; the outputs stay uint8 (the consumer divides by 255, no mean/std).

:func:`self_blend_frame` runs steps 1, 3 and 4 on a whole frame and pastes the blend back (SBI videos).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field, fields, replace
from typing import Any

import albumentations as A
import cv2
import numpy as np

from src.face.face_hulls import (
    HULL_TYPES,
    flip_landmarks,
    hull_area,
    hull_mask,
    landmark_box,
    reorder_forehead,
)

#: Smallest accepted area (px²) of the hull of the 68 face points; below it the masks are meaningless.
MIN_HULL_AREA = 16.0

_PROBABILITIES = (
    "p_68_only",
    "p_transform_source",
    "source_rgb_shift_p",
    "source_hsv_p",
    "source_brightness_contrast_p",
    "p_downscale",
    "joint_rgb_shift_p",
    "joint_hsv_p",
    "joint_brightness_contrast_p",
    "jpeg_p",
    "flip_p",
)
_FLOAT_RANGES = (
    "sharpen_alpha",
    "sharpen_lightness",
    "translate_x",
    "translate_y",
    "scale",
    "train_margin_scale",
)
_INT_RANGES = ("soft_mask_size", "blur_kernel_1", "blur_kernel_2", "blur_sigma_2", "jpeg_quality")


@dataclass(frozen=True)
class SelfBlendConfig:
    """Every probability and range of the SBI generator; the defaults are those of the original SBI code.

    Colour limits follow albumentations' uint8 conventions (RGB shift in grey levels; HSV shifts in OpenCV
    uint8 H/S/V units, so ±0.3 is nearly a no-op apart from the lossy HSV round trip, exactly as in the
    original; brightness/contrast as fractions). Integer ranges are inclusive. Lists are accepted and
    stored as tuples, so configs from YAML compare and hash like the defaults.
    """

    # landmarks and raw mask
    p_68_only: float = 0.25  # drop the forehead points (81-point input) before drawing the hull
    hull_types: tuple[str, ...] = HULL_TYPES
    hull_probs: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    # source transforms, applied to the source S with p_transform_source, otherwise to the target T
    p_transform_source: float = 0.5
    source_rgb_shift: float = 20.0
    source_rgb_shift_p: float = 0.3
    source_hsv_shift: float = 0.3
    source_hsv_p: float = 1.0
    source_brightness: float = 0.1
    source_contrast: float = 0.1
    source_brightness_contrast_p: float = 1.0
    p_downscale: float = 0.5  # then one of: downscale by a factor below (else sharpen)
    downscale_factors: tuple[int, ...] = (2, 4)
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    sharpen_lightness: tuple[float, float] = (0.5, 1.0)
    # geometric jitter of S and the mask (fractions of the crop size), then elastic warp of the mask only
    translate_x: tuple[float, float] = (-0.03, 0.03)
    translate_y: tuple[float, float] = (-0.015, 0.015)
    scale: tuple[float, float] = (0.95, 1 / 0.95)
    elastic_alpha: float = 50.0
    elastic_sigma: float = 7.0
    # soft mask: resize, blur + erode, blur, resize back, times a blend ratio
    soft_mask_size: tuple[int, int] = (192, 256)
    blur_kernel_1: tuple[int, int] = (5, 25)  # odd kernel sizes
    blur_kernel_2: tuple[int, int] = (5, 25)
    blur_sigma_2: tuple[int, int] = (5, 45)
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    # joint photometric augmentation of T, F and S (training only)
    joint_rgb_shift: float = 20.0
    joint_rgb_shift_p: float = 0.3
    joint_hsv_shift: float = 0.3
    joint_hsv_p: float = 0.3
    joint_brightness: float = 0.3
    joint_contrast: float = 0.3
    joint_brightness_contrast_p: float = 0.3
    jpeg_quality: tuple[int, int] = (40, 100)
    jpeg_p: float = 0.5
    # crops and output
    coarse_margins: tuple[float, float, float, float] = (0.5, 0.5, 1.0, 0.4)  # × landmark box w, w, h, h
    box_margin: float = 0.25  # base margin per side, × box width (left/right) or height (top/bottom)
    train_margin_scale: tuple[float, float] = (0.2, 0.8)  # each side's base margin × U(range) in training
    eval_margin_scale: float = 0.5
    size: int = 380
    flip_p: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        for name in _PROBABILITIES:
            _check_number(name, getattr(self, name), 0.0, 1.0)
        for name in (*_FLOAT_RANGES, *_INT_RANGES):
            _check_range(name, getattr(self, name), integer=name in _INT_RANGES)
        unknown = [h for h in self.hull_types if h not in HULL_TYPES]
        if not self.hull_types or unknown:
            raise ValueError(
                f"SelfBlendConfig.hull_types must be a non-empty subset of {HULL_TYPES}, "
                f"got {self.hull_types}"
            )
        if len(self.hull_probs) != len(self.hull_types):
            raise ValueError(
                f"SelfBlendConfig.hull_probs needs one probability per hull type ({len(self.hull_types)}), "
                f"got {len(self.hull_probs)}"
            )
        for p in self.hull_probs:
            _check_number("hull_probs", p, 0.0, 1.0)
        if not math.isclose(sum(self.hull_probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"SelfBlendConfig.hull_probs must sum to 1, got {sum(self.hull_probs)}")
        if not self.downscale_factors or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in self.downscale_factors
        ):
            raise ValueError(
                f"SelfBlendConfig.downscale_factors must be integers >= 1, got {self.downscale_factors}"
            )
        if not self.blend_ratios:
            raise ValueError("SelfBlendConfig.blend_ratios must not be empty")
        for r in self.blend_ratios:
            _check_number("blend_ratios", r, 0.0, 1.0)
        for name in ("source_rgb_shift", "source_hsv_shift", "joint_rgb_shift", "joint_hsv_shift"):
            _check_number(name, getattr(self, name), 0.0, 255.0)
        for name in ("source_brightness", "source_contrast", "joint_brightness", "joint_contrast"):
            _check_number(name, getattr(self, name), 0.0, 1.0)
        _check_number("elastic_alpha", self.elastic_alpha, 0.0, math.inf)
        _check_number("elastic_sigma", self.elastic_sigma, 0.0, math.inf, strict_low=True)
        _check_number("box_margin", self.box_margin, 0.0, math.inf)
        _check_number("eval_margin_scale", self.eval_margin_scale, 0.0, math.inf)
        if len(self.coarse_margins) != 4:
            raise ValueError(
                "SelfBlendConfig.coarse_margins needs 4 values (left, right, top, bottom), "
                f"got {self.coarse_margins}"
            )
        for m in self.coarse_margins:
            _check_number("coarse_margins", m, 0.0, math.inf)
        if self.scale[0] <= 0:
            raise ValueError(f"SelfBlendConfig.scale must be positive, got {self.scale}")
        if self.train_margin_scale[0] < 0:
            raise ValueError(
                f"SelfBlendConfig.train_margin_scale must be >= 0, got {self.train_margin_scale}"
            )
        for name in ("soft_mask_size", "blur_kernel_1", "blur_kernel_2"):
            if getattr(self, name)[0] < 1:
                raise ValueError(f"SelfBlendConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("blur_kernel_1", "blur_kernel_2"):
            if any(k % 2 == 0 for k in getattr(self, name)):
                raise ValueError(
                    f"SelfBlendConfig.{name} bounds must be odd (Gaussian kernels), got {getattr(self, name)}"
                )
        if self.blur_sigma_2[0] < 0:
            raise ValueError(f"SelfBlendConfig.blur_sigma_2 must be >= 0, got {self.blur_sigma_2}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"SelfBlendConfig.jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"SelfBlendConfig.size must be a positive integer, got {self.size!r}")


def _check_number(name: str, value: object, low: float, high: float, strict_low: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        ok = (value > low if strict_low else value >= low) and value <= high
    if not ok:
        bound = "(" if strict_low else "["
        raise ValueError(f"SelfBlendConfig.{name} must be a number in {bound}{low}, {high}], got {value!r}")


def _check_range(name: str, value: object, integer: bool) -> None:
    kind = int if integer else int | float
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        or value[0] > value[1]
    ):
        what = "integers" if integer else "numbers"
        raise ValueError(
            f"SelfBlendConfig.{name} must be a (low, high) pair of {what} with low <= high, got {value!r}"
        )


DEFAULT_CONFIG = SelfBlendConfig()


@dataclass
class SelfBlendSample:
    """One SBI pair at ``size`` × ``size``: ``real`` (the target T), ``fake`` (F), ``mask`` (float32 in
    [0, 1], the blending weight of the source), ``source`` (S), all uint8 ``(H, W, 3)`` except ``mask``;
    ``landmarks`` (float32 ``(N, 2)``) in output pixel coordinates (forehead reordered, flip applied);
    ``params``: what was drawn (JSON-serialisable)."""

    real: np.ndarray
    fake: np.ndarray
    mask: np.ndarray
    source: np.ndarray
    landmarks: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` in ``epoch`` of a run seeded with ``seed`` (independent streams)."""
    return np.random.default_rng([seed, epoch, index])


def _seeded(transform: A.BasicTransform | A.BaseCompose, rng: np.random.Generator) -> Any:
    """``transform`` with fresh random state seeded from ``rng``: one shared numpy generator and one shared
    ``random.Random`` for all its children (albumentations' ``seed=`` would give every child the same seed,
    i.e. correlated draws), never the global ``random`` / ``np.random`` state."""
    seed = int(rng.integers(0, 2**63 - 1))
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return transform


def _applied(result: dict[str, Any]) -> list[str]:
    names = []
    for name, params in result.get("applied_transforms", []):
        if name == "Downscale":
            name = f"Downscale(x{round(1 / params['scale'])})"
        names.append(name)
    return names


# ----------------------------------------------------------------------------------------- input checks


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = (
            f"{image.dtype} array of shape {image.shape}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise ValueError(f"{what}: image must be an HxWx3 uint8 array, got {desc}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{what}: image is too small ({image.shape[1]}x{image.shape[0]})")
    return image


def _check_landmarks(landmarks: np.ndarray, height: int, width: int, what: str) -> np.ndarray:
    points = np.asarray(landmarks)
    if points.ndim != 2 or points.shape not in ((68, 2), (81, 2)):
        raise ValueError(f"{what}: landmarks must have shape (68, 2) or (81, 2), got {points.shape}")
    points = points.astype(np.float64)
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points)).any(axis=1).sum())
        raise ValueError(f"{what}: {bad} landmark(s) are NaN or infinite")
    face = points[:68]
    inside = (face[:, 0] >= 0) & (face[:, 0] <= width - 1) & (face[:, 1] >= 0) & (face[:, 1] <= height - 1)
    if inside.sum() < 34:
        raise ValueError(
            f"{what}: only {int(inside.sum())} of the 68 face landmarks lie inside the {width}x{height} "
            "image (need at least half); landmarks of another frame or another scale?"
        )
    area = hull_area(face)
    if area < MIN_HULL_AREA:
        raise ValueError(
            f"{what}: degenerate landmarks: the hull of the 68 face points has area {area:.1f} px² "
            f"(< {MIN_HULL_AREA:g})"
        )
    return points


def _check_box(box: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(box, dtype=np.float64)
    if values.shape not in ((4,), (2, 2)):
        raise ValueError(
            f"{what}: box must be [x1, y1, x2, y2] or [[x1, y1], [x2, y2]], got shape {values.shape}"
        )
    values = values.reshape(4)
    if not np.isfinite(values).all():
        raise ValueError(f"{what}: box has NaN or infinite coordinates: {values.tolist()}")
    if not (values[2] > values[0] and values[3] > values[1]):
        raise ValueError(f"{what}: degenerate box (zero or negative width/height): {values.tolist()}")
    return values


def choose_box(boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face box (``[x1, y1, x2, y2]``) with the highest IoU against the bounding box of ``landmarks``.

    ``boxes``: ``(K, 4)``, ``(K, 2, 2)`` corners, or RetinaFace-style ``(K, 7, 2)`` (corners then keypoints).
    """
    values = np.asarray(boxes, dtype=np.float64)
    if values.ndim == 3 and values.shape[1] >= 2 and values.shape[2] == 2:
        values = values[:, :2].reshape(-1, 4)
    if values.ndim != 2 or values.shape[1] != 4 or len(values) == 0:
        raise ValueError(
            f"choose_box: boxes must be (K, 4), (K, 2, 2) or (K, 7, 2) with K >= 1, got {np.shape(boxes)}"
        )
    ref = landmark_box(landmarks)
    ix = np.clip(np.minimum(values[:, 2], ref[2]) - np.maximum(values[:, 0], ref[0]), 0, None)
    iy = np.clip(np.minimum(values[:, 3], ref[3]) - np.maximum(values[:, 1], ref[1]), 0, None)
    inter = ix * iy
    area = (values[:, 2] - values[:, 0]) * (values[:, 3] - values[:, 1])
    union = area + (ref[2] - ref[0]) * (ref[3] - ref[1]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return values[int(np.argmax(iou))].copy()


# ----------------------------------------------------------------------------------------- blending


def _odd(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An odd integer drawn uniformly from the odd values in ``bounds`` (both odd)."""
    low, high = bounds
    return int(low + 2 * rng.integers(0, (high - low) // 2 + 1))


def soft_mask(
    mask: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, dict[str, Any]]:
    """SBI's soft blending mask from a binary mask, and the drawn parameters.

    Written by hand because it is a specific chain with no library equivalent: resize to a random
    ``H' × W'`` (bilinear); Gaussian blur (odd kernel ``k1``, σ from ``k1``), divide by the max and zero every
    value below 1 (an erosion by about ``k1 / 2``); Gaussian blur (odd ``k2``, integer σ), divide by the max;
    resize back (bilinear); multiply by a blend ratio ``r`` from ``blend_ratios``. Float32 in ``[0, r]``.
    """
    height, width = mask.shape
    size_h = int(rng.integers(config.soft_mask_size[0], config.soft_mask_size[1] + 1))
    size_w = int(rng.integers(config.soft_mask_size[0], config.soft_mask_size[1] + 1))
    k1 = _odd(rng, config.blur_kernel_1)
    k2 = _odd(rng, config.blur_kernel_2)
    sigma = int(rng.integers(config.blur_sigma_2[0], config.blur_sigma_2[1] + 1))
    ratio = float(config.blend_ratios[int(rng.integers(len(config.blend_ratios)))])
    small = cv2.resize(mask.astype(np.float32), (size_w, size_h), interpolation=cv2.INTER_LINEAR)
    small = cv2.GaussianBlur(small, (k1, k1), 0)
    peak = float(small.max())
    if peak <= 0:
        raise ValueError("soft_mask: the mask is empty")
    small /= peak
    small[small < 1] = 0
    small = cv2.GaussianBlur(small, (k2, k2), sigma)
    small /= small.max()
    soft = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(ratio)
    params = {"size": [size_h, size_w], "kernel1": k1, "kernel2": k2, "sigma2": sigma, "blend_ratio": ratio}
    return soft, params


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``F = M·S + (1 − M)·T`` in float32, truncated to uint8 as in the original (``M`` ``(H, W)`` in [0, 1]).

    Where ``M == 0`` the result equals ``target`` exactly.
    """
    out = target.copy()
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0:
        return out
    # only the mask's bounding box is computed: elsewhere the result is the target (saves ~2/3 of the time)
    roi = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    weight = mask[roi].astype(np.float32)[..., None]
    mixed = weight * source[roi].astype(np.float32) + (1 - weight) * target[roi].astype(np.float32)
    out[roi] = np.clip(mixed, 0, 255).astype(np.uint8)
    return out


_TRANSFORMS = threading.local()


def _transform(kind: str, config: SelfBlendConfig) -> Any:
    """The albumentations pipeline ``kind`` for ``config``, built once per thread (building validates every
    argument and costs ~15 % of a sample); callers reseed it with :func:`_seeded` before every use."""
    cache: dict[tuple[str, SelfBlendConfig], Any] = _TRANSFORMS.__dict__.setdefault("cache", {})
    key = (kind, config)
    if key not in cache:
        cache[key] = _BUILDERS[kind](config)
    return cache[key]


# RGBShift limits are passed as fractions of 255: albumentations reads limits <= 1 as fractions and larger
# ones as grey levels, so a small grey-level shift (e.g. 1) would otherwise mean a full-range shift.


def _colour_jitter(
    rgb: float, rgb_p: float, hsv: float, hsv_p: float, brightness: float, contrast: float, bc_p: float
) -> list[A.BasicTransform]:
    """RGB shift, HSV shift and brightness/contrast, each symmetric around 0: the colour part of both the
    source transforms and the joint augmentation (with their own ranges and probabilities)."""
    return [
        A.RGBShift((-rgb, rgb), (-rgb, rgb), (-rgb, rgb), p=rgb_p),
        A.HueSaturationValue((-hsv, hsv), (-hsv, hsv), (-hsv, hsv), p=hsv_p),
        A.RandomBrightnessContrast((-brightness, brightness), (-contrast, contrast), p=bc_p),
    ]


def _source_transforms(config: SelfBlendConfig) -> A.Compose:
    rgb, hsv = config.source_rgb_shift / 255.0, config.source_hsv_shift
    nearest_linear = {"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR}
    downscales = [
        A.Downscale(scale_range=(1 / d, 1 / d), interpolation_pair=nearest_linear, p=1.0)
        for d in config.downscale_factors
    ]
    return A.Compose(
        [
            *_colour_jitter(
                rgb,
                config.source_rgb_shift_p,
                hsv,
                config.source_hsv_p,
                config.source_brightness,
                config.source_contrast,
                config.source_brightness_contrast_p,
            ),
            A.OneOf(
                [
                    A.OneOf(downscales, p=config.p_downscale),
                    A.Sharpen(config.sharpen_alpha, config.sharpen_lightness, p=1.0 - config.p_downscale),
                ],
                p=1.0,
            ),
        ],
        save_applied_params=True,
    )


def _joint_transforms(config: SelfBlendConfig) -> A.Compose:
    rgb, hsv = config.joint_rgb_shift / 255.0, config.joint_hsv_shift
    return A.Compose(
        [
            *_colour_jitter(
                rgb,
                config.joint_rgb_shift_p,
                hsv,
                config.joint_hsv_p,
                config.joint_brightness,
                config.joint_contrast,
                config.joint_brightness_contrast_p,
            ),
            A.ImageCompression(quality_range=config.jpeg_quality, p=config.jpeg_p),
        ],
        additional_targets={"fake": "image", "source": "image"},
        save_applied_params=True,
    )


def _affine(config: SelfBlendConfig) -> A.Affine:
    """Jitter of source and mask together (mask: nearest neighbour; borders filled with 0, as originally)."""
    return A.Affine(
        translate_percent={"x": config.translate_x, "y": config.translate_y}, scale=config.scale, p=1.0
    )


def _elastic(config: SelfBlendConfig) -> A.ElasticTransform:
    """Elastic warp applied to the mask alone, passed as the image (nearest neighbour keeps it binary);
    uniform noise smoothed by σ and scaled by α, reflected borders: the original's settings and noise."""
    return A.ElasticTransform(
        alpha=config.elastic_alpha,
        sigma=config.elastic_sigma,
        interpolation=cv2.INTER_NEAREST,
        noise_distribution="uniform",
        border_mode=cv2.BORDER_REFLECT_101,
        p=1.0,
    )


_BUILDERS = {"source": _source_transforms, "joint": _joint_transforms, "affine": _affine, "elastic": _elastic}


def self_blend_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    config: SelfBlendConfig = DEFAULT_CONFIG,
    what: str = "frame",
) -> SelfBlendSample:
    """The self-blending step on an already cropped face: returns T, F, M, S at the input resolution.

    ``landmarks`` (68 or 81 points, forehead already reordered) are returned unchanged. No joint
    augmentation, crop or resize; ``fake == blend(source, real, mask)`` holds exactly.
    """
    height, width = image.shape[:2]
    used_68_only = len(landmarks) == 68 or bool(rng.random() < config.p_68_only)
    points = landmarks[:68] if used_68_only else landmarks
    hull_type = config.hull_types[int(rng.choice(len(config.hull_types), p=config.hull_probs))]
    raw = hull_mask(hull_type, points, height, width)
    if not raw.any():
        raise ValueError(f"{what}: the {hull_type} hull mask is empty inside the face crop")

    transform_source = bool(rng.random() < config.p_transform_source)
    transformed = _seeded(_transform("source", config), rng)(image=image)
    source, target = (transformed["image"], image) if transform_source else (image, transformed["image"])

    jittered = _seeded(_transform("affine", config), rng)(image=source, mask=raw)
    source, raw = jittered["image"], jittered["mask"]
    raw = _seeded(_transform("elastic", config), rng)(image=raw)["image"]
    if not raw.any():
        raise ValueError(
            f"{what}: the blending mask is empty after the geometric jitter (face at the border?)"
        )

    mask, mask_params = soft_mask(raw, rng, config)
    fake = blend(source, target, mask)
    params = {
        "num_landmarks": len(landmarks),
        "used_68_only": used_68_only,
        "hull_type": hull_type,
        "source_is_transformed": transform_source,
        "source_transforms": _applied(transformed),
        "blend_ratio": mask_params.pop("blend_ratio"),
        "soft_mask": mask_params,
    }
    return SelfBlendSample(target, fake, mask, source, landmarks, params)


# ----------------------------------------------------------------------------------------- full sample


def _window(box: np.ndarray, margins: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer crop window ``[x0, x1) × [y0, y1)`` around ``box`` with absolute margins (left, right,
    top, bottom), clipped to the image; bounds as originally: ``int(x0 − m)``, ``int(x1 + m) + 1``."""
    x1, y1, x2, y2 = box
    left, right, top, bottom = margins
    return (
        max(0, int(x1 - left)),
        max(0, int(y1 - top)),
        min(width, int(x2 + right) + 1),
        min(height, int(y2 + bottom) + 1),
    )


def _checked_frame(image: np.ndarray, landmarks: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The validated frame and its landmarks (an 81-point forehead reordered into a contour)."""
    image = _check_image(image, what)
    points = _check_landmarks(landmarks, *image.shape[:2], what)
    return image, reorder_forehead(points) if len(points) == 81 else points


def _coarse_window(points: np.ndarray, config: SelfBlendConfig, height: int, width: int) -> tuple[int, ...]:
    """SBI's coarse crop ``(x0, y0, x1, y1)``: the 68-point landmark box plus ``coarse_margins``."""
    lm_box = landmark_box(points[:68])
    lm_w, lm_h = lm_box[2] - lm_box[0], lm_box[3] - lm_box[1]
    return _window(lm_box, np.asarray(config.coarse_margins) * [lm_w, lm_w, lm_h, lm_h], height, width)


def self_blend_frame(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    config: SelfBlendConfig = DEFAULT_CONFIG,
    what: str = "frame",
) -> SelfBlendSample:
    """A self-blended copy of a whole frame (no flip, augmentation, crop or resize), e.g. to write SBI videos.

    The blend of :func:`self_blend_face` runs on the coarse crop around the landmarks and is pasted back,
    so ``fake`` and ``mask`` have the frame's size. The transformed copy is always the *source*
    (``p_transform_source`` is taken as 1): pixels where ``mask == 0`` keep the frame bit for bit, and no
    seam appears at the crop border. Reusing a generator seeded the same way for every frame of a video
    draws the same hull, transforms and blend ratio each time (a consistent per-video manipulation).
    """
    image, points = _checked_frame(image, landmarks, what)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = _coarse_window(points, config, height, width)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    blend_config = replace(config, p_transform_source=1.0)
    sample = self_blend_face(crop, points - [x0, y0], rng, blend_config, what)
    fake = image.copy()
    fake[y0:y1, x0:x1] = sample.fake
    mask = np.zeros((height, width), dtype=np.float32)
    mask[y0:y1, x0:x1] = sample.mask
    source = image.copy()
    source[y0:y1, x0:x1] = sample.source
    params = {**sample.params, "crop": [int(x0), int(y0), int(x1), int(y1)]}
    return SelfBlendSample(image, fake, mask, source, points.astype(np.float32), params)


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    box: np.ndarray | None,
    rng: np.random.Generator,
    config: SelfBlendConfig = DEFAULT_CONFIG,
    train: bool = True,
    what: str = "frame",
) -> SelfBlendSample:
    """One SBI (real, fake) pair from a full RGB frame.

    ``image``: ``(H, W, 3)`` uint8 RGB; ``landmarks``: ``(68, 2)`` or ``(81, 2)`` (dlib order) in pixel
    coordinates; ``box``: the face detector box ``[x1, y1, x2, y2]`` (or ``[[x1, y1], [x2, y2]]``; see
    :func:`choose_box`), ``None`` to use the 68-point landmark box. ``train=False`` (validation) draws no
    flip, no joint augmentation and uses the fixed ``eval_margin_scale``; the blend itself stays random.
    ``params["crop"]`` is the final window ``[x0, y0, x1, y1]`` in frame coordinates (of the flipped frame
    when ``params["flipped"]``). Raises :class:`ValueError` naming ``what`` on unusable input.
    """
    image, points = _checked_frame(image, landmarks, what)
    height, width = image.shape[:2]
    face_box = _check_box(box, what) if box is not None else None

    flipped = bool(train and rng.random() < config.flip_p)
    if flipped:
        image = image[:, ::-1]
        points = flip_landmarks(points, width)
        if face_box is not None:  # edges, not pixel centres: [x1, x2) mirrors to [W - x2, W - x1)
            face_box = np.array([width - face_box[2], face_box[1], width - face_box[0], face_box[3]])

    box = landmark_box(points[:68]) if face_box is None else face_box
    cx0, cy0, cx1, cy1 = _coarse_window(points, config, height, width)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    points = points - [cx0, cy0]
    box = box - [cx0, cy0, cx0, cy0]

    sample = self_blend_face(crop, points, rng, config, what)
    real, fake, mask, source = sample.real, sample.fake, sample.mask, sample.source
    joint: list[str] = []
    if train:
        result = _seeded(_transform("joint", config), rng)(image=real, fake=fake, source=source)
        real, fake, source = result["image"], result["fake"], result["source"]
        joint = _applied(result)

    if train:
        scales = rng.uniform(config.train_margin_scale[0], config.train_margin_scale[1], size=4)
    else:
        scales = np.full(4, config.eval_margin_scale)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    margins = scales * config.box_margin * np.array([box_w, box_w, box_h, box_h])
    x0, y0, x1, y1 = _window(box, margins, *crop.shape[:2])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(
            f"{what}: the face box {(box + np.array([cx0, cy0, cx0, cy0])).tolist()} lies outside the "
            "face crop"
        )

    size = config.size
    out = [
        cv2.resize(np.ascontiguousarray(a[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_LINEAR)
        for a in (real, fake, mask, source)
    ]
    scale = np.array([size / (x1 - x0), size / (y1 - y0)])
    out_points = ((points - [x0, y0] + 0.5) * scale - 0.5).astype(np.float32)
    params = {
        "train": bool(train),
        "flipped": flipped,
        **sample.params,
        "joint_augmentation": joint,
        "margin_scales": [float(s) for s in scales],
        "crop": [int(x0 + cx0), int(y0 + cy0), int(x1 + cx0), int(y1 + cy0)],
    }
    return SelfBlendSample(out[0], out[1], out[2], out[3], out_points, params)
