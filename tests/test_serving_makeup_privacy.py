"""Makeup-privacy served: the SDK's faces equal the module's 1:1 evaluation path, with the reference given.

A tiny untrained ``makeup_privacy/mt_train`` checkpoint (32-px generator, random narrow VGG and BiSeNet) is
served. The independent path is ``MakeupPrivacyModule._pair_step``'s protection: ``protect_images`` then the
8-bit image the authors save (``as_saved``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.inference.checkpoints import open_method_checkpoint
from src.inference.faces import FaceFinder, crop_faces
from src.inference.inputs import to_tensor
from src.inference.methods import PasswordError, ServingError
from src.papers.makeup_privacy.module import as_saved
from src.papers.makeup_privacy.serving import (
    CROP,
    DEFAULT_REFERENCE,
    MakeupMethod,
    build,
    reference_face,
    synthetic_reference,
)
from src.preprocess.synthetic_makeup import STYLES, render_makeup_face
from tests.test_serving_methods import write_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # mt_train leaves no ``???`` key (its tiny settings name the miniature MT-Dataset target image)
    return write_tiny_checkpoint("makeup_privacy", tmp_path_factory.mktemp("makeup"), {})


@pytest.fixture(scope="module")
def method(checkpoint: Path) -> MakeupMethod:
    return build(open_method_checkpoint(checkpoint))


def test_served_faces_equal_the_pair_evaluation(method: MakeupMethod) -> None:
    size = method.face_size
    assert size == 32 and method.crop == CROP
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    served = method.protect_faces(images)
    assert served.shape == images.shape and not torch.equal(served, images)
    reference = to_tensor(synthetic_reference("red", size))[None].expand(2, -1, -1, -1)
    module = method.module
    expected = as_saved(module.protect_images(images, reference))  # _pair_step's saved protected image
    assert float((served - expected).abs().max()) <= 0.5 / 255 + 1e-6  # equal up to the 8-bit rounding
    torch.testing.assert_close(served, ((module.protect_images(images, reference) + 1) / 2).clamp(0, 1))
    # each face is made up on its own: a face alone gives what it gave in the batch
    torch.testing.assert_close(method.protect_faces(images[1:]), served[1:], atol=1e-4, rtol=0)


def test_reference_from_a_photo_is_cut_out_like_the_faces(tmp_path: Path) -> None:
    made_up = render_makeup_face(0, 4_000_000, 0, 160, STYLES[2])[1]
    path = tmp_path / "reference.png"
    cv2.imwrite(str(path), made_up[..., ::-1])
    face, about = reference_face(str(path), 32)
    regions = FaceFinder("mtcnn").find(made_up, CROP)
    assert about["reference_face_found"] and about["reference"] == "reference.png"
    torch.testing.assert_close(face, crop_faces(to_tensor(made_up), regions[:1], 32))
    synthetic, described = reference_face(DEFAULT_REFERENCE, 32)
    assert described == {"reference": "synthetic:red", "synthetic": True} and synthetic.shape == (
        1,
        3,
        32,
        32,
    )
    plain, red, _ = render_makeup_face(0, 4_000_000, 0, 32, STYLES[0])
    assert not np.array_equal(plain, red), "the reference wears makeup"
    with pytest.raises(ServingError, match="unknown synthetic look"):
        reference_face("synthetic:gothic", 32)


def test_record_and_rules(method: MakeupMethod, checkpoint: Path) -> None:
    record = method.privacy_record()
    opened = open_method_checkpoint(checkpoint)
    target = Path(opened.value("model.target_path"))
    assert record["formal_guarantee"] is None and record["reversible"] is False
    assert record["reconstructed"] is False and record["reference"] == DEFAULT_REFERENCE
    assert record["impersonation_target"] == {
        "path": str(target),
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "present": True,
    }
    assert record["frozen_weights"] == {"vgg": None, "parser": None} and "random" in record["warning"]
    assert not method.describe()["needs_password"] and not method.describe()["reversible"]
    with pytest.raises(PasswordError, match="takes no password"):
        method.protect_faces(torch.rand(1, 3, 32, 32), "secret")
    with pytest.raises(ServingError, match="unknown option"):
        build(opened, style="red")
    # the target is not needed to protect: without it the module is built on a placeholder
    opened.config["model"]["target_path"] = str(target.parent / "absent.jpg")
    absent = build(opened, reference="synthetic:berry")
    assert absent.privacy_record()["impersonation_target"]["present"] is False
    assert absent.privacy_record()["reference"] == "synthetic:berry"
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # (the rebuilt module has other random VGG / BiSeNet weights: compare with its own networks)
    berry = MakeupMethod(absent.module, to_tensor(synthetic_reference("berry", 32))[None])
    torch.testing.assert_close(absent.protect_faces(images), berry.protect_faces(images))
