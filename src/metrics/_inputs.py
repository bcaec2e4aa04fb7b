"""Input validation of the detection metrics: scores, binary labels and ids as tensors, numpy arrays, pandas
Series or lists, each error naming the metric (``"frame_auc: `labels` must be ..."``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = [
    "ArrayLike",
    "check_binary_labels",
    "check_choice",
    "check_scores",
    "check_threshold",
    "group_index",
    "require_both_classes",
    "scores_labels",
    "to_tensor",
]

#: Accepted inputs: tensors (any device), numpy arrays, pandas Series, lists / tuples.
ArrayLike = Tensor | np.ndarray | pd.Series | Sequence[Any]


def to_tensor(name: str, arg: str, x: object) -> Tensor:
    """A detached tensor (left on its device) from a tensor, numpy array or sequence of numbers."""
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, pd.Series | pd.Index):
        x = x.to_numpy()
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name}: `{arg}` must hold numbers, got an array of dtype {arr.dtype}")
        return torch.tensor(arr)  # a copy: arrays from pandas may be read-only
    raise ValueError(
        f"{name}: `{arg}` must be a torch.Tensor, numpy array, pandas Series or list of numbers, "
        f"got {type(x).__name__}"
    )


def check_scores(name: str, scores: object, arg: str = "scores") -> Tensor:
    """1-D, non-empty, real-valued, finite scores → float64 tensor (on the input's device)."""
    s = to_tensor(name, arg, scores)
    if s.ndim != 1:
        raise ValueError(f"{name}: `{arg}` must be 1-D [N], got shape {tuple(s.shape)}")
    if s.numel() == 0:
        raise ValueError(f"{name}: `{arg}` is empty")
    if s.is_complex() or s.dtype == torch.bool:
        raise ValueError(f"{name}: `{arg}` must be real numbers, got {s.dtype}")
    s = s.to(torch.float64)
    if not bool(torch.isfinite(s).all()):
        n_nan, n_inf = int(torch.isnan(s).sum()), int(torch.isinf(s).sum())
        raise ValueError(f"{name}: `{arg}` contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    return s


def check_binary_labels(name: str, labels: object, n: int) -> Tensor:
    """Labels of length ``n`` with values in {0, 1} (1 = fake) → bool tensor (on the input's device)."""
    y = to_tensor(name, "labels", labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: `labels` must have shape [{n}] like the scores, got {tuple(y.shape)}")
    if y.dtype == torch.bool:
        return y
    if y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name}: `labels` must be boolean or integer 0/1 (1 = fake), got {y.dtype}")
    bad = (y != 0) & (y != 1)
    if bool(bad.any()):
        values = torch.unique(y[bad])[:5].tolist()
        raise ValueError(
            f"{name}: `labels` must be 0 (real) or 1 (fake), found {values}; binarise multi-class method "
            "labels with `labels > 0`"
        )
    return y.bool()


def scores_labels(name: str, scores: object, labels: object) -> tuple[Tensor, Tensor]:
    """Validated (float64 scores, bool labels), both on the CPU where every curve is computed."""
    s = check_scores(name, scores).cpu()
    return s, check_binary_labels(name, labels, s.numel()).cpu()


def require_both_classes(name: str, y: Tensor) -> None:
    n_fake = int(y.sum())
    n_real = y.numel() - n_fake
    if n_fake == 0 or n_real == 0:
        raise ValueError(
            f"{name}: needs both real and fake samples, got {n_real} real (label 0) and "
            f"{n_fake} fake (label 1)"
        )


def check_threshold(name: str, threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(t):
        raise ValueError(f"{name}: threshold must be finite, got {threshold!r}")
    return t


def check_choice(name: str, arg: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: {arg} must be one of {list(choices)}, got {value!r}")
    return value


def group_index(name: str, arg: str, ids: object, n: int) -> tuple[list[Any], Tensor]:
    """Encode ids (strings or integers; tensor, array or list) → (sorted unique ids, inverse LongTensor[n]).

    Unique ids are sorted (integers numerically, strings lexicographically), so the output never depends on
    the order of the rows. Floats, booleans and a mix of strings and integers are refused.
    """
    if isinstance(ids, Tensor):
        t = ids.detach().cpu()
        if t.ndim != 1 or t.shape[0] != n:
            raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {tuple(t.shape)}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name}: `{arg}` must be integer ids or strings, got a {t.dtype} tensor")
        uniq, inverse = torch.unique(t, sorted=True, return_inverse=True)
        return uniq.tolist(), inverse.long()
    if isinstance(ids, pd.Series | pd.Index):
        ids = ids.to_numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or ids.shape[0] != n:
            raise ValueError(f"{name}: `{arg}` must have shape [{n}], got {ids.shape}")
        if ids.dtype.kind in "iuU":
            uniq, inverse = np.unique(ids, return_inverse=True)
            return uniq.tolist(), torch.from_numpy(inverse.reshape(-1).astype(np.int64))
        if ids.dtype.kind != "O":
            raise ValueError(
                f"{name}: `{arg}` must be integer ids or strings, got an array of dtype {ids.dtype}"
            )
        ids = ids.tolist()
    if isinstance(ids, list | tuple):
        if len(ids) != n:
            raise ValueError(f"{name}: `{arg}` must have {n} entries (one per score), got {len(ids)}")
        kinds = {type(v) for v in ids}
        if all(issubclass(k, str) for k in kinds):
            arr = np.asarray(ids, dtype=str)
        elif all(issubclass(k, int | np.integer) and not issubclass(k, bool | np.bool_) for k in kinds):
            arr = np.asarray(ids, dtype=np.int64)
        else:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(f"{name}: `{arg}` must be all strings or all integers, got types {names}")
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq.tolist(), torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    raise ValueError(
        f"{name}: `{arg}` must be a tensor, numpy array or list of ids (strings or integers), "
        f"got {type(ids).__name__}"
    )
