"""Impersonation (targeted 1:1) attack success rate: the share of protected images a recognizer verifies as
a chosen *target* identity, with the per-recognizer thresholds at FAR 0.1 / 0.01 / 0.001 that adversarial
face-protection papers publish.

Conventions
-----------
* ``scores[i]`` is the cosine similarity of protected image ``i`` with the target identity's image under one
  recognizer (:func:`target_similarities`); higher means "more likely the target".
* **Strict rule.** An attack succeeds when ``score > threshold`` (compared in float64), as in the published
  evaluation code the threshold table comes from; the rest of :mod:`src.metrics.verification` accepts with
  ``score >= threshold``. The two differ only for a score exactly equal to the threshold.
* **Thresholds.** Either a published one (:data:`PUBLISHED_FAR_THRESHOLDS`, :func:`published_threshold`) —
  valid only for the exact weights it was measured on — or one computed on the recognizer's own clean
  impostor scores with :func:`src.metrics.verification.threshold_at_far` (conservative: with
  ``k = floor(far × n)`` impostors, at most ``k`` of them satisfy ``score >= t``, hence also ``score > t``, so
  the realised FAR is ``<= far`` under the strict rule too).
* Bad input raises :class:`ValueError` naming the function.

Definitions and measured agreement: ``docs/metrics.md`` ("Impersonation").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from torch import Tensor

from src.metrics._checks import check_embeddings, check_tensor
from src.metrics.identity_settings import pair_scores
from src.metrics.verification import ThresholdShare, _check_rate_inputs

__all__ = [
    "PUBLISHED_FAR_THRESHOLDS",
    "ImpersonationSuccessRate",
    "impersonation_success_rate",
    "published_threshold",
    "target_similarities",
]

#: Cosine-similarity thresholds at FAR 0.1 / 0.01 / 0.001 published with the AMT-GAN evaluation code (Hu et
#: al., CVPR 2022; the same table is reused by later adversarial face-protection work), keyed by the names of
#: the matching architectures in :data:`src.networks.recognizers.RECOGNIZERS`. They hold only for the four
#: checkpoints released with that benchmark (IR-152, IR-SE-50, FaceNet InceptionResnetV1 with VGGFace2
#: logits, MobileFaceNet), fed RGB in [-1, 1] resized bilinearly to 112 px (FaceNet: 160 px); other weights
#: of the same architecture need thresholds of their own (:func:`src.metrics.verification.threshold_at_far`).
PUBLISHED_FAR_THRESHOLDS: Mapping[str, Mapping[float, float]] = MappingProxyType(
    {
        "ir152": MappingProxyType({0.1: 0.094632, 0.01: 0.166788, 0.001: 0.227922}),
        "ir_se50": MappingProxyType({0.1: 0.144840, 0.01: 0.241045, 0.001: 0.312703}),
        "facenet_vggface2": MappingProxyType({0.1: 0.256587, 0.01: 0.409131, 0.001: 0.591191}),
        "mobilefacenet": MappingProxyType({0.1: 0.183635, 0.01: 0.301611, 0.001: 0.380878}),
    }
)


def published_threshold(recognizer: str, far: float) -> float:
    """The published cosine threshold of ``recognizer`` (a key of :data:`PUBLISHED_FAR_THRESHOLDS`) at
    ``far`` (0.1, 0.01 or 0.001); unknown names or FARs raise naming the available ones."""
    name = "published_threshold"
    if recognizer not in PUBLISHED_FAR_THRESHOLDS:
        raise ValueError(
            f"{name}: no published thresholds for recognizer {recognizer!r}; available: "
            f"{', '.join(sorted(PUBLISHED_FAR_THRESHOLDS))} (for other weights, compute one with "
            "src.metrics.verification.threshold_at_far on clean impostor scores)"
        )
    table = PUBLISHED_FAR_THRESHOLDS[recognizer]
    try:
        key = float(far)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: far must be a number, got {far!r}") from None
    if key not in table:
        raise ValueError(
            f"{name}: no published threshold for {recognizer!r} at far={far!r}; available FARs: "
            f"{', '.join(f'{f:g}' for f in sorted(table))}"
        )
    return table[key]


def target_similarities(protected_emb: Tensor, target_emb: Tensor) -> Tensor:
    """Cosine similarity of each protected embedding ``[N, D]`` with the target's → float64 ``[N]``.

    ``target_emb`` is one target embedding (``[D]`` or ``[1, D]``, shared by all images) or one per image
    (``[N, D]``, e.g. a target chosen per source identity). Computed in float64 by
    :func:`src.metrics.identity_settings.pair_scores`.
    """
    name = "target_similarities"
    protected = check_embeddings(name, "protected_emb", protected_emb)
    target = check_tensor(name, "target_emb", target_emb)
    if target.ndim == 1:
        target = target.unsqueeze(0)
    target = check_embeddings(name, "target_emb", target)
    if target.shape[0] not in (1, protected.shape[0]):
        raise ValueError(
            f"{name}: `target_emb` must hold 1 or N={protected.shape[0]} embeddings, got {target.shape[0]}"
        )
    if target.shape[1] != protected.shape[1]:
        raise ValueError(
            f"{name}: embedding sizes differ: protected D={protected.shape[1]}, target D={target.shape[1]}"
        )
    return pair_scores(protected, target.expand(protected.shape[0], -1), "cosine")


def impersonation_success_rate(scores: Tensor, threshold: float) -> float:
    """Share of protected images verified as the target: ``mean(score > threshold)`` in float64.

    ``threshold``: :func:`published_threshold` for the released benchmark weights, or
    :func:`src.metrics.verification.threshold_at_far` on clean impostor scores of the recognizer in use.
    """
    s, t = _check_rate_inputs("impersonation_success_rate", scores, threshold)
    return float((s > t).double().mean())


class ImpersonationSuccessRate(ThresholdShare):
    """:func:`impersonation_success_rate` over batches and ranks (``sum`` states, exact under DDP).

    ``threshold`` is fixed at construction; ``update(scores)`` takes one batch of protected-vs-target
    similarities; ``compute()`` returns the float64 share with ``score > threshold``.
    """

    def counts(self, scores: Tensor) -> Tensor:
        """Verified as the target: ``score > threshold`` (strict, as the published evaluation code)."""
        return scores > self.threshold
