"""Procedural renderer of face-like images for the SyntheticFaces dataset (no download, fully deterministic).

An identity is a set of :class:`IdentityTraits` (face shape, skin, hair, eyes, brows, nose, mouth,
glasses/beard) drawn from ``numpy.random.default_rng([seed, identity])``; every image of it adds an
:class:`ImageVariation` (pose, lighting, expression, background, sensor noise) drawn from
``default_rng([seed, identity, sample])``. :func:`render_face` paints the pair with vectorised numpy on a
continuous coordinate grid: every part is a signed-distance shape whose edge is anti-aliased over one
pixel, so the same face renders at any resolution and the same inputs always give identical bytes.
:func:`face_parsing` returns the parts of a render from the same shapes (per-class coverage, a label map in
the face-parsing ids of makeup-transfer data, soft zones around the eyes and on the cheeks).

Coordinates: the image spans ``[-1, 1]`` on both axes (x right, y down). Face coordinates ``(u, v)``
are the image coordinates after undoing the pose (shift, rotation, scale); the face oval is centred at
their origin, roughly 0.8 wide and 1.05 tall. All trait lengths are in face units.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from src.face.face_hulls import mean_face_landmarks68, mean_face_landmarks81

MIN_SIZE = 8
MAX_SIZE = 4096

_SKIN_TONES = np.array(
    [
        (0.98, 0.87, 0.78),
        (0.95, 0.78, 0.65),
        (0.86, 0.65, 0.50),
        (0.72, 0.52, 0.38),
        (0.55, 0.38, 0.26),
        (0.38, 0.25, 0.17),
    ]
)
_HAIR_COLOURS = np.array(
    [
        (0.07, 0.06, 0.05),  # black
        (0.22, 0.14, 0.09),  # dark brown
        (0.42, 0.27, 0.15),  # brown
        (0.80, 0.66, 0.40),  # blond
        (0.58, 0.24, 0.10),  # red
        (0.62, 0.62, 0.62),  # grey
        (0.92, 0.90, 0.86),  # white
    ]
)
_HAIR_WEIGHTS = (0.26, 0.24, 0.18, 0.12, 0.08, 0.08, 0.04)
_EYE_COLOURS = np.array(
    [
        (0.28, 0.16, 0.08),  # brown
        (0.14, 0.09, 0.05),  # dark brown
        (0.25, 0.45, 0.75),  # blue
        (0.25, 0.55, 0.35),  # green
        (0.50, 0.56, 0.62),  # grey
        (0.50, 0.40, 0.18),  # hazel
    ]
)
_GLASSES_COLOURS = ((0.05, 0.05, 0.05), (0.32, 0.18, 0.08), (0.72, 0.72, 0.75), (0.55, 0.1, 0.12))

RGB = tuple[float, float, float]


def _rgb(values: np.ndarray | tuple[float, ...]) -> RGB:
    """A colour as a plain float tuple clipped to [0, 1] (dataclass fields stay hashable and printable)."""
    arr = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _check_index(name: str, value: int) -> int:
    """Seeds and indices feed ``numpy.random.SeedSequence`` and must be non-negative integers."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


class _Draws:
    """Sequential draws from one pre-generated block of numbers.

    One generator call per parameter costs microseconds each; a block keeps sampling a few tens of
    microseconds while staying a pure function of the generator's seed.
    """

    def __init__(self, rng: np.random.Generator, n_uniform: int = 96, n_normal: int = 16) -> None:
        self._uniform = rng.random(n_uniform).tolist()
        self._normal = rng.standard_normal(n_normal).tolist()

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        """A uniform number in ``[lo, hi)``."""
        return lo + (hi - lo) * self._uniform.pop()

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self._uniform.pop() < p

    def index(self, weights: tuple[float, ...] | int) -> int:
        """An index in ``range(len(weights))`` drawn with those weights (or uniformly from ``range(n)``)."""
        if isinstance(weights, int):
            weights = (1.0,) * weights
        target = self._uniform.pop() * sum(weights)
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if target < acc:
                return i
        return len(weights) - 1

    def normal(self, sigma: float, n: int) -> np.ndarray:
        """``n`` normal numbers with standard deviation ``sigma``."""
        return np.array([self._normal.pop() for _ in range(n)]) * sigma

    def hsv(self, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
        """A colour with uniform hue and saturation/value drawn from the given ranges."""
        return np.array(colorsys.hsv_to_rgb(self.uniform(), self.uniform(*s), self.uniform(*v)))


@dataclass(frozen=True)
class IdentityTraits:
    """Everything that stays fixed across the images of one synthetic identity.

    Lengths are in face units (the image spans [-1, 1]); colours are RGB in [0, 1]. ``hairline`` and
    ``hair_side_length`` are vertical positions (negative is up); ``mole`` is a face-space position.
    """

    face_size: float
    face_width: float
    face_height: float
    jaw: float
    forehead: float
    skin_rgb: RGB
    hair_rgb: RGB
    hairline: float
    hair_volume: float
    hair_side_length: float
    hair_side_thickness: float
    fringe_tilt: float
    fringe_dip: float
    temple: float
    eye_rgb: RGB
    eye_spacing: float
    eye_y: float
    eye_width: float
    eye_height: float
    iris_ratio: float
    brow_thickness: float
    brow_angle: float
    brow_gap: float
    brow_length: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_y: float
    lip_thickness: float
    lip_rgb: RGB
    ear_size: float
    glasses: bool
    glasses_rgb: RGB
    glasses_radius: float
    beard: bool
    moustache: bool
    beard_rgb: RGB
    beard_density: float
    mole: tuple[float, float] | None

    @classmethod
    def sample(cls, seed: int, identity: int) -> IdentityTraits:
        """The traits of ``identity`` under ``seed``: a pure function of the pair."""
        rng = np.random.default_rng([_check_index("seed", seed), _check_index("identity", identity)])
        d = _Draws(rng)
        tone = d.uniform(0.0, len(_SKIN_TONES) - 1.0)
        lo = int(tone)
        hi = min(lo + 1, len(_SKIN_TONES) - 1)
        skin = _SKIN_TONES[lo] + (tone - lo) * (_SKIN_TONES[hi] - _SKIN_TONES[lo])
        skin = skin * d.uniform(0.95, 1.05) + d.normal(0.015, 3)
        hair = _HAIR_COLOURS[d.index(_HAIR_WEIGHTS)] * d.uniform(0.85, 1.15) + d.normal(0.03, 3)
        if d.chance(0.06):  # dyed hair
            hair = d.hsv((0.5, 0.8), (0.4, 0.8))
        lip = skin * np.array([0.92, 0.6, 0.6]) + np.array([0.1, 0.0, 0.02]) * d.uniform(0.5, 1.5)
        eye = _EYE_COLOURS[d.index(len(_EYE_COLOURS))] + d.normal(0.03, 3)

        bald = d.chance(0.07)
        style = d.index(3)  # short / chin length / long side hair
        side_length = (d.uniform(-0.28, -0.02), d.uniform(0.0, 0.25), d.uniform(0.35, 0.8))[style]
        masculine = d.chance(0.45)
        beard = masculine and d.chance(0.35)
        moustache = masculine and (beard or d.chance(0.25)) and d.chance(0.8)
        mole = (d.uniform(-0.25, 0.25), d.uniform(-0.05, 0.3)) if d.chance(0.25) else None
        return cls(
            face_size=d.uniform(1.0, 1.16),
            face_width=d.uniform(0.34, 0.45),
            face_height=d.uniform(0.48, 0.57),
            jaw=d.uniform(0.35, 0.85),
            forehead=d.uniform(0.9, 1.02),
            skin_rgb=_rgb(skin),
            hair_rgb=_rgb(hair),
            hairline=-0.5 if bald else d.uniform(-0.42, -0.2),
            hair_volume=d.uniform(0.0, 0.02) if bald else d.uniform(0.02, 0.13),
            hair_side_length=-0.3 if bald else side_length,
            hair_side_thickness=d.uniform(0.04, 0.16),
            fringe_tilt=d.uniform(-0.25, 0.25) if d.chance(0.5) else 0.0,
            fringe_dip=0.0 if bald else d.uniform(0.0, 0.18),
            temple=d.uniform(0.05, 0.25),
            eye_rgb=_rgb(eye),
            eye_spacing=d.uniform(0.13, 0.19),
            eye_y=d.uniform(-0.1, 0.0),
            eye_width=d.uniform(0.055, 0.08),
            eye_height=d.uniform(0.42, 0.65),
            iris_ratio=d.uniform(0.42, 0.55),
            brow_thickness=d.uniform(0.012, 0.035),
            brow_angle=d.uniform(-0.3, 0.25),
            brow_gap=d.uniform(0.055, 0.095),
            brow_length=d.uniform(0.07, 0.1),
            nose_length=d.uniform(0.13, 0.21),
            nose_width=d.uniform(0.06, 0.11),
            mouth_width=d.uniform(0.09, 0.15),
            mouth_y=d.uniform(0.23, 0.32),
            lip_thickness=d.uniform(0.012, 0.03),
            lip_rgb=_rgb(lip),
            ear_size=d.uniform(0.85, 1.2),
            glasses=d.chance(0.2),
            glasses_rgb=_GLASSES_COLOURS[d.index(len(_GLASSES_COLOURS))],
            glasses_radius=d.uniform(1.35, 1.7),
            beard=beard,
            moustache=moustache,
            beard_rgb=_rgb(np.asarray(hair) * d.uniform(0.75, 1.0)),
            beard_density=d.uniform(0.45, 0.9),
            mole=mole,
        )


@dataclass(frozen=True)
class ImageVariation:
    """What changes between two images of the same identity: pose, light, expression, background, noise.

    ``yaw`` and ``pitch`` in [-1, 1] shift the inner features (eyes, nose, mouth) against the face
    outline, which reads as a small out-of-plane head turn; ``bg_waves`` holds ``(fx, fy, phase, amp)``
    of the background texture.
    """

    rotation_deg: float
    shift_x: float
    shift_y: float
    scale: float
    yaw: float
    pitch: float
    light_angle: float
    light_strength: float
    brightness: float
    contrast: float
    tint: RGB
    smile: float
    mouth_open: float
    eye_open: float
    gaze_x: float
    gaze_y: float
    brow_raise: float
    bg_rgb: RGB
    bg_rgb2: RGB
    bg_angle: float
    bg_waves: tuple[tuple[float, float, float, float], ...]
    clothing_rgb: RGB
    noise_sigma: float
    noise_seed: int

    @classmethod
    def sample(cls, seed: int, identity: int, sample: int) -> ImageVariation:
        """The variation of image ``sample`` of ``identity`` under ``seed``: a pure function of the triple."""
        rng = np.random.default_rng(
            [_check_index("seed", seed), _check_index("identity", identity), _check_index("sample", sample)]
        )
        noise_seed = int(rng.integers(2**31))
        d = _Draws(rng)
        bg = d.hsv((0.05, 0.6), (0.25, 0.95))
        bg2 = bg * d.uniform(0.55, 1.25) + d.normal(0.08, 3)
        waves = []
        for _ in range(4):
            angle = d.uniform(0.0, 2 * math.pi)
            freq = d.uniform(1.5, 8.0)
            waves.append(
                (
                    freq * math.cos(angle),
                    freq * math.sin(angle),
                    d.uniform(0, 2 * math.pi),
                    d.uniform(0, 0.03),
                )
            )
        eye_open = d.uniform(0.05, 0.2) if d.chance(0.06) else d.uniform(0.55, 1.1)
        mouth_open = d.uniform(0.1, 1.0) if d.chance(0.35) else 0.0
        return cls(
            rotation_deg=d.uniform(-15.0, 15.0),
            shift_x=d.uniform(-0.08, 0.08),
            shift_y=d.uniform(-0.05, 0.08),
            scale=d.uniform(0.88, 1.1),
            yaw=d.uniform(-1.0, 1.0),
            pitch=d.uniform(-1.0, 1.0),
            light_angle=d.uniform(0.0, 2 * math.pi),
            light_strength=d.uniform(0.0, 0.35),
            brightness=d.uniform(0.85, 1.15),
            contrast=d.uniform(0.8, 1.15),
            tint=_rgb(1.0 + d.normal(0.04, 3)),
            smile=d.uniform(-0.4, 1.0),
            mouth_open=mouth_open,
            eye_open=eye_open,
            gaze_x=d.uniform(-0.3, 0.3),
            gaze_y=d.uniform(-0.2, 0.2),
            brow_raise=d.uniform(-0.015, 0.025),
            bg_rgb=_rgb(bg),
            bg_rgb2=_rgb(bg2),
            bg_angle=d.uniform(0.0, 2 * math.pi),
            bg_waves=tuple(waves),
            clothing_rgb=_rgb(d.hsv((0.0, 0.8), (0.15, 0.9))),
            noise_sigma=d.uniform(0.0, 0.02),
            noise_seed=noise_seed,
        )


class _Region:
    """A window of the canvas: face coordinates ``u, v`` and a writable view of the planar RGB image."""

    def __init__(self, u: np.ndarray, v: np.ndarray, img: np.ndarray, pw: float) -> None:
        self.u = u
        self.v = v
        self.img = img
        self.pw = pw

    def cover(self, d: np.ndarray, soft: float = 0.0) -> np.ndarray:
        """Coverage in [0, 1] of the shape with signed distance ``d``: a ramp one pixel (or ``soft``) wide."""
        c = 0.5 - d * (1.0 / max(self.pw, soft))
        np.maximum(c, 0.0, out=c)  # two ufuncs: np.clip's Python wrapper costs more than the work here
        return np.minimum(c, 1.0, out=c)

    def paint(self, cover: np.ndarray, rgb: np.ndarray | tuple[float, ...], alpha: float = 1.0) -> None:
        """Blend colour ``rgb`` (a triple or a ``[3, h, w]`` array) over the window with ``cover * alpha``."""
        a = cover if alpha == 1.0 else cover * alpha
        col = np.asarray(rgb, dtype=np.float32)
        if col.ndim == 1:
            col = col[:, None, None]
        self.img += a * (col - self.img)


def _ellipse(
    u: np.ndarray, v: np.ndarray, cx: float, cy: float, a: float, b: float, exact: bool = False
) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse.

    The cheap form scales the normalised radius by ``sqrt(a * b)`` (edge width off by at most
    ``sqrt(a / b)``, invisible for near-circles and soft shapes); ``exact`` divides by the gradient
    instead, exact to first order on the outline, for thin rings around elongated ellipses.
    """
    ia, ib = 1.0 / a, 1.0 / b
    x = (u - cx) * ia
    y = (v - cy) * ib
    xx = x * x
    yy = y * y
    s = xx + yy
    k = np.sqrt(s)
    if not exact:
        return (k - 1.0) * math.sqrt(a * b)
    grad = np.sqrt(xx * (ia * ia) + yy * (ib * ib) + 1e-6)
    return (s - k) / grad


def _segment(
    u: np.ndarray, v: np.ndarray, p: tuple[float, float], q: tuple[float, float], r: float
) -> np.ndarray:
    """Signed distance to a capsule: the segment ``p``-``q`` thickened by radius ``r``."""
    px, py = u - (p[0]), v - (p[1])
    dx, dy = q[0] - p[0], q[1] - p[1]
    inv = 1.0 / (dx * dx + dy * dy + 1e-12)
    h = np.clip(px * (dx * inv) + py * (dy * inv), 0.0, 1.0)
    ex = px - h * dx
    ey = py - h * dy
    return np.sqrt(ex * ex + ey * ey) - r


class _Canvas:
    """The float image plus the pose transform between pixels and face coordinates.

    The image is planar (``[3, H, W]``): with channels last every blend would run numpy's inner loop
    over 3 elements, which makes painting several times slower.
    """

    def __init__(self, size: int, variation: ImageVariation, face_size: float) -> None:
        self.size = size
        self.coords = ((np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0).astype(np.float32)
        theta = math.radians(variation.rotation_deg)
        self.cos, self.sin = math.cos(theta), math.sin(theta)
        self.scale = variation.scale * face_size
        self.tx, self.ty = variation.shift_x, variation.shift_y
        # u = (cos (x - tx) + sin (y - ty)) / s and v = (-sin (x - tx) + cos (y - ty)) / s are sums of
        # a row term and a column term, so each full grid costs one broadcast add.
        xs = (self.coords.astype(np.float64) - self.tx) / self.scale
        ys = (self.coords.astype(np.float64) - self.ty) / self.scale
        self.u = (self.cos * xs)[None, :].astype(np.float32) + (self.sin * ys)[:, None].astype(np.float32)
        self.v = (-self.sin * xs)[None, :].astype(np.float32) + (self.cos * ys)[:, None].astype(np.float32)
        self.pw = 2.0 / size / self.scale
        self.img = np.empty((3, size, size), dtype=np.float32)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
        """Pixel rows ``r0:r1`` and columns ``c0:c1`` covering the face-space box ``[x0, x1] x [y0, y1]``
        (None when off-image): the extent every drawing step (and the label maps) works in."""
        cols, rows = [], []
        for fx, fy in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            cols.append(
                (self.scale * (self.cos * fx - self.sin * fy) + self.tx + 1.0) * 0.5 * self.size - 0.5
            )
            rows.append(
                (self.scale * (self.sin * fx + self.cos * fy) + self.ty + 1.0) * 0.5 * self.size - 0.5
            )
        c0 = max(math.floor(min(cols)) - 1, 0)
        c1 = min(math.ceil(max(cols)) + 2, self.size)
        r0 = max(math.floor(min(rows)) - 1, 0)
        r1 = min(math.ceil(max(rows)) + 2, self.size)
        if c0 >= c1 or r0 >= r1:
            return None
        return r0, r1, c0, c1

    def window(self, x0: float, y0: float, x1: float, y1: float) -> _Region | None:
        """The pixels covering the face-space box ``[x0, x1] x [y0, y1]`` (None when off-image)."""
        box = self.box(x0, y0, x1, y1)
        if box is None:
            return None
        r0, r1, c0, c1 = box
        return _Region(self.u[r0:r1, c0:c1], self.v[r0:r1, c0:c1], self.img[:, r0:r1, c0:c1], self.pw)


def _fade(period_px: float) -> float:
    """Amplitude factor for a periodic pattern: 0 near the pixel grid's Nyquist limit, 1 from 6 px up."""
    return min(max((period_px - 2.0) / 4.0, 0.0), 1.0)


def _background(cv: _Canvas, var: ImageVariation) -> None:
    """Two-colour linear gradient plus a faint grey sum-of-waves texture, in image coordinates.

    Each wave is separable (``sin(a x + b y) = sin(a x) cos(b y) + cos(a x) sin(b y)``), so the texture
    is one small ``einsum`` over 1-D factors (no BLAS: a multi-threaded BLAS call is slower than the
    product itself inside busy dataloader workers).
    """
    n = cv.size
    x = cv.coords.astype(np.float64)
    waves = np.asarray(var.bg_waves, dtype=np.float64).reshape(-1, 4)
    fx, fy, phase, amp = waves.T
    amp = amp * np.array([_fade(n / max(math.hypot(a, b), 1e-6)) for a, b in zip(fx, fy, strict=True)])
    by = np.outer(fy * math.pi, x) + phase[:, None]  # [K, H]
    ax = np.outer(fx * math.pi, x)  # [K, W]
    rows = np.concatenate([amp[:, None] * np.cos(by), amp[:, None] * np.sin(by)]).astype(np.float32)
    cols = np.concatenate([np.sin(ax), np.cos(ax)]).astype(np.float32)
    texture = np.einsum("kh,kw->hw", rows, cols, optimize=False)
    ca, sa = 0.35 * math.cos(var.bg_angle), 0.35 * math.sin(var.bg_angle)
    ramp = (cv.coords * ca)[None, :] + (cv.coords * sa)[:, None]  # in [-0.5, 0.5]
    for c in range(3):
        lo, hi = var.bg_rgb[c], var.bg_rgb2[c]
        plane = cv.img[c]
        np.multiply(ramp, hi - lo, out=plane)
        plane += texture
        plane += 0.5 * (lo + hi)


def _face_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to the face outline (an ellipse narrowing towards the jaw) and its radial coord."""
    ib = 1.0 / tr.face_height
    y = v * ib
    t = np.maximum(y, 0.0)
    np.minimum(t, 1.0, out=t)
    narrowing = (1.0 - tr.jaw) * 0.8
    a = np.where(v < 0, tr.face_width * tr.forehead, tr.face_width * (1.0 - narrowing * t * t))
    x = u / a
    xx = x * x
    yy = y * y
    s = xx + yy
    k = np.sqrt(s)
    grad = np.sqrt(xx / (a * a) + yy * (ib * ib) + 1e-6)
    return (s - k) / grad, k


def _hair_shade(reg: _Region, rgb: RGB, sheen_y: float) -> np.ndarray:
    """Hair colour modulated by fine strands (faded out when too fine for the pixels) and a sheen band."""
    dv = reg.v - sheen_y
    shade = 0.92 + 0.18 / (1.0 + dv * dv * 300.0)
    amp = 0.06 * _fade(2.0 * math.pi / 75.0 / reg.pw)
    if amp > 0:
        shade += amp * np.sin(reg.u * 75.0 + 14.0 * reg.v * reg.v)
    return np.asarray(rgb, dtype=np.float32)[:, None, None] * shade


def _hair_outer(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the outer silhouette of the hair around the skull."""
    vol = tr.hair_volume
    return _ellipse(
        u, v, 0.0, -0.03 - vol * 0.3, tr.face_width * tr.forehead + vol, tr.face_height + vol * 0.8
    )


# --- part geometry, shared by the drawing steps and :func:`face_parsing` ----------------------------------

Box = tuple[float, float, float, float]


def _neck_box(tr: IdentityTraits) -> Box:
    """Face-space box of the neck (it runs off the bottom of the image)."""
    neck_w = tr.face_width * 0.52
    return (-neck_w, 0.1, neck_w, 3.0)


def _neck_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the neck: a vertical band below the jaw, as wide as the neck."""
    return np.maximum(np.abs(u) - tr.face_width * 0.52, 0.1 - v)


def _body_box(tr: IdentityTraits) -> Box:
    """Face-space box of the shoulders/clothing ellipse."""
    body_y = tr.face_height + 0.62
    return (-1.0, body_y - 0.42, 1.0, body_y + 0.42)


def _clothing_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the shoulders/clothing ellipse."""
    return _ellipse(u, v, 0.0, tr.face_height + 0.62, 1.0, 0.42)


def _collar_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the bare skin of the neckline, drawn over the clothing."""
    return _ellipse(u, v, 0.0, tr.face_height + 0.62 - 0.42, tr.face_width * 0.52 * 1.05, 0.09)


def _long_hair_box(tr: IdentityTraits) -> Box:
    """Face-space box of the long hair behind the head (only drawn when ``hair_side_length > 0.05``)."""
    a_h = tr.face_width * tr.forehead + tr.hair_volume
    return (-a_h - 0.05, -tr.face_height - tr.hair_volume, a_h + 0.05, tr.hair_side_length)


def _long_hair_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the hair behind the head: the skull silhouette plus strands falling to the sides."""
    a_h = tr.face_width * tr.forehead + tr.hair_volume
    flare = a_h + 0.06 * np.maximum(v, 0.0)
    d_long = np.maximum(np.maximum(np.abs(u) - flare, v - tr.hair_side_length), -v)
    return np.minimum(d_long, _hair_outer(u, v, tr))


def _ear_layout(tr: IdentityTraits, var: ImageVariation) -> tuple[float, float, float, Box]:
    """Ear centre distance ``ear_x`` from the midline ``mid``, their height ``ear_y`` and the window box."""
    ear_x, ear_y, mid = tr.face_width * 0.97, tr.eye_y + 0.07, -var.yaw * 0.03
    return ear_x, ear_y, mid, (mid - ear_x - 0.08, ear_y - 0.13, mid + ear_x + 0.08, ear_y + 0.13)


def _ear_sdf(au: np.ndarray, v: np.ndarray, tr: IdentityTraits, ear_x: float, ear_y: float) -> np.ndarray:
    """Signed distance to both ears in the mirrored coordinate ``au = |u - mid|``."""
    return _ellipse(au, v, ear_x, ear_y, 0.055 * tr.ear_size, 0.1 * tr.ear_size)


def _face_box(tr: IdentityTraits) -> Box:
    """Face-space box of the face oval."""
    return (-tr.face_width - 0.02, -tr.face_height - 0.02, tr.face_width + 0.02, tr.face_height + 0.02)


def _cheek_centre(u: np.ndarray, tr: IdentityTraits, var: ImageVariation) -> tuple[np.ndarray, float, float]:
    """The mirrored coordinate of the cheeks (``|u - shift|``) and the centre ``(x, y)`` of each cheek."""
    return np.abs(u - var.yaw * 0.06), tr.eye_spacing * 1.1, tr.mouth_y - 0.1


@dataclass(frozen=True)
class _EyeLayout:
    """Where both eyes sit in one image: the shared mirrored frame of :func:`_draw_eyes`.

    ``ew`` / ``eh``: half width / half height of the eye opening, ``ey``: eye line, ``mid``: midline between
    the eyes, ``fore`` / ``spacing``: per side (-1 image left, +1 image right) foreshortening and distance
    of the eye centre from ``mid``, ``rim``: the glasses' radius, ``box``: the drawing window.
    """

    ew: float
    ey: float
    eh: float
    mid: float
    fore: dict[float, float]
    spacing: dict[float, float]
    rim: float
    box: Box

    @classmethod
    def of(cls, tr: IdentityTraits, var: ImageVariation) -> _EyeLayout:
        """The layout of ``tr``'s eyes under ``var``'s pose and expression."""
        yaw = var.yaw
        ew = tr.eye_width
        ey = tr.eye_y + var.pitch * 0.025
        eh = ew * tr.eye_height * max(var.eye_open, 0.02)
        mid = yaw * 0.07
        fore = {s: 1.0 - 0.22 * yaw * s for s in (-1.0, 1.0)}
        spacing = {s: tr.eye_spacing * (1.0 - 0.12 * yaw * s) for s in (-1.0, 1.0)}
        rim = ew * tr.glasses_radius
        span = max(ew * 1.6, tr.brow_length + 0.02, rim + 0.01 if tr.glasses else 0.0)
        reach = max(spacing[s] + span * fore[s] for s in (-1.0, 1.0))
        box = (mid - reach, ey - 0.2, mid + reach, ey + max(0.07, rim * 0.8 + 0.01))
        return cls(ew, ey, eh, mid, fore, spacing, rim, box)

    def local(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(du, right, xl, yl)``: offset from the midline, the image-right side, and the mirrored eye frame
        (``xl`` outwards from each eye centre over its foreshortening, ``yl`` down from the eye line)."""
        du = u - self.mid
        right = du > 0
        xl = np.abs(du)
        xl -= np.where(right, self.spacing[1.0], self.spacing[-1.0])
        xl *= np.where(right, 1.0 / self.fore[1.0], 1.0 / self.fore[-1.0])
        yl = v - self.ey
        return du, right, xl, yl

    def brow_sdf(self, xl: np.ndarray, yl: np.ndarray, tr: IdentityTraits, var: ImageVariation) -> np.ndarray:
        """Signed distance to the eyebrows: capsules tilted by ``brow_angle`` (negative: inner end lower)."""
        by = -self.eh - tr.brow_gap - var.brow_raise
        dy = math.sin(tr.brow_angle) * tr.brow_length
        return _segment(
            xl, yl, (-tr.brow_length * 0.9, by + dy), (tr.brow_length, by - dy + 0.012), tr.brow_thickness / 2
        )


@dataclass(frozen=True)
class _MouthLayout:
    """Centre ``(mx, my)`` and half width ``mw`` of the mouth in one image, and its drawing window."""

    mx: float
    my: float
    mw: float
    box: Box

    @classmethod
    def of(cls, tr: IdentityTraits, var: ImageVariation) -> _MouthLayout:
        """The layout of ``tr``'s mouth under ``var``'s pose and smile."""
        mx = var.yaw * 0.085
        my = tr.mouth_y + var.pitch * 0.03
        mw = tr.mouth_width * (1.0 + 0.15 * var.smile)
        return cls(mx, my, mw, (mx - mw - 0.04, my - 0.08, mx + mw + 0.04, my + 0.1))

    def shapes(
        self, u: np.ndarray, v: np.ndarray, tr: IdentityTraits, var: ImageVariation
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(off, outside, opening, thick)``: signed vertical offset from the (smiling) mouth line, distance
        outside the corners, half height of the opening and lip thickness along the mouth."""
        xn = (u - self.mx) * (1.0 / self.mw)
        np.maximum(xn, -1.0, out=xn)
        np.minimum(xn, 1.0, out=xn)
        xx = xn * xn
        profile = np.sqrt(1.0 - xx)
        off = v - (self.my - var.smile * 0.035 * xx)
        outside = np.abs(u - self.mx) - self.mw
        opening = (var.mouth_open * 0.05) * profile
        thick = tr.lip_thickness * (0.4 + 0.6 * profile)
        return off, outside, opening, thick


def _nose_layout(tr: IdentityTraits, var: ImageVariation) -> tuple[float, float, float, Box]:
    """Nose tip position ``(nx, ny)``, width ``nw`` and the drawing window."""
    nx = var.yaw * 0.1
    ny = tr.eye_y + tr.nose_length + var.pitch * 0.03
    nw = tr.nose_width
    return nx, ny, nw, (nx - nw * 1.2, tr.eye_y, nx + nw * 1.2, ny + 0.05)


def _hair_front_box(tr: IdentityTraits) -> Box:
    """Face-space box of the hair over the forehead and down the sides of the face."""
    vol = tr.hair_volume
    a = tr.face_width * tr.forehead + vol
    return (-a - 0.02, -tr.face_height - vol - 0.05, a + 0.02, max(tr.hair_side_length, 0.0) + 0.02)


def _hair_front_sdf(u: np.ndarray, v: np.ndarray, tr: IdentityTraits) -> np.ndarray:
    """Signed distance to the front hair: inside the skull silhouette, above the hairline or at the sides."""
    un = u * (1.0 / tr.face_width)
    uu = un * un
    line = tr.hairline + (tr.fringe_tilt * 0.3) * un + tr.fringe_dip * np.exp(-4.0 * uu) + tr.temple * uu
    sides = np.maximum(tr.face_width * (1.0 - tr.hair_side_thickness) - np.abs(u), v - tr.hair_side_length)
    return np.maximum(_hair_outer(u, v, tr), np.minimum(v - line, sides))


# --- drawing ------------------------------------------------------------------------------------------------


def _draw_back(cv: _Canvas, tr: IdentityTraits, var: ImageVariation) -> None:
    """Neck, shoulders/clothing and long hair falling behind the head."""
    skin = np.asarray(tr.skin_rgb, dtype=np.float32)
    reg = cv.window(*_neck_box(tr))
    if reg is not None:
        reg.paint(reg.cover(_neck_sdf(reg.u, reg.v, tr)), skin * 0.72)
    reg = cv.window(*_body_box(tr))
    if reg is not None:
        reg.paint(reg.cover(_clothing_sdf(reg.u, reg.v, tr)), var.clothing_rgb)
        reg.paint(reg.cover(_collar_sdf(reg.u, reg.v, tr)), skin * 0.72)
    if tr.hair_side_length > 0.05:
        reg = cv.window(*_long_hair_box(tr))
        if reg is not None:
            d_back = _long_hair_sdf(reg.u, reg.v, tr)
            reg.paint(reg.cover(d_back), _hair_shade(reg, tr.hair_rgb, -tr.face_height) * 0.75)


def _draw_head(
    cv: _Canvas, tr: IdentityTraits, var: ImageVariation, light: tuple[float, float, float]
) -> None:
    """Ears, the face oval with dome and directional shading, cheeks, a mole and the beard.

    Left/right pairs (ears, cheeks) are drawn once in a coordinate mirrored about their midline.
    """
    yaw = var.yaw
    skin = np.asarray(tr.skin_rgb, dtype=np.float32)
    ear_x, ear_y, mid, ear_box = _ear_layout(tr, var)
    reg = cv.window(*ear_box)
    if reg is not None:
        au = np.abs(reg.u - mid)
        reg.paint(reg.cover(_ear_sdf(au, reg.v, tr, ear_x, ear_y)), skin * 0.85)
        d_in = _ellipse(au, reg.v, ear_x + 0.012, ear_y, 0.025 * tr.ear_size, 0.06 * tr.ear_size)
        reg.paint(reg.cover(d_in, soft=0.02), skin * 0.55, 0.6)
    reg = cv.window(*_face_box(tr))
    if reg is None:
        return
    u, v = reg.u, reg.v
    d_face, k = _face_sdf(u, v, tr)
    lx, ly, strength = light
    dome = np.maximum(1.0 - k * k, 0.0)
    np.sqrt(dome, out=dome)
    shade = 0.8 + 0.2 * dome
    shade += u * (strength * 0.6 * lx / tr.face_width) + v * (strength * 0.6 * ly / tr.face_height)
    reg.paint(reg.cover(d_face), skin[:, None, None] * shade)
    cu, cx, cy = _cheek_centre(u, tr, var)
    reg.paint(reg.cover(_ellipse(cu, v, cx, cy, 0.07, 0.05), soft=0.08), (0.85, 0.35, 0.35), 0.08)
    if tr.mole is not None:
        d = _ellipse(u, v, tr.mole[0] + yaw * 0.07, tr.mole[1], 0.012, 0.012)
        reg.paint(reg.cover(d), skin * 0.4, 0.9)
    if tr.beard:
        du = (u - yaw * 0.085) * (1.0 / tr.face_width)
        top = (tr.mouth_y - 0.03) - 0.22 * du * du
        d_beard = np.maximum(d_face + 0.004, top - v)
        reg.paint(reg.cover(d_beard, soft=0.02), _hair_shade(reg, tr.beard_rgb, 10.0), tr.beard_density)


def _draw_eyes(cv: _Canvas, tr: IdentityTraits, var: ImageVariation) -> None:
    """Sockets, sclera, iris, pupil, glint, lids, eyebrows and glasses for both eyes in one pass.

    Both eyes share a local frame mirrored about the midline between them: ``xl`` grows outwards from
    each eye centre and is divided by that eye's foreshortening (the eye turning away with the yaw is
    narrower), so one set of shapes draws the pair.
    """
    yaw = var.yaw
    eyes = _EyeLayout.of(tr, var)
    ew, eh, fore, spacing, rim = eyes.ew, eyes.eh, eyes.fore, eyes.spacing, eyes.rim
    reg = cv.window(*eyes.box)
    if reg is None:
        return
    skin = np.asarray(tr.skin_rgb, dtype=np.float32)
    du, right, xl, yl = eyes.local(reg.u, reg.v)
    reg.paint(reg.cover(_ellipse(xl, yl, 0.0, -0.01, ew * 1.5, ew * 0.9), soft=0.04), skin * 0.7, 0.35)
    d_white = _ellipse(xl, yl, 0.0, 0.0, ew, eh, exact=True)
    white = reg.cover(d_white)
    reg.paint(white, (0.95, 0.94, 0.92))
    gaze = (var.gaze_x + yaw * 0.3) * ew * 0.5  # image-space shift of both irises
    xi = xl - np.where(right, gaze / fore[1.0], -gaze / fore[-1.0])
    yi = var.gaze_y * eh * 0.4
    r_iris = ew * tr.iris_ratio
    reg.paint(np.minimum(reg.cover(_ellipse(xi, yl, 0.0, yi, r_iris, r_iris)), white), tr.eye_rgb)
    pupil = _ellipse(xi, yl, 0.0, yi, r_iris * 0.42, r_iris * 0.42)
    reg.paint(np.minimum(reg.cover(pupil), white), (0.02, 0.02, 0.02))
    glint = _ellipse(xi, yl, r_iris * 0.3, yi - r_iris * 0.3, r_iris * 0.16, r_iris * 0.16)
    reg.paint(np.minimum(reg.cover(glint), white), (1.0, 1.0, 1.0), 0.9)
    # Lids: a dark line along the outline, heavier on the upper half.
    lid = reg.cover(np.abs(d_white) - 0.006)
    lid *= np.where(yl < 0, np.float32(0.95), np.float32(0.35))
    reg.paint(lid, skin * 0.25)
    brow = eyes.brow_sdf(xl, yl, tr, var)
    reg.paint(reg.cover(brow, soft=0.006), np.asarray(tr.hair_rgb, dtype=np.float32) * 0.75, 0.95)
    if tr.glasses:
        ring = np.abs(_ellipse(xl, yl, 0.0, 0.0, rim, rim * 0.8, exact=True)) - 0.008
        reg.paint(reg.cover(ring), tr.glasses_rgb)
        inner_l = spacing[-1.0] - rim * fore[-1.0] * 0.95
        inner_r = spacing[1.0] - rim * fore[1.0] * 0.95
        bridge = _segment(du, yl, (-inner_l, -0.03), (inner_r, -0.03), 0.008)
        reg.paint(reg.cover(bridge), tr.glasses_rgb)


def _draw_nose(
    cv: _Canvas, tr: IdentityTraits, var: ImageVariation, light: tuple[float, float, float]
) -> None:
    """Nose: bridge shadow on the side away from the light, a lit tip, the shadow below and nostrils."""
    skin = np.asarray(tr.skin_rgb, dtype=np.float32)
    nx, ny, nw, nose_box = _nose_layout(tr, var)
    reg = cv.window(*nose_box)
    if reg is None:
        return
    u, v = reg.u, reg.v
    away = -1.0 if light[0] >= 0 else 1.0
    bridge = _segment(
        u, v, (nx + away * nw * 0.25, tr.eye_y + 0.02), (nx + away * nw * 0.45, ny - 0.02), nw * 0.08
    )
    reg.paint(reg.cover(bridge, soft=0.025), skin * 0.6, 0.6)
    reg.paint(reg.cover(_ellipse(u, v, nx, ny + 0.01, nw * 0.8, nw * 0.3), soft=0.02), skin * 0.55, 0.65)
    reg.paint(reg.cover(_ellipse(u, v, nx, ny - 0.014, nw * 0.45, nw * 0.35), soft=0.02), skin * 1.12, 0.5)
    nostrils = _ellipse(np.abs(u - nx), v, nw * 0.33, ny + 0.008, nw * 0.17, nw * 0.1)
    reg.paint(reg.cover(nostrils), skin * 0.25, 0.85)


def _draw_mouth(cv: _Canvas, tr: IdentityTraits, var: ImageVariation) -> None:
    """Moustache, lips and the mouth line/opening shaped by the smile and mouth-open expression."""
    mouth = _MouthLayout.of(tr, var)
    mx, my, mw = mouth.mx, mouth.my, mouth.mw
    reg = cv.window(*mouth.box)
    if reg is None:
        return
    u, v = reg.u, reg.v
    if tr.moustache:
        d = _ellipse(u, v, mx, my - 0.038, mw * 1.05, 0.024)
        reg.paint(reg.cover(d, soft=0.01), _hair_shade(reg, tr.beard_rgb, 10.0), 0.95)
    off, outside, opening, thick = mouth.shapes(u, v, tr, var)
    dist = np.abs(off)
    reg.paint(reg.cover(np.maximum(dist - opening - thick, outside)), tr.lip_rgb)
    if var.mouth_open > 0:
        reg.paint(reg.cover(np.maximum(dist - opening, outside)), (0.25, 0.05, 0.06))
    line = np.maximum(dist - max(0.004, cv.pw * 0.5), outside)
    reg.paint(reg.cover(line), np.asarray(tr.lip_rgb, dtype=np.float32) * 0.35, 0.85)


def _draw_hair_front(cv: _Canvas, tr: IdentityTraits) -> None:
    """Hair over the forehead (hairline, fringe, parting) and down the sides of the face."""
    reg = cv.window(*_hair_front_box(tr))
    if reg is None:
        return
    d = _hair_front_sdf(reg.u, reg.v, tr)
    reg.paint(reg.cover(d), _hair_shade(reg, tr.hair_rgb, -tr.face_height * 0.75))


def render_face(traits: IdentityTraits, variation: ImageVariation, size: int) -> np.ndarray:
    """Render one face as a ``uint8`` RGB array of shape ``[size, size, 3]``.

    Resolution-independent (``size`` from 8 to 4096; the same face at every size) and deterministic:
    the same arguments always return identical bytes.
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    size = int(size)
    tr, var = traits, variation
    cv = _Canvas(size, var, tr.face_size)
    light = (math.cos(var.light_angle), math.sin(var.light_angle), var.light_strength)
    _background(cv, var)
    _draw_back(cv, tr, var)
    _draw_head(cv, tr, var, light)
    _draw_eyes(cv, tr, var)
    _draw_nose(cv, tr, var, light)
    _draw_mouth(cv, tr, var)
    _draw_hair_front(cv, tr)

    # Global light gradient, tint/brightness, contrast and 8-bit scaling fold into one per-pixel gain
    # and a per-channel affine map: out = img * gain * (tint * brightness * contrast * 255) + offset.
    x = cv.coords
    k = var.light_strength * 0.5
    gain = (1.0 + (k * light[0]) * x)[None, :] + ((k * light[1]) * x)[:, None]
    img = cv.img
    img *= gain
    img *= (np.asarray(var.tint) * (var.brightness * var.contrast * 255.0)).astype(np.float32)[:, None, None]
    offset = 255.0 * 0.5 * (1.0 - var.contrast) + 0.5  # + 0.5: the cast below then rounds to nearest
    if var.noise_sigma > 0:  # luminance sensor noise: uniform, with standard deviation noise_sigma
        noise = np.random.Generator(np.random.PCG64(var.noise_seed)).random((size, size), dtype=np.float32)
        noise *= var.noise_sigma * 255.0 * math.sqrt(12.0)
        noise += offset - var.noise_sigma * 255.0 * math.sqrt(3.0)
        img += noise
    else:
        img += offset
    np.maximum(img, 0.0, out=img)
    np.minimum(img, 255.49, out=img)
    out = np.empty((size, size, 3), dtype=np.uint8)
    for c in range(3):  # per-plane copies: one interleaving cast would loop over 3 elements at a time
        out[..., c] = img[c]
    return out


def face_to_pixels(
    traits: IdentityTraits, variation: ImageVariation, uv: np.ndarray, size: int
) -> np.ndarray:
    """Face coordinates ``(N, 2)`` → pixel coordinates ``(x, y)`` (pixel 0's centre is 0) in a ``size``
    render: the renderer's pose transform (scale, rotation, shift)."""
    theta = math.radians(variation.rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    k = variation.scale * traits.face_size
    u, v = np.asarray(uv, dtype=np.float64).T
    x = k * (c * u - s * v) + variation.shift_x
    y = k * (s * u + c * v) + variation.shift_y
    half = size / 2.0
    return np.stack([(x + 1.0) * half - 0.5, (y + 1.0) * half - 0.5], axis=1)


# Eye line and mouth-corner line of the unit mean face of ``src.face.face_hulls`` (its chin is at 1).
_UNIT_EYE_Y, _UNIT_MOUTH_Y = 0.27, 0.78


def face_landmarks(
    traits: IdentityTraits, variation: ImageVariation, size: int, points: int = 68
) -> np.ndarray:
    """Plausible dlib-ordered landmarks (``points`` = 68 or 81) of ``render_face(traits, variation, size)``.

    The symmetric mean face is laid on the drawn face (jaw across the face width, eye line on the eyes,
    mouth line on the mouth), its inner points shifted with the yaw like the drawn features, and posed by
    the renderer's transform. No detector is involved, so they are free and deterministic; they are good
    enough for what the hulls of SBI and Face X-ray need, not for landmark accuracy.
    """
    if points not in (68, 81):
        raise ValueError(f"points must be 68 or 81, got {points!r}")
    tr = traits
    height = (tr.mouth_y - tr.eye_y) / (_UNIT_MOUTH_Y - _UNIT_EYE_Y)
    top = tr.eye_y - _UNIT_EYE_Y * height
    box = np.array([-tr.face_width, top, tr.face_width, top + height])
    uv = mean_face_landmarks68(box) if points == 68 else mean_face_landmarks81(box)
    uv[17:68, 0] += variation.yaw * 0.07  # inner points follow the yaw, the jaw outline does not
    return face_to_pixels(tr, variation, uv, size)


def render_synthetic_face(seed: int, identity: int, sample: int, size: int) -> np.ndarray:
    """Convenience: sample the identity's traits and the image's variation, then :func:`render_face`."""
    return render_face(
        IdentityTraits.sample(seed, identity), ImageVariation.sample(seed, identity, sample), size
    )


# --- face parsing -------------------------------------------------------------------------------------------

#: Class ids of :func:`face_parsing`'s label maps: the face-parsing ids of makeup-transfer data (MT-Dataset's
#: ``segs/``). "Image left" is the side of smaller face coordinate ``u``; 14 (unnamed in that data) is never
#: used. Glasses are no class (their pixels keep the label beneath), and beards, moustaches and moles count
#: as face skin.
PARSING_LABELS: tuple[str, ...] = (
    "background",
    "face skin",
    "eyebrow (image left)",
    "eyebrow (image right)",
    "eye (image left)",
    "eye (image right)",
    "nose",
    "upper lip",
    "teeth (mouth interior)",
    "lower lip",
    "hair",
    "ear (image left)",
    "ear (image right)",
    "neck",
    "unused",
)
(
    LABEL_BACKGROUND,
    LABEL_SKIN,
    LABEL_BROW_LEFT,
    LABEL_BROW_RIGHT,
    LABEL_EYE_LEFT,
    LABEL_EYE_RIGHT,
    LABEL_NOSE,
    LABEL_UPPER_LIP,
    LABEL_MOUTH_INTERIOR,
    LABEL_LOWER_LIP,
    LABEL_HAIR,
    LABEL_EAR_LEFT,
    LABEL_EAR_RIGHT,
    LABEL_NECK,
) = range(14)


@dataclass(frozen=True, eq=False)
class FaceParsing:
    """The parts of one render, from the renderer's own geometry (no parser involved).

    ``coverage``: float32 ``[len(PARSING_LABELS), S, S]``, the fraction of each pixel every class covers after
    occlusion (anti-aliased like the render; sums to 1 per pixel). ``eye_zone`` / ``cheek_zone``: float32
    ``[S, S]`` soft weights in [0, 1] of the lids and sockets around both eyes and of both cheeks, whatever
    covers them (multiply by :meth:`visible` of the skin for the skin there).
    """

    coverage: np.ndarray
    eye_zone: np.ndarray
    cheek_zone: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """``uint8 [S, S]`` label map: the class covering most of each pixel."""
        return np.argmax(self.coverage, axis=0).astype(np.uint8)

    def visible(self, *labels: int) -> np.ndarray:
        """float32 ``[S, S]``: the fraction of each pixel covered by any of ``labels``."""
        return self.coverage[list(labels)].sum(axis=0)


def _label(reg: _Region, cover: np.ndarray, label: int) -> None:
    """Occlude the coverage planes of ``reg`` by ``cover`` and give it to ``label``."""
    reg.img *= 1.0 - cover
    reg.img[label] += cover


def _label_sides(
    reg: _Region, cover: np.ndarray, right: np.ndarray, left_label: int, right_label: int
) -> None:
    """:func:`_label` for a left/right pair: ``right`` marks the pixels of ``right_label``."""
    reg.img *= 1.0 - cover
    reg.img[left_label] += np.where(right, 0.0, cover)
    reg.img[right_label] += np.where(right, cover, 0.0)


def _zone(cv: _Canvas, zone: np.ndarray, box: Box, weight: Callable[[_Region], np.ndarray]) -> None:
    """Raise ``zone`` to ``weight(region)`` over the window of ``box``."""
    extent, reg = cv.box(*box), cv.window(*box)
    if extent is None or reg is None:
        return
    r0, r1, c0, c1 = extent
    np.maximum(zone[r0:r1, c0:c1], weight(reg), out=zone[r0:r1, c0:c1])


def _parse_back(cv: _Canvas, tr: IdentityTraits) -> None:
    """Neck (13), clothing (background: no class of its own) and the collar's skin (neck), long hair (10)."""
    reg = cv.window(*_neck_box(tr))
    if reg is not None:
        _label(reg, reg.cover(_neck_sdf(reg.u, reg.v, tr)), LABEL_NECK)
    reg = cv.window(*_body_box(tr))
    if reg is not None:
        _label(reg, reg.cover(_clothing_sdf(reg.u, reg.v, tr)), LABEL_BACKGROUND)
        _label(reg, reg.cover(_collar_sdf(reg.u, reg.v, tr)), LABEL_NECK)
    if tr.hair_side_length > 0.05:
        reg = cv.window(*_long_hair_box(tr))
        if reg is not None:
            _label(reg, reg.cover(_long_hair_sdf(reg.u, reg.v, tr)), LABEL_HAIR)


def _parse_head(cv: _Canvas, tr: IdentityTraits, var: ImageVariation, cheek_zone: np.ndarray) -> None:
    """Ears (11 / 12) and the face oval (1); the cheek zone: the drawn cheeks' ellipses, a little larger."""
    ear_x, ear_y, mid, ear_box = _ear_layout(tr, var)
    reg = cv.window(*ear_box)
    if reg is not None:
        au = np.abs(reg.u - mid)
        cover = reg.cover(_ear_sdf(au, reg.v, tr, ear_x, ear_y))
        _label_sides(reg, cover, reg.u - mid > 0, LABEL_EAR_LEFT, LABEL_EAR_RIGHT)
    reg = cv.window(*_face_box(tr))
    if reg is not None:
        _label(reg, reg.cover(_face_sdf(reg.u, reg.v, tr)[0]), LABEL_SKIN)

    def cheeks(reg: _Region) -> np.ndarray:
        cu, cx, cy = _cheek_centre(reg.u, tr, var)
        return reg.cover(_ellipse(cu, reg.v, cx, cy, 0.085, 0.06), soft=0.06)

    _zone(cv, cheek_zone, _face_box(tr), cheeks)


def _parse_nose(cv: _Canvas, tr: IdentityTraits, var: ImageVariation) -> None:
    """Nose (6): the bridge from below the eye line to the tip, and the tip with the nostrils.

    The drawing only shades the nose, so its outline is this labelling's choice; it is labelled before the
    eyes, which keep their pixels where the two meet.
    """
    nx, ny, nw, nose_box = _nose_layout(tr, var)
    reg = cv.window(*nose_box)
    if reg is None:
        return
    bridge = _segment(reg.u, reg.v, (nx, tr.eye_y + 0.04), (nx, ny - 0.01), nw * 0.35)
    base = _ellipse(reg.u, reg.v, nx, ny + 0.005, nw * 0.85, nw * 0.4)
    _label(reg, reg.cover(np.minimum(bridge, base)), LABEL_NOSE)


def _parse_eyes(cv: _Canvas, tr: IdentityTraits, var: ImageVariation, eye_zone: np.ndarray) -> None:
    """Eyes (4 / 5: the opening with its lid line) and eyebrows (2 / 3); the eye zone: the lids and sockets
    from the lash line up towards the brow, swept a little outwards."""
    eyes = _EyeLayout.of(tr, var)
    reg = cv.window(*eyes.box)
    if reg is not None:
        _, right, xl, yl = eyes.local(reg.u, reg.v)
        d_eye = _ellipse(xl, yl, 0.0, 0.0, eyes.ew, eyes.eh, exact=True) - 0.006
        _label_sides(reg, reg.cover(d_eye), right, LABEL_EYE_LEFT, LABEL_EYE_RIGHT)
        brow = reg.cover(eyes.brow_sdf(xl, yl, tr, var), soft=0.006)
        _label_sides(reg, brow, right, LABEL_BROW_LEFT, LABEL_BROW_RIGHT)
    ew = eyes.ew
    reach = max(eyes.spacing[s] + 2.2 * ew * eyes.fore[s] for s in (-1.0, 1.0))
    box = (eyes.mid - reach, eyes.ey - 2.2 * ew, eyes.mid + reach, eyes.ey + 1.2 * ew)

    def lids(reg: _Region) -> np.ndarray:
        _, _, xl, yl = eyes.local(reg.u, reg.v)
        return reg.cover(_ellipse(xl, yl, ew * 0.15, -ew * 0.35, ew * 1.45, ew * 1.05), soft=ew * 0.6)

    _zone(cv, eye_zone, box, lids)


def _parse_mouth(cv: _Canvas, tr: IdentityTraits, var: ImageVariation) -> None:
    """Upper (7) and lower (9) lip, split along the (smiling) mouth line, and an open mouth's inside (8)."""
    mouth = _MouthLayout.of(tr, var)
    reg = cv.window(*mouth.box)
    if reg is None:
        return
    off, outside, opening, thick = mouth.shapes(reg.u, reg.v, tr, var)
    dist = np.abs(off)
    # the lips and the mouth line between them (at low resolution the line is thicker than thin lips)
    lips = reg.cover(np.maximum(np.minimum(dist - opening - thick, dist - max(0.004, cv.pw * 0.5)), outside))
    _label_sides(reg, lips, off > 0, LABEL_UPPER_LIP, LABEL_LOWER_LIP)
    if var.mouth_open > 0:
        _label(reg, reg.cover(np.maximum(dist - opening, outside)), LABEL_MOUTH_INTERIOR)


def face_parsing(traits: IdentityTraits, variation: ImageVariation, size: int) -> FaceParsing:
    """The parts of ``render_face(traits, variation, size)``: per-class coverage, label map and makeup zones.

    Every class is the shape the drawing uses (same windows, same signed distances, painted in the same
    order), so a label map from here matches the render pixel for pixel; see :data:`PARSING_LABELS` for the
    ids. Deterministic, resolution-independent like the render, and independent of it (nothing is shared).
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    size = int(size)
    tr, var = traits, variation
    cv = _Canvas(size, var, tr.face_size)
    cv.img = np.zeros((len(PARSING_LABELS), size, size), dtype=np.float32)
    cv.img[LABEL_BACKGROUND] = 1.0
    eye_zone = np.zeros((size, size), dtype=np.float32)
    cheek_zone = np.zeros((size, size), dtype=np.float32)
    _parse_back(cv, tr)
    _parse_head(cv, tr, var, cheek_zone)
    _parse_nose(cv, tr, var)
    _parse_eyes(cv, tr, var, eye_zone)
    _parse_mouth(cv, tr, var)
    reg = cv.window(*_hair_front_box(tr))
    if reg is not None:
        _label(reg, reg.cover(_hair_front_sdf(reg.u, reg.v, tr)), LABEL_HAIR)
    return FaceParsing(cv.img, eye_zone, cheek_zone)


def face_label_map(traits: IdentityTraits, variation: ImageVariation, size: int) -> np.ndarray:
    """The ``uint8 [size, size]`` label map of ``render_face(traits, variation, size)`` (see face_parsing)."""
    return face_parsing(traits, variation, size).labels
