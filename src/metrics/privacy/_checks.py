"""Argument checks shared by the accounting functions; every error names the function and the argument."""

from __future__ import annotations

import math
from collections.abc import Mapping


def positive(fn: str, name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else raise naming the argument."""
    if isinstance(value, bool):
        raise ValueError(f"{fn}: `{name}` must be a number, got bool")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: `{name}` must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{fn}: `{name}` must be a finite number {bound}, got {value!r}")
    return out


def probability(fn: str, name: str, value: object, *, open_low: bool = True) -> float:
    """Return ``value`` as a float in (0, 1) (or [0, 1) with ``open_low=False``)."""
    out = positive(fn, name, value, allow_zero=not open_low)
    if out >= 1:
        raise ValueError(f"{fn}: `{name}` must lie in {'(0' if open_low else '[0'}, 1), got {value!r}")
    return out


def count(fn: str, name: str, value: object) -> int:
    """Return ``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: `{name}` must be an integer >= 1, got {value!r}")
    return value


def exactly_one(fn: str, **kwargs: object) -> str:
    """Return the name of the single keyword that is not None, else raise listing them."""
    given = [k for k, v in kwargs.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"{fn}: pass exactly one of {sorted(kwargs)}, got {given or 'none'}")
    return given[0]


def merge_params(
    fn: str, computed: dict[str, float | int | str], extra: Mapping[str, float | int | str] | None
) -> dict[str, float | int | str]:
    """``computed`` noise parameters plus the caller's ``extra`` ones; an extra key may not replace one."""
    if extra is None:
        return dict(computed)
    if not isinstance(extra, Mapping):
        raise ValueError(f"{fn}: `extra_params` must be a mapping, got {type(extra).__name__}")
    clash = sorted(set(computed) & set(extra))
    if clash:
        raise ValueError(f"{fn}: `extra_params` may not replace the computed noise parameters {clash}")
    return {**computed, **extra}
