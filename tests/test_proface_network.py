"""Unit tests of the PRO-Face fusion network (``src.papers.proface.networks``), CPU only, no weights needed.

Sizes and key names are those of the authors' released checkpoints (``shared/fixtures/proface_release``
README); when that folder is present the key list is also compared with a released file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from src.papers.proface.networks import ProFaceFusionNet, load_released_proface
from tests.conftest import SHARED

RELEASED_PTH = SHARED / "fixtures" / "proface_release" / "blur_31_2_8_IResNet50_ep13_BEST.pth"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def images(n: int, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def net() -> ProFaceFusionNet:
    torch.manual_seed(0)
    return ProFaceFusionNet()


def test_parameter_count(net: ProFaceFusionNet) -> None:
    assert n_params(net) == 217_062
    assert n_params(net.oImgNet) == n_params(net.tImgNet) == 108_531
    assert n_params(net.oImgNet.final_conv_1x1) == 165  # unused by forward, but in the paper's count
    floats = sum(v.numel() for v in net.state_dict().values() if v.is_floating_point())
    assert floats == 224_086  # parameters + 7,024 BatchNorm running statistics


def test_branches_are_not_shared(net: ProFaceFusionNet) -> None:
    ids_o = {id(p) for p in net.oImgNet.parameters()}
    assert ids_o.isdisjoint(id(p) for p in net.tImgNet.parameters())


@pytest.mark.parametrize("size", [(32, 32), (112, 112), (24, 40)], ids=str)
def test_output_shape_and_dtype(net: ProFaceFusionNet, size: tuple[int, int]) -> None:
    net.eval()
    x, xo = images(2, *size, seed=1), images(2, *size, seed=2)
    with torch.no_grad():
        out = net(x, xo)
    assert out.shape == x.shape
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [(30, 32), (32, 36), (112, 100), (4, 4)], ids=str)
def test_size_not_divisible_by_8_raises(net: ProFaceFusionNet, size: tuple[int, int]) -> None:
    x = images(1, *size)
    with pytest.raises(ValueError, match=r"H and W must be divisible by 8, got \d+x\d+"):
        net(x, x)


def test_bad_input_shapes_raise(net: ProFaceFusionNet) -> None:
    with pytest.raises(ValueError, match="same shape"):
        net(images(1, 32, 32), images(1, 32, 40))
    with pytest.raises(ValueError, match=r"must be \[N, 3, H, W\]"):
        net(images(1)[:, :1], images(1)[:, :1])
    with pytest.raises(ValueError, match=r"must be \[N, 3, H, W\]"):
        net(images(1)[0], images(1)[0])


def test_other_widths_and_depths() -> None:
    small = ProFaceFusionNet(stem_channels=8, growth_rate=2, bn_size=2, num_layers=2, num_levels=2)
    assert small.size_multiple == 4
    x = images(2, 12, 20)
    assert small.eval()(x, x).shape == x.shape
    with pytest.raises(ValueError, match="divisible by 4"):
        small(images(1, 10, 12), images(1, 10, 12))
    with pytest.raises(ValueError, match="num_levels must be >= 1"):
        ProFaceFusionNet(num_levels=0)
    with pytest.raises(ValueError, match="dropout"):
        ProFaceFusionNet(dropout=1.0)


def test_per_sample_independence_in_eval_mode(net: ProFaceFusionNet) -> None:
    net.eval()
    x, xo = images(3, seed=3), images(3, seed=4)
    with torch.no_grad():
        batch = net(x, xo)
        alone = torch.cat([net(x[i : i + 1], xo[i : i + 1]) for i in range(3)])
        # changing one sample leaves the others untouched
        x2 = x.clone()
        x2[0] = -x2[0]
        changed = net(x2, xo)
    torch.testing.assert_close(batch, alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(changed[1:], batch[1:], rtol=0, atol=1e-5)
    assert (changed[0] - batch[0]).abs().max() > 1e-3


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    net = ProFaceFusionNet()  # own copy: train-mode passes update the BatchNorm running statistics
    x, xo = images(2, seed=5), images(2, seed=6)
    with torch.no_grad():
        net.eval()
        assert torch.equal(net(x, xo), net(x, xo))
        net.train()
        torch.manual_seed(0)
        a = net(x, xo)
        torch.manual_seed(1)
        b = net(x, xo)
    assert not torch.equal(a, b)


def test_gradients_reach_both_branches() -> None:
    torch.manual_seed(0)
    net = ProFaceFusionNet().train()
    x = images(2, seed=7).requires_grad_(True)
    xo = images(2, seed=8).requires_grad_(True)
    net(x, xo).square().mean().backward()
    for branch in (net.oImgNet, net.tImgNet):
        for name, p in branch.named_parameters():
            if name.startswith("final_conv_1x1."):
                assert p.grad is None, f"{name}: final_conv_1x1 is unused by forward"
            else:
                assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert xo.grad is not None and xo.grad.abs().sum() > 0


# --------------------------------------------------------------------------------- state-dict layout (README)

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# A few shapes the fixture README lists, per branch (both branches are identical).
LISTED_SHAPES = {
    "initial.conv0.weight": (16, 3, 3, 3),
    "encode_block0.denselayer1.conv1.weight": (16, 16, 1, 1),
    "encode_block0.denselayer1.conv2.weight": (4, 16, 3, 3),
    "encode_block1.denselayer3.norm1.running_var": (36,),
    "encode_block2.denselayer3.conv1.weight": (16, 48, 1, 1),
    "encode_trans2.conv.weight": (52, 52, 1, 1),
    "bottom_block.conv0.weight": (52, 52, 3, 3),
    "bottom_block.norm0.num_batches_tracked": (),
    "decode_trans0.deconv.weight": (52, 26, 2, 2),
    "decode_trans1.deconv.bias": (45,),
    "decode_trans2.norm.weight": (97,),
    "decode_block0.denselayer1.conv1.weight": (16, 78, 1, 1),
    "decode_block1.denselayer3.norm1.weight": (93,),
    "decode_block2.denselayer1.conv1.weight": (16, 76, 1, 1),
    "unpool0.conv0.weight": (3, 90, 3, 3),
    "unpool0.pool0.weight": (3, 3, 4, 4),
    "unpool1.conv0.weight": (3, 97, 3, 3),
    "unpool1.pool0.weight": (3, 3, 2, 2),
    "unpool2.conv0.weight": (3, 88, 3, 3),
    "unpool2.pool0.weight": (3, 3, 1, 1),
    "unpool2.pool0.bias": (3,),
    "final_conv_1x1.conv0.weight": (6, 3, 3, 3),
    "final_conv_1x1.conv0.bias": (3,),
}


def readme_branch_keys() -> list[str]:
    """The per-branch key list in file order, built from the fixture README's description."""
    keys = ["initial.conv0.weight", *(f"initial.norm0.{s}" for s in BN_SUFFIXES)]

    def block(name: str) -> list[str]:
        out = []
        for j in (1, 2, 3):
            p = f"{name}.denselayer{j}"
            out += [f"{p}.norm1.{s}" for s in BN_SUFFIXES] + [f"{p}.conv1.weight"]
            out += [f"{p}.norm2.{s}" for s in BN_SUFFIXES] + [f"{p}.conv2.weight"]
        return out

    for i in range(3):
        keys += block(f"encode_block{i}")
        keys += [f"encode_trans{i}.norm.{s}" for s in BN_SUFFIXES] + [f"encode_trans{i}.conv.weight"]
    keys += ["bottom_block.conv0.weight", *(f"bottom_block.norm0.{s}" for s in BN_SUFFIXES)]
    for i in range(3):
        keys += [f"decode_trans{i}.norm.{s}" for s in BN_SUFFIXES]
        keys += [f"decode_trans{i}.deconv.weight", f"decode_trans{i}.deconv.bias"]
        keys += block(f"decode_block{i}")
        keys += [f"unpool{i}.conv0.weight", f"unpool{i}.pool0.weight", f"unpool{i}.pool0.bias"]
    return [*keys, "final_conv_1x1.conv0.weight", "final_conv_1x1.conv0.bias"]


def test_state_dict_keys_and_shapes_match_readme(net: ProFaceFusionNet) -> None:
    state = net.state_dict()
    branch = readme_branch_keys()
    assert len(branch) == 278
    assert list(state) == [f"oImgNet.{k}" for k in branch] + [f"tImgNet.{k}" for k in branch]
    suffixes = Counter(k.rsplit(".", 1)[1] for k in state)
    assert suffixes == {
        "weight": 190,
        "bias": 102,
        "running_mean": 88,
        "running_var": 88,
        "num_batches_tracked": 88,
    }
    for prefix in ("oImgNet.", "tImgNet."):
        for key, shape in LISTED_SHAPES.items():
            assert tuple(state[prefix + key].shape) == shape, prefix + key
    assert all(v.dtype == torch.int64 for k, v in state.items() if k.endswith("num_batches_tracked"))


def test_state_dict_equals_released_file_layout(net: ProFaceFusionNet) -> None:
    if not RELEASED_PTH.is_file():
        pytest.skip(f"released checkpoint not available: {RELEASED_PTH}")
    released = torch.load(RELEASED_PTH, map_location="cpu", weights_only=True)
    ours = net.state_dict()
    assert list(released) == list(ours)  # same names, same order
    assert {k: tuple(v.shape) for k, v in released.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert {k: v.dtype for k, v in released.items()} == {k: v.dtype for k, v in ours.items()}


# ----------------------------------------------------------------------------------------------- loader


def test_loader_round_trip(tmp_path: Path, net: ProFaceFusionNet) -> None:
    path = tmp_path / "embedder.pth"
    torch.save(net.state_dict(), path)
    loaded = load_released_proface(path)
    assert not loaded.training
    x = images(1, seed=9)
    net.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x, -x), net(x, -x))


def test_loader_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "embedder.pth"
    with pytest.raises(FileNotFoundError, match=str(path)):
        load_released_proface(path)


def test_loader_wrong_keys_names_them(tmp_path: Path, net: ProFaceFusionNet) -> None:
    state = dict(net.state_dict())
    state["oImgNet.extra.weight"] = state.pop("oImgNet.initial.conv0.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as info:
        load_released_proface(path)
    message = str(info.value)
    assert str(path) in message
    assert "1 missing keys [oImgNet.initial.conv0.weight]" in message
    assert "1 unexpected keys [oImgNet.extra.weight]" in message


def test_loader_wrapped_or_reshaped_state_fails_clearly(tmp_path: Path, net: ProFaceFusionNet) -> None:
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": net.state_dict()}, wrapped)
    with pytest.raises(ValueError, match=r"556 missing keys .*1 unexpected keys \[state_dict\]"):
        load_released_proface(wrapped)
    state = dict(net.state_dict())
    state["tImgNet.unpool0.pool0.bias"] = torch.zeros(4)
    reshaped = tmp_path / "reshaped.pth"
    torch.save(state, reshaped)
    with pytest.raises(ValueError, match=r"1 shape mismatches: \[tImgNet.unpool0.pool0.bias: file \(4,\)"):
        load_released_proface(reshaped)
