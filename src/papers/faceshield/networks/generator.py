"""FaceShield's generator ``AII512`` (InfoSwap's "adaptive identity integration"), 512-px output.

An identity vector is lifted to 1024@4 by two transposed convs, then eight residual AII blocks with
bilinear ×2 upsampling between them reach 3@512; the output is ``tanh``. Each AII layer instance-normalises
``h`` and mixes an attribute-modulated ``A = γ_a(z_attr)·h + β_a(z_attr)`` with an identity-modulated
``I = γ_i(z_id)·h + β_i(z_id)`` through a mask ``M = sigmoid(conv1×1([h ‖ λ]))``:
``out = (1 − M)·A + M·I`` (FaceShifter's AAD with a λ-conditioned mask). Module names equal the
original's, so its state dicts load unchanged. See ``docs/papers/faceshield.md``, "Networks".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.papers.faceshield.networks.init import check_width, divided, infoswap_init

#: (in, out, attribute channels, λ channels) of AADBlk1 … AADBlk8.
BLOCKS = (
    (1024, 1024, 1024, 1024),
    (1024, 1024, 2048, 1024),
    (1024, 1024, 1024, 512),
    (1024, 512, 512, 256),
    (512, 256, 256, 128),
    (256, 128, 128, 64),
    (128, 64, 64, 32),
    (64, 3, 64, 32),
)


class AIILayer(nn.Module):
    """One adaptive-identity-integration layer (the original's ``AIILayerLambda``)."""

    def __init__(self, channels: int, attr_channels: int, id_channels: int, lambda_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(attr_channels, channels, 1)  # γ_attr
        self.conv2 = nn.Conv2d(attr_channels, channels, 1)  # β_attr
        self.fc1 = nn.Linear(id_channels, channels)  # γ_id
        self.fc2 = nn.Linear(id_channels, channels)  # β_id
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.conv_2h = nn.Conv2d(channels + lambda_channels, 1, 1)  # the mask M

    def forward(self, h_in: Tensor, z_attr: Tensor, z_id: Tensor, lam: Tensor | None) -> Tensor:
        """Blend the attribute and identity modulations of ``h_in`` with the λ-conditioned mask."""
        h = self.norm(h_in)
        mask = torch.sigmoid(self.conv_2h(h if lam is None else torch.cat((h, lam), 1)))
        attr = self.conv1(z_attr) * h + self.conv2(z_attr)
        identity = self.fc1(z_id)[:, :, None, None] * h + self.fc2(z_id)[:, :, None, None]
        return (1 - mask) * attr + mask * identity


class AIIResBlock(nn.Module):
    """[AII → LeakyReLU(0.01) → conv3×3] twice, plus a skip (AII → LReLU → conv3×3 when the width changes)."""

    def __init__(
        self, cin: int, cout: int, attr_channels: int, id_channels: int, lambda_channels: int
    ) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.AAD1 = AIILayer(cin, attr_channels, id_channels, lambda_channels)
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1, bias=False)
        self.AAD2 = AIILayer(cin, attr_channels, id_channels, lambda_channels)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        if cin != cout:
            self.AAD3 = AIILayer(cin, attr_channels, id_channels, lambda_channels)
            self.conv3 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)

    def forward(self, h: Tensor, z_attr: Tensor, z_id: Tensor, lam: Tensor | None) -> Tensor:
        """Residual AII block."""
        x = self.conv1(F.leaky_relu(self.AAD1(h, z_attr, z_id, lam), 0.01))
        x = self.conv2(F.leaky_relu(self.AAD2(x, z_attr, z_id, lam), 0.01))
        if self.cin != self.cout:
            h = self.conv3(F.leaky_relu(self.AAD3(h, z_attr, z_id, lam), 0.01))
        return x + h


class AII512(nn.Module):
    """Generator: identity ``[B, c_id]``, 8 attribute maps, 8 λ maps → image ``[B, 3, 512, 512]`` in (−1, 1).

    ``deconv`` (ConvTranspose 32→3) is built but never called, as in the original; it is kept so that the
    original's state dicts load strictly. ``width`` divides every channel count but the identity's and the
    RGB output's (1 = the published network; it must match the decoder's).
    """

    def __init__(self, c_id: int = 512, width: int = 1) -> None:
        super().__init__()
        self.width = check_width("AII512", width)
        c = functools.partial(divided, width=self.width)
        self.up1 = nn.ConvTranspose2d(c_id, c(1024), 2, 1, 0)
        self.up2 = nn.ConvTranspose2d(c(1024), c(1024), 2, 2, 0)
        for index, (cin, cout, attr, lam) in enumerate(BLOCKS, 1):
            cout = cout if index == len(BLOCKS) else c(cout)  # the last block always outputs RGB
            setattr(self, f"AADBlk{index}", AIIResBlock(c(cin), cout, c(attr), c_id, c(lam)))
        self.deconv = nn.ConvTranspose2d(c(32), 3, 4, 2, 1, bias=False)  # unused (see class docstring)
        self.apply(infoswap_init)

    @property
    def blocks(self) -> list[AIIResBlock]:
        """AADBlk1 … AADBlk8 in order."""
        return [getattr(self, f"AADBlk{i}") for i in range(1, len(BLOCKS) + 1)]

    def forward(self, z_id: Tensor, z_attr: Sequence[Tensor], lambdas: Sequence[Tensor | None]) -> Tensor:
        """Generate from the identity, the decoder's attribute maps and λ maps (deepest first)."""
        m = self.up2(self.up1(z_id.reshape(z_id.shape[0], -1, 1, 1)))
        if m.shape[-2:] != z_attr[0].shape[-2:]:  # images below 512 px (tests, CPU demo): start smaller
            m = F.interpolate(m, size=z_attr[0].shape[-2:], mode="bilinear", align_corners=True)
        blocks = self.blocks
        for index, block in enumerate(blocks):
            m = block(m, z_attr[index], z_id, lambdas[index])
            if index < len(blocks) - 1:
                m = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.tanh(m)
