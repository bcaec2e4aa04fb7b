"""Makeup-privacy's generator: a SPADE-style decoder from warped VGG features to the made-up face.

The level-0 warped map (relu4_1, 512 channels) is resized to ``image_size / 32`` (8 px at 256) and turned
into ``16·ngf`` channels by a 3×3 conv; seven residual blocks then decode it, with bilinear ×2 upsampling
between them (``ngf`` 128): 2048@8, 2048@16 (×2), 1024@32, 512@64, 256@128, 128@256. Each block
normalises its input per position (:func:`positional_norm`) and modulates it with ``(1 + α, β)`` predicted
from a conditioning map (:class:`SPADE`): ``0.1·warped_0 + 0.9·source_0`` up to 32 px, finer warped maps
above (``warped_1`` for two levels). Block convolutions are spectral-normalised; the output is
``tanh(conv(LeakyReLU_0.2(x)))`` in [-1, 1].

Module and parameter names are the original's (``fc``, ``head``, ``G_middle_0`` …, ``conv_0``,
``norm_0.alpha`` …, ``weight_orig`` / ``weight_u`` / ``weight_v`` of PyTorch's ``spectral_norm``), so the
original's generator state dict loads key for key. At the original's sizes it has 334,776,451 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from src.config.buildable import buildable

#: the original's parameter count (``ngf`` 128, 512-channel relu4_1, two levels, 128 SPADE hidden channels)
PARAMETERS = 334_776_451
#: per ``multiscale_level``: the conditioning of ``up_1``, ``up_2``, ``up_3`` as
#: (level, weight of the warped map, weight of the source map); weight 0 = the warped map alone
FINE_CONDITIONS: dict[int, tuple[tuple[int, float, float], ...]] = {
    1: ((0, 1.0, 0.0), (0, 1.0, 0.0), (0, 1.0, 0.0)),
    2: ((1, 1.0, 0.0), (1, 1.0, 0.0), (1, 1.0, 0.0)),
    3: ((1, 1.0, 0.0), (2, 1.0, 0.0), (2, 1.0, 0.0)),
    4: ((1, 0.2, 0.8), (2, 0.4, 0.6), (3, 1.0, 0.0)),
}
#: the conditioning of the coarse blocks (8 to 32 px at 256): ``0.1·warped_0 + 0.9·source_0``
COARSE_WEIGHTS = (0.1, 0.9)


def positional_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Positional normalisation: each position's channel vector minus its mean, divided by its L2 norm
    (+ ``eps``) — a unit norm, not a unit variance, as in the original."""
    x = x - x.mean(dim=1, keepdim=True)
    return x / (x.norm(dim=1, keepdim=True) + eps)


def zero_conv_biases(module: nn.Module) -> None:
    """Zero every convolution bias: the original's ``init_weights("default")`` keeps PyTorch's default
    weight init and sets biases to 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            nn.init.zeros_(m.bias)


class SPADE(nn.Module):
    """Positional normalisation modulated by a conditioning map: ``PN(x)·(1 + α(s)) + β(s)``.

    ``s`` is resized (bilinear) to ``x``'s size and goes through a 3×3 conv to ``hidden`` channels + ReLU;
    ``α`` and ``β`` are 3×3 convs from there (no spectral norm)."""

    def __init__(self, channels: int, cond_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cond_channels, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.alpha = nn.Conv2d(hidden, channels, kernel_size=3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        cond = F.interpolate(cond, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        hidden = self.conv(cond)
        return positional_norm(x) * (1 + self.alpha(hidden)) + self.beta(hidden)


class SPADEResBlock(nn.Module):
    """SPADE residual block ``fin → fout`` (middle width ``min(fin, fout)``), LeakyReLU 0.2.

    ``x + conv_1(act(norm_1(conv_0(act(norm_0(x))))))``; when ``fin ≠ fout`` the shortcut is
    ``conv_s(norm_s(x))`` (1×1, no bias, no activation). All three convs are spectral-normalised."""

    def __init__(self, fin: int, fout: int, cond_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        middle = min(fin, fout)
        self.conv_0 = spectral_norm(nn.Conv2d(fin, middle, kernel_size=3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(middle, fout, kernel_size=3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, kernel_size=1, bias=False))
        self.norm_0 = SPADE(fin, cond_channels, hidden)
        self.norm_1 = SPADE(middle, cond_channels, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, cond_channels, hidden)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        return shortcut + dx


def upsample(x: Tensor) -> Tensor:
    """Bilinear ×2 (``align_corners=False``)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@buildable
class SPADEGenerator(nn.Module):
    """Warped features (+ the source's) → image ``[B, 3, image_size, image_size]`` in [-1, 1].

    ``ngf`` 128 and ``semantic_nc`` 512 (relu4_1 channels; level ``l`` has ``semantic_nc / 2^l``) are the
    original's; smaller values (and ``spade_hidden``) give a narrow generator for CPU tests.
    ``multiscale_level`` (1..4) must match the correspondence's. ``image_size`` is a multiple of 32.
    """

    def __init__(
        self,
        ngf: int = 128,
        semantic_nc: int = 512,
        multiscale_level: int = 2,
        image_size: int = 256,
        spade_hidden: int = 128,
    ) -> None:
        super().__init__()
        if multiscale_level not in FINE_CONDITIONS:
            raise ValueError(f"SPADEGenerator: multiscale_level must be 1..4, got {multiscale_level}")
        if image_size % 32:
            raise ValueError(f"SPADEGenerator: image_size must be a multiple of 32, got {image_size}")
        self.multiscale_level, self.image_size = int(multiscale_level), int(image_size)
        self.start_size = self.image_size // 32  # five ×2 upsamplings follow
        nc, h = int(semantic_nc), int(spade_hidden)
        self.fc = nn.Conv2d(nc, 16 * ngf, kernel_size=3, padding=1)
        self.head = SPADEResBlock(16 * ngf, 16 * ngf, nc, h)
        self.G_middle_0 = SPADEResBlock(16 * ngf, 16 * ngf, nc, h)
        self.G_middle_1 = SPADEResBlock(16 * ngf, 16 * ngf, nc, h)
        self.up_0 = SPADEResBlock(16 * ngf, 8 * ngf, nc, h)
        fine = [nc // 2**level for level, _, _ in FINE_CONDITIONS[self.multiscale_level]]
        self.up_1 = SPADEResBlock(8 * ngf, 4 * ngf, fine[0], h)
        self.up_2 = SPADEResBlock(4 * ngf, 2 * ngf, fine[1], h)
        self.up_3 = SPADEResBlock(2 * ngf, 1 * ngf, fine[2], h)
        self.conv_img = nn.Conv2d(ngf, 3, kernel_size=3, padding=1)
        zero_conv_biases(self)

    def forward(self, warped: Sequence[Tensor], source: Sequence[Tensor]) -> Tensor:
        """``warped``: the correspondence's output (level 0 = relu4_1 first); ``source``: the source's VGG
        features in the same order (level 0 is used, and levels 1–2 for ``multiscale_level`` 4)."""
        needed = max(level for level, _, _ in FINE_CONDITIONS[self.multiscale_level]) + 1
        if len(warped) < needed:
            raise ValueError(f"SPADEGenerator: needs {needed} warped levels, got {len(warped)}")
        coarse = COARSE_WEIGHTS[0] * warped[0] + COARSE_WEIGHTS[1] * source[0]
        x = F.interpolate(
            warped[0], size=(self.start_size, self.start_size), mode="bilinear", align_corners=False
        )
        x = self.head(self.fc(x), coarse)
        x = upsample(x)
        x = self.G_middle_1(self.G_middle_0(x, coarse), coarse)
        x = self.up_0(upsample(x), coarse)
        for block, (level, w_warped, w_source) in zip(
            (self.up_1, self.up_2, self.up_3), FINE_CONDITIONS[self.multiscale_level], strict=True
        ):
            cond = warped[level] if w_source == 0 else w_warped * warped[level] + w_source * source[level]
            x = block(upsample(x), cond)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
