"""Face masks for iFADIT's blending, computed from what a batch holds.

The authors blend with per-image mask files that came with their (unreleased) data pipeline. Here a mask is
derived from the batch instead (a **reconstructed** stand-in, docs/papers/ifadit.md, "Masks"):

* :class:`LandmarkMask`: a landmark hull (``src.face.face_hulls``) of the batch's 68 points — FFHQ with
  ``datamodule.return_landmarks=true`` — by default ``extended`` (the face's parts with the brows pushed up
  the forehead, close to a parsing mask's skin region);
* :class:`EllipseMask`: one fixed ellipse for aligned faces without landmarks (SyntheticFaces, the demo).

A masker maps a batch to ``[B, 1, H, W]`` float masks in {0, 1} at the images' size.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from src.config.buildable import buildable
from src.face.face_hulls import HULL_TYPES, hull_mask


class FaceMasker:
    """Base: ``masker(batch)`` → ``[B, 1, H, W]`` masks of ``batch["image"]``."""

    def __call__(self, batch: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError


@buildable
class LandmarkMask(FaceMasker):
    """The ``hull_type`` landmark hull of ``batch["landmarks"]`` (``[B, 68, 2]`` (x, y) in output pixels)."""

    def __init__(self, hull_type: str = "extended") -> None:
        if hull_type not in HULL_TYPES:
            raise ValueError(f"LandmarkMask: unknown hull_type {hull_type!r}; known: {', '.join(HULL_TYPES)}")
        self.hull_type = hull_type

    def __call__(self, batch: Mapping[str, Tensor]) -> Tensor:
        images = batch["image"]
        if "landmarks" not in batch:
            raise ValueError(
                "LandmarkMask needs batch['landmarks'] (68 points per image): set "
                "datamodule.return_landmarks=true (FFHQ, from its metadata JSON), or use "
                "model.masker=EllipseMask for data without landmarks"
            )
        height, width = images.shape[-2:]
        points = batch["landmarks"].detach().cpu().numpy().astype(np.float64)
        masks = []
        for number, landmarks in enumerate(points):
            if not np.isfinite(landmarks).all():
                index = batch["index"][number].item() if "index" in batch else number
                raise ValueError(
                    f"LandmarkMask: image {index} of the batch has no landmarks (NaN in the metadata)"
                )
            masks.append(hull_mask(self.hull_type, landmarks, height, width))
        return torch.from_numpy(np.stack(masks)[:, None]).to(images.device, images.dtype)


@buildable
class EllipseMask(FaceMasker):
    """A filled ellipse at ``center`` (x, y) with half-axes ``axes`` (x, y), in fractions of the side."""

    def __init__(
        self, center: tuple[float, float] = (0.5, 0.55), axes: tuple[float, float] = (0.3, 0.38)
    ) -> None:
        if len(center) != 2 or len(axes) != 2 or min(axes) <= 0:
            raise ValueError(f"EllipseMask: center and axes are (x, y) pairs, axes > 0; got {center}, {axes}")
        self.center = (float(center[0]), float(center[1]))
        self.axes = (float(axes[0]), float(axes[1]))

    def __call__(self, batch: Mapping[str, Tensor]) -> Tensor:
        images = batch["image"]
        height, width = images.shape[-2:]
        y = (torch.arange(height, device=images.device, dtype=images.dtype) + 0.5) / height
        x = (torch.arange(width, device=images.device, dtype=images.dtype) + 0.5) / width
        inside = ((x[None, :] - self.center[0]) / self.axes[0]) ** 2 + (
            (y[:, None] - self.center[1]) / self.axes[1]
        ) ** 2 <= 1.0
        return inside.to(images.dtype).expand(images.shape[0], 1, height, width).clone()
