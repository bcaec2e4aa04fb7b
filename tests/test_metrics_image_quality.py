"""Image-quality metrics vs independent references: scikit-image, pytorch-msssim and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_msssim
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

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
