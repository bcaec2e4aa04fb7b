"""iFADIT's attribute encoder (pSp GradualStyleEncoder on the zoo's IR-SE-50 units): the pyramid wiring, the
published size and a pSp checkpoint's key layout."""

from __future__ import annotations

import pytest
import torch

from src.networks.recognizers.irse import IRNet
from src.papers.ifadit.encoders import AttributeEncoder, convert_psp_state_dict, psp_to_ours

SMALL = (16, 32, 64, 128)  # the SE blocks reduce channels 16-fold


def test_codes_have_one_row_per_style_and_each_reads_its_pyramid_level() -> None:
    torch.manual_seed(0)
    encoder = AttributeEncoder(widths=SMALL).eval()
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        codes = encoder(images)
        assert codes.shape == (2, 14, 128)
        # coarse rows read the 16² level only: a change of the 64² lateral branch leaves them alone
        encoder.latlayer2.bias.add_(1.0)
        moved = encoder(images)
    assert torch.equal(moved[:, :7], codes[:, :7]) and not torch.equal(moved[:, 7:], codes[:, 7:])
    encoder.start_from_latent_avg = True
    encoder.latent_avg.fill_(0.5)
    with torch.no_grad():
        assert torch.allclose(encoder(images), moved + 0.5)


def test_published_size_and_psp_key_layout() -> None:
    with torch.device("meta"):
        published = AttributeEncoder()
    assert sum(p.numel() for p in published.parameters()) == 209_450_688
    expected = {
        "encoder.input_layer.0.weight": "stem.conv.weight",
        "encoder.input_layer.2.weight": "stem.prelu.weight",
        "encoder.body.0.res_layer.1.weight": "stages.0.0.conv1.weight",
        "encoder.body.3.shortcut_layer.1.running_mean": "stages.1.0.shortcut.bn.running_mean",
        "encoder.body.6.res_layer.5.fc2.weight": "stages.1.3.se.expand.weight",
        "encoder.body.20.res_layer.4.bias": "stages.2.13.bn_out.bias",
        "encoder.body.23.res_layer.3.weight": "stages.3.2.conv2.weight",
        "encoder.styles.0.convs.0.weight": "styles.0.convs.0.weight",
        "encoder.styles.13.linear.weight": "styles.13.linear.weight",
        "encoder.latlayer1.weight": "latlayer1.weight",
        "latent_avg": "latent_avg",
        "decoder.convs.0.conv.weight": None,
    }
    assert {key: psp_to_ours(key) for key in expected} == expected


def test_a_psp_checkpoint_loads_strictly() -> None:
    torch.manual_seed(0)
    source = AttributeEncoder(widths=SMALL)
    with torch.device("meta"):
        mapping = IRNet(depth=50, se=True).key_mapping("treb1en")
    state = {}
    for key, value in source.state_dict().items():
        if key.startswith(("stem.", "stages.")):
            state[f"encoder.{mapping.to_theirs(key)}"] = value
        elif key == "latent_avg":
            state[key] = torch.full((128,), 0.25)  # learnt in W: one row, repeated on load
        else:
            state[f"encoder.{key}"] = value
    state["decoder.style.1.weight"] = torch.zeros(3)  # pSp's own generator: skipped
    target = AttributeEncoder(widths=SMALL)
    target.load_state_dict(convert_psp_state_dict(target, state), strict=True)
    assert torch.equal(target.stages[2][5].conv1.weight, source.stages[2][5].conv1.weight)
    assert torch.equal(target.latent_avg, torch.full((14, 128), 0.25))
    del state["encoder.latlayer1.bias"]
    with pytest.raises(ValueError, match="1 missing"):
        convert_psp_state_dict(target, state)
