"""The served ``fpg`` detector: the module's own test-time score, the SBI test crop and size from the
checkpoint, no training-time weight file needed, and the refusal of another paper's checkpoint.

Tiny untrained checkpoints come from ``write_tiny_checkpoint``; no experiment used here leaves a ``???`` key
open, so they are built without the (trained) ``required_values``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from src.papers.fpg.serving import FPGMethod
from src.papers.registry import METHODS
from src.sdk import Detector, ServingError, load
from src.utils.checkpoint_files import RECORD_KEY, CheckpointError
from tests.test_serving_methods import config_of, module_from_file, photo, write_tiny_checkpoint

NAME = "fpg"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(NAME, tmp_path_factory.mktemp("fpg"), {})


def test_served_score_is_the_modules_test_score(tiny_ckpt: Path) -> None:
    detector = load(NAME, ckpt=tiny_ckpt)
    assert isinstance(detector, Detector) and isinstance(detector.method, FPGMethod)
    method = detector.method
    config = config_of(tiny_ckpt)
    assert method.face_size == config["datamodule"]["image_size"]
    assert config["datamodule"]["box_margin"] == 0.125
    assert method.crop.scale == pytest.approx(1.25) and method.crop.shift == 0.0  # box + 1/8 per side
    described = method.describe()
    assert described["reconstructed"] is False and described["provenance"]["experiment"] == "fpg/ffpp_c23"

    size = method.face_size
    faces = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    served = method.detect_faces(faces)
    reference = module_from_file(tiny_ckpt)
    reference.test_step({"image": faces, "label": torch.tensor([0, 1, 0, 1])}, 0)
    expected = reference.test_outputs.compute()["score"].float()
    assert served.shape == (4,)
    assert torch.allclose(served, expected, atol=1e-6)
    # the training forward's logits are the evaluation forward's (same head, eval mode)
    logits, _, _ = reference.net.forward_train(faces)
    assert torch.allclose(served, logits.softmax(1)[:, 1], atol=1e-6)
    assert bool(((served >= 0) & (served <= 1)).all())

    score = detector.detect(photo(), faces="whole")[0].score
    assert score is not None and 0.0 <= score <= 1.0


def test_training_weight_files_are_not_needed(tiny_ckpt: Path, tmp_path: Path) -> None:
    """A real run's config names the AdvProp and SDD-FIQA files (absent here): serving reads neither."""
    checkpoint = torch.load(tiny_ckpt, map_location="cpu", weights_only=False)
    model = checkpoint[RECORD_KEY]["config"]["model"]
    model["quality_teacher"] = {"weights": "manifest:fpg-sdd-fiqa-r50", "depth": 50}
    model["net"]["backbone"]["weights"] = str(tmp_path / "missing_advprop.pth")
    path = tmp_path / "as_trained.ckpt"
    torch.save(checkpoint, path)
    method = load(NAME, ckpt=path).method
    assert method.module.quality_teacher_options is None  # the teacher can never be built while serving
    faces = torch.rand(2, 3, method.face_size, method.face_size, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(method.detect_faces(faces), module_from_file(tiny_ckpt).fake_probability(faces))


def test_another_papers_checkpoint_and_unknown_options_are_refused(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = dataclasses.replace(METHODS[NAME], experiment="detection_baselines/sbi/ffpp_c23")
    monkeypatch.setitem(METHODS, NAME, other)
    sbi = write_tiny_checkpoint(NAME, tmp_path, {})
    with pytest.raises(CheckpointError, match=r"SBIModule model .*method 'fpg'"):
        load(NAME, ckpt=sbi)
    with pytest.raises(ServingError, match="takes no options, got terms"):
        load(NAME, ckpt=tiny_ckpt, terms={"ce": 1.0})
