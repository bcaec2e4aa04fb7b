"""The accountant library: **dp-accounting** (Google), pinned ``dp-accounting==0.6.0``; lazy access to it.

Why this one of the three accounting libraries (opacus, dp-accounting, prv-accountant):
* it is the only one that covers everything this package certifies: RDP *and* PLD accountants, Laplace
  events, the analytic-Gaussian helpers, and ``create_from_rounded_probability`` for the numeric PLD of
  custom mechanisms (Purkayastha / VMF);
* it is maintained (0.6.0 released in 2026) and pure Python on numpy/scipy — it neither imports nor pins
  torch (its only extra dependencies are absl-py, attrs, dm-tree and mpmath);
* opacus has no Laplace or custom-PLD accountant and pulls torch and its DPOptimizer into accounting code;
  prv-accountant has had no release since 2022.
The reference values agree with the choice: opacus' RDP and dp-accounting's RDP give identical ε, and the
PRV values lie within the PRV tolerance of dp-accounting's PLD (``docs/metrics.md``, "DP-SGD").

The closed forms of this package need only numpy/scipy; the library is imported on first use so that a
missing install fails at the call that needs it, naming the package to install, not at import time.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import Any

import numpy as np

LIBRARY = "dp-accounting"
PINNED_VERSION = "0.6.0"

__all__ = ["LIBRARY", "PINNED_VERSION", "accountant_tag", "dp_accounting", "library_version", "self_compose"]


def dp_accounting() -> ModuleType:
    """Return the imported ``dp_accounting`` module or raise ``ImportError`` saying what to install."""
    try:
        return importlib.import_module("dp_accounting")
    except ImportError as err:  # pragma: no cover - exercised only on a broken install
        raise ImportError(
            f"privacy accounting needs {LIBRARY}=={PINNED_VERSION} (pip install {LIBRARY}=={PINNED_VERSION})"
        ) from err


@cache
def library_version() -> str:
    """Installed version of the accountant library (``"missing"`` if it is not installed)."""
    try:
        return metadata.version(LIBRARY)
    except metadata.PackageNotFoundError:
        return "missing"


def accountant_tag(kind: str) -> str:
    """The record's ``accountant`` string for an accountant ``kind`` run through the library."""
    return f"{kind} ({LIBRARY} {library_version()})"


def self_compose(pld: Any, times: int) -> Any:
    """``pld.self_compose(times)`` (identity for 1), silencing the overflow warning that dp-accounting 0.6.0's
    tail-bound search raises on large moment orders (scipy ``logsumexp``); the result is unaffected."""
    if times == 1:
        return pld
    with np.errstate(over="ignore"):
        return pld.self_compose(times)
