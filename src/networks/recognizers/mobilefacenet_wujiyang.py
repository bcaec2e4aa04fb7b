"""MobileFaceNet in the wujiyang/Face_Pytorch layout, 128-d (PRO-Face's "MobileFaceNet", CASIA-WebFace).

Published code: wujiyang/Face_Pytorch ``backbone/mobilefacenet.py`` ``MobileFaceNet(feature_dim=128)``, and
PRO-Face's ``face/MobileFaceNet.py`` ``MobileFacenet`` — the same network under other attribute names.
Layers (112 px): ConvBlock conv3×3 s2 (3→64) → depthwise ConvBlock 3×3 (64) → 15 inverted-residual
bottlenecks with (t, c, n, s) = (2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)
(identity residual where the stride is 1 and the width unchanged) → ConvBlock 1×1 (128→512) → linear
depthwise 7×7 (GDC) → linear ConvBlock 1×1 (512→128: conv + BatchNorm2d) → flatten. 1.00 M parameters.

The body is exactly the TreB1eN MobileFaceNet's (:mod:`.mobilefacenet`: same widths, strides, residuals and
stage ends), but the embedding layer is a 1×1 conv (weight ``[128, 512, 1, 1]``) + BatchNorm2d where TreB1eN
has a Linear (``[512, 512]``) + BatchNorm1d: a subclass with its own head, not a key mapping.

Checkpoint formats (each ConvBlock holds ``conv``/``bn``[/``prelu``]; a bottleneck's ``conv.{0..7}`` are the
expand conv/BN/PReLU, depthwise conv/BN/PReLU and projection conv/BN):

- ``proface`` (first: PRO-Face's file) — ``conv3``, ``dw_conv3``, ``bottlenecks.{0..14}``, ``conv1``,
  ``linear_GDConv7``, ``linear_conv1``. PRO-Face loads ``CASIA_WebFace_MobileFaceNet/Iter_64000_net.pth``
  with a strict ``load_state_dict(torch.load(path))`` into that class, so the file is a bare state dict in
  these names.
- ``wujiyang`` — ``conv1``, ``dw_conv1``, ``blocks.{0..14}``, ``conv2``, ``linear7``, ``linear1``; wujiyang's
  ``train.py`` saves ``{'iters': n, 'net_state_dict': ...}`` (``Iter_*_net.ckpt``), which the loader unwraps.

Declared conventions: 112×112, RGB, mean = std = 0.5 ([-1, 1]), 128-d raw embeddings (not L2-normalised by
the network). Source: PRO-Face ``face/face_recognizer.py`` (PIL RGB, ``Normalize(0.5, 0.5)``, resized to 112),
the only published consumer of the CASIA weights. Caveat (as for :mod:`.cbam_resnet`): wujiyang's loaders read
images with ``cv2.imread``, i.e. train on BGR; pass ``channel_order="BGR"`` to feed that order.

Our names: those of :class:`~src.networks.recognizers.mobilefacenet.MobileFaceNet` for the body; the head is
``head.gdc`` (conv, bn) and ``head.linear`` (conv, bn).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, ClassVar

from torch import nn

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.mobilefacenet import ConvBN, MobileFaceNet

PROFACE = "proface"
WUJIYANG = "wujiyang"
# Our module path of the published flat bottleneck index 0..14.
BOTTLENECK_PATHS: tuple[str, ...] = (
    "stages.1.down",
    *(f"stages.1.blocks.{i}" for i in range(4)),
    "stages.2.down",
    *(f"stages.2.blocks.{i}" for i in range(6)),
    "stages.3.down",
    *(f"stages.3.blocks.{i}" for i in range(2)),
)
# A published bottleneck's ``conv`` Sequential child → our submodule.
BOTTLENECK_PARTS = {
    "0": "expand.conv",
    "1": "expand.bn",
    "2": "expand.prelu",
    "3": "depthwise.conv",
    "4": "depthwise.bn",
    "5": "depthwise.prelu",
    "6": "project.conv",
    "7": "project.bn",
}
_PARTS_INVERSE = {ours: theirs for theirs, ours in BOTTLENECK_PARTS.items()}
# Per format: (top-level ConvBlock prefixes → ours, the bottleneck Sequential's name, source).
LAYOUTS: dict[str, tuple[dict[str, str], str, str]] = {
    PROFACE: (
        {
            "conv3.": "stages.0.conv.",
            "dw_conv3.": "stages.0.dw.",
            "conv1.": "stages.3.expand.",
            "linear_GDConv7.": "head.gdc.",
            "linear_conv1.": "head.linear.",
        },
        "bottlenecks",
        "lixionga/ProFace FacePrivacy/PRO-Face/face/MobileFaceNet.py MobileFacenet state_dict "
        "(CASIA_WebFace_MobileFaceNet/Iter_64000_net.pth)",
    ),
    WUJIYANG: (
        {
            "conv1.": "stages.0.conv.",
            "dw_conv1.": "stages.0.dw.",
            "conv2.": "stages.3.expand.",
            "linear7.": "head.gdc.",
            "linear1.": "head.linear.",
        },
        "blocks",
        "wujiyang/Face_Pytorch backbone/mobilefacenet.py MobileFaceNet state_dict "
        "(net_state_dict of Iter_*_net.ckpt)",
    ),
}


def wujiyang_mobilefacenet_to_ours(key: str, format: str = PROFACE) -> str:
    """Published key (``format``: ``proface`` or ``wujiyang``) → ours; unknown keys come back unchanged."""
    top, blocks, _ = LAYOUTS[format]
    for theirs, ours in top.items():
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    match = re.match(rf"^{blocks}\.(\d+)\.conv\.(\d+)\.(.+)$", key)
    if match is None or int(match[1]) >= len(BOTTLENECK_PATHS) or match[2] not in BOTTLENECK_PARTS:
        return key
    return f"{BOTTLENECK_PATHS[int(match[1])]}.{BOTTLENECK_PARTS[match[2]]}.{match[3]}"


def ours_to_wujiyang_mobilefacenet(key: str, format: str = PROFACE) -> str:
    """Our key → the published one in ``format`` (inverse of :func:`wujiyang_mobilefacenet_to_ours`)."""
    top, blocks, _ = LAYOUTS[format]
    for theirs, ours in top.items():
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    for index, path in enumerate(BOTTLENECK_PATHS):
        if key.startswith(path + "."):
            module, _, parameter = key[len(path) + 1 :].rpartition(".")
            if module in _PARTS_INVERSE:
                return f"{blocks}.{index}.conv.{_PARTS_INVERSE[module]}.{parameter}"
    return key


class WujiyangMobileFaceNet(MobileFaceNet):
    """MobileFaceNet with wujiyang's 1×1-conv embedding layer (128-d); see the module docstring."""

    embedding_dim = 128
    checkpoint_formats: ClassVar[tuple[str, ...]] = (PROFACE, WUJIYANG, NATIVE)
    conventions_source = (
        "PRO-Face face/face_recognizer.py: PIL RGB, Normalize(0.5, 0.5), 112 px (wujiyang's own loaders read "
        "cv2 BGR: see module docstring)"
    )

    def __init__(self, embedding_dim: int = 128, channel_order: str | None = None) -> None:
        super().__init__(embedding_dim=embedding_dim, channel_order=channel_order)

    def _make_head(self) -> nn.Sequential:
        """GDC (linear depthwise 7×7) → 1×1 conv + BN2d to ``embedding_dim`` → flatten."""
        return nn.Sequential(
            OrderedDict(
                gdc=ConvBN(512, 512, 7, groups=512, act=False),
                linear=ConvBN(512, self.embedding_dim, 1, act=False),
                flatten=nn.Flatten(),
            )
        )

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            format,
            lambda key: wujiyang_mobilefacenet_to_ours(key, format),
            lambda key: ours_to_wujiyang_mobilefacenet(key, format),
            LAYOUTS[format][2],
        )


@register_recognizer("mobilefacenet_casia")
def mobilefacenet_casia(**kwargs: Any) -> WujiyangMobileFaceNet:
    """wujiyang-layout MobileFaceNet, 128-d (PRO-Face ``CASIA_WebFace_MobileFaceNet/Iter_64000_net.pth``)."""
    return WujiyangMobileFaceNet(**kwargs)
