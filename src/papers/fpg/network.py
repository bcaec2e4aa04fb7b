"""FPG's detector: a zoo backbone with an irregularity branch, channel attention and a quality head.

For a backbone feature map ``X`` ``[B, C, h, w]`` (EfficientNet-B4: 1792 × 12 × 12 at 380 px):

- irregularity branch: separable 3×3 conv (depthwise C, then pointwise C → 512, no bias) → BN → ReLU →
  global average pool → ``h`` ``[B, 512]``;
- channel attention: ``a = σ(W2 · ReLU(W1 · h))``, W1 512 → 256, W2 256 → C, no biases;
- classifier: ``GAP(X) ⊙ a`` → the backbone's own head (Dropout 0.4 → Linear C → 2);
- quality head: ``q̂ = Linear(512 → 1)(h)``, trained to regress a frozen face-quality teacher.

:meth:`FPGNet.forward` (evaluation) returns logits; :meth:`FPGNet.forward_train` also returns ``q̂`` and the
output of the backbone's last feature block (EfficientNet-B4's last MBConv, 448 × 12 × 12), the features of
the separation loss, and the layer Grad-CAM reads (:attr:`FPGNet.last_block`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from src.config.buildable import buildable
from src.networks.detectors import DetectorNet, build_detector_net
from src.networks.grad_cam import capture_output


class SeparableConv2d(nn.Sequential):
    """Depthwise ``k×k`` conv then pointwise 1×1 conv, both without bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)


@buildable
class FPGNet(nn.Module):
    """FPG's network (module docstring). ``backbone``: options of
    :func:`~src.networks.detectors.build_detector_net` (``name`` ``efficientnet_b4`` in the experiments,
    ``small_cnn`` in tests); the backbone must declare a ``last_block``."""

    def __init__(
        self,
        backbone: Mapping[str, Any],
        irregularity_dim: int = 512,
        attention_dim: int = 256,
    ) -> None:
        super().__init__()
        options = dict(backbone)
        if "name" not in options:
            raise ValueError("FPGNet: backbone needs a 'name' (a detector network, e.g. efficientnet_b4)")
        self.backbone: DetectorNet = build_detector_net(**options)
        self.backbone.last_block  # noqa: B018  (fails now for a backbone without one)
        channels = self.backbone.feature_dim
        self.irregularity = nn.Sequential(
            SeparableConv2d(channels, irregularity_dim),
            nn.BatchNorm2d(irregularity_dim),
            nn.ReLU(inplace=True),
        )
        self.attention = nn.Sequential(
            nn.Linear(irregularity_dim, attention_dim, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(attention_dim, channels, bias=False),
            nn.Sigmoid(),
        )
        self.quality = nn.Linear(irregularity_dim, 1)

    @property
    def last_block(self) -> nn.Module:
        """The backbone's last feature block (Grad-CAM layer, separation-loss features)."""
        return self.backbone.last_block

    @property
    def head(self) -> nn.Module:
        """The classifier (Dropout → Linear C → 2), the backbone's own head."""
        return self.backbone.head

    def _classify(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        h = self.irregularity(feature_map).mean(dim=(2, 3))  # GAP (a mean: deterministic backward on CUDA)
        attended = feature_map.mean(dim=(2, 3)) * self.attention(h)
        return self.head(attended), h

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, 2]`` of images in ``[0, 1]``."""
        logits, _ = self._classify(self.backbone.feature_map(images))
        return logits

    def forward_train(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Logits ``[B, 2]``, predicted quality ``q̂`` ``[B, 1]`` and the last block's output
        ``[B, C', h, w]``."""
        with capture_output(self.last_block) as captured:
            feature_map = self.backbone.feature_map(images)
        logits, h = self._classify(feature_map)
        assert captured.output is not None  # the hook ran in feature_map
        return logits, self.quality(h), captured.output

    def describe(self) -> dict[str, Any]:
        """The backbone's description plus FPG's parts, for run records."""
        return {
            **self.backbone.describe(),
            "backbone_parameters": sum(p.numel() for p in self.backbone.parameters()),
            "parameters": sum(p.numel() for p in self.parameters()),
        }
