"""Image-quality metrics vs independent references: scikit-image, pytorch-msssim, torchmetrics and plain
numpy."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_msssim
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

from src.metrics import MAE, MSE, PSNR, PSNR_CAP_DB, SSIM, mae, mse, psnr, ssim

SHAPES = [(4, 3, 64, 64), (5, 3, 112, 112), (4, 3, 48, 80), (6, 1, 23, 17)]


def _pair(shape: tuple[int, ...], seed: int, noise: float = 0.08) -> tuple[torch.Tensor, torch.Tensor]:
    """A target in [0, 1] and a noisy, clamped prediction; fresh values per seed."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    preds = (target + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return preds, target


def _skimage_ssim(preds: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    return np.array(
        [
            structural_similarity(
                target[i].double().numpy(),
                preds[i].double().numpy(),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
                channel_axis=0,
            )
            for i in range(preds.shape[0])
        ]
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_ssim_matches_skimage(shape: tuple[int, ...]) -> None:
    preds, target = _pair(shape, seed=sum(shape))
    ref = _skimage_ssim(preds, target)
    assert ssim(preds, target).shape == (shape[0],)
    np.testing.assert_allclose(ssim(preds, target).numpy(), ref, rtol=0, atol=1e-6)  # float32 compute
    np.testing.assert_allclose(ssim(preds.double(), target.double()).numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [s for s in SHAPES if min(s[2:]) >= 11])
def test_ssim_matches_pytorch_msssim(shape: tuple[int, ...]) -> None:
    preds, target = _pair(shape, seed=7 * sum(shape), noise=0.2)
    ref = pytorch_msssim.ssim(preds.double(), target.double(), data_range=1.0, size_average=False)
    torch.testing.assert_close(ssim(preds, target).double(), ref, rtol=0, atol=1e-6)


def test_ssim_other_window_and_range() -> None:
    """kernel_size/sigma and data_range are honoured (skimage: sigma 1.0 -> 9 taps; images in [0, 255])."""
    preds, target = _pair((3, 3, 40, 33), seed=3)
    preds, target = preds * 255, target * 255
    ours = ssim(preds.double(), target.double(), data_range=255.0, kernel_size=9, sigma=1.0)
    ref = [
        structural_similarity(
            target[i].double().numpy(),
            preds[i].double().numpy(),
            gaussian_weights=True,
            sigma=1.0,  # skimage truncates at 3.5 sigma: radius int(3.5 + 0.5) = 4 -> 9 taps
            use_sample_covariance=False,
            data_range=255.0,
            channel_axis=0,
        )
        for i in range(3)
    ]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-12)


def test_ssim_identical_is_one() -> None:
    x, _ = _pair((4, 3, 32, 32), seed=11)
    torch.testing.assert_close(ssim(x, x), torch.ones(4), rtol=0, atol=1e-6)


def test_ssim_is_differentiable() -> None:
    preds, target = _pair((2, 2, 13, 14), seed=9, noise=0.2)
    preds = preds.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: ssim(p, target.double()), (preds,), fast_mode=True)


def test_integer_images_are_accepted() -> None:
    preds, target = _pair((3, 3, 16, 16), seed=4)
    p8, t8 = (preds * 255).round().to(torch.uint8), (target * 255).round().to(torch.uint8)
    for fn in (psnr, ssim, mse, mae):
        expected = fn(p8.float(), t8.float(), data_range=255.0)
        torch.testing.assert_close(fn(p8, t8, data_range=255.0), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_psnr_mse_mae_match_references(shape: tuple[int, ...]) -> None:
    preds, target = _pair(shape, seed=100 + sum(shape))
    p, t = preds.double().numpy(), target.double().numpy()
    ref_psnr = [peak_signal_noise_ratio(t[i], p[i], data_range=1.0) for i in range(shape[0])]
    np.testing.assert_allclose(psnr(preds, target).numpy(), ref_psnr, rtol=0, atol=1e-4)
    np.testing.assert_allclose(psnr(preds.double(), target.double()).numpy(), ref_psnr, rtol=1e-12)
    ref_mse = ((p - t) ** 2).reshape(shape[0], -1).mean(axis=1)
    ref_mae = np.abs(p - t).reshape(shape[0], -1).mean(axis=1)
    np.testing.assert_allclose(mse(preds, target).numpy(), ref_mse, rtol=1e-5)
    np.testing.assert_allclose(mae(preds, target).numpy(), ref_mae, rtol=1e-5)


def test_psnr_identical_is_inf_and_class_caps() -> None:
    preds, target = _pair((4, 3, 16, 16), seed=5)
    preds[1] = target[1]
    values = psnr(preds, target)
    assert torch.isinf(values[1]) and torch.isfinite(values[[0, 2, 3]]).all()
    metric = PSNR()
    metric.update(preds, target)
    expected = values.clamp(max=PSNR_CAP_DB).double().mean()
    torch.testing.assert_close(metric.compute().double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_psnr_pooled_matches_torchmetrics(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """reduction="pooled" is torchmetrics' default PSNR (MSE over every pixel of the batch, data_range
    given); the per-image mean differs from it (by Jensen's inequality it is never lower). torchmetrics
    converts ln to log10 with a float32 constant (``10 / torch.log(tensor(10.0))``), so even in float64 it
    agrees only to ~1e-7 relative; a float64 numpy reference agrees to 1e-12."""
    preds, target = _pair(shape, seed=300 + sum(shape), noise=0.05)
    preds[0] = (target[0] + 0.2 * (preds[0] - target[0])).clamp(0, 1)  # uneven per-image MSEs
    preds, target = preds.to(dtype), target.to(dtype)
    ref = tm_psnr(preds, target, data_range=1.0)
    pooled = psnr(preds, target, reduction="pooled")
    assert pooled.shape == () and pooled.dtype == dtype
    torch.testing.assert_close(pooled.double(), ref.double(), rtol=2e-7, atol=0)
    p, t = preds.double().numpy(), target.double().numpy()
    exact = 10 * np.log10(1.0 / np.mean((p - t) ** 2))
    assert abs(float(pooled) - exact) <= (1e-12 if dtype == torch.float64 else 1e-4)
    per_image = psnr(preds, target)
    assert per_image.shape == (shape[0],)
    assert float(per_image.mean()) > float(pooled) + 0.1  # not the same quantity
    metric = PSNR(reduction="pooled")
    for i in range(shape[0]):  # one image per update: pooled state = squared-error sum and pixel count
        metric.update(preds[i : i + 1], target[i : i + 1])
    torch.testing.assert_close(metric.compute().double(), ref.double(), rtol=0, atol=1e-4)


def test_psnr_default_is_unchanged_mean_of_per_image_values() -> None:
    """The default class value (what training logs) is the mean of per-image PSNRs capped at 100 dB."""
    preds, target = _pair((5, 3, 20, 20), seed=8)
    preds[2] = target[2]
    metric = PSNR()
    assert metric.reduction == "per_image" and metric.max_db == PSNR_CAP_DB == 100.0
    metric.update(preds, target)
    p, t = preds.double().numpy(), target.double().numpy()
    ref = [min(100.0, peak_signal_noise_ratio(t[i], p[i], data_range=1.0)) for i in range(5)]
    assert float(metric.compute()) == pytest.approx(np.mean(ref), rel=1e-6)
    # functional: no cap unless asked, the same cap when asked
    assert torch.isinf(psnr(preds, target)[2])
    assert float(psnr(preds, target, max_db=100.0)[2]) == 100.0
    assert float(psnr(target, target, reduction="pooled", max_db=60.0)) == 60.0
    uncapped = PSNR(max_db=None)
    uncapped.update(preds, target)
    assert torch.isinf(uncapped.compute())
    with pytest.raises(ValueError, match="PSNR: reduction must be one of"):
        psnr(preds, target, reduction="mean")
    with pytest.raises(ValueError, match="PSNR: max_db must be a positive finite number"):
        PSNR(max_db=0)


@pytest.mark.parametrize(
    ("cls", "fn"),
    [(PSNR, psnr), (SSIM, ssim), (MSE, mse), (MAE, mae)],
)
def test_class_is_mean_over_images_of_functional(cls: type, fn: object) -> None:
    """Uneven batches: the class averages per image, not per batch."""
    metric = cls(data_range=1.0)
    values = []
    for i, b in enumerate([1, 5, 2, 7]):
        preds, target = _pair((b, 3, 24, 20), seed=200 + i)
        metric.update(preds, target)
        values.append(fn(preds, target))
    expected = torch.cat(values).double().mean()
    torch.testing.assert_close(metric.compute().double(), expected, rtol=1e-6, atol=0)
    metric.reset()
    with (
        pytest.warns(UserWarning, match="called before the ``update``"),  # torchmetrics' own warning
        pytest.raises(ValueError, match=f"{cls.metric_name}: compute\\(\\) called on an empty state"),
    ):
        metric.compute()


@pytest.mark.parametrize(("name", "fn"), [("PSNR", psnr), ("SSIM", ssim), ("MSE", mse), ("MAE", mae)])
def test_errors(name: str, fn: object) -> None:
    preds, target = _pair((2, 3, 16, 16), seed=1)
    with pytest.raises(ValueError, match=f"{name}: preds and target must have the same shape"):
        fn(preds, target[:, :, :15])
    with pytest.raises(ValueError, match=f"{name}: expected images of shape"):
        fn(preds[0], target[0])
    bad = preds.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=f"{name}: `preds` contains non-finite values \\(1 NaN"):
        fn(bad, target)
    with pytest.raises(ValueError, match=f"{name}: values span"):
        fn(preds * 255, target * 255)  # [0, 255] images with the default data_range=1
    with pytest.raises(ValueError, match=f"{name}: values span"):
        fn(preds * 2 - 1, target * 2 - 1)  # [-1, 1] images
    with pytest.raises(ValueError, match=f"{name}: data_range must be"):
        fn(preds, target, data_range=0.0)
    with pytest.raises(ValueError, match=f"{name}: `target` must be a torch.Tensor"):
        fn(preds, target.numpy())


def test_ssim_specific_errors() -> None:
    preds, target = _pair((2, 3, 10, 30), seed=2)
    with pytest.raises(ValueError, match="SSIM: images of size 10x30 are smaller than the 11x11 window"):
        ssim(preds, target)
    with pytest.raises(ValueError, match="SSIM: kernel_size must be a positive odd integer"):
        SSIM(kernel_size=4)
    with pytest.raises(ValueError, match="SSIM: sigma must be positive"):
        ssim(preds, target, kernel_size=5, sigma=0.0)
    metric = SSIM()
    with pytest.raises(ValueError, match="SSIM: preds and target must have the same shape"):
        metric.update(preds, target[:1])
