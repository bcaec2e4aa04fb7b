"""Closed forms and numeric utilities of the spherical identity mechanisms
(``docs/metrics.md``, "Spherical mechanisms").

A rotation-invariant mechanism on S^{d−1} outputs w = v·cos θ + u·sin θ with u uniform on the unit sphere of
v^⊥ and an angle θ whose marginal density is ∝ g(θ)·sin^{d−2}θ (the surface Jacobian). With κ = ε/Δθ:

* ``angular_exponential`` — θ ~ e^{−κθ} on [0, π] *without* the Jacobian (uncertified for d ≥ 3, see
  :mod:`src.metrics.privacy.audit`). Its angle law does not depend on d.
* ``purkayastha`` — g(θ) = e^{−κθ}: ε-LDP with ε = κπ, or κ·d_θ metric privacy.
* ``vmf`` — g(θ) = e^{κ cos θ}: κ·d_2 metric privacy, 2κ-LDP.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from src.metrics.privacy._checks import count, positive

__all__ = [
    "SPHERICAL_MECHANISMS",
    "angle_log_density",
    "angular_exponential_cdf",
    "angular_exponential_expected_angle",
    "angular_exponential_expected_cos",
    "angular_exponential_median_angle",
    "angular_exponential_theta",
    "expected_cos",
    "gaussian_unit_vector_expected_cos",
    "laplace_unit_vector_expected_cos",
    "purkayastha_epsilon_for_expected_cos",
    "purkayastha_expected_cos",
    "vmf_expected_cos",
]

SPHERICAL_MECHANISMS: tuple[str, ...] = ("angular_exponential", "purkayastha", "vmf")


def _kappa(fn: str, epsilon: float, delta_theta: float) -> float:
    return positive(fn, "epsilon", epsilon) / positive(fn, "delta_theta", delta_theta)


def angular_exponential_theta(
    u: float | np.ndarray, epsilon: float, delta_theta: float = math.pi
) -> float | np.ndarray:
    """Inverse CDF of the truncated exponential: θ = −(Δθ/ε)·ln(1 − U(1 − e^{−επ/Δθ})), U ∈ [0, 1]."""
    kappa = _kappa("angular_exponential_theta", epsilon, delta_theta)
    arr = np.asarray(u, dtype=np.float64)
    if np.any(arr < 0) or np.any(arr > 1) or not np.all(np.isfinite(arr)):
        raise ValueError("angular_exponential_theta: `u` must lie in [0, 1]")
    # ln(1 − U(1 − e^{−κπ})) = ln((1 − U) + U·e^{−κπ}), summed in log space: exact at U = 0 and U = 1.
    with np.errstate(divide="ignore"):
        log_tail = np.logaddexp(np.log1p(-arr), np.log(arr) - kappa * math.pi)
    theta = np.clip(-log_tail / kappa, 0.0, math.pi)
    return float(theta) if np.ndim(theta) == 0 else theta


def angular_exponential_cdf(
    theta: float | np.ndarray, epsilon: float, delta_theta: float = math.pi
) -> float | np.ndarray:
    """F(θ) = (1 − e^{−κθ})/(1 − e^{−κπ}) on [0, π] (clipped outside): P(angle ≤ θ) of the sampler."""
    kappa = _kappa("angular_exponential_cdf", epsilon, delta_theta)
    t = np.clip(np.asarray(theta, dtype=np.float64), 0.0, math.pi)
    out = np.expm1(-kappa * t) / np.expm1(-kappa * math.pi)
    return float(out) if np.ndim(out) == 0 else out


def angular_exponential_expected_angle(epsilon: float, delta_theta: float = math.pi) -> float:
    """E[θ] = 1/κ − π e^{−κπ}/(1 − e^{−κπ}) (radians)."""
    kappa = _kappa("angular_exponential_expected_angle", epsilon, delta_theta)
    return 1.0 / kappa - math.pi / math.expm1(kappa * math.pi)


def angular_exponential_median_angle(epsilon: float, delta_theta: float = math.pi) -> float:
    """Median θ = −(1/κ)·ln((1 + e^{−κπ})/2) (radians)."""
    kappa = _kappa("angular_exponential_median_angle", epsilon, delta_theta)
    return -math.log((1.0 + math.exp(-kappa * math.pi)) / 2.0) / kappa


def angular_exponential_expected_cos(epsilon: float, delta_theta: float = math.pi) -> float:
    """E[cos θ] = κ²(1 + e^{−κπ}) / ((1 + κ²)(1 − e^{−κπ})) — independent of the dimension."""
    kappa = _kappa("angular_exponential_expected_cos", epsilon, delta_theta)
    q = math.exp(-kappa * math.pi)
    return kappa**2 * (1.0 + q) / ((1.0 + kappa**2) * -math.expm1(-kappa * math.pi))


def angle_log_density(mechanism: str, kappa: float, dimension: int, theta: np.ndarray) -> np.ndarray:
    """Unnormalised log density of the output angle θ ∈ (0, π) for a spherical mechanism.

    ``angular_exponential``: −κθ (Jacobian dropped); ``purkayastha``: −κθ + (d−2)·ln sin θ;
    ``vmf``: κ·cos θ + (d−2)·ln sin θ.
    """
    fn = "angle_log_density"
    k = positive(fn, "kappa", kappa, allow_zero=True)
    d = count(fn, "dimension", dimension)
    if d < 2:
        raise ValueError(f"{fn}: `dimension` must be >= 2, got {dimension}")
    theta = np.asarray(theta, dtype=np.float64)
    if mechanism == "angular_exponential":
        return -k * theta
    with np.errstate(divide="ignore"):
        jacobian = (d - 2) * np.log(np.sin(theta)) if d > 2 else np.zeros_like(theta)
    if mechanism == "purkayastha":
        return -k * theta + jacobian
    if mechanism == "vmf":
        return k * np.cos(theta) + jacobian
    raise ValueError(f"{fn}: unknown mechanism {mechanism!r}; expected one of {SPHERICAL_MECHANISMS}")


def _angle_grid(mechanism: str, kappa: float, dimension: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell midpoints on (0, π) and their normalised probability masses."""
    edges = np.linspace(0.0, math.pi, points + 1)
    mid = 0.5 * (edges[:-1] + edges[1:])
    log_p = angle_log_density(mechanism, kappa, dimension, mid)
    mass = np.exp(log_p - log_p.max())
    return mid, mass / mass.sum()


def expected_cos(mechanism: str, kappa: float, dimension: int, *, points: int = 200_000) -> float:
    """E[cos θ] by numeric integration of the angle density on ``points`` cells (midpoint rule)."""
    mid, mass = _angle_grid(mechanism, kappa, dimension, count("expected_cos", "points", points))
    return float(np.dot(mass, np.cos(mid)))


def purkayastha_expected_cos(
    epsilon: float, dimension: int, delta_theta: float = math.pi, *, points: int = 200_000
) -> float:
    """E[cos θ] of the Purkayastha mechanism with κ = ε/Δθ in dimension d (numeric)."""
    return expected_cos(
        "purkayastha", _kappa("purkayastha_expected_cos", epsilon, delta_theta), dimension, points=points
    )


def purkayastha_epsilon_for_expected_cos(
    target: float, dimension: int, delta_theta: float = math.pi, *, points: int = 200_000
) -> float:
    """The ε at which the Purkayastha mechanism reaches E[cos θ] = ``target`` ∈ (0, 1) (Brent)."""
    fn = "purkayastha_epsilon_for_expected_cos"
    t = positive(fn, "target", target)
    if t >= 1:
        raise ValueError(f"{fn}: `target` must lie in (0, 1), got {target}")

    def gap(log_eps: float) -> float:
        return purkayastha_expected_cos(math.exp(log_eps), dimension, delta_theta, points=points) - t

    lo, hi = math.log(1e-3), math.log(10.0)
    while gap(hi) < 0:
        lo, hi = hi, hi + math.log(10.0)
    return math.exp(optimize.brentq(gap, lo, hi, xtol=1e-10))


def vmf_expected_cos(kappa: float, dimension: int) -> float:
    """E[cos θ] = I_{d/2}(κ)/I_{d/2−1}(κ) of the von Mises–Fisher distribution on S^{d−1}."""
    fn = "vmf_expected_cos"
    k = positive(fn, "kappa", kappa, allow_zero=True)
    d = count(fn, "dimension", dimension)
    if d < 2:
        raise ValueError(f"{fn}: `dimension` must be >= 2, got {dimension}")
    if k == 0:
        return 0.0
    nu = d / 2.0
    num, den = float(special.ive(nu, k)), float(special.ive(nu - 1.0, k))
    if den > 1e-280 and num > 1e-280:
        return num / den
    # Small κ against a large order underflows ive: use the backward recurrence
    # r_ν = I_ν/I_{ν−1} = 1/(2ν/κ + r_{ν+1}), started far out with r ≈ κ/(ν + √(ν² + κ²)).
    top = nu + 200.0
    ratio = k / (top + math.sqrt(top**2 + k**2))
    for order in np.arange(top, nu - 0.5, -1.0):
        ratio = 1.0 / (2.0 * order / k + ratio)
    return float(ratio)


def gaussian_unit_vector_expected_cos(sigma: float, dimension: int) -> float:
    """Approximate cosine 1/√(1 + dσ²) between a unit vector and itself plus N(0, σ²I_d) noise."""
    s = positive("gaussian_unit_vector_expected_cos", "sigma", sigma)
    return 1.0 / math.sqrt(1.0 + count("gaussian_unit_vector_expected_cos", "dimension", dimension) * s**2)


def laplace_unit_vector_expected_cos(scale: float, dimension: int) -> float:
    """Approximate cosine 1/√(1 + 2db²) for i.i.d. Laplace(b) noise per coordinate (variance 2b²)."""
    b = positive("laplace_unit_vector_expected_cos", "scale", scale)
    return 1.0 / math.sqrt(
        1.0 + 2.0 * count("laplace_unit_vector_expected_cos", "dimension", dimension) * b**2
    )
