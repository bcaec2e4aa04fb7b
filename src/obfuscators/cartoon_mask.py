"""Cartoon-face mask: paste an RGBA sticker (Google CartoonSet) over the whole face (PRO-Face S ``mask``).

PRO-Face S (``utils/image_processing.py::Mask``; docs/papers/proface_s.md, "Obfuscators"): the sticker's alpha
channel is cropped to a square around its non-transparent region, resized to the image size and
alpha-composited over the face. One sticker per batch, chosen like a face-swap target
(:mod:`src.obfuscators.targets`): random in training, a fixed sequence in evaluation (the original's test loop
uses sticker ``(batch − 1) mod N``: ``eval_target_offset=0``). PRO-Face S splits the CartoonSet 90/10 with
seed 1 into training and test stickers (:class:`~src.obfuscators.targets.RandomSplit`).

The square follows the original's integer arithmetic exactly: with ``r0, r1, c0, c1`` the first and last
rows and columns where alpha > 0, ``h = r1 − r0`` and ``w = c1 − c0`` (one less than the extent), the side
is ``s = max(h, w)``, the centre ``(r0 + h // 2, c0 + w // 2)``, the top-left corner ``centre − s // 2``;
parts of the square outside the sticker are transparent (torchvision's ``crop`` pads with zeros). The
crop is resized bilinearly (``align_corners=False``); ``antialias=False`` is what the original's torchvision
0.15 did for tensors.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.obfuscators.base import register_obfuscator
from src.obfuscators.targets import TargetedObfuscator


def alpha_square(alpha: Tensor, where: str) -> tuple[int, int, int]:
    """``(top, left, side)`` of the original's square crop around the non-zero region of ``alpha [H, W]``."""
    rows, cols = torch.nonzero(alpha > 0, as_tuple=True)
    if rows.numel() == 0:
        raise ValueError(f"{where}: the sticker is fully transparent (alpha is 0 everywhere)")
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    height, width = r1 - r0, c1 - c0
    side = max(height, width)
    if side == 0:
        raise ValueError(f"{where}: the sticker's visible region is a single pixel; cannot crop a square")
    top = r0 + height // 2 - side // 2
    left = c0 + width // 2 - side // 2
    return top, left, side


def crop_padded(image: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """``image[..., top:top+height, left:left+width]`` with zeros where the box leaves the image."""
    h, w = image.shape[-2:]
    pad = (max(0, -left), max(0, left + width - w), max(0, -top), max(0, top + height - h))
    if any(pad):
        image = F.pad(image, pad)
        top, left = top + pad[2], left + pad[0]
    return image[..., top : top + height, left : left + width]


def fit_sticker(sticker: Tensor, height: int, width: int, antialias: bool, where: str) -> Tensor:
    """An RGBA sticker ``[4, h, w]`` in [0, 1] cropped to its alpha square and resized to ``[4, H, W]``."""
    top, left, side = alpha_square(sticker[3], where)
    square = crop_padded(sticker, top, left, side, side)
    resized = F.interpolate(
        square.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False, antialias=antialias
    )
    return resized[0]


def composite(images: Tensor, stickers: Tensor) -> Tensor:
    """Alpha-composite RGBA ``stickers [B, 4, H, W]`` over ``images [B, 3, H, W]`` (all in [0, 1])."""
    alpha = stickers[:, 3:4]
    return images * (1.0 - alpha) + stickers[:, :3] * alpha


@register_obfuscator
class CartoonMask(TargetedObfuscator):
    """Cover each face with a cartoon face (an RGBA sticker), as PRO-Face S's ``mask`` (module docstring).

    Args:
        targets: training stickers (RGBA): a folder (e.g. the CartoonSet's ``cartoonset10k/`` PNGs), a
            tensor bank ``[N, 4, H, W]``, a dataset, a :class:`~src.obfuscators.targets.RandomSplit`, ...
        eval_targets: evaluation stickers (default: ``targets``).
        eval_target_offset: first position of the evaluation sticker sequence.
        antialias: antialias the resize of the crop (the original did not).

    Gradients flow to the pixels the sticker leaves visible (scaled by ``1 − alpha``).
    """

    name = "cartoon_mask"
    target_channels = 4

    def __init__(
        self,
        targets: Any,
        eval_targets: Any = None,
        eval_target_offset: int = 0,
        antialias: bool = False,
    ) -> None:
        super().__init__(targets, eval_targets, eval_target_offset)
        self.antialias = bool(antialias)
        self._fitted: dict[tuple[Any, ...], Tensor] = {}

    def fitted_sticker(self, index: int, height: int, width: int, training: bool | None = None) -> Tensor:
        """Sticker ``index`` of the given (default: current) mode fitted to ``height × width`` (cached)."""
        key = (self.mode_key(training), int(index), height, width)
        if key not in self._fitted:
            where = f"{type(self).__name__} {self.mode_key(training)} sticker {index}"
            sticker = self.target_image(int(index), training).float().cpu()
            self._fitted[key] = fit_sticker(sticker, height, width, self.antialias, where)
        return self._fitted[key]

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        indices, unique = self._used_targets(params)
        height, width = images.shape[-2:]
        fitted = {i: self.fitted_sticker(i, height, width) for i in unique}
        stickers = torch.stack([fitted[i] for i in indices]).to(device=images.device, dtype=images.dtype)
        return composite(images, stickers)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "antialias": self.antialias}

    def extra_repr(self) -> str:
        return f"antialias={self.antialias}"
