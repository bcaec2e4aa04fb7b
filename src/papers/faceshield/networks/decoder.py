"""FaceShield's attribute decoder ``UnetDecoder512`` (InfoSwap's): attribute and λ maps at 8 scales.

Inputs are the 10 attribute features (slot 0 is the raw 512-px image, or the 64@128 map ``f0``) and the
10 λ masks. The encoder side fuses them pairwise into 32@256 … 1024@8, a 4×4 conv gives 1024@4, and a U-Net
of transposed convs climbs back up with skips. The λ masks go through the *same* convs. Module names equal
the original's, so its state dicts load unchanged (``src/papers/faceshield/key_mapping.py``). See
``docs/papers/faceshield.md``, "Networks".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.papers.faceshield.networks.init import check_width, divided, infoswap_init


def conv4x4(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv 4×4 stride 2 (no bias) → BN → LeakyReLU(0.1): halves the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
    )


class Deconv4x4(nn.Module):
    """Transposed conv 4×4 stride 2 (no bias) → BN → LeakyReLU(0.1), then concatenate the skip."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.lrelu = nn.LeakyReLU(0.1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Upsample ``x`` ×2 and append ``skip``'s channels."""
        return torch.cat((self.lrelu(self.bn(self.deconv(x))), skip), dim=1)


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class UnetDecoder512(nn.Module):
    """Attribute decoder for 512-px generation (the original's ``UnetDecoder512``).

    ``first_use_img`` (constructor default ``True``) selects slot 0: the 3-channel 512-px image through
    ``conv_0`` (True) or a 64@128 map through ``conv_1`` (PixelShuffle ×2 + 3×3 conv). The original's
    ``forward`` ignores the constructor flag and defaults to ``False``; every working call of it passes
    ``True``. Here ``forward(first_use_img=None)`` uses the constructor's value.

    ``width`` divides every channel count the decoder produces (1 = the published network; tests and the
    CPU demo use 16 or 32). Spatial sizes do not change.
    """

    def __init__(self, first_use_img: bool = True, width: int = 1) -> None:
        super().__init__()
        self.first_use_img = first_use_img
        self.width = check_width("UnetDecoder512", width)
        c = functools.partial(divided, width=self.width)
        self.conv_0 = nn.Conv2d(3, c(32), 4, 2, 1, bias=False)
        self.conv_1 = nn.Sequential(nn.PixelShuffle(2), nn.Conv2d(16, c(32), 3, 1, 1, bias=False))
        self.conv_2 = nn.Conv2d(64, c(64), 3, 1, 1, bias=False)
        self.conv_3 = nn.Conv2d(128, c(128), 3, 1, 1, bias=False)
        self.conv_4 = nn.Conv2d(256, c(256), 3, 1, 1, bias=False)
        self.conv_5 = nn.Conv2d(256, c(512), 4, 2, 1, bias=False)
        self.conv_6 = nn.Conv2d(512, c(1024), 4, 2, 1, bias=False)
        self.conv7 = conv4x4(c(1024), c(1024))
        self.deconv1 = Deconv4x4(c(1024), c(1024))
        self.deconv2 = Deconv4x4(c(2048), c(512))
        self.deconv3 = Deconv4x4(c(1024), c(256))
        self.deconv4 = Deconv4x4(c(512), c(128))
        self.deconv5 = Deconv4x4(c(256), c(64))
        self.deconv6 = Deconv4x4(c(128), c(32))
        self.apply(infoswap_init)

    def _encode(self, x: Sequence[Tensor], first: Tensor) -> list[Tensor]:
        """Slots 1 … 9 fused pairwise, after ``first`` (the slot-0 map): 64@128 … 1024@8."""
        return [
            first,
            self.conv_2(_up2(x[1])),
            self.conv_3(torch.cat((x[2], x[3]), 1)),
            self.conv_4(torch.cat((x[4], x[5]), 1)),
            self.conv_5(torch.cat((x[6], x[7]), 1)),
            self.conv_6(torch.cat((x[8], x[9]), 1)),
        ]

    def forward(
        self,
        feats: Sequence[Tensor],
        lambdas: Sequence[Tensor] | None = None,
        use_lambda: bool = True,
        first_use_img: bool | None = None,
    ) -> tuple[list[Tensor], list[Tensor]] | list[Tensor]:
        """Attribute maps z1 … z8 (1024@4 … 64@512) and, with ``use_lambda``, λ maps (1024@4 … 32@512)."""
        use_img = self.first_use_img if first_use_img is None else first_use_img
        first = self.conv_0(feats[0]) if use_img else self.conv_1(feats[0])
        f1, f2, f3, f4, f5, f6 = self._encode(feats, first)
        z1 = self.conv7(f6)
        z2 = self.deconv1(z1, f6)
        z3 = self.deconv2(z2, f5)
        z4 = self.deconv3(z3, f4)
        z5 = self.deconv4(z4, f3)
        z6 = self.deconv5(z5, f2)
        z7 = self.deconv6(z6, f1)
        attrs = [z1, z2, z3, z4, z5, z6, z7, _up2(z7)]
        if not use_lambda:
            return attrs
        if lambdas is None:
            raise ValueError("UnetDecoder512: use_lambda=True needs the 10 λ maps")
        l1, l2, l3, l4, l5, l6 = self._encode(lambdas, self.conv_1(lambdas[0]))
        return attrs, [self.conv7(l6), l6, l5, l4, l3, l2, l1, _up2(l1)]
