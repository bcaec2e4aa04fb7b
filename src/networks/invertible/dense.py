"""Five-convolution residual-dense sub-network (the ESRGAN / HiNet ``ResidualDenseBlock_out`` design).

Used as the ψ/φ/ρ/η functions of :class:`~src.networks.invertible.coupling.AffineCouplingBlock`. Each 3×3
convolution sees the block input concatenated with every earlier feature map (dense connectivity, ``growth``
new channels per conv); LeakyReLU after the first four; the fifth maps to ``out_channels`` and is
zero-initialised, so a fresh sub-network outputs 0 and a fresh affine coupling block is the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ResidualDenseBlock"]


class ResidualDenseBlock(nn.Module):
    """``conv1..conv5`` (3×3, padding 1) with dense concatenation; ``conv5`` (the output conv) starts at zero.

    Parameters for ``in_channels=16, out_channels=12, growth=32``: 89,420 (docs/papers/proface_s.md, "Keyed
    invertible network"). The attribute names ``conv1``..``conv5`` are kept so that a "zero every ``conv5``"
    init rule can find the output conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        growth: int = 32,
        negative_slope: float = 0.01,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, growth) < 1:
            raise ValueError(
                f"ResidualDenseBlock: channels must be >= 1, got in={in_channels}, out={out_channels}, "
                f"growth={growth}"
            )
        self.in_channels, self.out_channels, self.growth = int(in_channels), int(out_channels), int(growth)
        self.conv1 = nn.Conv2d(in_channels, growth, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(in_channels + growth, growth, 3, padding=1, bias=bias)
        self.conv3 = nn.Conv2d(in_channels + 2 * growth, growth, 3, padding=1, bias=bias)
        self.conv4 = nn.Conv2d(in_channels + 3 * growth, growth, 3, padding=1, bias=bias)
        self.conv5 = nn.Conv2d(in_channels + 4 * growth, out_channels, 3, padding=1, bias=bias)
        self.act = nn.LeakyReLU(negative_slope)
        self.zero_output()

    @property
    def output_conv(self) -> nn.Conv2d:
        """The last convolution (zero-initialised)."""
        return self.conv5

    @torch.no_grad()
    def zero_output(self) -> None:
        """Set the output convolution's weight and bias to zero (the sub-network then outputs 0)."""
        self.conv5.weight.zero_()
        if self.conv5.bias is not None:
            self.conv5.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, H, W]`` → ``[B, out_channels, H, W]``."""
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return self.conv5(torch.cat(features, dim=1))
