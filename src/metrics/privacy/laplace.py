"""Pure Laplace mechanism on a bounded-L1 vector and its k-fold composition
(docs/metrics.md, "Laplace" and "Composition").

Scale b = Δ1/ε per coordinate gives (ε, 0)-DP. k releases: basic composition k·ε with δ = 0 (closed form), or,
when a target δ > 0 is given, the tight ε from the privacy-loss distribution (dp-accounting PLD).
Laplace RDP (Mironov 2017) is provided for the RDP conversion comparison.
"""

from __future__ import annotations

import math

import numpy as np

from src.metrics.privacy._checks import count, exactly_one, positive, probability
from src.metrics.privacy._library import accountant_tag, dp_accounting, self_compose
from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo, Sensitivity

__all__ = [
    "certify_laplace",
    "laplace_epsilon",
    "laplace_pld_epsilon",
    "laplace_rdp",
    "laplace_scale",
    "laplace_std",
]


def laplace_scale(sensitivity_l1: float, epsilon: float) -> float:
    """Laplace scale b = Δ1/ε that makes one release ε-DP."""
    return positive("laplace_scale", "sensitivity_l1", sensitivity_l1) / positive(
        "laplace_scale", "epsilon", epsilon
    )


def laplace_epsilon(sensitivity_l1: float, scale: float) -> float:
    """ε = Δ1/b of one Laplace release with scale b."""
    return positive("laplace_epsilon", "sensitivity_l1", sensitivity_l1) / positive(
        "laplace_epsilon", "scale", scale
    )


def laplace_rdp(alpha: float | np.ndarray, noise_multiplier: float) -> float | np.ndarray:
    """Rényi DP of order α > 1 of Laplace noise with λ = b/Δ1 (Mironov 2017, Prop. 6).

    ρ(α) = (1/(α−1))·ln[(α/(2α−1))·e^{(α−1)/λ} + ((α−1)/(2α−1))·e^{−α/λ}], evaluated in log space.
    """
    lam = positive("laplace_rdp", "noise_multiplier", noise_multiplier)
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 1):
        raise ValueError(f"laplace_rdp: `alpha` must be finite and > 1, got {alpha!r}")
    log_terms = np.logaddexp(
        np.log(a / (2 * a - 1)) + (a - 1) / lam,
        np.log((a - 1) / (2 * a - 1)) - a / lam,
    )
    out = log_terms / (a - 1)
    return float(out) if np.ndim(out) == 0 else out


def laplace_pld_epsilon(
    sensitivity_l1: float,
    scale: float,
    releases_k: int,
    delta: float,
    *,
    value_discretization_interval: float = 1e-4,
) -> float:
    """Tight ε(δ) of k Laplace releases from the privacy-loss distribution (dp-accounting, pessimistic)."""
    fn = "laplace_pld_epsilon"
    sens = positive(fn, "sensitivity_l1", sensitivity_l1)
    b = positive(fn, "scale", scale)
    k = count(fn, "releases_k", releases_k)
    d = probability(fn, "delta", delta)
    pld_mod = dp_accounting().pld.privacy_loss_distribution
    pld = pld_mod.from_laplace_mechanism(
        parameter=b, sensitivity=sens, value_discretization_interval=value_discretization_interval
    )
    pld = self_compose(pld, k)
    return min(float(pld.get_epsilon_for_delta(d)), k * sens / b)


def certify_laplace(
    *,
    sensitivity_l1: float,
    representation: str,
    epsilon: float | None = None,
    scale: float | None = None,
    releases_k: int = 1,
    delta: float | None = None,
    neighbor_relation: str = "replace-one",
    composition_scope: str = "per-image",
    rng: RngInfo | int | None = None,
    mechanism: str = "laplace",
    extra_params: dict[str, float | int | str] | None = None,
) -> Certification:
    """Certify k Laplace releases given the per-release ``epsilon`` *or* the noise ``scale``.

    ``delta`` None or 0 → basic composition (k·ε, 0), closed form. ``delta`` > 0 and k > 1 → the tight
    ε(δ) of the k-fold privacy-loss distribution (never above k·ε).
    """
    fn = "certify_laplace"
    sens = positive(fn, "sensitivity_l1", sensitivity_l1)
    given = exactly_one(fn, epsilon=epsilon, scale=scale)
    if given == "epsilon":
        eps0 = positive(fn, "epsilon", epsilon)
        b = sens / eps0
    else:
        b = positive(fn, "scale", scale)
        eps0 = sens / b
    k = count(fn, "releases_k", releases_k)
    target = 0.0 if delta is None else probability(fn, "delta", delta, open_low=False)
    if k == 1 or target == 0.0:
        eps_total, accountant = k * eps0, "closed-form"
    else:
        eps_total = laplace_pld_epsilon(sens, b, k, target)
        accountant = accountant_tag("pld")
    record = PrivacyRecord(
        mechanism=mechanism,
        representation=representation,
        neighbor_relation=neighbor_relation,
        sensitivity=Sensitivity(sens, "l1"),
        noise_params={"scale": b, "noise_multiplier": b / sens, **(extra_params or {})},
        epsilon_nominal=eps0,
        epsilon_certified=eps_total,
        delta=target,
        accountant=accountant,
        releases_k=k,
        composition_scope=composition_scope,
        rng=RngInfo.coerce(rng),
        certified=True,
    )
    return Certification(eps_total, target, record)


def laplace_std(scale: float) -> float:
    """Standard deviation √2·b of a Laplace variable with scale b."""
    return math.sqrt(2.0) * positive("laplace_std", "scale", scale)
