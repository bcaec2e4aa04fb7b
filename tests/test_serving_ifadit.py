"""iFADIT served: the SDK's faces equal the phase-2 evaluation's, the password keys the flow, and the right
password inverts it.

A tiny untrained ``ifadit/phase2_ffhq`` checkpoint (32-px networks) is served. The independent path is
``IFaditFlow.evaluate_batch`` itself, with its two evaluation keys replaced by the keys of a right and a wrong
password. Untrained networks cannot make the recovered *image* close to the original (the identity encoder,
ICL and mapper are random), so the round trip is checked where the method guarantees it — the flow under the
password's key inverts exactly — and the recovered images are compared with the evaluation's; their PSNR is
printed (``-s``) for the record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.face.landmarks import DlibShapePredictor
from src.inference.checkpoints import open_method_checkpoint
from src.inference.methods import PasswordError, ServingError
from src.metrics.image_quality import psnr
from src.papers.ifadit.masks import EllipseMask, LandmarkMask
from src.papers.ifadit.serving import LANDMARK_BOX, IFaditMethod, build, password_key
from tests.test_serving_methods import write_tiny_checkpoint

RIGHT, WRONG = "correct horse battery staple", "correct horse battery stapler"


@pytest.fixture(scope="module")
def method(tmp_path_factory: pytest.TempPathFactory) -> IFaditMethod:
    # phase2_ffhq leaves no ``???`` key (its tiny settings name the tiny phase-1 checkpoint)
    ckpt = write_tiny_checkpoint("ifadit", tmp_path_factory.mktemp("ifadit"), {})
    return build(open_method_checkpoint(ckpt))


def faces(method: IFaditMethod, count: int = 2) -> torch.Tensor:
    size = method.face_size
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(3))


def evaluation(method: IFaditMethod, images: torch.Tensor, batch: dict, monkeypatch) -> dict:
    """``evaluate_batch``'s images, with key 1 / key 2 the keys of the right / wrong password."""
    module = method.module
    right, wrong = (method.condition(p, images.shape[0]) for p in (RIGHT, WRONG))
    monkeypatch.setattr(module, "_evaluation_conditions", lambda indices: (right, wrong))
    _, grid = module.evaluate_batch({"image": images, "index": torch.arange(images.shape[0]), **batch})
    return grid


def test_protect_equals_the_evaluation_with_landmark_masks(method: IFaditMethod, monkeypatch) -> None:
    assert isinstance(method.masker, LandmarkMask) and method.face_size == 32
    images = faces(method)
    # dlib's 68 points from the documented box, computed here without the served method
    predictor = DlibShapePredictor(68)
    pixels = (images * 255).round().byte().permute(0, 2, 3, 1).numpy()
    box = np.asarray(LANDMARK_BOX) * method.face_size
    landmarks = torch.tensor(np.stack([predictor.predict(np.ascontiguousarray(p), box) for p in pixels]))
    grid = evaluation(method, images, {"landmarks": landmarks.float()}, monkeypatch)
    served = method.protect_faces(images, RIGHT)
    torch.testing.assert_close(served, grid["key 1"], atol=1e-6, rtol=0)
    assert not torch.equal(served, images)
    torch.testing.assert_close(method.protect_faces(images, WRONG), grid["key 2"], atol=1e-6, rtol=0)


def test_recover_equals_the_evaluation_and_inverts_the_flow(method: IFaditMethod, monkeypatch) -> None:
    # the same mask for the original and the anonymised face: recovery comparable with the evaluation's
    served = IFaditMethod(method.module, EllipseMask())
    monkeypatch.setattr(method.module, "masker", EllipseMask())
    images = faces(method)
    grid = evaluation(method, images, {}, monkeypatch)
    anonymised = served.protect_faces(images, RIGHT)
    recovered, wrong = served.recover_faces(anonymised, RIGHT), served.recover_faces(anonymised, WRONG)
    torch.testing.assert_close(anonymised, grid["key 1"], atol=1e-6, rtol=0)
    torch.testing.assert_close(recovered, grid["recovered (key 1)"], atol=1e-6, rtol=0)
    torch.testing.assert_close(wrong, grid["wrong key (key 2)"], atol=1e-6, rtol=0)
    assert not torch.allclose(recovered, wrong, atol=1e-4)
    scores = [float(psnr(x, images).mean()) for x in (anonymised, recovered, wrong)]
    print(  # figures for the report: untrained networks, so no claim on their values
        "PSNR to the original: anonymised {:.2f} dB, recovered (right password) {:.2f} dB, wrong password "
        "{:.2f} dB".format(*scores)
    )
    # the round trip the method guarantees: F⁻¹(F(z; c); c) = z under the password's key, not under another
    module = method.module
    with torch.no_grad():
        z = module.identity_encoder(images)
        right_c, wrong_c = (method.condition(p, images.shape[0]) for p in (RIGHT, WRONG))
        moved = module.flow(z, right_c)
        back, astray = module.flow.inverse(moved, right_c), module.flow.inverse(moved, wrong_c)
    right_err, wrong_err = (float((x - z).abs().max()) for x in (back, astray))
    print(f"flow round trip, max |z' - z|: right password {right_err:.2e}, wrong {wrong_err:.2e}")
    assert right_err < 1e-4 < wrong_err
    assert float((moved - z).abs().max()) > 1e-2, "the key must move the identity"


def test_password_key() -> None:
    key = password_key(RIGHT)
    assert key.shape == (1, 512) and key.dtype == torch.float32
    assert float(key.min()) >= 0.5 and float(key.max()) < 1.0  # the paper's U[0.5, 1)
    assert torch.equal(key, password_key(RIGHT)) and not torch.equal(key, password_key(WRONG))
    assert torch.equal(password_key("Ａb"), password_key("Ab"))  # NFKC: one password, however typed
    assert key.std() > 0.1  # spread over the interval, not a constant
    with pytest.raises(PasswordError, match="needs a password"):
        password_key("")


def test_record_and_rules(method: IFaditMethod) -> None:
    record = method.privacy_record()
    assert record["formal_guarantee"] is None and record["reversible"] is True
    assert record["reconstructed"] is True and "reconstructed" in record["note"]
    assert record["mask"] == "LandmarkMask" and record["experiment"] == "ifadit/phase2_ffhq"
    text = repr(record)
    assert RIGHT not in text and f"{float(password_key(RIGHT)[0, 0]):.6f}" not in text
    assert method.describe()["reversible"] and method.describe()["needs_password"]
    with pytest.raises(PasswordError, match="needs a password"):
        method.protect_faces(faces(method, 1))
    ckpt = open_method_checkpoint(method.provenance["checkpoint"])
    with pytest.raises(ServingError, match="mask must be one of"):
        build(ckpt, mask="hull")
    with pytest.raises(ServingError, match="unknown option"):
        build(ckpt, key="x")
    assert isinstance(build(ckpt, mask="ellipse").masker, EllipseMask)
    assert Path(record["checkpoint"]).is_file()
