"""iFADIT's anonymise / recover pipeline over its networks (the authors' ``test.py`` and ``get_concat_vec``).

- anonymise with key condition ``c``: ``z = E_id(x)``, ``z' = F(z; c)``, ``w = M([z'; E_attr(x)])``,
  ``x_a = blend(G(w), x, mask)``;
- recover with ``c``: ``ẑ = F⁻¹(ICL(E_id(x_a)); c)``,
  ``x_r = blend(G(M([ẑ; E_attr(x_a)])), background, mask)``; a wrong key gives another face, not ``x``.

Images are in [0, 1], 256 px. ``E_id`` sees pSp's crop of the [-1, 1] image (:func:`psp_identity_crop`),
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


class IdentityEncoder(nn.Module):
    """``E_id``: a zoo recognizer (TreB1eN IR-SE-50 in the paper) on pSp's crop of a 256-px face → the
    L2-normalised identity (the authors' ``id_loss.extract_feats``)."""

    def __init__(self, recognizer: FaceRecognizer) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, images: Tensor) -> Tensor:
        """Identities ``[B, 512]`` of [0, 1] images ``[B, 3, 256, 256]``."""
        crop = psp_identity_crop(images * 2.0 - 1.0)
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
