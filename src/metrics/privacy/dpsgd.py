"""DP-SGD accounting (``docs/metrics.md``, "DP-SGD"): Poisson-subsampled Gaussian, T steps, rate q → ε at δ.

Accountant: dp-accounting's RDP (Balle et al. 2020 conversion) or PLD accountant through
:mod:`src.metrics.privacy.accountants`; why this library, see :mod:`src.metrics.privacy._library`.

Semantics: TRN (membership in the training set). Record-level adjacency is add/remove of one example
(``q = B/N``); user-level adjacency (per identity) needs q = identities sampled per step / identities.
"""

from __future__ import annotations

import math
from fractions import Fraction

from src.metrics.privacy._checks import count, positive, probability
from src.metrics.privacy._library import accountant_tag
from src.metrics.privacy.accountants import gaussian_pld_epsilon, rdp_epsilon
from src.metrics.privacy.gaussian import analytic_gaussian_epsilon
from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo, Sensitivity

__all__ = [
    "certify_dpsgd",
    "dpsgd_epsilon",
    "dpsgd_noise_multiplier",
    "dpsgd_steps",
    "gdp_clt_epsilon",
]

_ACCOUNTANTS = ("rdp", "pld")
_MAX_SIGMA = 1e6


def dpsgd_steps(dataset_size: int, batch_size: int, epochs: float) -> int:
    """Number of steps ``floor(epochs / q)`` with ``q = B/N`` (opacus' ``int(epochs / sample_rate)``), in
    exact rational arithmetic: ``floor(epochs × N / B)``.

    The floating-point ``int(epochs / (B / N))`` loses a step whenever ``epochs × N / B`` is an integer that
    ``B / N`` cannot represent (``dpsgd_steps(1925, 100, 100)`` is 1925, not 1924). A float ``epochs`` is read
    as the decimal it prints as (``0.1`` is 1/10).
    """
    fn = "dpsgd_steps"
    n = count(fn, "dataset_size", dataset_size)
    b = count(fn, "batch_size", batch_size)
    if b > n:
        raise ValueError(f"{fn}: batch_size {b} exceeds dataset_size {n}")
    positive(fn, "epochs", epochs)
    exact = Fraction(epochs) if isinstance(epochs, int | Fraction) else Fraction(str(float(epochs)))
    return math.floor(exact * n / b)


def dpsgd_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "pld",
    value_discretization_interval: float = 1e-4,
) -> float:
    """ε(δ) of ``steps`` Poisson-subsampled Gaussian steps (noise multiplier σ/C, rate q) with dp-accounting.

    ``accountant="rdp"``: :func:`~src.metrics.privacy.accountants.rdp_epsilon` (Balle et al. 2020
    conversion, deterministic; use it directly for the best order too); ``"pld"``:
    :func:`~src.metrics.privacy.accountants.gaussian_pld_epsilon` (pessimistic privacy-loss distribution,
    tight up to ``value_discretization_interval``).
    """
    fn = "dpsgd_epsilon"
    positive(fn, "noise_multiplier", noise_multiplier)
    count(fn, "steps", steps)
    probability(fn, "delta", delta)
    if accountant == "rdp":
        return rdp_epsilon(noise_multiplier, _rate(fn, sample_rate), steps, delta).epsilon
    if accountant == "pld":
        return gaussian_pld_epsilon(
            noise_multiplier,
            _rate(fn, sample_rate),
            steps,
            delta,
            value_discretization_interval=value_discretization_interval,
        )
    raise ValueError(f"{fn}: unknown accountant {accountant!r}; expected one of {_ACCOUNTANTS}")


def _rate(fn: str, sample_rate: float) -> float:
    """``sample_rate`` checked under its DP-SGD name (the accountants call it ``sampling_rate``)."""
    q = positive(fn, "sample_rate", sample_rate)
    if q > 1:
        raise ValueError(f"{fn}: `sample_rate` must lie in (0, 1], got {sample_rate}")
    return q


def dpsgd_noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    *,
    accountant: str = "rdp",
    epsilon_tolerance: float = 0.01,
) -> float:
    """Conservative noise multiplier reaching ``target_epsilon`` (the search opacus describes).

    Double σ starting from 10 (first trial 20) until ε ≤ target, then bisect on [0, σ_high] until
    target − ε(σ_high) ≤ ``epsilon_tolerance``; return σ_high (its ε never exceeds the target).
    """
    fn = "dpsgd_noise_multiplier"
    target = positive(fn, "target_epsilon", target_epsilon)
    tol = positive(fn, "epsilon_tolerance", epsilon_tolerance)
    sigma_low, sigma_high, eps_high = 0.0, 10.0, math.inf
    while eps_high > target:
        sigma_high *= 2.0
        if sigma_high > _MAX_SIGMA:
            raise ValueError(f"{fn}: no noise multiplier up to {_MAX_SIGMA} reaches epsilon={target}")
        eps_high = dpsgd_epsilon(sigma_high, sample_rate, steps, delta, accountant=accountant)
    while target - eps_high > tol:
        sigma = (sigma_low + sigma_high) / 2.0
        eps = dpsgd_epsilon(sigma, sample_rate, steps, delta, accountant=accountant)
        if eps < target:
            sigma_high, eps_high = sigma, eps
        else:
            sigma_low = sigma
    return sigma_high


def gdp_clt_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε of the central-limit Gaussian-DP approximation μ = q·√(T(e^{1/σ²} − 1)) — *not* a guaranteed bound.

    μ-GDP is the Gaussian mechanism with Δ/σ = μ, so ε comes from the analytic Gaussian profile.
    """
    fn = "gdp_clt_epsilon"
    sigma = positive(fn, "noise_multiplier", noise_multiplier)
    mu = positive(fn, "sample_rate", sample_rate) * math.sqrt(
        count(fn, "steps", steps) * math.expm1(sigma**-2)
    )
    return analytic_gaussian_epsilon(1.0 / mu, delta, 1.0)


def certify_dpsgd(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    clip_norm: float,
    accountant: str = "pld",
    adjacency: str = "example",
    representation: str = "model parameters trained with DP-SGD",
    rng: RngInfo | int | None = None,
) -> Certification:
    """Certify a DP-SGD run (TRN semantics). ``adjacency`` is ``"example"`` (add/remove one training example)
    or ``"identity"`` (user-level: ``sample_rate`` must then be the per-step identity sampling rate)."""
    fn = "certify_dpsgd"
    if adjacency not in ("example", "identity"):
        raise ValueError(f"{fn}: `adjacency` must be 'example' or 'identity', got {adjacency!r}")
    clip = positive(fn, "clip_norm", clip_norm)
    eps = dpsgd_epsilon(noise_multiplier, sample_rate, steps, delta, accountant=accountant)
    record = PrivacyRecord(
        mechanism="dpsgd",
        representation=representation,
        neighbor_relation="add-remove" if adjacency == "example" else "add-remove-identity",
        sensitivity=Sensitivity(clip, "l2"),
        noise_params={
            "noise_multiplier": float(noise_multiplier),
            "sigma": float(noise_multiplier) * clip,
            "sample_rate": float(sample_rate),
            "clip_norm": clip,
        },
        epsilon_nominal=None,
        epsilon_certified=eps,
        delta=float(delta),
        accountant=accountant_tag(accountant),
        releases_k=steps,
        composition_scope="per-example" if adjacency == "example" else "per-identity",
        rng=RngInfo.coerce(rng),
        certified=True,
    )
    return Certification(eps, float(delta), record)
