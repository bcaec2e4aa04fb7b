"""FaceShield served: the SDK's faces equal the Stage II evaluation's, and its record is the DP accounting's.

A tiny untrained ``faceshield/stage2_irc`` checkpoint (256-px extractor, 1/32-width renderer) is served; the
independent path is ``FaceShieldIRC.test_step``'s own sequence of calls with its ``_generator`` streams, fed
the seed the served call drew from the OS CSPRNG (a spy keeps it).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from src.inference.checkpoints import open_method_checkpoint
from src.inference.methods import ServingError
from src.metrics.privacy.record import RngInfo, secret_seed
from src.papers.faceshield import serving
from src.papers.faceshield.evaluation import privacy_columns
from src.papers.faceshield.perturbator import DPPerturbator
from src.papers.faceshield.pipeline import from_faceshield, prepare, to_faceshield
from src.papers.faceshield.serving import FaceShieldMethod, build, served_perturbator
from tests.test_serving_methods import write_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # stage2_irc leaves no ``???`` key besides the paper's own (extractor_ckpt: null in its tiny settings)
    return write_tiny_checkpoint("faceshield", tmp_path_factory.mktemp("faceshield"), {})


@pytest.fixture(scope="module")
def method(checkpoint: Path) -> FaceShieldMethod:
    return build(open_method_checkpoint(checkpoint))


def faces(count: int = 1, size: int = 256) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(7))


def test_served_faces_equal_the_evaluation_path(method: FaceShieldMethod, monkeypatch) -> None:
    drawn: list[int] = []

    def spy() -> tuple[int, RngInfo]:  # the real CSPRNG, its seeds kept for the check
        seed, rng = secret_seed()
        drawn.append(seed)
        return seed, rng

    monkeypatch.setattr(serving, "secret_seed", spy)
    images = faces()
    served = method.protect_faces(images)
    assert len(drawn) == 1, "one secret seed per call"
    assert served.shape == images.shape and float(served.min()) >= 0.0 and float(served.max()) <= 1.0
    assert not torch.equal(served, images)

    # FaceShieldIRC.test_step's calls, with its noise seed set to the seed the served call drew
    module = method.module
    module.hparams.noise_seed = drawn[0]
    batch = {"image": images, "index": torch.tensor([0])}
    size = (images.shape[-2], images.shape[-1])
    x = to_faceshield(images, module.extractor.image_size)
    prepared = prepare(module.extractor, module.renderer, x, module._generator(batch, "network"))
    perturbator = DPPerturbator(method.perturbator.sampler, method.perturbator.epsilon)
    released = perturbator(prepared.restricted, module._generator(batch, serving.SERVED_STREAM))
    expected = from_faceshield(
        module.renderer.generate(released.output, prepared.attrs, prepared.lambda_maps), size
    )
    torch.testing.assert_close(served, expected, atol=1e-6, rtol=0)


def test_record_is_the_module_accounting(method: FaceShieldMethod) -> None:
    record = method.privacy_record()
    # the checkpoint's evaluated variant: the original's sampler at ε = 30, nominal and uncertified
    reference = DPPerturbator("faceshield_repo", 30.0)
    columns = privacy_columns(reference)
    assert record["sampler"] == "faceshield_repo" and record["epsilon"] == columns["epsilon_nominal"] == 30.0
    assert record["certified"] is False and math.isnan(columns["epsilon_certified"])
    assert record["epsilon_certified"] is None and record["delta"] is None
    assert record["delta_audited"] == pytest.approx(columns["delta_audited"])
    assert record["formal_guarantee"] == reference.privacy_record(releases=1).to_dict()
    assert record["formal_guarantee"]["rng"] == {
        "secret": True,
        "provenance": RngInfo.csprng().provenance,
        "seed": None,
    }
    assert record["audit"]["rows"] and "nominal" in record["note"]
    assert record["method"] == "faceshield" and record["experiment"] == "faceshield/stage2_irc"
    assert record["checkpoint_sha256"] and record["reconstructed"] is False
    assert method.face_size == 256 and method.describe()["reversible"] is False


def test_certified_sampler_by_option(method: FaceShieldMethod, checkpoint: Path) -> None:
    opened = open_method_checkpoint(checkpoint)
    perturbator = served_perturbator(opened, sampler="purkayastha", epsilon="5")
    record = FaceShieldMethod(method.module, perturbator).privacy_record()
    columns = privacy_columns(DPPerturbator("purkayastha", 5.0))
    assert record["certified"] is True and record["epsilon"] == 5.0
    assert record["epsilon_certified"] == columns["epsilon_certified"] == 5.0
    assert record["delta"] == 0.0 == columns["delta_audited"] and "audit" not in record
    assert record["formal_guarantee"]["accountant"] == "closed-form"
    assert served_perturbator(opened, sampler="vmf").epsilon == 30.0  # ε from the checkpoint's variant
    with pytest.raises(ServingError, match="unknown sampler"):
        build(opened, sampler="laplace")
    with pytest.raises(ServingError, match="unknown option"):
        build(opened, seed=0)
    with pytest.raises(ServingError, match="epsilon"):
        build(opened, epsilon="-1")
