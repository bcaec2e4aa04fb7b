"""FaceShield's Stage-I objective L_FSE, which trains the feature-separation extractor (SE) only.

``L_FSE = w_angle·[A(Zs, Ps) + A(Zt, Pt)] + w_hsic·[H(Zs, Ps) + H(Zt, Pt)] + w_ir·L_IR (+ w_info·KL)``
with the original weights 1, 0.5, 0.5 (and 0: the IB's KL is computed but unused).
See ``docs/papers/faceshield.md``, "Losses".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from src.papers.faceshield.losses.independence import angle_loss, hsic_loss


def identity_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Batch mean of the cosine between identity embeddings ``a`` and ``b`` ``[B, D]``."""
    return F.cosine_similarity(a, b, dim=1).mean()


def identity_reconstruction_loss(
    explicit_s: Tensor, restricted_s: Tensor, explicit_t: Tensor, restricted_t: Tensor
) -> Tensor:
    """``L_IR = 2 − cos(X_id^s, zid^s) − cos(X_id^t, zid^t)`` (batch means): the restricted identity must
    stay close to the encoder's explicit one, so the bottleneck does not throw identity away."""
    return 2 - identity_cosine(explicit_s, restricted_s) - identity_cosine(explicit_t, restricted_t)


@dataclass
class FSELosses:
    """L_FSE and its unweighted terms (each already summed over the source and target halves)."""

    total: Tensor
    angle: Tensor
    hsic: Tensor
    identity: Tensor


def fse_loss(
    z_s: Sequence[Tensor],
    p_s: Sequence[Tensor],
    z_t: Sequence[Tensor],
    p_t: Sequence[Tensor],
    explicit_ids: tuple[Tensor, Tensor],
    restricted_ids: tuple[Tensor, Tensor],
    angle_weight: float = 1.0,
    hsic_weight: float = 0.5,
    identity_weight: float = 0.5,
    info: Tensor | None = None,
    info_weight: float = 0.0,
    faithful: bool = True,
) -> FSELosses:
    """L_FSE from the per-layer features of all IB layers (``Z_0 … Z_9``, ``P_0 … P_9``).

    Layer 0 is skipped, as in the original (there ``P_0`` is the image itself). ``explicit_ids`` and
    ``restricted_ids`` are the (source, target) encoder and SE identities. ``info`` is the SE's KL
    (:attr:`SEOutput.info`), added with ``info_weight`` (0 in the original, so it may be left out).
    ``faithful`` selects the original's angle and HSIC variants (see :mod:`.independence`).
    """
    angle = angle_loss(z_s[1:], p_s[1:], faithful) + angle_loss(z_t[1:], p_t[1:], faithful)
    hsic = hsic_loss(z_s[1:], p_s[1:], faithful) + hsic_loss(z_t[1:], p_t[1:], faithful)
    identity = identity_reconstruction_loss(
        explicit_ids[0], restricted_ids[0], explicit_ids[1], restricted_ids[1]
    )
    total = angle_weight * angle + hsic_weight * hsic + identity_weight * identity
    if info_weight:
        if info is None:
            raise ValueError("info_weight is non-zero but no info (KL) term was given")
        total = total + info_weight * info
    return FSELosses(total, angle, hsic, identity)
