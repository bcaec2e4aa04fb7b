"""DP-SGD accounting (spec dp_accounting.md §7) through dp-accounting, with §7's tolerances: RDP 1e−4,
PLD ±0.01, PRV ±0.1 (opacus PRV and prv-accountant columns, checked against dp-accounting's PLD, which
estimates the same tight ε).

Not reproducible without opacus' PRV accountant: the PRV rows of ``get_noise_multiplier`` (σ = 0.6561 at
ε = 8, σ = 2.0508 at ε = 1). The same search through dp-accounting's PLD gives σ = 0.6558 and 2.0312 (the
bisection path depends on the accountant). Instead, the spec's PRV σ values are checked to reach their target
ε within the PRV tolerance under the PLD."""

from __future__ import annotations

import math

import dp_accounting as dpa
import pytest

from src.metrics.privacy import (
    certify_dpsgd,
    dpsgd_epsilon,
    dpsgd_noise_multiplier,
    dpsgd_steps,
    gdp_clt_epsilon,
)

DELTA = 1e-5

DPSGD_TABLE = [
    # N, B, epochs, steps, σ, opacus RDP, opacus PRV, dp-acc RDP, dp-acc PLD, prv-accountant estimate
    (60000, 256, 60, 14062, 1.1, 2.5966, 2.3917, 2.5966, 2.3817, 2.3819),
    (60000, 256, 15, 3515, 1.1, 1.2811, 1.1438, 1.2811, 1.1337, 1.1342),
    (70000, 64, 10, 10937, 1.0, 0.7730, 0.4623, 0.7730, 0.4525, 0.4540),
    (50000, 512, 100, 9765, 2.0, 2.3844, 2.2019, 2.3844, 2.1918, 2.1921),
]


@pytest.mark.parametrize(
    ("n", "b", "epochs", "steps", "sigma", "o_rdp", "o_prv", "rdp", "pld", "prv"), DPSGD_TABLE
)
def test_dpsgd_table(
    n: int,
    b: int,
    epochs: int,
    steps: int,
    sigma: float,
    o_rdp: float,
    o_prv: float,
    rdp: float,
    pld: float,
    prv: float,
) -> None:
    assert dpsgd_steps(n, b, epochs) == steps
    q = b / n
    eps_rdp = dpsgd_epsilon(sigma, q, steps, DELTA, accountant="rdp")
    assert eps_rdp == pytest.approx(rdp, abs=1e-4)
    assert eps_rdp == pytest.approx(o_rdp, abs=1e-4)  # opacus' RDP accountant: same analysis and conversion
    cert = certify_dpsgd(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, clip_norm=1.0)
    assert cert.epsilon == pytest.approx(pld, abs=0.01)
    assert cert.epsilon == pytest.approx(o_prv, abs=0.1)
    assert cert.epsilon == pytest.approx(prv, abs=0.1)
    if steps == 14062:
        assert 2.2817 <= cert.epsilon <= 2.4820  # prv-accountant's [lower, upper]
        assert gdp_clt_epsilon(sigma, q, steps, DELTA) == pytest.approx(2.3243, abs=1e-4)  # not a bound
    assert cert.epsilon < eps_rdp  # the PLD is tighter than the RDP conversion


def test_dpsgd_rdp_matches_a_hand_built_accountant() -> None:
    """Independent reference: dp-accounting's RDP accountant used directly with the event tree."""
    q, steps, sigma = 256 / 60000, 3515, 1.1
    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps))
    assert dpsgd_epsilon(sigma, q, steps, DELTA, accountant="rdp") == pytest.approx(
        acc.get_epsilon(DELTA), abs=1e-12
    )


@pytest.mark.parametrize(("target", "sigma"), [(8.0, 0.6781), (1.0, 2.1875)])
def test_noise_multiplier_search_rdp(target: float, sigma: float) -> None:
    q = 256 / 60000
    steps = int(60 / q)
    found = dpsgd_noise_multiplier(target, DELTA, q, steps, accountant="rdp")
    assert found == pytest.approx(sigma, abs=1e-4)
    eps = dpsgd_epsilon(found, q, steps, DELTA, accountant="rdp")
    assert target - 0.01 <= eps <= target  # conservative: never above the target


@pytest.mark.parametrize(("target", "sigma"), [(8.0, 0.6561), (1.0, 2.0508)])
def test_spec_prv_noise_multipliers_reach_their_target_under_the_pld(target: float, sigma: float) -> None:
    q = 256 / 60000
    eps = dpsgd_epsilon(sigma, q, int(60 / q), DELTA, accountant="pld", value_discretization_interval=1e-3)
    assert eps == pytest.approx(target, abs=0.1)


def test_dpsgd_record() -> None:
    cert = certify_dpsgd(
        noise_multiplier=1.1,
        sample_rate=0.01,
        steps=100,
        delta=DELTA,
        clip_norm=0.5,
        accountant="rdp",
        adjacency="identity",
        rng=3,
    )
    record = cert.record
    assert record.mechanism == "dpsgd" and record.semantics == "TRN"
    assert record.neighbor_relation == "add-remove-identity" and record.composition_scope == "per-identity"
    assert record.releases_k == 100 and record.epsilon_nominal is None and record.certified
    assert record.noise_params["sigma"] == pytest.approx(0.55)
    assert record.sensitivity.value == 0.5 and record.sensitivity.norm == "l2"
    assert record.accountant.startswith("rdp (dp-accounting 0.6.0)")
    assert record.rng.seed == 3 and record.rng.secret is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dpsgd_epsilon(1.0, 0.01, 10, DELTA, accountant="gdp"), "unknown accountant"),
        (lambda: dpsgd_epsilon(1.0, 1.5, 10, DELTA), "sample_rate"),
        (lambda: dpsgd_epsilon(0.0, 0.01, 10, DELTA), "noise_multiplier"),
        (lambda: dpsgd_epsilon(1.0, 0.01, 0, DELTA), "steps"),
        (lambda: dpsgd_steps(100, 200, 1), "exceeds dataset_size"),
        (
            lambda: certify_dpsgd(
                noise_multiplier=1, sample_rate=0.1, steps=1, delta=DELTA, clip_norm=1, adjacency="x"
            ),
            "adjacency",
        ),
    ],
)
def test_dpsgd_bad_arguments(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


def test_more_noise_means_less_epsilon() -> None:
    values = [dpsgd_epsilon(s, 0.01, 500, DELTA, accountant="rdp") for s in (0.8, 1.0, 2.0, 4.0)]
    assert values == sorted(values, reverse=True)
    assert math.isfinite(values[0])
