"""Inspector networks: multi-level detector features, the reconstructor G, the auto-thresholder A and the
corrector C.

G decodes the detector's multi-level features back to the image; A classifies that reconstruction as clean
(0) or adversarial (1), the coarse stage; C looks at the image itself and weights the detector's posterior
into an attack-success probability, the fine stage (see :mod:`src.papers.inspector.defense`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.detectors import DetectorNet
from src.weights import resolve_spec

# Backbone blocks giving [f_ds, f_d, f_m, f_s] (deepest first), keyed by ``DetectorNet.name``. Xception at
# 299 px: block12 1024x10x10, block11 728x19x19, block2 256x37x37, block1 128x74x74.
FEATURE_BLOCKS: dict[str, tuple[str, str, str, str]] = {
    "xception": ("block12", "block11", "block2", "block1"),
    "small_cnn": ("layer4", "layer3", "layer2", "layer1"),
}
# Matching reconstructor channel counts (``Reconstructor(channels=...)``).
FEATURE_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "xception": (1024, 728, 256, 128),
    "small_cnn": (512, 256, 128, 64),
}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def feature_blocks(detector: DetectorNet) -> tuple[str, ...]:
    """The backbone block names read by :func:`multilevel_features`; ``ValueError`` for other detectors."""
    if detector.name not in FEATURE_BLOCKS:
        raise ValueError(
            f"Inspector features are defined for detectors {sorted(FEATURE_BLOCKS)}, got {detector.name!r}"
        )
    return FEATURE_BLOCKS[detector.name]


def multilevel_features(detector: DetectorNet, images: Tensor) -> tuple[Tensor, list[Tensor]]:
    """``(logits, [f_ds, f_d, f_m, f_s])`` of images in ``[0, 1]`` in one detector pass (forward hooks).

    The original detector returned this tuple itself; here the shared :class:`DetectorNet` stays unchanged
    and the intermediate block outputs are captured on the fly, so gradients flow through them.
    """
    names = feature_blocks(detector)
    captured: dict[str, Tensor] = {}

    def capture(name: str) -> Callable[[nn.Module, object, Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            captured[name] = output

        return hook

    handles = [detector.backbone.get_submodule(n).register_forward_hook(capture(n)) for n in names]
    try:
        logits = detector(images)
    finally:
        for handle in handles:
            handle.remove()
    return logits, [captured[n] for n in names]


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1 convolution, no bias (Xception's separable convolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class UpUnit(nn.Sequential):
    """Nearest x2 upsampling, separable 3x3 convolution, BatchNorm, ReLU: one decoder step of G."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            SeparableConv2d(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class Reconstructor(nn.Module):
    """G: decodes ``[f_ds, f_d, f_m, f_s]`` back to the image.

    Each skip level: an :class:`UpUnit` to the skip's channels, a bilinear resize to its spatial size (odd
    sizes such as 19 or 37 do not double exactly), then the skip is added. Two more units go to
    ``head_channels`` (64, 32), a 1x1 convolution without bias to RGB, tanh, and a bilinear resize to the
    input size. The output lies in ``[-1, 1]``: compare it with ``images * 2 - 1`` for images in ``[0, 1]``
    (the original's MSE on 0.5/0.5-normalised images).
    """

    def __init__(
        self,
        channels: Sequence[int] = (1024, 728, 256, 128),
        head_channels: Sequence[int] = (64, 32),
    ) -> None:
        super().__init__()
        if len(channels) < 2 or len(head_channels) < 1:
            raise ValueError(f"need >= 2 feature levels and >= 1 head unit, got {channels}, {head_channels}")
        self.channels = tuple(int(c) for c in channels)
        self.skips = nn.ModuleList(UpUnit(a, b) for a, b in pairwise(self.channels))
        widths = (self.channels[-1], *(int(c) for c in head_channels))
        self.head = nn.Sequential(*(UpUnit(a, b) for a, b in pairwise(widths)))
        self.to_rgb = nn.Conv2d(widths[-1], 3, 1, bias=False)

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """``features`` deepest first (as :func:`multilevel_features` returns them); ``size``: the input
        ``(H, W)``. Returns ``[B, 3, H, W]`` in ``[-1, 1]``."""
        if len(features) != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} feature maps, got {len(features)}")
        x = features[0]
        for unit, skip in zip(self.skips, features[1:], strict=True):
            x = _resize(unit(x), skip.shape[-2:]) + skip
        x = torch.tanh(self.to_rgb(self.head(x)))
        return _resize(x, size)


class ResNetClassifier(nn.Module):
    """A timm ResNet (ResNet-18 in the paper) with a 2-way head on images in ``[0, 1]``; it normalises with
    ImageNet statistics itself, as its ImageNet initialisation expects.

    ``weights``: a weights-manifest name or path of torchvision/timm ImageNet weights of ``arch`` (the
    1000-class head is dropped at load), or ``None`` for random initialisation (demos, tests).
    """

    def __init__(self, num_classes: int = 2, arch: str = "resnet18", weights: str | None = None) -> None:
        super().__init__()
        import timm

        overlay: dict[str, object] | None = None
        if weights:
            path = resolve_spec(weights)
            if not Path(path).is_file():
                raise FileNotFoundError(f"ImageNet weights of {arch} not found: {path}")
            overlay = {"file": str(path), "hf_hub_id": None, "url": None}
        self.net = timm.create_model(
            arch, pretrained=bool(weights), num_classes=num_classes, pretrained_cfg_overlay=overlay
        )
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, num_classes]`` of ``[B, 3, H, W]`` images in ``[0, 1]``."""
        return self.net((images - self.mean) / self.std)


class AutoThresholder(ResNetClassifier):
    """A: classifies G's reconstruction as clean (class 0) or adversarial (class 1): the coarse stage."""

    def forward(self, reconstruction: Tensor) -> Tensor:
        """Logits of a reconstruction in ``[-1, 1]`` (mapped back to ``[0, 1]`` first)."""
        return super().forward((reconstruction + 1) / 2)


class Corrector(ResNetClassifier):
    """C: from the image in ``[0, 1]``, per-class weights ``sigmoid(C(x))`` of the detector's posterior
    whose weighted sum is the attack-success probability π (see :func:`attack_probability`)."""


def attack_probability(corrector_logits: Tensor, detector_logits: Tensor) -> Tensor:
    """π = Σ_c sigmoid(C(x))_c · softmax(D(x))_c, ``[B]`` in ``(0, 1)``."""
    return (torch.sigmoid(corrector_logits) * torch.softmax(detector_logits, dim=-1)).sum(dim=-1)
