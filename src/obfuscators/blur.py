"""Gaussian and median blur obfuscators (PRO-Face ``blur_31_2_8``, PRO-Face S ``medianblur_k``).

Parameter conventions: docs/papers/obfuscation_baselines.md, "Obfuscators and their settings", and
docs/papers/proface_s.md, "Obfuscators".
"""

from __future__ import annotations

from typing import Any

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from src.obfuscators.base import (
    Obfuscator,
    as_float,
    as_int,
    as_pair,
    check_range,
    randint,
    reflect_pad,
    register_obfuscator,
    uniform,
)


def gaussian_kernels_1d(sigmas: Tensor, kernel_size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels ``[N, kernel_size]`` (float64), one per σ in ``sigmas`` ``[N]``.

    Weights ``exp(-x² / 2σ²)`` at integer offsets ``x ∈ [-k//2, k//2]``, divided by their sum — the same
    sampled kernel as ``cv2.getGaussianKernel`` and ``scipy.ndimage.gaussian_filter`` (radius ``k//2``).
    """
    x = torch.arange(kernel_size, dtype=torch.float64, device=sigmas.device) - kernel_size // 2
    sig = sigmas.to(torch.float64).reshape(-1, 1)
    weights = torch.exp(-0.5 * (x.reshape(1, -1) / sig) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def gaussian_blur(images: Tensor, sigmas: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with per-sample σ (``sigmas`` ``[B]``) and mirror ("reflect") padding.

    One grouped convolution per axis: the batch is folded into channels so every sample gets its own
    kernel. Border handling matches ``F.pad(mode="reflect")`` / ``cv2.BORDER_REFLECT_101`` / scipy ``mirror``.
    """
    b, c, h, w = images.shape
    pad = kernel_size // 2
    # built in float64 on the CPU (some devices lack float64), then cast and moved
    kernels = gaussian_kernels_1d(sigmas.cpu(), kernel_size).to(images.dtype).to(images.device)  # [B, K]
    kernels = kernels.repeat_interleave(c, dim=0)  # [B*C, K], sample-major like the folded channels
    x = reflect_pad(images, pad, pad).reshape(1, b * c, h + 2 * pad, w + 2 * pad)
    x = F.conv2d(x, kernels.reshape(b * c, 1, 1, kernel_size), groups=b * c)  # along W
    x = F.conv2d(x, kernels.reshape(b * c, 1, kernel_size, 1), groups=b * c)  # along H
    return x.reshape(b, c, h, w)


@register_obfuscator
class GaussianBlur(Obfuscator):
    """Gaussian blur with a fixed odd kernel and per-sample σ ~ U(sigma_range) in training.

    Defaults are PRO-Face's ``blur_31_2_8``: kernel 31, σ ~ U(2, 8) in training, σ = 5 in evaluation.
    Mirror ("reflect") padding; differentiable w.r.t. the images.
    """

    name = "blur"

    def __init__(
        self,
        kernel_size: int = 31,
        sigma_range: tuple[float, float] = (2.0, 8.0),
        eval_sigma: float = 5.0,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        self.kernel_size = as_int(who, "kernel_size", kernel_size, minimum=1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"{who}: kernel_size must be odd, got {self.kernel_size}")
        low, high = as_pair(who, "sigma_range", sigma_range)
        low = as_float(who, "sigma_range[0]", low, minimum=0.0, strict=True)
        high = as_float(who, "sigma_range[1]", high, minimum=0.0, strict=True)
        check_range(who, "sigma_range", low, high)
        self.sigma_range = (low, high)
        self.eval_sigma = as_float(who, "eval_sigma", eval_sigma, minimum=0.0, strict=True)

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        return uniform(*self.sigma_range, batch_size, generator)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.full((batch_size,), self.eval_sigma, dtype=torch.float64)

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        return gaussian_blur(images, params, self.kernel_size).clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kernel_size": self.kernel_size,
            "sigma_range": list(self.sigma_range),
            "eval_sigma": self.eval_sigma,
        }


# Upper bound on the elements of kornia's unfolded median tensor [n, 3, k*k, H, W] per chunk (~256 MB fp32).
_MEDIAN_CHUNK_ELEMENTS = 1 << 26


@register_obfuscator
class MedianBlur(Obfuscator):
    """Median blur (``kornia.filters.median_blur``) with a per-sample odd kernel in training.

    Training draws ``k ~ U{kernel_range}`` per sample and subtracts 1 from an even draw (PRO-Face S
    ``medianblur_k``: ``U{k-6..k+6}``, even → −1, so the default (17, 29) is ``medianblur_23``); evaluation
    uses ``eval_kernel``.

    ``border``: ``"zero"`` (default) pads with zeros as older kornia versions (no border option, as used by
    PRO-Face S) did — kornia 0.9 defaults to reflect — which darkens a ``k//2`` band at the border;
    ``"reflect"`` mirror-pads (scipy ``mode="mirror"``). The median is piecewise differentiable (the gradient
    reaches the selected pixel).
    Memory: kornia unfolds ``k²`` values per pixel, so the batch is processed in chunks.
    """

    name = "median"
    _BORDERS = ("zero", "reflect")

    def __init__(
        self,
        kernel_range: tuple[int, int] = (17, 29),
        eval_kernel: int = 23,
        border: str = "zero",
    ) -> None:
        super().__init__()
        who = type(self).__name__
        low, high = as_pair(who, "kernel_range", kernel_range)
        low = as_int(who, "kernel_range[0]", low, minimum=1)
        high = as_int(who, "kernel_range[1]", high, minimum=1)
        check_range(who, "kernel_range", low, high)
        self.kernel_range = (low, high)
        self.eval_kernel = as_int(who, "eval_kernel", eval_kernel, minimum=1)
        if self.eval_kernel % 2 == 0:
            raise ValueError(f"{who}: eval_kernel must be odd, got {self.eval_kernel}")
        if border not in self._BORDERS:
            raise ValueError(f"{who}: border must be one of {self._BORDERS}, got {border!r}")
        self.border = border

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        k = randint(*self.kernel_range, batch_size, generator)
        return torch.where(k % 2 == 0, k - 1, k).clamp(min=1)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.full((batch_size,), self.eval_kernel, dtype=torch.int64)

    def _median(self, images: Tensor, k: int) -> Tensor:
        if k == 1:
            return images
        if self.border == "zero":
            return kornia.filters.median_blur(images, (k, k), border_type="constant")
        pad = k // 2
        h, w = images.shape[-2:]
        padded = reflect_pad(images, pad, pad)
        return kornia.filters.median_blur(padded, (k, k), border_type="constant")[
            ..., pad : pad + h, pad : pad + w
        ]

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        kernels = params.to(torch.int64).cpu()
        if bool((kernels % 2 == 0).any()) or bool((kernels < 1).any()):
            raise ValueError(
                f"{type(self).__name__}: kernel sizes must be odd and >= 1, got {kernels.tolist()}"
            )
        out = torch.empty_like(images)
        _, c, h, w = images.shape
        for k in torch.unique(kernels).tolist():
            idx = torch.nonzero(kernels == k).flatten()
            chunk = max(1, _MEDIAN_CHUNK_ELEMENTS // (c * k * k * (h + k) * (w + k)))
            for start in range(0, len(idx), chunk):
                sel = idx[start : start + chunk].to(images.device)
                out = out.index_copy(0, sel, self._median(images.index_select(0, sel), k))
        return out.clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kernel_range": list(self.kernel_range),
            "eval_kernel": self.eval_kernel,
            "border": self.border,
        }
