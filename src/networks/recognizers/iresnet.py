"""insightface ArcFace IResNet-18/34/50/100 (``arcface_torch/backbones/iresnet.py`` checkpoint layout).

The network itself is :class:`src.networks.iresnet.IResNet` (the one the demo uses), held as ``net``;
only its stage naming differs from insightface (``net.stages.{i}`` ↔ ``layer{i+1}``).

Declared conventions (source: insightface ``recognition/arcface_torch/inference.py`` — ``cv2.imread`` then
``cvtColor(BGR2RGB)``, ``div(255).sub(0.5).div(0.5)`` — and ``dataset.py``, ``mx.image.imdecode`` (RGB) +
``Normalize(0.5, 0.5)``): 112×112, RGB, mean = std = 0.5 (i.e. [-1, 1]), 512-d embeddings (``features``,
a BatchNorm1d after the FC; not L2-normalised by the network).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.networks.iresnet import IResNet
from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.stages import StagedRecognizer, check_input_size

INSIGHTFACE = "insightface"
IRESNET_LAYERS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}
_THEIR_STAGE = re.compile(r"^layer([1-4])\.(.*)$")
_OUR_STAGE = re.compile(r"^net\.stages\.([0-3])\.(.*)$")


def insightface_to_ours(key: str) -> str:
    """``layer{k}.…`` → ``net.stages.{k-1}.…``; every other key gains the ``net.`` prefix."""
    match = _THEIR_STAGE.match(key)
    return f"net.stages.{int(match[1]) - 1}.{match[2]}" if match else f"net.{key}"


def ours_to_insightface(key: str) -> str:
    """Inverse of :func:`insightface_to_ours`."""
    match = _OUR_STAGE.match(key)
    if match:
        return f"layer{int(match[1]) + 1}.{match[2]}"
    return key[len("net.") :] if key.startswith("net.") else key


class InsightFaceIResNet(StagedRecognizer):
    """insightface ArcFace IResNet (18/34/50/100) as a :class:`FaceRecognizer`.

    ``input_size`` other than 112 (any multiple of 16) changes only the FC width (published weights: 112).

    Stages ``stage1``–``stage4`` are the outputs of ``layer1``–``layer4`` (64×56², 128×28², 256×14², 512×7²
    at 112 px).
    """

    input_size = (112, 112)
    channel_order = "RGB"
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    embedding_dim = 512
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"net.stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (INSIGHTFACE, NATIVE)
    conventions_source = (
        "insightface recognition/arcface_torch/inference.py (BGR2RGB, (x/255-0.5)/0.5, 112 px) and dataset.py"
    )

    def __init__(
        self,
        depth: int = 50,
        embedding_dim: int = 512,
        dropout: float = 0.0,
        input_size: int = 112,
        channel_order: str | None = None,
    ) -> None:
        super().__init__(channel_order)
        if depth not in IRESNET_LAYERS:
            raise ValueError(f"IResNet depth must be one of {sorted(IRESNET_LAYERS)}, got {depth}")
        check_input_size(type(self).__name__, input_size, 4)
        self.depth = depth
        self.input_size = (input_size, input_size)
        self.embedding_dim = int(embedding_dim)
        self.net = IResNet(
            layers=IRESNET_LAYERS[depth],
            widths=(64, 128, 256, 512),
            stem_channels=64,
            embedding_dim=embedding_dim,
            input_size=input_size,
            dropout=dropout,
            stem_stride=1,
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """insightface ``IResNet.forward`` on normalised input (the demo IResNet's forward also rescales)."""
        net = self.net
        x = net.prelu(net.bn1(net.conv1(x)))
        for stage in net.stages:
            x = stage(x)
        x = net.dropout(torch.flatten(net.bn2(x), 1))
        return net.features(net.fc(x))

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            INSIGHTFACE,
            insightface_to_ours,
            ours_to_insightface,
            "insightface recognition/arcface_torch/backbones/iresnet.py state_dict (e.g. backbone.pth)",
        )


@register_recognizer("iresnet18")
def iresnet18(**kwargs: Any) -> InsightFaceIResNet:
    """insightface IResNet-18 (ArcFace)."""
    return InsightFaceIResNet(depth=18, **kwargs)


@register_recognizer("iresnet34")
def iresnet34(**kwargs: Any) -> InsightFaceIResNet:
    """insightface IResNet-34 (ArcFace)."""
    return InsightFaceIResNet(depth=34, **kwargs)


@register_recognizer("iresnet50")
def iresnet50(**kwargs: Any) -> InsightFaceIResNet:
    """insightface IResNet-50 (ArcFace)."""
    return InsightFaceIResNet(depth=50, **kwargs)


@register_recognizer("iresnet100")
def iresnet100(**kwargs: Any) -> InsightFaceIResNet:
    """insightface IResNet-100 (ArcFace; PRO-Face's ``iresnet100.pt``)."""
    return InsightFaceIResNet(depth=100, **kwargs)
