"""FaceShield's networks: shapes, frozen encoder, IB semantics, the original key layout, manifest entries.

No weights are needed: networks run at small sizes (the 512-px decoder and generator on the ``meta``
device), and the original checkpoints are synthesised from key names and shapes written here as data, read
off the original code (docs/papers/faceshield.md, "Networks" and "Key mapping").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from src.networks.recognizers.checkpoints import convert_state_dict
from src.papers.faceshield import key_mapping as km
from src.papers.faceshield.networks import (
    AII512,
    FaceShieldEncoder,
    FaceShieldSE,
    IIDDiscriminator,
    MultiscaleDiscriminator,
    ReadoutStatistics,
    UnetDecoder512,
    attribute_features,
    encoder_input,
    readout_shapes,
)
from src.papers.faceshield.networks.generator import AIILayer
from src.papers.faceshield.networks.se import GaussianSmoothing
from src.weights import MissingWeightsError, load_manifest

# Parameter counts at the original sizes (128-px encoder, 512-px decoder/generator), counted on ``meta``.
PARAMS = {
    "encoder": 47_729_856,
    "se": 14_200_064,
    "decoder": 67_174_336,
    "generator": 121_459_157,
    "multiscale_discriminator": 8_299_587,
    "iid_discriminator": 21_858_090,
}
IB_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 128, 256, 256)
SMALL = 32  # encoder input side for CPU tests (maps f0..f10 at 32, 16, 8, 4 px)


@pytest.fixture(scope="module")
def xception_iid() -> IIDDiscriminator:
    torch.manual_seed(0)
    return IIDDiscriminator().eval()


@pytest.fixture(scope="module")
def small_encoder() -> FaceShieldEncoder:
    torch.manual_seed(0)
    return FaceShieldEncoder(input_size=SMALL)


def _count(build: type[nn.Module]) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


# ------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("encoder", FaceShieldEncoder),
        ("se", FaceShieldSE),
        ("decoder", UnetDecoder512),
        ("generator", AII512),
        ("multiscale_discriminator", MultiscaleDiscriminator),
        ("iid_discriminator", IIDDiscriminator),
    ],
)
def test_parameter_counts(name: str, build: type[nn.Module]) -> None:
    assert _count(build) == PARAMS[name]


def test_encoder_features_restrict_forward_and_frozen(small_encoder: FaceShieldEncoder) -> None:
    enc = small_encoder.train()  # a frozen encoder stays in eval mode
    assert not enc.training and not enc.net.training
    assert not any(p.requires_grad for p in enc.parameters())
    x = torch.randn(2, 3, SMALL, SMALL, requires_grad=True)
    identity, feats = enc(x)
    assert identity.shape == (2, 512) and torch.allclose(identity.norm(dim=1), torch.ones(2), atol=1e-5)
    assert len(feats) == 25 == enc.num_features
    assert [tuple(f.shape[1:]) for f in feats[:11]] == list(readout_shapes(SMALL))
    assert tuple(feats[-1].shape[1:]) == (512, SMALL // 16, SMALL // 16)
    for index in (0, 1, 7, 24):  # feeding f_i back in place of itself reproduces the identity
        torch.testing.assert_close(enc.restrict_forward(feats[index], index), identity)
    identity.sum().backward()  # the input still gets gradients (Y's identity loss needs them)
    assert x.grad is not None and all(p.grad is None for p in enc.parameters())
    with pytest.raises(ValueError, match=r"index must be in \[0, 24\]"):
        enc.restrict_forward(feats[0], 25)


def test_encoder_input_crops_37_475_and_resizes_to_128() -> None:
    images = torch.zeros(1, 3, 512, 512)
    images[:, :, 37:475, 37:475] = 1.0
    out = encoder_input(images)
    assert out.shape == (1, 3, 128, 128)  # an off-by-one crop would pull in the zero border at the edges
    torch.testing.assert_close(out, torch.ones_like(out), atol=1e-5, rtol=0)  # resizing rounds in float32


def _se_inputs(enc: FaceShieldEncoder, batch: int = 2) -> tuple[Tensor, list[Tensor]]:
    with torch.no_grad():
        return enc(torch.randn(batch, 3, SMALL, SMALL))


def test_se_masks_restricted_features_and_identity(small_encoder: FaceShieldEncoder) -> None:
    torch.manual_seed(1)
    se = FaceShieldSE(input_size=SMALL)
    assert len(se.layers) == 10 and [layer.conv3.out_channels for layer in se.layers] == list(IB_CHANNELS)
    inactive = se.readout.layers[3].active
    inactive[:, 0, :] = False  # one row of neurons of f3 never fires
    _, feats = _se_inputs(small_encoder)
    with torch.no_grad():
        out = se(feats, small_encoder.restrict_forward, torch.Generator().manual_seed(0))
    assert out.identity.shape == (2, 512)
    assert (out.identity.norm(dim=1) <= 1 + 1e-5).all()  # a mean of 10 unit vectors
    for lam, z, f in zip(out.lambdas, out.restricted, feats, strict=False):
        assert lam.shape == z.shape == f.shape
    lam = torch.cat([x.flatten() for x in out.lambdas])  # conv3 bias 5, weights × 1e-3: λ ≈ sigmoid(5)
    assert lam.min() > 0.99 and lam.max() < 0.995
    assert torch.count_nonzero(out.restricted[3][:, :, 0, :]) == 0
    assert torch.isfinite(out.info)
    # Z = λ·R + (1 − λ)·ε with ε ~ N(m, s²) drawn from the generator (m = 0, s = 1 here)
    layer, stats = se.layers[5], se.readout.layers[5]
    readout = se.readout.normalise(feats)
    got = layer(feats[5], readout, stats.mean, stats.std, stats.active, torch.Generator().manual_seed(7))
    eps = torch.randn(feats[5].shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got.z, got.lam * feats[5] + (1 - got.lam) * eps)


def test_attribute_features_use_the_source_mean_as_std() -> None:
    r = torch.rand(1, 4, 3, 3) + 0.5
    lam = torch.rand(1, 4, 3, 3)
    (got,) = attribute_features([r], [lam], [r], torch.Generator().manual_seed(3))
    n = torch.randn(r.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, r + lam * r * n)  # batch 1, source = target: R + λ·R⊙n


def test_gaussian_smoothing_of_size_one_is_the_identity() -> None:
    x = torch.randn(1, 5, 6, 6)
    torch.testing.assert_close(GaussianSmoothing(5, kernel_size=1)(x), x)
    blurred = GaussianSmoothing(5, kernel_size=3)(torch.ones(1, 5, 6, 6))
    torch.testing.assert_close(blurred, torch.ones(1, 5, 6, 6))
    assert not list(GaussianSmoothing(5, 3).parameters())  # a fixed kernel: never trained


def test_readout_statistics_from_the_original_files() -> None:
    stats = ReadoutStatistics(input_size=8)
    shapes = readout_shapes(8)
    raws = []
    for shape in shapes:
        m = torch.randn(shape)
        s = torch.rand(shape) * 100  # uncentred Σx²
        nonzero = torch.zeros(shape)
        nonzero.view(-1)[0] = 2.0  # 2 / 100 > 0.01: active; every other neuron never fired
        raws.append({"m": m, "s": s, "neuron_nonzero": nonzero, "n_samples": torch.tensor(100)})
    stats.load_raw(raws)
    first = stats.layers[0]
    torch.testing.assert_close(first.mean, raws[0]["m"])
    torch.testing.assert_close(first.std, torch.sqrt(raws[0]["s"] / 99))
    assert first.active.sum() == 1 and first.active.view(-1)[0]
    feats = [torch.full((1, *shape), 3.0) for shape in shapes]
    expected = (3.0 - first.mean) / first.std.clamp_min(0.01)
    torch.testing.assert_close(stats.normalise(feats)[0][0], expected)
    with pytest.raises(ValueError, match="readout layer 2: missing key.*neuron_nonzero"):
        stats.load_raw([*raws[:2], {"m": raws[2]["m"], "s": raws[2]["s"], "n_samples": 1}, *raws[3:]])
    with pytest.raises(ValueError, match=r"'s' has shape \(1, 1, 1\), expected \(64, 8, 8\)"):
        stats.load_raw([{**raws[0], "s": torch.ones(1, 1, 1)}, *raws[1:]])


def _decoder_inputs(first_use_img: bool) -> tuple[list[Tensor], list[Tensor]]:
    sides = (64, 64, 64, 32, 32, 32, 32, 16, 16)  # f1 … f9 of the 128-px encoder
    slot0 = torch.empty(1, 3, 512, 512) if first_use_img else torch.empty(1, 64, 128, 128)
    feats = [slot0, *(torch.empty(1, c, s, s) for c, s in zip(IB_CHANNELS[1:], sides, strict=True))]
    lambdas = [torch.empty(1, 64, 128, 128), *feats[1:]]
    return feats, lambdas


@pytest.mark.parametrize("first_use_img", [True, False])
def test_decoder_and_generator_shapes_at_512(first_use_img: bool) -> None:
    with torch.device("meta"):
        decoder, generator = UnetDecoder512(first_use_img=first_use_img), AII512()
        feats, lambdas = _decoder_inputs(first_use_img)
        attrs, lams = decoder(feats, lambdas)
        image = generator(torch.empty(1, 512), attrs, lams)
    assert [tuple(a.shape[1:]) for a in attrs] == [
        (1024, 4, 4),
        (2048, 8, 8),
        (1024, 16, 16),
        (512, 32, 32),
        (256, 64, 64),
        (128, 128, 128),
        (64, 256, 256),
        (64, 512, 512),
    ]
    assert [tuple(a.shape[1:]) for a in lams] == [
        (1024, 4, 4),
        (1024, 8, 8),
        (512, 16, 16),
        (256, 32, 32),
        (128, 64, 64),
        (64, 128, 128),
        (32, 256, 256),
        (32, 512, 512),
    ]
    assert image.shape == (1, 3, 512, 512)


def test_aii_layer_mask_selects_attribute_or_identity_branch() -> None:
    layer = AIILayer(4, 3, 5, 2)
    h, z_attr, z_id, lam = (
        torch.randn(2, 4, 6, 6),
        torch.randn(2, 3, 6, 6),
        torch.randn(2, 5),
        torch.rand(2, 2, 6, 6),
    )
    with torch.no_grad():
        layer.conv_2h.bias.fill_(-50.0)  # M ≈ 0: attribute branch only
        hn = layer.norm(h)
        torch.testing.assert_close(
            layer(h, z_attr, z_id, lam), layer.conv1(z_attr) * hn + layer.conv2(z_attr)
        )
        layer.conv_2h.bias.fill_(50.0)  # M ≈ 1: identity branch only
        ident = layer.fc1(z_id)[:, :, None, None] * hn + layer.fc2(z_id)[:, :, None, None]
        torch.testing.assert_close(layer(h, z_attr, z_id, lam), ident)


def test_multiscale_discriminator_scores() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator()
    scores = d(torch.randn(1, 3, 64, 64))
    assert [tuple(s.shape) for s in scores] == [(1, 1, 11, 11), (1, 1, 7, 7), (1, 1, 5, 5)]


def test_iid_embedding_is_non_negative_and_heads(xception_iid: IIDDiscriminator) -> None:
    with torch.no_grad():
        emb = xception_iid(torch.randn(2, 3, 64, 64))
    assert emb.shape == (2, 512) and (emb >= 0).all()
    assert xception_iid.logits(emb).shape == (2, 2)
    decision = IIDDiscriminator.match(emb, torch.stack([emb[0], -emb[1]]))
    assert decision.tolist() == [[0.0, 1.0], [1.0, 0.0]]


# ------------------------------------------------------------------------------ original key layout
def _original_se_keys() -> dict[str, tuple[int, ...]]:
    """modules/se.py SE(in_c=1536, out_c_list=IB_CHANNELS, kernel_size=1): 7 tensors per ``iba_{i}``."""
    keys = {}
    for i, c in enumerate(IB_CHANNELS):
        keys |= {
            f"iba_{i}.conv1.weight": (768, 1536, 1, 1),
            f"iba_{i}.conv1.bias": (768,),
            f"iba_{i}.conv2.weight": (2 * c, 768, 1, 1),
            f"iba_{i}.conv2.bias": (2 * c,),
            f"iba_{i}.conv3.weight": (c, 2 * c, 1, 1),
            f"iba_{i}.conv3.bias": (c,),
            f"iba_{i}.gaussin.conv.weight": (c, 1, 1, 1),
        }
    return keys


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    stats = {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}
    return stats | {f"{prefix}.num_batches_tracked": ()}


def _original_decoder_keys() -> dict[str, tuple[int, ...]]:
    """modules/decoder512.py UnetDecoder512: bias-free convs, conv7 = conv4x4, deconv{k} = ConvT + BN."""
    keys = {
        "conv_0.weight": (32, 3, 4, 4),
        "conv_1.1.weight": (32, 16, 3, 3),
        "conv_2.weight": (64, 64, 3, 3),
        "conv_3.weight": (128, 128, 3, 3),
        "conv_4.weight": (256, 256, 3, 3),
        "conv_5.weight": (512, 256, 4, 4),
        "conv_6.weight": (1024, 512, 4, 4),
        "conv7.0.weight": (1024, 1024, 4, 4),
        **_bn("conv7.1", 1024),
    }
    for k, (cin, cout) in enumerate(
        [(1024, 1024), (2048, 512), (1024, 256), (512, 128), (256, 64), (128, 32)], 1
    ):
        keys |= {f"deconv{k}.deconv.weight": (cin, cout, 4, 4), **_bn(f"deconv{k}.bn", cout)}
    return keys


def _original_generator_keys() -> dict[str, tuple[int, ...]]:
    """modules/aii_generator.py AII512: up1/up2, AADBlk1..8 (AAD1/AAD2[/AAD3] + convs), unused deconv."""
    blocks = [
        (1024, 1024, 1024, 1024),
        (1024, 1024, 2048, 1024),
        (1024, 1024, 1024, 512),
        (1024, 512, 512, 256),
        (512, 256, 256, 128),
        (256, 128, 128, 64),
        (128, 64, 64, 32),
        (64, 3, 64, 32),
    ]
    keys = {
        "up1.weight": (512, 1024, 2, 2),
        "up1.bias": (1024,),
        "up2.weight": (1024, 1024, 2, 2),
        "up2.bias": (1024,),
        "deconv.weight": (32, 3, 4, 4),
    }
    for k, (cin, cout, attr, lam) in enumerate(blocks, 1):
        aads = ("AAD1", "AAD2", "AAD3") if cin != cout else ("AAD1", "AAD2")
        for aad in aads:
            p = f"AADBlk{k}.{aad}"
            keys |= {
                f"{p}.conv1.weight": (cin, attr, 1, 1),
                f"{p}.conv1.bias": (cin,),
                f"{p}.conv2.weight": (cin, attr, 1, 1),
                f"{p}.conv2.bias": (cin,),
                f"{p}.fc1.weight": (cin, 512),
                f"{p}.fc1.bias": (cin,),
                f"{p}.fc2.weight": (cin, 512),
                f"{p}.fc2.bias": (cin,),
                f"{p}.conv_2h.weight": (1, cin + lam, 1, 1),
                f"{p}.conv_2h.bias": (1,),
            }
        keys |= {f"AADBlk{k}.conv1.weight": (cin, cin, 3, 3), f"AADBlk{k}.conv2.weight": (cout, cin, 3, 3)}
        if cin != cout:
            keys[f"AADBlk{k}.conv3.weight"] = (cout, cin, 3, 3)
    return keys


def _original_discriminator_keys() -> dict[str, tuple[int, ...]]:
    """modules/discriminator.py MultiscaleDiscriminator(3, 64, n_layers=3, num_D=3): flat ``layer{i}``."""
    keys = {}
    for i in range(3):
        convs = {0: (64, 3), 2: (128, 64), 5: (256, 128), 8: (512, 256), 11: (1, 512)}
        for index, (cout, cin) in convs.items():
            keys |= {f"layer{i}.{index}.weight": (cout, cin, 4, 4), f"layer{i}.{index}.bias": (cout,)}
        for index, c in ((3, 128), (6, 256), (9, 512)):
            keys |= _bn(f"layer{i}.{index}", c)
    return keys


# Xception (modules/networks/xception.py): (in, out, reps, stride, start_with_relu, grow_first) per block.
XCEPTION_BLOCKS = [
    (64, 128, 2, 2, False, True),
    (128, 256, 2, 2, True, True),
    (256, 728, 2, 2, True, True),
    *[(728, 728, 3, 1, True, True)] * 8,
    (728, 1024, 2, 2, True, False),
]


def _separable(prefix: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv1.weight": (cin, 1, 3, 3), f"{prefix}.pointwise.weight": (cout, cin, 1, 1)}


def _original_xception_keys() -> dict[str, tuple[int, ...]]:
    """Xception of the IID detector, without the detector's ``backbone.`` prefix and heads."""
    keys = {"conv1.weight": (32, 3, 3, 3), **_bn("bn1", 32), "conv2.weight": (64, 32, 3, 3), **_bn("bn2", 64)}
    for b, (cin, cout, reps, stride, start_relu, grow_first) in enumerate(XCEPTION_BLOCKS, 1):
        if cout != cin or stride != 1:
            keys |= {f"block{b}.skip.weight": (cout, cin, 1, 1), **_bn(f"block{b}.skipbn", cout)}
        widths = (
            [(cin, cout)] + [(cout, cout)] * (reps - 1)
            if grow_first
            else [(cin, cin)] * (reps - 1) + [(cin, cout)]
        )
        offset = 0 if start_relu else -1  # rep = [relu, sep, bn] * reps, the first ReLU dropped when False
        for r, (a, c) in enumerate(widths):
            keys |= _separable(f"block{b}.rep.{3 * r + 1 + offset}", a, c)
            keys |= _bn(f"block{b}.rep.{3 * r + 2 + offset}", c)
    keys |= {**_separable("conv3", 1024, 1536), **_bn("bn3", 1536)}
    return keys | {**_separable("conv4", 1536, 2048), **_bn("bn4", 2048)}


def _original_iid_keys() -> dict[str, tuple[int, ...]]:
    """IIDDetector: everything under ``backbone.`` (the Xception, ``adjust_channel``, ``last_linear``)."""
    heads = {
        "adjust_channel.0.weight": (512, 2048, 1, 1),
        "adjust_channel.0.bias": (512,),
        **_bn("adjust_channel.1", 512),
        "last_linear.weight": (2, 512),
        "last_linear.bias": (2,),
    }
    return {f"backbone.{k}": v for k, v in (_original_xception_keys() | heads).items()}


def _original_encoder_keys(input_size: int) -> dict[str, tuple[int, ...]]:
    """modules/encoder128.py Backbone128 (IR-SE-50), incl. FaceShield's duplicate head copies."""
    keys = {"input_layer.0.weight": (64, 3, 3, 3), **_bn("input_layer.1", 64), "input_layer.2.weight": (64,)}
    units = [(64, 64)] * 3 + [(64, 128)] + [(128, 128)] * 3 + [(128, 256)] + [(256, 256)] * 13
    units += [(256, 512)] + [(512, 512)] * 2
    for i, (cin, c) in enumerate(units):
        p = f"body.{i}"
        if cin != c:
            keys |= {f"{p}.shortcut_layer.0.weight": (c, cin, 1, 1), **_bn(f"{p}.shortcut_layer.1", c)}
        keys |= {**_bn(f"{p}.res_layer.0", cin), f"{p}.res_layer.1.weight": (c, cin, 3, 3)}
        keys |= {f"{p}.res_layer.2.weight": (c,), f"{p}.res_layer.3.weight": (c, c, 3, 3)}
        keys |= {**_bn(f"{p}.res_layer.4", c), f"{p}.res_layer.5.fc1.weight": (c // 16, c, 1, 1)}
        keys[f"{p}.res_layer.5.fc2.weight"] = (c, c // 16, 1, 1)
    fc = (512, 512 * (input_size // 16) ** 2)
    heads = [("output_layer128.0", "output_layer128.3", "output_layer128.4")]
    heads.append(("batch_norm2d", "linear", "batch_norm1d"))  # FaceShield's duplicate copies
    for bn2d, linear, bn1d in heads:
        keys |= {**_bn(bn2d, 512), f"{linear}.weight": fc, f"{linear}.bias": (512,), **_bn(bn1d, 512)}
    return keys


def _meta_state(keys: dict[str, tuple[int, ...]], prefix: str = "") -> dict[str, Tensor]:
    return {prefix + k: torch.empty(shape, device="meta") for k, shape in keys.items()}


@pytest.mark.parametrize(
    ("build", "keys", "mapping", "target"),
    [
        (UnetDecoder512, _original_decoder_keys, km.same_names("decoder"), None),
        (AII512, _original_generator_keys, km.same_names("generator"), None),
        (MultiscaleDiscriminator, _original_discriminator_keys, km.same_names("discriminator"), None),
        (IIDDiscriminator, _original_iid_keys, km.iid_mapping(), None),
        (FaceShieldSE, _original_se_keys, km.se_layers_mapping(), "layers"),
        (IIDDiscriminator, _original_xception_keys, km.imagenet_xception_mapping(), "backbone"),
    ],
)
def test_original_layout_maps_onto_every_key(build, keys, mapping, target) -> None:
    """Every original key (DDP-wrapped too) maps onto ours with its shape: none missing, none unexpected."""
    with torch.device("meta"):
        model = build()
    module = model.get_submodule(target) if target else model
    converted, stripped, _, _ = convert_state_dict(
        module, _meta_state(keys(), "module."), mapping, "original"
    )
    assert stripped == ("module.",) and set(converted) == set(module.state_dict())
    for key, value in converted.items():
        assert value.shape == module.state_dict()[key].shape, key


def test_original_encoder_layout_maps_and_drops_the_duplicate_head() -> None:
    with torch.device("meta"):
        encoder = FaceShieldEncoder()
    state = _meta_state(_original_encoder_keys(128))
    converted, _, dropped, _ = convert_state_dict(encoder, state, km.encoder_mapping(encoder), "original")
    assert set(converted) == set(encoder.state_dict())
    assert len(dropped) == 12 and all(k.startswith(km.ENCODER_DUPLICATES) for k in dropped)


def _random(keys: dict[str, tuple[int, ...]]) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        k: torch.zeros(s, dtype=torch.long)
        if k.endswith("num_batches_tracked")
        else torch.randn(s, generator=gen)
        for k, s in keys.items()
    }


def test_se_loads_from_an_original_checkpoint_with_readout_files(tmp_path: Path) -> None:
    state = _random(_original_se_keys())
    checkpoint = tmp_path / "model.pth"
    torch.save({"epoch": 3, "se": {f"module.{k}": v for k, v in state.items()}}, checkpoint)
    readouts = []
    for i, shape in enumerate(readout_shapes(SMALL)):
        path = tmp_path / f"readout_layer{i}.pth"
        raw = {
            "m": torch.full(shape, float(i)),
            "s": torch.full(shape, 4.0 * 99),
            "neuron_nonzero": torch.ones(shape),
        }
        torch.save({**raw, "n_samples": torch.tensor(100)}, path)
        readouts.append(path)
    se = FaceShieldSE(input_size=SMALL)
    km.load_original_se(se, checkpoint, readouts)
    assert torch.equal(se.layers[4].conv2.weight, state["iba_4.conv2.weight"])
    assert torch.equal(se.layers[9].smooth.weight, state["iba_9.gaussin.conv.weight"])
    assert torch.equal(se.readout.layers[7].mean, torch.full(readout_shapes(SMALL)[7], 7.0))
    torch.testing.assert_close(se.readout.layers[0].std, torch.full(readout_shapes(SMALL)[0], 2.0))


def test_wrong_shape_or_missing_key_names_the_key_and_file(tmp_path: Path) -> None:
    state = _random(_original_se_keys())
    bad = tmp_path / "bad_se.pth"
    torch.save({"se": {**state, "iba_0.conv3.weight": torch.zeros(3, 3, 1, 1)}}, bad)
    with pytest.raises(ValueError, match=rf"{bad}.*shape mismatch.*iba_0\.conv3\.weight \(3, 3, 1, 1\)"):
        km.load_original_se(FaceShieldSE(input_size=SMALL), bad)
    partial = tmp_path / "partial_se.pth"
    torch.save({k: v for k, v in state.items() if k != "iba_7.conv2.bias"}, partial)
    with pytest.raises(ValueError, match=rf"{partial}.*1 missing keys.*iba_7\.conv2\.bias"):
        km.load_original_se(FaceShieldSE(input_size=SMALL), partial)
    extra = tmp_path / "extra_se.pth"
    torch.save({**state, "iba_10.conv1.bias": torch.zeros(768)}, extra)
    with pytest.raises(ValueError, match=r"unexpected keys: iba_10\.conv1\.bias"):
        km.load_original_se(FaceShieldSE(input_size=SMALL), extra)
    with pytest.raises(FileNotFoundError, match="FaceShield checkpoint not found"):
        km.load_original_se(FaceShieldSE(input_size=SMALL), tmp_path / "absent.pth")


def test_imagenet_xception_file_fills_the_iid_backbone(
    xception_iid: IIDDiscriminator, tmp_path: Path
) -> None:
    keys = _original_xception_keys()
    state = _random(keys)
    state = {k: (v[:, :, 0, 0] if "pointwise" in k else v) for k, v in state.items()}  # Keras port: 2-D
    state |= {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "xception-b5690688.pth"
    torch.save(state, path)
    head = xception_iid.adjust_channel[0].weight.clone()
    report = km.load_imagenet_xception(xception_iid, path)
    assert set(report.dropped_keys) == {"fc.weight", "fc.bias"}
    assert torch.equal(
        xception_iid.backbone.block12.rep[4].pointwise.weight[:, :, 0, 0],
        state["block12.rep.4.pointwise.weight"],
    )
    assert torch.equal(xception_iid.adjust_channel[0].weight, head)


# ---------------------------------------------------------------------------------------- manifest
def test_manifest_entries() -> None:
    manifest = load_manifest()
    names = [*km.RELEASED.values(), *km.READOUT_WEIGHTS]
    assert len(set(names)) == 16
    for name in names:
        entry = manifest[name]
        assert entry.papers == ("faceshield",) and entry.sha256 is None and not entry.url_is_file
    assert manifest["xception-imagenet"].file == "xception-b5690688.pth"
    assert manifest["faceshield-readout-layer10"].file == "faceshield_readout_layer10.pth"


def test_missing_weights_name_the_file_and_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "weights"
    monkeypatch.setenv("PROFACE_WEIGHTS", str(weights))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with torch.device("meta"):
        decoder = UnetDecoder512()
    with pytest.raises(MissingWeightsError) as info:
        km.load_released(decoder)
    message = str(info.value)
    assert "faceshield_ckpt_ks_E.pth" in message and str(weights / "faceshield_ckpt_ks_E.pth") in message
    assert "python -m src.weights pin faceshield-decoder --file <downloaded file>" in message
    with pytest.raises(TypeError, match="no released FaceShield weights for MultiscaleDiscriminator"):
        km.load_released(MultiscaleDiscriminator())


def test_se_masks_alone_equal_the_forward_masks() -> None:
    torch.manual_seed(0)
    encoder, se = FaceShieldEncoder(input_size=32), FaceShieldSE(input_size=32)
    _, features = encoder(torch.rand(2, 3, 32, 32) * 2 - 1)
    full = se(features, encoder.restrict_forward, torch.Generator().manual_seed(0))
    for alone, with_forward in zip(se.masks(features), full.lambdas, strict=True):
        assert torch.equal(alone, with_forward)
