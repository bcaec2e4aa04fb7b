"""Full-reference image-quality metrics: PSNR, SSIM, MS-SSIM, MSE, MAE (per-image functionals, Metrics).

Conventions
-----------
* Inputs are ``[B, C, H, W]`` floating tensors whose values span at most ``data_range`` (the project
  convention is RGB in ``[0, 1]`` with ``data_range=1``). Integer / half inputs are computed in float32.
* Functional forms return one value **per image** (``Tensor[B]``); the classes average those per-image
  values over every image seen (a mean over images, not over pixels or batches) and are DDP-safe.
  PSNR also has ``reduction="pooled"`` (one PSNR of the MSE over all pixels, torchmetrics' default), and
  the :class:`PSNR` class caps per-image values at ``max_db`` = 100 dB; see :func:`psnr`.
* Measured agreement with the references (scikit-image, pytorch-msssim, torchmetrics): ``docs/metrics.md``.
* Errors (shape mismatch, non-finite values, values outside ``data_range``, images smaller than the SSIM
  window, empty state) raise :class:`ValueError` naming the metric.

SSIM reference
--------------
:func:`ssim` is the standard Gaussian-window SSIM (Wang et al. 2004; K1=0.01, K2=0.03, population
covariances) computed with a Gaussian filter (``kernel_size`` taps, ``sigma``) over the **valid**
interior only (no padding): the SSIM map has size ``(H-k+1) x (W-k+1)`` and is averaged over channels and
positions. This is the definition of ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)`` (it crops ``(k-1)/2`` pixels from
each border before averaging, so its border mode never enters) and of
``pytorch_msssim.ssim(x, y, data_range=1, size_average=False)``. Measured agreement: with scikit-image to
3e-16 in float64 and 2e-7 in float32; with pytorch-msssim (float64) to 2e-7 from float32 inputs.
It differs from kornia / torchmetrics defaults, which pad the borders ('same' output) before averaging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.metrics._checks import check_data_range, check_image_pair
from src.metrics.base import PerSampleMeanMetric

#: PSNR (dB) used in place of ``inf`` (identical images) by the :class:`PSNR` class (its default ``max_db``).
PSNR_CAP_DB = 100.0

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

__all__ = [
    "MAE",
    "MSE",
    "MSSSIM",
    "MS_SSIM_WEIGHTS",
    "PSNR",
    "PSNR_CAP_DB",
    "PSNR_REDUCTIONS",
    "SSIM",
    "mae",
    "ms_ssim",
    "ms_ssim_min_size",
    "mse",
    "psnr",
    "ssim",
]


def mse(preds: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image mean squared error ``mean((preds - target)^2)`` over C, H, W → ``Tensor[B]``.

    ``data_range`` is only used to validate the input range.
    """
    data_range = check_data_range("MSE", data_range)
    preds, target = check_image_pair("MSE", preds, target, data_range)
    return (preds - target).square_().flatten(1).mean(dim=1)


def mae(preds: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image mean absolute error ``mean(|preds - target|)`` over C, H, W → ``Tensor[B]``.

    ``data_range`` is only used to validate the input range.
    """
    data_range = check_data_range("MAE", data_range)
    preds, target = check_image_pair("MAE", preds, target, data_range)
    return (preds - target).abs().flatten(1).mean(dim=1)


#: PSNR reductions: one value per image, or one value from the MSE pooled over every pixel of the batch.
PSNR_REDUCTIONS = ("per_image", "pooled")


def _check_psnr_options(name: str, reduction: str, max_db: float | None) -> float | None:
    if reduction not in PSNR_REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {list(PSNR_REDUCTIONS)}, got {reduction!r}")
    if max_db is None:
        return None
    if (
        isinstance(max_db, bool)
        or not isinstance(max_db, int | float)
        or not 0 < float(max_db) < float("inf")
    ):
        raise ValueError(f"{name}: max_db must be a positive finite number of dB or None, got {max_db!r}")
    return float(max_db)


def psnr(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: str = "per_image",
    max_db: float | None = None,
) -> Tensor:
    """PSNR in dB, ``10 log10(data_range^2 / MSE)``.

    ``reduction="per_image"`` (default): the MSE of each image over C, H, W → ``Tensor[B]``, as
    ``skimage.metrics.peak_signal_noise_ratio`` per image; the :class:`PSNR` class averages these (a *mean of
    per-image PSNRs*, the convention of face-protection results tables). ``reduction="pooled"``: one MSE over
    every pixel of the batch → a scalar, which is what ``torchmetrics.functional.peak_signal_noise_ratio``
    computes by default (``reduction="elementwise_mean", dim=None``; agreement measured in
    ``docs/metrics.md``). They differ whenever the per-image MSEs differ: by Jensen's inequality the pooled
    value is never above the mean of the per-image values, and equals it only when all MSEs are equal.

    Measured agreement: per image with scikit-image to 4e-16 relative in float64 and 2.3e-6 dB in float32;
    pooled with torchmetrics to 2e-6 dB (torchmetrics converts ln to log10 with a float32 constant, so even
    its float64 result is off by ~1e-6 dB; a float64 numpy reference agrees to 1e-12).

    Identical images (MSE = 0) give ``+inf``; ``max_db`` (e.g. :data:`PSNR_CAP_DB` = 100, what the
    :class:`PSNR` class uses) caps every returned value at that many dB.
    """
    data_range = check_data_range("PSNR", data_range)
    max_db = _check_psnr_options("PSNR", reduction, max_db)
    preds, target = check_image_pair("PSNR", preds, target, data_range)
    err = (preds - target).square_().flatten(1).mean(dim=1)
    if reduction == "pooled":
        err = err.mean()  # every image has C*H*W pixels: the mean of the per-image MSEs is the pooled MSE
    value = 10.0 * torch.log10(data_range**2 / err)  # err == 0 -> +inf (division by zero in float)
    return value if max_db is None else value.clamp(max=max_db)


def _gaussian_taps(kernel_size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised 1-D Gaussian taps around the centre tap (scipy gaussian_filter with radius k//2)."""
    x = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _channels_last_is_faster(x: Tensor) -> bool:
    """Whether to filter in channels-last layout: on CPU, oneDNN's depthwise float32 convolution runs ~2.5x
    faster channels-last than NCHW (measured 109 vs 288 ms for 32x15x256² maps); float64 and GPU keep NCHW."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )


def _check_ssim_args(name: str, kernel_size: int, sigma: float) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name}: kernel_size must be a positive odd integer, got {kernel_size!r}")
    if not float(sigma) > 0:
        raise ValueError(f"{name}: sigma must be positive, got {sigma!r}")


def _batch_chunks(x: Tensor) -> int:
    """Images per chunk: on CPU the SSIM pipeline (~15 full-size temporaries per image) is memory-bound, and
    chunks of about :data:`_CPU_CHUNK_VALUES` input values keep the temporaries in cache (measured ~2x faster
    than one pass over 32x3x256² at once); on GPU the whole batch is one chunk."""
    if x.device.type != "cpu":
        return x.shape[0]
    return max(1, _CPU_CHUNK_VALUES // max(1, x[0].numel()))


#: Input values (C*H*W per image times images) processed per chunk by SSIM / MS-SSIM on CPU: 4 images of
#: 3x256² (~2x faster than unchunked at 32x3x256²; 400k is no faster, and fewer, larger chunks suffer less
#: when other processes compete for the cores).
_CPU_CHUNK_VALUES = 800_000


def _ssim_and_cs(
    preds: Tensor,
    target: Tensor,
    window: tuple[Tensor, ...],
    data_range: float,
    channels_last: bool,
) -> tuple[Tensor, Tensor]:
    """Per-(image, channel) means of the SSIM map and of the contrast-structure map, both ``[B, C]``.

    The five moment maps ``x, y, x², y², xy`` are stacked and filtered by grouped convolutions over the valid
    interior (see :func:`_window`); the formula then runs on few, partly in-place operations. The moments are
    taken of the images shifted by ``-data_range / 2`` (variances and covariance do not change; the means are
    shifted back), which removes most of the float32 cancellation in ``E[x²] - E[x]²``: on uniform-noise pairs
    float32 MS-SSIM stays within 1e-7 of float64 (5e-6 unshifted; pytorch-msssim: 3e-6).
    """
    c = preds.shape[1]
    shift = 0.5 * data_range
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    if channels_last:
        preds = preds.contiguous(memory_format=torch.channels_last)
        target = target.contiguous(memory_format=torch.channels_last)
    x, y = preds - shift, target - shift
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    del x, y
    for kernel in window:
        stacked = F.conv2d(stacked, kernel, groups=5 * c)
    mu_x, mu_y, e_xx, e_yy, e_xy = stacked.split(c, dim=1)
    del stacked
    # cs = (2 cov_xy + c2) / (var_x + var_y + c2), from the shifted moments
    cs_map = torch.addcmul(e_xy, mu_x, mu_y, value=-1).mul_(2).add_(c2)
    var_sum = (e_xx + e_yy).addcmul_(mu_x, mu_x, value=-1).addcmul_(mu_y, mu_y, value=-1).add_(c2)
    cs_map = cs_map.div_(var_sum)
    del var_sum
    # luminance = (2 mu_x mu_y + c1) / (mu_x² + mu_y² + c1), with the true means
    mu_x, mu_y = mu_x + shift, mu_y + shift
    luminance = (mu_x * mu_y).mul_(2).add_(c1)
    luminance = luminance.div_(torch.addcmul(mu_x * mu_x, mu_y, mu_y).add_(c1))
    ssim_map = luminance.mul_(cs_map)
    return ssim_map.mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def _window(
    kernel_size: int, sigma: float, channels: int, like: Tensor, channels_last: bool
) -> tuple[Tensor, ...]:
    """Gaussian kernels for the grouped convolution of the ``5 * channels`` stacked maps.

    Channels-last (CPU float32): one ``k x k`` kernel — oneDNN's channels-last depthwise convolution is fast
    and 15 channels fill its SIMD lanes. Otherwise (float64, GPU): two 1-D passes (``1 x k`` then ``k x 1``),
    ~4x faster than the 2-D kernel in NCHW float64 (3.1 s vs 0.75 s for MS-SSIM on 2x3x256²).
    """
    taps = _gaussian_taps(kernel_size, float(sigma), like.dtype, like.device)
    if channels_last:
        return ((taps[:, None] * taps[None, :]).repeat(5 * channels, 1, 1, 1),)
    return (
        taps.view(1, 1, 1, -1).repeat(5 * channels, 1, 1, 1),
        taps.view(1, 1, -1, 1).repeat(5 * channels, 1, 1, 1),
    )


def ssim(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:
    """Per-image mean SSIM (Gaussian window, K1=0.01, K2=0.03, valid interior) → ``Tensor[B]``.

    Implemented as one grouped convolution over the stacked maps ``x, y, x², y², xy`` (channels-last on CPU
    float32, the layout kornia 0.9 also uses), processed in cache-sized batch chunks on CPU; faster than
    ``kornia.metrics.ssim`` and ~5x faster than pytorch-msssim / torchmetrics on CPU
    (``benchmarks/bench_metrics.py``). Differentiable (usable as a loss).
    See the module docstring for the reference it matches (scikit-image / pytorch-msssim, valid borders).
    Requires ``H, W >= kernel_size``.
    """
    name = "SSIM"
    data_range = check_data_range(name, data_range)
    _check_ssim_args(name, kernel_size, sigma)
    preds, target = check_image_pair(name, preds, target, data_range)
    _, c, h, w = preds.shape
    if h < kernel_size or w < kernel_size:
        raise ValueError(
            f"{name}: images of size {h}x{w} are smaller than the {kernel_size}x{kernel_size} window"
        )
    channels_last = _channels_last_is_faster(preds)
    window = _window(kernel_size, sigma, c, preds, channels_last)
    step = _batch_chunks(preds)
    values = [
        _ssim_and_cs(preds[i : i + step], target[i : i + step], window, data_range, channels_last)[0].mean(
            dim=1
        )
        for i in range(0, preds.shape[0], step)
    ]
    return values[0] if len(values) == 1 else torch.cat(values)


#: Wang et al. (2003) MS-SSIM scale weights (5 scales), as in pytorch-msssim and torchmetrics.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_min_size(kernel_size: int = 11, levels: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest allowed ``min(H, W)`` for MS-SSIM: ``(kernel_size - 1) * 2**(levels - 1) + 1`` (161 for the
    default 11-tap window and 5 scales), so that the coarsest scale still holds one full window."""
    return (kernel_size - 1) * 2 ** (levels - 1) + 1


def _check_ms_ssim_weights(name: str, weights: object) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in weights)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: weights must be a sequence of numbers, got {weights!r}") from None
    if not values or not all(v >= 0 and v < float("inf") for v in values):
        raise ValueError(f"{name}: weights must be a non-empty sequence of finite, non-negative numbers")
    return values


def ms_ssim(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    kernel_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:
    """Per-image multi-scale SSIM (Wang, Simoncelli & Bovik 2003) → ``Tensor[B]``.

    One scale per weight: at each scale but the last the mean contrast-structure term ``cs`` is taken, then
    both images are halved by 2x2 average pooling (for an odd side, padded by one zero on each side and
    counted, i.e. ``F.avg_pool2d(x, 2, padding=side % 2)``); the last scale contributes the full SSIM.
    Per image and channel, ``MS-SSIM = prod_l relu(cs_l)^w_l * relu(ssim_L)^w_L``; the result is the mean
    over channels. Each scale is the valid-interior Gaussian SSIM of :func:`ssim`. This is the definition of
    ``pytorch_msssim.ms_ssim(x, y, data_range, size_average=False, win_size=kernel_size, weights=weights)``;
    measured agreement: 2.7e-6 in float32 (tests allow 1e-5), 6e-15 in float64 with the same Gaussian taps.

    Minimum size: ``min(H, W) >= (kernel_size - 1) * 2**(len(weights) - 1) + 1`` — **161 px** for the
    defaults (see :func:`ms_ssim_min_size`); smaller images raise ``ValueError`` (use fewer scales or a
    smaller window).
    """
    name = "MS-SSIM"
    data_range = check_data_range(name, data_range)
    _check_ssim_args(name, kernel_size, sigma)
    weights = _check_ms_ssim_weights(name, weights)
    preds, target = check_image_pair(name, preds, target, data_range)
    _, c, h, w = preds.shape
    min_size = ms_ssim_min_size(kernel_size, len(weights))
    if min(h, w) < min_size:
        raise ValueError(
            f"{name}: images of size {h}x{w} are too small for {len(weights)} scales with a "
            f"{kernel_size}x{kernel_size} window: the smaller side must be at least {min_size} px "
            f"((kernel_size - 1) * 2**(scales - 1) + 1); use fewer scales (`weights`) or a smaller "
            f"kernel_size"
        )
    channels_last = _channels_last_is_faster(preds)
    window = _window(kernel_size, sigma, c, preds, channels_last)
    exponents = torch.tensor(weights, dtype=preds.dtype, device=preds.device)
    step = _batch_chunks(preds)
    values = []
    for i in range(0, preds.shape[0], step):
        x, y = preds[i : i + step], target[i : i + step]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        terms = []
        for level in range(len(weights)):
            ssim_c, cs_c = _ssim_and_cs(x, y, window, data_range, channels_last)
            if level < len(weights) - 1:
                terms.append(cs_c)
                padding = (x.shape[2] % 2, x.shape[3] % 2)
                x = F.avg_pool2d(x, kernel_size=2, padding=padding)
                y = F.avg_pool2d(y, kernel_size=2, padding=padding)
        terms.append(ssim_c)
        stacked = torch.stack(terms).relu_()  # [levels, b, C]
        values.append(stacked.pow(exponents[:, None, None]).prod(dim=0).mean(dim=1))
    return values[0] if len(values) == 1 else torch.cat(values)


class PSNR(PerSampleMeanMetric):
    """PSNR (dB) over every image seen (all ranks), as a float32 scalar.

    ``reduction="per_image"`` (default): the mean of the per-image PSNRs, each capped at ``max_db``
    (default :data:`PSNR_CAP_DB` = 100 dB, so one identical pair cannot make the mean infinite).
    ``reduction="pooled"``: the PSNR of the MSE pooled over every pixel of every image (torchmetrics'
    ``PeakSignalNoiseRatio`` convention), capped at ``max_db``. ``max_db=None`` disables the cap.
    See :func:`psnr` for why the two differ.
    """

    higher_is_better = True
    metric_name = "PSNR"

    def __init__(
        self,
        data_range: float = 1.0,
        reduction: str = "per_image",
        max_db: float | None = PSNR_CAP_DB,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.data_range = check_data_range(self.metric_name, data_range)
        self.max_db = _check_psnr_options(self.metric_name, reduction, max_db)
        self.reduction = reduction

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image PSNR capped at ``max_db``."""
        return psnr(preds, target, self.data_range, max_db=self.max_db)

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add one batch: per-image PSNRs, or (pooled) its squared errors and pixel count."""
        if self.reduction == "per_image":
            super().update(preds, target)
            return
        preds, target = check_image_pair(self.metric_name, preds.detach(), target.detach(), self.data_range)
        err = (preds - target).square_()
        self.total += err.sum(dtype=torch.float64).to(self.total.device)
        self.count += err.numel()

    def compute(self) -> Tensor:
        """Mean per-image PSNR, or the PSNR of the pooled MSE (all ranks)."""
        if self.reduction == "per_image":
            return super().compute()
        if int(self.count) == 0:
            raise ValueError(
                f"{self.metric_name}: compute() called on an empty state (no update() with data on any rank)"
            )
        value = 10.0 * torch.log10(self.data_range**2 / (self.total / self.count))
        if self.max_db is not None:
            value = value.clamp(max=self.max_db)
        return value.to(torch.float32)


class SSIM(PerSampleMeanMetric):
    """Mean per-image SSIM over all images (see :func:`ssim` for the definition)."""

    higher_is_better = True
    metric_name = "SSIM"

    def __init__(
        self, data_range: float = 1.0, kernel_size: int = 11, sigma: float = 1.5, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.data_range = check_data_range(self.metric_name, data_range)
        _check_ssim_args(self.metric_name, kernel_size, sigma)
        self.kernel_size = kernel_size
        self.sigma = float(sigma)

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image SSIM."""
        return ssim(preds, target, self.data_range, self.kernel_size, self.sigma)


class MSSSIM(PerSampleMeanMetric):
    """Mean per-image MS-SSIM over all images (see :func:`ms_ssim`; images need ``min(H, W) >= 161`` with the
    default 5 scales and 11-tap window)."""

    higher_is_better = True
    metric_name = "MS-SSIM"

    def __init__(
        self,
        data_range: float = 1.0,
        weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
        kernel_size: int = 11,
        sigma: float = 1.5,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.data_range = check_data_range(self.metric_name, data_range)
        self.weights = _check_ms_ssim_weights(self.metric_name, weights)
        _check_ssim_args(self.metric_name, kernel_size, sigma)
        self.kernel_size = kernel_size
        self.sigma = float(sigma)

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image MS-SSIM."""
        return ms_ssim(preds, target, self.data_range, self.weights, self.kernel_size, self.sigma)


class MSE(PerSampleMeanMetric):
    """Mean over images of the per-image mean squared error."""

    higher_is_better = False
    metric_name = "MSE"

    def __init__(self, data_range: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.data_range = check_data_range(self.metric_name, data_range)

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image MSE."""
        return mse(preds, target, self.data_range)


class MAE(PerSampleMeanMetric):
    """Mean over images of the per-image mean absolute error."""

    higher_is_better = False
    metric_name = "MAE"

    def __init__(self, data_range: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.data_range = check_data_range(self.metric_name, data_range)

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image MAE."""
        return mae(preds, target, self.data_range)
