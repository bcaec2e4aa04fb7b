"""The PyTorch port of dlib's face-recognition ResNet and face-chip alignment, checked against dlib itself.

References: ``dlib.face_recognition_model_v1.compute_face_descriptor`` (package ``dlib-bin``) on the same
chips, and ``dlib.get_face_chip`` / ``dlib.get_face_chip_details`` for the alignment. The real face is
``skimage.data.astronaut()`` (landmarks from dlib's 5-point predictor on dlib's HOG detection). Tests needing
dlib, the model files (``face-recognition-models``) or scikit-image skip with the reason when one is missing.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from src.face import dlib_models
from src.face.dlib_chip import extract_face_chips, face_chip_affine, face_chip_scale, landmarks_from_dlib
from src.face.dlib_models import DLIB_MODEL_FILES, dlib_model_path
from src.networks.recognizers import RECOGNIZERS, build_recognizer
from src.networks.recognizers.checkpoints import ChecksumMismatchError
from src.networks.recognizers.dlib_resnet import (
    DLIB_RESNET_FILE,
    DlibFormatError,
    DlibResNet,
    add_prev,
    parse_dlib_dat,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PARITY_TOL = 1e-4  # max abs difference of descriptors from dlib's on identical chips (observed ~5e-7)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: these small batches gain little from more, and lose a lot on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model_file(name: str) -> Path:
    try:
        return dlib_model_path(name)
    except FileNotFoundError as exc:
        pytest.skip(f"dlib model files missing: {exc}")


@pytest.fixture(scope="module")
def resnet_path() -> Path:
    """The packaged ``dlib_face_recognition_resnet_model_v1.dat``."""
    return _model_file(DLIB_RESNET_FILE)


@pytest.fixture(scope="module")
def port(resnet_path: Path) -> DlibResNet:
    """The PyTorch port with the packaged weights."""
    return DlibResNet()


@pytest.fixture(scope="module")
def dlib_lib() -> Any:
    """The dlib module (skip without ``dlib-bin``)."""
    return pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is needed for the parity tests")


@pytest.fixture(scope="module")
def astronaut(dlib_lib: Any, resnet_path: Path) -> dict[str, Any]:
    """skimage's astronaut, dlib's 5-point shape of her face, dlib's chip and dlib's recognizer."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image provides the offline real face")
    image = skdata.astronaut()
    # HOG finds the face (score 1.16) and a false positive on the suit (score 0.12): take the best score
    boxes, scores, _ = dlib_lib.get_frontal_face_detector().run(image, 1, 0)
    face = boxes[int(np.argmax(scores))]
    shape = dlib_lib.shape_predictor(str(_model_file("shape_predictor_5")))(image, face)
    recognizer = dlib_lib.face_recognition_model_v1(str(resnet_path))
    chip = dlib_lib.get_face_chip(image, shape, 150, 0.25)
    return {"image": image, "shape": shape, "chip": chip, "recognizer": recognizer}


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or NHWC) → float [N, 3, H, W] in [0, 1]."""
    array = images[None] if images.ndim == 3 else images
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 255.0


# ------------------------------------------------------------------------------------------ model paths


def test_model_paths_without_importing_the_package() -> None:
    for name, file_name in DLIB_MODEL_FILES.items():
        path = _model_file(name)
        assert path.name == file_name and path.parent.name == "models"
        assert dlib_model_path(file_name) == path
    # find_spec on a top-level package locates it without running its (pkg_resources-importing) __init__.
    probe = (
        "import sys; from src.face.dlib_models import dlib_model_path; dlib_model_path('shape_predictor_5'); "
        "print('face_recognition_models' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
    with pytest.raises(KeyError, match="unknown dlib model"):
        dlib_model_path("shape_predictor_194")


def test_missing_model_files_name_path_and_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dlib_models, "models_dir", lambda: tmp_path / "models")
    expected = tmp_path / "models" / "shape_predictor_5_face_landmarks.dat"
    with pytest.raises(FileNotFoundError, match="pip install face-recognition-models") as info:
        dlib_model_path("shape_predictor_5")
    assert str(expected) in str(info.value)
    monkeypatch.undo()
    monkeypatch.setattr(dlib_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="not installed.*pip install face-recognition-models"):
        dlib_model_path("face_recognition_resnet")


# ----------------------------------------------------------------------------------------------- parser


def test_parse_counts_and_structure(resnet_path: Path, port: DlibResNet) -> None:
    network = parse_dlib_dat(resnet_path)
    assert network.counts() == {
        "con_4": 29,
        "affine_": 29,
        "relu_": 29,
        "add_prev_": 14,
        "avg_pool_2": 5,
        "max_pool_2": 1,
        "fc_2": 1,
    }
    # one wrapper per computational layer (107 × version 2 + the innermost version 3) + 22 tag/skip wrappers
    assert {v: network.wrapper_versions.count(v) for v in (1, 2, 3)} == {1: 22, 2: 107, 3: 1}
    assert network.input_size == (150, 150)
    np.testing.assert_allclose(network.channel_means, (122.782, 117.001, 104.298), atol=1e-4)
    assert network.loss["tag"] == "loss_metric_2"
    assert network.loss["distance_threshold"] == pytest.approx(0.6)
    stem = network.layers[0].fields
    assert (stem["num_filters"], stem["nr"], stem["stride"], stem["padding"]) == (32, 7, (2, 2), (0, 0))
    strided = [
        layer.fields for layer in network.layers if layer.tag == "con_4" and layer.fields["stride"] != (1, 1)
    ]
    assert [(f["num_filters"], f["padding"]) for f in strided] == [
        (32, (0, 0)),
        (64, (0, 0)),
        (128, (0, 0)),
        (256, (0, 0)),
        (256, (0, 0)),
    ]
    assert sum(p.numel() for p in port.parameters()) == 5_614_592
    assert sum(isinstance(m, torch.nn.Conv2d) for m in port.modules()) == 29


def test_add_prev_zero_pads_to_the_elementwise_max_shape() -> None:
    x = torch.randn(2, 4, 3, 3)
    y = torch.randn(2, 2, 4, 4)
    out = add_prev(x, y)
    expected = torch.zeros(2, 4, 4, 4)
    expected[:, :4, :3, :3] += x
    expected[:, :2, :4, :4] += y
    torch.testing.assert_close(out, expected)


def test_forward_stages(port: DlibResNet) -> None:
    x = port.preprocess(torch.rand(1, 3, 150, 150, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        embeddings, stages = port.forward_stages(x)
        plain = port.forward_features(x)
    assert {name: tuple(t.shape[1:]) for name, t in stages.items()} == {
        "stage1": (32, 35, 35),
        "stage2": (64, 17, 17),
        "stage3": (128, 8, 8),
        "stage4": (256, 2, 2),
    }
    torch.testing.assert_close(embeddings, plain)
    assert embeddings.shape == (1, 128)
    # stage modules take forward hooks: zeroing the last stage leaves only the (bias-free) head's zero
    with torch.no_grad(), port.inject({"stage4": torch.zeros_like}):
        injected = port.forward_features(x)
    torch.testing.assert_close(injected, torch.zeros(1, 128))


# ------------------------------------------------------------------------------------- parity with dlib


def test_descriptors_equal_dlib(port: DlibResNet, astronaut: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    chip = astronaut["chip"]
    chips = np.stack(
        [
            chip,
            chip[:, ::-1],  # mirrored
            chip[:, :, ::-1],  # BGR-swapped
            rng.integers(0, 256, chip.shape, dtype=np.uint8),
            rng.integers(0, 256, chip.shape, dtype=np.uint8),
        ]
    )
    reference = np.array(
        [astronaut["recognizer"].compute_face_descriptor(np.ascontiguousarray(c)) for c in chips]
    )
    with torch.no_grad():
        ours = port(_to_tensor(chips)).numpy()
    errors = np.abs(ours - reference).max(axis=1)
    print(f"descriptor max abs difference from dlib per chip: {errors}")
    assert errors.max() < PARITY_TOL
    # the raw descriptor (not L2-normalised), with the known norm of the astronaut's (~1.457)
    assert np.linalg.norm(ours[0]) == pytest.approx(np.linalg.norm(reference[0]), abs=1e-5)


def test_gradients_reach_the_input(port: DlibResNet) -> None:
    images = torch.rand(1, 3, 150, 150, generator=torch.Generator().manual_seed(1), requires_grad=True)
    port.embed(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in port.parameters())
    port.zero_grad(set_to_none=True)


def test_input_range_and_normalisation(port: DlibResNet) -> None:
    images = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        unit = port.embed(images)
        signed = port.embed(images * 2 - 1, input_range="[-1,1]")
        raw = port.embed(images, normalize=False)
    torch.testing.assert_close(signed, unit, atol=1e-5, rtol=0)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(raw, port(images))
    with pytest.raises(ValueError, match="150x150"):
        port.embed(torch.rand(1, 3, 112, 112))


def test_frozen_mode(port: DlibResNet) -> None:
    model = copy.deepcopy(port).freeze()
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.train().training
    images = torch.rand(1, 3, 150, 150, generator=torch.Generator().manual_seed(3), requires_grad=True)
    model.embed(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_registry_build(resnet_path: Path) -> None:
    assert RECOGNIZERS["dlib_resnet"] is DlibResNet
    model = build_recognizer("dlib_resnet")
    assert isinstance(model, DlibResNet)
    described = model.describe()
    assert described["input_size"] == [150, 150] and described["embedding_dim"] == 128
    assert described["std"] == [256 / 255] * 3
    assert described["weights"].endswith(DLIB_RESNET_FILE)


# --------------------------------------------------------------------------------------- bad .dat files


def test_truncated_or_corrupt_file_names_the_file(resnet_path: Path, tmp_path: Path) -> None:
    data = resnet_path.read_bytes()
    cases = {
        "truncated.dat": data[: len(data) // 2],
        "garbage.dat": bytes(range(256)) * 64,
        "trailing.dat": data + b"\x01\x05extra",
        "unknown_layer.dat": data.replace(b"\x07affine_", b"\x07affinX_", 1),
        "empty.dat": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DlibFormatError, match=name):
            parse_dlib_dat(path)
        with pytest.raises(DlibFormatError, match=name):
            DlibResNet(path, expected_sha256=None)
    with pytest.raises(DlibFormatError, match="truncated"):
        parse_dlib_dat(tmp_path / "truncated.dat")
    with pytest.raises(FileNotFoundError, match="missing.dat"):
        DlibResNet(tmp_path / "missing.dat")


def test_wrong_sha256_is_refused(resnet_path: Path, tmp_path: Path) -> None:
    data = bytearray(resnet_path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: still parses, but is not the published file
    path = tmp_path / "tampered.dat"
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=r"tampered\.dat: sha256 .* refusing"):
        DlibResNet(path)
    assert isinstance(DlibResNet(path, expected_sha256=None), DlibResNet)  # deliberate override
    shutil.copyfile(resnet_path, tmp_path / "copy.dat")
    assert isinstance(DlibResNet(tmp_path / "copy.dat"), DlibResNet)


# ------------------------------------------------------------------------------------------- face chips


def _coordinate_affine(dlib_lib: Any, details: Any, size: int = 600) -> np.ndarray:
    """dlib's chip→image map, read off chips of float64 x/y ramps (bilinear reproduces linear functions)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    cx = dlib_lib.extract_image_chip(np.ascontiguousarray(xs), details)
    cy = dlib_lib.extract_image_chip(np.ascontiguousarray(ys), details)
    rows, cols = np.mgrid[0 : details.rows, 0 : details.cols]
    design = np.stack([cols.ravel(), rows.ravel(), np.ones(cols.size)], 1)
    solution = np.linalg.lstsq(design, np.stack([cx.ravel(), cy.ravel()], 1), rcond=None)[0]
    return solution.T


def _dlib_shape(dlib_lib: Any, points: np.ndarray) -> Any:
    parts = dlib_lib.points([dlib_lib.point(int(x), int(y)) for x, y in points])
    return dlib_lib.full_object_detection(dlib_lib.rectangle(0, 0, 1, 1), parts)


def _random_shapes(count: int, seed: int) -> list[np.ndarray]:
    """Integer 5-point shapes: the astronaut's shape rotated, scaled, moved and jittered (face-like)."""
    rng = np.random.default_rng(seed)
    base = np.array([[255, 104], [238, 105], [195, 101], [212, 103], [224, 135]], dtype=np.float64)
    shapes = []
    for _ in range(count):
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.5)
        rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (base - base.mean(0)) @ rotation.T + 300 + rng.uniform(-60, 60, 2) + rng.normal(0, 5, (5, 2))
        shapes.append(np.round(points))
    return shapes


@pytest.mark.parametrize(("size", "padding"), [(150, 0.25), (200, 0.2), (150, 0.0)])
def test_chip_transform_equals_dlib(dlib_lib: Any, size: int, padding: float) -> None:
    shapes = _random_shapes(6, seed=size)
    ours = face_chip_affine(torch.tensor(np.stack(shapes)), size, padding).numpy()
    for points, affine in zip(shapes, ours, strict=True):
        details = dlib_lib.get_face_chip_details(_dlib_shape(dlib_lib, points), size, padding)
        np.testing.assert_allclose(affine, _coordinate_affine(dlib_lib, details), atol=1e-7)


def test_chip_sampling_and_borders_equal_dlib(dlib_lib: Any) -> None:
    """Exact bilinear values and dlib's black border (float64 image, faces partly outside the frame)."""
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 1, (200, 300))
    base = np.array([[255, 104], [238, 105], [195, 101], [212, 103], [224, 135]], dtype=np.float64)
    for shift in [(0, 0), (-60, -40), (120, 90), (-20, 60)]:
        points = np.round(base - base.mean(0) + [150, 100] + np.array(shift))
        reference = dlib_lib.get_face_chip(image, _dlib_shape(dlib_lib, points), 150, 0.25)
        ours = extract_face_chips(torch.from_numpy(image)[None, None], torch.from_numpy(points)[None])[0, 0]
        np.testing.assert_allclose(ours.numpy(), reference, atol=1e-9)


def test_astronaut_chip_and_descriptor(port: DlibResNet, astronaut: dict[str, Any]) -> None:
    image = _to_tensor(astronaut["image"])
    landmarks = landmarks_from_dlib(astronaut["shape"])[None]
    reference_chip = _to_tensor(astronaut["chip"])
    chip = extract_face_chips(image, landmarks)
    difference = (chip - reference_chip).abs()
    mean_abs, max_abs = difference.mean().item() * 255, difference.max().item() * 255
    print(f"astronaut chip vs dlib: mean abs {mean_abs:.3f}/255, max {max_abs:.4f}/255")
    assert mean_abs < 1.0 and max_abs <= 1.0 + 1e-3  # dlib truncates to uint8; ours is the exact value
    quantized = extract_face_chips(image, landmarks, quantize=True)
    assert (quantized - reference_chip).abs().max().item() < 1e-6  # dlib's uint8 chip, reproduced

    reference = np.array(
        astronaut["recognizer"].compute_face_descriptor(astronaut["image"], astronaut["shape"])
    )
    with torch.no_grad():
        from_chip = port(chip)[0].numpy()
        from_quantized = port(quantized)[0].numpy()
    print(
        "descriptor from torch chip vs dlib compute_face_descriptor(img, shape): "
        f"float chip max abs {np.abs(from_chip - reference).max():.2e} "
        f"(L2 {np.linalg.norm(from_chip - reference):.2e}); "
        f"quantized chip max abs {np.abs(from_quantized - reference).max():.2e}"
    )
    assert np.abs(from_quantized - reference).max() < PARITY_TOL
    assert np.linalg.norm(from_chip - reference) < 0.02  # vs dlib's same-person threshold 0.6


def test_chip_gradients(port: DlibResNet) -> None:
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(2, 3, 240, 240, generator=generator, requires_grad=True)
    base = torch.tensor([[165.0, 94], [148, 95], [105, 91], [122, 93], [134, 125]], dtype=torch.float64)
    landmarks = torch.stack([base, base + 3]).requires_grad_(True)
    assert (face_chip_scale(landmarks) < 1.97).all()
    for quantize in (False, True):
        chips = extract_face_chips(images, landmarks, quantize=quantize)
        assert chips.shape == (2, 3, 150, 150) and chips.dtype == torch.float32
        chips.square().mean().backward()
        assert images.grad is not None and bool((images.grad.abs().sum((1, 2, 3)) > 0).all())
        assert landmarks.grad is not None and bool((landmarks.grad.abs().sum((1, 2)) > 0).all())
        images.grad, landmarks.grad = None, None
    # end to end: an identity loss on the descriptor reaches the image and the landmarks
    port.embed(extract_face_chips(images[:1], landmarks[:1])).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert landmarks.grad is not None and landmarks.grad.abs().sum() > 0
    port.zero_grad(set_to_none=True)


def test_chip_input_errors() -> None:
    with pytest.raises(ValueError, match=r"\[B, 5, 2\]"):
        extract_face_chips(torch.rand(1, 3, 64, 64), torch.rand(1, 68, 2))
    with pytest.raises(ValueError, match="one set per image"):
        extract_face_chips(torch.rand(2, 3, 64, 64), torch.rand(1, 5, 2))
