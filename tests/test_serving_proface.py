"""PRO-Face as served (``load("proface", ckpt=...)``) against the module rebuilt with its recognizer.

The served method drops the frozen recognizer (a judge of training and evaluation only); the reference here
is the checkpoint's full module, built from its embedded config with the real recognizer and loaded strictly,
running its evaluation path (``ProFaceModule._versions``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.instantiate import instantiate
from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.papers.proface.module import ProFaceModule
from src.papers.proface.serving import SYNTHETIC_CROP, NoRecognizer, ProFaceMethod
from src.sdk import Protector, ServingError, load
from src.utils.checkpoint_files import RECORD_KEY
from tests.test_serving_methods import write_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_recognizer_ckpt: str) -> Path:
    """A tiny untrained checkpoint of proface/demo_synthetic (with the tiny demo recognizer as E)."""
    required = {"model.recognizer.path": tiny_recognizer_ckpt}
    return write_tiny_checkpoint("proface", tmp_path_factory.mktemp("proface"), required)


@pytest.fixture(scope="module")
def served(ckpt: Path) -> Protector:
    method = load("proface", ckpt=ckpt)
    assert isinstance(method, Protector)
    return method


def faces(size: int, count: int = 2) -> torch.Tensor:
    """SyntheticFaces renders as face tensors ``[count, 3, size, size]`` in [0, 1]."""
    images = [render_synthetic_face(0, identity, 0, size) for identity in range(1, count + 1)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def test_the_method_is_unkeyed_irreversible_and_has_no_recognizer(served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceMethod)
    assert not method.reversible and not method.needs_password
    assert method.face_size == 32 and method.crop == SYNTHETIC_CROP  # the demo's SyntheticFaces at 32 px
    assert isinstance(method.module.recognizer, NoRecognizer)
    assert not any(key.startswith("recognizer.") for key in method.module.state_dict())


def test_protect_is_the_full_modules_evaluation_output(ckpt: Path, served: Protector) -> None:
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    reference = instantiate(checkpoint[RECORD_KEY]["config"]["model"])
    assert isinstance(reference, ProFaceModule)
    reference.load_state_dict(checkpoint["state_dict"], strict=True)
    reference.eval()
    x = faces(32)
    with torch.no_grad():  # ProFaceModule._versions: to the embedder's range, obfuscate, fuse, clamp
        model_x = reference.to_model(x)
        expected = reference.to_unit(
            reference.clamp(reference.embedder(model_x, reference.obfuscate(model_x)))
        )
    protected = served.method.protect_faces(x)
    torch.testing.assert_close(protected, expected, atol=1e-6, rtol=0)
    assert (protected - x).abs().mean() > 1e-3


def test_a_checkpoint_loads_without_its_recognizer_weights(ckpt: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    checkpoint[RECORD_KEY]["config"]["model"]["recognizer"]["path"] = str(tmp_path / "gone.ckpt")
    checkpoint[RECORD_KEY]["config"]["model"]["embedder_weights"] = "manifest:proface-embedder-blur-iresnet50"
    moved = tmp_path / "moved.ckpt"
    torch.save(checkpoint, moved)
    method = load("proface", ckpt=moved, crop_scale=1.6)
    assert method.method.crop.scale == 1.6
    x = faces(32, 1)
    torch.testing.assert_close(
        method.method.protect_faces(x), load("proface", ckpt=ckpt).method.protect_faces(x)
    )
    with pytest.raises(ServingError, match="unknown option"):
        load("proface", ckpt=ckpt, obfuscator="pixelate")


def test_the_record_names_the_recognizer_it_stays_recognizable_by(served: Protector) -> None:
    result = served.protect([render_synthetic_face(0, 1, 0, 32)], faces="whole")[0]
    record = result.privacy
    assert record["method"] == "proface" and record["reversible"] is False
    assert record["formal_guarantee"] is None and record["obfuscator"] == "blur_31_2_8"
    assert record["recognizable_by"] == "demo IResNet (SyntheticFaces)"
    assert "recognizable by" in record["notes"] and record["experiment"] == "proface/demo_synthetic"
