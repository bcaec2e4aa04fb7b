"""FaceShield's ``DPPerturbator`` (``docs/papers/faceshield.md``, "DP perturbator").

The samplers' tables and laws are tested in ``tests/test_metrics_privacy_spherical.py``; here the module is
tested end to end: θ against a Brent solve of the truncated-exponential CDF (replaying the module's draws),
the geometry of its outputs in float32, its randomness, its privacy records and its input checks.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import optimize

from src.metrics.privacy import (
    REFERENCE_AUDIT_D512,
    angular_exponential_expected_cos,
    metric_to_ldp,
    purkayastha_expected_cos,
)
from src.papers.faceshield.perturbator import DPP_SAMPLERS, DPPerturbator

D = 512


def identities(batch: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random non-unit identity vectors ``[batch, 512]`` (the SE's identity is a mean of unit vectors)."""
    return 0.7 * torch.randn(batch, D, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("epsilon", "delta_theta"), [(0.1, math.pi), (1.0, math.pi), (5.0, 2.0), (30.0, math.pi)]
)
def test_theta_matches_a_brent_solve_of_the_cdf(epsilon: float, delta_theta: float) -> None:
    """Replay the module's draws (randn for the direction, then rand for U) and solve F(θ) = U with brentq."""
    x = identities(6, dtype=torch.float64)
    theta = DPPerturbator("faceshield_repo", epsilon, delta_theta, seed=11)(x).theta
    g = torch.Generator().manual_seed(11)
    torch.randn(x.shape, generator=g, dtype=torch.float64)
    uniforms = torch.rand(6, generator=g, dtype=torch.float64).tolist()
    kappa = epsilon / delta_theta

    def cdf_gap(t: float, u: float) -> float:
        return -math.expm1(-kappa * t) / -math.expm1(-kappa * math.pi) - u

    brent = [optimize.brentq(cdf_gap, 0.0, math.pi, args=(u,), xtol=1e-14) for u in uniforms]
    torch.testing.assert_close(theta, torch.tensor(brent, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("sampler", DPP_SAMPLERS)
def test_output_is_unit_norm_at_exactly_theta_with_orthogonal_direction(sampler: str) -> None:
    x = identities(256)
    out = DPPerturbator(sampler, 10.0, seed=1)(x)
    assert out.output.dtype == torch.float32 and out.output.shape == (256, D) and out.theta.shape == (256,)
    v = x / x.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out.output.norm(dim=1), torch.ones(256), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.direction.norm(dim=1), torch.ones(256), rtol=0, atol=1e-5)
    assert float((out.direction * v).sum(dim=1).abs().max()) < 1e-5
    along = (out.output * v).sum(dim=1)
    across = (out.output - along.unsqueeze(1) * v).norm(dim=1)
    torch.testing.assert_close(torch.atan2(across, along), out.theta, rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler", DPP_SAMPLERS)
def test_same_seed_reproduces_and_other_seeds_differ(sampler: str) -> None:
    x = identities(8)
    first = DPPerturbator(sampler, 5.0, seed=3)(x).output
    assert torch.equal(first, DPPerturbator(sampler, 5.0, seed=3)(x).output)
    assert torch.equal(first, DPPerturbator(sampler, 5.0)(x, torch.Generator().manual_seed(3)).output)
    assert not torch.allclose(first, DPPerturbator(sampler, 5.0, seed=4)(x).output)
    module = DPPerturbator(sampler, 5.0, seed=3)
    module(x)
    assert not torch.allclose(first, module(x).output)  # a second release draws fresh noise


def test_rng_provenance_in_the_record() -> None:
    x = identities(4)
    secret = DPPerturbator("purkayastha", 1.0)
    other = DPPerturbator("purkayastha", 1.0)
    assert not torch.allclose(secret(x).output, other(x).output)  # independent CSPRNG seeds
    assert secret.privacy_record().rng.secret is True and secret.privacy_record().rng.seed is None
    seeded = DPPerturbator("purkayastha", 1.0, seed=42).privacy_record().rng
    assert seeded.secret is False and seeded.seed == 42
    secret(x, torch.Generator().manual_seed(0))
    assert secret.privacy_record().rng.secret is False  # caller-supplied generator: provenance unknown


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 5.0, 10.0, 30.0])
@pytest.mark.parametrize("releases", [1, 10])
def test_faceshield_repo_record_is_never_certified(epsilon: float, releases: int) -> None:
    module = DPPerturbator("faceshield_repo", epsilon, seed=42)
    cert = module.certification(releases)
    record = module.privacy_record(releases)
    assert record == cert.record
    assert record.certified is False and record.epsilon_certified is None and record.delta is None
    assert cert.epsilon is None and cert.delta is None
    assert record.mechanism == "angular_exponential" and record.epsilon_nominal == epsilon
    assert record.certified is False and record.noise_params["sampler"] == "faceshield_repo"
    assert record.accountant_kind == "none" and record.releases_k == releases
    assert record.composition_scope == "per-identity"
    assert cert.audit.rows == REFERENCE_AUDIT_D512 and cert.audit.dimension == D


@pytest.mark.parametrize(
    ("epsilon", "delta_theta", "ldp_epsilon"),
    [(1.0, math.pi, 1.0), (10.0, math.pi, 10.0), (3.0, 1.5, 2 * math.pi)],
)
def test_purkayastha_record_is_certified_ldp_with_basic_composition(
    epsilon: float, delta_theta: float, ldp_epsilon: float
) -> None:
    module = DPPerturbator("purkayastha", epsilon, delta_theta)
    for k in (1, 7):
        record = module.privacy_record(k)
        assert record.certified is True and record.semantics == "LDP" and record.mechanism == "purkayastha"
        assert record.epsilon_certified == pytest.approx(k * ldp_epsilon, rel=1e-12)
        assert record.delta == 0.0 and record.accountant_kind == "closed-form" and record.releases_k == k


def test_vmf_record_is_metric_privacy_with_kappa_equal_to_epsilon() -> None:
    module = DPPerturbator("vmf", 20.0)
    assert module.kappa == 20.0
    record = module.privacy_record(3)
    assert record.certified is True and record.is_metric and record.neighbor_relation == "metric:d_2"
    assert record.epsilon_certified == pytest.approx(60.0) and record.delta == 0.0
    assert metric_to_ldp(record).epsilon_certified == pytest.approx(120.0)  # diameter 2: 2kε-LDP


@pytest.mark.parametrize("epsilon", [1.0, 5.0, 10.0, 30.0])
def test_faceshield_repo_closed_form_expected_cosine(epsilon: float) -> None:
    x = torch.zeros(10_000, D)
    x[:, 0] = 1.0
    out = DPPerturbator("faceshield_repo", epsilon, seed=5)(x).output
    assert float(out[:, 0].mean()) == pytest.approx(angular_exponential_expected_cos(epsilon), abs=0.01)


def test_repeated_release_cosine_uses_the_configured_angle_law() -> None:
    # One release: the attack's cosine is the mean cos θ, so Δθ ≠ π must reach the sampler as κ = ε/Δθ.
    module = DPPerturbator("purkayastha", 5.0, math.pi / 2)
    assert module.repeated_release_cosine(1, trials=4000) == pytest.approx(
        purkayastha_expected_cos(5.0, D, math.pi / 2), abs=2e-3
    )
    repo = DPPerturbator("faceshield_repo", 1.0)
    cosines = [repo.repeated_release_cosine(k) for k in (1, 10, 100)]
    assert cosines[0] < 0.3 < 0.8 < cosines[2]  # averaging 100 releases recovers the identity


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        (torch.ones(D), r"shape \[B, 512\]"),
        (torch.ones(2, 3, D), r"shape \[B, 512\]"),
        (torch.ones(2, 128), r"shape \[B, 512\] with B >= 1, got \(2, 128\)"),
        (torch.ones(0, D), r"shape \[B, 512\]"),
        (torch.ones(2, D, dtype=torch.int64), "floating point"),
        (torch.full((2, D), float("nan")), "NaN or infinite"),
        (torch.full((2, D), float("inf")), "NaN or infinite"),
        (torch.cat([torch.ones(1, D), torch.zeros(1, D)]), r"rows \[1\] are zero vectors"),
        ([[1.0] * D], "must be a torch.Tensor"),
    ],
)
def test_bad_identities_raise_clear_errors(identity: object, message: str) -> None:
    with pytest.raises(ValueError, match="DPPerturbator: .*" + message):
        DPPerturbator(seed=0)(identity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": "laplace"}, "unknown sampler 'laplace'"),
        ({"epsilon": 0.0}, "`epsilon` must be a finite number > 0"),
        ({"epsilon": float("nan")}, "`epsilon` must be a finite number > 0"),
        ({"delta_theta": -1.0}, "`delta_theta` must be a finite number > 0"),
        ({"sampler": "vmf", "delta_theta": 1.0}, "`delta_theta` is not used by the vmf sampler"),
        ({"dimension": 1}, "`dimension` must be an integer >= 2"),
        ({"seed": -1}, "`seed` must be a non-negative integer"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="DPPerturbator: " + message):
        DPPerturbator(**kwargs)  # type: ignore[arg-type]


def test_bad_generator_and_releases_raise() -> None:
    module = DPPerturbator(seed=0)
    with pytest.raises(ValueError, match="`generator` must be a torch.Generator"):
        module(identities(1), generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`releases` must be an integer >= 1"):
        module.privacy_record(0)
    with pytest.raises(ValueError, match="`releases` must be an integer >= 1"):
        module.repeated_release_cosine(0)


def test_holds_no_parameters_and_moves_with_to() -> None:
    module = DPPerturbator("purkayastha", 10.0, dimension=16, seed=2)
    assert list(module.parameters()) == [] and list(module.buffers()) == [] and module.state_dict() == {}
    assert module.to(torch.float64) is module and module.to("cpu") is module
    x = identities(3, dtype=torch.float64)[:, :16]
    assert module(x).output.dtype == torch.float64
    if torch.cuda.is_available():
        moved = DPPerturbator("faceshield_repo", 10.0, seed=2).to("cuda")
        out = moved(identities(3).cuda())
        assert out.output.device.type == "cuda"
        torch.testing.assert_close(out.output.norm(dim=1), torch.ones(3, device="cuda"), rtol=0, atol=1e-5)
