"""MS-SSIM vs pytorch-msssim; LPIPS vs the ``lpips`` package (random trunk) and its weight handling; ST-LPIPS
vs the ``stlpips_pytorch`` package's own loading. No downloads: the real LPIPS trunks are never needed."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import lpips as lpips_package
import pytest
import pytorch_msssim
import torch
import torchvision

import src.metrics.image_quality as image_quality
import src.weights.core as weights_core
from src.metrics.image_quality import MS_SSIM_WEIGHTS, MSSSIM, ms_ssim, ms_ssim_min_size, ssim
from src.metrics.perceptual import LPIPS, STLPIPS, _import_stlpips, lpips, st_lpips
from src.weights import ChecksumMismatchError, MissingWeightsError, load_manifest

# torchvision's deprecation notices for lpips' own `pretrained=` calls in the reference constructions
pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")


def _pair(shape: tuple[int, ...], seed: int, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A target in [0, 1] and a noisy, clamped prediction; fresh values per seed."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    preds = (target + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return preds, target


# ----------------------------------------------------------------------------------------------------
# MS-SSIM
# ----------------------------------------------------------------------------------------------------

MS_SHAPES = [(2, 3, 161, 161), (2, 3, 256, 256), (2, 3, 200, 171), (3, 1, 163, 190), (1, 3, 177, 300)]


@pytest.mark.parametrize("shape", MS_SHAPES)
@pytest.mark.parametrize("noise", [0.03, 0.3])
def test_ms_ssim_matches_pytorch_msssim(shape: tuple[int, ...], noise: float) -> None:
    """Same definition, incl. the zero-padded 2x2 pooling of odd sides; float32 to 1e-5."""
    preds, target = _pair(shape, seed=sum(shape) + int(100 * noise), noise=noise)
    ref = pytorch_msssim.ms_ssim(preds, target, data_range=1.0, size_average=False)
    ours = ms_ssim(preds, target)
    assert ours.shape == (shape[0],) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", MS_SHAPES[::2])
def test_ms_ssim_float64_and_float32_accuracy(shape: tuple[int, ...]) -> None:
    """With the same (float64) Gaussian taps, float64 results agree to rounding; our float32 result is within
    1e-6 of them (pytorch-msssim's own float32 result is only within ~3e-6)."""
    preds, target = _pair(shape, seed=3 * sum(shape), noise=0.1)
    taps = image_quality._gaussian_taps(11, 1.5, torch.float64, preds.device)
    win = taps.view(1, 1, 1, -1).repeat(shape[1], 1, 1, 1)
    ref64 = pytorch_msssim.ms_ssim(
        preds.double(), target.double(), data_range=1.0, size_average=False, win=win
    )
    torch.testing.assert_close(ms_ssim(preds.double(), target.double()), ref64, rtol=0, atol=1e-12)
    torch.testing.assert_close(ms_ssim(preds, target).double(), ref64, rtol=0, atol=1e-6)


def test_ms_ssim_other_weights_window_and_range() -> None:
    preds, target = _pair((3, 3, 120, 97), seed=11)
    preds, target = preds * 255, target * 255
    weights = (0.2, 0.3, 0.5)
    ref = pytorch_msssim.ms_ssim(
        preds, target, data_range=255, size_average=False, win_size=7, win_sigma=1.0, weights=list(weights)
    )
    ours = ms_ssim(preds, target, data_range=255, weights=weights, kernel_size=7, sigma=1.0)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


def test_ms_ssim_minimum_size() -> None:
    assert ms_ssim_min_size() == 161 and ms_ssim_min_size(7, 3) == 25
    preds, target = _pair((1, 3, 161, 161), seed=1)
    assert ms_ssim(preds, target).shape == (1,)
    preds, target = _pair((1, 3, 160, 400), seed=1)
    with pytest.raises(ValueError, match=r"MS-SSIM: images of size 160x400 are too small.*at least 161 px"):
        ms_ssim(preds, target)
    with pytest.raises(ValueError, match="weights must be a non-empty"):
        ms_ssim(*_pair((1, 3, 170, 170), seed=2), weights=())
    with pytest.raises(ValueError, match="MS-SSIM: values span"):
        ms_ssim(*_pair((1, 3, 170, 170), seed=2), data_range=0.5)


def test_ms_ssim_identical_class_mean_and_gradient() -> None:
    preds, target = _pair((4, 3, 170, 170), seed=5)
    torch.testing.assert_close(ms_ssim(target, target), torch.ones(4), rtol=0, atol=1e-6)
    metric = MSSSIM()
    metric.update(preds[:1], target[:1])
    metric.update(preds[1:], target[1:])
    torch.testing.assert_close(metric.compute(), ms_ssim(preds, target).mean(), rtol=0, atol=1e-6)
    assert metric.weights == MS_SSIM_WEIGHTS
    # differentiable, with the reference's gradient
    x = preds[:2].double().requires_grad_(True)
    ms_ssim(x, target[:2].double()).sum().backward()
    x_ref = preds[:2].double().requires_grad_(True)
    pytorch_msssim.ms_ssim(x_ref, target[:2].double(), data_range=1.0, size_average=False).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-9)


def test_ssim_batch_chunking_does_not_change_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU path splits the batch into cache-sized chunks; values equal the one-chunk computation."""
    preds, target = _pair((5, 3, 64, 64), seed=9)
    whole_ssim, whole_ms = ssim(preds, target), ms_ssim(preds, target, weights=(0.5, 0.5))
    monkeypatch.setattr(image_quality, "_CPU_CHUNK_VALUES", 2 * 3 * 64 * 64)  # chunks of 2 images
    torch.testing.assert_close(ssim(preds, target), whole_ssim, rtol=0, atol=1e-7)
    torch.testing.assert_close(ms_ssim(preds, target, weights=(0.5, 0.5)), whole_ms, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# LPIPS
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", "squeeze", pytest.param("vgg", marks=pytest.mark.slow)])
def test_lpips_random_backbone_equals_lpips_package(net: str) -> None:
    """Same seed → the same random trunk as ``lpips.LPIPS(pnet_rand=True)``; same heads; both input ranges."""
    preds, target = _pair((3, 3, 64, 64), seed=len(net), noise=0.3)
    torch.manual_seed(123)
    reference = lpips_package.LPIPS(net=net, pnet_rand=True, verbose=False)
    with torch.no_grad():
        expected = reference(preds * 2 - 1, target * 2 - 1).flatten()

    with pytest.warns(UserWarning, match=f"lpips_{net}_RANDOM"):
        metric = LPIPS(net=net, random_backbone=True, seed=123)
    assert metric.report_name == f"lpips_{net}_RANDOM"
    assert f"name=lpips_{net}_RANDOM" in repr(metric)
    torch.testing.assert_close(metric.per_sample(preds, target), expected, rtol=1e-5, atol=1e-7)
    metric.update(preds, target)
    torch.testing.assert_close(metric.compute(), expected.mean(), rtol=1e-5, atol=1e-7)

    with pytest.warns(UserWarning, match="RANDOM"):
        functional = lpips(
            preds * 2 - 1, target * 2 - 1, net=net, input_range="[-1,1]", random_backbone=True, seed=123
        )
    torch.testing.assert_close(functional, expected, rtol=1e-5, atol=1e-7)


def test_lpips_input_range_is_checked_and_eval_mode_is_kept() -> None:
    with pytest.warns(UserWarning):
        metric = LPIPS(net="alex", random_backbone=True)
    preds, target = _pair((2, 3, 64, 64), seed=3)
    with pytest.raises(
        ValueError, match=r"`preds` values lie in \[-1.*outside the declared input_range=\[0,1\]"
    ):
        metric.update(preds * 2 - 1, target)
    with pytest.raises(ValueError, match=r"input_range=\[-1,1\]"):
        lpips(preds * 255, target, input_range="[-1,1]", random_backbone=True)
    with pytest.warns(UserWarning, match="RANDOM"), pytest.warns(UserWarning, match="no value is negative"):
        lpips(preds, target, input_range="[-1,1]", random_backbone=True)
    with pytest.raises(ValueError, match="input_range must be one of"):
        LPIPS(net="alex", input_range="0-1", random_backbone=True)
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPS(net="resnet", random_backbone=True)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        metric.update(preds[:, :1], target[:, :1])
    before = metric.per_sample(preds, target)
    metric.train()  # the heads' dropout must stay off
    assert not metric.network.network.training
    torch.testing.assert_close(metric.per_sample(preds, target), before, rtol=0, atol=0)
    assert not any(p.requires_grad for p in metric.parameters())
    # the network is held outside the module tree: checkpoints neither carry nor overwrite its weights
    assert set(metric.state_dict()) <= {"total", "count"} and not list(metric.parameters())


def test_lpips_is_differentiable_wrt_images() -> None:
    preds, target = _pair((2, 3, 64, 64), seed=4)
    preds.requires_grad_(True)
    with pytest.warns(UserWarning):
        lpips(preds, target, random_backbone=True).sum().backward()
    assert preds.grad is not None and float(preds.grad.abs().sum()) > 0


def test_lpips_missing_weights_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    for net, file in [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")]:
        entry = load_manifest()[f"lpips-{net}-backbone"]
        with pytest.raises(MissingWeightsError) as info:
            LPIPS(net=net)
        message = str(info.value)
        assert file in message and entry.sha256 in message
        assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / file) in message
        assert f"python -m src.weights fetch lpips-{net}-backbone" in message


def test_lpips_refuses_cached_backbone_with_wrong_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    fake = hub / "alexnet-owt-7be5be79.pth"
    torch.save(
        torchvision.models.alexnet().state_dict(), fake
    )  # a real AlexNet file, but not the published one
    with pytest.raises(ChecksumMismatchError) as info:
        LPIPS(net="alex")
    message = str(info.value)
    assert str(fake) in message
    assert load_manifest()["lpips-alex-backbone"].sha256 in message
    assert hashlib.sha256(fake.read_bytes()).hexdigest() in message


def test_lpips_loads_backbone_file_like_lpips_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trunk is loaded from the verified file into lpips' slices exactly as lpips builds it from
    torchvision: a stand-in AlexNet file (its checksum patched into the manifest) gives the same values as
    ``lpips.LPIPS()`` whose torchvision AlexNet holds the same state dict."""
    torch.manual_seed(7)
    trunk = torchvision.models.alexnet()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    path = hub / "alexnet-owt-7be5be79.pth"
    torch.save(trunk.state_dict(), path)
    manifest = load_manifest()
    manifest["lpips-alex-backbone"] = replace(
        manifest["lpips-alex-backbone"],
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size_bytes=path.stat().st_size,
    )
    monkeypatch.setattr(weights_core, "load_manifest", lambda path=None: manifest)
    metric = LPIPS(net="alex")
    assert metric.report_name == "lpips_alex"

    monkeypatch.setattr(torchvision.models, "alexnet", lambda *args, **kwargs: trunk)
    reference = lpips_package.LPIPS(net="alex", verbose=False)  # pretrained trunk = our stand-in
    preds, target = _pair((2, 3, 64, 64), seed=8, noise=0.3)
    with torch.no_grad():
        expected = reference(preds * 2 - 1, target * 2 - 1).flatten()
    torch.testing.assert_close(metric.per_sample(preds, target), expected, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# ST-LPIPS
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", pytest.param("vgg", marks=pytest.mark.slow)])
def test_st_lpips_offline_named_and_equal_to_package(net: str) -> None:
    metric = STLPIPS(net=net)
    assert metric.report_name == f"st_lpips_{net}" and "lpips_" + net != metric.report_name
    assert "IPython" not in sys.modules or not getattr(sys.modules["IPython"], "__doc__", "").startswith(
        "Stub"
    )
    preds, target = _pair((2, 3, 64, 64), seed=21, noise=0.2)
    # reference: the package's own constructor, which loads its shipped file itself
    reference = _import_stlpips().LPIPS(net=net, variant="shift_tolerant", verbose=False)
    with torch.no_grad():
        expected = reference(preds * 2 - 1, target * 2 - 1).flatten()
    torch.testing.assert_close(metric.per_sample(preds, target), expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(st_lpips(target, target, net=net), torch.zeros(2), rtol=0, atol=1e-7)
    metric.update(preds, target)
    torch.testing.assert_close(metric.compute(), expected.mean(), rtol=1e-5, atol=1e-7)


def test_a_network_built_on_the_meta_device_is_not_reused_for_real_builds() -> None:
    """Experiments are built on the meta device in the default tests; the shared network cache keeps those
    apart, so a later real build gets real weights."""
    from src.losses.perceptual import PerceptualLoss

    with torch.device("meta"):
        PerceptualLoss(kind="lpips_random", net="alex")
    real = PerceptualLoss(kind="lpips_random", net="alex").to("cpu")
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    value = real(images, images.flip(0))
    assert not value.is_meta and torch.isfinite(value).all()
