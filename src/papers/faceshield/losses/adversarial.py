"""FaceShield's Stage-II adversarial terms: LSGAN over the multiscale discriminator, and the IID game.

The multiscale discriminator returns one raw score map per scale; least-squares targets are 1 (real, the
attribute image X_t) and 0 (fake, Y). The IID detector Φ maps an image to an implicit-identity embedding;
it learns to agree with the explicit (ArcFace-style encoder) identity on real faces and to tell Y's implicit
identity from X_t's, while the generator pushes Φ(Y) away from Φ(X_t). See ``docs/papers/faceshield.md``,
"Losses".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _cos(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample cosine ``[B]`` of ``[B, D]`` embeddings."""
    return F.cosine_similarity(a, b, dim=1)


def lsgan_discriminator_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """``L_D = mean_k ½[mean((D_k(X_t) − 1)²) + mean(D_k(Y)²)]`` over the scales k.

    Pass the scores of ``Y.detach()``: this loss trains the discriminator only.
    """
    if len(real) != len(fake) or not real:
        raise ValueError(f"need the same non-zero number of scales, got {len(real)} and {len(fake)}")
    terms = [0.5 * ((r - 1).pow(2).mean() + f.pow(2).mean()) for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()


def lsgan_generator_loss(fake: Sequence[Tensor]) -> Tensor:
    """``L_adv = mean_k mean((D_k(Y) − 1)²)`` over the scales k (no ½, as in the original)."""
    if not fake:
        raise ValueError("need at least one scale")
    return torch.stack([(f - 1).pow(2).mean() for f in fake]).mean()


def iid_detector_loss(
    explicit_s: Tensor,
    explicit_t: Tensor,
    explicit_y: Tensor,
    phi_s: Tensor,
    phi_t: Tensor,
    phi_y: Tensor,
    real_weight: float = 2.0,
    mismatch_weight: float = 1.1,
) -> Tensor:
    """IID detector loss (batch means of cosines):

    ``L_IID = −2[cos(x̂_s, Φ(X_s)) + cos(x̂_t, Φ(X_t))] + |cos(ŷ, Φ(Y))| − 1.1·cos(Φ(X_t), Φ(Y))``

    ``x̂``/``ŷ`` are the encoder's explicit identities; ``phi_*`` are Φ's embeddings, ``phi_y`` of
    ``Y.detach()``. The explicit identities are detached here: in the original the gradient that reaches
    G through ``ŷ`` is discarded before G's step, so only Φ learns from this loss.
    """
    real = _cos(explicit_s.detach(), phi_s).mean() + _cos(explicit_t.detach(), phi_t).mean()
    fake = _cos(explicit_y.detach(), phi_y).abs().mean()
    mismatch = _cos(phi_t, phi_y).mean()
    return -real_weight * real + fake - mismatch_weight * mismatch


def iid_adversarial_loss(phi_t: Tensor, phi_y: Tensor) -> Tensor:
    """Generator's IID term ``L_IIDadv = mean |cos(Φ(X_t), Φ(Y))|`` with ``Φ(X_t)`` detached (the original
    computes it under ``no_grad``): Y's implicit identity must not leak X_t's."""
    return _cos(phi_t.detach(), phi_y).abs().mean()
