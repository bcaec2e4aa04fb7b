"""FaceShield's two Stage-II adversaries: a multiscale patch discriminator (LSGAN) and the IID detector.

- :class:`MultiscaleDiscriminator` (pix2pixHD style): 3 PatchGANs, each on the image average-pooled once
  more than the previous; raw scores (no sigmoid), for least-squares targets.
- :class:`IIDDiscriminator` ("implicit identity"): an Xception (timm ``legacy_xception``, the same layout
  and parameter names as the original's Cadene-style Xception) whose 2048@16 map goes through a 1×1 conv +
  BN + ReLU to 512 channels and a global average pool: a non-negative 512-d implicit-identity embedding.

See ``docs/papers/faceshield.md``, "Networks".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable


def patch_discriminator(in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> nn.Sequential:
    """One PatchGAN, flat as the original's ``NLayerDiscriminator.model`` (so keys match: ``0``, ``2``, …)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2)]
    width = ndf
    for _ in range(1, n_layers):
        previous, width = width, min(width * 2, 512)
        layers += [nn.Conv2d(previous, width, 4, 2, 2), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
    previous, width = width, min(width * 2, 512)
    layers += [nn.Conv2d(previous, width, 4, 1, 2), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(width, 1, 4, 1, 2))
    return nn.Sequential(*layers)


@buildable
class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs ``layer0`` … ; ``forward`` returns one score map per scale, full size first.

    As in the original, the full-size image goes to the *last* PatchGAN (``layer{num_d-1}``) and each next
    scale is AvgPool 3×3 / 2 (padding 1, ``count_include_pad=False``). The original's custom init is applied
    before the PatchGANs exist, so they keep PyTorch's default init; so do these.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, num_d: int = 3) -> None:
        super().__init__()
        self.num_d = num_d
        for index in range(num_d):
            setattr(self, f"layer{index}", patch_discriminator(in_channels, ndf, n_layers))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Score maps at every scale (the original nests each in a one-element list; this does not)."""
        scores = []
        for index in range(self.num_d):
            scores.append(getattr(self, f"layer{self.num_d - 1 - index}")(x))
            if index != self.num_d - 1:
                x = self.downsample(x)
        return scores


XCEPTION = "legacy_xception"


def iid_backbone(name: str = XCEPTION) -> nn.Module:
    """A timm backbone without classifier (random init; ImageNet weights are loaded apart).

    ``legacy_xception`` (the original's) also loses its final ReLU: the original's ``features`` stop at
    ``bn4`` and the 1×1 projection follows directly. Other timm names (e.g. ``resnet10t``) only serve CPU
    tests and the demo.
    """
    import timm  # imported here: importing timm costs seconds, and paper discovery imports this module

    backbone = timm.create_model(name, pretrained=False, num_classes=0)
    if name == XCEPTION:
        backbone.act4 = nn.Identity()
    return backbone


@buildable
class IIDDiscriminator(nn.Module):
    """Implicit-identity detector: image → non-negative 512-d embedding (``forward``) and two heads.

    ``backbone``: a timm model name (``legacy_xception``, the original's; smaller ones for CPU tests).
    ``logits`` is the original's ``last_linear`` (512 → 2; built and saved but unused by FaceShield's
    training); ``match`` is its ``classifier(features, id_feat)`` branch: a hard two-class decision
    ``[1 − p, p]`` with ``p = cos(embedding, explicit identity) > 0.5``.
    """

    def __init__(
        self,
        embedding_dim: int = 512,
        num_classes: int = 2,
        backbone: str = XCEPTION,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.backbone = iid_backbone(backbone)
        self.input_size = input_size
        self.adjust_channel = nn.Sequential(
            nn.Conv2d(self.backbone.num_features, embedding_dim, 1, 1),
            nn.BatchNorm2d(embedding_dim),
            nn.ReLU(),
        )
        self.last_linear = nn.Linear(embedding_dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` (the original feeds 512-px faces in [-1, 1]) → embeddings ``[B, 512]``.

        ``input_size`` (tests and the CPU demo only) resizes the images first; the original does not."""
        if self.input_size is not None and tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            images = F.interpolate(
                images,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        features = self.adjust_channel(self.backbone.forward_features(images))
        return F.adaptive_avg_pool2d(features, 1).flatten(1)

    def logits(self, embedding: Tensor) -> Tensor:
        """The binary ``last_linear`` head on an embedding."""
        return self.last_linear(embedding)

    @staticmethod
    def match(embedding: Tensor, explicit_identity: Tensor) -> Tensor:
        """``[1 − p, p]`` with ``p = 1`` where cos(embedding, explicit identity) > 0.5 (no gradient flows)."""
        p = (F.cosine_similarity(embedding, explicit_identity, dim=1) > 0.5).to(embedding.dtype)
        return torch.stack([1 - p, p], dim=1)
