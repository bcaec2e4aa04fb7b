"""DP-ε accounting (``docs/metrics.md``, "DP accounting"): records, Laplace, DP-Pix, Gaussian, conversions,
composition, ledger and the guards.

Reference values are the tables of ``docs/metrics.md``, copied into this file. Where they give no tolerance
for a *(computed)* closed-form value, the value must round to the printed digits (|x − printed| ≤ half a unit
of the last printed digit); The DP-SGD tolerances apply to accountants (RDP 1e−4, PLD ±0.01, PRV ±0.01 for
small k). Cross-checks use dp-accounting as the independent reference for the closed forms written here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields

import dp_accounting as dpa
import numpy as np
import pytest
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from scipy import integrate, optimize, stats

from src.metrics.privacy import (
    DEFAULT_ORDERS,
    MECHANISMS,
    Certification,
    PrivacyLedger,
    PrivacyRecord,
    RngInfo,
    Sensitivity,
    advanced_composition,
    analytic_gaussian_delta,
    analytic_gaussian_epsilon,
    analytic_gaussian_sigma,
    basic_composition,
    certify_angular_exponential,
    certify_dp_pix,
    certify_gaussian,
    certify_laplace,
    certify_purkayastha,
    certify_vmf,
    classic_gaussian_delta,
    classic_gaussian_sigma,
    compose_certifications,
    composed_gaussian_sigma,
    dp_pix_scale,
    dp_pix_sensitivity,
    gaussian_rdp,
    k_fold_gaussian_sigma,
    laplace_rdp,
    laplace_rdp_epsilon,
    laplace_scale,
    laplace_std,
    metric_to_ldp,
    rdp_to_dp,
    secret_seed,
    zcdp_to_dp,
)

DELTA = 1e-5


def printed(text: str) -> pytest.approx:
    """The reference printed value with half a unit of its last digit as tolerance (rounding-level match)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return pytest.approx(float(text), abs=0.5 * 10**-decimals + 1e-12, rel=0)


def _record(**overrides: object) -> PrivacyRecord:
    fields: dict[str, object] = {
        "mechanism": "laplace",
        "representation": "identity embedding (d=512)",
        "neighbor_relation": "replace-one",
        "sensitivity": Sensitivity(2.0, "l1"),
        "noise_params": {"scale": 2.0},
        "epsilon_nominal": 1.0,
        "epsilon_certified": 1.0,
        "delta": 0.0,
        "accountant": "closed-form",
        "releases_k": 1,
        "composition_scope": "per-image",
        "rng": RngInfo.from_seed(0),
        "certified": True,
    }
    fields.update(overrides)
    return PrivacyRecord(**fields)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------


def test_record_has_exactly_the_spec_fields() -> None:
    assert [f.name for f in fields(PrivacyRecord)] == [
        "mechanism",
        "representation",
        "neighbor_relation",
        "sensitivity",
        "noise_params",
        "epsilon_nominal",
        "epsilon_certified",
        "delta",
        "accountant",
        "releases_k",
        "composition_scope",
        "rng",
        "certified",
    ]
    assert MECHANISMS == (
        "laplace",
        "gaussian",
        "purkayastha",
        "vmf",
        "angular_exponential",
        "dp_pix",
        "dpsgd",
        "custom_pld",
    )


def test_record_to_dict_is_strict_json_and_round_trips() -> None:
    record = certify_gaussian(
        sensitivity_l2=2.0, delta=DELTA, epsilon=1.0, representation="unit vector"
    ).record
    data = record.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["sensitivity"] == {"value": 2.0, "norm": "l2"}
    assert data["rng"] == {"secret": False, "provenance": "unspecified (treated as non-secret)", "seed": None}
    assert PrivacyRecord.from_dict(json.loads(record.to_json())) == record
    with pytest.raises(TypeError):
        record.noise_params["sigma"] = 0.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mechanism": "exponential"}, "PrivacyRecord.mechanism"),
        ({"epsilon_certified": -0.1}, "PrivacyRecord.epsilon_certified"),
        ({"epsilon_nominal": -1.0}, "PrivacyRecord.epsilon_nominal"),
        ({"epsilon_nominal": math.inf}, "PrivacyRecord.epsilon_nominal"),
        ({"delta": 1.0}, "PrivacyRecord.delta"),
        ({"delta": -1e-9}, "PrivacyRecord.delta"),
        ({"neighbor_relation": "neighbours"}, "PrivacyRecord.neighbor_relation"),
        ({"composition_scope": "per-batch"}, "PrivacyRecord.composition_scope"),
        ({"accountant": "moments"}, "PrivacyRecord.accountant"),
        ({"releases_k": 0}, "PrivacyRecord.releases_k"),
        ({"representation": " "}, "PrivacyRecord.representation"),
        ({"noise_params": {"scale": math.nan}}, "PrivacyRecord.noise_params['scale']"),
        ({"rng": 42}, "PrivacyRecord.rng"),
        ({"epsilon_certified": None}, "PrivacyRecord.certified"),
        ({"certified": False}, "PrivacyRecord.epsilon_certified"),
        ({"accountant": "none"}, "PrivacyRecord.accountant"),
        ({"mechanism": "angular_exponential"}, "PrivacyRecord.certified"),
        ({"neighbor_relation": "metric:d_2", "delta": 1e-5}, "PrivacyRecord.delta"),
    ],
)
def test_record_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(field)}"):
        _record(**overrides)


def test_sensitivity_and_rng_validation() -> None:
    with pytest.raises(ValueError, match=r"^Sensitivity\.value"):
        Sensitivity(-1.0, "l1")
    with pytest.raises(ValueError, match=r"^Sensitivity\.norm"):
        Sensitivity(1.0, "linf")
    # Guard: a deterministic (recorded) seed can never be called secret.
    with pytest.raises(ValueError, match=r"^RngInfo\.secret.*public"):
        RngInfo(secret=True, provenance="config", seed=42)
    assert RngInfo.from_seed(42) == RngInfo(False, "deterministic seed 42", 42)
    assert RngInfo.coerce(None).secret is False
    seed, info = secret_seed()
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert info.secret and info.seed is None


def test_record_semantics() -> None:
    assert _record().semantics == "LDP"
    assert _record(neighbor_relation="m-pixel").semantics == "PIX"
    assert _record(neighbor_relation="add-remove").semantics == "TRN"
    metric = _record(neighbor_relation="metric:d_theta")
    assert metric.semantics == "MET" and metric.is_metric


# ----------------------------------------------------------------------------------------------------------
# Laplace and DP-Pix
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sens", "eps", "scale"), [(1.0, 1.0, "1"), (2.0, 1.0, "2"), (2 * math.sqrt(512), 1.0, "45.2548")]
)
def test_laplace_scale_table(sens: float, eps: float, scale: str) -> None:
    assert laplace_scale(sens, eps) == printed(scale)
    cert = certify_laplace(sensitivity_l1=sens, epsilon=eps, representation="vector")
    assert cert.record.noise_params["scale"] == printed(scale)
    assert cert.epsilon == eps and cert.delta == 0.0 and cert.record.certified


def test_laplace_std_of_unit_sphere_scale() -> None:
    assert laplace_std(laplace_scale(2 * math.sqrt(512), 1.0)) == printed("64.0")


@pytest.mark.parametrize(
    ("m", "cell", "eps", "sens", "scale"),
    [(1, 16, 0.5, "0.99609", "1.99219"), (16, 16, 0.5, None, "31.875"), (16, 8, 1.0, None, "63.75")],
)
def test_dp_pix_table(m: int, cell: int, eps: float, sens: str | None, scale: str) -> None:
    if sens is not None:
        assert dp_pix_sensitivity(m, cell) == printed(sens)
    assert dp_pix_scale(m, cell, eps) == printed(scale)
    cert = certify_dp_pix(m=m, cell=cell, epsilon=eps)
    record = cert.record
    assert (
        record.mechanism == "dp_pix" and record.neighbor_relation == "m-pixel" and record.semantics == "PIX"
    )
    assert record.sensitivity == Sensitivity(255.0 * m / cell**2, "l1")
    assert record.noise_params["scale"] == printed(scale)
    assert cert.epsilon == eps and cert.delta == 0.0


def test_dp_pix_unit_pixel_range_scales_noise() -> None:
    assert dp_pix_scale(16, 8, 1.0, pixel_range=1.0) == pytest.approx(63.75 / 255.0)


@pytest.mark.parametrize(
    ("alpha", "rho"), [(1.5, "0.51288"), (2, "0.61912"), (4, "0.81369"), (8, "0.91020"), (32, "0.97815")]
)
def test_laplace_rdp_table(alpha: float, rho: str) -> None:
    assert laplace_rdp(alpha, 1.0) == printed(rho)


def test_laplace_rdp_matches_direct_renyi_integral() -> None:
    """Independent reference: D_α(Lap(0, λ) ‖ Lap(1, λ)) by numeric integration."""
    for lam in (0.5, 1.0, 3.0):
        for alpha in (1.5, 4.0):

            def integrand(x: float, lam: float = lam, alpha: float = alpha) -> float:
                log_p = stats.laplace.logpdf(x, 0, lam)
                log_q = stats.laplace.logpdf(x, 1, lam)
                return math.exp(alpha * log_p + (1 - alpha) * log_q)

            total = sum(
                integrate.quad(integrand, a, b)[0] for a, b in ((-80 * lam, 0), (0, 1), (1, 80 * lam))
            )
            assert laplace_rdp(alpha, lam) == pytest.approx(math.log(total) / (alpha - 1), rel=1e-8)


# ----------------------------------------------------------------------------------------------------------
# Gaussian
# ----------------------------------------------------------------------------------------------------------

GAUSSIAN_TABLE = [
    (0.5, 1e-5, "9.6896", "7.0318"),
    (1.0, 1e-5, "4.8448", "3.7306"),
    (1.0, 1e-6, "5.2988", "4.2247"),
    (2.0, 1e-5, "2.4224", "1.9938"),
    (4.0, 1e-5, "1.2112", "1.0812"),
    (8.0, 1e-5, "0.6056", "0.6002"),
]


@pytest.mark.parametrize(("eps", "delta", "classic", "analytic"), GAUSSIAN_TABLE)
def test_gaussian_sigma_table(eps: float, delta: float, classic: str, analytic: str) -> None:
    assert classic_gaussian_sigma(eps, delta) == printed(classic)
    assert classic_gaussian_delta(eps, classic_gaussian_sigma(eps, delta, 3.0), 3.0) == pytest.approx(delta)
    sigma = analytic_gaussian_sigma(eps, delta)
    assert sigma == printed(analytic)
    # Independent references: dp-accounting's calibration, and the profile at the calibrated σ is δ.
    assert sigma == pytest.approx(dpa.get_sigma_gaussian(eps, delta), abs=1e-4)
    assert analytic_gaussian_delta(eps, sigma) == pytest.approx(delta, rel=1e-8)
    # Sensitivity scales σ linearly.
    assert analytic_gaussian_sigma(eps, delta, 2.0) == pytest.approx(2 * sigma, rel=1e-10)


@pytest.mark.parametrize(("eps", "delta", "classic", "analytic"), GAUSSIAN_TABLE)
def test_gaussian_classic_calibration_refused_when_invalid(
    eps: float, delta: float, classic: str, analytic: str
) -> None:
    kwargs = {"sensitivity_l2": 1.0, "delta": delta, "epsilon": eps, "representation": "v"}
    if eps >= 1:
        with pytest.raises(ValueError, match="only valid for epsilon < 1"):
            certify_gaussian(calibration="classic", **kwargs)
    else:
        cert = certify_gaussian(calibration="classic", **kwargs)
        assert cert.record.noise_params["sigma"] == printed(classic)
        assert cert.epsilon < eps  # the classical σ over-protects
    assert certify_gaussian(**kwargs).record.noise_params["sigma"] == printed(analytic)


@pytest.mark.parametrize(("sigma", "eps"), [(1.0, "4.3772"), (2.0, "1.9931"), (4.0, "0.9263")])
def test_gaussian_exact_epsilon(sigma: float, eps: str) -> None:
    value = analytic_gaussian_epsilon(sigma, DELTA)
    assert value == printed(eps)
    assert value == pytest.approx(dpa.get_epsilon_gaussian(sigma, DELTA), abs=1e-4)
    cert = certify_gaussian(sensitivity_l2=1.0, delta=DELTA, sigma=sigma, representation="v")
    assert cert.epsilon == pytest.approx(value) and cert.record.epsilon_nominal == pytest.approx(value)
    if sigma == 1.0:  # prv-accountant GaussianMechanism(1): 4.3772 within [4.3672, 4.3872]
        assert 4.3672 <= value <= 4.3872


def test_analytic_gaussian_profile_matches_brute_force_hockey_stick() -> None:
    """Independent reference: δ(ε) = ∫ (p − e^ε q)_+ for N(0, σ²) vs N(Δ, σ²) by quadrature."""
    for sigma, sens, eps in ((1.0, 1.0, 0.5), (2.0, 1.5, 1.0), (0.7, 1.0, 3.0)):

        def f(x: float, sigma: float = sigma, sens: float = sens, eps: float = eps) -> float:
            return max(stats.norm.pdf(x, 0, sigma) - math.exp(eps) * stats.norm.pdf(x, sens, sigma), 0.0)

        crossing = sens / 2 - eps * sigma**2 / sens
        brute = integrate.quad(f, -np.inf, crossing)[0]
        assert analytic_gaussian_delta(eps, sigma, sens) == pytest.approx(brute, rel=1e-7)


def test_analytic_gaussian_no_overflow_at_large_epsilon() -> None:
    assert 0.0 < analytic_gaussian_delta(800.0, 0.05) < 1e-150  # e^800 alone would overflow
    assert analytic_gaussian_sigma(50.0, 1e-5) == pytest.approx(dpa.get_sigma_gaussian(50.0, 1e-5), rel=1e-4)


RDP_TABLE = [
    # σ, k, Mironov, its α, Balle, its α, PLD (exact), zCDP
    (1.0, 1, "5.2985", 5.8, "4.7285", 5.4, "4.3772", "5.2985"),
    (4.0, 1, "1.2309", None, "1.0126", None, "0.9263", "1.2309"),
    (1.0, 10, "20.1753", None, "19.0536", None, "17.8566", "20.1743"),
    (4.0, 100, "15.1219", None, "14.1322", None, "13.2067", "15.1213"),
    (10.0, 1000, "20.1753", None, "19.0536", None, "17.8566", "20.1743"),
]


@pytest.mark.parametrize(("sigma", "k", "mironov", "a_m", "balle", "a_b", "exact", "zcdp"), RDP_TABLE)
def test_rdp_conversion_table(
    sigma: float,
    k: int,
    mironov: str,
    a_m: float | None,
    balle: str,
    a_b: float | None,
    exact: str,
    zcdp: str,
) -> None:
    rdp = k * np.asarray(gaussian_rdp(np.asarray(DEFAULT_ORDERS), sigma))
    eps_m, alpha_m = rdp_to_dp(rdp, DELTA, method="mironov")
    eps_b, alpha_b = rdp_to_dp(rdp, DELTA, method="balle")
    assert eps_m == pytest.approx(float(mironov), abs=1e-4)
    assert eps_b == pytest.approx(float(balle), abs=1e-4)
    if a_m is not None:
        assert alpha_m == pytest.approx(a_m) and alpha_b == pytest.approx(a_b)
    # Independent reference for the Balle column: dp-accounting's RDP accountant.
    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(sigma), k))
    assert acc.get_epsilon(DELTA) == pytest.approx(eps_b, abs=1e-4)
    # Exact column: one Gaussian with σ/√k (closed form), cross-checked with a PLD built by self-composition.
    eps_exact = analytic_gaussian_epsilon(k_fold_gaussian_sigma(sigma, k), DELTA)
    assert eps_exact == printed(exact)
    if k <= 100:
        pld = (
            pld_lib.from_gaussian_mechanism(sigma, value_discretization_interval=1e-3).self_compose(k)
            if k > 1
            else pld_lib.from_gaussian_mechanism(sigma)
        )
        assert pld.get_epsilon_for_delta(DELTA) == pytest.approx(eps_exact, abs=0.01)
    assert zcdp_to_dp(k / (2 * sigma**2), DELTA) == pytest.approx(float(zcdp), abs=1e-4)


def test_k_fold_gaussian_equals_one_gaussian_with_sigma_over_sqrt_k() -> None:
    """Invariant: the (σ=1, k=10) and (σ=10, k=1000) rows of the Gaussian table coincide in every column."""
    rows = {r[:2]: r for r in RDP_TABLE}
    assert rows[(1.0, 10)][2:] == rows[(10.0, 1000)][2:]
    for sigma, k in ((1.0, 10), (3.7306, 100), (2.5, 7)):
        single = certify_gaussian(
            sensitivity_l2=1.0, delta=DELTA, sigma=sigma / math.sqrt(k), representation="v"
        )
        k_fold = certify_gaussian(
            sensitivity_l2=1.0, delta=DELTA, sigma=sigma, releases_k=k, representation="v"
        )
        assert k_fold.epsilon == pytest.approx(single.epsilon, rel=1e-12)
        assert k_fold.record.releases_k == k
    # Heterogeneous and nested compositions stay exact (equivalent σ = (Σ σ_i⁻²)^(−1/2)).
    a = certify_gaussian(sensitivity_l2=1, delta=DELTA, sigma=2.0, representation="v")
    b = certify_gaussian(sensitivity_l2=1, delta=DELTA, sigma=3.0, representation="v")
    nested = compose_certifications([compose_certifications([a, b], delta=DELTA), a], delta=DELTA)
    exact = analytic_gaussian_epsilon(composed_gaussian_sigma([2, 3, 2]), DELTA)
    assert nested.epsilon == pytest.approx(exact)
    assert nested.record.accountant == "closed-form" and nested.record.releases_k == 3
    assert composed_gaussian_sigma([2.0] * 4) == pytest.approx(1.0)
    assert composed_gaussian_sigma([1.0, 1.0 / math.sqrt(3)]) == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------------------
# Composition: k releases of the same face
# ----------------------------------------------------------------------------------------------------------

LAPLACE_COMPOSITION = [
    # ε0, k, basic, advanced, RDP, PLD, prv
    (0.1, 10, "1.0", "1.623", "0.990", "0.990", "0.988"),
    (0.1, 100, "10.0", "5.850", "4.533", "4.220", "4.217"),
    (1.0, 10, "10.0", "32.36", "9.990", "9.990", "9.987"),
    (1.0, 100, "100", "219.8", "70.78", "68.25", "68.25"),
    (5.0, 100, "500", "73947", "463.6", "459.65", "459.65"),
]


@pytest.mark.parametrize(("eps0", "k", "basic", "advanced", "rdp", "pld", "prv"), LAPLACE_COMPOSITION)
def test_laplace_composition_table(
    eps0: float, k: int, basic: str, advanced: str, rdp: str, pld: str, prv: str
) -> None:
    assert basic_composition(eps0, k) == printed(basic)
    assert advanced_composition(eps0, k, DELTA) == printed(advanced)
    eps_rdp = laplace_rdp_epsilon(eps0, k, DELTA)
    assert eps_rdp == printed(rdp)
    acc = dpa.rdp.RdpAccountant()  # independent reference for the RDP column
    acc.compose(dpa.SelfComposedDpEvent(dpa.LaplaceDpEvent(1.0 / eps0), k))
    assert acc.get_epsilon(DELTA) == pytest.approx(eps_rdp, abs=1e-4)
    cert = certify_laplace(sensitivity_l1=1.0, epsilon=eps0, releases_k=k, delta=DELTA, representation="v")
    assert cert.epsilon == pytest.approx(float(pld), abs=0.01) and cert.delta == DELTA
    assert cert.epsilon == pytest.approx(float(prv), abs=0.01)  # PRV tolerance for small k ("DP-SGD")
    assert cert.record.accountant.startswith("pld (dp-accounting")
    pure = certify_laplace(sensitivity_l1=1.0, epsilon=eps0, releases_k=k, representation="v")
    assert (pure.epsilon, pure.delta, pure.record.accountant) == (pytest.approx(k * eps0), 0.0, "closed-form")


def test_pure_dp_composition_matches_prv_pure_mechanism() -> None:
    """prv-accountant PureDPMechanism(1), k = 10 → 9.9987: ten generic (1, 0)-DP records through the PLD."""
    releases = [_record(mechanism="custom_pld", noise_params={}) for _ in range(10)]
    cert = compose_certifications(releases, delta=DELTA)
    assert cert.epsilon == pytest.approx(9.9987, abs=0.01)
    assert cert.record.releases_k == 10 and cert.record.mechanism == "custom_pld"


@pytest.mark.parametrize(("k", "eps"), [(10, "3.6186"), (100, "14.429"), (1000, "71.27")])
def test_gaussian_k_releases_table(k: int, eps: str) -> None:
    sigma = analytic_gaussian_sigma(1.0, DELTA)
    assert sigma == printed("3.7306")
    cert = certify_gaussian(sensitivity_l2=1.0, delta=DELTA, epsilon=1.0, releases_k=k, representation="v")
    assert cert.epsilon == printed(eps)
    assert cert.record.epsilon_nominal == pytest.approx(1.0)
    # Same numbers through the ledger (per identity, k releases of one Gaussian record).
    ledger = PrivacyLedger(delta=DELTA)
    one = certify_gaussian(sensitivity_l2=1.0, delta=DELTA, epsilon=1.0, representation="v")
    for i in range(k):
        ledger.add("alice", one, noise_key=i)
    assert ledger.compose("alice").epsilon == pytest.approx(cert.epsilon, rel=1e-10)
    if k == 10:  # independent reference: PLD self-composition
        pld = pld_lib.from_gaussian_mechanism(sigma).self_compose(k)
        assert pld.get_epsilon_for_delta(DELTA) == pytest.approx(cert.epsilon, abs=0.01)


# ----------------------------------------------------------------------------------------------------------
# Composition, ledger and guards
# ----------------------------------------------------------------------------------------------------------


def test_ledger_counts_releases_per_identity_and_reused_noise_once() -> None:
    ledger = PrivacyLedger()
    release = certify_laplace(sensitivity_l1=2.0, epsilon=0.5, representation="identity embedding")
    for _ in range(3):
        ledger.add("alice", release)  # three fresh perturbations
    ledger.add("bob", release, noise_key="bob-cache")
    ledger.add("bob", release, noise_key="bob-cache")  # the cached perturbation re-released: free
    assert ledger.identities() == ["alice", "bob"]
    assert ledger.releases_k("alice") == 3 and ledger.releases_k("bob") == 1
    records = ledger.records()
    assert records["alice"].epsilon_certified == pytest.approx(1.5) and records["alice"].delta == 0.0
    assert records["alice"].composition_scope == "per-identity"
    assert records["bob"].epsilon_certified == pytest.approx(0.5)
    other = certify_laplace(sensitivity_l1=2.0, epsilon=1.0, representation="identity embedding")
    with pytest.raises(ValueError, match="noise_key 'bob-cache'"):
        ledger.add("bob", other, noise_key="bob-cache")
    with pytest.raises(KeyError, match="carol"):
        ledger.compose("carol")


def test_ledger_with_target_delta_matches_certify_laplace() -> None:
    ledger = PrivacyLedger(delta=DELTA)
    release = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, representation="v")
    for _ in range(5):
        ledger.add("alice", release)
    direct = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, releases_k=5, delta=DELTA, representation="v")
    assert ledger.compose("alice").epsilon == pytest.approx(direct.epsilon, abs=1e-9)


def test_metric_epsilon_is_never_summed_with_ldp_epsilon() -> None:
    """Guard: metric-privacy ε needs conversion by the domain diameter before it meets LDP ε."""
    metric = certify_vmf(kappa=10.0, dimension=512, neighbor_relation="metric:d_2")
    ldp = certify_laplace(sensitivity_l1=2 * math.sqrt(512), epsilon=5.0, representation="identity embedding")
    with pytest.raises(ValueError, match="metric-privacy ε .* cannot be summed .* metric_to_ldp"):
        compose_certifications([metric, ldp])
    ledger = PrivacyLedger()
    ledger.add("alice", ldp)
    with pytest.raises(ValueError, match="metric_to_ldp"):
        ledger.add("alice", metric)
    converted = metric_to_ldp(metric.record)
    assert converted.neighbor_relation == "replace-one"
    assert converted.epsilon_certified == pytest.approx(20.0)  # κ·d_2, diameter 2 ⇒ 2κ-LDP
    assert converted.epsilon_certified == pytest.approx(certify_vmf(kappa=10.0, dimension=512).epsilon)
    ledger.add("alice", converted)
    assert ledger.compose("alice").epsilon == pytest.approx(25.0)
    # Metric records of the same metric add up per unit distance (pure).
    twice = compose_certifications([metric, metric])
    assert twice.epsilon == pytest.approx(20.0) and twice.record.is_metric and twice.delta == 0.0
    purk = certify_purkayastha(epsilon=3.0, dimension=512, neighbor_relation="metric:d_theta")
    with pytest.raises(ValueError, match="mix neighbour relations"):
        compose_certifications([metric, purk])
    with pytest.raises(ValueError, match="not metric privacy"):
        metric_to_ldp(ldp.record)


def test_other_semantics_are_not_mixed() -> None:
    pix = certify_dp_pix(m=1, cell=16, epsilon=0.5)
    ldp = certify_laplace(sensitivity_l1=1.0, epsilon=0.5, representation="v")
    with pytest.raises(ValueError, match="mix ε semantics"):
        compose_certifications([pix, ldp])
    from src.metrics.privacy import certify_dpsgd

    run = certify_dpsgd(
        noise_multiplier=1.0, sample_rate=0.01, steps=10, delta=DELTA, clip_norm=1.0, accountant="rdp"
    )
    with pytest.raises(ValueError, match="not per-identity"):
        PrivacyLedger().add("alice", run)


def test_uncertified_component_makes_the_composition_uncertified() -> None:
    angular = certify_angular_exponential(epsilon=1.0)
    laplace = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, representation="v")
    ledger = PrivacyLedger(delta=DELTA)
    ledger.add("alice", laplace)
    ledger.add("alice", angular)
    cert = ledger.compose("alice")
    assert cert.epsilon is None and cert.delta is None
    assert cert.record.certified is False and cert.record.mechanism == "custom_pld"
    assert cert.record.accountant.startswith("none") and "angular_exponential" in cert.record.accountant
    assert cert.record.rng.secret is False  # the sampler's public default seed 42 taints the composition


def test_mixed_mechanisms_compose_through_the_pld() -> None:
    laplace = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, representation="v")
    gauss = certify_gaussian(sensitivity_l2=1.0, delta=DELTA, sigma=2.0, representation="v")
    cert = compose_certifications([laplace, gauss], delta=2 * DELTA)
    reference = pld_lib.from_laplace_mechanism(1.0).compose(pld_lib.from_gaussian_mechanism(2.0))
    assert cert.epsilon == pytest.approx(reference.get_epsilon_for_delta(2 * DELTA), abs=1e-9)
    assert cert.epsilon < 1.0 + gauss.epsilon  # tighter than basic composition
    assert cert.record.noise_params["components"] == "laplace x1 + gaussian x1"
    basic = compose_certifications([laplace, gauss])
    assert (basic.epsilon, basic.delta) == (pytest.approx(1.0 + gauss.epsilon), pytest.approx(DELTA))
    with pytest.raises(ValueError, match="delta=0 is impossible"):
        compose_certifications([laplace, gauss], delta=0.0)


def test_secret_rng_survives_composition_only_if_every_release_is_secret() -> None:
    _, secret = secret_seed()
    a = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, representation="v", rng=secret)
    b = certify_laplace(sensitivity_l1=1.0, epsilon=1.0, representation="v", rng=7)
    assert compose_certifications([a, a]).record.rng.secret is True
    mixed = compose_certifications([a, b]).record.rng
    assert mixed.secret is False and mixed.seed == 7


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: laplace_scale(1.0, 0.0), "laplace_scale: `epsilon`"),
        (lambda: certify_laplace(sensitivity_l1=1.0, representation="v"), "exactly one of"),
        (
            lambda: certify_laplace(sensitivity_l1=1.0, epsilon=1, scale=1, representation="v"),
            "exactly one of",
        ),
        (
            lambda: certify_laplace(sensitivity_l1=1.0, epsilon=1, releases_k=0, representation="v"),
            "releases_k",
        ),
        (lambda: certify_gaussian(sensitivity_l2=1.0, delta=0.0, sigma=1.0, representation="v"), "`delta`"),
        (lambda: certify_gaussian(sensitivity_l2=1.0, delta=1.5, sigma=1.0, representation="v"), "`delta`"),
        (
            lambda: certify_gaussian(
                sensitivity_l2=1, delta=1e-5, sigma=1, calibration="x", representation="v"
            ),
            "unknown calibration",
        ),
        (lambda: rdp_to_dp([1.0], DELTA, [1.0]), "order"),
        (lambda: rdp_to_dp([1.0], DELTA, [2.0], method="renyi"), "unknown method"),
        (lambda: dp_pix_sensitivity(0, 16), "dp_pix_sensitivity: `m`"),
        (lambda: compose_certifications([]), "nothing to compose"),
        (lambda: compose_certifications([object()]), "not a record"),  # type: ignore[list-item]
        (lambda: PrivacyLedger().add("a", "record"), "expected a Certification"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_named_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


def test_certification_tuple_and_dict() -> None:
    cert = certify_gaussian(sensitivity_l2=1.0, delta=DELTA, epsilon=1.0, representation="v")
    eps, delta, record = cert.as_tuple()
    assert isinstance(cert, Certification) and record is cert.record
    assert (eps, delta) == (cert.epsilon, cert.delta) == (record.epsilon_certified, record.delta)
    assert json.loads(json.dumps(cert.to_dict(), allow_nan=False))["audit"] is None


def test_brent_reference_for_analytic_sigma() -> None:
    """An independent Brent solve of the Balle–Wang condition agrees to 1e−8 (reference: 'to 4 decimals')."""
    for eps in (0.5, 1.0, 4.0):

        def condition(sigma: float, eps: float = eps) -> float:
            a = 1 / (2 * sigma) - eps * sigma
            b = -1 / (2 * sigma) - eps * sigma
            return stats.norm.cdf(a) - math.exp(eps) * stats.norm.cdf(b) - DELTA

        reference = optimize.brentq(condition, 0.05, 50.0, xtol=1e-14)
        assert analytic_gaussian_sigma(eps, DELTA) == pytest.approx(reference, rel=1e-8)
