"""Gaussian mechanism with L2 sensitivity (``docs/metrics.md``, "Gaussian mechanism"): classical and analytic
calibration.

* Classical: σ = Δ·√(2 ln(1.25/δ))/ε — valid only for ε < 1.
* Analytic (Balle & Wang 2018, arXiv 1805.06530): the exact privacy profile
  δ(ε) = Φ(Δ/(2σ) − εσ/Δ) − e^ε·Φ(−Δ/(2σ) − εσ/Δ), evaluated in log space (``log_ndtr``) so that e^ε·Φ(·)
  never overflows; σ(ε, δ) and ε(σ, δ) are its inverses (Brent on a log scale).
* k releases with the same σ are exactly one release with σ/√k; releases with σ_1..σ_k compose to
  (Σ σ_i⁻²)^(−1/2) (same sensitivity). So k-fold certification stays closed-form and exact.
* RDP ρ(α) = αΔ²/(2σ²); zCDP ρ = Δ²/(2σ²) per release.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special

from src.metrics.privacy._checks import count, exactly_one, positive, probability
from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo, Sensitivity

__all__ = [
    "analytic_gaussian_delta",
    "analytic_gaussian_epsilon",
    "analytic_gaussian_sigma",
    "certify_gaussian",
    "classic_gaussian_delta",
    "classic_gaussian_sigma",
    "composed_gaussian_sigma",
    "gaussian_rdp",
    "k_fold_gaussian_sigma",
]


def classic_gaussian_sigma(epsilon: float, delta: float, sensitivity_l2: float = 1.0) -> float:
    """Classical calibration σ = Δ√(2 ln(1.25/δ))/ε (Dwork & Roth); a valid guarantee only when ε < 1."""
    fn = "classic_gaussian_sigma"
    eps = positive(fn, "epsilon", epsilon)
    d = probability(fn, "delta", delta)
    return positive(fn, "sensitivity_l2", sensitivity_l2) * math.sqrt(2.0 * math.log(1.25 / d)) / eps


def classic_gaussian_delta(epsilon: float, sigma: float, sensitivity_l2: float = 1.0) -> float:
    """δ = 1.25·exp(−(εσ/Δ)²/2): the classical calibration solved for δ (a valid guarantee only for ε < 1)."""
    fn = "classic_gaussian_delta"
    eps = positive(fn, "epsilon", epsilon)
    ratio = eps * positive(fn, "sigma", sigma) / positive(fn, "sensitivity_l2", sensitivity_l2)
    return min(1.0, 1.25 * math.exp(-0.5 * ratio**2))


def _log_delta(epsilon: float, sigma: float, sens: float) -> float:
    """ln δ(ε) of the Gaussian mechanism (−inf when δ underflows to 0)."""
    a = sens / (2.0 * sigma) - epsilon * sigma / sens
    c = -sens / (2.0 * sigma) - epsilon * sigma / sens
    log_pa = float(special.log_ndtr(a))
    log_ratio = epsilon + float(special.log_ndtr(c)) - log_pa
    if log_ratio >= 0.0:
        return -math.inf
    return log_pa + math.log(-math.expm1(log_ratio))


def analytic_gaussian_delta(epsilon: float, sigma: float, sensitivity_l2: float = 1.0) -> float:
    """Exact δ(ε) of one Gaussian release with noise σ and sensitivity Δ (Balle & Wang 2018, Thm 8)."""
    fn = "analytic_gaussian_delta"
    eps = positive(fn, "epsilon", epsilon, allow_zero=True)
    return math.exp(
        _log_delta(eps, positive(fn, "sigma", sigma), positive(fn, "sensitivity_l2", sensitivity_l2))
    )


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity_l2: float = 1.0) -> float:
    """Smallest σ whose Gaussian release is (ε, δ)-DP (analytic calibration, any ε > 0)."""
    fn = "analytic_gaussian_sigma"
    eps = positive(fn, "epsilon", epsilon)
    log_target = math.log(probability(fn, "delta", delta))
    sens = positive(fn, "sensitivity_l2", sensitivity_l2)

    def gap(log_sigma: float) -> float:
        return _log_delta(eps, math.exp(log_sigma), sens) - log_target

    lo = hi = math.log(sens)
    while gap(lo) <= 0:  # δ too small already: shrink σ
        lo -= 1.0
    while gap(hi) > 0:  # δ too large: grow σ
        hi += 1.0
    return math.exp(optimize.brentq(gap, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))


def analytic_gaussian_epsilon(sigma: float, delta: float, sensitivity_l2: float = 1.0) -> float:
    """Smallest ε ≥ 0 with δ(ε) ≤ ``delta`` for one Gaussian release (exact ε of the mechanism)."""
    fn = "analytic_gaussian_epsilon"
    s = positive(fn, "sigma", sigma)
    log_target = math.log(probability(fn, "delta", delta))
    sens = positive(fn, "sensitivity_l2", sensitivity_l2)

    def gap(eps: float) -> float:
        return _log_delta(eps, s, sens) - log_target

    if gap(0.0) <= 0:
        return 0.0
    hi = 1.0
    while gap(hi) > 0:
        hi *= 2.0
    return optimize.brentq(gap, 0.0, hi, xtol=1e-14, rtol=1e-14, maxiter=500)


def gaussian_rdp(alpha: float | np.ndarray, sigma: float, sensitivity_l2: float = 1.0) -> float | np.ndarray:
    """RDP ρ(α) = αΔ²/(2σ²) of one Gaussian release."""
    s = positive("gaussian_rdp", "sigma", sigma)
    sens = positive("gaussian_rdp", "sensitivity_l2", sensitivity_l2)
    out = np.asarray(alpha, dtype=np.float64) * sens**2 / (2.0 * s**2)
    return float(out) if np.ndim(out) == 0 else out


def k_fold_gaussian_sigma(sigma: float, releases_k: int) -> float:
    """σ/√k: the single Gaussian release equivalent to k releases with noise σ (same sensitivity)."""
    return positive("k_fold_gaussian_sigma", "sigma", sigma) / math.sqrt(
        count("k_fold_gaussian_sigma", "releases_k", releases_k)
    )


def composed_gaussian_sigma(sigmas: Sequence[float]) -> float:
    """(Σ σ_i⁻²)^(−1/2): the one Gaussian equivalent to releases with noises σ_1..σ_k (same sensitivity)."""
    if len(sigmas) == 0:
        raise ValueError("composed_gaussian_sigma: `sigmas` must not be empty")
    inv = sum(positive("composed_gaussian_sigma", "sigmas[i]", s) ** -2 for s in sigmas)
    return inv**-0.5


def certify_gaussian(
    *,
    sensitivity_l2: float,
    delta: float,
    representation: str,
    sigma: float | None = None,
    epsilon: float | None = None,
    calibration: str = "analytic",
    releases_k: int = 1,
    neighbor_relation: str = "replace-one",
    composition_scope: str = "per-image",
    rng: RngInfo | int | None = None,
) -> Certification:
    """Certify k Gaussian releases at ``delta`` given the noise ``sigma`` or a per-release target ``epsilon``.

    With ``epsilon``, σ is calibrated per release (``calibration="analytic"``, or ``"classic"`` which refuses
    ε ≥ 1). The certified ε of all k releases is the exact analytic ε of the equivalent σ/√k release.
    For LDP of one vector with ‖x‖ ≤ C under replace-one, pass ``sensitivity_l2 = 2C``.
    """
    fn = "certify_gaussian"
    sens = positive(fn, "sensitivity_l2", sensitivity_l2)
    d = probability(fn, "delta", delta)
    k = count(fn, "releases_k", releases_k)
    if calibration not in ("analytic", "classic"):
        raise ValueError(f"{fn}: unknown calibration {calibration!r}; expected 'analytic' or 'classic'")
    given = exactly_one(fn, sigma=sigma, epsilon=epsilon)
    if given == "epsilon":
        eps0 = positive(fn, "epsilon", epsilon)
        if calibration == "classic":
            if eps0 >= 1.0:
                raise ValueError(f"{fn}: classical calibration is only valid for epsilon < 1, got {eps0}")
            s = classic_gaussian_sigma(eps0, d, sens)
        else:
            s = analytic_gaussian_sigma(eps0, d, sens)
    else:
        s = positive(fn, "sigma", sigma)
        eps0 = analytic_gaussian_epsilon(s, d, sens)
    eps_total = analytic_gaussian_epsilon(k_fold_gaussian_sigma(s, k), d, sens)
    record = PrivacyRecord(
        mechanism="gaussian",
        representation=representation,
        neighbor_relation=neighbor_relation,
        sensitivity=Sensitivity(sens, "l2"),
        noise_params={
            "sigma": s,
            "noise_multiplier": s / sens,
            "calibration": calibration,
            "sigma_equivalent": k_fold_gaussian_sigma(s, k),
        },
        epsilon_nominal=eps0,
        epsilon_certified=eps_total,
        delta=d,
        accountant="closed-form",
        releases_k=k,
        composition_scope=composition_scope,
        rng=RngInfo.coerce(rng),
        certified=True,
    )
    return Certification(eps_total, d, record)
