"""SphereFace-20 (``sphere20a``) in the clcarwin/sphereface_pytorch layout (``net_sphere.py``, ``*.pth``).

Architecture (112×96 input): four stages, each a strided conv3×3 (with bias) + PReLU followed by 1, 2, 4, 1
residual units (conv3×3 + PReLU, conv3×3 + PReLU, identity add; no BatchNorm) → flatten (512×7×6, NCHW
order) → ``fc5`` Linear(21504 → 512) = the embedding. ``fc6`` (the A-Softmax ``AngleLinear`` classifier) is
dropped on load.

Declared conventions: **112×96** (H×W), **BGR**, ``(x − 127.5) / 128`` (mean 0.5, std 128/255 on [0, 1]
input), 512-d. Source: clcarwin ``lfw_eval.py`` — ``cv2.imdecode`` (BGR), ``alignment`` to a 96×112 crop,
``(img − 127.5) / 128``; ``net.feature = True`` returns ``fc5``.

Our names: ``stages.{s}.down.{conv,prelu}``, ``stages.{s}.blocks.{i}.{conv1,prelu1,conv2,prelu2}``, ``fc``;
published ``conv{s+1}_1``/``relu{s+1}_1`` are the strided convs, ``conv{s+1}_{2i+2}``/``_{2i+3}`` unit ``i``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, ClassVar

from torch import Tensor, nn

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.stages import StagedRecognizer

SPHEREFACE_PYTORCH = "sphereface_pytorch"
UNITS = (1, 2, 4, 1)
WIDTHS = (64, 128, 256, 512)
_THEIRS = re.compile(r"^(conv|relu)([1-4])_(\d+)\.(.*)$")
_OURS_DOWN = re.compile(r"^stages\.([0-3])\.down\.(conv|prelu)\.(.*)$")
_OURS_UNIT = re.compile(r"^stages\.([0-3])\.blocks\.(\d+)\.(conv|prelu)([12])\.(.*)$")


def sphereface_to_ours(key: str) -> str | None:
    """clcarwin sphere20a key → ours; the ``fc6`` A-Softmax classifier is dropped."""
    if key.startswith("fc6."):
        return None
    if key.startswith("fc5."):
        return "fc." + key[len("fc5.") :]
    match = _THEIRS.match(key)
    if match is None:
        return key
    kind, stage, index, rest = match[1], int(match[2]) - 1, int(match[3]), match[4]
    ours = "conv" if kind == "conv" else "prelu"
    if index == 1:
        return f"stages.{stage}.down.{ours}.{rest}"
    unit, second = divmod(index - 2, 2)
    if unit >= UNITS[stage]:
        return key
    return f"stages.{stage}.blocks.{unit}.{ours}{second + 1}.{rest}"


def ours_to_sphereface(key: str) -> str:
    """Inverse of :func:`sphereface_to_ours`."""
    if key.startswith("fc."):
        return "fc5." + key[len("fc.") :]
    match = _OURS_DOWN.match(key)
    if match:
        kind = "conv" if match[2] == "conv" else "relu"
        return f"{kind}{int(match[1]) + 1}_1.{match[3]}"
    match = _OURS_UNIT.match(key)
    if match:
        kind = "conv" if match[3] == "conv" else "relu"
        index = 2 + 2 * int(match[2]) + int(match[4]) - 1
        return f"{kind}{int(match[1]) + 1}_{index}.{match[5]}"
    return key


class SphereUnit(nn.Module):
    """Residual unit without normalisation: ``x + PReLU(conv(PReLU(conv(x))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu1 = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu2 = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        """Residual update."""
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


class SphereFace20(StagedRecognizer):
    """SphereFace-20 (sphere20a). Stages at 112×96: 64×56×48, 128×28×24, 256×14×12, 512×7×6."""

    input_size = (112, 96)
    channel_order = "BGR"
    mean = (127.5 / 255.0,) * 3
    std = (128.0 / 255.0,) * 3
    embedding_dim = 512
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (SPHEREFACE_PYTORCH, NATIVE)
    conventions_source = "clcarwin/sphereface_pytorch lfw_eval.py: cv2 BGR, 96x112 crop, (x-127.5)/128"

    def __init__(self, channel_order: str | None = None) -> None:
        super().__init__(channel_order)
        stages, cin = [], 3
        for units, width in zip(UNITS, WIDTHS, strict=True):
            down = nn.Sequential(OrderedDict(conv=nn.Conv2d(cin, width, 3, 2, 1), prelu=nn.PReLU(width)))
            blocks = nn.Sequential(*(SphereUnit(width) for _ in range(units)))
            stages.append(nn.Sequential(OrderedDict(down=down, blocks=blocks)))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(512 * 7 * 6, self.embedding_dim)

    def forward_features(self, x: Tensor) -> Tensor:
        """Four stages → flatten (NCHW) → ``fc`` (raw embeddings)."""
        for stage in self.stages:
            x = stage(x)
        return self.fc(x.flatten(1))

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            SPHEREFACE_PYTORCH,
            sphereface_to_ours,
            ours_to_sphereface,
            "clcarwin/sphereface_pytorch net_sphere.py sphere20a state_dict (fc6 dropped)",
        )


@register_recognizer("sphereface20")
def sphereface20(**kwargs: Any) -> SphereFace20:
    """SphereFace-20 (clcarwin ``sphere20a``), 112×96 BGR."""
    return SphereFace20(**kwargs)
