"""Black-box (filled rectangle) mask obfuscator over the face region of an aligned crop."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from src.obfuscators.base import Obfuscator, as_float, register_obfuscator, uniform


def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """Boolean masks ``[B, 1, H, W]`` (CPU) of the pixels whose *centre* lies in each relative box.

    ``boxes`` is ``[B, 4]`` of ``(x0, y0, x1, y1)`` in [0, 1] (fractions of width/height). Pixel ``(i, j)`` is
    covered when ``x0·W <= j + 0.5 < x1·W`` and ``y0·H <= i + 0.5 < y1·H`` (computed in float64).
    """
    boxes = boxes.to(torch.float64).cpu()
    cols = torch.arange(width, dtype=torch.float64) + 0.5
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    x0, y0, x1, y1 = (boxes[:, i : i + 1] for i in range(4))
    in_cols = (cols >= x0 * width) & (cols < x1 * width)  # [B, W]
    in_rows = (rows >= y0 * height) & (rows < y1 * height)  # [B, H]
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


@register_obfuscator
class BlackBoxMask(Obfuscator):
    """Fill a rectangle ``box = (x0, y0, x1, y1)`` (relative coordinates) with a constant colour.

    Training moves each of the four edges independently by ``U(-jitter, jitter)`` per sample (then clips to
    [0, 1]); evaluation uses ``box`` exactly. ``fill`` is a grey level or an RGB triple in [0, 1]. The default
    box covers the face of an aligned crop. Gradients flow to the pixels outside the box (zero inside).
    """

    name = "blackbox"

    def __init__(
        self,
        box: tuple[float, float, float, float] = (0.2, 0.25, 0.8, 0.9),
        jitter: float = 0.05,
        fill: float | tuple[float, float, float] = 0.0,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        if isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 4:
            raise ValueError(f"{who}: box must be (x0, y0, x1, y1) in relative coordinates, got {box!r}")
        coords = tuple(as_float(who, f"box[{i}]", v) for i, v in enumerate(box))
        if not all(0.0 <= v <= 1.0 for v in coords):
            raise ValueError(f"{who}: box coordinates must lie in [0, 1], got {coords}")
        x0, y0, x1, y1 = coords
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"{who}: box must have x0 < x1 and y0 < y1, got {coords}")
        self.box = coords
        self.jitter = as_float(who, "jitter", jitter, minimum=0.0)
        if 2 * self.jitter >= min(x1 - x0, y1 - y0):
            raise ValueError(
                f"{who}: jitter {self.jitter:g} must be less than half the box's smaller side "
                f"({min(x1 - x0, y1 - y0) / 2:g}) so that a jittered box never collapses"
            )
        if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
            colour = (as_float(who, "fill", fill),) * 3
        elif isinstance(fill, Sequence) and not isinstance(fill, (str, bytes)) and len(fill) == 3:
            colour = tuple(as_float(who, f"fill[{i}]", v) for i, v in enumerate(fill))
        else:
            raise ValueError(f"{who}: fill must be a number or an RGB triple in [0, 1], got {fill!r}")
        if not all(0.0 <= v <= 1.0 for v in colour):
            raise ValueError(f"{who}: fill values must lie in [0, 1], got {colour}")
        self.fill = colour

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        offsets = uniform(-self.jitter, self.jitter, 4 * batch_size, generator).reshape(batch_size, 4)
        return (torch.tensor(self.box, dtype=torch.float64) + offsets).clamp(0.0, 1.0)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.tensor(self.box, dtype=torch.float64).repeat(batch_size, 1)

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        if params.ndim != 2 or params.shape[1] != 4:
            raise ValueError(
                f"{type(self).__name__}: params must be boxes [B, 4], got shape {tuple(params.shape)}"
            )
        mask = box_mask(params, images.shape[-2], images.shape[-1]).to(images.device)
        colour = torch.tensor(self.fill, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
        return torch.where(mask, colour, images).clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        fill: float | list[float] = self.fill[0] if len(set(self.fill)) == 1 else list(self.fill)
        return {"name": self.name, "box": list(self.box), "jitter": self.jitter, "fill": fill}
