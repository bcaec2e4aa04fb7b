"""The served ``inspector`` defence: its scores equal the defence computed step by step from the stage-4
module's parts (coarse rejection, flip, unchanged logits), the options, and the refusal of earlier stages'
and other papers' checkpoints.

Tiny untrained checkpoints come from ``write_tiny_checkpoint``; the paper's tiny settings fill its ``???``
keys, so they are built without the (trained) ``required_values``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import Tensor

from src.papers.inspector.module import InspectorCorrector
from src.papers.inspector.networks import attack_probability
from src.papers.inspector.protocol import score_setting
from src.papers.inspector.serving import ALIGNED_CROP, InspectorMethod
from src.papers.registry import METHODS
from src.sdk import Detector, ServingError, load
from src.utils.checkpoint_files import RECORD_KEY, CheckpointError
from tests.test_serving_methods import config_of, module_from_file, photo, write_tiny_checkpoint

NAME = "inspector"


def defended_by_hand(module: InspectorCorrector, faces: Tensor, on_reject: str = "fake") -> dict[str, Tensor]:
    """The Inspector's inference written out from the module's parts (docs/papers/inspector.md)."""
    with torch.no_grad():
        logits = module.net(faces)
        rejected = module.autothresh(module.reconstruct(faces)).argmax(1) == 1
        pi = attack_probability(module.corrector(faces), logits)
        flipped = ~rejected & (pi > module.threshold)
        centred = logits.mean(1, keepdim=True) - logits  # the flip: 1 / (mean(l) - l)
        final = torch.where(flipped[:, None], 1.0 / centred, logits)
        score = final.softmax(1)[:, 1]
        if on_reject == "fake":
            score = torch.where(rejected, torch.ones_like(score), score)
    return {"score": score, "rejected": rejected, "flipped": flipped, "detector": logits.softmax(1)[:, 1]}


def set_bias(head: torch.nn.Linear, values: tuple[float, float]) -> None:
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(values))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(NAME, tmp_path_factory.mktemp("inspector"), {})


@pytest.fixture(scope="module")
def reference(tiny_ckpt: Path) -> InspectorCorrector:
    """The checkpoint's weights, rebuilt independently of the serving path."""
    return module_from_file(tiny_ckpt)


def test_served_score_is_the_defence_on_the_modules_parts(
    tiny_ckpt: Path, reference: InspectorCorrector
) -> None:
    detector = load(NAME, ckpt=tiny_ckpt)
    assert isinstance(detector, Detector) and isinstance(detector.method, InspectorMethod)
    method = detector.method
    config = config_of(tiny_ckpt)
    assert method.face_size == config["datamodule"]["image_size"] and method.crop == ALIGNED_CROP
    described = method.describe()
    assert described["on_reject"] == "fake" and described["randomize"] is False
    assert described["provenance"]["experiment"] == "inspector/stage4_corrector"

    size = method.face_size
    faces = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    expected = defended_by_hand(reference, faces)
    served = method.detect_faces(faces)
    assert served.shape == (4,) and torch.allclose(served, expected["score"], atol=1e-6)
    # the stage-4 test protocol's clean row sees the same decisions
    defense = reference.defense()
    defense.randomize = False
    clean = score_setting(defense, 0, reference.net(faces), faces, labels, seed=0)
    assert torch.equal(clean["rejected"], expected["rejected"])
    assert torch.equal(clean["flipped"], expected["flipped"])

    # every branch: A accepts all and C calls every attack successful (flip), C calls none (D's logits),
    # A rejects all (1.0, or D's probability with on_reject=detector)
    parts = method.module
    for a_bias, c_bias in (((9.0, -9.0), (9.0, 9.0)), ((9.0, -9.0), (-9.0, -9.0)), ((-9.0, 9.0), (0.0, 0.0))):
        set_bias(parts.autothresh.net.get_classifier(), a_bias)
        set_bias(parts.corrector.net.get_classifier(), c_bias)
        expected = defended_by_hand(parts, faces)
        assert torch.allclose(method.detect_faces(faces), expected["score"], atol=1e-6)
        if a_bias[1] > 0:
            assert bool(expected["rejected"].all()) and bool((method.detect_faces(faces) == 1).all())
        elif c_bias[0] > 0:
            assert bool(expected["flipped"].all())
            assert torch.equal(method.detect_faces(faces) > 0.5, expected["detector"] < 0.5)
        else:
            assert torch.allclose(method.detect_faces(faces), expected["detector"], atol=1e-6)
    method.on_reject = "detector"
    assert torch.allclose(method.detect_faces(faces), defended_by_hand(parts, faces, "detector")["score"])

    score = detector.detect(photo(), faces="whole")[0].score
    assert score is not None and 0.0 <= score <= 1.0


def test_options(tiny_ckpt: Path) -> None:
    method = load(NAME, ckpt=tiny_ckpt, randomize="true", on_reject="detector").method
    assert method.randomize and method.on_reject == "detector"
    set_bias(method.module.autothresh.net.get_classifier(), (9.0, -9.0))  # accept every face
    set_bias(method.module.corrector.net.get_classifier(), (-9.0, -9.0))  # judge no attack successful
    faces = torch.rand(6, 3, method.face_size, method.face_size, generator=torch.Generator().manual_seed(3))
    plain = defended_by_hand(method.module, faces)["detector"]
    first, second = method.detect_faces(faces), method.detect_faces(faces)
    assert torch.equal(first > 0.5, plain > 0.5) and torch.equal(second > 0.5, plain > 0.5)  # same decision
    assert not torch.allclose(first, second)  # random confidence, fresh draws per call
    with pytest.raises(ServingError, match="on_reject must be one of"):
        load(NAME, ckpt=tiny_ckpt, on_reject="maybe")
    with pytest.raises(ServingError, match="randomize must be true or false"):
        load(NAME, ckpt=tiny_ckpt, randomize="sometimes")
    with pytest.raises(ServingError, match="unknown option.* threshold; options: on_reject, randomize"):
        load(NAME, ckpt=tiny_ckpt, threshold=0.3)


def test_training_files_are_not_needed(
    tiny_ckpt: Path, reference: InspectorCorrector, tmp_path: Path
) -> None:
    """A real stage-4 run's config names its stage-3 file and ImageNet weights (absent here)."""
    checkpoint = torch.load(tiny_ckpt, map_location="cpu", weights_only=False)
    model = checkpoint[RECORD_KEY]["config"]["model"]
    model["autothresh_ckpt"] = str(tmp_path / "stage3_best.ckpt")
    model["random_dependencies"] = False
    model["corrector"]["weights"] = "manifest:torchvision-resnet18"
    path = tmp_path / "as_trained.ckpt"
    torch.save(checkpoint, path)
    method = load(NAME, ckpt=path).method
    faces = torch.rand(2, 3, method.face_size, method.face_size, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(method.detect_faces(faces), defended_by_hand(reference, faces)["score"])


def test_earlier_stages_and_other_papers_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = METHODS[NAME]
    monkeypatch.setitem(METHODS, NAME, dataclasses.replace(entry, experiment="inspector/stage1_detector"))
    stage1 = write_tiny_checkpoint(NAME, tmp_path, {})
    with pytest.raises(CheckpointError, match=r"stage 1 \(detector D\) .*needs a stage-4 checkpoint"):
        load(NAME, ckpt=stage1)
    monkeypatch.setitem(METHODS, NAME, dataclasses.replace(entry, experiment="fpg/ffpp_c23"))
    other = write_tiny_checkpoint(NAME, tmp_path, {})  # overwrites the stage-1 file
    with pytest.raises(CheckpointError, match=r"FPGModule model .*method 'inspector'"):
        load(NAME, ckpt=other)
