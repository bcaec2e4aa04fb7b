"""Recognizer zoo: one contract test over every registered recognizer, plus checkpoint-format tests.

Published formats are exercised with tiny random checkpoints: our random model's state dict renamed through
the inverse key mapping (plus the published containers/prefixes), loaded back into a fresh model. The
mappings' *meaning* is checked against independent references: facenet-pytorch's own InceptionResnetV1 where
installed, and functional forward passes written here from the published layouts (key names → ops), so a
mapping that swaps two same-shaped tensors fails.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers import (
    RECOGNIZERS,
    ChecksumMismatchError,
    StagedRecognizer,
    build_recognizer,
    load_recognizer_checkpoint,
    to_published_state_dict,
)
from src.networks.recognizers.cbam_resnet import CBAMIRNet
from src.networks.recognizers.irse import ADAFACE_DEPTHS, TREB1EN_DEPTHS, psp_identity_crop, stage_end_indices

FACENET_STD = 128.0 / 255.0
# name → (input size (H, W), channel order, mean, std, embedding dim); sources in each module's docstring:
# insightface arcface_torch inference.py; pSp/AMT-GAN consumers of TreB1eN; AdaFace inference.py to_input;
# facenet-pytorch fixed_image_standardization; clcarwin sphereface lfw_eval.py; PRO-Face face_recognizer.py
# (wujiyang-layout CASIA nets); InfoSwap inference_demo.py.
EXPECTED: dict[str, tuple[tuple[int, int], str, float, float, int]] = {
    "iresnet18": ((112, 112), "RGB", 0.5, 0.5, 512),
    "iresnet34": ((112, 112), "RGB", 0.5, 0.5, 512),
    "iresnet50": ((112, 112), "RGB", 0.5, 0.5, 512),
    "iresnet100": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir50": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir_se50": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir101": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir152": ((112, 112), "RGB", 0.5, 0.5, 512),
    "adaface_ir18": ((112, 112), "BGR", 0.5, 0.5, 512),
    "adaface_ir50": ((112, 112), "BGR", 0.5, 0.5, 512),
    "adaface_ir101": ((112, 112), "BGR", 0.5, 0.5, 512),
    "mobilefacenet": ((112, 112), "RGB", 0.5, 0.5, 512),
    "mobilefacenet_casia": ((112, 112), "RGB", 0.5, 0.5, 128),
    "ir50_casia": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir_se50_casia": ((112, 112), "RGB", 0.5, 0.5, 512),
    "ir_se50_infoswap": ((128, 128), "RGB", 0.5, 0.5, 512),
    "facenet_vggface2": ((160, 160), "RGB", 0.5, FACENET_STD, 512),
    "sphereface20": ((112, 96), "BGR", 0.5, FACENET_STD, 512),
}
# IR-type nets also run at 32 px where only the mapping/plumbing matters (only the FC width changes): fast.
SMALL = {"input_size": 32}
# Parameter counts in millions: the PRO-Face recognizers as listed in docs/papers/proface.md ("Frozen
# recognizers E"); ir_se50 and adaface_ir101 as published for the recognizers of PRO-Face C and iFADIT.
PARAMS_M = {
    "iresnet100": 65.16,
    "ir_se50": 43.80,
    "adaface_ir101": 65.15,
    "facenet_vggface2": 23.48,
    "mobilefacenet_casia": 1.00,
    "ir50_casia": 43.59,
    "ir_se50_casia": 43.81,
}


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Every float tensor (weights, BN statistics, PReLU slopes) from a seeded generator, at sane scales."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if tensor.ndim > 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / tensor[0].numel() ** 0.5)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("weight"):
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=generator))
            else:
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return model


def _images(model: nn.Module, batch: int = 1, seed: int = 0) -> Tensor:
    height, width = model.input_size
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_zoo_recognizers_are_registered() -> None:
    assert set(EXPECTED) <= set(RECOGNIZERS), sorted(set(EXPECTED) - set(RECOGNIZERS))


@pytest.mark.parametrize("name", sorted(RECOGNIZERS))
def test_recognizer_contract(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared conventions, frozen mode, stages, embed() plumbing and size errors — one forward pass."""
    try:
        model = build_recognizer(name)
    except FileNotFoundError as exc:  # a recognizer built from a weights file that is not installed here
        pytest.skip(str(exc))
    size, order, dim = tuple(model.input_size), model.channel_order, model.embedding_dim
    assert order in ("RGB", "BGR") and dim > 0 and len(model.mean) == len(model.std) == 3
    if name in EXPECTED:  # the zoo's own networks: conventions checked against their published sources
        assert (size, order, dim) == (EXPECTED[name][0], EXPECTED[name][1], EXPECTED[name][4])
        assert model.mean == pytest.approx((EXPECTED[name][2],) * 3)
        assert model.std == pytest.approx((EXPECTED[name][3],) * 3)
    if isinstance(model, StagedRecognizer):
        info = model.describe()
        assert info["conventions_source"] and info["checkpoint_formats"][-1] == "native"
    if name in PARAMS_M:
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(PARAMS_M[name], abs=0.01)

    # frozen: eval everywhere even after .train(), and no parameter can receive a gradient
    model.freeze().train()
    assert not any(module.training for module in model.modules())
    assert not any(p.requires_grad for p in model.parameters())

    # stages: declared names, in order, strictly shrinking spatial size; raw embeddings of embedding_dim
    # (zoo networks must expose stages; a recognizer added elsewhere may declare none)
    images = _images(model)
    with torch.no_grad():
        if isinstance(model, StagedRecognizer) or model.stage_names:
            raw, stages = model.forward_stages(model.preprocess(images))
            assert list(stages) == list(model.stage_names) and len(stages) >= 2
            sizes = [tuple(feature.shape[-2:]) for feature in stages.values()]
            for (h0, w0), (h1, w1) in itertools.pairwise(sizes):
                assert h1 <= h0 and w1 <= w0 and h1 * w1 < h0 * w0, sizes
        else:
            raw = model.forward_features(model.preprocess(images))
    assert raw.shape == (1, dim) and torch.isfinite(raw).all()

    # embed(): [-1, 1] input reaches the network exactly as the [0, 1] path; output = L2-normalised raw
    seen: list[Tensor] = []

    def spy(x: Tensor) -> Tensor:
        seen.append(x)
        return raw

    with monkeypatch.context() as patch:
        patch.setattr(model, "forward_features", spy)
        signed = model.embed(images * 2 - 1, input_range="[-1,1]")
    torch.testing.assert_close(seen[0], model.preprocess(images))
    torch.testing.assert_close(signed, F.normalize(raw, dim=1))
    assert signed.shape == (1, dim) and torch.allclose(signed.norm(dim=1), torch.ones(1), atol=1e-5)

    # declared colour order and normalisation are what preprocess applies
    red = torch.zeros(1, 3, *size)
    red[:, 0] = 1.0
    first = 0 if order == "RGB" else 2
    expected = (1.0 - model.mean[first]) / model.std[first]
    assert model.preprocess(red)[0, first, 0, 0].item() == pytest.approx(expected, rel=1e-5)

    # wrong input size → clear error (or an explicit resize)
    wrong = torch.rand(1, 3, size[0] + 8, size[1])
    with pytest.raises(ValueError, match=rf"expects {size[0]}x{size[1]}"):
        model.embed(wrong)
    assert model.preprocess(wrong, resize=True).shape[-2:] == size


def test_gradients_reach_input_through_frozen_recognizer() -> None:
    """The one gradient check (the contract test runs under no_grad to stay fast): a BatchNorm network."""
    model = _randomize(build_recognizer("adaface_ir18", **SMALL), seed=2)
    images = _images(model, batch=2).requires_grad_()
    model.train()(images).sum().backward()  # trainable: parameters get gradients
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    images.grad = None
    model.freeze().train()
    embedding = model.embed(images)
    probe = torch.randn(model.embedding_dim, generator=torch.Generator().manual_seed(1))
    (embedding @ probe).sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------------------ independent references
def _bn(x: Tensor, sd: dict[str, Tensor], prefix: str, eps: float = 1e-5) -> Tensor:
    return F.batch_norm(
        x,
        sd[prefix + "running_mean"],
        sd[prefix + "running_var"],
        sd.get(prefix + "weight"),
        sd.get(prefix + "bias"),
        False,
        0.0,
        eps,
    )


def _prelu(x: Tensor, sd: dict[str, Tensor], prefix: str) -> Tensor:
    return F.prelu(x, sd[prefix + "weight"])


def reference_insightface(sd: dict[str, Tensor], layers: tuple[int, ...], x: Tensor) -> Tensor:
    """arcface_torch iresnet.py forward, from its state-dict names."""
    x = _prelu(_bn(F.conv2d(x, sd["conv1.weight"], padding=1), sd, "bn1."), sd, "prelu.")
    for stage, units in enumerate(layers, start=1):
        for unit in range(units):
            p, stride = f"layer{stage}.{unit}.", 2 if unit == 0 else 1
            out = F.conv2d(_bn(x, sd, p + "bn1."), sd[p + "conv1.weight"], padding=1)
            out = _prelu(_bn(out, sd, p + "bn2."), sd, p + "prelu.")
            out = _bn(F.conv2d(out, sd[p + "conv2.weight"], stride=stride, padding=1), sd, p + "bn3.")
            if p + "downsample.0.weight" in sd:
                x = _bn(F.conv2d(x, sd[p + "downsample.0.weight"], stride=stride), sd, p + "downsample.1.")
            x = out + x
    x = _bn(x, sd, "bn2.").flatten(1)
    return _bn(F.linear(x, sd["fc.weight"], sd["fc.bias"]), sd, "features.")


def reference_irse(
    sd: dict[str, Tensor],
    units: tuple[int, ...],
    x: Tensor,
    adaface: bool,
    se: bool,
    head: str = "output_layer.",
) -> Tensor:
    """TreB1eN model.py Backbone / AdaFace net.py Backbone forward, from their state-dict names.

    ``head="output_layer128."``: InfoSwap encoder128.py Backbone128 (the same body, another head name).
    """
    x = _bn(F.conv2d(x, sd["input_layer.0.weight"], padding=1), sd, "input_layer.1.")
    x = _prelu(x, sd, "input_layer.2.")
    index = 0
    for count in units:
        for unit in range(count):
            p, r, stride = f"body.{index}.", f"body.{index}.res_layer.", 2 if unit == 0 else 1
            if p + "shortcut_layer.0.weight" in sd:
                shortcut = F.conv2d(x, sd[p + "shortcut_layer.0.weight"], stride=stride)
                shortcut = _bn(shortcut, sd, p + "shortcut_layer.1.")
            else:
                shortcut = x[:, :, ::stride, ::stride]  # MaxPool2d(1, stride)
            out = F.conv2d(_bn(x, sd, r + "0."), sd[r + "1.weight"], padding=1)
            if adaface:
                out, conv2, bn_out, se_prefix = (
                    _prelu(_bn(out, sd, r + "2."), sd, r + "3."),
                    "4",
                    "5.",
                    "se_block.",
                )
            else:
                out, conv2, bn_out, se_prefix = _prelu(out, sd, r + "2."), "3", "4.", "5."
            out = _bn(F.conv2d(out, sd[r + conv2 + ".weight"], stride=stride, padding=1), sd, r + bn_out)
            if se:
                squeezed = F.conv2d(out.mean((2, 3), keepdim=True), sd[r + se_prefix + "fc1.weight"])
                gate = F.conv2d(F.relu(squeezed), sd[r + se_prefix + "fc2.weight"])
                out = out * torch.sigmoid(gate)
            x = out + shortcut
            index += 1
    x = _bn(x, sd, head + "0.").flatten(1)
    return _bn(F.linear(x, sd[head + "3.weight"], sd[head + "3.bias"]), sd, head + "4.")


def reference_cbam(sd: dict[str, Tensor], units: tuple[int, ...], x: Tensor, se: bool) -> Tensor:
    """wujiyang backbone/cbam.py CBAMResNet forward (mode ir / ir_se), from its state-dict names."""
    x = _prelu(
        _bn(F.conv2d(x, sd["input_layer.0.weight"], padding=1), sd, "input_layer.1."), sd, "input_layer.2."
    )
    for layer, count in enumerate(units, start=1):
        for unit in range(count):
            p, stride = f"layer{layer}.{unit}.", 2 if unit == 0 else 1
            r = p + "res_layer."
            out = F.conv2d(_bn(x, sd, r + "0."), sd[r + "1.weight"], padding=1)
            out = _prelu(_bn(out, sd, r + "2."), sd, r + "3.")
            out = _bn(F.conv2d(out, sd[r + "4.weight"], stride=stride, padding=1), sd, r + "5.")
            if se:
                squeezed = F.conv2d(out.mean((2, 3), keepdim=True), sd[r + "6.fc1.weight"])
                out = out * torch.sigmoid(F.conv2d(F.relu(squeezed), sd[r + "6.fc2.weight"]))
            if p + "shortcut_layer.0.weight" in sd:  # dim_match=False: the first unit of every layer
                shortcut = F.conv2d(x, sd[p + "shortcut_layer.0.weight"], stride=stride)
                shortcut = _bn(shortcut, sd, p + "shortcut_layer.1.")
            else:
                assert stride == 1
                shortcut = x
            x = shortcut + out
    x = _bn(x, sd, "output_layer.0.").flatten(1)
    return _bn(F.linear(x, sd["output_layer.3.weight"], sd["output_layer.3.bias"]), sd, "output_layer.4.")


# wujiyang / PRO-Face MobileFaceNet: bottleneck settings (t, c, n, s) and top-level module names per format.
MOBILEFACENET_SETTING = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))
MOBILEFACENET_NAMES = {
    "wujiyang": ("conv1.", "dw_conv1.", "blocks.", "conv2.", "linear7.", "linear1."),
    "proface": ("conv3.", "dw_conv3.", "bottlenecks.", "conv1.", "linear_GDConv7.", "linear_conv1."),
}


def reference_mobilefacenet_wujiyang(sd: dict[str, Tensor], x: Tensor, fmt: str) -> Tensor:
    """wujiyang mobilefacenet.py MobileFaceNet / PRO-Face face/MobileFaceNet.py MobileFacenet forward."""
    stem, dw, blocks, expand, gdc, linear = MOBILEFACENET_NAMES[fmt]
    x = _conv_block(_conv_block(x, sd, stem, 2, 1), sd, dw, 1, 1, 64)
    index, channels = 0, 64
    for t, c, n, s in MOBILEFACENET_SETTING:
        for i in range(n):
            stride, hidden, p = (s if i == 0 else 1), channels * t, f"{blocks}{index}.conv."
            out = _prelu(_bn(F.conv2d(x, sd[p + "0.weight"]), sd, p + "1."), sd, p + "2.")
            out = F.conv2d(out, sd[p + "3.weight"], stride=stride, padding=1, groups=hidden)
            out = _prelu(_bn(out, sd, p + "4."), sd, p + "5.")
            out = _bn(F.conv2d(out, sd[p + "6.weight"]), sd, p + "7.")
            x = x + out if stride == 1 and channels == c else out
            index, channels = index + 1, c
    x = _conv_block(_conv_block(x, sd, expand), sd, gdc, groups=512, act=False)
    return _conv_block(x, sd, linear, act=False).flatten(1)


def _conv_block(
    x: Tensor, sd: dict[str, Tensor], p: str, stride: int = 1, pad: int = 0, groups: int = 1, act: bool = True
) -> Tensor:
    x = _bn(F.conv2d(x, sd[p + "conv.weight"], stride=stride, padding=pad, groups=groups), sd, p + "bn.")
    return _prelu(x, sd, p + "prelu.") if act else x


def _depth_wise(x: Tensor, sd: dict[str, Tensor], p: str, stride: int, residual: bool) -> Tensor:
    hidden = sd[p + "conv.conv.weight"].shape[0]
    out = _conv_block(x, sd, p + "conv.")
    out = _conv_block(out, sd, p + "conv_dw.", stride, 1, hidden)
    out = _conv_block(out, sd, p + "project.", act=False)
    return x + out if residual else out


def reference_mobilefacenet(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """TreB1eN model.py MobileFaceNet forward, from its state-dict names."""
    x = _conv_block(_conv_block(x, sd, "conv1.", 2, 1), sd, "conv2_dw.", 1, 1, 64)
    for down, group, blocks in (
        ("conv_23.", "conv_3.", 4),
        ("conv_34.", "conv_4.", 6),
        ("conv_45.", "conv_5.", 2),
    ):
        x = _depth_wise(x, sd, down, 2, False)
        for i in range(blocks):
            x = _depth_wise(x, sd, f"{group}model.{i}.", 1, True)
    x = _conv_block(_conv_block(x, sd, "conv_6_sep."), sd, "conv_6_dw.", groups=512, act=False)
    return _bn(F.linear(x.flatten(1), sd["linear.weight"]), sd, "bn.")


def reference_sphereface(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """clcarwin net_sphere.py sphere20a forward (feature mode), from its state-dict names."""

    def conv(x: Tensor, name: str, stride: int = 1) -> Tensor:
        out = F.conv2d(x, sd[f"conv{name}.weight"], sd[f"conv{name}.bias"], stride, 1)
        return F.prelu(out, sd[f"relu{name}.weight"])

    for stage, units in enumerate((1, 2, 4, 1), start=1):
        x = conv(x, f"{stage}_1", 2)
        for unit in range(units):
            x = x + conv(conv(x, f"{stage}_{2 + 2 * unit}"), f"{stage}_{3 + 2 * unit}")
    return F.linear(x.flatten(1), sd["fc5.weight"], sd["fc5.bias"])


def reference_facenet(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """facenet-pytorch's own InceptionResnetV1 with the exported weights (raw, before its L2 norm)."""
    module = pytest.importorskip("facenet_pytorch.models.inception_resnet_v1")
    net = module.InceptionResnetV1().eval()
    net.load_state_dict(sd, strict=True)
    net.classify, net.logits = True, nn.Identity()  # raw last_bn output instead of its L2-normalised one
    return net(x)


# (name, build kwargs, format, extra published keys the loader must drop, wrapper, published keys that must
# exist, reference).
FORMAT_CASES = [
    (
        "iresnet18",
        SMALL,
        "insightface",
        {},
        "plain",
        ["layer1.0.downsample.0.weight", "layer4.1.bn3.running_var", "features.running_mean", "prelu.weight"],
        lambda sd, x: reference_insightface(sd, (2, 2, 2, 2), x),
    ),
    (
        "ir_se50",
        SMALL,
        "treb1en",
        {},
        "module",
        [
            "input_layer.2.weight",
            "body.0.res_layer.5.fc1.weight",
            "body.23.res_layer.4.running_var",
            "body.3.shortcut_layer.0.weight",
            "output_layer.4.weight",
        ],
        lambda sd, x: reference_irse(sd, TREB1EN_DEPTHS[50], x, adaface=False, se=True),
    ),
    (
        "adaface_ir18",
        SMALL,
        "adaface",
        {"head.kernel": torch.zeros(512, 9)},
        "lightning",
        ["body.0.res_layer.2.running_mean", "body.7.res_layer.5.weight", "output_layer.4.running_var"],
        lambda sd, x: reference_irse(sd, ADAFACE_DEPTHS[18], x, adaface=True, se=False),
    ),
    (
        "mobilefacenet",
        {},
        "treb1en",
        {},
        "state_dict",
        [
            "conv_3.model.3.conv_dw.prelu.weight",
            "conv_5.model.1.project.bn.bias",
            "conv_6_dw.conv.weight",
            "linear.weight",
            "bn.running_var",
        ],
        reference_mobilefacenet,
    ),
    (
        "ir50_casia",
        SMALL,
        "wujiyang",
        {},
        "plain",
        [
            "input_layer.2.weight",
            "layer1.0.shortcut_layer.0.weight",  # projected even though layer1 keeps 64 channels
            "layer1.1.res_layer.2.running_mean",  # the middle BN
            "layer3.13.res_layer.4.weight",
            "output_layer.4.running_var",
        ],
        lambda sd, x: reference_cbam(sd, TREB1EN_DEPTHS[50], x, se=False),
    ),
    (
        "ir_se50_casia",
        SMALL,
        "wujiyang",
        {},
        "wujiyang",
        [
            "layer2.3.res_layer.6.fc1.weight",
            "layer4.2.res_layer.6.fc2.weight",
            "layer4.0.shortcut_layer.1.bias",
        ],
        lambda sd, x: reference_cbam(sd, TREB1EN_DEPTHS[50], x, se=True),
    ),
    (
        "mobilefacenet_casia",
        {},
        "proface",
        {},
        "plain",
        [
            "conv3.prelu.weight",
            "dw_conv3.conv.weight",
            "bottlenecks.14.conv.7.running_var",
            "conv1.prelu.weight",
            "linear_GDConv7.bn.bias",
            "linear_conv1.conv.weight",
        ],
        lambda sd, x: reference_mobilefacenet_wujiyang(sd, x, "proface"),
    ),
    (
        "mobilefacenet_casia",
        {},
        "wujiyang",
        {},
        "wujiyang",
        [
            "conv1.conv.weight",
            "blocks.0.conv.5.weight",
            "conv2.bn.weight",
            "linear7.conv.weight",
            "linear1.bn.bias",
        ],
        lambda sd, x: reference_mobilefacenet_wujiyang(sd, x, "wujiyang"),
    ),
    (
        "ir_se50_infoswap",
        {"input_size": 32},
        "infoswap",
        {},
        "plain",
        ["body.23.res_layer.5.fc2.weight", "output_layer128.3.weight", "output_layer128.4.running_mean"],
        lambda sd, x: reference_irse(sd, TREB1EN_DEPTHS[50], x, False, True, head="output_layer128."),
    ),
    (
        "facenet_vggface2",
        {},
        "facenet_pytorch",
        {"logits.weight": torch.zeros(7, 512), "logits.bias": torch.zeros(7)},
        "plain",
        [
            "repeat_1.4.conv2d.bias",
            "block8.conv2d.weight",
            "mixed_7a.branch2.2.bn.running_var",
            "last_bn.bias",
        ],
        reference_facenet,
    ),
    (
        "sphereface20",
        {},
        "sphereface_pytorch",
        {"fc6.weight": torch.zeros(512, 11)},
        "plain",
        ["conv1_1.bias", "relu3_9.weight", "conv4_3.weight", "fc5.weight"],
        reference_sphereface,
    ),
]


# facenet's adaptive pooling accepts smaller inputs than the declared 160 px (faster reference check).
REFERENCE_INPUT = {"facenet_vggface2": (80, 80)}


def _wrap(state: dict[str, Tensor], wrapper: str) -> object:
    if wrapper == "module":  # DataParallel
        return {f"module.{k}": v for k, v in state.items()}
    if wrapper == "state_dict":
        return {"state_dict": state, "epoch": 3}
    if wrapper == "wujiyang":  # wujiyang/Face_Pytorch train.py: Iter_%06d_net.ckpt
        return {"iters": 64000, "net_state_dict": state}
    if wrapper == "lightning":  # AdaFace .ckpt: backbone under model.*, the margin head under head.*
        return {
            "epoch": 1,
            "hyper_parameters": argparse.Namespace(arch="ir_18", head="adaface"),
            "state_dict": {(k if k.startswith("head.") else f"model.{k}"): v for k, v in state.items()},
        }
    return state


def _save(obj: object, path: Path) -> str:
    torch.save(obj, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", FORMAT_CASES, ids=[f"{c[0]}-{c[2]}" for c in FORMAT_CASES])
def test_published_format_round_trip_and_reference(case: tuple, tmp_path: Path) -> None:
    name, kwargs, fmt, extra, wrapper, known_keys, reference = case
    source = _randomize(build_recognizer(name, **kwargs), seed=3).eval()
    published = to_published_state_dict(source, fmt)
    assert set(known_keys) <= set(published), sorted(set(known_keys) - set(published))

    path = tmp_path / ("weights.ckpt" if wrapper == "lightning" else "weights.pth")
    digest = _save(_wrap({**published, **extra}, wrapper), path)
    target = build_recognizer(name, **kwargs).eval()
    report = load_recognizer_checkpoint(target, path, format=fmt, sha256=digest.upper())
    assert report.format == fmt and report.sha256 == digest
    assert set(report.dropped_keys) == set(extra)
    if wrapper == "wujiyang":
        assert report.containers == ("net_state_dict",)
    assert _same_state(source, target)

    # the mapping's meaning: our network computes what the published layout computes with those weights
    height, width = REFERENCE_INPUT.get(name, target.input_size)
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(target.forward_features(x), reference(published, x), rtol=1e-4, atol=1e-4)


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    state = b.state_dict()
    return all(torch.equal(state[key], value) for key, value in a.state_dict().items())


def test_native_format_and_default_format(tmp_path: Path) -> None:
    source = _randomize(build_recognizer("mobilefacenet"), seed=4)
    native, published = tmp_path / "native.pth", tmp_path / "published.pth"
    _save({"model": source.state_dict()}, native)
    _save(to_published_state_dict(source, "treb1en"), published)
    for path, fmt in ((native, "native"), (published, None)):  # None: the model's first declared format
        target = build_recognizer("mobilefacenet")
        report = load_recognizer_checkpoint(target, path, format=fmt)
        assert report.format == (fmt or "treb1en") and _same_state(source, target)


def test_checkpoint_without_num_batches_tracked_loads(tmp_path: Path) -> None:
    # Files written before PyTorch 0.4.1 (facenet-pytorch's converted weights) have no num_batches_tracked.
    source = _randomize(build_recognizer("mobilefacenet"), seed=5)
    state = {k: v for k, v in to_published_state_dict(source, "treb1en").items() if "num_batches" not in k}
    path = tmp_path / "old.pth"
    _save(state, path)
    target = build_recognizer("mobilefacenet")
    report = load_recognizer_checkpoint(target, path, format="treb1en")
    assert report.filled_keys and all(key.endswith("num_batches_tracked") for key in report.filled_keys)
    assert _same_state(source, target)


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = tmp_path / "iresnet18.pth"
    _save(to_published_state_dict(build_recognizer("iresnet18", **SMALL), "insightface"), path)
    with pytest.raises(ValueError, match=r"format 'adaface'.*missing keys.*unexpected keys") as info:
        load_recognizer_checkpoint(build_recognizer("adaface_ir18", **SMALL), path, format="adaface")
    assert "body.0.res_layer.0.weight" in str(info.value) and "layer1.0.bn1.weight" in str(info.value)
    with pytest.raises(ValueError, match=r"missing keys \(insightface names\).*layer1\.2\.") as info:
        load_recognizer_checkpoint(build_recognizer("iresnet34", **SMALL), path, format="insightface")
    assert "unexpected" not in str(info.value)


def test_wrong_width_reports_shape_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "mobilefacenet128.pth"
    _save(to_published_state_dict(build_recognizer("mobilefacenet", embedding_dim=128), "treb1en"), path)
    with pytest.raises(ValueError, match=r"shape mismatches.*linear\.weight \(128, 512\) vs \(512, 512\)"):
        load_recognizer_checkpoint(build_recognizer("mobilefacenet"), path)


def test_checksum_mismatch_refuses_to_load(tmp_path: Path) -> None:
    model = build_recognizer("sphereface20")
    path = tmp_path / "sphere.pth"
    digest = _save(to_published_state_dict(model, "sphereface_pytorch"), path)
    wrong = "0" * 64
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ChecksumMismatchError, match=rf"refusing.*sha256 is {digest}, expected {wrong}"):
        load_recognizer_checkpoint(model, path, sha256=wrong)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unsafe_or_missing_files_and_unknown_formats(tmp_path: Path) -> None:
    model = build_recognizer("sphereface20")
    pickled = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled)
    with pytest.raises(ValueError, match=r"weights_only=True.*state_dict"):
        load_recognizer_checkpoint(model, pickled)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_recognizer_checkpoint(model, tmp_path / "absent.pth")
    with pytest.raises(ValueError, match=r"unknown checkpoint format 'insightface'.*sphereface_pytorch"):
        load_recognizer_checkpoint(model, pickled, format="insightface")
    nested = tmp_path / "nested.pth"
    torch.save({"epoch": 1, "optimizer": {}}, nested)
    with pytest.raises(ValueError, match=r"no state dict found.*epoch"):
        load_recognizer_checkpoint(model, nested)


def test_stage_injection_hooks() -> None:
    model = _randomize(build_recognizer("adaface_ir18", **SMALL), seed=6).freeze()
    x = model.preprocess(_images(model))
    with torch.no_grad():
        plain, stages = model.forward_stages(x)
        with model.inject({"stage2": lambda h: h + torch.sigmoid(h)}):
            injected, injected_stages = model.forward_stages(x)
        after, _ = model.forward_stages(x)
    torch.testing.assert_close(injected_stages["stage1"], stages["stage1"])
    torch.testing.assert_close(injected_stages["stage2"], stages["stage2"] + torch.sigmoid(stages["stage2"]))
    assert not torch.allclose(injected, plain)
    torch.testing.assert_close(after, plain)  # hooks removed on exit
    with pytest.raises(ValueError, match="unknown stages"), model.inject({"stage9": lambda h: h}):
        pass


def test_published_stage_ends_match_pro_face_c() -> None:
    # PRO-Face C injects after body blocks 2, 15, 45, 48 (IR-101) and would use 2, 6, 20, 23 for IR-50.
    assert stage_end_indices(ADAFACE_DEPTHS[100]) == (2, 15, 45, 48)
    assert stage_end_indices(ADAFACE_DEPTHS[50]) == (2, 6, 20, 23)
    assert build_recognizer("adaface_ir18").published_stage_ends() == (1, 3, 5, 7)


def test_psp_identity_crop() -> None:
    rows = torch.arange(256, dtype=torch.float32).view(1, 1, 256, 1).expand(2, 3, 256, 256)
    out = psp_identity_crop(rows)
    assert out.shape == (2, 3, 112, 112)
    for i in (0, 1, 55, 111):  # adaptive pooling bins over the 188 cropped rows (35..222)
        start, end = (i * 188) // 112, -(-((i + 1) * 188) // 112)
        assert out[0, 0, i, 0].item() == pytest.approx(35 + (start + end - 1) / 2)
    with pytest.raises(ValueError, match="256, 256"):
        psp_identity_crop(torch.zeros(1, 3, 128, 128))


# ------------------------------------------------------------------- wujiyang / PRO-Face / InfoSwap layouts
def test_cbam_ir_is_not_treb1en_ir(tmp_path: Path) -> None:
    """CBAMResNet(ir) has a middle BN and a projected layer1 shortcut: neither IR-50 file fits the other."""
    cbam, treb1en = tmp_path / "cbam_ir50.pth", tmp_path / "treb1en_ir50.pth"
    _save(to_published_state_dict(build_recognizer("ir50_casia", **SMALL), "wujiyang"), cbam)
    _save(to_published_state_dict(build_recognizer("ir50", **SMALL), "treb1en"), treb1en)
    with pytest.raises(ValueError, match=r"format 'treb1en'.*missing keys.*unexpected keys") as info:
        load_recognizer_checkpoint(build_recognizer("ir50", **SMALL), cbam, format="treb1en")
    assert "body.0.res_layer.0.weight" in str(info.value) and "layer1.0.res_layer.0.weight" in str(info.value)
    with pytest.raises(ValueError, match=r"format 'wujiyang'.*missing keys.*unexpected keys") as info:
        load_recognizer_checkpoint(build_recognizer("ir50_casia", **SMALL), treb1en, format="wujiyang")
    assert "layer1.0.res_layer.2.weight" in str(info.value) and "body.0.res_layer.1.weight" in str(info.value)
    assert "Formats for CBAMIRNet: wujiyang, native" in str(info.value)
    # ir checkpoint into the ir_se net: exactly the SE weights are missing, nothing is unexpected
    with pytest.raises(
        ValueError, match=r"48 missing keys \(wujiyang names\): layer1\.0\.res_layer\.6\.fc1"
    ) as info:
        load_recognizer_checkpoint(build_recognizer("ir_se50_casia", **SMALL), cbam)
    assert "unexpected" not in str(info.value)


def test_cbam_layout_details() -> None:
    model = build_recognizer("ir50_casia", **SMALL)
    assert isinstance(model, CBAMIRNet) and model.published_stage_ends() == (2, 3, 13, 2)
    # the first unit of every stage projects its shortcut (layer1 too, although 64 → 64 channels)
    assert all(isinstance(stage[0].shortcut, nn.Sequential) for stage in model.stages)
    assert isinstance(model.stages[0][1].shortcut, nn.MaxPool2d)
    # depth 100 (CBAMResNet(100, ...)): the key mapping is a bijection over the published layer{k}.{i} names
    deep = CBAMIRNet(depth=100, se=True, input_size=16)
    theirs = {deep._ours_to_published(key) for key in deep.state_dict()}
    assert {"layer2.12.res_layer.6.fc2.weight", "layer3.29.res_layer.5.running_var"} <= theirs
    assert not any(key.startswith(("stages.", "head.", "stem.")) for key in theirs)
    assert all(deep._published_to_ours(deep._ours_to_published(key)) == key for key in deep.state_dict())


def test_mobilefacenet_formats_do_not_mix(tmp_path: Path) -> None:
    source = _randomize(build_recognizer("mobilefacenet_casia"), seed=7)
    wujiyang, treb1en = tmp_path / "wujiyang.ckpt", tmp_path / "treb1en.pth"
    _save({"iters": 3000, "net_state_dict": to_published_state_dict(source, "wujiyang")}, wujiyang)
    _save(to_published_state_dict(build_recognizer("mobilefacenet", embedding_dim=128), "treb1en"), treb1en)
    target = build_recognizer("mobilefacenet_casia")
    # wujiyang's names read as PRO-Face's: conv1 is the stem there and the 128→512 expansion here
    with pytest.raises(ValueError, match=r"format 'proface'.*missing keys.*conv3\.conv\.weight") as info:
        load_recognizer_checkpoint(target, wujiyang, format="proface")
    message = str(info.value)
    assert "unexpected keys" in message and "dw_conv1.conv.weight" in message
    assert "conv1.conv.weight (64, 3, 3, 3) vs (512, 128, 1, 1)" in message
    # TreB1eN's MobileFaceNet has the same body but a Linear + BN1d head and other names
    with pytest.raises(ValueError, match=r"missing keys.*unexpected keys.*conv_23\.conv\.conv\.weight"):
        load_recognizer_checkpoint(target, treb1en)
    report = load_recognizer_checkpoint(target, wujiyang, format="wujiyang")
    assert report.containers == ("net_state_dict",) and _same_state(source, target)


def test_infoswap_head_is_its_own_format(tmp_path: Path) -> None:
    path = tmp_path / "model_128_ir_se50.pth"
    source = _randomize(build_recognizer("ir_se50_infoswap", input_size=32), seed=8)
    _save(to_published_state_dict(source, "infoswap"), path)
    plain = build_recognizer("ir_se50", input_size=32)  # the same architecture as TreB1eN's IR-SE-50
    with pytest.raises(ValueError, match=r"format 'treb1en'.*missing keys.*output_layer\.0\.weight") as info:
        load_recognizer_checkpoint(plain, path, format="treb1en")
    assert "unexpected keys" in str(info.value) and "output_layer128.0.weight" in str(info.value)
    # so it loads into the plain IRNet as 'infoswap' (a refused load leaves the model untouched)
    assert load_recognizer_checkpoint(plain, path, format="infoswap").format == "infoswap"
    assert _same_state(source, plain)


def test_ir_widths_shrink_every_stage_and_keep_the_published_layout_at_the_default() -> None:
    narrow = build_recognizer("adaface_ir18", input_size=32, widths=(8, 16, 32, 64)).eval()
    _, stages = narrow.forward_stages(torch.zeros(1, 3, 32, 32))
    assert [tuple(s.shape[1:]) for s in stages.values()] == [(8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2)]
    assert narrow.head.fc.in_features == 64 * 2 * 2 and narrow.stem.conv.out_channels == 8
    with torch.device("meta"):
        published = build_recognizer("adaface_ir101")
    assert sum(p.numel() for p in published.parameters()) == 65_150_912  # AdaFace IR-101
    with pytest.raises(ValueError, match="four positive channel counts"):
        build_recognizer("ir50", widths=(8, 16))
