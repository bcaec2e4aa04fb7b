"""Face-swap obfuscators and SimSwap's networks (``src.networks.face_swap``, ``src.obfuscators.face_swap``).

No real weights are needed: tiny generators stand in for the 224 model, and tiny stand-ins of SimSwap's
pickled ArcFace classes (written here from neuralchen/SimSwap ``models/arcface_models.py`` = foamliu
InsightFace-v2 ``models.py``, under the published module names) are pickled the way the released
``arcface_checkpoint.tar`` files are.
"""

from __future__ import annotations

import importlib.abc
import itertools
import os
import pickle
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.networks.face_swap import (
    SimSwapArcFace,
    SimSwapGenerator,
    SimSwapIdentityEncoder,
    SimSwapSwapper,
    generator_parameter_count,
    load_simswap_arcface,
    load_simswap_generator,
    read_pickled_network,
)
from src.networks.face_swap.simswap import AdaINResBlock, PickledObject, load_restricted
from src.obfuscators import FACE_SWAP_OBFUSCATORS, OBFUSCATORS, FaceSwap, SimSwap, build_obfuscator
from src.obfuscators.face_swap import RandomWeightsWarning, build_simswap_obfuscator
from src.weights import MissingWeightsError, UnpinnedWeightsError

TINY_G = {"ngf": 4, "latent_size": 8, "n_blocks": 2}
TINY_ARC = {"layers": (1, 2, 1, 1), "widths": (16, 32, 32, 64), "embedding_dim": 8}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ================================================================ published generator layout (fs_networks.py)


def published_generator_keys(ngf: int, latent: int, n_blocks: int, deep: bool) -> list[tuple[str, tuple]]:
    """Key names and shapes of ``Generator_Adain_Upsample`` as neuralchen/SimSwap ``models/fs_networks.py``
    defines it (written from that code, not from our module): Sequentials indexed as published, BN layers with
    five entries, ReLU/pads/upsampling/InstanceNorm without any."""

    def conv(prefix: str, cin: int, cout: int, k: int) -> list[tuple[str, tuple]]:
        return [(f"{prefix}.weight", (cout, cin, k, k)), (f"{prefix}.bias", (cout,))]

    def bn(prefix: str, c: int) -> list[tuple[str, tuple]]:
        return [
            (f"{prefix}.weight", (c,)),
            (f"{prefix}.bias", (c,)),
            (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)),
            (f"{prefix}.num_batches_tracked", ()),
        ]

    c = [ngf, 2 * ngf, 4 * ngf, 8 * ngf]
    keys = conv("first_layer.1", 3, c[0], 7) + bn("first_layer.2", c[0])  # [pad, conv, norm, act]
    for i, (cin, cout) in enumerate(itertools.pairwise(c), start=1):  # [conv, norm, act]
        keys += conv(f"down{i}.0", cin, cout, 3) + bn(f"down{i}.1", cout)
    if deep:
        keys += conv("down4.0", c[3], c[3], 3) + bn("down4.1", c[3])
    for b in range(n_blocks):  # ResnetBlock_Adain: conv1 = [pad, conv, IN], style1, act1, conv2, style2
        for j in (1, 2):
            keys += conv(f"BottleNeck.{b}.conv{j}.1", c[3], c[3], 3)
            keys += [
                (f"BottleNeck.{b}.style{j}.linear.weight", (2 * c[3], latent)),
                (f"BottleNeck.{b}.style{j}.linear.bias", (2 * c[3],)),
            ]
    if deep:
        keys += conv("up4.1", c[3], c[3], 3) + bn("up4.2", c[3])
    for i, (cin, cout) in zip((3, 2, 1), ((c[3], c[2]), (c[2], c[1]), (c[1], c[0])), strict=True):
        keys += conv(f"up{i}.1", cin, cout, 3) + bn(f"up{i}.2", cout)  # [upsample, conv, norm, act]
    keys += conv("last_layer.1", c[0], 3, 7)  # [pad, conv, tanh]
    return keys


@pytest.mark.parametrize("deep", [False, True])
def test_generator_state_dict_follows_published_names(deep: bool) -> None:
    model = SimSwapGenerator(deep=deep, **TINY_G)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == published_generator_keys(4, 8, 2, deep)


def test_released_generator_size() -> None:
    with torch.device("meta"):
        model = SimSwapGenerator()
    state = model.state_dict()
    assert len(state) == 123 and len(list(model.parameters())) == 102
    assert sum(p.numel() for p in model.parameters()) == 55_051_779 == generator_parameter_count()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == published_generator_keys(64, 512, 9, False)


def test_generator_file_loads_strictly_and_reports_problems(tmp_path: Path) -> None:
    source = SimSwapGenerator(**TINY_G)
    for module in source.modules():  # non-trivial BN statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "latest_net_G.pth"
    torch.save(source.state_dict(), path)
    loaded = load_simswap_generator(path, **TINY_G)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # a file written before num_batches_tracked existed still loads
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    load_simswap_generator(tmp_path / "old.pth", **TINY_G)
    # a missing weight or another width is an error naming it
    broken = dict(source.state_dict())
    del broken["BottleNeck.1.style2.linear.weight"]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"missing keys.*BottleNeck\.1\.style2\.linear\.weight"):
        load_simswap_generator(tmp_path / "broken.pth", **TINY_G)
    with pytest.raises(ValueError, match="shape mismatches"):
        load_simswap_generator(path, ngf=8, latent_size=8, n_blocks=2)


def test_generator_forward_shapes_and_range() -> None:
    torch.manual_seed(0)
    model = SimSwapGenerator(**TINY_G).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 40), F.normalize(torch.randn(2, 8), dim=1))
    assert out.shape == (2, 3, 32, 40) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 3, 30, 32), torch.randn(1, 8))
    with pytest.raises(ValueError, match="latent must be"):
        model(torch.rand(1, 3, 32, 32), torch.randn(1, 9))


def test_adain_block_matches_the_published_formula() -> None:
    torch.manual_seed(1)
    block = AdaINResBlock(6, 5)
    x, z = torch.randn(2, 6, 7, 9), torch.randn(2, 5)

    def conv_in(conv: nn.Conv2d, t: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), conv.weight, conv.bias)
        y = y - y.mean(dim=(2, 3), keepdim=True)
        return y / torch.sqrt((y * y).mean(dim=(2, 3), keepdim=True) + 1e-8)

    def style(linear: nn.Linear, t: torch.Tensor) -> torch.Tensor:
        s = (z @ linear.weight.T + linear.bias).view(2, 2, 6, 1, 1)
        return t * (s[:, 0] * 1 + 1.0) + s[:, 1] * 1

    y = torch.relu(style(block.style1.linear, conv_in(block.conv1[1], x)))
    expected = x + style(block.style2.linear, conv_in(block.conv2[1], y))
    torch.testing.assert_close(block(x, z), expected, rtol=1e-5, atol=1e-5)


# ============================================================ stand-ins of the pickled ArcFace (SimSwap code)

CALLS: list[str] = []  # any stand-in code the loader runs would be recorded here


class _StandInMixin:
    def __setstate__(self, state: dict) -> None:  # what pickle would call on the real class
        CALLS.append(f"{type(self).__name__}.__setstate__")
        super().__setstate__(state)  # type: ignore[misc]


def standin_classes(module_name: str) -> dict[str, type]:
    """Fresh stand-ins of ``ResNet``/``IRBlock``/``SEBlock``/``ArcMarginModel`` (SimSwap
    ``models/arcface_models.py`` = foamliu InsightFace-v2 ``models.py``; same structure, widths shrunk) named
    ``module_name.<Name>`` so that pickle records the published paths."""

    class SEBlock(_StandInMixin, nn.Module):
        def __init__(self, channel: int, reduction: int = 16) -> None:
            super().__init__()
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(
                nn.Linear(channel, channel // reduction),
                nn.PReLU(),
                nn.Linear(channel // reduction, channel),
                nn.Sigmoid(),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, c, _, _ = x.size()
            y = self.avg_pool(x).view(b, c)
            return x * self.fc(y).view(b, c, 1, 1)

    class IRBlock(_StandInMixin, nn.Module):
        expansion = 1

        def __init__(
            self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
        ) -> None:
            super().__init__()
            self.bn0 = nn.BatchNorm2d(inplanes)
            self.conv1 = nn.Conv2d(inplanes, inplanes, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(inplanes)
            self.prelu = nn.PReLU()
            self.conv2 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride
            self.use_se = True
            self.se = SEBlock(planes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            residual = x
            out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
            out = self.bn2(self.conv2(out))
            if self.use_se:
                out = self.se(out)
            if self.downsample is not None:
                residual = self.downsample(x)
            out = out + residual
            return self.prelu(out)

    class ResNet(_StandInMixin, nn.Module):
        def __init__(self, layers: tuple, widths: tuple = (16, 32, 32, 64), emb: int = 8) -> None:
            super().__init__()
            self.inplanes = widths[0]
            self.use_se = True
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.prelu = nn.PReLU()
            self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
            self.layer1 = self._make_layer(widths[0], layers[0])
            self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
            self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
            self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
            self.bn2 = nn.BatchNorm2d(widths[3])
            self.dropout = nn.Dropout()
            self.fc = nn.Linear(widths[3] * 7 * 7, emb)
            self.bn3 = nn.BatchNorm1d(emb)

        def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            units = [IRBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            units += [IRBlock(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*units)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = self.dropout(self.bn2(x))
            return self.bn3(self.fc(x.view(x.size(0), -1)))

    class ArcMarginModel(_StandInMixin, nn.Module):
        def __init__(self, classes: int, emb: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(classes, emb))
            self.m, self.s = 0.5, 64.0

    classes = {"ResNet": ResNet, "IRBlock": IRBlock, "SEBlock": SEBlock, "ArcMarginModel": ArcMarginModel}
    for name, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = module_name, name, name
    return classes


def optimizer_class() -> type:
    class InsightFaceOptimizer:  # InsightFace-v2 optimizer.py: wraps the SGD
        def __init__(self, optimizer: torch.optim.Optimizer) -> None:
            self.optimizer = optimizer
            self.step_num = 0
            self.lr = 0.1

        def __setstate__(self, state: dict) -> None:
            CALLS.append("InsightFaceOptimizer.__setstate__")
            self.__dict__.update(state)

    InsightFaceOptimizer.__module__ = "optimizer"
    InsightFaceOptimizer.__qualname__ = "InsightFaceOptimizer"
    return InsightFaceOptimizer


def _publish(monkeypatch: pytest.MonkeyPatch, module_name: str, classes: dict[str, type]) -> None:
    """Put fresh stand-in classes into (temporary) modules named as published, for pickle to find them."""
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    for name, cls in classes.items():
        monkeypatch.setattr(sys.modules[module_name], name, cls, raising=False)


class _ImportRecorder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] in ("models", "optimizer"):
            self.names.append(name)
        return None


def _tiny_arcface(classes: dict[str, type], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = classes["ResNet"](layers=(1, 2, 1, 1))
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _save_arcface(
    monkeypatch: pytest.MonkeyPatch, path: Path, version: str, zipped: bool = True
) -> nn.Module:
    """Pickle a tiny stand-in ArcFace as the 2023 file (the bare ``models.arcface_models.ResNet``) or the
    2021 one (foamliu's ``BEST_checkpoint.tar`` dict: ``DataParallel(models.ResNet)``, ArcMargin head,
    optimizer)."""
    module = "models.arcface_models" if version == "2023" else "models"
    classes = standin_classes(module)
    _publish(monkeypatch, module, classes)
    net = _tiny_arcface(classes)
    obj: object = net
    if version == "2021":
        optimizer = optimizer_class()
        _publish(monkeypatch, "optimizer", {"InsightFaceOptimizer": optimizer})
        head = classes["ArcMarginModel"](10, 8)
        sgd = torch.optim.SGD([*net.parameters(), head.weight], lr=0.1, momentum=0.9)
        obj = {
            "epoch": 3,
            "epochs_since_improvement": 0,
            "acc": np.float64(0.9),
            "model": nn.DataParallel(net),
            "metric_fc": nn.DataParallel(head),
            "optimizer": optimizer(sgd),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy format: torch cannot find the stand-ins' source
        torch.save(obj, path, _use_new_zipfile_serialization=zipped)
    return net


def _forget_published_modules(monkeypatch: pytest.MonkeyPatch) -> _ImportRecorder:
    for name in list(sys.modules):
        if name.split(".")[0] in ("models", "optimizer"):
            monkeypatch.delitem(sys.modules, name)
    recorder = _ImportRecorder()
    monkeypatch.setattr(sys, "meta_path", [recorder, *sys.meta_path])
    CALLS.clear()
    return recorder


@pytest.mark.parametrize(("version", "zipped"), [("2023", True), ("2021", False), ("2021", True)])
def test_pickled_arcface_is_read_without_running_its_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str, zipped: bool
) -> None:
    path = tmp_path / "arcface_checkpoint.tar"
    net = _save_arcface(monkeypatch, path, version, zipped)
    recorder = _forget_published_modules(monkeypatch)

    found = read_pickled_network(path)
    assert found.published_class == ("models.arcface_models.ResNet" if version == "2023" else "models.ResNet")
    assert found.path == (() if version == "2023" else ("model", "module"))
    expected = net.state_dict()
    assert list(found.state_dict) == list(expected)
    for key, value in expected.items():
        assert torch.equal(found.state_dict[key], value), key
    model = load_simswap_arcface(path).eval()
    assert recorder.names == [] and CALLS == []  # nothing imported, no stand-in code ran
    assert not any(isinstance(m, _StandInMixin) for m in model.modules())
    if version == "2021":
        raw = load_restricted(path)
        assert isinstance(raw["optimizer"], PickledObject) and isinstance(raw["acc"], PickledObject)
        assert raw["optimizer"].published == "optimizer.InsightFaceOptimizer"

    config = model.config
    assert (config.layers, config.widths, config.use_se, config.embedding_dim) == (
        (1, 2, 1, 1),
        (16, 32, 32, 64),
        True,
        8,
    )
    x = torch.randn(2, 3, 112, 112, generator=gen(3))
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), net(x), rtol=1e-5, atol=1e-5)


def test_restricted_unpickler_refuses_other_globals(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo should-not-run",))

    class EvilEval:
        def __reduce__(self) -> tuple:
            return (eval, ("__import__('os')",))

    for payload in (Evil(), EvilEval(), {"model": Evil()}):
        path = tmp_path / "evil.tar"
        torch.save(payload, path)
        refused = r"refusing to unpickle the global ((posix|os|nt)\.system|builtins\.eval)"
        with pytest.raises(pickle.UnpicklingError, match=refused):
            read_pickled_network(path)
    with pytest.raises(ValueError, match="no network"):
        torch.save({"epoch": 1}, tmp_path / "empty.tar")
        read_pickled_network(tmp_path / "empty.tar")


def test_converted_state_dict_and_wrong_class(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    classes = standin_classes("models.arcface_models")
    classes["ResNet"].__qualname__ = classes["ResNet"].__name__ = "Backbone"
    _publish(monkeypatch, "models.arcface_models", {"Backbone": classes["ResNet"], **classes})
    net = _tiny_arcface(classes)
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, tmp_path / "arcface.pth")
    model = load_simswap_arcface(tmp_path / "arcface.pth")
    assert model.config.layers == (1, 2, 1, 1)
    torch.save(net, tmp_path / "other.tar")
    with pytest.raises(ValueError, match=r"found models\.arcface_models\.Backbone"):
        load_simswap_arcface(tmp_path / "other.tar")


# ====================================================================================== FaceSwap (generic)


class ToySwapper(nn.Module):
    """Depends on both the face and the latent; output in [0, 1]."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.proj = nn.Linear(dim, 3)

    def forward(self, faces: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(faces) + self.proj(latent)[:, :, None, None])


class ToyEncoder(nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(3, dim)
        self.bn = nn.BatchNorm1d(dim)  # would change with batch statistics if left in training mode

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.fc(faces.mean(dim=(2, 3)))), dim=1)


def _bank(n: int = 6, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=gen(seed))


def _toy(targets: object = None, **kwargs: object) -> FaceSwap:
    torch.manual_seed(0)
    swapper, encoder = ToySwapper(), ToyEncoder()
    return FaceSwap(swapper, encoder, _bank() if targets is None else targets, **kwargs)


def test_construction_builds_nothing_and_holds_no_parameters() -> None:
    built: list[str] = []

    def make_swapper() -> nn.Module:
        built.append("swapper")
        return ToySwapper()

    def make_encoder() -> nn.Module:
        built.append("encoder")
        return ToyEncoder()

    ob = FaceSwap(make_swapper, make_encoder, lambda: _bank())
    assert built == [] and not ob.is_set_up
    assert list(ob.parameters()) == [] and ob.state_dict() == {}
    ob(torch.rand(2, 3, 16, 16), generator=gen(0))
    assert built == ["swapper", "encoder"] and ob.is_set_up
    ob(torch.rand(2, 3, 16, 16), generator=gen(1))
    assert built == ["swapper", "encoder"]  # once
    assert list(ob.parameters()) == [] and ob.state_dict() == {}


def test_training_draw_is_seeded_per_batch() -> None:
    images = torch.rand(3, 3, 16, 16, generator=gen(9))
    a, b = _toy().train(), _toy().train()
    out_a, out_b = a(images, generator=gen(5)), b(images, generator=gen(5))
    assert torch.equal(out_a, out_b) and a.last_target == b.last_target
    params = a.draw_params(3, gen(5))
    assert params.dtype == torch.long and params.shape == (3,) and len(set(params.tolist())) == 1
    assert int(params[0]) == a.last_target  # forward drew the same index from the same seed
    drawn = {int(a.draw_params(1, gen(seed))[0]) for seed in range(40)}
    assert len(drawn) > 1 and drawn <= set(range(6))
    # the same target for every sample of the batch: swapping a batch = swapping each image alone
    torch.testing.assert_close(a.apply(images[:1], params[:1]), a.apply(images, params)[:1])


def test_eval_uses_the_fixed_target_sequence() -> None:
    eval_bank = _bank(3, seed=1)
    ob = _toy(eval_targets=eval_bank).eval()
    images = torch.rand(2, 3, 16, 16, generator=gen(2))
    seen = []
    for _ in range(4):
        ob(images, generator=gen(0))
        seen.append(ob.last_target)
    assert seen == [0, 1, 2, 0]
    ob.eval()  # restarts the sequence
    first = ob(images)
    assert ob.last_target == 0
    ob.train().eval()
    torch.testing.assert_close(ob(images), first)
    shifted = _toy(eval_targets=eval_bank, eval_target_offset=1).eval()
    shifted(images)
    assert shifted.last_target == 1
    assert ob.num_targets(False) == 3 and ob.num_targets(True) == 6


def test_output_contract_dtype_device_and_range() -> None:
    ob = _toy().train()
    for dtype in (torch.float32, torch.float64):
        images = torch.rand(2, 3, 10, 14, generator=gen(4)).to(dtype)
        out = ob(images, generator=gen(1))
        assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not torch.allclose(out, images)
    assert ob(torch.rand(0, 3, 8, 8), generator=gen(0)).shape == (0, 3, 8, 8)


def test_networks_stay_frozen_and_gradient_choice() -> None:
    ob = _toy()
    ob.train()
    images = torch.rand(2, 3, 16, 16, generator=gen(6), requires_grad=True)
    out = ob(images, generator=gen(0))
    assert not out.requires_grad  # default: no graph (PRO-Face uses x_o as data)
    for network in (ob.swapper, ob.identity_encoder):
        assert not network.training
        assert all(not p.requires_grad for p in network.parameters())
    ob.swapper.train()  # even if someone flips them, a call puts them back
    ob(images, generator=gen(0))
    assert not ob.swapper.training

    diff = _toy(differentiable=True).train()
    out = diff(images, generator=gen(0))
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for n in (diff.swapper, diff.identity_encoder) for p in n.parameters())


def test_target_sources(tmp_path: Path) -> None:
    from PIL import Image

    bank = _bank(2, size=8)
    folder = tmp_path / "frontal" / "0"
    folder.mkdir(parents=True)
    for i, image in enumerate(bank):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i:03d}.png")

    class DictDataset:
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> dict:
            return {"image": bank[i], "index": torch.tensor(i)}

    class FakeDataModule:
        def image_dataset(self, split: str) -> list:
            assert split == "val"
            return [(bank[0], 0), (bank[1], 1)]

    images = torch.rand(1, 3, 16, 16, generator=gen(0))
    reference = _toy(targets=bank).eval()(images)
    for source in (
        tmp_path / "frontal",
        str(tmp_path / "frontal"),
        DictDataset(),
        (FakeDataModule(), "val"),
        lambda: bank,
        (bank * 255).round().to(torch.uint8),
    ):
        ob = _toy(targets=source).eval()
        json_ready = ob.describe()
        assert json_ready["name"] == "face_swap" and "kind" in json_ready["targets"]
        torch.testing.assert_close(ob(images), reference, atol=2e-2, rtol=0)  # PNG/uint8 rounding
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        _toy(targets=bank * 2 - 1)
    with pytest.raises(ValueError, match="must be given"):
        FaceSwap(ToySwapper(), ToyEncoder(), None)
    with pytest.raises(FileNotFoundError):
        _toy(targets=tmp_path / "missing").eval()(images)


# ================================================================================================= SimSwap


def _tiny_simswap(**kwargs: object) -> SimSwap:
    options = {"weights": None, "image_size": 32, "generator_options": TINY_G, "arcface_options": TINY_ARC}
    return SimSwap(**{**options, **kwargs})


def test_simswap_random_weights_warn_and_keep_the_contract() -> None:
    ob = _tiny_simswap(targets=_bank(3, size=20))
    assert list(ob.parameters()) == []
    images = torch.rand(2, 3, 24, 20, generator=gen(0))
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        out = ob.train()(images, generator=gen(1))
    assert out.shape == images.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    latent = ob.target_latent(0, training=True)
    assert latent.shape == (8,) and abs(float(latent.norm()) - 1.0) < 1e-5
    assert isinstance(build_obfuscator("simswap", targets=_bank(), weights=None), SimSwap)
    assert "simswap" in FACE_SWAP_OBFUSCATORS and "simswap" not in OBFUSCATORS
    with pytest.raises(ValueError, match=r"unknown obfuscator 'swirl'.*simswap"):
        build_obfuscator("swirl")
    with pytest.raises(ValueError, match="arcface_options only apply"):
        SimSwap(targets=_bank(), arcface_options=TINY_ARC)


def test_simswap_pipeline_is_proface_section_3_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Weights from files; the output equals PRO-Face's recipe computed by hand."""
    torch.manual_seed(0)
    generator = SimSwapGenerator(**TINY_G).eval()
    torch.save(generator.state_dict(), tmp_path / "G.pth")
    _save_arcface(monkeypatch, tmp_path / "arcface_checkpoint.tar", "2023")
    arcface = load_simswap_arcface(tmp_path / "arcface_checkpoint.tar").eval()
    weights = {"generator": tmp_path / "G.pth", "arcface": tmp_path / "arcface_checkpoint.tar"}
    target = _bank(1, size=40, seed=3)
    ob = build_simswap_obfuscator(weights, targets=target, image_size=32, generator_options=TINY_G).eval()
    images = torch.rand(2, 3, 48, 40, generator=gen(7))
    out = ob(images)

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        id_input = F.interpolate((target - mean) / std, size=(112, 112), mode="bilinear", align_corners=False)
        latent = arcface.forward_features(id_input)
        latent = latent / latent.norm(dim=1, keepdim=True)
        x = F.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False)
        swapped = generator(x, latent.expand(2, -1))
        expected = F.interpolate(swapped, size=(48, 40), mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert ob.describe()["weights"] == {k: str(v) for k, v in weights.items()}
    assert isinstance(ob.swapper, SimSwapSwapper) and isinstance(ob.identity_encoder, SimSwapIdentityEncoder)
    assert isinstance(ob.identity_encoder.arcface, SimSwapArcFace)


def test_simswap_missing_or_unpinned_weights_name_the_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    ob = SimSwap(targets=_bank())  # constructing reads nothing
    images = torch.rand(1, 3, 16, 16)
    with pytest.raises(MissingWeightsError) as missing:
        ob.eval()(images)
    message = str(missing.value)
    assert "simswap-generator-224" in message and "python -m src.weights pin simswap-generator-224" in message
    (tmp_path / "weights").mkdir()
    torch.save(SimSwapGenerator(**TINY_G).state_dict(), tmp_path / "weights" / "simswap_224_latest_net_G.pth")
    with pytest.raises(UnpinnedWeightsError, match="python -m src.weights pin simswap-generator-224"):
        SimSwap(targets=_bank(), generator_options=TINY_G).setup()
    with pytest.raises(ValueError, match="exactly the keys"):
        SimSwap(targets=_bank(), weights={"generator": "G.pth"})
