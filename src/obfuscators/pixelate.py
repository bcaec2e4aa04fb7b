"""Pixelation (mosaic) obfuscator: PRO-Face ``pixelate_7`` (docs/papers/proface.md, "Obfuscators").

Two methods: ``"block_mean"`` (default) replaces each ``b × b`` cell by its exact mean; ``"resize"`` is
PRO-Face's own operation (bilinear downscale to ``size // b``, nearest upscale back), whose cells are not
exactly ``b`` wide when ``b`` does not divide the size and whose result depends on antialiasing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.obfuscators.base import Obfuscator, as_int, as_pair, check_range, randint, register_obfuscator

PIXELATE_METHODS = ("block_mean", "resize")


def pixelate(images: Tensor, block: int) -> Tensor:
    """Mosaic: replace each ``block × block`` cell by its mean; the output has the input's size.

    Cells are anchored at the top-left corner; when ``H`` (or ``W``) is not a multiple of ``block`` the last
    row (column) of cells is narrower and averages only the ``H mod block`` remaining pixels. A block larger
    than the image makes a single cell. Average pooling + nearest upsampling, so it is differentiable.
    """
    h, w = images.shape[-2:]
    kh, kw = min(block, h), min(block, w)
    # ceil_mode keeps the partial border cells; with zero padding PyTorch divides by the cell's true size.
    means = F.avg_pool2d(images, (kh, kw), stride=(kh, kw), ceil_mode=True)
    up = means.repeat_interleave(kh, dim=-2).repeat_interleave(kw, dim=-1)
    return up[..., :h, :w]


def pixelate_resize(images: Tensor, block: int, antialias: bool = True) -> Tensor:
    """PRO-Face pixelation: bilinear downscale to ``(H // block, W // block)``, nearest upscale to ``(H, W)``.

    The same as the authors' ``torchvision`` ``resize`` calls on tensors (``align_corners=False``, upscale
    mode ``"nearest"``, not ``"nearest-exact"``). ``antialias=True`` is torchvision >= 0.17's default for
    tensors (a triangle filter over the whole footprint, close to a block mean); ``antialias=False`` is what
    torchvision 0.13, pinned by the authors, did (samples only the 2 × 2 pixels nearest each cell centre).
    The two differ by up to ~0.4 in [0, 1] units. A block larger than a side makes a single cell there.
    Both variants are convex combinations of pixels, so [0, 1] inputs stay in [0, 1]; differentiable.
    """
    h, w = images.shape[-2:]
    small = F.interpolate(
        images,
        size=(max(1, h // block), max(1, w // block)),
        mode="bilinear",
        align_corners=False,
        antialias=antialias,
    )
    return F.interpolate(small, size=(h, w), mode="nearest")


@register_obfuscator
class Pixelate(Obfuscator):
    """Pixelation with a per-sample block size ``b ~ U{block_range}`` in training and ``eval_block`` in eval.

    Defaults follow PRO-Face ``pixelate_7`` (``b ~ U{4..10}``, evaluation ``b = 7``).

    ``method="block_mean"`` (default): cells are exactly ``b × b`` means with narrower border cells (see
    :func:`pixelate`) — the same as a block-mean (area) downscale when the size is a multiple of ``b``.
    ``method="resize"``: PRO-Face's own operation (:func:`pixelate_resize`), bilinear downscale to
    ``size // b`` then nearest upscale, with ``antialias`` choosing between the current torchvision behaviour
    (``True``, the default) and the one of torchvision 0.13 that the authors pinned (``False``); pick it
    deliberately to reproduce a given PRO-Face checkpoint's inputs (``antialias`` applies to ``"resize"``).
    """

    name = "pixelate"

    def __init__(
        self,
        block_range: tuple[int, int] = (4, 10),
        eval_block: int = 7,
        method: str = "block_mean",
        antialias: bool = True,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        if method not in PIXELATE_METHODS:
            raise ValueError(f"{who}: method must be one of {PIXELATE_METHODS}, got {method!r}")
        if not isinstance(antialias, bool):
            raise ValueError(f"{who}: antialias must be a bool, got {antialias!r}")
        if method == "block_mean" and not antialias:
            raise ValueError(f"{who}: antialias=False only applies to method='resize'")
        self.method = method
        self.antialias = antialias
        low, high = as_pair(who, "block_range", block_range)
        low = as_int(who, "block_range[0]", low, minimum=1)
        high = as_int(who, "block_range[1]", high, minimum=1)
        check_range(who, "block_range", low, high)
        self.block_range = (low, high)
        self.eval_block = as_int(who, "eval_block", eval_block, minimum=1)

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        return randint(*self.block_range, batch_size, generator)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.full((batch_size,), self.eval_block, dtype=torch.int64)

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        blocks = params.to(torch.int64).cpu()
        if bool((blocks < 1).any()):
            raise ValueError(f"{type(self).__name__}: block sizes must be >= 1, got {blocks.tolist()}")
        values = torch.unique(blocks).tolist()
        if len(values) == 1:
            return self._pixelate(images, values[0]).clamp(0.0, 1.0)
        out = torch.empty_like(images)
        for b in values:
            idx = torch.nonzero(blocks == b).flatten().to(images.device)
            out = out.index_copy(0, idx, self._pixelate(images.index_select(0, idx), b))
        return out.clamp(0.0, 1.0)

    def _pixelate(self, images: Tensor, block: int) -> Tensor:
        if self.method == "resize":
            return pixelate_resize(images, block, antialias=self.antialias)
        return pixelate(images, block)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "block_range": list(self.block_range),
            "eval_block": self.eval_block,
            "method": self.method,
            "antialias": self.antialias,
        }
