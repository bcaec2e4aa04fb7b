"""FaceNet InceptionResnetV1 with facenet-pytorch's checkpoint layout (``20180402-114759-vggface2.pt``).

Architecture: the Inception-ResNet-v1 of David Sandberg's FaceNet as ported by timesler/facenet-pytorch
(``models/inception_resnet_v1.py``): stem convs, 5× Block35 (scale 0.17), Mixed-6a, 10× Block17 (0.10),
Mixed-7a, 5× Block8 (0.20), a final Block8 without ReLU, average pool, dropout 0.6, Linear(1792→512, no
bias), BatchNorm1d(512, eps 1e-3). BatchNorm eps is 1e-3 everywhere (TensorFlow value).

Declared conventions: **160×160**, RGB, ``fixed_image_standardization`` = ``(x·255 − 127.5) / 128``, i.e.
mean 0.5 and std 128/255 on [0, 1] input, 512-d. Source: facenet-pytorch ``models/mtcnn.py``
(``fixed_image_standardization``; MTCNN's default ``image_size=160``, ``post_process=True``, PIL RGB input).
PRO-Face feeds [-1, 1] (std 0.5) instead — a 0.4 % scale difference; facenet-pytorch's own network output is
L2-normalised (use ``embed(..., normalize=True)``).

The published file also holds the VGGFace2 classifier (``logits.*``, 8631 classes): it is dropped on load.
Registered as ``facenet_vggface2`` (architecture only; weights come from the checksum-pinned file).

Our names: ``stages.0.conv_{1a,2a,2b}``, ``stages.1.{conv_3b,conv_4a,conv_4b,block35.i}``,
``stages.2.{reduction_a,block17.i}``, ``stages.3.{reduction_b,block8.i,block8_final}``, ``head.{fc,bn}``; the
residual blocks' ``conv2d`` is our ``project``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.stages import StagedRecognizer

FACENET_PYTORCH = "facenet_pytorch"
# (published prefix, our prefix, what it holds): "blocks" = a sequence of residual blocks, "block" = one
# residual block (both rename the block's output ``conv2d`` to our ``project``), "" = anything else.
_LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("conv2d_1a.", "stages.0.conv_1a.", ""),
    ("conv2d_2a.", "stages.0.conv_2a.", ""),
    ("conv2d_2b.", "stages.0.conv_2b.", ""),
    ("conv2d_3b.", "stages.1.conv_3b.", ""),
    ("conv2d_4a.", "stages.1.conv_4a.", ""),
    ("conv2d_4b.", "stages.1.conv_4b.", ""),
    ("repeat_1.", "stages.1.block35.", "blocks"),
    ("mixed_6a.", "stages.2.reduction_a.", ""),
    ("repeat_2.", "stages.2.block17.", "blocks"),
    ("mixed_7a.", "stages.3.reduction_b.", ""),
    ("repeat_3.", "stages.3.block8.", "blocks"),
    ("block8.", "stages.3.block8_final.", "block"),
    ("last_linear.", "head.fc.", ""),
    ("last_bn.", "head.bn.", ""),
)


def _residual_part(rest: str, to_ours: bool, kind: str) -> str:
    """Rename the residual blocks' output conv (``conv2d`` ↔ ``project``) in the remainder of a key."""
    if not kind:
        return rest
    head, sep, tail = rest.partition(".") if kind == "blocks" else ("", "", rest)
    old, new = ("conv2d.", "project.") if to_ours else ("project.", "conv2d.")
    if tail.startswith(old):
        tail = new + tail[len(old) :]
    return f"{head}{sep}{tail}"


def facenet_to_ours(key: str) -> str | None:
    """facenet-pytorch key → ours; the VGGFace2 classifier (``logits.*``) is dropped."""
    if key.startswith("logits."):
        return None
    for theirs, ours, kind in _LAYOUT:
        if key.startswith(theirs):
            return ours + _residual_part(key[len(theirs) :], True, kind)
    return key


def ours_to_facenet(key: str) -> str:
    """Inverse of :func:`facenet_to_ours`."""
    for theirs, ours, kind in _LAYOUT:
        if key.startswith(ours):
            return theirs + _residual_part(key[len(ours) :], False, kind)
    return key


class BasicConv(nn.Sequential):
    """Conv (no bias) → BN (eps 1e-3) → ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: Any = 0
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
                bn=nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1),
                relu=nn.ReLU(),
            )
        )


class InceptionResidual(nn.Module):
    """Inception-ResNet block: branches → concat → 1×1 ``project`` (with bias) → ``x + scale·out``."""

    def __init__(
        self, channels: int, branches: list[nn.Module], concat: int, scale: float, relu: bool
    ) -> None:
        super().__init__()
        for index, branch in enumerate(branches):
            self.add_module(f"branch{index}", branch)
        self.num_branches = len(branches)
        self.project = nn.Conv2d(concat, channels, 1)
        self.scale = scale
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        """Scaled residual update of ``x``."""
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.num_branches)], 1)
        out = self.project(out) * self.scale + x
        return F.relu(out) if self.relu else out


def block35(scale: float = 0.17) -> InceptionResidual:
    """Inception-ResNet-A (35×35 grid in the original; 256 channels)."""
    return InceptionResidual(
        256,
        [
            BasicConv(256, 32, 1),
            nn.Sequential(BasicConv(256, 32, 1), BasicConv(32, 32, 3, padding=1)),
            nn.Sequential(
                BasicConv(256, 32, 1), BasicConv(32, 32, 3, padding=1), BasicConv(32, 32, 3, padding=1)
            ),
        ],
        96,
        scale,
        relu=True,
    )


def block17(scale: float = 0.10) -> InceptionResidual:
    """Inception-ResNet-B (17×17 grid; 896 channels)."""
    return InceptionResidual(
        896,
        [
            BasicConv(896, 128, 1),
            nn.Sequential(
                BasicConv(896, 128, 1),
                BasicConv(128, 128, (1, 7), padding=(0, 3)),
                BasicConv(128, 128, (7, 1), padding=(3, 0)),
            ),
        ],
        256,
        scale,
        relu=True,
    )


def block8(scale: float = 0.20, relu: bool = True) -> InceptionResidual:
    """Inception-ResNet-C (8×8 grid; 1792 channels)."""
    return InceptionResidual(
        1792,
        [
            BasicConv(1792, 192, 1),
            nn.Sequential(
                BasicConv(1792, 192, 1),
                BasicConv(192, 192, (1, 3), padding=(0, 1)),
                BasicConv(192, 192, (3, 1), padding=(1, 0)),
            ),
        ],
        384,
        scale,
        relu=relu,
    )


class Reduction(nn.Module):
    """Grid reduction: parallel strided branches and a 3×3/2 max-pool, concatenated."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for index, branch in enumerate(branches):
            self.add_module(f"branch{index}", branch)
        self.num_branches = len(branches)

    def forward(self, x: Tensor) -> Tensor:
        """Concatenated branch outputs plus the pooled input."""
        outs = [getattr(self, f"branch{i}")(x) for i in range(self.num_branches)]
        return torch.cat([*outs, F.max_pool2d(x, 3, 2)], 1)


class InceptionResnetV1(StagedRecognizer):
    """FaceNet InceptionResnetV1 (facenet-pytorch layout).

    Stages at 160 px: 64×77², 256×17², 896×8², 1792×3².
    """

    input_size = (160, 160)
    channel_order = "RGB"
    mean = (127.5 / 255.0,) * 3
    std = (128.0 / 255.0,) * 3
    embedding_dim = 512
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (FACENET_PYTORCH, NATIVE)
    conventions_source = (
        "facenet-pytorch models/mtcnn.py fixed_image_standardization ((x*255-127.5)/128), "
        "MTCNN image_size=160, RGB"
    )

    def __init__(self, dropout: float = 0.6, channel_order: str | None = None) -> None:
        super().__init__(channel_order)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(
                    OrderedDict(
                        conv_1a=BasicConv(3, 32, 3, stride=2),
                        conv_2a=BasicConv(32, 32, 3),
                        conv_2b=BasicConv(32, 64, 3, padding=1),
                    )
                ),
                nn.Sequential(
                    OrderedDict(
                        pool_3a=nn.MaxPool2d(3, 2),
                        conv_3b=BasicConv(64, 80, 1),
                        conv_4a=BasicConv(80, 192, 3),
                        conv_4b=BasicConv(192, 256, 3, stride=2),
                        block35=nn.Sequential(*(block35() for _ in range(5))),
                    )
                ),
                nn.Sequential(
                    OrderedDict(
                        reduction_a=Reduction(
                            [
                                BasicConv(256, 384, 3, stride=2),
                                nn.Sequential(
                                    BasicConv(256, 192, 1),
                                    BasicConv(192, 192, 3, padding=1),
                                    BasicConv(192, 256, 3, stride=2),
                                ),
                            ]
                        ),
                        block17=nn.Sequential(*(block17() for _ in range(10))),
                    )
                ),
                nn.Sequential(
                    OrderedDict(
                        reduction_b=Reduction(
                            [
                                nn.Sequential(BasicConv(896, 256, 1), BasicConv(256, 384, 3, stride=2)),
                                nn.Sequential(BasicConv(896, 256, 1), BasicConv(256, 256, 3, stride=2)),
                                nn.Sequential(
                                    BasicConv(896, 256, 1),
                                    BasicConv(256, 256, 3, padding=1),
                                    BasicConv(256, 256, 3, stride=2),
                                ),
                            ]
                        ),
                        block8=nn.Sequential(*(block8() for _ in range(5))),
                        block8_final=block8(scale=1.0, relu=False),
                    )
                ),
            ]
        )
        self.head = nn.Sequential(
            OrderedDict(
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                dropout=nn.Dropout(dropout),
                fc=nn.Linear(1792, 512, bias=False),
                bn=nn.BatchNorm1d(512, eps=1e-3, momentum=0.1),
            )
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Four stages → pooled head (raw embeddings; facenet-pytorch L2-normalises these)."""
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            FACENET_PYTORCH,
            facenet_to_ours,
            ours_to_facenet,
            "timesler/facenet-pytorch models/inception_resnet_v1.py state_dict (vggface2/casia-webface .pt)",
        )


@register_recognizer("facenet_vggface2")
def facenet_vggface2(**kwargs: Any) -> InceptionResnetV1:
    """FaceNet InceptionResnetV1 for facenet-pytorch's VGGFace2 weights (architecture only)."""
    return InceptionResnetV1(**kwargs)
