"""Orthonormal 2-D Haar wavelet transform (one level) and its exact inverse.

``haar_dwt`` maps ``[B, C, H, W]`` to ``[B, 4C, H/2, W/2]``; the channels are **sub-band major**: ``LL`` of
all ``C`` input channels first, then ``HL``, ``LH`` and ``HH`` (the HiNet / PRO-Face S layout, so weights
trained with that layout keep their meaning). With ``a, b, c, d`` the pixels at (even row, even col),
(odd row, even col), (even row, odd col), (odd row, odd col) of each 2×2 block::

    LL = ( a + b + c + d) / 2        HL = (-a - b + c + d) / 2   (difference across columns)
    LH = (-a + b - c + d) / 2        HH = ( a - b - c + d) / 2   (difference across rows / diagonal)

The 4×4 matrix is orthonormal (its inverse is its transpose), so ``haar_iwt`` undoes
``haar_dwt`` up to float rounding and the transform preserves the L2 norm. No parameters; differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HaarDWT", "HaarIWT", "haar_dwt", "haar_iwt", "haar_matrix"]


def haar_matrix(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The 4×4 analysis matrix: rows ``LL, HL, LH, HH`` over the block pixels ``(r0c0, r0c1, r1c0, r1c1)``."""
    rows = [
        [1.0, 1.0, 1.0, 1.0],  # LL
        [-1.0, 1.0, -1.0, 1.0],  # HL: right column minus left column
        [-1.0, -1.0, 1.0, 1.0],  # LH: bottom row minus top row
        [1.0, -1.0, -1.0, 1.0],  # HH: diagonal
    ]
    return torch.tensor(rows, dtype=dtype, device=device) / 2.0


def _check(x: Tensor, who: str, channels_multiple: int = 1) -> None:
    if x.ndim != 4:
        raise ValueError(f"{who}: expected a [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    if x.shape[1] % channels_multiple:
        raise ValueError(
            f"{who}: channel count {x.shape[1]} is not a multiple of {channels_multiple} (4 sub-bands)"
        )


def haar_dwt(x: Tensor) -> Tensor:
    """One-level orthonormal Haar DWT: ``[B, C, H, W]`` → ``[B, 4C, H/2, W/2]`` (``H``, ``W`` even)."""
    _check(x, "haar_dwt")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt: height and width must be even, got {h}x{w}")
    # [B, C, H/2, 2 (row parity), W/2, 2 (col parity)] → [B, C, H/2, W/2, 4]: r0c0, r0c1, r1c0, r1c1
    blocks = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    bands = torch.einsum("kq,bchwq->bkchw", haar_matrix(x.dtype, x.device), blocks)
    return bands.reshape(b, 4 * c, h // 2, w // 2)


def haar_iwt(y: Tensor) -> Tensor:
    """Inverse of :func:`haar_dwt`: ``[B, 4C, h, w]`` (sub-band major) → ``[B, C, 2h, 2w]``."""
    _check(y, "haar_iwt", channels_multiple=4)
    b, c4, h, w = y.shape
    c = c4 // 4
    bands = y.reshape(b, 4, c, h, w)
    blocks = torch.einsum("kq,bkchw->bchwq", haar_matrix(y.dtype, y.device), bands)  # Mᵀ: the inverse
    return blocks.reshape(b, c, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, 2 * h, 2 * w)


class HaarDWT(nn.Module):
    """Module form of :func:`haar_dwt` (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` → ``[B, 4C, H/2, W/2]``."""
        return haar_dwt(x)


class HaarIWT(nn.Module):
    """Module form of :func:`haar_iwt` (no parameters)."""

    def forward(self, y: Tensor) -> Tensor:
        """``[B, 4C, h, w]`` → ``[B, C, 2h, 2w]``."""
        return haar_iwt(y)
