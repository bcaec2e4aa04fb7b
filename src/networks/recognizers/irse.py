"""IR / IR-SE ResNets ("improved residual" ArcFace backbones) in two published layouts.

- **TreB1eN / face.evoLVe** (``InsightFace_Pytorch/model.py`` ``Backbone``,
  ``face.evoLVe/backbone/model_irse.py``): IR-50/101/152 and IR-SE-50/101/152. Unit: BN → conv3×3 → PReLU →
  conv3×3(stride) → BN [→ SE(16)], shortcut MaxPool(1, s) when the width is unchanged, else conv1×1 + BN.
  Head: BN2d → dropout → flatten → FC → BN1d. Published weights: TreB1eN ``model_ir_se50.pth`` (pSp /
  FaceShifter / iFADIT identity network), AMT-GAN's ``ir152.pth`` / ``irse50.pth`` (Makeup-privacy).
  Declared conventions: 112×112, **RGB**, mean = std = 0.5 ([-1, 1]), 512-d. Source: the consumers — pSp
  ``criteria/id_loss.py`` / iFADIT (RGB [-1, 1] tensors), AMT-GAN; TreB1eN's ``get_train_dataset`` normalises
  with mean = std = 0.5. Caveat: TreB1eN's ``load_mx_rec`` decodes the MXNet records with
  ``mx.recordio.unpack_img`` (OpenCV, BGR) and saves them through PIL as if RGB, so the network was
  effectively trained on BGR-ordered pixels; pass ``channel_order="BGR"`` to study that.
- **AdaFace** (mk-minchul/AdaFace ``net.py``): IR-18/34/50/101 with an extra BN after the first conv of each
  unit (BN → conv → BN → PReLU → conv → BN), dropout 0.4 and a non-affine BN1d. Checkpoints are Lightning
  ``.ckpt`` files whose ``state_dict`` holds ``model.*`` (the backbone) and ``head.*`` (the AdaFace margin
  head, dropped). Declared conventions: 112×112, **BGR**, mean = std = 0.5, 512-d. Source: AdaFace
  ``inference.py`` ``to_input``: ``((np_img[:, :, ::-1] / 255.) - 0.5) / 0.5`` on an RGB PIL image.
  PRO-Face C's frozen server is AdaFace IR-101 (WebFace12M) with features injected at the four stage ends
  (body blocks 2, 15, 45, 48): :meth:`IRNet.published_stage_ends` gives those indices,
  :meth:`StagedRecognizer.inject` the hooks.
- **InfoSwap** (GGGHSL/InfoSwap-master ``modules/encoder128.py`` ``Backbone128``, FaceShield's frozen
  identity encoder ``model_128_ir_se50.pth``): the TreB1eN IR-SE-50 unit and body names at **128 px** (FC
  512·8·8 → 512), but its head is ``output_layer128.*`` instead of ``output_layer.*`` — the checkpoint format
  ``infoswap`` on :class:`IRNet` (registered as ``ir_se50_infoswap``, :class:`InfoSwapIRNet`, whose first
  format it is). The network L2-normalises its output (``embed(..., normalize=True)``). Declared conventions:
  128×128, RGB, mean = std = 0.5. Source: InfoSwap ``inference_demo.py`` (PIL RGB, Normalize(0.5, 0.5) at
  512 px, rows/cols 37:475 bilinearly resized to 128). FaceShield's fork adds duplicate head modules whose
  keys its own loader derives from ``output_layer128.*``; the published file holds only ``input_layer``,
  ``body`` and ``output_layer128``.

The wujiyang/Face_Pytorch ``CBAMResNet`` (PRO-Face's IResNet50 / SEResNet50) is a different unit (extra BN, a
projection shortcut in the first unit even where the width is unchanged): :mod:`.cbam_resnet`.

Our names: ``stem.{conv,bn,prelu}``, ``stages.{s}.{u}.{bn_in,conv1,bn_mid,prelu,conv2,bn_out,se,shortcut}``,
``head.{bn2d,fc,bn1d}``; the published flat ``body.{g}`` index maps to (stage ``s``, unit ``u``).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping
from src.networks.recognizers.stages import StagedRecognizer, check_input_size

TREB1EN = "treb1en"
ADAFACE = "adaface"
INFOSWAP = "infoswap"
WIDTHS = (64, 128, 256, 512)
TREB1EN_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    152: (3, 8, 36, 3),
}
ADAFACE_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}
# Published ``res_layer`` child → our unit attribute (TreB1eN/face.evoLVe and AdaFace orderings).
TREB1EN_RESIDUAL = {"0": "bn_in", "1": "conv1", "2": "prelu", "3": "conv2", "4": "bn_out", "5": "se"}
ADAFACE_RESIDUAL = {
    "0": "bn_in",
    "1": "conv1",
    "2": "bn_mid",
    "3": "prelu",
    "4": "conv2",
    "5": "bn_out",
    "se_block": "se",
}
SHORTCUT = {"0": "conv", "1": "bn"}
SE_PARTS = {"fc1": "reduce", "fc2": "expand"}
SE_PARTS_INVERSE = {ours: theirs for theirs, ours in SE_PARTS.items()}
SHORTCUT_INVERSE = {ours: theirs for theirs, ours in SHORTCUT.items()}
STEM = {"input_layer.0.": "stem.conv.", "input_layer.1.": "stem.bn.", "input_layer.2.": "stem.prelu."}
HEAD = {"output_layer.0.": "head.bn2d.", "output_layer.3.": "head.fc.", "output_layer.4.": "head.bn1d."}
INFOSWAP_HEAD = {
    "output_layer128.0.": "head.bn2d.",
    "output_layer128.3.": "head.fc.",
    "output_layer128.4.": "head.bn1d.",
}
_THEIR_UNIT = re.compile(r"^body\.(\d+)\.(res_layer|shortcut_layer)\.([^.]+)\.(.*)$")
_OUR_UNIT = re.compile(r"^stages\.(\d+)\.(\d+)\.([^.]+)\.(.*)$")


def stage_end_indices(units: tuple[int, ...]) -> tuple[int, ...]:
    """Flat ``body`` index of the last unit of each stage, for per-stage unit counts ``units``."""
    return tuple(end - 1 for end in itertools.accumulate(units))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool → 1×1 conv (C/r) → ReLU → 1×1 conv (C) → sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.expand = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Reweight the channels of ``x``."""
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class IRUnit(nn.Module):
    """One IR(-SE) unit: BN → conv3×3 → [BN] → PReLU → conv3×3(stride) → BN → [SE], plus a shortcut.

    The shortcut is a parameter-free MaxPool(1, stride) when the width is unchanged, else conv1×1 + BN;
    ``project_shortcut`` forces the conv1×1 + BN shortcut (wujiyang's CBAMResNet: each stage's first unit).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        se: bool,
        mid_bn: bool,
        project_shortcut: bool = False,
    ) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn_mid = nn.BatchNorm2d(channels) if mid_bn else None
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn_out = nn.BatchNorm2d(channels)
        self.se = SqueezeExcite(channels) if se else None
        self.shortcut: nn.Module
        if in_channels == channels and not project_shortcut:
            self.shortcut = nn.MaxPool2d(1, stride)  # parameter-free subsampling (published layout)
        else:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, channels, 1, stride, bias=False), bn=nn.BatchNorm2d(channels)
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        """Residual branch plus shortcut."""
        out = self.conv1(self.bn_in(x))
        if self.bn_mid is not None:
            out = self.bn_mid(out)
        out = self.bn_out(self.conv2(self.prelu(out)))
        if self.se is not None:
            out = self.se(out)
        return out + self.shortcut(x)


class IRNet(StagedRecognizer):
    """IR / IR-SE backbone, TreB1eN / face.evoLVe layout (see the module docstring for conventions).

    ``input_size`` other than 112 (any multiple of 16; InfoSwap uses 128) changes only the FC width.
    ``widths`` (the four stages' channels; published: 64, 128, 256, 512) shrinks the network for CPU demos
    and tests; published weights load only at the published widths.
    Random init is PyTorch's default (as TreB1eN's ``Backbone``): the zoo is meant for published weights.
    """

    input_size = (112, 112)
    channel_order = "RGB"
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    embedding_dim = 512
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (TREB1EN, INFOSWAP, NATIVE)
    conventions_source = (
        "RGB [-1,1] 112 px as fed by pSp criteria/id_loss.py, iFADIT and AMT-GAN; TreB1eN data/data_pipe.py "
        "Normalize(0.5, 0.5) (its training images were BGR-ordered: see module docstring)"
    )
    depth_table: ClassVar[dict[int, tuple[int, int, int, int]]] = TREB1EN_DEPTHS
    residual_names: ClassVar[dict[str, str]] = TREB1EN_RESIDUAL
    mid_bn: ClassVar[bool] = False
    affine_embedding_bn: ClassVar[bool] = True
    project_first_shortcut: ClassVar[bool] = False

    def __init__(
        self,
        depth: int = 50,
        se: bool = False,
        input_size: int = 112,
        dropout: float = 0.6,
        channel_order: str | None = None,
        widths: Sequence[int] = WIDTHS,
    ) -> None:
        super().__init__(channel_order)
        if depth not in self.depth_table:
            raise ValueError(
                f"{type(self).__name__}: depth must be one of {sorted(self.depth_table)}, got {depth}"
            )
        final = check_input_size(type(self).__name__, input_size, 4)
        self.input_size = (input_size, input_size)
        self.depth, self.se = depth, se
        self.units = self.depth_table[depth]
        if len(widths) != 4 or min(int(w) for w in widths) < 1:
            raise ValueError(
                f"{type(self).__name__}: widths must be four positive channel counts, got {widths}"
            )
        self.widths = tuple(int(w) for w in widths)
        stem = self.widths[0]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, stem, 3, 1, 1, bias=False), bn=nn.BatchNorm2d(stem), prelu=nn.PReLU(stem)
            )
        )
        stages, in_channels = [], stem
        for count, width in zip(self.units, self.widths, strict=True):
            units = [IRUnit(in_channels, width, 2, se, self.mid_bn, self.project_first_shortcut)]
            units += [IRUnit(width, width, 1, se, self.mid_bn) for _ in range(count - 1)]
            stages.append(nn.Sequential(*units))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(
            OrderedDict(
                bn2d=nn.BatchNorm2d(self.widths[-1]),
                dropout=nn.Dropout(dropout),
                flatten=nn.Flatten(),
                fc=nn.Linear(self.widths[-1] * final * final, self.embedding_dim),
                bn1d=nn.BatchNorm1d(self.embedding_dim, affine=self.affine_embedding_bn),
            )
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem → four stages → head (raw embeddings)."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def published_stage_ends(self) -> tuple[int, ...]:
        """Published ``body`` indices of the last unit of each stage (IR-101: 2, 15, 45, 48)."""
        return stage_end_indices(self.units)

    # ------------------------------------------------------------------------------- key mapping
    def _published_to_ours(self, key: str, head: dict[str, str] = HEAD) -> str | None:
        for theirs, ours in (*STEM.items(), *head.items()):
            if key.startswith(theirs):
                return ours + key[len(theirs) :]
        match = _THEIR_UNIT.match(key)
        if match is None:
            return key
        index, part, child, rest = int(match[1]), match[2], match[3], match[4]
        starts = [0, *itertools.accumulate(self.units)]
        if index >= starts[-1]:
            return key
        stage = bisect.bisect_right(starts, index) - 1
        table = self.residual_names if part == "res_layer" else SHORTCUT
        if child not in table:
            return key
        name = table[child]
        if name == "se":
            part, _, tail = rest.partition(".")
            rest = f"{SE_PARTS.get(part, part)}.{tail}"
        elif part == "shortcut_layer":
            name = f"shortcut.{name}"
        return f"stages.{stage}.{index - starts[stage]}.{name}.{rest}"

    def _ours_to_published(self, key: str, head: dict[str, str] = HEAD) -> str:
        for theirs, ours in (*STEM.items(), *head.items()):
            if key.startswith(ours):
                return theirs + key[len(ours) :]
        match = _OUR_UNIT.match(key)
        if match is None:
            return key
        stage, unit, name, rest = int(match[1]), int(match[2]), match[3], match[4]
        index = sum(self.units[:stage]) + unit
        if name == "shortcut":
            child, _, tail = rest.partition(".")
            return f"body.{index}.shortcut_layer.{SHORTCUT_INVERSE[child]}.{tail}"
        if name == "se":
            part, _, tail = rest.partition(".")
            rest = f"{SE_PARTS_INVERSE[part]}.{tail}"
        inverse = {ours: theirs for theirs, ours in self.residual_names.items()}
        return f"body.{index}.res_layer.{inverse[name]}.{rest}"

    def _published_mapping(self, format: str) -> KeyMapping:
        if format == INFOSWAP:
            return KeyMapping(
                INFOSWAP,
                lambda key: self._published_to_ours(key, INFOSWAP_HEAD),
                lambda key: self._ours_to_published(key, INFOSWAP_HEAD),
                "GGGHSL/InfoSwap-master modules/encoder128.py Backbone128 state_dict (model_128_ir_se50.pth)",
            )
        return KeyMapping(
            TREB1EN,
            self._published_to_ours,
            self._ours_to_published,
            "TreB1eN InsightFace_Pytorch model.py Backbone / face.evoLVe backbone/model_irse.py state_dict",
        )


class AdaFaceIRNet(IRNet):
    """AdaFace IR backbone (mk-minchul/AdaFace ``net.py``): BGR input, extra BN per unit, non-affine BN1d."""

    channel_order = "BGR"
    checkpoint_formats: ClassVar[tuple[str, ...]] = (ADAFACE, NATIVE)
    conventions_source = "mk-minchul/AdaFace inference.py to_input: BGR, ((x/255) - 0.5) / 0.5, 112 px"
    depth_table: ClassVar[dict[int, tuple[int, int, int, int]]] = ADAFACE_DEPTHS
    residual_names: ClassVar[dict[str, str]] = ADAFACE_RESIDUAL
    mid_bn: ClassVar[bool] = True
    affine_embedding_bn: ClassVar[bool] = False

    def __init__(
        self,
        depth: int = 101,
        se: bool = False,
        input_size: int = 112,
        dropout: float = 0.4,
        channel_order: str | None = None,
        widths: Sequence[int] = WIDTHS,
    ) -> None:
        super().__init__(100 if depth == 101 else depth, se, input_size, dropout, channel_order, widths)

    def _published_to_ours(self, key: str, head: dict[str, str] = HEAD) -> str | None:
        if key.startswith("head."):  # the AdaFace margin head (kernel, t, batch_mean, batch_std)
            return None
        return super()._published_to_ours(key, head)

    def _published_mapping(self, format: str) -> KeyMapping:
        return KeyMapping(
            ADAFACE,
            self._published_to_ours,
            self._ours_to_published,
            "mk-minchul/AdaFace net.py Backbone in a Lightning .ckpt (state_dict/model.*; head.* dropped)",
        )


class InfoSwapIRNet(IRNet):
    """InfoSwap's ``Backbone128``: TreB1eN IR-SE-50 at 128 px, checkpoint head ``output_layer128.*``.

    Only the defaults differ from :class:`IRNet` (128 px, SE, the ``infoswap`` format first); see the module
    docstring for the source of the declared conventions.
    """

    checkpoint_formats: ClassVar[tuple[str, ...]] = (INFOSWAP, TREB1EN, NATIVE)
    conventions_source = (
        "GGGHSL/InfoSwap-master inference_demo.py: PIL RGB, Normalize(0.5, 0.5), 512-px crop 37:475 "
        "resized to 128 px; output L2-normalised by Backbone128"
    )

    def __init__(
        self,
        depth: int = 50,
        se: bool = True,
        input_size: int = 128,
        dropout: float = 0.6,
        channel_order: str | None = None,
    ) -> None:
        super().__init__(depth, se, input_size, dropout, channel_order)


def psp_identity_crop(images: Tensor) -> Tensor:
    """pSp's ID-loss crop for 256-px FFHQ-aligned faces: rows 35:223, cols 32:220, area-pooled to 112×112.

    Used by iFADIT (and pSp/e4e) in front of the TreB1eN IR-SE-50; range-agnostic (crop + average pooling).
    """
    if images.ndim != 4 or tuple(images.shape[-2:]) != (256, 256):
        raise ValueError(f"psp_identity_crop expects [B, C, 256, 256] images, got {tuple(images.shape)}")
    return F.adaptive_avg_pool2d(images[:, :, 35:223, 32:220], (112, 112))


@register_recognizer("ir50")
def ir50(**kwargs: Any) -> IRNet:
    """IR-50 (TreB1eN / face.evoLVe layout)."""
    return IRNet(depth=50, se=False, **kwargs)


@register_recognizer("ir_se50")
def ir_se50(**kwargs: Any) -> IRNet:
    """IR-SE-50 (TreB1eN ``model_ir_se50.pth``: pSp / FaceShifter / iFADIT identity; AMT-GAN irse50)."""
    return IRNet(depth=50, se=True, **kwargs)


@register_recognizer("ir_se50_infoswap")
def ir_se50_infoswap(**kwargs: Any) -> InfoSwapIRNet:
    """IR-SE-50 at 128 px (InfoSwap / FaceShield ``model_128_ir_se50.pth``, format ``infoswap``)."""
    return InfoSwapIRNet(**kwargs)


@register_recognizer("ir101")
def ir101(**kwargs: Any) -> IRNet:
    """IR-101 (TreB1eN / face.evoLVe layout)."""
    return IRNet(depth=100, se=False, **kwargs)


@register_recognizer("ir152")
def ir152(**kwargs: Any) -> IRNet:
    """IR-152 (face.evoLVe layout; AMT-GAN / Makeup-privacy black-box ``ir152``)."""
    return IRNet(depth=152, se=False, **kwargs)


@register_recognizer("adaface_ir18")
def adaface_ir18(**kwargs: Any) -> AdaFaceIRNet:
    """AdaFace IR-18 (``adaface_ir18_*.ckpt``)."""
    return AdaFaceIRNet(depth=18, **kwargs)


@register_recognizer("adaface_ir50")
def adaface_ir50(**kwargs: Any) -> AdaFaceIRNet:
    """AdaFace IR-50 (``adaface_ir50_*.ckpt``)."""
    return AdaFaceIRNet(depth=50, **kwargs)


@register_recognizer("adaface_ir101")
def adaface_ir101(**kwargs: Any) -> AdaFaceIRNet:
    """AdaFace IR-101 (``adaface_ir101_webface12m.ckpt``: PRO-Face C's server network)."""
    return AdaFaceIRNet(depth=101, **kwargs)
