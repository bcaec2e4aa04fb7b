"""PRO-Face's five recognizers by their PRO-Face names: zoo names, input contract, manifest entries, weights.

Weights are never real here: random init (``weights=None``), tiny random checkpoints written in the published
layout, and the manifest path exercised with an isolated weights dir and a locally pinned file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from src.networks.recognizers import RECOGNIZERS, build_recognizer, to_published_state_dict
from src.papers.proface.recognizers import (
    PROFACE_RECOGNIZERS,
    RandomWeightsWarning,
    build_proface_recognizer,
    proface_recognizer_spec,
)
from src.weights import ChecksumMismatchError, MissingWeightsError, UnpinnedWeightsError, load_manifest
from src.weights.__main__ import main as weights_cli
from tests.test_recognizer_zoo import _randomize, reference_mobilefacenet_wujiyang

# PRO-Face face/face_recognizer.py model_options (docs/papers/proface.md, "Frozen recognizers E"): name → (zoo
# name, input side, embedding dim, output L2-normalised by PRO-Face's module, manifest entry).
EXPECTED = {
    "MobileFaceNet": ("mobilefacenet_casia", 112, 128, False, "proface-mobilefacenet-casia"),
    "InceptionResNet": ("facenet_vggface2", 160, 512, True, "facenet-vggface2"),
    "IResNet50": ("ir50_casia", 112, 512, False, "proface-ir50-casia"),
    "IResNet100": ("iresnet100", 112, 512, False, "proface-iresnet100"),
    "SEResNet50": ("ir_se50_casia", 112, 512, False, "proface-ir-se50-casia"),
}
MOBILEFACENET_WEIGHTS = "proface-mobilefacenet-casia"


@pytest.fixture
def isolated_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights dir (and torch home); returns the weights dir."""
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "weights"


def test_proface_names_map_to_zoo_names_and_manifest_entries() -> None:
    manifest = load_manifest()
    assert list(PROFACE_RECOGNIZERS) == list(EXPECTED)
    for name, (zoo, size, dim, l2, weights) in EXPECTED.items():
        spec = proface_recognizer_spec(name)
        assert (spec.zoo_name, spec.input_size, spec.embedding_dim) == (zoo, size, dim)
        assert (spec.l2_normalized_output, spec.weights) == (l2, weights)
        assert spec.zoo_name in RECOGNIZERS
        assert "proface" in manifest[spec.weights].papers
        assert (spec.channel_order, spec.mean, spec.std) == ("RGB", (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(
        ValueError, match="unknown PRO-Face recognizer 'ArcFace'.*MobileFaceNet, InceptionResNet"
    ):
        proface_recognizer_spec("ArcFace")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_random_init_build_is_frozen_with_proface_input_contract(name: str) -> None:
    spec = proface_recognizer_spec(name)
    with pytest.warns(
        RandomWeightsWarning, match=rf"'{name}'.*RANDOM weights.*synthetic runs and tests only"
    ):
        model = build_proface_recognizer(name, weights=None)
    assert model.proface_load_report is None
    assert spec.checkpoint_format in model.checkpoint_formats
    assert tuple(model.input_size) == (spec.input_size,) * 2 and model.embedding_dim == spec.embedding_dim
    info = model.describe()
    assert (info["channel_order"], info["mean"], info["std"]) == ("RGB", [0.5] * 3, [0.5] * 3)
    # PRO-Face feeds [-1, 1] RGB tensors straight into the network: preprocessing is the identity on them
    images = torch.rand(1, 3, *model.input_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(model.preprocess(images, input_range="[-1,1]"), images)
    model.train()
    assert not any(module.training for module in model.modules())
    assert not any(parameter.requires_grad for parameter in model.parameters())


def test_unfrozen_build_on_request() -> None:
    with pytest.warns(RandomWeightsWarning):
        model = build_proface_recognizer("MobileFaceNet", weights=None, freeze=False)
    assert model.training and all(parameter.requires_grad for parameter in model.parameters())


def test_build_from_a_published_file(tmp_path: Path) -> None:
    source = _randomize(build_recognizer("mobilefacenet_casia"), seed=11).eval()
    published = to_published_state_dict(source, "proface")  # PRO-Face's MobileFacenet names, bare state dict
    path = tmp_path / "Iter_64000_net.pth"
    torch.save(published, path)
    for weights in (path, str(path)):
        model = build_proface_recognizer("MobileFaceNet", weights=weights)
        report = model.proface_load_report
        assert report is not None and report.format == "proface" and report.containers == ()
        assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        expected = reference_mobilefacenet_wujiyang(published, x, "proface")
        torch.testing.assert_close(model.forward_features(x), expected, rtol=1e-4, atol=1e-4)
    # TreB1eN's 128-d MobileFaceNet is another layout: refused, naming the keys
    wrong = tmp_path / "treb1en.pth"
    torch.save(
        to_published_state_dict(build_recognizer("mobilefacenet", embedding_dim=128), "treb1en"), wrong
    )
    with pytest.raises(ValueError, match=r"format 'proface'.*missing keys.*conv3\.conv\.weight.*unexpected"):
        build_proface_recognizer("MobileFaceNet", weights=wrong)


def test_manifest_weights_missing_then_unpinned_then_pinned(
    isolated_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = load_manifest()[MOBILEFACENET_WEIGHTS]
    assert entry.sha256 is None and not entry.sha256_complete  # no digest is published for the CASIA files
    with pytest.raises(MissingWeightsError) as info:
        build_proface_recognizer("MobileFaceNet")
    message = str(info.value)
    assert "PRO-Face recognizer 'MobileFaceNet'" in message
    assert "face/checkpoints/CASIA_WebFace_MobileFaceNet/Iter_64000_net.pth" in message
    assert str(isolated_weights / entry.file) in message
    assert f"python -m src.weights pin {MOBILEFACENET_WEIGHTS} --file <downloaded file>" in message

    source = _randomize(build_recognizer("mobilefacenet_casia"), seed=13)
    download = tmp_path / "download" / "Iter_64000_net.pth"
    download.parent.mkdir()
    torch.save(to_published_state_dict(source, "proface"), download)
    isolated_weights.mkdir()
    placed = isolated_weights / entry.file
    placed.write_bytes(download.read_bytes())
    with pytest.raises(UnpinnedWeightsError) as info:
        build_proface_recognizer("MobileFaceNet")
    assert f"python -m src.weights pin {MOBILEFACENET_WEIGHTS} --file {placed}" in str(info.value)

    placed.unlink()  # the pin command copies a file from elsewhere into the weights dir
    assert weights_cli(["pin", MOBILEFACENET_WEIGHTS, "--file", str(download)]) == 0
    assert "PINNED" in capsys.readouterr().out and placed.read_bytes() == download.read_bytes()
    model = build_proface_recognizer("MobileFaceNet")
    assert model.proface_load_report.sha256 == hashlib.sha256(download.read_bytes()).hexdigest()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())

    torch.save(
        to_published_state_dict(_randomize(source, seed=14), "proface"), placed
    )  # changed after pinning
    with pytest.raises(ChecksumMismatchError, match=r"does not match its local pin.*--replace"):
        build_proface_recognizer("MobileFaceNet")


def test_published_digest_entry_names_the_fetch_command(isolated_weights: Path) -> None:
    with pytest.raises(MissingWeightsError) as info:
        build_proface_recognizer("InceptionResNet")
    message = str(info.value)
    assert "PRO-Face recognizer 'InceptionResNet'" in message and "20180402-114759-vggface2.pt" in message
    assert "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b" in message
    assert "python -m src.weights fetch facenet-vggface2" in message
