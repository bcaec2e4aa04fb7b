"""The served ``detection_baselines`` detector: the module's own test-time score, its crop and size from the
checkpoint, and the refusal of another paper's checkpoint.

Tiny untrained checkpoints come from ``write_tiny_checkpoint``; no experiment used here leaves a ``???`` key
open, so they are built without the (trained) ``required_values``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from src.inference.checkpoints import MethodCheckpoint
from src.papers.detection_baselines.serving import ALIGNED_CROP, FrameDetectorMethod, training_crop
from src.papers.registry import METHODS
from src.sdk import Detector, ServingError, load
from src.utils.checkpoint_files import RECORD_KEY, CheckpointError
from tests.test_serving_methods import config_of, module_from_file, photo, write_tiny_checkpoint

NAME = "detection_baselines"


def tiny_checkpoint_of(experiment: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny untrained checkpoint of another experiment (SBI, another paper's), written as the method's."""
    monkeypatch.setitem(METHODS, NAME, dataclasses.replace(METHODS[NAME], experiment=experiment))
    return write_tiny_checkpoint(NAME, folder, {})


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(NAME, tmp_path_factory.mktemp("detection_baselines"), {})


def test_served_score_is_the_modules_test_score(tiny_ckpt: Path) -> None:
    detector = load(NAME, ckpt=tiny_ckpt)
    assert isinstance(detector, Detector) and isinstance(detector.method, FrameDetectorMethod)
    method = detector.method
    config = config_of(tiny_ckpt)
    assert method.face_size == config["datamodule"]["image_size"]
    assert method.crop == ALIGNED_CROP  # an FF++ dfb-profile run: aligned crops, no box margin
    described = method.describe()
    assert described["recipe"] == "DeepfakeBench" and described["reconstructed"] is False
    assert described["provenance"]["experiment"] == METHODS[NAME].experiment

    size = method.face_size
    faces = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    served = method.detect_faces(faces)
    reference = module_from_file(tiny_ckpt)
    reference.test_step({"image": faces, "label": torch.tensor([0, 1, 0, 1])}, 0)
    expected = reference.test_outputs.compute()["score"].float()
    assert served.shape == (4,)
    assert torch.allclose(served, expected, atol=1e-6)
    assert bool(((served >= 0) & (served <= 1)).all())

    score = detector.detect(photo(), faces="whole")[0].score
    assert score is not None and 0.0 <= score <= 1.0


def test_sbi_checkpoint_serves_with_the_box_margin_crop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tiny_checkpoint_of("detection_baselines/sbi/ffpp_c23", tmp_path, monkeypatch)
    method = load(NAME, ckpt=path).method
    assert method.describe()["recipe"] == "SBI"
    assert method.crop.scale == pytest.approx(1.25) and method.crop.shift == 0.0  # box + 1/8 per side
    faces = torch.rand(2, 3, method.face_size, method.face_size, generator=torch.Generator().manual_seed(1))
    expected = module_from_file(path).fake_probability(faces)
    assert torch.allclose(method.detect_faces(faces), expected, atol=1e-6)


def test_imagenet_weight_files_are_not_needed(tiny_ckpt: Path, tmp_path: Path) -> None:
    """A real run's config names the ImageNet file it started from (absent here): serving does not read it."""
    checkpoint = torch.load(tiny_ckpt, map_location="cpu", weights_only=False)
    checkpoint[RECORD_KEY]["config"]["model"]["net"]["weights"] = str(tmp_path / "missing_xception.pth")
    path = tmp_path / "as_trained.ckpt"
    torch.save(checkpoint, path)
    method = load(NAME, ckpt=path).method
    faces = torch.rand(2, 3, method.face_size, method.face_size, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(method.detect_faces(faces), module_from_file(tiny_ckpt).fake_probability(faces))


def test_crop_follows_the_box_margin_of_the_config() -> None:
    def crop(config: dict) -> tuple[float, float]:
        checkpoint = MethodCheckpoint(Path("x.ckpt"), {}, None, config)  # type: ignore[arg-type]
        found = training_crop(checkpoint)
        return found.scale, found.shift

    assert crop({"datamodule": {"box_margin": 0.125}}) == (1.25, 0.0)
    assert crop({"datamodule": {"box_margin": None}}) == (ALIGNED_CROP.scale, ALIGNED_CROP.shift)
    assert crop({}) == (ALIGNED_CROP.scale, ALIGNED_CROP.shift)


def test_another_papers_checkpoint_and_unknown_options_are_refused(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tiny_checkpoint_of("fpg/ffpp_c23", tmp_path, monkeypatch)
    with pytest.raises(CheckpointError, match=r"FPGModule model .*method 'detection_baselines'"):
        load(NAME, ckpt=other)
    with pytest.raises(ServingError, match="takes no options, got threshold"):
        load(NAME, ckpt=tiny_ckpt, threshold=0.3)
