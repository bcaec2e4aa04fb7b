"""FPG's online sample refinement and its feature-separation loss, as functions of tensors.

Batches are SBI pair batches ``[reals; fakes]`` of ``2n`` images: row ``i`` and ``i + n`` come from the same
frame, and ``masks`` ``[2n, 1, H, W]`` hold, on both rows of a pair, the fake's soft blend mask (the module
copies each fake's mask onto its real first, as the original does).

- **Shape refinement** (:func:`shape_refinement`): for a fake the detector already finds fake (p > 0.5) while
  its Grad-CAM covers less than ``t`` of the blended region, with probability p the fake is re-blended from
  its real over the part of the region the detector did *not* look at, softened by
  :func:`simple_soft_mask`; both masks of the pair become the new mask.
- **Magnitude refinement** (:func:`magnitude_refinement`): one signed step ``M·(1 ± ε)`` on each fake's blend
  mask, the sign that of the majority of ``∂L/∂M = ∇_x CE(f(x), fake) ⊙ (S − B)`` (the direction that makes
  the fake harder), re-blended with the residual the linear blend does not explain kept.
- **Separation loss** (:func:`separation_loss`): features pooled over each pair's blended region
  (:func:`masked_features`) of a real and of its own fake are driven apart (cosine → −1); pairs are kept or
  dropped **together** (:func:`pair_keep`), so row ``i`` of the reals always meets row ``i`` of the fakes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from src.datamodules.components.self_blending import SelfBlendConfig, soft_mask

ERODE_SHAPES = ("square", "released")


@dataclass(frozen=True)
class RefinementConfig:
    """The parameters of the two refinements (defaults: the original code's).

    ``threshold`` (t): refine a fake when the share of its blended region the CAM covers is below this;
    ``min_confidence``: ... and its fake probability is above this (the refinement then happens with that
    probability); ``eps`` (ε): the magnitude step; ``magnitude_p``: the probability that a batch takes the
    magnitude step. The new mask of a shape-refined fake (:func:`simple_soft_mask`): an erosion with an even
    square kernel drawn from ``erode_kernel`` (``erode="released"``: the 2×1 kernel the released code
    actually applies, see docs/papers/fpg.md), then SBI's soft-mask chain with ``mask_size``,
    ``blur_kernel_1``, ``blur_kernel_2`` and ``blur_sigma_2`` (inclusive ranges) and no blend ratio.
    """

    threshold: float = 0.2
    min_confidence: float = 0.5
    eps: float = 0.01
    magnitude_p: float = 0.5
    erode: str = "square"
    erode_kernel: tuple[int, int] = (10, 14)
    mask_size: tuple[int, int] = (192, 256)
    blur_kernel_1: tuple[int, int] = (17, 25)
    blur_kernel_2: tuple[int, int] = (17, 25)
    blur_sigma_2: tuple[int, int] = (15, 45)

    def __post_init__(self) -> None:
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        for name in ("threshold", "min_confidence", "magnitude_p"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"model.refinement.{name} must be a number in [0, 1], got {value!r}")
        if not isinstance(self.eps, int | float) or isinstance(self.eps, bool) or not 0 <= self.eps < 1:
            raise ValueError(f"model.refinement.eps must be a number in [0, 1), got {self.eps!r}")
        if self.erode not in ERODE_SHAPES:
            raise ValueError(f"model.refinement.erode must be one of {ERODE_SHAPES}, got {self.erode!r}")
        low, high = self.erode_kernel
        if low < 2 or low > high or low % 2 or high % 2:
            raise ValueError(
                f"model.refinement.erode_kernel must be even bounds >= 2, got {self.erode_kernel}"
            )
        try:
            self.soft_mask_config  # noqa: B018  (validates the soft-mask ranges now)
        except ValueError as error:
            raise ValueError(f"model.refinement: {error}") from error

    @functools.cached_property
    def soft_mask_config(self) -> SelfBlendConfig:
        """The SBI soft-mask settings of :func:`simple_soft_mask` (blend ratio fixed at 1)."""
        return SelfBlendConfig(
            soft_mask_size=self.mask_size,
            blur_kernel_1=self.blur_kernel_1,
            blur_kernel_2=self.blur_kernel_2,
            blur_sigma_2=self.blur_sigma_2,
            blend_ratios=(1.0,),
        )


# ------------------------------------------------------------------------------------ shape refinement


def simple_soft_mask(
    region: np.ndarray, rng: np.random.Generator, config: RefinementConfig
) -> np.ndarray | None:
    """The soft mask ``(H, W)`` in ``[0, 1]`` of a binary ``region``: erode, then SBI's soft-mask chain
    (resize to a random size, blur, keep the exact 1s, blur, normalise, resize back). ``None`` when the
    erosion leaves nothing (the original would divide by zero and blend NaNs)."""
    region = np.ascontiguousarray(region, dtype=np.float32)
    if config.erode == "square":
        low, high = config.erode_kernel
        k = int(low + 2 * rng.integers(0, (high - low) // 2 + 1))
        kernel = np.ones((k, k), np.uint8)
    else:  # the released code passes the tuple (k, k) as the kernel: OpenCV reads it as a 2×1 element
        kernel = np.ones((2, 1), np.uint8)
    eroded = cv2.erode(region, kernel)
    if not eroded.any():
        return None
    soft, _ = soft_mask(eroded, rng, config.soft_mask_config)
    return soft


@dataclass
class ShapeResult:
    """What :func:`shape_refinement` returns: the batch and masks (new tensors) and, per fake, the ratio ρ,
    whether it was a candidate (ρ < t, p > min_confidence, non-empty region), refined, or drawn but skipped
    because its unlooked region eroded to nothing."""

    images: Tensor
    masks: Tensor
    ratio: Tensor
    candidate: Tensor
    refined: Tensor
    skipped: Tensor


def attention_ratio(cams: Tensor, masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per fake: ρ = |D| / |{M > 0}| with D = {c > mean(c[c > 0])} ∩ {M > 0}, c = CAM / max(CAM); also the
    region sizes ``|{M > 0}|`` and the looked-at maps ``{c > mean(c[c > 0])}`` ``[n, H, W]``.

    ``cams`` ``[n, H, W]``, ``masks`` ``[n, 1, H, W]``. A CAM with no positive value looks at nothing (ρ = 0),
    as in the original (where the mean of an empty set is NaN and no value exceeds it).
    """
    flat = cams.flatten(1).double()
    peak = flat.max(dim=1).values
    c = flat / torch.where(peak != 0, peak, torch.ones_like(peak))[:, None]
    positive = c > 0
    count = positive.sum(dim=1)
    mean = (c * positive).sum(dim=1) / count.clamp_min(1)
    looked = (c > mean[:, None]) & (count > 0)[:, None]
    region = masks.flatten(1) > 0
    area = region.sum(dim=1)
    ratio = (looked & region).sum(dim=1).double() / (area.double() + 1e-12)
    return ratio, area, looked.view_as(cams)


def shape_refinement(
    images: Tensor,
    masks: Tensor,
    cams: Tensor,
    fake_probability: Tensor,
    rng: np.random.Generator,
    config: RefinementConfig,
) -> ShapeResult:
    """Shape refinement of the fakes of a pair batch (module docstring).

    ``images`` ``[2n, 3, H, W]``, ``masks`` ``[2n, 1, H, W]`` (pairs share a mask), ``cams`` ``[n, H, W]``
    (the fakes' Grad-CAM for class fake, in ``[0, 1]``), ``fake_probability`` ``[n]`` (the detector's
    ``softmax[:, 1]`` on the fakes). Reals never change; a refined fake becomes
    ``(1 − M')·real + M'·fake`` and both masks of its pair become ``M'``. Inputs are not modified.
    """
    n = images.shape[0] // 2
    if cams.shape[0] != n or fake_probability.shape != (n,):
        raise ValueError(f"shape_refinement: need {n} CAMs and fake probabilities, got {tuple(cams.shape)}")
    images, masks = images.clone(), masks.clone()
    ratio, area, looked = attention_ratio(cams, masks[n:])
    p = fake_probability.detach().double()
    candidate = (ratio < config.threshold) & (p > config.min_confidence) & (area > 0)
    refined = torch.zeros(n, dtype=torch.bool, device=images.device)
    skipped = torch.zeros_like(refined)
    indices = candidate.nonzero().flatten().tolist()
    if indices:
        unlooked = ((masks[n:, 0] > 0) & ~looked).cpu().numpy()
        probabilities = p.cpu().numpy()
        for i in indices:
            if rng.random() >= probabilities[i]:  # refine with probability p
                continue
            new = simple_soft_mask(unlooked[i], rng, config)
            if new is None:
                skipped[i] = True
                continue
            m = torch.from_numpy(new).to(images)[None]
            images[n + i] = (1 - m) * images[i] + m * images[n + i]
            masks[i] = masks[n + i] = m
            refined[i] = True
    return ShapeResult(images, masks, ratio.float(), candidate, refined, skipped)


# -------------------------------------------------------------------------------- magnitude refinement


def blend_step_sign(gradient: Tensor, sources: Tensor, backgrounds: Tensor) -> Tensor:
    """Per fake, +1 when more entries of ``∂L/∂M = gradient ⊙ (S − B)`` are positive than negative, else −1
    (ties included): the direction of the mask step that raises the loss on "fake"."""
    change = gradient * (sources - backgrounds)
    positive = (change > 0).flatten(1).sum(dim=1)
    negative = (change < 0).flatten(1).sum(dim=1)
    return torch.where(positive > negative, 1.0, -1.0).to(gradient.dtype)


def blend_residual(fakes: Tensor, sources: Tensor, backgrounds: Tensor, masks: Tensor) -> Tensor:
    """``δ = F − (S ⊙ M + B ⊙ (1 − M))``: what linear blending does not explain (augmentation, JPEG, a
    shape re-blend)."""
    return fakes - (sources * masks + backgrounds * (1 - masks))


def reblend(sources: Tensor, backgrounds: Tensor, masks: Tensor, residual: Tensor) -> Tensor:
    """``clip(S ⊙ M + B ⊙ (1 − M) + δ, 0, 1)``."""
    return (sources * masks + backgrounds * (1 - masks) + residual).clamp(0, 1)


def step_masks(masks: Tensor, signs: Tensor, eps: float) -> Tensor:
    """``clip(M · (1 + ε·s), 0, 1)`` with one sign per fake."""
    return (masks * (1 + eps * signs.view(-1, *([1] * (masks.ndim - 1))))).clamp(0, 1)


def magnitude_refinement(
    net: Callable[[Tensor], Tensor],
    backgrounds: Tensor,
    fakes: Tensor,
    sources: Tensor,
    masks: Tensor,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """The fakes after one signed step of size ``eps`` on their blend masks (module docstring), detached,
    and the signs. ``backgrounds``: the reals ``[n, 3, H, W]``; ``masks`` ``[n, 1, H, W]``.

    The gradient is ``torch.autograd.grad`` of the mean cross-entropy towards "fake" with respect to the
    input: parameter ``.grad`` stays untouched (set ``net``'s mode before calling).
    """
    residual = blend_residual(fakes, sources, backgrounds, masks)
    inputs = fakes.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = net(inputs)
        target = torch.ones(logits.shape[0], dtype=torch.long, device=logits.device)
        (gradient,) = torch.autograd.grad(F.cross_entropy(logits.float(), target), inputs)
    signs = blend_step_sign(gradient, sources, backgrounds)
    return reblend(sources, backgrounds, step_masks(masks, signs, eps), residual).detach(), signs


# ------------------------------------------------------------------------ masked features, separation


def feature_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Binarised masks (``M > 0`` → 1) resized to the feature map (nearest, as the original)."""
    return F.interpolate((masks > 0).float(), size=size, mode="nearest")


def pair_keep(small_masks: Tensor) -> Tensor:
    """Rows ``[2n]`` to keep: pair ``i`` stays only when **both** its rows have a non-empty mask, so the real
    and fake halves stay aligned (the original filtered rows one by one, then split the survivors)."""
    n = small_masks.shape[0] // 2
    nonempty = small_masks.flatten(1).sum(dim=1) > 0
    pairs = nonempty[:n] & nonempty[n:]
    return torch.cat([pairs, pairs])


def masked_features(features: Tensor, small_masks: Tensor) -> Tensor:
    """``Σ(F ⊙ M) / Σ M`` over the spatial axes, L2-normalised: one vector per row ``[B, C]`` (rows with an
    empty mask give 0; drop them with :func:`pair_keep`)."""
    pooled = (features * small_masks).sum(dim=(2, 3)) / small_masks.sum(dim=(2, 3)).clamp_min(1)
    return F.normalize(pooled, dim=1)


def separation_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """``mean_i (cos(v_real,i, v_fake,i) + 1) / 2`` of L2-normalised pairs (0 when the pair is opposite,
    1 when identical); 0 for no pair."""
    if real_features.shape != fake_features.shape:
        raise ValueError(
            "separation_loss: pairs must align, got "
            f"{tuple(real_features.shape)} and {tuple(fake_features.shape)}"
        )
    if real_features.shape[0] == 0:
        return real_features.sum() * 0.0
    return (((real_features * fake_features).sum(dim=1) + 1) / 2).mean()


def pair_separation_loss(features: Tensor, small_masks: Tensor) -> Tensor:
    """L_sep of a pair batch: the pairs kept by :func:`pair_keep` (both rows non-empty), their masked
    features, real half against fake half (row ``i`` of each half from the same pair)."""
    keep = pair_keep(small_masks)
    pooled = masked_features(features[keep], small_masks[keep])
    half = pooled.shape[0] // 2
    return separation_loss(pooled[:half], pooled[half:])


def draw(rng: np.random.Generator, probability: float) -> bool:
    """One Bernoulli draw (``probability`` 0 and 1 never and always, without consuming randomness)."""
    if probability <= 0:
        return False
    if probability >= 1:
        return True
    return bool(rng.random() < probability)
