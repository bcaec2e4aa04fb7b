"""Rényi-DP and zCDP → (ε, δ) conversions (``docs/metrics.md``, "Conversions"), written from the formulas.

* Mironov 2017: ε = ρ(α) + ln(1/δ)/(α − 1).
* Balle et al. 2020 (arXiv 1905.09982, Thm 21), the one opacus and dp-accounting use:
  ε = ρ(α) + ln((α − 1)/α) − (ln δ + ln α)/(α − 1).
* zCDP: ρ-zCDP ⇒ (ρ + 2√(ρ ln(1/δ)), δ)-DP.

Both RDP conversions minimise over a finite grid of orders; :data:`DEFAULT_ORDERS` is 1.1, 1.2, …, 10.9,
11, 12, …, 63, 128, 256, 512, 1024 (the grid of opacus and dp-accounting, on which the reference values were
computed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from src.metrics.privacy._checks import positive, probability

__all__ = ["DEFAULT_ORDERS", "rdp_to_dp", "zcdp_to_dp"]

DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1.0 + x / 10.0 for x in range(1, 100)]
    + [float(a) for a in range(11, 64)]
    + [128.0, 256.0, 512.0, 1024.0]
)


def rdp_to_dp(
    rdp: Sequence[float] | np.ndarray,
    delta: float,
    orders: Sequence[float] | np.ndarray = DEFAULT_ORDERS,
    *,
    method: str = "balle",
) -> tuple[float, float]:
    """Smallest ε over ``orders`` for RDP curve ``rdp`` (same length) at ``delta``; returns (ε, best α).

    ``method`` is ``"balle"`` (Balle et al. 2020) or ``"mironov"`` (Mironov 2017).
    """
    fn = "rdp_to_dp"
    d = probability(fn, "delta", delta)
    a = np.asarray(orders, dtype=np.float64)
    r = np.asarray(rdp, dtype=np.float64)
    if a.shape != r.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"{fn}: `rdp` and `orders` must be 1-D of equal length, got {r.shape} and {a.shape}")
    if np.any(a <= 1) or not np.all(np.isfinite(a)):
        raise ValueError(f"{fn}: every order must be finite and > 1")
    if np.any(np.isnan(r)) or np.any(r < 0):
        raise ValueError(f"{fn}: RDP values must be >= 0 (inf allowed)")
    if method == "mironov":
        eps = r + math.log(1.0 / d) / (a - 1)
    elif method == "balle":
        eps = r + np.log1p(-1.0 / a) - (math.log(d) + np.log(a)) / (a - 1)
    else:
        raise ValueError(f"{fn}: unknown method {method!r}; expected 'balle' or 'mironov'")
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(a[best])


def zcdp_to_dp(rho: float, delta: float) -> float:
    """ε = ρ + 2√(ρ ln(1/δ)) of a ρ-zCDP mechanism at ``delta``."""
    r = positive("zcdp_to_dp", "rho", rho, allow_zero=True)
    d = probability("zcdp_to_dp", "delta", delta)
    return r + 2.0 * math.sqrt(r * math.log(1.0 / d))
