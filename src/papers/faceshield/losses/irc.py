"""FaceShield's Stage-II generator objective L_G (trains the generator and the attribute decoder).

``L_G = 3.3·L_adv + 1.6·L_IIDadv + 1.0·L_per + 1.0·L_ICL`` with ``L_ICL = 0.5·l_neg + 2·l_pos``. See
``docs/papers/faceshield.md``, "Losses".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from src.papers.faceshield.losses.adversarial import iid_adversarial_loss, lsgan_generator_loss

#: Source/target pairs whose explicit identities have a cosine below this count as "different people".
NEGATIVE_THRESHOLD = 0.3


def feature_reconstruction_loss(y_feats: Sequence[Tensor], target_feats: Sequence[Tensor]) -> Tensor:
    """``L_per = (1/L)·Σ_j mean((Y_j − P̃^t_j)²)``: Y's SE attribute features against X_t's blended ones,
    with the images themselves at ``j = 0`` (a pixel MSE); ``L = 10`` in FaceShield."""
    if len(y_feats) != len(target_feats) or not y_feats:
        raise ValueError(
            f"need the same non-zero number of layers, got {len(y_feats)} and {len(target_feats)}"
        )
    return torch.stack([(y - t).pow(2).mean() for y, t in zip(y_feats, target_feats, strict=True)]).mean()


@dataclass
class ICLLosses:
    """Identity terms: ``total = neg_weight·negative + pos_weight·positive``."""

    total: Tensor
    positive: Tensor
    negative: Tensor


def identity_contrastive_loss(
    y_id: Tensor,
    explicit_s: Tensor,
    explicit_t: Tensor,
    restricted_t: Tensor,
    pos_weight: float = 2.0,
    neg_weight: float = 0.5,
    threshold: float = NEGATIVE_THRESHOLD,
) -> ICLLosses:
    """``L_ICL = 0.5·l_neg + 2·l_pos``, with ``l_pos = −mean cos(Y_id, X_id^s)`` (Y carries the source
    identity) and ``l_neg = mean_{cos(X_id^s, X_id^t) < 0.3} (cos(Y_id, zid^t) − cos(X_id^s, X_id^t))²``
    (Y is as far from the target as the source is; 0 when no pair qualifies)."""
    positive = -F.cosine_similarity(y_id, explicit_s, dim=1).mean()
    cos_yt = F.cosine_similarity(y_id, restricted_t, dim=1)
    cos_st = F.cosine_similarity(explicit_s, explicit_t, dim=1)
    mask = cos_st < threshold
    negative = (cos_yt[mask] - cos_st[mask]).pow(2).mean() if mask.any() else cos_yt.new_zeros(())
    return ICLLosses(neg_weight * negative + pos_weight * positive, positive, negative)


@dataclass
class GeneratorLosses:
    """L_G and its unweighted terms."""

    total: Tensor
    adversarial: Tensor
    iid_adversarial: Tensor
    features: Tensor
    identity: ICLLosses


def generator_loss(
    fake_scores: Sequence[Tensor],
    phi_t: Tensor,
    phi_y: Tensor,
    y_feats: Sequence[Tensor],
    target_feats: Sequence[Tensor],
    identity: ICLLosses,
    adv_weight: float = 3.3,
    iid_weight: float = 1.6,
    feature_weight: float = 1.0,
    identity_weight: float = 1.0,
) -> GeneratorLosses:
    """``L_G = 3.3·L_adv + 1.6·L_IIDadv + 1.0·L_per + 1.0·L_ICL``.

    ``fake_scores``: the multiscale discriminator on Y (not detached); ``phi_t``/``phi_y``: Φ(X_t), Φ(Y);
    ``identity``: :func:`identity_contrastive_loss`. The caller skips the step when ``total`` is not finite.
    """
    adversarial = lsgan_generator_loss(fake_scores)
    iid = iid_adversarial_loss(phi_t, phi_y)
    features = feature_reconstruction_loss(y_feats, target_feats)
    total = (
        adv_weight * adversarial
        + iid_weight * iid
        + feature_weight * features
        + identity_weight * identity.total
    )
    return GeneratorLosses(total, adversarial, iid, features, identity)
