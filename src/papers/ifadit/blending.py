"""Paste a generated face into the original image through its face mask (the authors' ``get_masked_imgs``).

The mask is first grown by a ``grow`` x ``grow`` max filter (their ``1 - erode(1 - mask)``, zero outside the
image), then feathered by a ``feather`` x ``feather`` Gaussian with OpenCV's default σ for that size
(``0.3·((k − 1)/2 − 1) + 0.8``: 2.6 for 15) and mirror borders; ``out = generated·m + original·(1 − m)``.
Unlike the original it runs on any device, batched, without a round trip through NumPy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.obfuscators.blur import gaussian_blur


def opencv_sigma(kernel_size: int) -> float:
    """OpenCV's σ for a Gaussian of ``kernel_size`` given σ ≤ 0 (``cv2.getGaussianKernel``)."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def blend_mask(mask: Tensor, grow: int = 5, feather: int = 15) -> Tensor:
    """The soft paste mask ``[B, 1 or 3, H, W]`` in [0, 1] from a binary (or soft) face mask."""
    if mask.ndim != 4 or mask.shape[1] not in (1, 3):
        raise ValueError(f"blend_mask: expected a [B, 1 or 3, H, W] mask, got {tuple(mask.shape)}")
    if grow % 2 == 0 or feather % 2 == 0:
        raise ValueError(f"blend_mask: grow and feather must be odd sizes, got {grow}, {feather}")
    grown = F.max_pool2d(mask, grow, stride=1, padding=grow // 2) if grow > 1 else mask
    sigmas = torch.full((mask.shape[0],), opencv_sigma(feather), dtype=torch.float64)
    return gaussian_blur(grown, sigmas, feather).clamp(0.0, 1.0)  # rounding must not leave [0, 1]


def blend(generated: Tensor, original: Tensor, mask: Tensor, grow: int = 5, feather: int = 15) -> Tensor:
    """``generated`` inside the (grown, feathered) face ``mask``, ``original`` outside; images in [0, 1]."""
    if generated.shape != original.shape:
        raise ValueError(
            f"blend: generated {tuple(generated.shape)} and original {tuple(original.shape)} differ"
        )
    soft = blend_mask(mask.to(generated.dtype), grow, feather)
    return generated * soft + original * (1.0 - soft)
