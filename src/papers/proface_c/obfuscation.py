"""PRO-Face C's obfuscations: the patch-grid hybrid blur and the three plain ones, with per-image evaluation.

The hybrid (the authors' ``MyBlurWay``) cuts the image into a ``g x g`` grid (``p = g²`` cells) and fills
the cells, after a random permutation, with median-blurred (the first ``p // 3``), Gaussian-blurred (the next
``p // 3``) and pixelated (the rest) versions of the whole image. When the side is not a multiple of ``g``
the image is first resized to ``(side // g + 1) * g`` and the result resized back. Training draws ``p`` from
``cells`` and each obfuscation's strength from the training ranges; evaluation uses ``eval_cells`` and the
fixed evaluation strengths (as the authors' ``validation/util/utils.py``) with a cell assignment drawn **per
image index** from ``eval_seed``, so an evaluation repeats exactly (the authors' was drawn from Python's
global RNG in batch order). Settings: docs/papers/proface_c.md, "Obfuscations".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.obfuscators.base import Obfuscator, as_int, check_images, randint, register_obfuscator, uniform
from src.obfuscators.blur import GaussianBlur, MedianBlur
from src.obfuscators.pixelate import Pixelate

MEDIAN, GAUSSIAN, PIXELATE = 0, 1, 2
#: the per-sample parameter columns before the cell codes
_G, _KERNEL, _SIGMA, _BLOCK = range(4)
_HEAD = 4


def default_median() -> MedianBlur:
    """The authors' median blur: kernel in {7, 9, ..., 19} in training, 13 in evaluation, zero border."""
    return MedianBlur(kernel_range=(7, 19), eval_kernel=13, border="zero")


def default_gaussian() -> GaussianBlur:
    """The authors' Gaussian blur: kernel 31, σ ~ U(2, 8) in training, σ = 5 in evaluation."""
    return GaussianBlur(kernel_size=31, sigma_range=(2.0, 8.0), eval_sigma=5.0)


def default_pixelate() -> Pixelate:
    """The authors' pixelation: block ~ U{3..11} in training, 7 in evaluation; torchvision 0.13's resizes."""
    return Pixelate(block_range=(3, 11), eval_block=7, method="resize", antialias=False)


def index_generator(seed: int, index: int) -> torch.Generator:
    """The generator of image ``index`` of an evaluation seeded by ``seed`` (independent of batching)."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(index)) % 2**63)


def cell_codes(cells: int, generator: torch.Generator) -> Tensor:
    """Which obfuscation fills each of ``cells`` cells: a random permutation, the first third median, the
    next third Gaussian, the rest pixelated (the authors' assignment)."""
    order = torch.randperm(cells, generator=generator)
    third = cells // 3
    codes = torch.full((cells,), PIXELATE, dtype=torch.int64)
    codes[order[:third]] = MEDIAN
    codes[order[third : 2 * third]] = GAUSSIAN
    return codes


@register_obfuscator
class PatchHybridBlur(Obfuscator):
    """Grid of cells, each median-blurred, Gaussian-blurred or pixelated (see the module docstring).

    Parameters per sample: the grid side ``g``, the median kernel, the Gaussian σ, the pixelation block and
    the code of each cell (row-major; -1 past ``g²``). :meth:`indexed_params` gives the evaluation parameters
    of given image indices; :meth:`obfuscate_indexed` applies them (the deterministic evaluation).
    """

    name = "patch_hybrid"

    def __init__(
        self,
        cells: Sequence[int] = (4, 9, 16, 25),
        eval_cells: int = 16,
        eval_seed: int = 0,
        median: MedianBlur | None = None,
        gaussian: GaussianBlur | None = None,
        pixelate: Pixelate | None = None,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        self.cells = tuple(as_int(who, "cells[]", c, minimum=1) for c in cells)
        self.eval_cells = as_int(who, "eval_cells", eval_cells, minimum=1)
        if not self.cells:
            raise ValueError(f"{who}: cells must not be empty")
        for count in (*self.cells, self.eval_cells):
            if math.isqrt(count) ** 2 != count:
                raise ValueError(f"{who}: cell counts must be square numbers (4, 9, 16, 25), got {count}")
        self.eval_seed = int(eval_seed)
        self.median = median if median is not None else default_median()
        self.gaussian = gaussian if gaussian is not None else default_gaussian()
        self.pixelate = pixelate if pixelate is not None else default_pixelate()
        low, high = self.median.kernel_range
        if low % 2 == 0 or high % 2 == 0:
            raise ValueError(
                f"{who}: the median kernel range must have odd ends, got {self.median.kernel_range}"
            )
        self.max_cells = max(*self.cells, self.eval_cells)

    # --- parameters -----------------------------------------------------------------------------------------

    def _empty(self, batch_size: int) -> Tensor:
        params = torch.full((batch_size, _HEAD + self.max_cells), -1.0, dtype=torch.float64)
        params[:, _KERNEL] = self.median.eval_kernel
        params[:, _SIGMA] = self.gaussian.eval_sigma
        params[:, _BLOCK] = self.pixelate.eval_block
        return params

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        params = self._empty(batch_size)
        choice = randint(0, len(self.cells) - 1, batch_size, generator)
        low, high = self.median.kernel_range
        params[:, _KERNEL] = (low + 2 * randint(0, (high - low) // 2, batch_size, generator)).double()
        params[:, _SIGMA] = uniform(*self.gaussian.sigma_range, batch_size, generator)
        params[:, _BLOCK] = randint(*self.pixelate.block_range, batch_size, generator).double()
        for i in range(batch_size):
            count = self.cells[int(choice[i])]
            params[i, _G] = math.isqrt(count)
            params[i, _HEAD : _HEAD + count] = cell_codes(count, generator).double()
        return params

    def indexed_params(self, indices: Tensor | Sequence[int]) -> Tensor:
        """Evaluation parameters of the images with these indices: fixed strengths, ``eval_cells`` cells and
        a cell assignment drawn from :func:`index_generator` (the same for an index whatever the batch)."""
        indices = torch.as_tensor(indices).reshape(-1).tolist()
        params = self._empty(len(indices))
        params[:, _G] = math.isqrt(self.eval_cells)
        for row, index in enumerate(indices):
            codes = cell_codes(self.eval_cells, index_generator(self.eval_seed, index))
            params[row, _HEAD : _HEAD + self.eval_cells] = codes.double()
        return params

    def _eval_params(self, batch_size: int) -> Tensor:
        return self.indexed_params(range(batch_size))

    def obfuscate_indexed(self, images: Tensor, indices: Tensor) -> Tensor:
        """The deterministic evaluation obfuscation of ``images`` whose dataset indices are ``indices``."""
        images = check_images(images, type(self).__name__)
        return self.apply(images, self.indexed_params(indices.cpu()))

    # --- the obfuscation ------------------------------------------------------------------------------------

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        who = type(self).__name__
        size = images.shape[-1]
        if images.shape[-2] != size:
            raise ValueError(f"{who}: images must be square, got {tuple(images.shape[-2:])}")
        out = torch.empty_like(images)
        grids = params[:, _G].to(torch.int64)
        for g in torch.unique(grids).tolist():
            if g < 1:
                raise ValueError(f"{who}: grid sides must be >= 1, got {g}")
            rows = torch.nonzero(grids == g).flatten()
            chosen = params[rows]
            out = out.index_copy(
                0, rows.to(images.device), self._grid(images[rows.to(images.device)], chosen, g)
            )
        return out.clamp(0.0, 1.0)

    def _grid(self, images: Tensor, params: Tensor, g: int) -> Tensor:
        """Obfuscate images that share the grid side ``g``."""
        size = images.shape[-1]
        cell = size // g if size % g == 0 else size // g + 1
        work = cell * g
        x = images if work == size else resize(images, work)
        median = self.median.apply(x, params[:, _KERNEL].to(torch.int64))
        gaussian = self.gaussian.apply(x, params[:, _SIGMA])
        pixelated = self.pixelate.apply(x, params[:, _BLOCK].to(torch.int64))
        codes = params[:, _HEAD : _HEAD + g * g].to(torch.int64)
        if bool((codes < 0).any()) or bool((codes > PIXELATE).any()):
            raise ValueError(f"{type(self).__name__}: cell codes must be 0, 1 or 2 for a {g}x{g} grid")
        grid = codes.reshape(-1, 1, g, g).to(x.device)
        grid = grid.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)
        mixed = torch.where(grid == MEDIAN, median, torch.where(grid == GAUSSIAN, gaussian, pixelated))
        return mixed if work == size else resize(mixed, size)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cells": list(self.cells),
            "eval_cells": self.eval_cells,
            "eval_seed": self.eval_seed,
            "median": self.median.describe(),
            "gaussian": self.gaussian.describe(),
            "pixelate": self.pixelate.describe(),
        }


def resize(images: Tensor, size: int) -> Tensor:
    """Bilinear resize to ``size x size`` without antialiasing (torchvision 0.13's tensor ``Resize``)."""
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def evaluation_obfuscation(obfuscator: Obfuscator, images: Tensor, indices: Tensor) -> Tensor:
    """An obfuscator's deterministic evaluation output: per image index for the hybrid, else eval mode."""
    if isinstance(obfuscator, PatchHybridBlur):
        return obfuscator.obfuscate_indexed(images, indices)
    was_training = obfuscator.training
    obfuscator.eval()
    try:
        return obfuscator(images)
    finally:
        obfuscator.train(was_training)
