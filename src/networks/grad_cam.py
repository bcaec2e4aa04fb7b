"""Grad-CAM (Selvaraju et al., ICCV 2017) with ``torch.autograd.grad``: no ``.backward()``, so parameter
gradients are never touched.

A perception pass inside a training step (FPG reads where the detector looks while it trains) must not add
to the parameters' ``.grad`` (the optimiser step would see it) and must not run DistributedDataParallel's
gradient hooks outside the normal backward (the reducer then waits for a reduction that never comes).
:func:`grad_cam` therefore differentiates the chosen class logits with respect to a hooked activation only.
Call it on the unwrapped module (``self.net`` inside a LightningModule, never the DDP wrapper), in eval mode
when BatchNorm statistics must stay as they are; the mode is the caller's choice.

The maps are those of the ``grad-cam`` package (``pytorch_grad_cam.GradCAM``, one target layer):
channel weights = spatial mean of the gradient, map = ReLU(Σ_c weight_c · activation_c), each map min-max
normalised (``(x − min) / (max − min + 1e-7)``), resized bilinearly to the input size, then min-max
normalised again (the package's aggregation over layers). ``tests/test_grad_cam.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMALISE_EPS = 1e-7  # the grad-cam package's ``scale_cam_image``


@dataclass
class Captured:
    """The output of a hooked module during the last forward pass (``None`` until it ran)."""

    output: Tensor | None = None


@contextmanager
def capture_output(module: nn.Module) -> Iterator[Captured]:
    """Within the block, ``captured.output`` holds ``module``'s latest output (a forward hook, removed on
    exit). The tensor stays in the autograd graph, so it can be differentiated against."""
    captured = Captured()

    def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        if not isinstance(output, Tensor):
            raise TypeError(f"capture_output: {type(_module).__name__} returned {type(output).__name__}")
        captured.output = output

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def min_max_normalise(maps: Tensor) -> Tensor:
    """Per-sample ``(x − min) / (max(x − min) + 1e-7)`` over every axis but the first (as grad-cam)."""
    flat = maps.flatten(1)
    shifted = flat - flat.min(dim=1, keepdim=True).values
    return (shifted / (shifted.max(dim=1, keepdim=True).values + NORMALISE_EPS)).view_as(maps)


def _target_index(targets: Tensor | Sequence[int] | int, batch: int, device: torch.device) -> Tensor:
    index = torch.as_tensor(targets, dtype=torch.long, device=device)
    if index.ndim == 0:
        index = index.expand(batch)
    if index.shape != (batch,):
        raise ValueError(f"grad_cam: need one target class per image ({batch}), got {tuple(index.shape)}")
    return index


def grad_cam(
    model: Callable[[Tensor], Tensor],
    layer: nn.Module,
    images: Tensor,
    targets: Tensor | Sequence[int] | int,
    size: tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps ``[B, H, W]`` in ``[0, 1]`` of ``images`` for class ``targets`` (one per image, or one
    for all) at ``layer`` (a module whose output is ``[B, C, h, w]``), and the logits ``[B, K]`` (detached).

    ``size``: the maps' ``(H, W)``, the input's by default. Parameter ``.grad`` is left untouched and the
    input needs no gradient; the model's train/eval mode is not changed (set it before calling).
    """
    if images.ndim != 4:
        raise ValueError(f"grad_cam: expected [B, C, H, W] images, got {tuple(images.shape)}")
    size = size or (int(images.shape[-2]), int(images.shape[-1]))
    # the input requires grad so the activation is in the graph even for a frozen model
    inputs = images.detach().requires_grad_(True)
    with torch.enable_grad(), capture_output(layer) as captured:
        logits = model(inputs)
        activations = captured.output
        if activations is None:
            raise ValueError(f"grad_cam: the target layer {type(layer).__name__} did not run in the forward")
        if activations.ndim != 4:
            raise ValueError(
                f"grad_cam: the target layer's output must be [B, C, h, w], got {activations.ndim}-d"
            )
        index = _target_index(targets, logits.shape[0], logits.device)
        score = logits.gather(1, index[:, None]).sum()  # images are independent: one sum gives every map
        (gradients,) = torch.autograd.grad(score, activations)
    weights = gradients.float().mean(dim=(2, 3), keepdim=True)
    cams = (weights * activations.detach().float()).sum(dim=1).clamp_min(0)
    cams = min_max_normalise(cams)
    cams = F.interpolate(cams[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return min_max_normalise(cams), logits.detach()
