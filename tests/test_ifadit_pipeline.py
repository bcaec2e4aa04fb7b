"""iFADIT's anonymise / recover pipeline on narrow random networks: shapes, keys, the identity round trip
through the flow and the blend that keeps the outside of the mask."""

from __future__ import annotations

import warnings

import torch

from src.networks.recognizers import build_recognizer
from src.networks.recognizers.irse import psp_identity_crop
from src.papers.ifadit.encoders import AttributeEncoder
from src.papers.ifadit.networks import IdentityCompensation, IdentityFlow, LatentMapper, draw_key
from src.papers.ifadit.pipeline import IdentityEncoder, IFaditPipeline
from src.papers.ifadit.stylegan2 import StyleGAN2Generator


def tiny_pipeline(compensation: bool = True) -> IFaditPipeline:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recognizer = build_recognizer("ir_se50", widths=(16, 32, 64, 128)).eval()
    return IFaditPipeline(
        IdentityEncoder(recognizer),
        AttributeEncoder(widths=(16, 32, 64, 512)),
        LatentMapper(),
        IdentityFlow(),
        IdentityCompensation() if compensation else None,
        StyleGAN2Generator(size=256, channel_divisor=16),
    ).eval()


def test_anonymise_and_recover_shapes_keys_and_mask() -> None:
    pipeline = tiny_pipeline()
    images = torch.rand(2, 3, 256, 256)
    masks = torch.zeros(2, 1, 256, 256)
    masks[..., 64:192, 64:192] = 1.0
    c1 = pipeline.condition(draw_key(2, torch.Generator().manual_seed(1)))
    c2 = pipeline.condition(draw_key(2, torch.Generator().manual_seed(2)))
    with torch.no_grad():
        first = pipeline.anonymise(images, masks, c1)
        assert first.image.shape == images.shape and first.image.min() >= 0 and first.image.max() <= 1
        assert torch.equal(first.image[..., :40, :], images[..., :40, :])  # outside the grown, feathered mask
        again = pipeline.anonymise(images, masks, c1)
        assert torch.equal(again.image, first.image)  # stored noise: deterministic
        other = pipeline.anonymise(images, masks, c2)
        assert (other.anonymous_identity - first.anonymous_identity).abs().max() > 1e-3
        recovered = pipeline.recover(first.image, masks, c1, background=images)
        assert recovered.shape == images.shape and torch.equal(recovered[..., :40, :], images[..., :40, :])


def test_identity_round_trip_with_the_right_key_only() -> None:
    """Without the compensation MLP, F⁻¹(E_id(x_a)) is exact when E_id(x_a) equals z' (a perfect generator):
    checked on the flow directly, and the identity encoder is pSp's crop of the [-1, 1] face."""
    pipeline = tiny_pipeline(compensation=False)
    images = torch.rand(2, 3, 256, 256)
    c1 = pipeline.condition(draw_key(2, torch.Generator().manual_seed(1)))
    c2 = pipeline.condition(draw_key(2, torch.Generator().manual_seed(2)))
    with torch.no_grad():
        z = pipeline.identity_encoder(images)
        expected = pipeline.identity_encoder.recognizer.embed(psp_identity_crop(images * 2 - 1), "[-1,1]")
        assert torch.allclose(z, expected, atol=1e-6) and torch.allclose(z.norm(dim=1), torch.ones(2))
        anonymous = pipeline.flow(z, c1)
        assert (pipeline.flow.inverse(anonymous, c1) - z).abs().max() < 1e-5
        assert (pipeline.flow.inverse(anonymous, c2) - z).abs().max() > 1e-3
