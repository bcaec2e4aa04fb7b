"""PRO-Face C as served (``load("proface_c", ckpt=...)``) against the module's own evaluation path.

The protected image is the evaluation obfuscation ``b(x)``; the client payload and the server's embedding of
it must be the module's own compensated embedding (``ProFaceCModule.compensated_embedding``), with the
server's weights taken from the checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.papers.proface_c.serving import ARCFACE_CROP, ProFaceCMethod
from src.sdk import Protector, ServingError, load
from tests.test_serving_methods import write_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained checkpoint of proface_c/celeba_ir101 (narrow random server at 32 px)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny server's "RANDOM weights"
        return write_tiny_checkpoint("proface_c", tmp_path_factory.mktemp("proface_c"), {})


@pytest.fixture(scope="module")
def served(ckpt: Path) -> Protector:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # building from the checkpoint must not warn of random weights
        method = load("proface_c", ckpt=ckpt)
    assert isinstance(method, Protector)
    return method


def faces(size: int, count: int = 3) -> torch.Tensor:
    """SyntheticFaces renders as face tensors ``[count, 3, size, size]`` in [0, 1]."""
    images = [render_synthetic_face(0, identity, 0, size) for identity in range(1, count + 1)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def test_the_method_is_the_hybrid_obfuscation_at_the_servers_size(ckpt: Path, served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceCMethod)
    assert not method.reversible and not method.needs_password
    assert method.face_size == 32 and method.crop == ARCFACE_CROP and method.obfuscation == "hybrid"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in method.module.state_dict().items():  # server and client weights from the checkpoint
        if key.startswith(("server.", "client.")):
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_protect_is_the_evaluation_obfuscation(ckpt: Path, served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceCMethod)
    x = faces(32)
    hybrid = method.module.eval_obfuscators["hybrid"]
    expected = hybrid.obfuscate_indexed(x, torch.zeros(3, dtype=torch.int64))
    torch.testing.assert_close(method.protect_faces(x), expected, rtol=0, atol=0)
    assert (expected - x).abs().mean() > 1e-3
    gaussian = load("proface_c", ckpt=ckpt, obfuscation="gaussian").method
    blur = gaussian.module.eval_obfuscators["gaussian"].eval()
    torch.testing.assert_close(gaussian.protect_faces(x), blur(x).clamp(0, 1), rtol=0, atol=0)


def test_payload_and_server_give_the_modules_compensated_embedding(served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceCMethod)
    x = faces(32)
    obfuscated, maps = method.client_payload(x)
    assert [tuple(m.shape[1:]) for m in maps] == [tuple(s) for s in method.module.client.stage_shapes]
    embeddings = method.server_embeddings(obfuscated, maps)
    with torch.no_grad():
        expected = method.module.compensated_embedding(x, method.protect_faces(x))
        plain = method.module.server.embed(obfuscated, normalize=True)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(embeddings, plain, atol=1e-4), "the maps must change the server's embedding"


def test_the_record_and_the_options(ckpt: Path, served: Protector) -> None:
    record = served.protect([render_synthetic_face(0, 1, 0, 32)], faces="whole")[0].privacy
    assert record["method"] == "proface_c" and record["reversible"] is False
    assert record["formal_guarantee"] is None and record["obfuscation"] == "hybrid"
    assert record["maps_bits"] is None and "conventional obfuscation" in record["notes"]
    with pytest.raises(ServingError, match="no evaluation obfuscation 'nope'; obfuscations: gaussian"):
        load("proface_c", ckpt=ckpt, obfuscation="nope")
    with pytest.raises(ServingError, match="unknown option"):
        load("proface_c", ckpt=ckpt, bits=8)
    with pytest.raises(ServingError, match="bad crop option"):
        load("proface_c", ckpt=ckpt, crop_scale="wide")
