"""Makeup-privacy's discriminator: two PatchGANs on the (source, image) pair, full size and half size.

Each PatchGAN (4 layers, ``ndf`` 64, 4×4 kernels, padding 2) is ``conv 6→64 /2`` + LeakyReLU 0.2, then
``64→128 /2``, ``128→256 /2``, ``256→512 /1`` (each spectral-normalised, without bias, followed by an
affine-free instance norm and LeakyReLU 0.2), then ``conv 512→1 /1``: raw scores for a least-squares GAN.
Its input is the source concatenated with the real or generated image (6 channels); the second PatchGAN
sees it average-pooled (3×3, stride 2, padding 1, padding not counted). Every layer's output is returned,
for the feature-matching loss. Names are the original's (``discriminator_0.model1.0.0.weight_orig`` …),
so its state dict loads key for key; 5,533,826 parameters at the original's sizes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from src.config.buildable import buildable
from src.papers.makeup_privacy.generator import zero_conv_biases

#: the original's parameter count (2 scales, 4 layers, ``ndf`` 64, 6 input channels)
PARAMETERS = 5_533_826


class NLayerDiscriminator(nn.Module):
    """One PatchGAN; ``forward`` returns the outputs of its ``n_layers + 1`` stages ``model0`` …"""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        stages: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=2), nn.LeakyReLU(0.2))
        ]
        width = ndf
        for n in range(1, n_layers):
            previous, width = width, min(width * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = spectral_norm(
                nn.Conv2d(previous, width, kernel_size=4, stride=stride, padding=2, bias=False)
            )
            stages.append(nn.Sequential(nn.Sequential(conv, nn.InstanceNorm2d(width)), nn.LeakyReLU(0.2)))
        stages.append(nn.Sequential(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=2)))
        for index, stage in enumerate(stages):
            self.add_module(f"model{index}", stage)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for stage in self.children():
            x = stage(x)
            outputs.append(x)
        return outputs


@buildable
class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs ``discriminator_0`` (full size) … on a 6-channel (source, image) input.

    ``forward`` returns, per scale, the list of every stage's output (the last is the score map); with
    ``return_features=False`` only the score map, still in a one-element list."""

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 4,
        num_d: int = 2,
        return_features: bool = True,
    ) -> None:
        super().__init__()
        self.return_features = bool(return_features)
        for index in range(num_d):
            self.add_module(f"discriminator_{index}", NLayerDiscriminator(in_channels, ndf, n_layers))
        zero_conv_biases(self)

    @staticmethod
    def downsample(x: Tensor) -> Tensor:
        """Average pool 3×3, stride 2, padding 1 (padding not counted)."""
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        """``x``: ``cat([source, image], dim=1)`` ``[B, 6, H, W]`` in [-1, 1]."""
        results = []
        for index, discriminator in enumerate(self.children()):
            if index:
                x = self.downsample(x)
            outputs = discriminator(x)
            results.append(outputs if self.return_features else outputs[-1:])
        return results
