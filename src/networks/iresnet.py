"""IResNet face-recognition backbone in the insightface ArcFace layout, at any depth, width and input size.

Block: BN → conv3x3 → BN → PReLU → conv3x3(stride) → BN, plus a (conv1x1 + BN) shortcut when the shape
changes. Stem: conv3x3 → BN → PReLU at full resolution. Head: BN2d → dropout → flatten → FC → BN1d.
IResNet-18/50/100 are ``layers=(2,2,2,2)``, ``(3,4,14,3)`` and ``(3,13,30,3)`` with widths (64,128,256,512)
at 112×112 (``stem_stride=1``); the demo uses a narrow variant at 64×64 with a stride-2 stem.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.config.buildable import buildable


class IBasicBlock(nn.Module):
    """The pre-activation-style residual block of insightface's IResNet."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels, eps=1e-5)
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual branch plus (projected) identity."""
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


@buildable
class IResNet(nn.Module):
    """IResNet embedding network: images in [0, 1] → embeddings (not L2-normalised).

    Inputs are normalised internally to [-1, 1] (the ArcFace convention), so callers always pass [0, 1].
    """

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_channels: int = 64,
        embedding_dim: int = 512,
        input_size: int = 112,
        dropout: float = 0.0,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} must have the same length")
        self.input_size = int(input_size)
        self.embedding_dim = int(embedding_dim)
        self.conv1 = nn.Conv2d(3, stem_channels, 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels, eps=1e-5)
        self.prelu = nn.PReLU(stem_channels)
        stages, in_channels = [], stem_channels
        for depth, width in zip(layers, widths, strict=True):
            blocks = [IBasicBlock(in_channels, width, stride=2)]
            blocks += [IBasicBlock(width, width, stride=1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        final = self.input_size // (stem_stride * 2 ** len(layers))
        if final < 1:
            raise ValueError(f"input_size {input_size} is too small for {len(layers)} stride-2 stages")
        self.bn2 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels * final * final, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=1e-5)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: Tensor) -> Tensor:
        """Embed a batch ``[B, 3, input_size, input_size]`` in [0, 1]."""
        if images.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"IResNet expects {self.input_size}x{self.input_size} inputs, got {tuple(images.shape[-2:])}"
            )
        x = self.prelu(self.bn1(self.conv1(images * 2.0 - 1.0)))
        for stage in self.stages:
            x = stage(x)
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))
