"""iFADIT's released files load by name through explicit key maps (stand-in files in the authors' layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.networks.recognizers.irse import IRNet
from src.papers.ifadit.encoders import AttributeEncoder
from src.papers.ifadit.networks import IdentityCompensation, IdentityFlow, LatentMapper
from src.papers.ifadit.stylegan2 import StyleGAN2Generator
from src.papers.ifadit.weights import load_into


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_flow_and_mlps_load_from_the_authors_module_state_dicts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    flow = IdentityFlow(permutation_seed=3)
    their_flow = {k.removeprefix("inn."): v for k, v in flow.state_dict().items()}  # G_net.state_dict()
    assert "module_list.0.subnet.0.weight" in their_flow and "module_list.3.w_perm" in their_flow
    torch.save(their_flow, tmp_path / "G_net.pth")
    assert same(load_into(IdentityFlow(permutation_seed=9), tmp_path / "G_net.pth"), flow)
    for cls in (LatentMapper, IdentityCompensation):
        source = cls()
        torch.save(source.state_dict(), tmp_path / f"{cls.__name__}.pth")
        assert same(load_into(cls(), tmp_path / f"{cls.__name__}.pth"), source)
    broken = dict(their_flow)
    del broken["module_list.2.subnet.4.bias"]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"1 missing keys .*module_list\.2\.subnet\.4\.bias"):
        load_into(IdentityFlow(), tmp_path / "broken.pth")


def test_psp_encoder_and_rosinality_generator_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = AttributeEncoder(widths=(16, 32, 64, 128))
    with torch.device("meta"):
        mapping = IRNet(depth=50, se=True).key_mapping("treb1en")
    psp = {
        f"encoder.{mapping.to_theirs(k) if k.startswith(('stem.', 'stages.')) else k}": v
        for k, v in encoder.state_dict().items()
        if k != "latent_avg"
    }
    psp["latent_avg"] = encoder.latent_avg.clone()
    psp["decoder.style.1.weight"] = torch.zeros(2, 2)
    torch.save({"state_dict": psp, "opts": {"n_styles": 14}}, tmp_path / "attr_best.pth")
    assert same(load_into(AttributeEncoder(widths=(16, 32, 64, 128)), tmp_path / "attr_best.pth"), encoder)
    generator = StyleGAN2Generator(size=32, channel_divisor=16)
    torch.save({"g_ema": generator.state_dict(), "d": {}}, tmp_path / "550000.pt")
    assert same(load_into(StyleGAN2Generator(size=32, channel_divisor=16), tmp_path / "550000.pt"), generator)
