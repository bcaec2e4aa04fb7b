"""EG: the released-checkpoint key map (and the test forward against the reference EfficientNet), the frozen
recognizer, the FR input contract and the reconstructed loss terms."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.lightning_modules.sbi_detector import pair_halves
from src.papers.eg.checkpoint import load_eg_checkpoint, original_to_ours, to_original_state_dict
from src.papers.eg.module import DEFAULT_LOSS_WEIGHTS, EGModule, check_loss_weights
from src.papers.eg.network import EGNet

SMALL = {"name": "small_cnn", "input_size": 32}


@functools.cache
def _b4_net() -> EGNet:
    torch.manual_seed(0)
    return EGNet(detector={"name": "efficientnet_b4", "input_size": 64, "input_norm": "none"}).eval()


def _module(**loss_weights: float) -> EGModule:
    torch.manual_seed(0)
    net = EGNet(detector=SMALL)
    return EGModule(net, functools.partial(torch.optim.SGD, lr=0.1), loss_weights=loss_weights or None)


def _pairs(n: int = 3, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    reals = torch.rand(n, 3, size, size, generator=g)
    fakes = reals.clone()
    fakes[:, :, 8:24, 8:24] = torch.rand(n, 3, 16, 16, generator=g)  # a "blended" square
    return {"image": torch.cat([reals, fakes]), "label": torch.tensor([0] * n + [1] * n)}


# --- released checkpoint -------------------------------------------------------------------------------


def test_original_layout_names_every_module_as_the_authors_file_does() -> None:
    state = to_original_state_dict(_b4_net())
    for key in (
        "net._conv_stem.weight",
        "net._blocks.0._depthwise_conv.weight",
        "net._blocks.31._project_conv.weight",
        "net._bn1.running_var",
        "net._fc.weight",
        "bn.running_mean",
        "face_model.conv1.weight",
        "face_model.layer4.1.bn3.weight",
        "face_model.features.weight",
        "face_model.fc.weight",
        "reshape_layer.weight",
        "reconstruction_network.fc.2.bias",
        "fc_cat.bn.weight",
        "fc_cat1.classifier.weight",
        "fc.bias",
    ):
        assert key in state, key
    assert state["reshape_layer.weight"].shape == (2304, 1792)
    assert state["face_model.fc.weight"].shape == (512, 512 * 7 * 7)
    assert not any(k.startswith(("detector.", "net.stages")) for k in state)


def test_released_layout_loads_strictly_and_reproduces_the_outputs(tmp_path: Path) -> None:
    source = _b4_net()
    path = tmp_path / "EG_FF++(raw).tar"
    torch.save({"model": to_original_state_dict(source)}, path)
    torch.manual_seed(7)
    target = EGNet(detector={"name": "efficientnet_b4", "input_size": 64, "input_norm": "none"}).eval()
    x = torch.rand(2, 3, 64, 64)
    assert not torch.allclose(target(x), source(x))
    info = load_eg_checkpoint(target, path)
    assert info["containers"] == ["model"] and info["format"] == "eg-original"
    assert torch.equal(target(x), source(x))
    assert torch.equal(target.face_embedding(x), source.face_embedding(x))


def test_a_wrong_or_incomplete_file_is_refused_naming_the_keys(tmp_path: Path) -> None:
    state = to_original_state_dict(_b4_net())
    broken = dict(state)
    broken.pop("fc_cat.bn.weight")
    broken["net._blocks.40._bn0.weight"] = torch.zeros(3)
    path = tmp_path / "broken.tar"
    torch.save({"model": broken}, path)
    with pytest.raises(ValueError, match=r"missing keys.*fc_cat\.bn\.weight") as error:
        load_eg_checkpoint(_b4_net(), path)
    assert "net._blocks.40._bn0.weight" in str(error.value)
    assert original_to_ours("net._blocks.40._bn0.weight") == "net._blocks.40._bn0.weight"


def test_test_forward_equals_the_reference_efficientnet_with_the_bnneck() -> None:
    """The released inference: lukemelas ``extract_features`` → pool → dropout → ``bn`` → ``_fc``."""
    efficientnet_pytorch = pytest.importorskip("efficientnet_pytorch")
    torch.manual_seed(3)
    reference = efficientnet_pytorch.EfficientNet.from_name("efficientnet-b4", num_classes=2, image_size=64)
    for module in reference.modules():  # non-trivial statistics, so that a mis-mapped BN shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    reference.eval()
    net = _b4_net()
    state = to_original_state_dict(net)
    state.update({f"net.{k}": v for k, v in reference.state_dict().items()})
    net.load_state_dict({original_to_ours(k): v for k, v in state.items()}, strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pooled = reference._avg_pooling(reference.extract_features(x)).flatten(1)
        expected = reference._fc(net.bn(pooled))
        assert torch.allclose(net(x), expected, atol=1e-4, rtol=0)


# --- the frozen recognizer and its input ---------------------------------------------------------------


def test_recognizer_stays_frozen_in_eval_mode_and_untouched_by_a_training_step() -> None:
    module = _module()
    module.train()
    face = module.net.face_model
    assert not face.training and not any(p.requires_grad for p in face.parameters())
    before = {k: v.clone() for k, v in face.state_dict().items()}
    optimizer = module.configure_optimizers()
    assert not {id(p) for p in face.parameters()} & {
        id(p) for g in optimizer.param_groups for p in g["params"]
    }
    loss, _ = module.training_loss(_pairs())
    loss.backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in face.state_dict().items())  # incl. BN statistics


def test_fr_input_contract_resizes_to_112_in_minus_one_to_one_or_feeds_the_crop() -> None:
    images = torch.rand(2, 3, 40, 40)
    arcface = EGNet(detector=SMALL, fr_input="native")
    x = arcface.fr_preprocess(images)
    assert x.shape == (2, 3, 112, 112) and x.min() >= -1 and x.max() <= 1 and x.min() < -0.5
    raw = EGNet(detector=SMALL, fr_input="raw")
    assert raw.fr_preprocess(images) is images
    assert arcface.face_embedding(images).shape == raw.face_embedding(images).shape == (2, 512)
    assert arcface.describe()["fr_input"] == "native"
    with pytest.raises(ValueError, match="fr_input"):
        EGNet(detector=SMALL, fr_input="112")
    dlib = EGNet(detector=SMALL, fr_name="dlib_resnet")  # another zoo recognizer: its own embedding
    assert dlib.face_embedding(images).shape == (2, 128) and dlib.reshape_layer.out_features == 512 + 128
    with pytest.raises(ValueError, match="fr_input=raw needs the IResNet"):
        EGNet(detector=SMALL, fr_name="dlib_resnet", fr_input="raw")


# --- losses --------------------------------------------------------------------------------------------


def test_every_term_is_computed_and_weighted_as_configured() -> None:
    module = _module()
    batch = _pairs()
    loss, logs = module.training_loss(batch)
    terms = {k.removeprefix("loss_"): v for k, v in logs.items() if k.startswith("loss_")}
    assert set(terms) == set(DEFAULT_LOSS_WEIGHTS)
    expected = sum(DEFAULT_LOSS_WEIGHTS[k] * v for k, v in terms.items())
    assert torch.isclose(loss, expected)
    net = module.net
    with torch.no_grad():  # the main term is the test-time head's cross-entropy, exactly
        assert torch.isclose(terms["cls"], F.cross_entropy(net(batch["image"]), batch["label"]))


def test_the_frozen_embedding_is_computed_once_per_batch_even_under_sam() -> None:
    module = _module()
    batch = _pairs()
    calls = []
    original = module.net.face_embedding
    module.net.face_embedding = lambda images: calls.append(1) or original(images)  # type: ignore[method-assign]
    first, _ = module.training_loss(batch)
    second, _ = module.training_loss(batch)  # SAM's second pass gets the same batch dict
    assert len(calls) == 1 and torch.isclose(first, second)


def test_distillation_target_is_the_embedding_discrepancy_of_each_pair() -> None:
    module = _module(residual=0, fused=0, fr=0, rc=0)
    module.eval()  # no dropout: the recomputation below sees the same features
    batch = _pairs()
    _, logs = module.training_loss(batch)
    net, n = module.net, 3
    with torch.no_grad():
        f = net.artifact_features(batch["image"])
        e = net.face_embedding(batch["image"])
        delta = torch.cat([torch.zeros(n, 512), e[n:] - e[:n]])
        expected = F.mse_loss(net.reshape_layer(f), torch.cat([f, delta], 1))
    assert torch.isclose(logs["loss_distill"], expected)


@pytest.mark.parametrize("off", ["residual", "fused", "fr", "distill", "rc"])
def test_a_zero_weight_skips_the_term_and_its_gradients(off: str) -> None:
    module = _module(**{off: 0.0})
    loss, logs = module.training_loss(_pairs())
    assert f"loss_{off}" not in logs
    loss.backward()
    heads = {"residual": "fc_cat", "fused": "fc_cat1", "fr": "fc", "rc": "reconstruction_network"}
    if off in heads:
        grads = [p.grad for p in getattr(module.net, heads[off]).parameters() if p.requires_grad]
        assert all(g is None for g in grads), f"{heads[off]} trained although {off} is off"


def test_loss_weights_and_batches_are_checked() -> None:
    assert check_loss_weights({"rc": 0})["rc"] == 0.0
    with pytest.raises(ValueError, match="unknown term 'distil'"):
        check_loss_weights({"distil": 0.4})
    with pytest.raises(ValueError, match="cls must be > 0"):
        check_loss_weights({"cls": 0})
    with pytest.raises(ValueError, match=">= 0"):
        check_loss_weights({"fr": -1})
    with pytest.raises(ValueError, match=r"pair batches \[reals; fakes\]"):
        pair_halves({"label": torch.tensor([0, 1, 0, 1])})
    with pytest.raises(TypeError, match="EGNet"):
        EGModule(torch.nn.Linear(2, 2), functools.partial(torch.optim.SGD, lr=0.1))
