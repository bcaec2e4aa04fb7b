"""FaceShifter's AEI-Net and the ``faceshifter`` obfuscator (``src.networks.face_swap.faceshifter``).

No real weights are needed: narrow generators (``base_channels=2``) stand in for the released 184 M network
and files are written in the released format (a raw ``state_dict``, as taotaonice's ``train_AEI.py`` saves
``G_latest.pth``). The full-width forward passes are ``slow``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.networks.face_swap import (
    FACESHIFTER_PARAMETERS,
    AEINet,
    FaceShifterIdentityEncoder,
    FaceShifterSwapper,
    SimSwapGenerator,
    build_faceshifter_arcface,
    faceshifter_parameter_count,
    load_faceshifter_arcface,
    load_faceshifter_generator,
)
from src.networks.face_swap.faceshifter import AADLayer, AADResBlock, resize_images
from src.networks.recognizers import to_published_state_dict
from src.networks.recognizers.irse import IRNet
from src.obfuscators import FACE_SWAP_OBFUSCATORS, OBFUSCATORS, FaceShifter, build_obfuscator
from src.obfuscators.face_swap import RandomWeightsWarning, build_faceshifter_obfuscator
from src.weights import MissingWeightsError, UnpinnedWeightsError, load_manifest, pin

TINY = {"base_channels": 2}  # c_id stays 512: the identity network is the real-size IR-SE-50
TINY_SMALL_ID = {"base_channels": 2, "c_id": 8}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _bank(n: int = 3, size: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=gen(seed))


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    g = gen(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=g) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
            if module.affine:
                module.weight.data.copy_(torch.rand(module.weight.shape, generator=g) + 0.5)
            module.num_batches_tracked.fill_(3)
    return model.eval()


def _tiny_generator(seed: int = 0, **options: int) -> AEINet:
    torch.manual_seed(seed)
    return _randomise_batchnorm(AEINet(**{**TINY, **options}), seed)  # type: ignore[return-value]


# ======================================================== published layout (taotaonice network/AEI_Net.py)


def published_aei_keys(b: int, c_id: int) -> list[tuple[str, tuple]]:
    """Key names and shapes of ``AEI_Net(c_id)`` as taotaonice/FaceShifter ``network/AEI_Net.py`` and
    ``network/AADLayer.py`` define it (written from that code, not from our module; widths scaled by
    ``b / 32``): ``conv4x4`` Sequentials [conv, BN, LeakyReLU], ``deconv4x4`` modules {deconv, bn, lrelu},
    BN with five entries, ``AAD_ResBlk`` with AAD3/conv3 only where cin != cout, InstanceNorm without
    entries."""

    def bn(prefix: str, c: int) -> list[tuple[str, tuple]]:
        names = ("weight", "bias", "running_mean", "running_var")
        return [(f"{prefix}.{n}", (c,)) for n in names] + [(f"{prefix}.num_batches_tracked", ())]

    keys: list[tuple[str, tuple]] = []
    enc = [3, b, 2 * b, 4 * b, 8 * b, 16 * b, 32 * b, 32 * b]
    for i in range(1, 8):
        keys += [(f"encoder.conv{i}.0.weight", (enc[i], enc[i - 1], 4, 4)), *bn(f"encoder.conv{i}.1", enc[i])]
    decs = [(32 * b, 32 * b), (64 * b, 16 * b), (32 * b, 8 * b), (16 * b, 4 * b), (8 * b, 2 * b), (4 * b, b)]
    for i, (cin, cout) in enumerate(decs, start=1):  # ConvTranspose2d weight: (in, out, k, k)
        keys += [(f"encoder.deconv{i}.deconv.weight", (cin, cout, 4, 4)), *bn(f"encoder.deconv{i}.bn", cout)]
    keys += [("generator.up1.weight", (c_id, 32 * b, 2, 2)), ("generator.up1.bias", (32 * b,))]

    def aad(prefix: str, c_x: int, c_attr: int) -> list[tuple[str, tuple]]:
        return [
            (f"{prefix}.conv1.weight", (c_x, c_attr, 1, 1)),
            (f"{prefix}.conv1.bias", (c_x,)),
            (f"{prefix}.conv2.weight", (c_x, c_attr, 1, 1)),
            (f"{prefix}.conv2.bias", (c_x,)),
            (f"{prefix}.fc1.weight", (c_x, c_id)),
            (f"{prefix}.fc1.bias", (c_x,)),
            (f"{prefix}.fc2.weight", (c_x, c_id)),
            (f"{prefix}.fc2.bias", (c_x,)),
            (f"{prefix}.conv_h.weight", (1, c_x, 1, 1)),
            (f"{prefix}.conv_h.bias", (1,)),
        ]

    blocks = [
        (32 * b, 32 * b, 32 * b),
        (32 * b, 32 * b, 64 * b),
        (32 * b, 32 * b, 32 * b),
        (32 * b, 16 * b, 16 * b),
        (16 * b, 8 * b, 8 * b),
        (8 * b, 4 * b, 4 * b),
        (4 * b, 2 * b, 2 * b),
        (2 * b, 3, 2 * b),
    ]
    for i, (cin, cout, c_attr) in enumerate(blocks, start=1):
        p = f"generator.AADBlk{i}"
        keys += [*aad(f"{p}.AAD1", cin, c_attr), (f"{p}.conv1.weight", (cin, cin, 3, 3))]
        keys += [*aad(f"{p}.AAD2", cin, c_attr), (f"{p}.conv2.weight", (cout, cin, 3, 3))]
        if cin != cout:
            keys += [*aad(f"{p}.AAD3", cin, c_attr), (f"{p}.conv3.weight", (cout, cin, 3, 3))]
    return keys


def test_released_generator_size_and_layout() -> None:
    with torch.device("meta"):
        model = AEINet()
    state = model.state_dict()
    count = sum(p.numel() for p in model.parameters())
    assert count == 184_343_381 == FACESHIFTER_PARAMETERS == faceshifter_parameter_count()
    assert f"{count / 1e6:.1f} M" == "184.3 M"  # docs/papers/proface.md "Obfuscators"
    assert len(state) == 311 and len(list(model.parameters())) == 272
    assert sum(k.endswith("num_batches_tracked") for k in state) == 13  # 13 BatchNorms, no InstanceNorm state
    assert [(k, tuple(v.shape)) for k, v in state.items()] == published_aei_keys(32, 512)
    # a few structural facts of the release
    assert tuple(state["generator.up1.weight"].shape) == (512, 1024, 2, 2)
    assert tuple(state["generator.AADBlk2.AAD1.conv1.weight"].shape) == (1024, 2048, 1, 1)
    assert tuple(state["generator.AADBlk8.conv3.weight"].shape) == (3, 64, 3, 3)
    assert "generator.AADBlk3.AAD3.fc1.weight" not in state and "generator.AADBlk4.AAD3.fc1.weight" in state
    assert not any(".norm." in k for k in state)
    assert sum(p.numel() for p in model.encoder.parameters()) == 67_087_744


@pytest.mark.parametrize(("b", "c_id"), [(2, 8), (1, 3), (4, 16)])
def test_narrow_generators_follow_the_published_names(b: int, c_id: int) -> None:
    with torch.device("meta"):
        model = AEINet(c_id=c_id, base_channels=b)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == published_aei_keys(b, c_id)
    assert sum(p.numel() for p in model.parameters()) == faceshifter_parameter_count(c_id, b)


def test_generator_forward_shapes_range_and_checks() -> None:
    model = _tiny_generator(**TINY_SMALL_ID)
    x = torch.rand(2, 3, 256, 256, generator=gen(1)) * 2 - 1
    z = F.normalize(torch.randn(2, 8, generator=gen(2)), dim=1)
    with torch.no_grad():
        y = model(x, z)
        attributes = model.attributes(x)
    assert y.shape == (2, 3, 256, 256) and float(y.abs().max()) <= 1.0 and torch.isfinite(y).all()
    sizes = [(a.shape[1], a.shape[-1]) for a in attributes]
    assert sizes == [(64, 2), (128, 4), (64, 8), (32, 16), (16, 32), (8, 64), (4, 128), (4, 256)]
    with torch.no_grad():  # the identity changes the output
        assert not torch.allclose(model(x, z.flip(0)), y)
    with pytest.raises(ValueError, match="256, 256"):
        model(torch.rand(1, 3, 128, 128), z[:1])  # would silently broadcast a 1x1 attribute map
    with pytest.raises(ValueError, match="z_id must be"):
        model(x, torch.randn(2, 9))
    with pytest.raises(ValueError, match="must be >= 1"):
        AEINet(base_channels=0)


def test_aad_layer_and_block_match_the_published_formula() -> None:
    torch.manual_seed(3)
    layer = AADLayer(6, 5, 4)
    h, a, z = torch.randn(2, 6, 7, 7), torch.randn(2, 5, 7, 7), torch.randn(2, 4)
    mu, var = h.mean(dim=(2, 3), keepdim=True), h.var(dim=(2, 3), unbiased=False, keepdim=True)
    hn = (h - mu) / torch.sqrt(var + 1e-5)
    gamma_a = F.conv2d(a, layer.conv1.weight, layer.conv1.bias)
    beta_a = F.conv2d(a, layer.conv2.weight, layer.conv2.bias)
    big_a = gamma_a * hn + beta_a
    big_i = (z @ layer.fc1.weight.T + layer.fc1.bias).view(2, 6, 1, 1) * hn + (
        z @ layer.fc2.weight.T + layer.fc2.bias
    ).view(2, 6, 1, 1)
    m = torch.sigmoid(F.conv2d(hn, layer.conv_h.weight, layer.conv_h.bias))
    torch.testing.assert_close(layer(h, a, z), (1 - m) * big_a + m * big_i, rtol=1e-5, atol=1e-5)

    block = AADResBlock(6, 3, 5, 4)
    x = F.conv2d(F.relu(block.AAD1(h, a, z)), block.conv1.weight, padding=1)
    x = F.conv2d(F.relu(block.AAD2(x, a, z)), block.conv2.weight, padding=1)
    skip = F.conv2d(F.relu(block.AAD3(h, a, z)), block.conv3.weight, padding=1)
    torch.testing.assert_close(block(h, a, z), x + skip, rtol=1e-5, atol=1e-5)
    same = AADResBlock(6, 6, 5, 4)
    assert not hasattr(same, "AAD3") and not hasattr(same, "conv3")


# ================================================================================================= loading


def test_released_format_round_trip(tmp_path: Path) -> None:
    source = _tiny_generator(seed=4, **TINY_SMALL_ID)
    path = tmp_path / "G_latest.pth"
    torch.save(source.state_dict(), path)  # taotaonice train_AEI.py: torch.save(G.state_dict(), ...)
    loaded = load_faceshifter_generator(path, **TINY_SMALL_ID).eval()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.rand(1, 3, 256, 256, generator=gen(5)) * 2 - 1
    z = F.normalize(torch.randn(1, 8, generator=gen(6)), dim=1)
    with torch.no_grad():
        assert torch.equal(loaded(x, z), source(x, z))
    # DataParallel prefixes, a container, and a file without num_batches_tracked also load
    state = source.state_dict()
    variants = {
        "module.pth": {f"module.{k}": v for k, v in state.items()},
        "container.pth": {"state_dict": state, "epoch": 3},
        "old.pth": {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        again = load_faceshifter_generator(tmp_path / name, **TINY_SMALL_ID)
        for key, value in state.items():
            if name != "old.pth" or not key.endswith("num_batches_tracked"):  # old files: counters filled
                assert torch.equal(again.state_dict()[key], value), (name, key)


def test_wrong_checkpoint_names_the_keys_and_the_file(tmp_path: Path) -> None:
    state = _tiny_generator(**TINY_SMALL_ID).state_dict()
    broken = dict(state)
    del broken["generator.AADBlk4.AAD3.fc1.weight"]
    broken["generator.AADBlk9.conv1.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="broken.pth") as caught:
        load_faceshifter_generator(tmp_path / "broken.pth", **TINY_SMALL_ID)
    message = str(caught.value)
    assert "1 missing keys" in message and "generator.AADBlk4.AAD3.fc1.weight" in message
    assert "1 unexpected keys" in message and "generator.AADBlk9.conv1.weight" in message
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(ValueError, match="shape mismatches"):
        load_faceshifter_generator(tmp_path / "narrow.pth", base_channels=4, c_id=8)
    torch.save(SimSwapGenerator(ngf=4, latent_size=8, n_blocks=1).state_dict(), tmp_path / "simswap.pth")
    with pytest.raises(ValueError, match=r"missing keys.*encoder\.conv1\.0\.weight"):
        load_faceshifter_generator(tmp_path / "simswap.pth", **TINY_SMALL_ID)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_faceshifter_generator(tmp_path / "nowhere.pth")


# ============================================================================= identity encoder and swapper


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random IR-SE-50 saved as TreB1eN's ``model_ir_se50.pth`` (``Backbone.state_dict()`` names)."""
    torch.manual_seed(7)
    model = _randomise_batchnorm(build_faceshifter_arcface(), 7)
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50.pth"
    torch.save(to_published_state_dict(model, "treb1en"), path)
    return path


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generator") / "G_latest.pth"
    torch.save(_tiny_generator(seed=8).state_dict(), path)
    return path


def test_identity_encoder_is_proface_recipe(arcface_file: Path) -> None:
    arcface = load_faceshifter_arcface(arcface_file).eval()
    assert isinstance(arcface, IRNet) and arcface.se and arcface.depth == 50
    assert "body.0.res_layer.5.fc1.weight" in torch.load(arcface_file, weights_only=True)
    encoder = FaceShifterIdentityEncoder(arcface).eval()
    target = torch.rand(1, 3, 224, 224, generator=gen(9))
    with torch.no_grad():
        latent = encoder(target)
        x = F.interpolate(target, size=(112, 112), mode="bicubic", align_corners=False, antialias=True)
        expected = F.normalize(
            arcface.forward_features(x * 2 - 1), dim=1
        )  # PIL Resize(112) + Normalize(.5,.5)
    assert latent.shape == (1, 512) and abs(float(latent.norm()) - 1.0) < 1e-5
    torch.testing.assert_close(latent, expected, rtol=1e-5, atol=1e-5)
    # FaceShifter's own recipe: rows/cols 19:237 of a 256 face, bilinear align_corners=True to 112
    own = FaceShifterIdentityEncoder(arcface, "bilinear_align_corners", identity_crop=True).eval()
    face = torch.rand(1, 3, 256, 256, generator=gen(10))
    with torch.no_grad():
        crop = F.interpolate(face[:, :, 19:237, 19:237], (112, 112), mode="bilinear", align_corners=True)
        torch.testing.assert_close(
            own(face), F.normalize(arcface.forward_features(crop * 2 - 1), dim=1), rtol=1e-5, atol=1e-5
        )
    with pytest.raises(ValueError, match="unknown resize_mode"):
        FaceShifterIdentityEncoder(arcface, "lanczos")


def test_swapper_is_proface_face_shifter() -> None:
    generator = _tiny_generator(**TINY_SMALL_ID)
    swapper = FaceShifterSwapper(generator).eval()
    faces = torch.rand(2, 3, 112, 112, generator=gen(11))
    z = F.normalize(torch.randn(2, 8, generator=gen(12)), dim=1)
    with torch.no_grad():
        out = swapper(faces, z)
        # PRO-Face FaceShifter/face_shifter.py on [-1, 1] tensors
        yt = generator(F.interpolate(faces * 2 - 1, (256, 256), mode="bilinear"), z)
        expected = (F.interpolate(yt, (112, 112), mode="bilinear") + 1) / 2
    assert out.shape == faces.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    faces256 = torch.rand(1, 3, 256, 256, generator=gen(13))  # PRO-Face S: no resize at all
    with torch.no_grad():
        torch.testing.assert_close(
            swapper(faces256, z[:1]), (generator(faces256 * 2 - 1, z[:1]) + 1) / 2, rtol=1e-6, atol=1e-6
        )
    with pytest.raises(ValueError, match="only runs at 256"):
        FaceShifterSwapper(generator, image_size=224)
    with pytest.raises(ValueError, match="unknown resize mode"):
        resize_images(faces, (8, 8), "lanczos")


# ================================================================================== the obfuscator


def _obfuscator(generator_file: Path, arcface_file: Path, **kwargs: object) -> FaceShifter:
    options: dict[str, object] = {
        "targets": _bank(),
        "weights": {"generator": generator_file, "arcface": arcface_file},
        "generator_options": TINY,
    }
    return FaceShifter(**{**options, **kwargs})  # type: ignore[arg-type]


def test_construction_is_lazy_and_holds_nothing(
    generator_file: Path, arcface_file: Path, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constructing with random weights does not warn yet: nothing is built
        ob = FaceShifter(targets=_bank(), weights=None, generator_options=TINY)
        missing = FaceShifter(
            targets=_bank(), weights={"generator": tmp_path / "none.pth", "arcface": tmp_path / "none.pth"}
        )
    assert not ob.is_set_up and not missing.is_set_up
    assert list(ob.parameters()) == [] and ob.state_dict() == {}
    with pytest.raises(FileNotFoundError, match="none.pth"):
        missing.setup()
    loaded = _obfuscator(generator_file, arcface_file)
    loaded.eval()(torch.rand(1, 3, 32, 32, generator=gen(0)))
    assert loaded.is_set_up and list(loaded.parameters()) == [] and loaded.state_dict() == {}
    for network in (loaded.swapper, loaded.identity_encoder):
        assert not network.training and all(not p.requires_grad for p in network.parameters())
    assert isinstance(loaded.swapper, FaceShifterSwapper) and isinstance(loaded.swapper.generator, AEINet)
    assert isinstance(loaded.identity_encoder, FaceShifterIdentityEncoder)
    loaded.swapper.train()
    loaded.train()(torch.rand(1, 3, 32, 32), generator=gen(1))
    assert not loaded.swapper.training  # put back in eval mode on use
    described = loaded.describe()
    assert described["name"] == "faceshifter" and described["image_size"] == 256
    assert described["weights"] == {"generator": str(generator_file), "arcface": str(arcface_file)}


def test_obfuscator_matches_the_proface_recipe(generator_file: Path, arcface_file: Path) -> None:
    target = _bank(1, size=224, seed=14)
    ob = build_faceshifter_obfuscator(
        {"generator": generator_file, "arcface": arcface_file}, targets=target, generator_options=TINY
    ).eval()
    images = torch.rand(2, 3, 112, 112, generator=gen(15))
    out = ob(images)
    generator = load_faceshifter_generator(generator_file, **TINY).eval()
    arcface = load_faceshifter_arcface(arcface_file).eval()
    with torch.no_grad():
        xs = F.interpolate(target, (112, 112), mode="bicubic", antialias=True, align_corners=False) * 2 - 1
        embeds = F.normalize(arcface.forward_features(xs), dim=1)
        yt = generator(F.interpolate(images * 2 - 1, (256, 256), mode="bilinear"), embeds.expand(2, -1))
        expected = (F.interpolate(yt, (112, 112), mode="bilinear") + 1) / 2
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ob.target_latent(0), embeds[0], rtol=1e-5, atol=1e-5)


def test_seeded_training_draw_eval_sequence_and_range(generator_file: Path, arcface_file: Path) -> None:
    images = torch.rand(2, 3, 48, 40, generator=gen(16))
    a = _obfuscator(generator_file, arcface_file).train()
    b = _obfuscator(generator_file, arcface_file).train()
    out_a, out_b = a(images, generator=gen(5)), b(images, generator=gen(5))
    assert torch.equal(out_a, out_b) and a.last_target == b.last_target
    assert out_a.shape == images.shape and out_a.dtype == images.dtype
    assert float(out_a.min()) >= 0.0 and float(out_a.max()) <= 1.0 and not torch.allclose(out_a, images)
    assert int(a.draw_params(2, gen(5))[0]) == a.last_target
    assert len({int(a.draw_params(1, gen(s))[0]) for s in range(30)}) > 1

    ob = _obfuscator(generator_file, arcface_file, eval_targets=_bank(2, seed=3)).eval()
    seen = []
    for _ in range(3):
        ob(images)
        seen.append(ob.last_target)
    assert seen == [0, 1, 0]
    first = ob.eval()(images)
    assert ob.last_target == 0
    torch.testing.assert_close(ob.train().eval()(images), first)
    shifted = _obfuscator(generator_file, arcface_file, eval_targets=_bank(2, seed=3), eval_target_offset=1)
    shifted.eval()(images)
    assert shifted.last_target == 1


def test_gradient_choice(generator_file: Path, arcface_file: Path) -> None:
    images = torch.rand(1, 3, 32, 32, generator=gen(17), requires_grad=True)
    assert not _obfuscator(generator_file, arcface_file).eval()(images).requires_grad  # default: no graph
    diff = _obfuscator(generator_file, arcface_file, differentiable=True).eval()
    out = diff(images)
    out.sum().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0
    assert all(p.grad is None for n in (diff.swapper, diff.identity_encoder) for p in n.parameters())


def test_random_weights_warn_registry_and_options() -> None:
    ob = FaceShifter(targets=_bank(2), weights=None, generator_options=TINY)
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        out = ob.train()(torch.rand(1, 3, 24, 24, generator=gen(0)), generator=gen(1))
    assert out.shape == (1, 3, 24, 24)
    assert "faceshifter" in FACE_SWAP_OBFUSCATORS and "faceshifter" not in OBFUSCATORS
    assert FACE_SWAP_OBFUSCATORS["faceshifter"] is FaceShifter and "simswap" in FACE_SWAP_OBFUSCATORS
    built = build_obfuscator("faceshifter", targets=_bank(), weights=None, generator_options=TINY)
    assert isinstance(built, FaceShifter) and not built.is_set_up
    with pytest.raises(ValueError, match="image_size must be 256"):
        FaceShifter(targets=_bank(), image_size=224)
    with pytest.raises(ValueError, match="exactly the keys"):
        FaceShifter(targets=_bank(), weights={"generator": "G_latest.pth"})
    with pytest.raises(ValueError, match="'manifest', a mapping of paths or None"):
        FaceShifter(targets=_bank(), weights="G_latest.pth")
    with pytest.raises(ValueError, match="swap_resize must be one of"):
        FaceShifter(targets=_bank(), swap_resize="lanczos")


def test_manifest_entries_and_errors_name_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, generator_file: Path
) -> None:
    manifest = load_manifest()
    entry = manifest["faceshifter-generator-256"]
    assert entry.sha256 is None and not entry.sha256_complete and not entry.url_is_file
    assert entry.papers == ("proface", "proface_s")
    assert "src.obfuscators.face_swap.FaceShifter" in manifest["treb1en-ir-se50"].used_by

    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    ob = FaceShifter(targets=_bank())  # constructing reads nothing
    with pytest.raises(MissingWeightsError) as missing:
        ob.eval()(torch.rand(1, 3, 16, 16))
    message = str(missing.value)
    assert "faceshifter-generator-256" in message and "pin faceshifter-generator-256" in message
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / entry.file).write_bytes(generator_file.read_bytes())
    with pytest.raises(UnpinnedWeightsError, match="pin faceshifter-generator-256"):
        FaceShifter(targets=_bank(), generator_options=TINY).setup()
    pin("faceshifter-generator-256")
    with pytest.raises(MissingWeightsError, match=r"manifest entry 'treb1en-ir-se50'"):
        FaceShifter(targets=_bank(), generator_options=TINY).setup()


# ====================================================================================== full width (slow)


@pytest.mark.slow
def test_full_width_generator_round_trip_and_forward(tmp_path: Path) -> None:
    """The released architecture (184 M parameters): file round trip and one 256 px forward pass on CPU."""
    source = _randomise_batchnorm(AEINet(), 1)
    path = tmp_path / "G_latest.pth"
    torch.save(source.state_dict(), path)
    loaded = load_faceshifter_generator(path).eval()
    x = torch.rand(1, 3, 256, 256, generator=gen(2)) * 2 - 1
    z = F.normalize(torch.randn(1, 512, generator=gen(3)), dim=1)
    with torch.no_grad():
        y = loaded(x, z)
        assert torch.equal(y, source(x, z))
    assert y.shape == (1, 3, 256, 256) and torch.isfinite(y).all() and float(y.abs().max()) <= 1.0


@pytest.mark.slow
def test_full_width_obfuscator_with_random_weights() -> None:
    ob = FaceShifter(targets=_bank(2, size=224), weights=None)
    images = torch.rand(2, 3, 112, 112, generator=gen(4))
    with pytest.warns(RandomWeightsWarning):
        out = ob.eval()(images)
    assert out.shape == images.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert sum(p.numel() for p in ob.swapper.generator.parameters()) == FACESHIFTER_PARAMETERS
