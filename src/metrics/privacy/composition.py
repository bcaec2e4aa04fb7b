"""Composition of releases (``docs/metrics.md``, "Composition"): basic, advanced, RDP and PLD, plus record
composition.

:func:`compose_certifications` is the single place where records are added up. It enforces the guards of
``docs/metrics.md``: metric-privacy ε is never summed with LDP (or any other) ε — convert with
:func:`src.metrics.privacy.record.metric_to_ldp` first — and an uncertified component (the angular
exponential sampler) makes the composition uncertified.

Rules, per target δ:
* ``delta=None``: basic composition (Σε_i, Σδ_i), closed form; metric records add their per-unit ε.
* ``delta`` given and every release Gaussian with one sensitivity: the exact equivalent
  σ = (Σ k_i σ_i⁻²)^(−1/2).
* otherwise: the privacy-loss distributions of the releases (dp-accounting PLD; numeric PLD for the spherical
  mechanisms; the pessimistic (ε_i, δ_i) PLD for anything else) are composed and read at δ; the basic bound is
  used instead whenever it is smaller and valid (Σδ_i ≤ δ).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from src.metrics.privacy._checks import count, positive, probability
from src.metrics.privacy._library import accountant_tag, dp_accounting, self_compose
from src.metrics.privacy.conversions import DEFAULT_ORDERS, rdp_to_dp
from src.metrics.privacy.gaussian import analytic_gaussian_epsilon
from src.metrics.privacy.laplace import laplace_rdp
from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo, Sensitivity

__all__ = [
    "advanced_composition",
    "basic_composition",
    "compose_certifications",
    "laplace_rdp_epsilon",
]

_SPHERICAL = ("purkayastha", "vmf")


def basic_composition(epsilon: float, releases_k: int) -> float:
    """k·ε: basic composition of k ε-DP releases (δ adds up the same way)."""
    return count("basic_composition", "releases_k", releases_k) * positive(
        "basic_composition", "epsilon", epsilon, allow_zero=True
    )


def advanced_composition(epsilon: float, releases_k: int, delta_prime: float) -> float:
    """Advanced composition ε' = √(2k ln(1/δ'))·ε + k·ε·(e^ε − 1) of k ε-DP releases (total δ = kδ + δ')."""
    fn = "advanced_composition"
    eps = positive(fn, "epsilon", epsilon, allow_zero=True)
    k = count(fn, "releases_k", releases_k)
    d = probability(fn, "delta_prime", delta_prime)
    return math.sqrt(2.0 * k * math.log(1.0 / d)) * eps + k * eps * math.expm1(eps)


def laplace_rdp_epsilon(
    epsilon: float,
    releases_k: int,
    delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
    *,
    method: str = "balle",
) -> float:
    """ε(δ) of k ε-DP Laplace releases through Laplace RDP (Mironov 2017) and an RDP conversion."""
    fn = "laplace_rdp_epsilon"
    eps = positive(fn, "epsilon", epsilon)
    k = count(fn, "releases_k", releases_k)
    rdp = k * np.asarray(laplace_rdp(np.asarray(orders, dtype=np.float64), 1.0 / eps))
    return rdp_to_dp(rdp, delta, orders, method=method)[0]


def _records(items: Sequence[Certification | PrivacyRecord]) -> list[PrivacyRecord]:
    out = []
    for i, item in enumerate(items):
        record = item.record if isinstance(item, Certification) else item
        if not isinstance(record, PrivacyRecord):
            raise ValueError(f"compose_certifications: item {i} is a {type(item).__name__}, not a record")
        out.append(record)
    if not out:
        raise ValueError("compose_certifications: nothing to compose")
    return out


def _check_semantics(records: list[PrivacyRecord]) -> None:
    """Guard: never add ε across semantics (metric vs LDP in particular) or across metrics."""
    semantics = {r.semantics for r in records}
    if len(semantics) > 1:
        if "MET" in semantics:
            raise ValueError(
                "compose_certifications: metric-privacy ε (per unit distance) cannot be summed with "
                f"{sorted(semantics - {'MET'})} ε without conversion; convert each metric record with "
                "metric_to_ldp(record) (ε × domain diameter) first"
            )
        raise ValueError(
            f"compose_certifications: releases mix ε semantics {sorted(semantics)}; they are not comparable"
        )
    relations = {r.neighbor_relation for r in records}
    if len(relations) > 1:
        raise ValueError(f"compose_certifications: releases mix neighbour relations {sorted(relations)}")


def _common(values: list, default):  # type: ignore[no-untyped-def]
    return values[0] if all(v == values[0] for v in values) else default


def _rng(records: list[PrivacyRecord]) -> RngInfo:
    rngs = [r.rng for r in records]
    if all(r.secret for r in rngs):
        return _common(rngs, RngInfo.csprng("secret CSPRNG for every release"))
    provenance = "; ".join(sorted({r.provenance for r in rngs}))
    seeds = {r.seed for r in rngs if r.seed is not None}
    return RngInfo(secret=False, provenance=provenance, seed=seeds.pop() if len(seeds) == 1 else None)


def _gaussian_equivalent(record: PrivacyRecord) -> float | None:
    """σ of the single Gaussian release equivalent to all releases of a Gaussian record (None if unknown)."""
    params = record.noise_params
    if "sigma_equivalent" in params:
        return float(params["sigma_equivalent"])
    if "sigma" in params:
        return float(params["sigma"]) / math.sqrt(record.releases_k)
    return None


def _release_pld(record: PrivacyRecord, interval: float):  # type: ignore[no-untyped-def]
    """PLD of all ``releases_k`` releases of one record."""
    pld_mod = dp_accounting().pld
    params = record.noise_params
    k = record.releases_k
    if record.mechanism in ("laplace", "dp_pix") and "scale" in params:
        pld = pld_mod.privacy_loss_distribution.from_laplace_mechanism(
            parameter=float(params["scale"]),
            sensitivity=record.sensitivity.value,
            value_discretization_interval=interval,
        )
        return self_compose(pld, k)
    if record.mechanism == "gaussian" and _gaussian_equivalent(record) is not None:
        return pld_mod.privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=_gaussian_equivalent(record),
            sensitivity=record.sensitivity.value,
            value_discretization_interval=interval,
        )
    if record.mechanism in _SPHERICAL and "kappa" in params and "dimension" in params:
        from src.metrics.privacy.spherical_pld import spherical_pld

        pld = spherical_pld(
            record.mechanism,
            float(params["kappa"]),
            int(params["dimension"]),
            value_discretization_interval=interval,
        )
        return self_compose(pld, k)
    assert record.epsilon_certified is not None and record.delta is not None
    return pld_mod.privacy_loss_distribution.from_privacy_parameters(
        pld_mod.common.DifferentialPrivacyParameters(record.epsilon_certified, record.delta),
        value_discretization_interval=interval,
    )


def compose_certifications(
    items: Sequence[Certification | PrivacyRecord],
    *,
    delta: float | None = None,
    composition_scope: str = "per-identity",
    value_discretization_interval: float | None = None,
) -> Certification:
    """Compose releases (each a certification or record, possibly k-fold) into one record (rules: module doc).

    ``value_discretization_interval`` defaults to 1e-4, or 1e-3 when a spherical mechanism is involved.
    """
    fn = "compose_certifications"
    records = _records(items)
    _check_semantics(records)
    target = None if delta is None else probability(fn, "delta", delta, open_low=False)
    k_total = sum(r.releases_k for r in records)
    mechanisms = Counter(r.mechanism for r in records)
    nominal = [r.epsilon_nominal for r in records]
    fields = {
        "mechanism": next(iter(mechanisms)) if len(mechanisms) == 1 else "custom_pld",
        "representation": " + ".join(dict.fromkeys(r.representation for r in records)),
        "neighbor_relation": records[0].neighbor_relation,
        "sensitivity": _common([r.sensitivity for r in records], Sensitivity(0.0, "mixed")),
        "noise_params": {
            **_common([dict(r.noise_params) for r in records], {}),
            "components": " + ".join(f"{m} x{c}" for m, c in mechanisms.items()),
        },
        "epsilon_nominal": _common(nominal, None),
        "releases_k": k_total,
        "composition_scope": composition_scope,
        "rng": _rng(records),
    }
    uncertified = [r.mechanism for r in records if not r.certified]
    if uncertified:
        record = PrivacyRecord(
            **fields,
            epsilon_certified=None,
            delta=None,
            accountant=f"none (uncertified components: {', '.join(sorted(set(uncertified)))})",
            certified=False,
        )
        return Certification(None, None, record)

    eps_basic = sum(r.epsilon_certified or 0.0 for r in records)
    delta_basic = sum(r.delta or 0.0 for r in records)
    if records[0].is_metric:
        if target not in (None, 0.0):
            raise ValueError(
                f"{fn}: metric-privacy releases compose to pure ε per unit distance; pass delta=None"
            )
        eps, d, accountant = eps_basic, 0.0, "closed-form"
    elif target is None or (target == 0.0 and delta_basic == 0.0):
        if delta_basic >= 1.0:
            raise ValueError(f"{fn}: the δ of the releases add up to {delta_basic} >= 1; pass a target delta")
        eps, d, accountant = eps_basic, delta_basic, "closed-form"
    elif target == 0.0:
        raise ValueError(f"{fn}: delta=0 is impossible, the releases already spend δ = {delta_basic}")
    elif (
        mechanisms.keys() == {"gaussian"}
        and len({r.sensitivity for r in records}) == 1
        and all(_gaussian_equivalent(r) is not None for r in records)
    ):
        sigma_eq = sum(_gaussian_equivalent(r) ** -2 for r in records) ** -0.5  # type: ignore[operator]
        eps = analytic_gaussian_epsilon(sigma_eq, target, records[0].sensitivity.value)
        d, accountant = target, "closed-form"
        fields["noise_params"] = {**fields["noise_params"], "sigma_equivalent": sigma_eq}
    else:
        interval = value_discretization_interval or (
            1e-3 if any(r.mechanism in _SPHERICAL for r in records) else 1e-4
        )
        pld = _release_pld(records[0], interval)
        for r in records[1:]:
            pld = pld.compose(_release_pld(r, interval))
        eps, d, accountant = float(pld.get_epsilon_for_delta(target)), target, accountant_tag("pld")
        if delta_basic <= target and eps_basic <= eps:
            eps, accountant = eps_basic, "closed-form"
        if not math.isfinite(eps):
            raise ValueError(f"{fn}: no finite ε at delta={target}; the releases spend δ = {delta_basic}")
    record = PrivacyRecord(**fields, epsilon_certified=eps, delta=d, accountant=accountant, certified=True)
    return Certification(eps, d, record)
