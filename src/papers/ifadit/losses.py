"""iFADIT's training objectives, **reconstructed**: the authors released no training code and no losses.

The terms follow the paper's description of its two phases and the options the released code carries
(docs/papers/ifadit.md, "Training (reconstructed)"); every term has its own weight, and a weight of 0 drops
the term (it is then not computed). Identities are L2-normalised 512-d vectors; images are in [0, 1].

Phase 1 (attribute encoder + mapper; identity encoder and generator frozen), on
``x̂ = G(M([E_id(x); E_attr(x)]))``: ``l2`` MSE(x̂, x), ``lpips`` LPIPS(x̂, x), ``identity``
1 − cos(E_id(x̂), E_id(x)); and ``swap_identity`` 1 − cos(E_id(x̂_s), E_id(y)) on
``x̂_s = G(M([E_id(y); E_attr(x)]))`` with ``y`` another image of the batch (the identity/attribute swap of
ID-disentanglement, whose data format iFADIT uses: without it nothing makes the generator follow the identity
input rather than the attribute codes).

Phase 2 (flow + ICL; phase-1 networks frozen), with keys ``c1`` (right) and ``c2`` (another), ``x_a`` the
anonymised images and ``u = ICL(E_id(x_a1))``: ``anonymity`` ReLU(cos(E_id(x_a1), z) − margin);
``diversity`` ReLU(cos(E_id(x_a1), E_id(x_a2)) − margin); ``recovery`` 1 − cos(F⁻¹(u; c1), z);
``wrong_key`` ReLU(cos(F⁻¹(u; c2), z) − margin); ``compensation`` MSE(u, F(z; c1)); ``image_recovery``
L1(x_r, x). The margin is the released test option ``id_cos_margin`` (0.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.config.errors import ConfigError

#: phase-1 weights: the pSp options the authors vendored (L2 1.0, LPIPS 0.8); the identity weight is ours
PHASE1_WEIGHTS = {"l2": 1.0, "lpips": 0.8, "identity": 0.1, "swap_identity": 0.1}
#: phase-2 weights (reconstructed, unconfirmed: the paper's values are not in the released code)
PHASE2_WEIGHTS = {
    "anonymity": 1.0,
    "diversity": 1.0,
    "recovery": 1.0,
    "wrong_key": 1.0,
    "compensation": 1.0,
    "image_recovery": 1.0,
}
ID_COS_MARGIN = 0.1


def check_weights(
    given: Mapping[str, float] | None, defaults: Mapping[str, float], who: str
) -> dict[str, float]:
    """``defaults`` updated with ``given``; unknown names and negative weights are errors naming the key."""
    weights = dict(defaults)
    for name, value in (given or {}).items():
        if name not in defaults:
            raise ConfigError(f"{who}: unknown loss term {name!r}; the terms are {sorted(defaults)}")
        if float(value) < 0:
            raise ConfigError(f"{who}: the weight of {name!r} must be >= 0, got {value}")
        weights[name] = float(value)
    return weights


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample cosine similarity of two batches of vectors."""
    return F.cosine_similarity(a, b, dim=1)


def weighted_total(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """Σ weight · term over the computed terms."""
    if not terms:
        raise ConfigError("every loss weight is 0: nothing to train")
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()


def phase1_terms(
    images: Tensor,
    reconstructed: Tensor,
    identity: Tensor,
    reconstructed_identity: Callable[[], Tensor],
    perceptual: Callable[[Tensor, Tensor], Tensor] | None,
    weights: Mapping[str, float],
    swapped: Callable[[], tuple[Tensor, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """Phase-1 terms with a non-zero weight (``reconstructed_identity`` and ``swapped`` — giving
    ``(E_id(x̂_s), E_id(y))`` — are only called when needed)."""
    terms: dict[str, Tensor] = {}
    if weights["l2"]:
        terms["l2"] = F.mse_loss(reconstructed, images)
    if weights["lpips"]:
        if perceptual is None:
            raise ConfigError("the lpips term has a weight but no perceptual network is configured")
        terms["lpips"] = perceptual(reconstructed, images).mean()
    if weights["identity"]:
        terms["identity"] = (1.0 - cosine(reconstructed_identity(), identity)).mean()
    if weights["swap_identity"]:
        if swapped is None:
            raise ConfigError("the swap_identity term has a weight but no swapped faces were given")
        observed, donor = swapped()
        terms["swap_identity"] = (1.0 - cosine(observed, donor)).mean()
    return terms


def phase2_terms(
    identity: Tensor,
    transformed: Tensor,
    observed: Mapping[str, Callable[[], Any]],
    weights: Mapping[str, float],
    margin: float = ID_COS_MARGIN,
) -> dict[str, Tensor]:
    """Phase-2 terms with a non-zero weight.

    ``identity`` is ``z``, ``transformed`` is ``F(z; c1)``; ``observed`` gives, lazily, what each term needs:
    ``anonymous`` E_id(x_a1), ``anonymous_other`` E_id(x_a2), ``compensated`` ICL(E_id(x_a1)),
    ``recovered`` F⁻¹(ICL(E_id(x_a1)); c1), ``wrong`` F⁻¹(ICL(E_id(x_a1)); c2), ``images`` (x_r, x).
    """
    terms: dict[str, Tensor] = {}
    if weights["anonymity"]:
        terms["anonymity"] = F.relu(cosine(observed["anonymous"](), identity) - margin).mean()
    if weights["diversity"]:
        other = observed["anonymous_other"]()
        terms["diversity"] = F.relu(cosine(observed["anonymous"](), other) - margin).mean()
    if weights["recovery"]:
        terms["recovery"] = (1.0 - cosine(observed["recovered"](), identity)).mean()
    if weights["wrong_key"]:
        terms["wrong_key"] = F.relu(cosine(observed["wrong"](), identity) - margin).mean()
    if weights["compensation"]:
        terms["compensation"] = F.mse_loss(observed["compensated"](), transformed)
    if weights["image_recovery"]:
        recovered_images, images = observed["images"]()
        terms["image_recovery"] = F.l1_loss(recovered_images, images)
    return terms
