"""Accountants of the (Poisson-subsampled) Gaussian mechanism through dp-accounting: the tight ε of its
privacy-loss distribution (PLD) and the RDP ε together with the Rényi order that attains it.

``noise_multiplier`` is σ / Δ₂ (noise standard deviation over the L2 sensitivity), ``sampling_rate`` the
Poisson rate q per step (1 = no subsampling: ``steps`` plain Gaussian releases), ``steps`` the number of
compositions. Adjacency is add/remove of one record (dp-accounting's default). Definitions, conversions and
the reference values these functions were checked against: ``docs/metrics.md`` ("DP accounting").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from src.metrics.privacy._checks import count, positive, probability
from src.metrics.privacy._library import dp_accounting
from src.metrics.privacy.conversions import DEFAULT_ORDERS

__all__ = ["RdpEpsilon", "gaussian_event", "gaussian_pld_epsilon", "rdp_epsilon"]


class RdpEpsilon(NamedTuple):
    """ε of an RDP accountant (Balle et al. 2020 conversion) and the Rényi order α that attains it."""

    epsilon: float
    order: float


def gaussian_event(fn: str, noise_multiplier: float, sampling_rate: float, steps: int) -> Any:
    """dp-accounting event of ``steps`` Gaussian releases, each Poisson-subsampled at ``sampling_rate``."""
    sigma = positive(fn, "noise_multiplier", noise_multiplier)
    q = positive(fn, "sampling_rate", sampling_rate)
    if q > 1:
        raise ValueError(f"{fn}: `sampling_rate` must lie in (0, 1], got {sampling_rate}")
    t = count(fn, "steps", steps)
    lib = dp_accounting()
    event = lib.GaussianDpEvent(sigma)
    if q < 1:
        event = lib.PoissonSampledDpEvent(q, event)
    return lib.SelfComposedDpEvent(event, t)


def gaussian_pld_epsilon(
    noise_multiplier: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    *,
    value_discretization_interval: float = 1e-4,
) -> float:
    """ε(δ) of ``steps`` Poisson-subsampled Gaussian releases from their privacy-loss distribution.

    dp-accounting's pessimistic PLD (``pld.PLDAccountant``): an upper bound on the tight ε whose slack shrinks
    with ``value_discretization_interval`` (about ±0.01 at the default 1e-4 for DP-SGD-sized compositions).
    With ``sampling_rate=1`` this is the exact ε of the Gaussian mechanism with σ/Δ = ``noise_multiplier``
    composed ``steps`` times (σ = 1, one step, δ = 1e-5: ε = 4.3772).
    """
    fn = "gaussian_pld_epsilon"
    event = gaussian_event(fn, noise_multiplier, sampling_rate, steps)
    d = probability(fn, "delta", delta)
    interval = positive(fn, "value_discretization_interval", value_discretization_interval)
    accountant = dp_accounting().pld.PLDAccountant(value_discretization_interval=interval)
    with np.errstate(over="ignore"):  # dp-accounting's tail-bound search overflows harmlessly
        accountant.compose(event)
        return float(accountant.get_epsilon(d))


def rdp_epsilon(
    noise_multiplier: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    *,
    orders: Sequence[float] = DEFAULT_ORDERS,
) -> RdpEpsilon:
    """``(epsilon, order)``: ε(δ) of ``steps`` Poisson-subsampled Gaussian releases through Rényi DP, and the
    best order α.

    dp-accounting's ``rdp.RdpAccountant`` over ``orders`` (default :data:`DEFAULT_ORDERS`, dp-accounting's
    and opacus' grid) with the Balle et al. 2020 conversion ε = ρ(α) + ln((α − 1)/α) − (ln δ + ln α)/(α − 1),
    minimised over the grid. Deterministic. An optimum on the edge of the grid (the smallest or largest order)
    means a wider grid could give a smaller ε.
    """
    fn = "rdp_epsilon"
    event = gaussian_event(fn, noise_multiplier, sampling_rate, steps)
    d = probability(fn, "delta", delta)
    grid = [positive(fn, "orders", a) for a in orders]
    if not grid or any(a <= 1 for a in grid):
        raise ValueError(f"{fn}: `orders` must be a non-empty sequence of numbers > 1")
    accountant = dp_accounting().rdp.RdpAccountant(orders=grid)
    with np.errstate(over="ignore"):
        accountant.compose(event)
        epsilon, order = accountant.get_epsilon_and_optimal_order(d)
    return RdpEpsilon(float(epsilon), float(order))
