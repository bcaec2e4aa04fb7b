"""MobileFaceNet in the TreB1eN InsightFace_Pytorch layout (``model.py`` ``MobileFaceNet``).

Published weights: ``model_mobilefacenet.pth``. Architecture (112 px): conv3×3 s2 (64) → depthwise conv3×3
(64) → [expand 1×1 → depthwise 3×3 → project 1×1] bottlenecks (64 ×(1+4) at 28², 128 ×(1+6) at 14²,
128 ×(1+2) at 7², the first of each group strided and without residual) → conv1×1 (512) → global depthwise
conv7×7 (GDC) → linear (no bias) → BN1d.

Declared conventions: 112×112, RGB, mean = std = 0.5 ([-1, 1]), 512-d (``embedding_dim`` is a constructor
argument, as in the original). Source: as for TreB1eN's IR-SE-50 (``data/data_pipe.py`` Normalize(0.5, 0.5);
the same BGR-ordered-training caveat applies, see :mod:`src.networks.recognizers.irse`) and AMT-GAN /
Makeup-privacy, which feed it RGB [-1, 1] at 112 px.

The 128-d CASIA MobileFaceNet PRO-Face uses (wujiyang/Face_Pytorch layout) has this body but a 1×1-conv
embedding layer: :mod:`.mobilefacenet_wujiyang`. The torchkit MobileFaceNet (PRO-Face C's client) has this
body under other names (``input_layer``, ``body_0`` … ``body_7`` in the client's ``nn.Sequential``).

Our names: ``stages.0.{conv,dw}``, ``stages.{1,2,3}.down`` / ``.blocks.{i}``
(``expand``/``depthwise``/``project``), ``stages.3.expand``, ``head.{gdc,fc,bn}``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, ClassVar

from torch import Tensor, nn

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.irse import TREB1EN
from src.networks.recognizers.stages import StagedRecognizer

# (published prefix, our prefix, is a depthwise bottleneck); ``{i}`` is a residual-block index.
_LAYOUT: tuple[tuple[str, str, bool], ...] = (
    ("conv1.", "stages.0.conv.", False),
    ("conv2_dw.", "stages.0.dw.", False),
    ("conv_23.", "stages.1.down.", True),
    ("conv_3.model.{i}.", "stages.1.blocks.{i}.", True),
    ("conv_34.", "stages.2.down.", True),
    ("conv_4.model.{i}.", "stages.2.blocks.{i}.", True),
    ("conv_45.", "stages.3.down.", True),
    ("conv_5.model.{i}.", "stages.3.blocks.{i}.", True),
    ("conv_6_sep.", "stages.3.expand.", False),
    ("conv_6_dw.", "head.gdc.", False),
    ("linear.", "head.fc.", False),
    ("bn.", "head.bn.", False),
)
_BOTTLENECK = {"conv": "expand", "conv_dw": "depthwise", "project": "project"}
_BOTTLENECK_INVERSE = {ours: theirs for theirs, ours in _BOTTLENECK.items()}


def _compile(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix).replace(re.escape("{i}"), r"(?P<i>\d+)") + "(?P<rest>.*)$")


_RULES = [(_compile(theirs), _compile(ours), theirs, ours, dw) for theirs, ours, dw in _LAYOUT]


def _rename(key: str, to_ours: bool) -> str:
    for their_re, our_re, theirs, ours, depthwise in _RULES:
        match = (their_re if to_ours else our_re).match(key)
        if match is None:
            continue
        target = (ours if to_ours else theirs).replace("{i}", match.groupdict().get("i") or "")
        rest = match["rest"]
        if depthwise:
            part, _, tail = rest.partition(".")
            table = _BOTTLENECK if to_ours else _BOTTLENECK_INVERSE
            if part not in table:
                return key
            rest = f"{table[part]}.{tail}"
        return target + rest
    return key


def treb1en_mobilefacenet_to_ours(key: str) -> str:
    """Published TreB1eN MobileFaceNet key → ours (unknown keys unchanged)."""
    return _rename(key, to_ours=True)


def ours_to_treb1en_mobilefacenet(key: str) -> str:
    """Our MobileFaceNet key → TreB1eN's."""
    return _rename(key, to_ours=False)


class ConvBN(nn.Sequential):
    """Conv (no bias) → BN [→ PReLU]."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
            bn=nn.BatchNorm2d(cout),
        )
        if act:
            layers["prelu"] = nn.PReLU(cout)
        super().__init__(layers)


class DepthwiseBottleneck(nn.Module):
    """1×1 expand → depthwise 3×3 (stride) → linear 1×1 projection, with an identity residual when asked."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.expand = ConvBN(cin, hidden, 1)
        self.depthwise = ConvBN(hidden, hidden, 3, stride, 1, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, act=False)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        """Bottleneck output (plus ``x`` when residual)."""
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def _group(cin: int, cout: int, hidden_down: int, blocks: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            down=DepthwiseBottleneck(cin, cout, hidden_down, 2, residual=False),
            blocks=nn.Sequential(*(DepthwiseBottleneck(cout, cout, hidden, 1, True) for _ in range(blocks))),
        )
    )


class MobileFaceNet(StagedRecognizer):
    """MobileFaceNet (TreB1eN layout). Stages: 64×56², 64×28², 128×14², 512×7² (at 112 px)."""

    input_size = (112, 112)
    channel_order = "RGB"
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    embedding_dim = 512
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (TREB1EN, NATIVE)
    conventions_source = (
        "TreB1eN InsightFace_Pytorch data/data_pipe.py Normalize(0.5, 0.5), 112 px; RGB as fed by AMT-GAN"
    )

    def __init__(self, embedding_dim: int = 512, channel_order: str | None = None) -> None:
        super().__init__(channel_order)
        self.embedding_dim = int(embedding_dim)
        stage4 = _group(128, 128, 512, 2, 256)
        stage4.add_module("expand", ConvBN(128, 512, 1))
        self.stages = nn.ModuleList(
            [
                nn.Sequential(
                    OrderedDict(conv=ConvBN(3, 64, 3, 2, 1), dw=ConvBN(64, 64, 3, 1, 1, groups=64))
                ),
                _group(64, 64, 128, 4, 128),
                _group(64, 128, 256, 6, 256),
                stage4,
            ]
        )
        self.head = self._make_head()

    def _make_head(self) -> nn.Sequential:
        """Global depthwise conv (GDC) → flatten → linear (no bias) → BN1d."""
        return nn.Sequential(
            OrderedDict(
                gdc=ConvBN(512, 512, 7, groups=512, act=False),
                flatten=nn.Flatten(),
                fc=nn.Linear(512, self.embedding_dim, bias=False),
                bn=nn.BatchNorm1d(self.embedding_dim),
            )
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Four stages → GDC head (raw embeddings)."""
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            TREB1EN,
            treb1en_mobilefacenet_to_ours,
            ours_to_treb1en_mobilefacenet,
            "TreB1eN InsightFace_Pytorch model.py MobileFaceNet state_dict (model_mobilefacenet.pth)",
        )


@register_recognizer("mobilefacenet")
def mobilefacenet(**kwargs: Any) -> MobileFaceNet:
    """MobileFaceNet, 512-d (TreB1eN ``model_mobilefacenet.pth``; AMT-GAN / Makeup ``mobile_face``)."""
    return MobileFaceNet(**kwargs)
