"""Input validation shared by every metric, so that bad input fails with one clear, named error.

Every check raises :class:`ValueError` whose message starts with the metric's name (``"SSIM: ..."``), so a
failure inside a training loop or a results-table script says which metric and what was wrong.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_tensor(name: str, arg: str, x: object) -> Tensor:
    """Return ``x`` if it is a tensor, else raise naming the metric and the argument."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: `{arg}` must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_finite(name: str, arg: str, x: Tensor) -> None:
    """Raise if ``x`` holds NaN or ±inf (metrics over non-finite values are meaningless)."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name}: `{arg}` contains non-finite values ({n_nan} NaN, {n_inf} inf)")


def check_data_range(name: str, data_range: float) -> float:
    """Return ``data_range`` as a float after checking that it is finite and positive."""
    try:
        value = float(data_range)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: data_range must be a positive number, got {data_range!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: data_range must be a positive finite number, got {data_range!r}")
    return value


def check_image_pair(name: str, preds: object, target: object, data_range: float) -> tuple[Tensor, Tensor]:
    """Validate a ``[B, C, H, W]`` image pair and return it in a floating dtype (at least float32).

    Checks: both tensors, identical 4-D shapes with ``B >= 1``, finite values, and a value span
    ``max - min`` (over both tensors) no larger than ``data_range`` — this catches the common mistakes of
    passing ``[0, 255]`` or ``[-1, 1]`` images with ``data_range=1``.
    """
    preds = check_tensor(name, "preds", preds)
    target = check_tensor(name, "target", target)
    if preds.shape != target.shape:
        raise ValueError(
            f"{name}: preds and target must have the same shape, got {tuple(preds.shape)} and "
            f"{tuple(target.shape)}"
        )
    if preds.ndim != 4:
        raise ValueError(f"{name}: expected images of shape [B, C, H, W], got shape {tuple(preds.shape)}")
    if preds.numel() == 0:
        raise ValueError(f"{name}: empty input of shape {tuple(preds.shape)}")
    dtype = torch.promote_types(preds.dtype, target.dtype)
    if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    preds, target = preds.to(dtype), target.to(dtype)
    # One min/max pass per tensor; NaN/inf propagate into it, and only then is the slower count made.
    p_lo, p_hi = torch.aminmax(preds)
    t_lo, t_hi = torch.aminmax(target)
    bounds = torch.stack([p_lo, p_hi, t_lo, t_hi]).tolist()
    if not all(math.isfinite(v) for v in bounds):
        check_finite(name, "preds", preds)
        check_finite(name, "target", target)
    span = max(bounds[1], bounds[3]) - min(bounds[0], bounds[2])
    if span > data_range * (1 + 1e-4):
        raise ValueError(
            f"{name}: values span {span:.6g}, more than data_range={data_range:g}; pass images in "
            f"[0, {data_range:g}] (the convention is [0, 1]) or the matching data_range"
        )
    return preds, target


def check_embeddings(name: str, arg: str, x: object) -> Tensor:
    """Validate a non-empty, finite ``[N, D]`` floating embedding matrix."""
    x = check_tensor(name, arg, x)
    if x.ndim != 2:
        raise ValueError(f"{name}: `{arg}` must have shape [N, D], got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: `{arg}` is empty (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ValueError(f"{name}: `{arg}` must be a floating tensor, got {x.dtype}")
    check_finite(name, arg, x)
    return x


def check_labels(name: str, arg: str, labels: object, n: int) -> Tensor:
    """Validate a 1-D integer label vector of length ``n``."""
    labels = check_tensor(name, arg, labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name}: `{arg}` must be an integer tensor, got {labels.dtype}")
    return labels
