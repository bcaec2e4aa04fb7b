"""Makeup-privacy's test-time face parser: BiSeNet (zllrunning/face-parsing.PyTorch, ``79999_iter.pth``).

Architecture (19 CelebAMask-HQ classes, see :mod:`src.papers.makeup_privacy.parsing`):

- **context path** ``cp``: a ResNet-18 (``cp.resnet``; features at 1/8, 1/16, 1/32), a global-average
  branch (``conv_avg``, 1×1 512→128), attention refinement modules on the 1/32 (``arm32``, 512→128) and 1/16
  (``arm16``, 256→128) features, each summed with the coarser branch, nearest-upsampled and smoothed
  (``conv_head32`` / ``conv_head16``, 3×3 128→128);
- **spatial path**: the released model has no separate spatial path: the ResNet's 1/8 features (128 ch)
  take its place (the released definition deletes ``sp``), so the file holds no ``sp.*`` keys;
- **feature fusion** ``ffm``: concat (128 + 128) → 1×1 conv-BN-ReLU (256) → channel attention (1×1 256→64,
  ReLU, 1×1 64→256, sigmoid) → ``feat·att + feat``;
- **heads**: ``conv_out`` (3×3 256→256, 1×1 →19) on the fused map, ``conv_out16`` / ``conv_out32``
  (3×3 128→64, 1×1 →19) auxiliary heads used in training; all upsampled bilinearly (align_corners) to the
  input size.

Module names equal the released state dict's, so ``79999_iter.pth`` loads without a key map
(:func:`load_parser`: ``torch.load(weights_only=True)``, strict; ``num_batches_tracked`` buffers absent from
the file are tolerated, as they never change an eval-mode pass). The ResNet-18 starts from ImageNet weights
only when BiSeNet itself is trained; here the parser is always the released file (or random, for tests).

:func:`parse` does what the authors' test scripts do: run the parser on a 512×512 copy, resize the main
logits bilinearly (align_corners) to 256 and take the softmax over the 19 classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.papers.makeup_privacy.parsing import NUM_CLASSES
from src.weights import resolve_spec

WEIGHTS = "manifest:bisenet-face-parsing-79999"
#: ImageNet statistics BiSeNet was trained with (zllrunning's transforms)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WORK_SIZE = 512
OUTPUT_SIZE = 256
SHOWN = 10


class ConvBNReLU(nn.Module):
    """Conv (no bias) → BN → ReLU (``conv``, ``bn``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Conv-BN-ReLU."""
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1×1 conv + BN ``downsample`` shortcut where width or stride change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Sequential | None = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual branch plus shortcut, then ReLU."""
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _layer(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)
    )


class ResNet18(nn.Module):
    """ResNet-18 trunk without pooling head; returns the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Features at strides 8 (128 ch), 16 (256 ch) and 32 (512 ch)."""
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    """3×3 conv-BN-ReLU, then a global channel gate (1×1 conv → BN → sigmoid)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Gated features."""
        feat = self.conv(x)
        gate = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * gate


class ContextPath(nn.Module):
    """ResNet-18 plus global context and two attention-refined, upsampled branches."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(1/8 ResNet features, refined 1/8 context, refined 1/16 context)."""
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))
        feat32_sum = self.arm32(feat32) + F.interpolate(context, feat32.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(F.interpolate(feat32_sum, feat16.shape[2:], mode="nearest"))
        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, feat8.shape[2:], mode="nearest"))
        return feat8, feat16_up, feat32_up


class FeatureFusion(nn.Module):
    """Concat → 1×1 conv-BN-ReLU → squeeze-excite gate, added back to the fused features."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        """Fused features ``feat·gate + feat``."""
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * gate + feat


class OutputHead(nn.Module):
    """3×3 conv-BN-ReLU → 1×1 conv to the class logits."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Logits at the feature resolution."""
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet face parser, 19 classes; names match ``79999_iter.pth`` (module docstring)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, num_classes)
        self.conv_out16 = OutputHead(128, 64, num_classes)
        self.conv_out32 = OutputHead(128, 64, num_classes)
        trunk = {id(module) for module in self.cp.resnet.modules()}
        for module in self.modules():  # the released definition's init (the ResNet trunk: PyTorch default)
            if isinstance(module, nn.Conv2d) and id(module) not in trunk:
                nn.init.kaiming_normal_(module.weight, a=1)

    def forward(self, x: Tensor) -> Tensor:
        """Main logits ``[B, 19, H, W]`` at the input size."""
        feat8, context8, _ = self.cp(x)
        return self._up(self.conv_out(self.ffm(feat8, context8)), x.shape[2:])

    def forward_all(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Main and the two auxiliary heads' logits (the training outputs), all at the input size."""
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        out = self._up(self.conv_out(self.ffm(feat8, context8)), size)
        return out, self._up(self.conv_out16(context8), size), self._up(self.conv_out32(context16), size)

    @staticmethod
    def _up(logits: Tensor, size: torch.Size) -> Tensor:
        return F.interpolate(logits, size, mode="bilinear", align_corners=True)


def _listing(names: list[str]) -> str:
    more = f", ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_state_dict(model: nn.Module, state: Mapping[str, object], source: str) -> dict[str, Tensor]:
    """``state`` checked against ``model`` strictly; an error names ``source`` and the offending keys.

    Missing ``num_batches_tracked`` buffers are filled from the model (files saved by old PyTorch versions).
    """
    own = model.state_dict()
    missing, unexpected, mismatched = [], [], []
    checked: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in own:
            unexpected.append(key)
        elif not isinstance(value, Tensor):
            mismatched.append(f"{key} (not a tensor: {type(value).__name__})")
        elif tuple(value.shape) != tuple(own[key].shape):
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            checked[key] = value
    for key, value in own.items():
        if key in state:
            continue
        if key.endswith("num_batches_tracked"):
            checked[key] = value.clone()
        else:
            missing.append(key)
    if missing or unexpected or mismatched:
        parts = [f"{source} is not a BiSeNet face-parsing state dict (zllrunning 79999_iter.pth layout)"]
        if missing:
            parts.append(f"{len(missing)} missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (file vs model): {_listing(mismatched)}")
        raise ValueError("; ".join(parts))
    return checked


def read_state_dict(path: str | Path) -> dict[str, object]:
    """The file's state dict, read with ``torch.load(weights_only=True)``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BiSeNet face-parsing weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: {detail})"
        ) from exc
    if not isinstance(state, Mapping) or not state:
        raise ValueError(
            f"{path}: expected a state dict (a mapping of parameter names to tensors), "
            f"got {type(state).__name__}"
        )
    return dict(state)


def load_parser(weights: str | Path | None = WEIGHTS) -> BiSeNet:
    """The frozen BiSeNet parser with ``weights``: ``manifest:<entry>``, a path, or None (random, tests)."""
    model = BiSeNet()
    if weights is None:
        warnings.warn("BiSeNet face parser has RANDOM weights (weights=None): for tests only", stacklevel=2)
    else:
        path = resolve_spec(str(weights))
        model.load_state_dict(check_state_dict(model, read_state_dict(path), str(path)), strict=True)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def parse(
    parser: BiSeNet,
    images: Tensor,
    input_range: str = "[-1,1]",
    output_size: int = OUTPUT_SIZE,
    work_size: int = WORK_SIZE,
    faithful_bugs: bool = False,
) -> Tensor:
    """Softmax parsing ``[B, 19, output_size, output_size]`` of RGB ``images`` ``[B, 3, H, W]``.

    The images (in ``input_range``: ``"[-1,1]"`` or ``"[0,1]"``) are resized to ``work_size`` (bilinear,
    antialiased when shrinking) and normalised with ImageNet statistics, as BiSeNet was trained; the main
    logits are resized bilinearly (align_corners) to ``output_size``, then soft-maxed over the classes.
    ``faithful_bugs=True`` feeds [-1, 1] pixels instead, as the authors' test scripts do.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"parse: expected [B, 3, H, W] RGB images, got {tuple(images.shape)}")
    if input_range not in ("[-1,1]", "[0,1]"):
        raise ValueError(f"parse: input_range must be '[-1,1]' or '[0,1]', got {input_range!r}")
    unit = (images + 1.0) / 2.0 if input_range == "[-1,1]" else images
    if tuple(unit.shape[2:]) != (work_size, work_size):
        shrink = min(unit.shape[2:]) > work_size
        unit = F.interpolate(
            unit, (work_size, work_size), mode="bilinear", align_corners=False, antialias=shrink
        )
    if faithful_bugs:
        x = unit * 2.0 - 1.0
    else:
        mean = torch.tensor(IMAGENET_MEAN, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
        x = (unit - mean) / std
    logits = F.interpolate(parser(x), (output_size, output_size), mode="bilinear", align_corners=True)
    return torch.softmax(logits, dim=1)
