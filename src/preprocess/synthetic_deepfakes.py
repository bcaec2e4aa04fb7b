"""Synthetic deepfake videos in the raw FaceForensics++ / Celeb-DF v2 layouts, generated offline in seconds.

Usage: ``python -m src.preprocess.synthetic_deepfakes OUT_DIR [--layout ffpp|celeb_df] [--pairs 8,2,2]
[--frames 12] [--width 256 --height 192] [--fps 10] [--seed 0] [--compression c23] [--methods ...]
[--detector mtcnn|none] [--masks] [--force] [--no-progress]`` (``--help`` lists all options).

**Everything here is synthetic.** Faces come from the SyntheticFaces renderer
(:mod:`src.datamodules.components.synthetic_face_renderer`); the "manipulations" are simple renderer-level
stand-ins *named after* the FF++ methods so that the detection pipeline (``src.preprocess.videos`` → train →
test → video AUC) and its protocols (within-method, cross-manipulation, cross-dataset) run on a CPU demo.
They are **not** the real Deepfakes / FaceSwap / Face2Face / NeuralTextures algorithms, and numbers measured
on this data say nothing about real deepfakes.

An *original* video is one SyntheticFaces identity (``IdentityTraits.sample(seed, identity)``) moving
smoothly in front of a static background: pose, scale and smile are interpolated between two
``ImageVariation`` samples of the identity, the mouth opens and closes as if talking, and the camera's sensor
noise changes every frame. The face oval fills 45–55 % of the frame height. A manipulated video
``<target>_<source>`` keeps the target's frames outside a face mask and replaces the inside:

- ``Deepfakes`` (identity swap, autoencoder-like): the source's face (its eyes, brows, nose, lips, glasses,
  moles, moustache; skin tone mostly the target's) drawn on the target's face layout, pose and lighting at
  **half resolution**, upsampled and blurred, colour-matched then put slightly off (a per-video colour cast
  that flickers a little from frame to frame), blended with a **soft** (feathered convex-hull) mask;
- ``FaceSwap`` (graphics swap): the same swapped face at full resolution, colour-corrected (mean matched
  inside the mask), pasted with a **hard-edged** convex-hull mask, no blur;
- ``Face2Face`` (reenactment): the target's own identity with the source's per-frame expression (smile, mouth,
  eyes, brows, gaze), re-rendered slightly smoother, without sensor noise and with a few % different
  shading, soft mask;
- ``NeuralTextures`` (mouth re-rendering): the target's own face with the source's mouth motion in the
  lower-face region only, smoothed and overlaid with a faint grid-aligned texture, soft mask;
- Celeb-DF synthesis (an unseen "dataset"): the swapped face at 3/4 resolution with a mean/std colour
  transfer and a wide feather — cleaner than any of the FF++ stand-ins.
- ``SelfBlended`` (opt-in, FF++ layout; no such folder in the real FF++): SBI applied to whole videos, each
  frame blended with a transformed copy of itself inside a softened hull of the renderer's landmarks
  (:func:`src.datamodules.components.self_blending.self_blend_frame`, one parameter draw per video); the
  ``<target>_<source>`` name is kept for the split files, the source plays no part.

Each method leaves a different artefact (blur + colour cast, hard seam, missing noise + shading, mouth-only
texture), so that training on some methods and testing on a held-out one is harder than testing within a
method, as on the real data.

Layout ``ffpp``: ``original_sequences/youtube/<c>/videos/<id>.mp4``,
``manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4`` (``masks/videos/`` too with ``--masks``),
ids ``000``, ``001``, …, ``{train,val,test}.json`` pair lists and ``conversion_dict.json`` (one made-up
YouTube id per original) at the root. Layout ``celeb_df``: ``Celeb-real/id<k>_<nnnn>.mp4``,
``YouTube-real/<nnnnn>.mp4``, ``Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4`` (target clip ``id<a>_<nnnn>``, face
of subject ``b``) and ``List_of_testing_videos.txt`` (1 = real). Both write ``synthetic_deepfakes.json``: the
settings, which identity each video shows, candidates skipped by the face check, counts and timing.

Determinism: every random draw comes from ``numpy.random.default_rng([seed, ...])``, so the same arguments
give identical frames before encoding (:func:`original_frames`, :func:`fake_frames`); the mp4 bytes may
depend on the encoder build. Face check: with ``--detector mtcnn`` (default) a candidate video in which
MTCNN misses the face in any frame is skipped (the next identity is taken, or the next clip sample for a
Celeb-DF subject) and the skip is recorded; ``--detector none`` takes every candidate. Videos are H.264
(libx264, yuv420p) with CRF 0 / 23 / 40 for ``raw`` or ``c0`` / ``c23`` / ``c40``. Exit status 0, or 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.datamodules.components.self_blending import SelfBlendConfig, self_blend_frame
from src.datamodules.components.synthetic_face_renderer import (
    RGB,
    IdentityTraits,
    ImageVariation,
    face_landmarks,
    face_to_pixels,
    render_face,
)
from src.datamodules.components.video_index import (
    CELEB_DF_TEST_LIST,
    FFPP_COMPRESSIONS,
    FFPP_EXTRA_METHODS,
    FFPP_SPLITS,
)

FFPP_SYNTHETIC_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
CELEB_DF_METHOD = "CelebSynthesis"
SELF_BLENDED_METHOD = FFPP_EXTRA_METHODS[0]  # "SelfBlended": SBI applied to whole videos
# Appended, never reordered: a method's position seeds its random draws.
METHODS = (*FFPP_SYNTHETIC_METHODS, CELEB_DF_METHOD, SELF_BLENDED_METHOD)
FFPP_LAYOUT_METHODS = (*FFPP_SYNTHETIC_METHODS, SELF_BLENDED_METHOD)
LAYOUTS = ("ffpp", "celeb_df")
CRF = {"raw": 0, "c0": 0, "c23": 23, "c40": 40}
INFO_FILE = "synthetic_deepfakes.json"
CONVERSION_FILE = "conversion_dict.json"
DETECTORS = ("mtcnn", "none")
MIN_SIDE, MAX_SIDE = 32, 2048
MAX_CANDIDATES_FACTOR = 4  # face check: give up after trying this many candidates per wanted video

# First entries of the ``default_rng([seed, TAG, ...])`` keys, one per kind of draw.
_TAG_MOTION, _TAG_FAKE, _TAG_YOUTUBE_ID = 1, 2, 3
# Celeb-DF identities live far from the FF++ ones (identity numbers start at 0 there).
CELEB_SUBJECT_BASE = 1_000_000
CELEB_YOUTUBE_BASE = 2_000_000
_YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- framing and motion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    """A ``width × height`` frame cut from the middle of a square render of side ``max(width, height)``."""

    width: int
    height: int

    @property
    def side(self) -> int:
        """Side of the square canvas the renderer draws."""
        return max(self.width, self.height)

    @property
    def x0(self) -> int:
        """First canvas column of the frame."""
        return (self.side - self.width) // 2

    @property
    def y0(self) -> int:
        """First canvas row of the frame."""
        return (self.side - self.height) // 2

    def crop(self, canvas: np.ndarray) -> np.ndarray:
        """The frame's window of a ``[side, side, ...]`` canvas."""
        return canvas[self.y0 : self.y0 + self.height, self.x0 : self.x0 + self.width]

    def render(self, traits: IdentityTraits, variation: ImageVariation, scale: float = 1.0) -> np.ndarray:
        """``render_face`` on the square canvas (at ``scale`` of its resolution, resized back), cropped."""
        if scale == 1.0:
            return self.crop(render_face(traits, variation, self.side))
        small = render_face(traits, variation, max(round(self.side * scale), 8))
        return self.crop(cv2.resize(small, (self.side, self.side), interpolation=cv2.INTER_LINEAR))

    def to_pixels(self, traits: IdentityTraits, variation: ImageVariation, uv: np.ndarray) -> np.ndarray:
        """Face coordinates ``(u, v)`` → frame pixels ``(x, y)`` (the renderer's pose transform)."""
        return face_to_pixels(traits, variation, uv, self.side) - [self.x0, self.y0]

    def face_pixels(self, traits: IdentityTraits, variation: ImageVariation) -> float:
        """Height of the face oval in pixels."""
        return 2.0 * traits.face_height * variation.scale * traits.face_size * self.side / 2.0


@dataclass(frozen=True)
class VideoPlan:
    """One original video: the identity, its traits and one framed ``ImageVariation`` per frame."""

    identity: int
    sample: int
    traits: IdentityTraits
    variations: tuple[ImageVariation, ...]
    framing: Framing


_EXPRESSION_FIELDS = ("smile", "mouth_open", "eye_open", "gaze_x", "gaze_y", "brow_raise")
_MOUTH_FIELDS = ("smile", "mouth_open")


def plan_video(seed: int, identity: int, sample: int, frames: int, framing: Framing) -> VideoPlan:
    """The per-frame variations of the video of ``identity`` starting from image ``sample``.

    Background, lighting and colour come from ``ImageVariation.sample(seed, identity, sample)``; pose, scale
    and smile move half-way towards sample ``sample + 1`` along an ease-in-out curve; the mouth opens and
    closes (talking) and every frame gets fresh sensor noise. The face oval fills 45–55 % of the frame height.
    """
    traits = IdentityTraits.sample(seed, identity)
    v0 = ImageVariation.sample(seed, identity, sample)
    v1 = ImageVariation.sample(seed, identity, sample + 1)
    rng = np.random.default_rng([seed, _TAG_MOTION, identity, sample])
    fraction = rng.uniform(0.45, 0.55)
    base_scale = fraction * framing.height / (traits.face_height * traits.face_size * framing.side)
    scale_drift = rng.uniform(-0.04, 0.04)
    x_range = 0.12 * framing.width / framing.side
    shift_x0 = float(np.clip(v0.shift_x * 1.5, -x_range, x_range))
    shift_x1 = float(np.clip(shift_x0 + rng.uniform(-0.06, 0.06), -x_range, x_range))
    talk_rate = rng.uniform(0.1, 0.18)  # mouth cycles per frame
    talk_phase = rng.uniform(0.0, 2.0 * math.pi)
    talk_amount = rng.uniform(0.4, 1.0)
    noise_seeds = rng.integers(0, 2**31, size=frames)
    variations = []
    for i in range(frames):
        t = i / (frames - 1) if frames > 1 else 0.0
        e = 0.5 * (0.5 - 0.5 * math.cos(math.pi * t))  # ease in-out, half-way towards v1

        def lerp(a: float, b: float, e: float = e) -> float:
            return a + (b - a) * e

        mouth = talk_amount * max(0.0, 0.6 * math.sin(2.0 * math.pi * talk_rate * i + talk_phase) - 0.1)
        variations.append(
            replace(
                v0,
                rotation_deg=lerp(0.6 * v0.rotation_deg, 0.6 * v1.rotation_deg),
                shift_x=lerp(shift_x0, shift_x1),
                shift_y=lerp(0.8 * v0.shift_y, 0.8 * v1.shift_y),
                scale=base_scale * (1.0 + scale_drift * e * 2.0),
                yaw=lerp(0.8 * v0.yaw, 0.8 * v1.yaw),
                pitch=lerp(0.6 * v0.pitch, 0.6 * v1.pitch),
                smile=lerp(v0.smile, v1.smile),
                mouth_open=min(1.0, mouth),
                eye_open=max(v0.eye_open, 0.6),
                gaze_x=lerp(v0.gaze_x, v1.gaze_x),
                gaze_y=lerp(v0.gaze_y, v1.gaze_y),
                brow_raise=lerp(v0.brow_raise, v1.brow_raise),
                noise_seed=int(noise_seeds[i]),
            )
        )
    return VideoPlan(identity, sample, traits, tuple(variations), framing)


def original_frames(plan: VideoPlan) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 RGB frames of an original video (deterministic)."""
    return np.stack([plan.framing.render(plan.traits, var) for var in plan.variations])


# --- masks --------------------------------------------------------------------------------------------------


def _inner_face_points(traits: IdentityTraits, var: ImageVariation) -> np.ndarray:
    """Face-space points around brows, eyes, nose, mouth and chin (the "landmarks" the masks are built on)."""
    tr, yaw = traits, var.yaw
    mid = yaw * 0.07
    reach = tr.eye_spacing + max(tr.brow_length, tr.eye_width * 1.6) + 0.01
    top = tr.eye_y - tr.eye_width * tr.eye_height - tr.brow_gap - tr.brow_thickness - 0.015
    mx, my = yaw * 0.085, tr.mouth_y + var.pitch * 0.03
    mw = tr.mouth_width * 1.2 + 0.04
    pts = [
        (mid - reach, top),
        (mid + reach, top),
        (mid - reach, tr.eye_y + 0.06),
        (mid + reach, tr.eye_y + 0.06),
        (mx - mw, my),
        (mx + mw, my),
        (mx - mw * 0.6, my + 0.08),
        (mx + mw * 0.6, my + 0.08),
    ]
    return np.asarray(pts, dtype=np.float64)


def _mouth_points(traits: IdentityTraits, var: ImageVariation) -> np.ndarray:
    """Face-space points around the lower face: below the nose, around the mouth, the chin."""
    tr, yaw = traits, var.yaw
    mx, my = yaw * 0.085, tr.mouth_y + var.pitch * 0.03
    nx, ny = yaw * 0.1, tr.eye_y + tr.nose_length + var.pitch * 0.03
    mw = tr.mouth_width * 1.25 + 0.03
    pts = [
        (nx - tr.nose_width, ny + 0.025),
        (nx + tr.nose_width, ny + 0.025),
        (mx - mw, my - 0.03),
        (mx + mw, my - 0.03),
        (mx - mw, my + 0.04),
        (mx + mw, my + 0.04),
        (mx - mw * 0.6, my + 0.09),
        (mx + mw * 0.6, my + 0.09),
    ]
    return np.asarray(pts, dtype=np.float64)


def _hull_mask(points: np.ndarray, framing: Framing) -> np.ndarray:
    """Binary ``[H, W]`` float32 mask of the convex hull of pixel ``points`` (hard edge)."""
    mask = np.zeros((framing.height, framing.width), dtype=np.uint8)
    hull = cv2.convexHull(np.round(points * 16.0).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def _feather(mask: np.ndarray, erode_px: float, sigma_px: float) -> np.ndarray:
    """``mask`` eroded by ``erode_px``, then Gaussian-blurred with ``sigma_px`` (exact zeros far out)."""
    radius = round(erode_px)
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.erode(mask, kernel)
    if sigma_px > 0:
        k = 2 * math.ceil(3.0 * sigma_px) + 1
        mask = cv2.GaussianBlur(mask, (k, k), sigma_px, borderType=cv2.BORDER_CONSTANT)
    return np.clip(mask, 0.0, 1.0)


def _blend(base: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``base + mask * (face - base)`` rounded to uint8; pixels with ``mask == 0`` keep ``base`` exactly."""
    b = base.astype(np.float32)
    out = b + mask[..., None] * (face.astype(np.float32) - b)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _masked_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``image`` weighted by ``mask``."""
    w = mask[..., None].astype(np.float64)
    total = max(float(w.sum()), 1e-6)
    mean = (image * w).sum(axis=(0, 1)) / total
    var = (((image - mean) ** 2) * w).sum(axis=(0, 1)) / total
    return mean, np.sqrt(var) + 1e-3


def face_landmarks68(plan: VideoPlan, i: int) -> np.ndarray:
    """dlib-ordered 68 landmarks ``(68, 2)`` in pixels of frame ``i``, from the renderer's geometry
    (:func:`~src.datamodules.components.synthetic_face_renderer.face_landmarks`)."""
    fr = plan.framing
    return face_landmarks(plan.traits, plan.variations[i], fr.side) - [fr.x0, fr.y0]


def self_blended_frames(
    target: VideoPlan, seed: int, base: np.ndarray, config: SelfBlendConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``SelfBlended`` fake of ``target``: every frame self-blended (SBI) inside a landmark hull.

    One generator key per video, re-created for every frame, so the hull type, the source transforms and
    the blend ratio are the same in all frames (a per-video manipulation, as a face swap is).
    """
    config = config or SelfBlendConfig()
    key = [seed, _TAG_FAKE, METHODS.index(SELF_BLENDED_METHOD), target.identity, target.sample]
    frames, masks = [], []
    for i in range(len(target.variations)):
        sample = self_blend_frame(
            base[i], face_landmarks68(target, i), np.random.default_rng(key), config, what=f"frame {i}"
        )
        frames.append(sample.fake)
        masks.append(sample.mask)
    return np.stack(frames), np.stack(masks)


# --- manipulations ------------------------------------------------------------------------------------------


# Traits that place the face and its parts: a swap keeps the target's (as a real swap follows the target's
# landmarks and keeps its face outline) and takes the rest (colours, part shapes, glasses) from the source.
_LAYOUT_TRAITS = (
    "face_size",
    "face_width",
    "face_height",
    "jaw",
    "forehead",
    "eye_spacing",
    "eye_y",
    "nose_length",
    "mouth_y",
    "ear_size",
)


def _rgb(values: np.ndarray) -> RGB:
    arr = np.clip(values, 0.0, 1.0)
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def swap_traits(target: IdentityTraits, source: IdentityTraits) -> IdentityTraits:
    """The face pasted by the identity swaps: the source's appearance on the target's face layout.

    The skin tone is mostly the target's (80 %; swaps match skin colour, and a face with a foreign skin tone
    inside the mask is often not even detected). Hair that could fall over the face (fringe, side hair) and
    the beard, which the mask would cut at the jaw, are removed: only the inner face is pasted.
    """
    layout = {name: getattr(target, name) for name in _LAYOUT_TRAITS}
    skin = 0.8 * np.asarray(target.skin_rgb) + 0.2 * np.asarray(source.skin_rgb)
    lips = np.asarray(source.lip_rgb) * skin / np.maximum(np.asarray(source.skin_rgb), 1e-3)
    return replace(
        source,
        **layout,
        skin_rgb=_rgb(skin),
        lip_rgb=_rgb(lips),
        hairline=-0.5,
        fringe_dip=0.0,
        fringe_tilt=0.0,
        hair_side_length=-0.3,
        beard=False,
    )


def _expression_from(var: ImageVariation, other: ImageVariation, fields: tuple[str, ...]) -> ImageVariation:
    """``var`` with ``fields`` taken from ``other``."""
    return replace(var, **{name: getattr(other, name) for name in fields})


def _union_points(target: VideoPlan, source: VideoPlan | None, i: int, fn: Callable) -> np.ndarray:
    """Pixel points of ``fn`` for the target face and, for swaps, the swapped face drawn in its place."""
    fr = target.framing
    var = target.variations[i]
    pts = [fr.to_pixels(target.traits, var, fn(target.traits, var))]
    if source is not None:
        swapped = swap_traits(target.traits, source.traits)
        pts.append(fr.to_pixels(swapped, var, fn(swapped, var)))
    return np.concatenate(pts)


def fake_frames(
    method: str, target: VideoPlan, source: VideoPlan, seed: int, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[T, H, W, 3]`` uint8 and blend masks ``[T, H, W]`` float32 of the fake ``target_source``.

    ``base`` (the target's :func:`original_frames`, recomputed when None) supplies every pixel where the
    mask is 0. Deterministic: a function of the arguments only.
    """
    if method not in METHODS:
        raise ValueError(f"unknown synthetic method {method!r}; choose from {list(METHODS)}")
    if len(source.variations) < len(target.variations):
        raise ValueError("the source video has fewer frames than the target")
    if base is None:
        base = original_frames(target)
    if method == SELF_BLENDED_METHOD:  # the source is not used: the target is blended with itself
        return self_blended_frames(target, seed, base)
    fr = target.framing
    rng = np.random.default_rng(
        [
            seed,
            _TAG_FAKE,
            METHODS.index(method),
            target.identity,
            target.sample,
            source.identity,
            source.sample,
        ]
    )
    gain = 1.0 + rng.uniform(0.04, 0.08, 3) * rng.choice([-1.0, 1.0], 3)  # Deepfakes colour mismatch
    flicker = rng.normal(0.0, 0.01, (len(target.variations), 3))
    shade = 1.0 + rng.uniform(0.03, 0.06) * rng.choice([-1.0, 1.0])  # Face2Face shading mismatch
    yy, xx = np.mgrid[0 : fr.height, 0 : fr.width]
    texture = (5.0 * np.cos(0.5 * math.pi * xx) * np.cos(0.5 * math.pi * yy)).astype(np.float32)
    frames, masks = [], []
    for i, var in enumerate(target.variations):
        face_px = fr.face_pixels(target.traits, var)
        target_frame = base[i]
        if method in ("Deepfakes", "FaceSwap", CELEB_DF_METHOD):
            hull = _hull_mask(_union_points(target, source, i, _inner_face_points), fr)
            swapped = swap_traits(target.traits, source.traits)
            if method == "Deepfakes":
                face = fr.render(swapped, var, scale=0.5).astype(np.float32)
                face = cv2.GaussianBlur(face, (0, 0), max(0.4, face_px * 0.006))
                mean_t, _ = _masked_stats(target_frame.astype(np.float32), hull)
                mean_f, _ = _masked_stats(face, hull)
                face = (face - mean_f + mean_t) * (gain + flicker[i])  # matched, then slightly off
                face = face.astype(np.float32)
                mask = _feather(hull, face_px * 0.03, face_px * 0.035)
            elif method == "FaceSwap":
                face = fr.render(swapped, var).astype(np.float32)
                mean_t, _ = _masked_stats(target_frame.astype(np.float32), hull)
                mean_f, _ = _masked_stats(face, hull)
                face += (mean_t - mean_f).astype(np.float32)
                mask = hull
            else:  # Celeb-DF synthesis: cleaner swap, colour transfer, wide feather
                face = fr.render(swapped, var, scale=0.75).astype(np.float32)
                mean_t, std_t = _masked_stats(target_frame.astype(np.float32), hull)
                mean_f, std_f = _masked_stats(face, hull)
                face = ((face - mean_f) * (std_t / std_f) + mean_t).astype(np.float32)
                mask = _feather(hull, face_px * 0.05, face_px * 0.07)
        else:
            other = source.variations[i]
            if method == "Face2Face":
                rvar = _expression_from(var, other, _EXPRESSION_FIELDS)
                rvar = replace(
                    rvar,
                    noise_sigma=0.0,
                    light_strength=var.light_strength * 0.5,
                    brightness=var.brightness * shade,
                )
                face = fr.render(target.traits, rvar).astype(np.float32)
                face = cv2.GaussianBlur(face, (0, 0), max(0.4, face_px * 0.005))
                hull = _hull_mask(_union_points(target, None, i, _inner_face_points), fr)
                mask = _feather(hull, face_px * 0.02, face_px * 0.03)
            else:  # NeuralTextures
                rvar = _expression_from(var, other, _MOUTH_FIELDS)
                face = fr.render(target.traits, rvar).astype(np.float32)
                face = cv2.GaussianBlur(face, (0, 0), max(0.5, face_px * 0.01)) + texture[..., None]
                hull = _hull_mask(_union_points(target, None, i, _mouth_points), fr)
                mask = _feather(hull, face_px * 0.01, face_px * 0.025)
        frames.append(_blend(target_frame, face, mask))
        masks.append(mask.astype(np.float32))
    return np.stack(frames), np.stack(masks)


# --- encoding -----------------------------------------------------------------------------------------------


def write_video(
    path: Path, frames_rgb: np.ndarray, fps: int = 10, crf: int = 23, preset: str = "veryfast"
) -> None:
    """Write ``[T, H, W, 3]`` uint8 RGB frames as an H.264 (libx264, yuv420p) mp4 with PyAV."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = int(frames_rgb.shape[2]), int(frames_rgb.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": preset}
        for frame in frames_rgb:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))


def _mask_video(masks: np.ndarray) -> np.ndarray:
    """Binary mask frames as grey RGB (255 where the fake differs from the target)."""
    binary = np.where(masks > 0, 255, 0).astype(np.uint8)
    return np.repeat(binary[..., None], 3, axis=3)


# --- face check ---------------------------------------------------------------------------------------------

FaceCheck = Callable[[list[np.ndarray]], list[bool]]


def mtcnn_check() -> FaceCheck:
    """A check that says, per frame, whether MTCNN (``src.face.detection``) finds a face in it."""
    import torch

    from src.face.detection import build_detector

    detector = build_detector("mtcnn")

    def check(frames: list[np.ndarray]) -> list[bool]:
        # One thread: on a busy small CPU, torch's OpenMP threads spinning against other work made MTCNN on
        # these small frames 2-4x slower than a single thread.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [len(d) > 0 for d in detector.detect_batch(frames)]
        finally:
            torch.set_num_threads(threads)

    return check


def _build_check(detector: str | FaceCheck | None) -> FaceCheck | None:
    if callable(detector):
        return detector
    if detector in (None, "none"):
        return None
    if detector != "mtcnn":
        raise ValueError(f"detector must be one of {list(DETECTORS)}, got {detector!r}")
    try:
        return mtcnn_check()
    except ImportError as error:
        raise ValueError(
            f"the MTCNN face check needs facenet-pytorch ({error}); use --detector none"
        ) from error


def _detector_name(detector: str | FaceCheck | None) -> str:
    if callable(detector):
        return getattr(detector, "__name__", "custom")
    return detector or "none"


def _select(
    candidates: Iterator[tuple[int, int]],
    wanted: int,
    seed: int,
    frames: int,
    framing: Framing,
    check: FaceCheck | None,
    skipped: list[dict[str, int]],
    what: str,
) -> list[VideoPlan]:
    """The first ``wanted`` candidates ``(identity, sample)`` where ``check`` finds a face in every frame."""
    plans: list[VideoPlan] = []
    for tried, (identity, sample) in enumerate(candidates):
        if len(plans) == wanted:
            break
        if tried >= max(wanted * MAX_CANDIDATES_FACTOR, wanted + 8):
            raise ValueError(
                f"the face check rejected too many {what} candidates ({len(skipped)} of {tried}); "
                "try a larger --height or --detector none"
            )
        plan = plan_video(seed, identity, sample, frames, framing)
        if check is not None and not all(check(list(original_frames(plan)))):
            skipped.append({"identity": identity, "sample": sample})
            continue
        plans.append(plan)
    return plans


# --- datasets -----------------------------------------------------------------------------------------------


def _check_common(frames: int, size: tuple[int, int], fps: int, seed: int, compression: str) -> Framing:
    for name, value in (("frames", frames), ("fps", fps), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not 1 <= fps <= 240:
        raise ValueError(f"fps must be in [1, 240], got {fps}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if len(size) != 2:
        raise ValueError(f"size must be (width, height), got {size!r}")
    width, height = (int(v) for v in size)
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE or value % 2:
            raise ValueError(
                f"{name} must be an even number in [{MIN_SIDE}, {MAX_SIDE}] (H.264 4:2:0), got {value}"
            )
    if compression not in CRF:
        raise ValueError(f"compression must be one of {list(FFPP_COMPRESSIONS)}, got {compression!r}")
    return Framing(width, height)


def _youtube_id(seed: int, identity: int) -> str:
    """A made-up 11-character YouTube-like id for ``identity``."""
    rng = np.random.default_rng([seed, _TAG_YOUTUBE_ID, identity])
    return "".join(_YOUTUBE_ALPHABET[i] for i in rng.integers(0, len(_YOUTUBE_ALPHABET), 11))


def _prepare_root(root: Path, force: bool) -> Path:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ValueError(f"{root} is not empty; choose a new directory or pass force=True (--force)")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc=desc, disable=not enabled)


def make_synthetic_ffpp(
    root: Path,
    pairs: Sequence[int] = (8, 2, 2),
    frames: int = 12,
    size: tuple[int, int] = (256, 192),
    fps: int = 10,
    seed: int = 0,
    methods: Sequence[str] = FFPP_SYNTHETIC_METHODS,
    compression: str = "c23",
    detector: str | FaceCheck | None = "mtcnn",
    masks: bool = False,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Write a synthetic FaceForensics++ copy under ``root``; returns the summary (also in the info file).

    ``pairs``: number of ``[a, b]`` pairs in train, val and test (each pair = 2 originals + 2 fakes per
    method); ``size``: ``(width, height)``; ``methods``: a subset of :data:`FFPP_SYNTHETIC_METHODS`;
    ``detector``: ``"mtcnn"`` skips candidate identities in any of whose frames MTCNN finds no face,
    ``None`` / ``"none"`` takes identities 0, 1, 2, … (a callable ``frames -> [found, ...]`` is used as
    the check); ``masks`` also writes
    ``<method>/masks/videos/<name>.mp4``.
    Raises ``ValueError`` on bad arguments (nothing written).
    """
    start = time.perf_counter()
    framing = _check_common(frames, size, fps, seed, compression)
    pairs = tuple(pairs)
    if len(pairs) != 3 or any(
        isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0 for n in pairs
    ):
        raise ValueError(f"pairs must be three non-negative integers (train, val, test), got {pairs!r}")
    if sum(pairs) < 1:
        raise ValueError("pairs must contain at least one pair")
    methods = tuple(methods)
    unknown = [m for m in methods if m not in FFPP_LAYOUT_METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(
            f"methods must be distinct names from {list(FFPP_LAYOUT_METHODS)} (synthetic stand-ins; "
            f"there is none for FaceShifter), got {list(methods)}"
        )
    check = _build_check(detector)
    root = _prepare_root(root, force)
    n_videos = 2 * sum(pairs)
    skipped: list[dict[str, int]] = []
    plans = _select(
        ((identity, 0) for identity in range(10**6)),
        n_videos,
        seed,
        frames,
        framing,
        check,
        skipped,
        "identity",
    )
    ids = [f"{i:03d}" for i in range(n_videos)]
    split_pairs: dict[str, list[list[str]]] = {}
    position = 0
    for split, count in zip(FFPP_SPLITS, pairs, strict=True):
        split_pairs[split] = [[ids[position + 2 * k], ids[position + 2 * k + 1]] for k in range(count)]
        position += 2 * count
    crf = CRF[compression]
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    counts = {split: {"youtube": 0, **dict.fromkeys(methods, 0)} for split in FFPP_SPLITS}
    total = n_videos * (1 + len(methods))
    with _progress(total, progress, "synthetic FF++") as bar:
        cache: dict[str, np.ndarray] = {}
        for split, split_list in split_pairs.items():
            for a, b in split_list:
                for name in (a, b):
                    cache[name] = original_frames(plans[int(name)])
                    write_video(originals / f"{name}.mp4", cache[name], fps, crf)
                    counts[split]["youtube"] += 1
                    bar.update()
                for target, source in ((a, b), (b, a)):
                    for method in methods:
                        video, mask = fake_frames(
                            method, plans[int(target)], plans[int(source)], seed, base=cache[target]
                        )
                        folder = root / "manipulated_sequences" / method
                        write_video(
                            folder / compression / "videos" / f"{target}_{source}.mp4", video, fps, crf
                        )
                        if masks:
                            write_video(
                                folder / "masks" / "videos" / f"{target}_{source}.mp4", _mask_video(mask), fps
                            )
                        counts[split][method] += 1
                        bar.update()
                del cache[a], cache[b]
    for split, split_list in split_pairs.items():
        (root / f"{split}.json").write_text(json.dumps(split_list) + "\n")
    conversion = {vid: f"{_youtube_id(seed, plan.identity)} 0" for vid, plan in zip(ids, plans, strict=True)}
    (root / CONVERSION_FILE).write_text(json.dumps(conversion, indent=1) + "\n")
    summary = {
        "layout": "ffpp",
        "note": "synthetic stand-ins named after the FF++ methods, not the real algorithms",
        "settings": {
            "pairs": list(pairs),
            "frames": frames,
            "width": framing.width,
            "height": framing.height,
            "fps": fps,
            "seed": seed,
            "methods": list(methods),
            "compression": compression,
            "detector": _detector_name(detector),
            "masks": masks,
        },
        "videos": counts,
        "total_videos": total,
        "identities": {
            vid: {"identity": p.identity, "sample": p.sample} for vid, p in zip(ids, plans, strict=True)
        },
        "skipped_candidates": skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    (root / INFO_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def make_synthetic_celeb_df(
    root: Path,
    subjects: int = 6,
    clips: int = 2,
    youtube: int = 4,
    fakes_per_clip: int = 2,
    test_subjects: int = 2,
    frames: int = 12,
    size: tuple[int, int] = (256, 192),
    fps: int = 10,
    seed: int = 0,
    compression: str = "c23",
    detector: str | FaceCheck | None = "mtcnn",
    progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Write a synthetic Celeb-DF v2 copy under ``root``; returns the summary (also in the info file).

    ``subjects`` celebrities with ``clips`` real clips each (``Celeb-real/id<k>_<nnnn>.mp4``), ``youtube``
    extra real videos (``YouTube-real/<nnnnn>.mp4``) and ``fakes_per_clip`` swaps per real clip
    (``Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4``, faces of subjects ``a+1``, ``a+2``, …). The test list holds
    the clips and fakes of the last ``test_subjects`` subjects and the second half of the YouTube videos.
    Identities are disjoint from :func:`make_synthetic_ffpp`'s. ``compression`` only sets the CRF.
    """
    start = time.perf_counter()
    framing = _check_common(frames, size, fps, seed, compression)
    counts_in = {
        "subjects": subjects,
        "clips": clips,
        "youtube": youtube,
        "fakes_per_clip": fakes_per_clip,
        "test_subjects": test_subjects,
    }
    for name, value in counts_in.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if subjects < 2 or clips < 1:
        raise ValueError(
            f"need subjects >= 2 and clips >= 1 (a swap needs two subjects), got {subjects}, {clips}"
        )
    if fakes_per_clip > subjects - 1:
        raise ValueError(f"fakes_per_clip must be <= subjects - 1 = {subjects - 1}, got {fakes_per_clip}")
    if test_subjects > subjects:
        raise ValueError(f"test_subjects must be <= subjects = {subjects}, got {test_subjects}")
    if test_subjects == 0 and youtube < 2:
        raise ValueError("the test list would be empty: use test_subjects >= 1 or youtube >= 2")
    check = _build_check(detector)
    root = _prepare_root(root, force)
    skipped: list[dict[str, int]] = []
    subject_clips: list[list[VideoPlan]] = []
    for k in range(subjects):
        identity = CELEB_SUBJECT_BASE + k
        candidates = ((identity, 2 * j) for j in range(10**6))
        subject_clips.append(_select(candidates, clips, seed, frames, framing, check, skipped, "clip"))
    youtube_plans = _select(
        ((CELEB_YOUTUBE_BASE + k, 0) for k in range(10**6)),
        youtube,
        seed,
        frames,
        framing,
        check,
        skipped,
        "identity",
    )
    crf = CRF[compression]
    test_lines: list[str] = []
    counts = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 0}
    test_counts = dict.fromkeys(counts, 0)
    total = subjects * clips * (1 + fakes_per_clip) + youtube
    identities: dict[str, dict[str, int]] = {}
    with _progress(total, progress, "synthetic Celeb-DF") as bar:

        def emit(folder: str, name: str, video: np.ndarray, test: bool, plan: VideoPlan) -> None:
            write_video(root / folder / f"{name}.mp4", video, fps, crf)
            identities[f"{folder}/{name}"] = {"identity": plan.identity, "sample": plan.sample}
            counts[folder] += 1
            if test:
                test_counts[folder] += 1
                test_lines.append(f"{0 if folder == 'Celeb-synthesis' else 1} {folder}/{name}.mp4")
            bar.update()

        for k in range(subjects):
            test = k >= subjects - test_subjects
            for j, plan in enumerate(subject_clips[k]):
                real = original_frames(plan)
                emit("Celeb-real", f"id{k}_{j:04d}", real, test, plan)
                for f in range(fakes_per_clip):
                    b = (k + 1 + f) % subjects
                    source = subject_clips[b][j]
                    video, _ = fake_frames(CELEB_DF_METHOD, plan, source, seed, base=real)
                    emit("Celeb-synthesis", f"id{k}_id{b}_{j:04d}", video, test, plan)
        for n, plan in enumerate(youtube_plans):
            emit("YouTube-real", f"{n:05d}", original_frames(plan), n >= youtube - youtube // 2, plan)
    (root / CELEB_DF_TEST_LIST).write_text("\n".join(test_lines) + "\n")
    summary = {
        "layout": "celeb_df",
        "note": "synthetic stand-in for Celeb-DF v2 (one swap method distinct from the FF++ stand-ins)",
        "settings": {
            **counts_in,
            "frames": frames,
            "width": framing.width,
            "height": framing.height,
            "fps": fps,
            "seed": seed,
            "compression": compression,
            "detector": _detector_name(detector),
        },
        "videos": counts,
        "test_videos": test_counts,
        "total_videos": total,
        "identities": identities,
        "skipped_candidates": skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    (root / INFO_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# --- command line -------------------------------------------------------------------------------------------


def _int_triple(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three integers like 8,2,2, got {text!r}") from None
    if len(values) != 3 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected three non-negative integers like 8,2,2, got {text!r}")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m src.preprocess.synthetic_deepfakes",
        description="Write a small synthetic deepfake video dataset in the raw FF++ or Celeb-DF v2 layout "
        "(synthetic stand-ins named after the FF++ methods, not the real algorithms).",
    )
    parser.add_argument(
        "out_dir", type=Path, help="dataset root to create (e.g. data/synthetic/FaceForensics++)"
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="ffpp")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--width", type=int, default=256, help="frame width, even (default 256)")
    parser.add_argument("--height", type=int, default=192, help="frame height, even (default 192)")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compression", choices=sorted(CRF), default="c23", help="raw|c0 (CRF 0), c23, c40 (default c23)"
    )
    parser.add_argument("--detector", choices=DETECTORS, default="mtcnn", help="face check on candidates")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty OUT_DIR (same names are replaced)"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    ffpp = parser.add_argument_group("ffpp layout")
    ffpp.add_argument("--pairs", type=_int_triple, default=None, help="train,val,test pairs (default 8,2,2)")
    ffpp.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help=f"subset of {' '.join(FFPP_LAYOUT_METHODS)} (default: the four FF++ stand-ins)",
    )
    ffpp.add_argument("--masks", action="store_true", help="also write <method>/masks/videos/*.mp4")
    celeb = parser.add_argument_group("celeb_df layout")
    celeb.add_argument("--subjects", type=int, default=None, help="celebrities (default 6)")
    celeb.add_argument("--clips", type=int, default=None, help="real clips per subject (default 2)")
    celeb.add_argument("--youtube", type=int, default=None, help="YouTube-real videos (default 4)")
    celeb.add_argument("--fakes-per-clip", type=int, default=None, help="swaps per real clip (default 2)")
    celeb.add_argument(
        "--test-subjects", type=int, default=None, help="subjects in the test list (default 2)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; 0, or 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    common = dict(
        frames=args.frames,
        size=(args.width, args.height),
        fps=args.fps,
        seed=args.seed,
        compression=args.compression,
        detector=args.detector,
        progress=args.progress,
        force=args.force,
    )
    ffpp_only = {"--pairs": args.pairs, "--methods": args.methods, "--masks": args.masks or None}
    celeb_only = {
        "--subjects": args.subjects,
        "--clips": args.clips,
        "--youtube": args.youtube,
        "--fakes-per-clip": args.fakes_per_clip,
        "--test-subjects": args.test_subjects,
    }
    wrong = [k for k, v in (celeb_only if args.layout == "ffpp" else ffpp_only).items() if v is not None]
    if wrong:
        parser.error(f"{', '.join(wrong)} do(es) not apply to --layout {args.layout}")
    try:
        if args.layout == "ffpp":
            summary = make_synthetic_ffpp(
                args.out_dir,
                pairs=args.pairs or (8, 2, 2),
                methods=tuple(args.methods or FFPP_SYNTHETIC_METHODS),
                masks=args.masks,
                **common,
            )
        else:
            options = {k.lstrip("-").replace("-", "_"): v for k, v in celeb_only.items() if v is not None}
            summary = make_synthetic_celeb_df(args.out_dir, **options, **common)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    skipped = len(summary["skipped_candidates"])
    print(
        f"wrote {summary['total_videos']} synthetic videos ({args.layout}) to {args.out_dir} in "
        f"{summary['seconds']:.1f} s; {skipped} candidate(s) skipped by the face check"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
