"""EfficientNet-B4 key mapping between efficientnet_pytorch (lukemelas) and timm: every key round-trips, the
converted reference weights give timm the same logits, and unknown keys are refused by name."""

from __future__ import annotations

import math

import pytest
import timm
import torch

from src.networks.detectors.efficientnet_keys import (
    B4_BLOCKS,
    convert_lukemelas_state_dict,
    lukemelas_to_timm,
    timm_to_lukemelas,
    to_lukemelas_state_dict,
)

SIZE = 380  # the detectors' input size; efficientnet_pytorch's static "same" padding is built for it


def _timm_b4() -> torch.nn.Module:
    return timm.create_model("tf_efficientnet_b4", pretrained=False, num_classes=2)


def test_block_counts_and_stage_boundaries() -> None:
    assert tuple(len(stage) for stage in _timm_b4().blocks) == B4_BLOCKS
    pairs = {
        "_conv_stem.weight": "conv_stem.weight",
        "_bn0.num_batches_tracked": "bn1.num_batches_tracked",
        "_blocks.1._project_conv.weight": "blocks.0.1.conv_pw.weight",
        "_blocks.1._bn2.running_var": "blocks.0.1.bn2.running_var",
        "_blocks.2._expand_conv.weight": "blocks.1.0.conv_pw.weight",
        "_blocks.2._bn1.running_mean": "blocks.1.0.bn2.running_mean",
        "_blocks.5._se_reduce.bias": "blocks.1.3.se.conv_reduce.bias",
        "_blocks.31._project_conv.weight": "blocks.6.1.conv_pwl.weight",
        "_blocks.31._bn2.weight": "blocks.6.1.bn3.weight",
        "_conv_head.weight": "conv_head.weight",
        "_bn1.bias": "bn2.bias",
        "_fc.weight": "classifier.weight",
    }
    for luke, timm_key in pairs.items():
        assert lukemelas_to_timm(luke) == timm_key
        assert timm_to_lukemelas(timm_key) == luke


def test_every_timm_key_round_trips() -> None:
    state = _timm_b4().state_dict()
    luke = to_lukemelas_state_dict(state, prefix="net.")
    assert len(luke) == len(state) == 706
    assert all(key.startswith("net._") for key in luke)
    back = convert_lukemelas_state_dict(luke, prefix="net.")
    assert list(back) == list(state)
    assert all(back[key] is state[key] for key in state)
    for key in state:
        assert lukemelas_to_timm(timm_to_lukemelas(key)) == key


def test_unknown_keys_are_refused_by_name() -> None:
    good = {"net._conv_stem.weight": torch.zeros(1), "net._fc.bias": torch.zeros(2)}
    assert set(convert_lukemelas_state_dict(good, prefix="net.")) == {"conv_stem.weight", "classifier.bias"}
    bad = [
        "net._blocks.32._bn0.weight",  # past the last block
        "net._blocks.0._expand_conv.weight",  # stage 0 has no expansion
        "net._conv_stem.bias",  # the stem convolution has no bias
        "net._blocks.3._dropout.p",
        "head.weight",  # outside the prefix: refused too, never dropped
    ]
    with pytest.raises(ValueError, match="5 key") as info:
        convert_lukemelas_state_dict({**good, **dict.fromkeys(bad, torch.zeros(1))}, prefix="net.")
    assert all(repr(key) in str(info.value) for key in bad)
    with pytest.raises(ValueError, match="'blocks.0.0.conv_pwl.weight'"):
        to_lukemelas_state_dict({"blocks.0.0.conv_pwl.weight": torch.zeros(1)})  # no pwl in stage 0
    with pytest.raises(KeyError):
        lukemelas_to_timm("_blocks.x._bn0.weight")
    with pytest.raises(KeyError):
        timm_to_lukemelas("blocks.6.2.conv_dw.weight")  # stage 6 has 2 blocks


def _randomise(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Variance-preserving weights (so the signal survives 32 blocks) and random BatchNorm affine and
    running statistics, so that a swapped BatchNorm of the same width changes the output."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                m.weight.normal_(0, math.sqrt(2 / fan_out), generator=generator)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1, generator=generator)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 1 / math.sqrt(m.in_features), generator=generator)
                m.bias.normal_(0, 0.1, generator=generator)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0, 0.1, generator=generator)
                m.running_mean.normal_(0, 0.1, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)


def test_converted_reference_weights_give_timm_the_same_logits() -> None:
    """The independent reference: efficientnet_pytorch's B4 and timm's tf_efficientnet_b4 agree on the
    converted weights. Tolerance: logits atol 1e-4, features rtol 1e-4 + atol 1e-4. The two implementations
    differ only in float32 rounding (separate padding layers, Swish variants), which accumulates over ~100
    layers to ~2e-6 on logits of magnitude ~8 and ~1e-4 on features of magnitude ~60 (about 2e-6
    relative); a single mis-mapped BatchNorm moves the logits by ~1 (the negative control at the end)."""
    efficientnet_pytorch = pytest.importorskip("efficientnet_pytorch")
    generator = torch.Generator().manual_seed(0)
    reference = efficientnet_pytorch.EfficientNet.from_name("efficientnet-b4", num_classes=2, image_size=SIZE)
    _randomise(reference, generator)
    state = {f"net.{key}": value for key, value in reference.state_dict().items()}
    net = _timm_b4()
    net.load_state_dict(convert_lukemelas_state_dict(state, prefix="net."), strict=True)
    reference.eval()
    net.eval()
    x = torch.randn(1, 3, SIZE, SIZE, generator=generator)
    with torch.no_grad():
        ref_features, features = reference.extract_features(x), net.forward_features(x)
        ref_logits, logits = reference(x), net(x)
    assert features.shape == ref_features.shape == (1, 1792, 12, 12)
    assert torch.allclose(features, ref_features, rtol=1e-4, atol=1e-4)
    assert torch.allclose(logits, ref_logits, rtol=0, atol=1e-4)

    # Negative control: exchanging block 5's two equally wide BatchNorms loads (same shapes) but is caught.
    swapped = dict(state)
    for leaf in ("weight", "bias", "running_mean", "running_var"):
        a, b = f"net._blocks.5._bn0.{leaf}", f"net._blocks.5._bn1.{leaf}"
        swapped[a], swapped[b] = state[b], state[a]
    net.load_state_dict(convert_lukemelas_state_dict(swapped, prefix="net."), strict=True)
    with torch.no_grad():
        assert (net(x) - ref_logits).abs().max() > 1e-1
