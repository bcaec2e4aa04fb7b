"""Makeup-privacy's BiSeNet face parser: the released state-dict layout, the strict loader's errors and the
test-time parsing pipeline (512-px pass, logits resized to 256, softmax)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.papers.makeup_privacy.parser import BiSeNet, load_parser, parse
from src.weights import MissingWeightsError


def conv(name: str, out: int, inp: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (out, inp, k, k)}


def bn(name: str, channels: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{name}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")}
    return {**shapes, f"{name}.num_batches_tracked": ()}


def conv_bn(name: str, out: int, inp: int, k: int) -> dict[str, tuple[int, ...]]:
    """zllrunning's ConvBNReLU: ``conv`` (no bias) and ``bn``."""
    return {**conv(f"{name}.conv", out, inp, k), **bn(f"{name}.bn", out)}


def block(name: str, inp: int, out: int) -> dict[str, tuple[int, ...]]:
    """resnet.py BasicBlock; ``downsample`` (1×1 conv, BN) only where the width changes."""
    shapes = {**conv(f"{name}.conv1", out, inp, 3), **bn(f"{name}.bn1", out)}
    shapes |= {**conv(f"{name}.conv2", out, out, 3), **bn(f"{name}.bn2", out)}
    if inp != out:
        shapes |= {**conv(f"{name}.downsample.0", out, inp, 1), **bn(f"{name}.downsample.1", out)}
    return shapes


def released_layout() -> dict[str, tuple[int, ...]]:
    """The 79999_iter.pth keys, read off zllrunning's model.py / resnet.py (no ``sp``: the spatial path is
    deleted there and replaced by the ResNet's 1/8 features)."""
    r = "cp.resnet"
    shapes = {**conv(f"{r}.conv1", 64, 3, 7), **bn(f"{r}.bn1", 64)}
    for layer, (inp, out) in enumerate(((64, 64), (64, 128), (128, 256), (256, 512)), start=1):
        shapes |= block(f"{r}.layer{layer}.0", inp, out) | block(f"{r}.layer{layer}.1", out, out)
    for name, inp in (("cp.arm16", 256), ("cp.arm32", 512)):  # AttentionRefinementModule(in, 128)
        shapes |= conv_bn(f"{name}.conv", 128, inp, 3)
        shapes |= conv(f"{name}.conv_atten", 128, 128, 1) | bn(f"{name}.bn_atten", 128)
    shapes |= conv_bn("cp.conv_head32", 128, 128, 3) | conv_bn("cp.conv_head16", 128, 128, 3)
    shapes |= conv_bn("cp.conv_avg", 128, 512, 1)
    shapes |= conv_bn("ffm.convblk", 256, 256, 1)  # FeatureFusionModule(256, 256)
    shapes |= conv("ffm.conv1", 64, 256, 1) | conv("ffm.conv2", 256, 64, 1)
    for name, inp, mid in (("conv_out", 256, 256), ("conv_out16", 128, 64), ("conv_out32", 128, 64)):
        shapes |= conv_bn(f"{name}.conv", mid, inp, 3) | conv(f"{name}.conv_out", 19, mid, 1)
    return shapes


def test_state_dict_names_and_shapes_match_the_released_file() -> None:
    own = {key: tuple(value.shape) for key, value in BiSeNet().state_dict().items()}
    expected = released_layout()
    assert sorted(own) == sorted(expected)
    assert own == expected
    assert len(own) == 191


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return BiSeNet().state_dict()


def test_load_parser_round_trip_and_old_files_without_batch_counters(
    tmp_path: Path, random_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "79999_iter.pth"
    torch.save({k: v for k, v in random_state.items() if not k.endswith("num_batches_tracked")}, path)
    parser = load_parser(path)
    assert not parser.training and not any(p.requires_grad for p in parser.parameters())
    for key, value in parser.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, random_state[key], rtol=0, atol=0)


def test_loader_errors_name_the_file_and_the_keys(
    tmp_path: Path, random_state: dict[str, torch.Tensor]
) -> None:
    broken = dict(random_state)
    del broken["ffm.conv1.weight"]
    broken["sp.conv1.conv.weight"] = torch.zeros(64, 3, 7, 7)
    broken["conv_out.conv_out.weight"] = torch.zeros(18, 256, 1, 1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as info:
        load_parser(path)
    message = str(info.value)
    assert str(path) in message
    assert "1 missing keys: ffm.conv1.weight" in message
    assert "1 unexpected keys: sp.conv1.conv.weight" in message
    assert "conv_out.conv_out.weight (18, 256, 1, 1) vs (19, 256, 1, 1)" in message

    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(ValueError, match=f"{not_a_dict}: expected a state dict"):
        load_parser(not_a_dict)
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(1, 1), pickled)  # a whole pickled module: refused by weights_only
    with pytest.raises(ValueError, match=rf"{pickled}: cannot be read with torch.load\(weights_only=True\)"):
        load_parser(pickled)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_parser(tmp_path / "missing.pth")


def test_manifest_entry_is_resolved_and_its_absence_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="79999_iter.pth"):
        load_parser()


def test_parse_runs_at_the_work_size_and_returns_softmax_maps() -> None:
    torch.manual_seed(1)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        parser = load_parser(None)
    images = torch.rand(1, 3, 24, 24) * 2 - 1  # enlarged to the work size: no antialiasing
    probabilities = parse(parser, images, output_size=16, work_size=32)
    assert probabilities.shape == (1, 19, 16, 16)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(1, 16, 16))
    # by hand: [-1, 1] → [0, 1] → 32 px → ImageNet statistics → logits at 16 px (align_corners) → softmax
    unit = F.interpolate((images + 1) / 2, (32, 32), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = F.interpolate(parser((unit - mean) / std), (16, 16), mode="bilinear", align_corners=True)
    torch.testing.assert_close(probabilities, logits.softmax(dim=1))
    # the authors' scripts feed [-1, 1] pixels; a [0, 1] input gives the same maps
    faithful = parse(
        parser, (images + 1) / 2, input_range="[0,1]", output_size=16, work_size=32, faithful_bugs=True
    )
    with torch.no_grad():
        logits = F.interpolate(parser(unit * 2 - 1), (16, 16), mode="bilinear", align_corners=True)
    torch.testing.assert_close(faithful, logits.softmax(dim=1))
    with pytest.raises(ValueError, match="input_range"):
        parse(parser, images, input_range="0-255")
