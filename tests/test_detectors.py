"""The detector zoo: every network builds, takes a step through FrameDetectorModule, loads timm-layout
ImageNet weights from a file, and refuses missing weights with the manifest's message."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import timm
import torch

from src.lightning_modules.frame_detector import FrameDetectorModule, is_sam
from src.networks.detectors import DETECTORS, build_detector_net
from src.optim.sam import SAM
from src.papers.detection_baselines.settings import COST_ENTRIES_BY_NETWORK
from src.weights import MissingWeightsError


def test_registry_lists_the_zoo_and_names_unknown_ones() -> None:
    assert {"xception", "efficientnet_b4", "small_cnn"} <= set(DETECTORS)
    with pytest.raises(ValueError, match="unknown detector network 'resnet'; available: .*xception"):
        build_detector_net("resnet")
    with pytest.raises(ValueError, match="input_norm must be one of"):
        build_detector_net("small_cnn", input_norm="zscore")


@pytest.mark.parametrize("name", ["xception", "efficientnet_b4", "small_cnn"])
def test_each_detector_takes_a_training_step(name: str) -> None:
    """The real architectures (not the tests' stand-in) through one optimisation step at 64 px."""
    torch.manual_seed(0)
    net = build_detector_net(name, input_size=64)
    module = FrameDetectorModule(net, functools.partial(torch.optim.SGD, lr=0.1))
    optimizer = module.configure_optimizers()
    batch = {"image": torch.rand(2, 3, 64, 64), "label": torch.tensor([0, 1])}
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    loss, logs = module.training_loss(batch)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and set(logs) == {"loss", "acc"}
    assert any(not torch.equal(before[k], p) for k, p in net.named_parameters())
    assert net(batch["image"]).shape == (2, 2)


@pytest.mark.parametrize(
    ("name", "channels"), [("xception", 1024), ("efficientnet_b4", 448), ("small_cnn", 512)]
)
def test_feature_map_pools_to_the_features_and_the_last_block_is_the_final_feature_block(
    name: str, channels: int
) -> None:
    net = build_detector_net(name).eval()
    x = torch.rand(1, 3, 64, 64)
    seen: list[torch.Tensor] = []
    hook = net.last_block.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        feature_map = net.feature_map(x)
        assert torch.allclose(net.pool(feature_map), net.features(x), atol=1e-6)
    hook.remove()
    assert feature_map.shape[1] == net.feature_dim and seen[0].shape[1] == channels
    assert seen[0].shape[-2:] == feature_map.shape[-2:]  # the last block works at the final resolution
    assert net.describe()["last_block"] == net.last_block_path


@pytest.mark.parametrize("network", sorted(COST_ENTRIES_BY_NETWORK))
def test_published_parameter_counts(network: str) -> None:
    with torch.device("meta"):
        net = COST_ENTRIES_BY_NETWORK[network].build()
    assert sum(p.numel() for p in net.parameters()) == COST_ENTRIES_BY_NETWORK[network].params


def test_imagenet_weights_load_from_a_timm_layout_file(tmp_path: Path) -> None:
    """A checkpoint in the published layout (timm's own, 1000-class head) loads; the head is new."""
    reference = timm.create_model("resnet10t")  # same layout rules as the published files, small
    path = tmp_path / "resnet10t-imagenet.pth"
    torch.save(reference.state_dict(), path)
    net = build_detector_net("small_cnn", weights=str(path))
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key
    assert net.head[1].weight.shape == (2, net.feature_dim)
    with pytest.raises(FileNotFoundError, match="detector weights not found"):
        build_detector_net("small_cnn", weights=str(tmp_path / "absent.pth"))


def test_missing_manifest_weights_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError, match=r"xception-43020ad28\.pth"):
        build_detector_net("xception", weights="manifest:timm-legacy-xception")
    with pytest.raises(MissingWeightsError, match=r"tf_efficientnet_b4_ap-dedb23e6\.pth"):
        build_detector_net("efficientnet_b4", weights="manifest:timm-efficientnet-b4-advprop")


def test_input_normalisation() -> None:
    x = torch.full((1, 3, 8, 8), 0.5)
    assert torch.equal(build_detector_net("small_cnn", input_norm="none").normalise(x), x)
    assert torch.equal(build_detector_net("small_cnn", input_norm="half").normalise(x), torch.zeros_like(x))
    imagenet = build_detector_net("small_cnn", input_norm="imagenet").normalise(x)
    assert imagenet[0, :, 0, 0].tolist() == pytest.approx(
        [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    )


def test_sam_factory_switches_to_manual_optimisation() -> None:
    sam = functools.partial(SAM, base_optimizer=functools.partial(torch.optim.SGD), lr=0.1)
    assert is_sam(sam) and not is_sam(functools.partial(torch.optim.Adam))
    module = FrameDetectorModule(build_detector_net("small_cnn"), sam)
    assert module.automatic_optimization is False
