"""PRO-Face S as served (``load("proface_s", ckpt=...)``) against the module's own evaluation path.

The tiny checkpoint is the paper's experiment (``hybrid_all_celeba``) shrunk by its tiny settings, untrained.
A fresh INN is the identity (every last conv is zero, so the key has no effect): its last convs get small
random weights here, so that keys matter. Recovery with the right password is *learned* (the INN runs
backwards from the key-derived ``ẑ``, not the discarded ``z``), so an untrained checkpoint does not give the
original back: the tests check that recovery is exactly the module's inverse of the stored 8-bit image and
print the PSNRs it gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.metrics.image_quality import psnr
from src.papers.proface_s.keys import key_from_password
from src.papers.proface_s.module import ProFaceSModule, to_signed, to_unit
from src.papers.proface_s.serving import CELEBA_CROP, ProFaceSMethod
from src.sdk import PasswordError, Protector, ServingError, load
from tests.test_serving_methods import write_tiny_checkpoint

PASSWORD = "correct horse battery staple"
OTHER = "correct horse battery stapler"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint of proface_s/hybrid_all_celeba whose INN is not the identity."""
    path = write_tiny_checkpoint("proface_s", tmp_path_factory.mktemp("proface_s"), {})
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    generator = torch.Generator().manual_seed(0)
    for key, value in checkpoint["state_dict"].items():
        if ".conv5." in key:
            value.copy_(0.05 * torch.randn(value.shape, generator=generator))
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def served(ckpt: Path) -> Protector:
    method = load("proface_s", ckpt=ckpt)
    assert isinstance(method, Protector)
    return method


def faces(size: int, count: int = 2) -> torch.Tensor:
    """SyntheticFaces renders as face tensors ``[count, 3, size, size]`` in [0, 1]."""
    images = [render_synthetic_face(0, identity, 0, size) for identity in range(1, count + 1)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def test_the_method_is_keyed_reversible_and_sized_by_its_checkpoint(served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceSMethod)
    assert method.reversible and method.needs_password
    assert method.face_size == 32  # the tiny settings' datamodule.image_size
    assert method.crop == CELEBA_CROP  # a CelebA-trained checkpoint
    assert method.setting == "blur" and not method.module.training


def test_protect_is_the_modules_own_forward_with_the_password_key(served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceSMethod)
    module: ProFaceSModule = method.module
    x = faces(method.face_size)
    protected = method.protect_faces(x, PASSWORD)
    # the evaluation path of ProFaceSModule._evaluate, with the module's own (caching) key derivation
    key = module.password_key(PASSWORD, *x.shape[-2:])
    module._key_cache.clear()
    with torch.no_grad():
        obfuscated = module.eval_obfuscators["blur"](x).clamp(0.0, 1.0)
        x_p, _ = module.net(to_signed(x), to_signed(obfuscated), key)
    torch.testing.assert_close(protected, to_unit(x_p).clamp(0.0, 1.0), atol=1e-6, rtol=0)
    other = method.protect_faces(x, OTHER)
    assert (other - protected).abs().mean() > 1e-3, "two passwords gave the same protected faces"
    assert not module._key_cache, "the served method must not cache password keys"


def test_recovery_is_the_modules_inverse_and_needs_the_password(served: Protector) -> None:
    method = served.method
    assert isinstance(method, ProFaceSMethod)
    size = method.face_size
    photo = render_synthetic_face(0, 3, 0, size)  # a photo whose size is the face size: no resizing
    protected = served.protect([photo], password=PASSWORD, faces="whole")[0]
    assert protected.privacy["action"] == "protect" and protected.privacy["faces"] == 1
    right = served.recover([protected.image], password=PASSWORD, faces="whole")[0].image
    wrong = served.recover([protected.image], password=OTHER, faces="whole")[0].image
    # independent path: the module's inverse of the stored 8-bit image with the PBKDF2 key of the password
    stored = torch.from_numpy(protected.image).permute(2, 0, 1)[None].float() / 255.0
    key = key_from_password(PASSWORD, size, size)
    with torch.no_grad():
        x_r, _ = method.module.net.inverse(to_signed(stored), key)
    expected = np.round(to_unit(x_r).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255.0)
    assert np.abs(right.astype(float) - expected).max() <= 1.0  # rounding of the uint8 output
    assert not np.array_equal(right, wrong)
    original = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0

    def db(image: np.ndarray) -> float:
        return float(psnr(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0, original)[0])

    # untrained: recovery is learned, so neither is close to the original (printed for the record)
    print(f"untrained tiny checkpoint: recovery PSNR right {db(right):.2f} dB, wrong {db(wrong):.2f} dB")


def test_the_record_keeps_no_password_and_states_no_guarantee(served: Protector) -> None:
    result = served.protect([render_synthetic_face(0, 1, 0, 32)], password=PASSWORD, faces="whole")[0]
    record = result.privacy
    assert record["method"] == "proface_s" and record["reversible"] is True
    assert record["formal_guarantee"] is None and "no formal privacy guarantee" in record["notes"].lower()
    assert record["obfuscator"] == "blur" and record["checkpoint_sha256"]
    text = json.dumps(record, default=str)
    assert PASSWORD not in text and "horse" not in text
    assert PASSWORD not in json.dumps(vars(served.method), default=str)


def test_password_and_option_errors(ckpt: Path, served: Protector) -> None:
    with pytest.raises(PasswordError, match="Latin-1"):
        served.method.protect_faces(faces(32, 1), "密码")
    with pytest.raises(ServingError, match="no evaluation setting 'nope'; settings: blur, median, pixelate"):
        load("proface_s", ckpt=ckpt, obfuscator="nope")
    with pytest.raises(ServingError, match="unknown option"):
        load("proface_s", ckpt=ckpt, strength=3)
    pixelated = load("proface_s", ckpt=ckpt, obfuscator="pixelate", crop_scale=1.5)
    assert pixelated.method.crop.scale == 1.5
    x = faces(32, 1)
    assert not torch.equal(
        pixelated.method.protect_faces(x, PASSWORD), served.method.protect_faces(x, PASSWORD)
    )


def test_faces_of_another_size_get_a_key_of_their_size(served: Protector) -> None:
    method = served.method
    x = faces(36, 1)  # e.g. a native-resolution crop: the key is derived at the faces' own size
    protected = method.protect_faces(x, PASSWORD)
    assert protected.shape == x.shape
    assert method.recover_faces(protected, PASSWORD).shape == x.shape
    with pytest.raises(ServingError, match="divisible by 4"):
        method.protect_faces(faces(34, 1), PASSWORD)
