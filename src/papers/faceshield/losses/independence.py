"""FaceShield's Stage-I independence terms between identity features Z and attribute features P.

Two terms push the SE's identity-restricted maps ``Z_i`` and attribute maps ``P_i`` of one IB layer apart:

- :func:`angle_loss` ("spatial independence"): minus the angle between the flattened per-channel maps, so
  minimising drives them toward orthogonality (θ → π/2);
- :func:`hsic_loss` ("statistical independence"): ``ln(C_z)·HSIC`` with Gaussian kernels over the ``H·W``
  positions of one sample.

See ``docs/papers/faceshield.md``, "Losses".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: The original picks the HSIC bandwidth from the first 128 × 128 block of squared distances.
BANDWIDTH_BLOCK = 128
#: Bandwidth used when the median squared distance is 0 (the original's floor).
MIN_BANDWIDTH = 1e-5
#: Added to the product of norms in the cosine, as the original does.
COSINE_EPS = 1e-8
#: Clamp bound for arccos in the per-channel (``faithful=False``) angle, which keeps its gradient finite.
ACOS_BOUND = 1.0 - 1e-7


def _fold(theta: Tensor) -> Tensor:
    """Map an angle in [0, π] onto [0, π/2] (θ > π/2 becomes π − θ): the sign of a correlation is ignored."""
    return torch.where(theta > math.pi / 2, math.pi - theta, theta)


def channel_cosines(z: Tensor, p: Tensor, first_channel: int = 0) -> Tensor:
    """Cosine between ``z`` and ``p`` ``[B, C, H, W]`` channel by channel → ``[B, C − first_channel]``.

    Each channel's map is flattened and L2-normalised, then ``⟨a, b⟩ / (‖a‖‖b‖ + 1e-8)``.
    """
    if z.shape != p.shape:
        raise ValueError(f"Z and P must have the same shape, got {tuple(z.shape)} and {tuple(p.shape)}")
    a = F.normalize(z[:, first_channel:].flatten(2), dim=2)
    b = F.normalize(p[:, first_channel:].flatten(2), dim=2)
    return (a * b).sum(2) / (a.norm(dim=2) * b.norm(dim=2) + COSINE_EPS)


def layer_angle(z: Tensor, p: Tensor, faithful: bool = True) -> Tensor:
    """Folded angle θ ∈ [0, π/2] between ``z`` and ``p`` of one layer, per sample ``[B]``.

    ``faithful=True`` (the original): channel 0 is skipped (an off-by-one) and the channel cosines are
    averaged *before* the arccos: θ = fold(arccos(mean_c ρ_c)), so opposite-sign correlations cancel.
    ``faithful=False``: all channels, and each channel's angle is folded first: θ = mean_c fold(arccos ρ_c).
    """
    if faithful:
        rho = channel_cosines(z, p, first_channel=1).mean(dim=1)
        return _fold(torch.acos(rho.clamp(-1.0, 1.0)))
    rho = channel_cosines(z, p, first_channel=0)
    return _fold(torch.acos(rho.clamp(-ACOS_BOUND, ACOS_BOUND))).mean(dim=1)


def angle_loss(z_layers: Sequence[Tensor], p_layers: Sequence[Tensor], faithful: bool = True) -> Tensor:
    """Spatial-independence term ``−mean_{layers, samples} θ`` (a scalar in [−π/2, 0]; 0 = parallel maps)."""
    angles = [layer_angle(z, p, faithful) for z, p in zip(z_layers, p_layers, strict=True)]
    return -torch.stack(angles).mean()


def squared_distances(x: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances of the rows of ``x`` ``[B, n, C]`` → ``[B, n, n]``."""
    return torch.cdist(x, x).pow(2)


def median_bandwidth(d2: Tensor, block: int | None = BANDWIDTH_BLOCK) -> Tensor:
    """Median-heuristic σ = sqrt(median(D²)/2) per sample ``[B]`` (the lower median, as ``torch.median``).

    ``block``: take the median over the top-left ``block × block`` part of ``D²`` only (the original's 128);
    ``None``: over all of it. A zero median gives σ = 1e-5 (with no gradient), as in the original.
    """
    part = d2 if block is None else d2[:, :block, :block]
    med = part.flatten(1).median(dim=1).values
    positive = med > 0
    sigma = torch.sqrt(torch.where(positive, med, torch.ones_like(med)) / 2)
    return torch.where(positive, sigma, torch.full_like(sigma, MIN_BANDWIDTH))


def gaussian_gram(x: Tensor, block: int | None = BANDWIDTH_BLOCK) -> Tensor:
    """Gaussian kernel matrices ``K = exp(−D²/(2σ²))`` of the rows of ``x`` ``[B, n, C]`` → ``[B, n, n]``."""
    d2 = squared_distances(x)
    sigma = median_bandwidth(d2, block)[:, None, None]
    return torch.exp(-d2 / (2 * sigma * sigma))


def _center(k: Tensor) -> Tensor:
    """``H K H`` with ``H = I − 11ᵀ/n``, without building ``H`` (subtract row, column and total means)."""
    return (
        k - k.mean(dim=-1, keepdim=True) - k.mean(dim=-2, keepdim=True) + k.mean(dim=(-2, -1), keepdim=True)
    )


def hsic(x: Tensor, y: Tensor, block: int | None = BANDWIDTH_BLOCK) -> Tensor:
    """Biased HSIC ``tr(K_x H K_y H)/(n − 1)²`` per sample ``[B]`` of ``x`` [B, n, Cx], ``y`` [B, n, Cy].

    ``H = I − 11ᵀ/n`` centres the kernels; ``block`` is passed to :func:`median_bandwidth`.
    """
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(f"x and y need the same [B, n], got {tuple(x.shape)} and {tuple(y.shape)}")
    n = x.shape[1]
    k_x, k_y = gaussian_gram(x, block), gaussian_gram(y, block)
    return (k_x * _center(k_y)).sum(dim=(-2, -1)) / (n - 1) ** 2


def positions_as_samples(feature: Tensor) -> Tensor:
    """``[B, C, H, W]`` → ``[B, H·W, C]``: each spatial position is one C-dimensional sample."""
    return feature.flatten(2).transpose(1, 2)


def hsic_loss(z_layers: Sequence[Tensor], p_layers: Sequence[Tensor], faithful: bool = True) -> Tensor:
    """Statistical-independence term ``mean_{layers, samples} ln(C_z)·HSIC(Z, P)`` (positions as samples).

    ``faithful=True``: each kernel's bandwidth comes from the first 128 × 128 block of squared distances, as
    in the original (the full median only when ``H·W ≤ 128``); ``faithful=False``: from all of them.
    Memory grows as ``B·(H·W)²``: 4096 positions (layers 1–3 at 128 px) take 64 MiB per kernel and sample.
    """
    block = BANDWIDTH_BLOCK if faithful else None
    terms = []
    for z, p in zip(z_layers, p_layers, strict=True):
        value = hsic(positions_as_samples(z), positions_as_samples(p), block)
        terms.append(math.log(z.shape[1]) * value.mean())
    return torch.stack(terms).mean()
