"""iFADIT's attribute encoder ``E_attr``: pSp's ``GradualStyleEncoder`` (an IR-SE-50 feature pyramid with one
"gradual style block" per W+ row), 14 × 512 attribute codes for a 256-px face.

The IR-SE-50 body is the zoo's (:class:`~src.networks.recognizers.irse.IRUnit`, the TreB1eN layout pSp
vendors), tapped at the ends of stages 2, 3 and 4 (pSp's body indices 6, 20, 23): the coarse rows 0–2 read the
16² map, the middle rows 3–6 the 32² map with the 16² one upsampled and added, the fine rows 7–13 the 64²
level likewise. Each style block halves the map with 3×3 stride-2 convs (LeakyReLU 0.01) down to 1×1 and
ends with an equalised linear layer. Checkpoint layout and key map: :func:`psp_to_ours`
(docs/papers/ifadit.md, "Attribute encoder").
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable
from src.networks.recognizers.checkpoints import KeyMapping
from src.networks.recognizers.irse import IRNet, IRUnit
from src.papers.ifadit.stylegan2 import EqualLinear

#: units per stage of IR-SE-50 and their widths
IR50_UNITS = (3, 4, 14, 3)
WIDTHS = (64, 128, 256, 512)


class GradualStyleBlock(nn.Module):
    """A feature map ``spatial`` × ``spatial`` → one 512-d style row."""

    def __init__(self, in_channels: int, out_channels: int, spatial: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            layers += [nn.Conv2d(out_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_channels, out_channels, lr_mul=1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_channels))


@buildable
class AttributeEncoder(nn.Module):
    """pSp ``GradualStyleEncoder(50, 'ir_se')``: images ``[B, 3, S, S]`` → codes ``[B, n_styles, 512]``.

    ``units`` (IR-SE units per stage; 3, 4, 14, 3 = IR-SE-50) shrinks the body's depth for CPU demos
    (published weights load only at the published depth and widths). ``image_size`` S is 256 in the paper;
    the pyramid levels the style blocks read are S/16, S/8 and S/4 (16², 32², 64² at 256), so smaller powers
    of two (down to 32) give the same network for CPU demos and tests.
    ``widths`` (the body's four stage widths; published 64, 128, 256, 512, the last being the code size)
    shrinks it for CPU tests (209,450,688 parameters at the published widths).

    ``n_styles`` is 14 for 256-px StyleGAN2 (``2·log2(256) − 2``); the first 3 rows are coarse, the next 4
    middle, the rest fine (pSp's split). ``latent_avg`` (a ``[n_styles, 512]`` buffer) is added to the codes
    when ``start_from_latent_avg`` (pSp's option; iFADIT's released encoder is loaded from a pSp checkpoint).
    Inputs are passed as given: the authors feed [0, 1] images here (their identity encoder gets [-1, 1]).
    """

    coarse, middle = 3, 7

    def __init__(
        self,
        n_styles: int = 14,
        start_from_latent_avg: bool = False,
        widths: Sequence[int] = WIDTHS,
        image_size: int = 256,
        units: Sequence[int] = IR50_UNITS,
    ) -> None:
        super().__init__()
        if image_size < 32 or image_size & (image_size - 1):
            raise ValueError(f"AttributeEncoder: image_size must be a power of two >= 32, got {image_size}")
        self.n_styles, self.image_size = int(n_styles), int(image_size)
        self.start_from_latent_avg = bool(start_from_latent_avg)
        if len(widths) != 4:
            raise ValueError(f"AttributeEncoder: widths must be four channel counts, got {widths}")
        w = [int(v) for v in widths]
        self.code_dim = w[3]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, w[0], 3, 1, 1, bias=False), bn=nn.BatchNorm2d(w[0]), prelu=nn.PReLU(w[0])
            )
        )
        stages, in_channels = [], w[0]
        if len(units) != 4 or min(units) < 1:
            raise ValueError(f"AttributeEncoder: units must be four counts >= 1, got {units}")
        for count, width in zip(units, w, strict=True):
            stage = [IRUnit(in_channels, width, 2, se=True, mid_bn=False)]
            stage += [IRUnit(width, width, 1, se=True, mid_bn=False) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.styles = nn.ModuleList(
            GradualStyleBlock(
                w[3], w[3], image_size // (16 if i < self.coarse else 8 if i < self.middle else 4)
            )
            for i in range(self.n_styles)
        )
        self.latlayer1 = nn.Conv2d(w[2], w[3], 1)
        self.latlayer2 = nn.Conv2d(w[1], w[3], 1)
        self.register_buffer("latent_avg", torch.zeros(self.n_styles, w[3]))

    @staticmethod
    def upsample_add(x: Tensor, y: Tensor) -> Tensor:
        """``x`` bilinearly resized to ``y`` 's size (align_corners, as pSp) plus ``y``."""
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, images: Tensor) -> Tensor:
        """Attribute codes ``[B, n_styles, 512]``."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"AttributeEncoder: built for {self.image_size}-px images, got {tuple(images.shape)}"
            )
        x = self.stages[0](self.stem(images))
        c1 = self.stages[1](x)
        c2 = self.stages[2](c1)
        c3 = self.stages[3](c2)
        p2 = self.upsample_add(c3, self.latlayer1(c2))
        p1 = self.upsample_add(p2, self.latlayer2(c1))
        rows = [
            style(c3 if i < self.coarse else p2 if i < self.middle else p1)
            for i, style in enumerate(self.styles)
        ]
        codes = torch.stack(rows, dim=1)
        return codes + self.latent_avg if self.start_from_latent_avg else codes


@functools.cache
def ir_se50_mapping() -> KeyMapping:
    """The zoo's TreB1eN IR-SE-50 key mapping (of a network built on the meta device: names only)."""
    with torch.device("meta"):
        return IRNet(depth=50, se=True).key_mapping("treb1en")


def psp_to_ours(key: str) -> str | None:
    """A key of a pSp checkpoint → ours; None = not the encoder (pSp's ``decoder.*``, a StyleGAN2 of its own).

    ``encoder.input_layer.*`` / ``encoder.body.{g}.*`` → ``stem.*`` / ``stages.{s}.{u}.*`` (the zoo's TreB1eN
    names), ``encoder.styles.*`` and ``encoder.latlayer{1,2}.*`` unchanged, ``latent_avg`` → ``latent_avg``.
    A checkpoint of the encoder alone (no ``encoder.`` prefix) maps the same way.
    """
    if key == "latent_avg":
        return key
    if key.startswith("decoder."):
        return None
    key = key.removeprefix("encoder.")
    if key.startswith(("styles.", "latlayer1.", "latlayer2.")):
        return key
    return ir_se50_mapping().to_ours(key)


def convert_psp_state_dict(encoder: AttributeEncoder, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A pSp checkpoint's ``state_dict`` → one for ``encoder``, strictly (names every mismatch).

    pSp stores ``latent_avg`` as ``[n_styles, 512]`` (or ``[512]`` when learnt in W: repeated here).
    """
    own = encoder.state_dict()
    converted: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        ours = psp_to_ours(key)
        if ours is None:
            continue
        if ours == "latent_avg" and value.ndim == 1:
            value = value.unsqueeze(0).repeat(encoder.n_styles, 1)
        if ours not in own or tuple(value.shape) != tuple(own[ours].shape):
            unexpected.append(f"{key} {tuple(value.shape)}")
            continue
        converted[ours] = value
    missing = [
        k for k in own if k not in converted and not k.endswith("num_batches_tracked") and k != "latent_avg"
    ]
    if missing or unexpected:
        raise ValueError(
            f"cannot load a pSp checkpoint into AttributeEncoder: {len(missing)} missing "
            f"({', '.join(missing[:5])}), {len(unexpected)} unexpected or mis-shaped "
            f"({', '.join(unexpected[:5])})"
        )
    for key in own:
        converted.setdefault(key, own[key])
    return converted
