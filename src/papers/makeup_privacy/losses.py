"""Makeup-privacy's training objectives, term by term as the authors' code computes them.

With ``x`` the source (no makeup), ``y`` the reference (makeup), ``x̂`` the generated image (all RGB in
[-1, 1], 256 px), ``t`` the target identity's image, ``m_p`` the source's unchanged mask and ``φ`` the VGG-19
encoder (features deepest first: relu4_1, relu3_1, relu2_1, relu1_1):

- ``gan``: LSGAN, the mean over the discriminator scales of MSE(D(x, x̂), 1) (the discriminator side:
  :func:`discriminator_losses`, MSE(D(x, x̂), 0) and MSE(D(x, y), 1));
- ``feature_matching``: Σ over scales and intermediate layers of L1(D_l(x, x̂), D_l(x, y)), divided by the
  number of scales;
- ``vgg``: ``20·MSE(x̂·m_p, x·m_p) + Σ_l [MSE(μ_l(x̂), μ_l(y)) + MSE(σ_l(x̂), σ_l(y))]`` (protected-region
  content plus AdaIN-statistics style over the four levels; σ unbiased, + 1e-6);
- ``match``: ``Σ_l MSE(φ_l(x̂), warped_l)`` over the warped levels (relu4_1 and relu3_1);
- ``makeup_eye_left`` / ``makeup_eye_right`` / ``makeup_lips`` / ``makeup_skin``: BeautyGAN's histogram loss,
  L1 (on the 0–255 scale) between ``x̂·m`` and the source's region histogram-matched to the reference's
  (:func:`histogram_target`, no gradient);
- ``target``: the mean over the FR models ``f`` of ``max(0, d(f(x̂), f(t)) − d(f(x̂), f(x)) + 1)``, with
  ``d = 1 − cos`` and ``f(t)`` detached (impersonate ``t``, leave the own identity).

Weights (:class:`LossWeights`) are the authors' defaults: GAN 1, feature matching 10, VGG 10, match 3, eyes
10 + 10, lips 10, skin 1, target 10. Reductions follow the authors' batch-1 code; where it summed over the
batch (the content term zipped over the batch dimension) the mean is taken, identical at batch size 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from src.config.errors import ConfigError
from src.networks.recognizers.base import FaceRecognizer

CONTENT_RATIO = 20.0
STD_EPS = 1e-6
TRIPLET_MARGIN = 1.0
LEVELS = 256
MAKEUP_REGIONS = ("eye_left", "eye_right", "lips", "skin")

Prediction = Tensor | Sequence[Tensor]
Embedder = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LossWeights:
    """Weight of each generator term (the authors' defaults); 0 drops a term."""

    gan: float = 1.0
    feature_matching: float = 10.0
    vgg: float = 10.0
    match: float = 3.0
    makeup_eye_left: float = 10.0
    makeup_eye_right: float = 10.0
    makeup_lips: float = 10.0
    makeup_skin: float = 1.0
    target: float = 10.0

    @classmethod
    def from_mapping(cls, given: Mapping[str, float] | None = None) -> LossWeights:
        """Defaults updated with ``given``; unknown names and negative weights are errors naming the key."""
        values = asdict(cls())
        for name, value in (given or {}).items():
            if name not in values:
                raise ConfigError(f"makeup_privacy loss: unknown term {name!r}; the terms are {list(values)}")
            if float(value) < 0:
                raise ConfigError(f"makeup_privacy loss: the weight of {name!r} must be >= 0, got {value}")
            values[name] = float(value)
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        """``{term: weight}`` in declaration order."""
        return asdict(self)


TERMS: tuple[str, ...] = tuple(field.name for field in fields(LossWeights))


def weighted_total(terms: Mapping[str, Tensor], weights: LossWeights | Mapping[str, float]) -> Tensor:
    """Σ weight · term; unknown names, a weight table missing a term, an uncomputed weighted term: errors.

    A plain mapping must name every term (use :meth:`LossWeights.from_mapping` to start from the defaults);
    terms whose weight is 0 may be left out of ``terms`` and are skipped if present.
    """
    table = weights.as_dict() if isinstance(weights, LossWeights) else dict(weights)
    unknown = sorted(set(table) - set(TERMS)) + sorted(set(terms) - set(TERMS))
    if unknown:
        raise ConfigError(f"makeup_privacy loss: unknown term(s) {unknown}; the terms are {list(TERMS)}")
    missing = [name for name in TERMS if name not in table]
    if missing:
        raise ConfigError(f"makeup_privacy loss: no weight given for {missing}")
    absent = [name for name in TERMS if table[name] and name not in terms]
    if absent:
        raise ConfigError(f"makeup_privacy loss: term(s) {absent} have a weight but were not computed")
    parts = [table[name] * terms[name].reshape(()) for name in TERMS if name in terms and table[name]]
    if not parts:
        raise ConfigError("makeup_privacy loss: every weight is 0: nothing to train")
    return torch.stack(parts).sum()


# ----------------------------------------------------------------------------------------- adversarial
def _final(prediction: Prediction) -> Tensor:
    return prediction if isinstance(prediction, Tensor) else prediction[-1]


def lsgan_loss(predictions: Sequence[Prediction], real: bool) -> Tensor:
    """Mean over discriminator scales of MSE(final output, 1 or 0); each scale is a tensor or a list of
    layer outputs whose last is the prediction."""
    if len(predictions) == 0:
        raise ValueError("lsgan_loss: no discriminator outputs")
    label = 1.0 if real else 0.0
    losses = [F.mse_loss(out, torch.full_like(out, label)) for out in map(_final, predictions)]
    return torch.stack(losses).mean()


def generator_gan_loss(fake: Sequence[Prediction]) -> Tensor:
    """The generator's LSGAN term: D(x, x̂) pushed to 1."""
    return lsgan_loss(fake, real=True)


def discriminator_losses(fake: Sequence[Prediction], real: Sequence[Prediction]) -> dict[str, Tensor]:
    """The discriminator's LSGAN terms ``fake`` (D(x, x̂) → 0) and ``real`` (D(x, y) → 1); their sum is L_D."""
    return {"fake": lsgan_loss(fake, real=False), "real": lsgan_loss(real, real=True)}


def feature_matching_loss(fake: Sequence[Sequence[Tensor]], real: Sequence[Sequence[Tensor]]) -> Tensor:
    """Σ over scales and intermediate layers (all but the last output) of L1(fake, real.detach()) / scales."""
    if len(fake) == 0 or len(fake) != len(real):
        raise ValueError(f"feature_matching_loss: {len(fake)} fake vs {len(real)} real discriminator scales")
    total = fake[0][-1].new_zeros(())
    for fake_layers, real_layers in zip(fake, real, strict=True):
        for fake_out, real_out in zip(fake_layers[:-1], real_layers[:-1], strict=True):
            total = total + F.l1_loss(fake_out, real_out.detach())
    return total / len(fake)


# ------------------------------------------------------------------------------------------------- VGG
def mean_std(features: Tensor, eps: float = STD_EPS) -> tuple[Tensor, Tensor]:
    """Per-channel spatial mean and (unbiased) std + ``eps``, each ``[B, C, 1, 1]``."""
    flat = features.flatten(2)
    return flat.mean(dim=2)[..., None, None], flat.std(dim=2)[..., None, None] + eps


def style_loss(generated_features: Sequence[Tensor], reference_features: Sequence[Tensor]) -> Tensor:
    """Σ over levels of MSE between the feature means plus MSE between the stds (AdaIN statistics)."""
    _same_levels(generated_features, reference_features, "style_loss")
    total = generated_features[0].new_zeros(())
    for generated, reference in zip(generated_features, reference_features, strict=True):
        g_mean, g_std = mean_std(generated)
        r_mean, r_std = mean_std(reference)
        total = total + F.mse_loss(g_mean, r_mean) + F.mse_loss(g_std, r_std)
    return total


def content_loss(generated: Tensor, source: Tensor, protect_mask: Tensor) -> Tensor:
    """MSE between ``x̂·m_p`` and ``x·m_p`` (pixels, [-1, 1]); ``protect_mask`` is ``[B, 1, H, W]``."""
    if generated.shape != source.shape or protect_mask.shape[2:] != generated.shape[2:]:
        raise ValueError(
            f"content_loss: images {tuple(generated.shape)} / {tuple(source.shape)} and mask "
            f"{tuple(protect_mask.shape)} must agree"
        )
    return F.mse_loss(generated * protect_mask, source * protect_mask)


def vgg_loss(
    generated: Tensor,
    source: Tensor,
    protect_mask: Tensor,
    generated_features: Sequence[Tensor],
    reference_features: Sequence[Tensor],
    content_ratio: float = CONTENT_RATIO,
) -> Tensor:
    """``content_ratio · content_loss + style_loss`` (the ``vgg`` term before its weight)."""
    content = content_loss(generated, source, protect_mask)
    return content_ratio * content + style_loss(generated_features, reference_features)


def match_loss(generated_features: Sequence[Tensor], warped_features: Sequence[Tensor]) -> Tensor:
    """Σ_l MSE(φ_l(x̂), warped_l) over the warped levels (the first ``len(warped_features)`` of φ(x̂))."""
    if len(warped_features) == 0 or len(generated_features) < len(warped_features):
        raise ValueError(
            f"match_loss: {len(warped_features)} warped levels for {len(generated_features)} VGG levels"
        )
    levels = list(generated_features[: len(warped_features)])
    _same_levels(levels, warped_features, "match_loss")
    total = levels[0].new_zeros(())
    for generated, warped in zip(levels, warped_features, strict=True):
        total = total + F.mse_loss(generated, warped)
    return total


def _same_levels(first: Sequence[Tensor], second: Sequence[Tensor], who: str) -> None:
    shapes = [tuple(t.shape) for t in first], [tuple(t.shape) for t in second]
    if len(first) == 0 or shapes[0] != shapes[1]:
        raise ValueError(f"{who}: feature levels differ: {shapes[0]} vs {shapes[1]}")


# ------------------------------------------------------------------------------------ histogram match
def to_pixels(images: Tensor) -> Tensor:
    """[-1, 1] images → the 0–255 scale of the histogram loss (clamped, not rounded)."""
    return ((images + 1) / 2).clamp(0, 1) * 255


def cumulative_histogram(levels: np.ndarray) -> np.ndarray:
    """float32 CDF over the 256 integer levels, accumulated in float32 one bin at a time."""
    hist = np.bincount(levels, minlength=LEVELS).astype(np.float32)
    return np.cumsum(hist / hist.sum(dtype=np.float32), dtype=np.float32)


def transfer_table(source_cdf: np.ndarray, reference_cdf: np.ndarray) -> np.ndarray:
    """Level map: ``i`` → the first ``j`` in 1..255 with ``ref[j-1] <= src[i] <= ref[j]``, else ``i``.

    Levels 0 and 255 map to themselves (the authors' table); a NaN CDF (an empty region) matches nothing, so
    the table is then the identity.
    """
    inside = (reference_cdf[None, :-1] <= source_cdf[:, None]) & (
        source_cdf[:, None] <= reference_cdf[None, 1:]
    )
    table = np.where(inside.any(axis=1), inside.argmax(axis=1) + 1, np.arange(LEVELS))
    table[0], table[-1] = 0, LEVELS - 1
    return table


def match_channels(values: Tensor, reference_values: Tensor) -> Tensor:
    """Per-channel histogram matching of ``values`` ``[C, N]`` to ``reference_values`` ``[C, M]`` (0–255).

    Each value is truncated to its integer level and replaced by that level's table entry
    (:func:`transfer_table`), so the result holds integers; empty inputs give the identity table.
    """
    levels = values.detach().floor().long().clamp(0, LEVELS - 1)
    reference_levels = reference_values.detach().floor().long().clamp(0, LEVELS - 1)
    matched = torch.empty_like(values, dtype=torch.float32)
    for channel in range(values.shape[0]):
        source = levels[channel].cpu().numpy()
        reference = reference_levels[channel].cpu().numpy()
        if source.size == 0 or reference.size == 0:
            table = np.arange(LEVELS)
        else:
            table = transfer_table(cumulative_histogram(source), cumulative_histogram(reference))
        lookup = torch.as_tensor(table, dtype=torch.float32, device=values.device)
        matched[channel] = lookup[levels[channel]]
    return matched


@torch.no_grad()
def histogram_target(
    source: Tensor, reference: Tensor, source_mask: Tensor, reference_mask: Tensor
) -> Tensor:
    """The histogram loss's target ``[B, 3, H, W]`` (0–255): the source's region pixels matched to the
    reference's region, zero elsewhere. Images in [-1, 1]; masks ``[B, 1, H, W]``, nonzero = in the region."""
    source_pixels = to_pixels(source) * source_mask
    reference_pixels = to_pixels(reference) * reference_mask
    target = torch.zeros_like(source_pixels)
    for b in range(source.shape[0]):
        where = source_mask[b, 0] != 0
        values = source_pixels[b][:, where]
        reference_values = reference_pixels[b][:, reference_mask[b, 0] != 0]
        target[b][:, where] = match_channels(values, reference_values)
    return target


def histogram_loss(
    generated: Tensor, reference: Tensor, source: Tensor, source_mask: Tensor, reference_mask: Tensor
) -> Tensor:
    """L1 (0–255 scale, mean over all pixels) between ``x̂·m_src`` and :func:`histogram_target` (detached)."""
    target = histogram_target(source, reference, source_mask, reference_mask)
    return F.l1_loss(to_pixels(generated) * source_mask, target)


def makeup_terms(
    generated: Tensor,
    reference: Tensor,
    source: Tensor,
    source_regions: Mapping[str, Tensor],
    reference_regions: Mapping[str, Tensor],
    weights: LossWeights | None = None,
) -> dict[str, Tensor]:
    """``makeup_<region>`` histogram losses for the four regions (a zero weight skips the region)."""
    terms: dict[str, Tensor] = {}
    table = (weights or LossWeights()).as_dict()
    for region in MAKEUP_REGIONS:
        name = f"makeup_{region}"
        if table[name]:
            terms[name] = histogram_loss(
                generated, reference, source, source_regions[region], reference_regions[region]
            )
    return terms


# ------------------------------------------------------------------------------------- impersonation
def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample ``1 − cos(a, b)`` of embedding batches (broadcast over a batch of 1)."""
    return 1.0 - F.cosine_similarity(a, b, dim=1)


def impersonation_loss(
    adversarial: Tensor, target: Tensor, source: Tensor, margin: float = TRIPLET_MARGIN
) -> Tensor:
    """Triplet ``mean_b max(0, d(adv, target) − d(adv, source) + margin)`` with the cosine distance."""
    return F.relu(cosine_distance(adversarial, target) - cosine_distance(adversarial, source) + margin).mean()


def target_loss(
    generated: Tensor,
    target: Tensor,
    source: Tensor,
    embedders: Sequence[Embedder],
    margin: float = TRIPLET_MARGIN,
) -> Tensor:
    """Mean over the FR ``embedders`` of :func:`impersonation_loss` (the target's embedding detached).

    Each embedder maps 256-px [-1, 1] images to embeddings (:func:`recognizer_embedder`); ``target`` may be a
    batch of one, shared by every sample.
    """
    if not embedders:
        raise ValueError("target_loss: no face recognizers")
    losses = [
        impersonation_loss(embed(generated), embed(target).detach(), embed(source), margin)
        for embed in embedders
    ]
    return torch.stack(losses).mean()


def resize_for_recognizer(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize (no antialiasing, align_corners False), as the authors feed their FR models."""
    if tuple(images.shape[2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def recognizer_embedder(recognizer: FaceRecognizer) -> Embedder:
    """[-1, 1] images → raw embeddings of a zoo recognizer, resized to its input size as the authors do."""

    def embed(images: Tensor) -> Tensor:
        resized = resize_for_recognizer(images, (recognizer.input_size[0], recognizer.input_size[1]))
        return recognizer.embed(resized, input_range="[-1,1]", normalize=False)

    return embed
