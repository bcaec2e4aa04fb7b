"""The leaderboard panel's recognizers (src.leaderboarding.recognizers): building from a spec, embedding faces
of any size, clear errors, missing weights reported as unavailable, and the used-in-training rule."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.leaderboarding.recognizers import (
    PanelRecognizer,
    RecognizerUnavailable,
    build_panel_recognizer,
    used_in_training,
)
from src.networks.iresnet import IResNet
from src.networks.recognizers.dlib_resnet import DLIB_RESNET_SHA256
from src.utils.checkpoint_files import RECORD_KEY, installed_lightning_version

NET_CONFIG = {
    "_target_": "src.networks.iresnet.IResNet",
    "layers": [1, 1],
    "widths": [8, 16],
    "stem_channels": 8,
    "embedding_dim": 16,
    "input_size": 16,
    "stem_stride": 1,
}


def _checkpoint(path: Path, seed: int = 0, attribute: str = "net") -> Path:
    """A training-run checkpoint shaped like ours whose embedded config builds ``model.<attribute>``."""
    torch.manual_seed(seed)
    net = IResNet(**{key: value for key, value in NET_CONFIG.items() if key != "_target_"})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {f"{attribute}.{key}": value for key, value in net.state_dict().items()},
            "pytorch-lightning_version": installed_lightning_version(),
            RECORD_KEY: {"config": {"model": {"_target_": "x", attribute: NET_CONFIG}}},
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def dlib() -> PanelRecognizer:
    return build_panel_recognizer({"name": "dlib", "zoo": "dlib_resnet"})


@pytest.fixture
def demo(tmp_path: Path) -> PanelRecognizer:
    return build_panel_recognizer(
        {"name": "demo", "checkpoint": str(_checkpoint(tmp_path / "run" / "best.ckpt"))}
    )


def test_checkpoint_recognizer_embeds_any_size_normalised(demo: PanelRecognizer, tmp_path: Path) -> None:
    assert demo.source["kind"] == "checkpoint" and demo.source["checkpoint"] == str(
        tmp_path / "run" / "best.ckpt"
    )
    assert demo.source["attribute"] == "net" and len(demo.source["sha256"]) == 64
    assert not demo.network.training and not any(p.requires_grad for p in demo.network.parameters())
    images = torch.rand(5, 3, 40, 24, dtype=torch.float64)
    embeddings = demo.embed(images, batch_size=2)
    assert embeddings.shape == (5, 16) and embeddings.dtype == torch.float32
    np.testing.assert_allclose(embeddings.norm(dim=1).numpy(), 1.0, atol=1e-5)
    # reference: resize to the network's 16 px by hand, run it, normalise with numpy
    resized = F.interpolate(
        images.float(), size=(16, 16), mode="bilinear", align_corners=False, antialias=True
    )
    with torch.no_grad():
        raw = demo.network(resized).numpy()
    reference = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(embeddings.numpy(), reference, atol=1e-5)
    np.testing.assert_allclose(
        demo.embed(images[:, :, :16, :16]).numpy(), demo.embed(images[:, :, :16, :16], 64).numpy()
    )
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        demo.embed(torch.rand(2, 1, 16, 16))


def test_zoo_recognizer_uses_its_packaged_weights_and_own_preprocessing(dlib: PanelRecognizer) -> None:
    source = dlib.source
    assert source["kind"] == "zoo" and source["zoo"] == "dlib_resnet"
    assert source["manifest"] == "dlib-face-recognition-resnet" and source["sha256"] == DLIB_RESNET_SHA256
    assert Path(source["weights"]).name == "dlib_face_recognition_resnet_model_v1.dat"
    images = torch.rand(3, 3, 48, 48)
    embeddings = dlib.embed(images)
    assert embeddings.shape == (3, 128)
    reference = dlib.network.embed(images, resize=True)  # the network's own preprocess (150 px, dlib means)
    np.testing.assert_allclose(embeddings.numpy(), reference.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "zoo": "dlib_resnet", "weight": "a"}, "unknown key.*weight"),
        ({"name": "x", "zoo": "dlib_resnet", "checkpoint": "a.ckpt"}, "exactly one of.*both"),
        ({"name": "x"}, "exactly one of.*neither"),
        ({"zoo": "dlib_resnet"}, "'name'"),
        ({"name": "x", "zoo": "no_such_net"}, "'zoo'.*no_such_net"),
        ({"name": "x", "zoo": "iresnet18"}, "no default weights.*'weights'"),
        ({"name": "x", "checkpoint": "a.ckpt", "weights": "w.pth"}, "weights.*do not apply to a checkpoint"),
        ({"name": "x", "zoo": "dlib_resnet", "attribute": "net"}, "attribute.*do not apply to a zoo"),
        ({"name": "x", "zoo": "dlib_resnet", "options": [1]}, "'options'"),
        ("dlib_resnet", "must be a mapping"),
    ],
)
def test_malformed_specs_name_the_key(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        build_panel_recognizer(spec)
    assert not isinstance(info.value, RecognizerUnavailable)


def test_missing_weights_make_the_recognizer_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(RecognizerUnavailable) as info:  # the manifest's file is not on this machine
        build_panel_recognizer({"name": "facenet", "zoo": "facenet_vggface2"})
    message = str(info.value)
    assert "'facenet'" in message and "20180402-114759-vggface2.pt" in message
    assert f"Put it at {tmp_path / 'weights' / '20180402-114759-vggface2.pt'}" in message
    assert isinstance(info.value, ValueError)
    with pytest.raises(RecognizerUnavailable, match=f"weights file not found: {tmp_path / 'nope.pth'}"):
        build_panel_recognizer({"name": "x", "zoo": "ir_se50", "weights": str(tmp_path / "nope.pth")})
    with pytest.raises(RecognizerUnavailable, match=f"checkpoint not found: {tmp_path / 'missing.ckpt'}"):
        build_panel_recognizer({"name": "x", "checkpoint": str(tmp_path / "missing.ckpt")})


def _config(recognizer: Any) -> dict[str, Any]:
    """A method's training config with ``recognizer`` deep inside its model section."""
    return {
        "seed": 0,
        "model": {"_target_": "m", "losses": {"identity": [{"weight": 1.0}, {"recognizer": recognizer}]}},
    }


def test_used_in_training_checkpoint_recognizer(demo: PanelRecognizer, tmp_path: Path) -> None:
    path = demo.source["checkpoint"]
    loader = {"_target_": "src.utils.checkpoints.load_network", "path": path, "attribute": "net"}
    reason = used_in_training(demo, _config(loader))
    assert reason is not None and "model.losses.identity[1].recognizer.path" in reason and path in reason
    copy = tmp_path / "elsewhere" / "copy.ckpt"  # the same file under another name: same size and sha256
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    assert used_in_training(demo, _config({**loader, "path": str(copy)})) is not None
    other = _checkpoint(tmp_path / "other" / "best.ckpt", seed=1)  # same name and size, other weights
    assert Path(other).stat().st_size == Path(path).stat().st_size
    assert used_in_training(demo, _config({**loader, "path": str(other)})) is None
    # a config from another machine: the same file name in the same two folders
    elsewhere = f"/far/away/{Path(path).parent.parent.name}/run/best.ckpt"
    assert used_in_training(demo, _config({**loader, "path": elsewhere})) is not None
    assert used_in_training(demo, _config({**loader, "path": "/far/away/other/run/best.ckpt"})) is None
    assert (
        used_in_training(demo, {"seed": 0, "data": {"path": path}, "model": {"x": 1}}) is None
    )  # model only
    assert used_in_training(demo, {"recognizer": {"path": path}}) is not None  # a bare model section


def test_used_in_training_zoo_recognizer_with_implicit_weights(dlib: PanelRecognizer, tmp_path: Path) -> None:
    built = {"_target_": "src.networks.recognizers.build_recognizer", "name": "dlib_resnet"}
    reason = used_in_training(dlib, _config(built))
    assert reason is not None and "dlib_resnet" in reason and "model.losses.identity[1].recognizer" in reason
    assert used_in_training(dlib, _config({"fr_name": "dlib_resnet", "fr_weights": None})) is not None
    assert used_in_training(dlib, _config("manifest:dlib-face-recognition-resnet")) is not None
    assert used_in_training(dlib, _config({**built, "path": dlib.source["weights"]})) is not None
    other = tmp_path / "retrained.dat"
    other.write_bytes(b"another network")
    assert used_in_training(dlib, _config({**built, "path": str(other)})) is None
    assert used_in_training(dlib, _config({"name": "ir_se50", "weights": "manifest:treb1en-ir-se50"})) is None
    assert used_in_training(dlib, {"model": {"judge": "dlib_resnet"}}) is None  # a bare string is no network
    # test-time judges never shape training: the same recognizer there may judge the method
    assert used_in_training(dlib, {"model": {"evaluators": {"dlib": built}, "judges": [built]}}) is None


def test_used_in_training_zoo_recognizer_needs_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "w" / "model_ir_se50.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"published weights")
    source = {"kind": "zoo", "zoo": "ir_se50", "weights": str(weights), "manifest": None}
    source.update(
        size_bytes=weights.stat().st_size, sha256=None, default_weights=False, implicit_default=False
    )
    panel = PanelRecognizer("arcface", nn.Identity(), source)
    zoo = {"_target_": "src.networks.recognizers.pretrained.pretrained_recognizer", "name": "ir_se50"}
    assert used_in_training(panel, _config({**zoo, "weights": str(weights)})) is not None
    different = tmp_path / "v" / "model_ir_se50.pth"
    different.parent.mkdir()
    different.write_bytes(b"finetuned weights")
    assert used_in_training(panel, _config({**zoo, "weights": str(different)})) is None
    assert used_in_training(panel, _config({**zoo, "weights": None})) is None  # random weights: another net
    # files too large to hash cheaply are compared by name and size only (both 17 bytes, same name)
    monkeypatch.setattr("src.leaderboarding.recognizers.CHEAP_HASH_BYTES", 0)
    assert used_in_training(panel, _config({**zoo, "weights": str(different)})) is not None
    with pytest.raises(ValueError, match="mapping"):
        used_in_training(panel, [zoo])  # type: ignore[arg-type]
