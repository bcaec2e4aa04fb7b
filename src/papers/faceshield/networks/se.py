"""FaceShield's feature-separation extractor "SE": InfoSwap's per-layer information bottleneck (IIB).

For each of the first ``N = 10`` encoder maps ``R = f_i`` a readout network (three 1×1 convs over all 11
readout maps resized to ``R``'s size) predicts a mask ``λ_i = sigmoid(clamp(α, −5, 5))``; the restricted
feature ``Z_i = λ_i·R + (1 − λ_i)·ε``, ``ε ~ N(m_i, s_i²)``, is zeroed at inactive neurons and fed through
the rest of the frozen encoder. The restricted identity is the mean of the 10 resulting unit vectors (so it
is not itself unit-norm). ``λ`` keeps identity; the attribute path keeps the ``1 − λ`` part
(:func:`attribute_features`). See ``docs/papers/faceshield.md``, "Networks".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.papers.faceshield.networks.readout import READOUT_CHANNELS, ReadoutStatistics

NUM_IB_LAYERS = 10
ALPHA_BOUND = 5.0
Restrict = Callable[[Tensor, int], Tensor]


def gaussian_kernel(kernel_size: int, sigma: float) -> Tensor:
    """Normalised 2-D Gaussian ``[k, k]`` (a 1×1 kernel is ``[[1.]]``: the original smoothing is a no-op)."""
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    coords = torch.arange(kernel_size, dtype=torch.float32) - (kernel_size - 1) / 2
    squared = coords[None, :] ** 2 + coords[:, None] ** 2
    kernel = torch.exp(-squared / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return kernel / kernel.sum()


class GaussianSmoothing(nn.Module):
    """Fixed depthwise Gaussian blur with reflection padding (a buffer: never trained)."""

    def __init__(self, channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        kernel = gaussian_kernel(kernel_size, sigma=kernel_size * 0.25)  # the original's σ = k/4
        self.register_buffer("weight", kernel.expand(channels, 1, kernel_size, kernel_size).clone())
        self.pad = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        """Blur each channel of ``x`` separately."""
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.conv2d(x, self.weight, groups=x.shape[1])


def information_capacity(r: Tensor, lam: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Per-neuron KL of the IB (InfoSwap/IBA): −½(1 + ln(1−λ)² − (λ·r̂)² − (1−λ)²), r̂ = (r − m)/s."""
    var_z = (1 - lam) ** 2
    mu_z = (r - mean) / std * lam
    return -0.5 * (1 + torch.log(var_z) - mu_z**2 - var_z)


def gaussian_noise(like: Tensor, mean: Tensor, std: Tensor, generator: torch.Generator | None) -> Tensor:
    """``N(mean, std²)`` noise shaped like ``like``, drawn on ``generator``'s device (CPU by default, as the
    original's ``torch.randn(size).to(device)``) and moved to ``like``'s device."""
    device = generator.device if generator is not None else torch.device("cpu")
    noise = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)
    return noise * std + mean


@dataclass
class BottleneckOutput:
    """One IB layer's outputs: the restricted feature, its mask and the (unused by FaceShield) KL map."""

    z: Tensor
    lam: Tensor
    info: Tensor


class SELayer(nn.Module):
    """One information-bottleneck layer: readout network → λ, then ``Z = λ·R + (1 − λ)·ε`` (masked)."""

    def __init__(self, readout_channels: int, channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(readout_channels, readout_channels // 2, 1)
        self.conv2 = nn.Conv2d(readout_channels // 2, channels * 2, 1)
        self.conv3 = nn.Conv2d(channels * 2, channels, 1)
        with torch.no_grad():  # λ starts near sigmoid(5) ≈ 0.993: almost everything passes at first
            nn.init.constant_(self.conv3.bias, 5.0)
            self.conv3.weight.mul_(1e-3)
        self.smooth = GaussianSmoothing(channels, kernel_size)

    def mask(self, size: tuple[int, int], readout: Sequence[Tensor]) -> Tensor:
        """λ at spatial ``size`` from all readout maps (bilinearly resized, aligned corners, concatenated)."""
        x = torch.cat([F.interpolate(r, size=size, mode="bilinear", align_corners=True) for r in readout], 1)
        alpha = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return self.smooth(torch.sigmoid(alpha.clamp(-ALPHA_BOUND, ALPHA_BOUND)))

    def forward(
        self,
        r: Tensor,
        readout: Sequence[Tensor],
        mean: Tensor,
        std: Tensor,
        active: Tensor,
        generator: torch.Generator | None = None,
    ) -> BottleneckOutput:
        """Restrict ``r`` ``[B, C, H, W]``; ``mean``/``std``/``active``: its ``[C, H, W]`` statistics."""
        lam = self.mask((r.shape[-2], r.shape[-1]), readout)
        eps = gaussian_noise(r, mean, std, generator)
        active = active.to(r.dtype)
        z = (r * lam + (1 - lam) * eps) * active
        info = information_capacity(r, lam, mean, std) * active
        return BottleneckOutput(z, lam, info)


@dataclass
class SEOutput:
    """The SE module's outputs for a batch."""

    #: restricted identity: mean over layers of the L2-normalised identities of ``Z_i`` ``[B, 512]``
    identity: Tensor
    #: λ_0 … λ_9 (identity masks), each shaped like its feature map
    lambdas: list[Tensor]
    #: restricted features Z_0 … Z_9
    restricted: list[Tensor]
    #: mean over layers of the mean KL map (computed as the original does; FaceShield's losses ignore it)
    info: Tensor


class FaceShieldSE(nn.Module):
    """The 10 IB layers plus the readout statistics they read (``layers.{i}``, ``readout.layers.{i}``)."""

    def __init__(
        self,
        channels: Sequence[int] = READOUT_CHANNELS[:NUM_IB_LAYERS],
        input_size: int = 128,
        kernel_size: int = 1,
        min_std: float = 0.01,
        active_threshold: float = 0.01,
    ) -> None:
        super().__init__()
        self.readout = ReadoutStatistics(input_size, min_std, active_threshold)
        readout_channels = sum(layer.mean.shape[0] for layer in self.readout.layers)
        self.layers = nn.ModuleList(SELayer(readout_channels, c, kernel_size) for c in channels)

    def forward(
        self, features: Sequence[Tensor], restrict: Restrict, generator: torch.Generator | None = None
    ) -> SEOutput:
        """Encoder features f0 … (at least f10) and the encoder's ``restrict_forward`` → :class:`SEOutput`."""
        readout = self.readout.normalise(features)
        identity: Tensor | None = None
        lambdas, restricted, info = [], [], []
        for i, layer in enumerate(self.layers):
            stats = self.readout.layers[i]
            out = layer(features[i], readout, stats.mean, stats.std, stats.active, generator)
            term = restrict(out.z, i)
            identity = term if identity is None else identity + term
            lambdas.append(out.lam)
            restricted.append(out.z)
            info.append(out.info.mean(dim=0).mean())
        assert identity is not None
        n = float(len(self.layers))
        return SEOutput(identity / n, lambdas, restricted, torch.stack(info).mean())

    def masks(self, features: Sequence[Tensor]) -> list[Tensor]:
        """The masks λ_0 … λ_9 alone (what :meth:`forward` computes first, without the noise, the restricted
        features and the 10 partial encoder passes of the restricted identity): Stage II needs only the
        masks of its generated faces, and the outputs it does not use carry no gradient anyway."""
        readout = self.readout.normalise(features)
        return [
            layer.mask((features[i].shape[-2], features[i].shape[-1]), readout)
            for i, layer in enumerate(self.layers)
        ]


def attribute_features(
    target: Sequence[Tensor],
    lambdas: Sequence[Tensor],
    source: Sequence[Tensor],
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Attribute features ``P̃_i = (1 − λ_i)·R_t + λ_i·η``, ``η ~ N(μ_s, μ_s²)`` from the source half.

    InfoSwap quirk kept by FaceShield: the noise "std" is the batch *mean* of the source features, like its
    mean (both ``[C, H, W]``). With batch 1 and source = target this is ``R + λ·R⊙n``, ``n ~ N(0, I)``.
    """
    feats = []
    for r_t, lam, r_s in zip(target, lambdas, source, strict=True):
        mu = r_s.mean(dim=0)
        eta = gaussian_noise(r_t, mu, mu, generator)
        feats.append(r_t * (1 - lam) + lam * eta)
    return feats
