"""iFADIT's anonymise / recover pipeline over its networks (the authors' ``test.py`` and ``get_concat_vec``).

- anonymise with key condition ``c``: ``z = E_id(x)``, ``z' = F(z; c)``, ``w = M([z'; E_attr(x)])``,
  ``x_a = blend(G(w), x, mask)``;
- recover with ``c``: ``ẑ = F⁻¹(ICL(E_id(x_a)); c)``,
  ``x_r = blend(G(M([ẑ; E_attr(x_a)])), background, mask)``; a wrong key gives another face, not ``x``.

Images are in [0, 1], 256 px in the paper (any power of two from 32 works, for CPU demos). ``E_id`` sees
pSp's crop of the [-1, 1] image (:func:`identity_crop`),
``E_attr`` the [0, 1] image (both as the authors feed them), ``G`` returns [-1, 1], mapped back to [0, 1]
before blending. The key condition is the key through ``G`` 's mapping network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers.base import FaceRecognizer
from src.networks.recognizers.irse import psp_identity_crop
from src.papers.ifadit.blending import blend
from src.papers.ifadit.encoders import AttributeEncoder
from src.papers.ifadit.networks import IdentityCompensation, IdentityFlow, LatentMapper, fuse
from src.papers.ifadit.stylegan2 import StyleGAN2Generator

#: pSp's identity crop of a 256-px FFHQ-aligned face: rows 35:223, cols 32:220 (as fractions of the side)
CROP_ROWS, CROP_COLS = (35 / 256, 223 / 256), (32 / 256, 220 / 256)


def identity_crop(images: Tensor, output_size: int) -> Tensor:
    """pSp's identity crop at any image size, area-pooled to ``output_size``: exactly
    :func:`psp_identity_crop` for 256-px images and a 112-px recognizer, the same box scaled otherwise."""
    side = images.shape[-1]
    if images.ndim != 4 or images.shape[-2] != side:
        raise ValueError(f"identity_crop expects square [B, C, S, S] images, got {tuple(images.shape)}")
    if side == 256 and output_size == 112:
        return psp_identity_crop(images)
    r0, r1 = (round(f * side) for f in CROP_ROWS)
    c0, c1 = (round(f * side) for f in CROP_COLS)
    return F.adaptive_avg_pool2d(images[:, :, r0:r1, c0:c1], (output_size, output_size))


def recognizer_side(recognizer: nn.Module) -> int:
    """The square input side a zoo recognizer declares (``input_size``)."""
    size = getattr(recognizer, "input_size", None)
    size = size[0] if isinstance(size, tuple | list) else size
    if not isinstance(size, int):
        raise ValueError(f"{type(recognizer).__name__} declares no input_size")
    return size


class IdentityEncoder(nn.Module):
    """``E_id``: a zoo recognizer (TreB1eN IR-SE-50 in the paper) on pSp's crop of the face → the
    L2-normalised identity (the authors' ``id_loss.extract_feats``; their faces are 256 px)."""

    def __init__(self, recognizer: FaceRecognizer) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, images: Tensor) -> Tensor:
        """Identities ``[B, D]`` of [0, 1] images ``[B, 3, S, S]``."""
        crop = identity_crop(images * 2.0 - 1.0, recognizer_side(self.recognizer))
        return F.normalize(
            self.recognizer.forward_features(self.recognizer.preprocess(crop, "[-1,1]")), dim=1
        )


@dataclass
class Anonymised:
    """One anonymisation: the blended image, the generated face, the identity and the transformed one."""

    image: Tensor
    generated: Tensor
    identity: Tensor
    anonymous_identity: Tensor


class IFaditPipeline(nn.Module):
    """The six networks and the key handling of iFADIT's inference (see the module docstring)."""

    def __init__(
        self,
        identity_encoder: IdentityEncoder,
        attribute_encoder: AttributeEncoder,
        mapper: LatentMapper,
        flow: IdentityFlow,
        compensation: IdentityCompensation | None,
        generator: StyleGAN2Generator,
    ) -> None:
        super().__init__()
        self.identity_encoder, self.attribute_encoder = identity_encoder, attribute_encoder
        self.mapper, self.flow, self.compensation, self.generator = mapper, flow, compensation, generator

    def condition(self, key: Tensor) -> Tensor:
        """The flow's condition: the key ``[B, 512]`` through the generator's mapping network."""
        return self.generator.mapping(key)

    def synthesise(self, identity: Tensor, images: Tensor) -> Tensor:
        """A face in [0, 1] from an identity and the attributes of ``images``."""
        codes = self.mapper(fuse(identity, self.attribute_encoder(images)))
        return ((self.generator(codes) + 1.0) / 2.0).clamp(0.0, 1.0)

    def anonymise(self, images: Tensor, masks: Tensor, condition: Tensor) -> Anonymised:
        """``x_a`` under the key condition ``condition`` (see the module docstring)."""
        identity = self.identity_encoder(images)
        anonymous = self.flow(identity, condition)
        generated = self.synthesise(anonymous, images)
        return Anonymised(blend(generated, images, masks), generated, identity, anonymous)

    def recovered_identity(self, anonymised: Tensor, condition: Tensor) -> Tensor:
        """``F⁻¹(ICL(E_id(x_a)); c)``: the identity the key holder recovers from an anonymised image."""
        observed = self.identity_encoder(anonymised)
        if self.compensation is not None:
            observed = self.compensation(observed)
        return self.flow.inverse(observed, condition)

    def recover(
        self, anonymised: Tensor, masks: Tensor, condition: Tensor, background: Tensor | None = None
    ) -> Tensor:
        """``x_r`` from ``x_a`` with ``condition``, pasted onto ``background`` (default: ``x_a`` itself, all a
        receiver has; the authors pasted onto the original image)."""
        identity = self.recovered_identity(anonymised, condition)
        generated = self.synthesise(identity, anonymised)
        return blend(generated, anonymised if background is None else background, masks)
