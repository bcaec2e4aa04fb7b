"""Privacy audit of the angular exponential sampler: never certified, always audited
(``docs/metrics.md``, "Spherical mechanisms" and "Guards").

The angular exponential mechanism samples θ ∝ e^{−κθ} on [0, π] and drops the surface Jacobian sin^{d−2}θ, so
for d ≥ 3 the log-likelihood ratio between inputs v1, v2 at output w is
L = κ(θ2 − θ1) + (d − 2)·ln(sin θ2 / sin θ1) — unbounded. :func:`certify_angular_exponential` therefore
returns ``certified=False`` with the privacy audit attached: the reference Monte-Carlo table at d = 512
(:data:`REFERENCE_AUDIT_D512`), or, for another dimension, a fresh audit of the configured ε.

:func:`angular_exponential_privacy_loss` draws L under M(v1) without materialising d-dimensional vectors: θ1
follows the truncated exponential, and with e the unit vector of v2's component orthogonal to v1,
cos θ2 = cos φ·cos θ1 + sin φ·sin θ1·t where t = ⟨u, e⟩ and (t + 1)/2 ~ Beta((d−2)/2, (d−2)/2) (one coordinate
of a uniform point on the unit sphere of v1^⊥, a sphere in d − 1 dimensions). The test suite checks this
reduction against the torch sampler. Tight δ at ε' is δ(ε') = E[(1 − e^{ε' − L})_+].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from src.metrics.privacy._checks import count, merge_params, positive
from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo, Sensitivity
from src.metrics.privacy.spherical import angular_exponential_theta

__all__ = [
    "REFERENCE_AUDIT_D512",
    "AuditRow",
    "SamplerAudit",
    "angular_exponential_privacy_loss",
    "audit_angular_exponential",
    "certify_angular_exponential",
    "hockey_stick_delta",
]


@dataclass(frozen=True)
class AuditRow:
    """One audit line: nominal ε, input separation φ, quantiles of the privacy loss L and δ at three ε'."""

    epsilon: float
    phi: float
    median_loss: float
    q90_loss: float
    q99_loss: float
    delta_at_epsilon: float
    delta_at_100: float
    delta_at_1000: float


@dataclass(frozen=True)
class SamplerAudit:
    """Audit attached to an uncertified certification: rows, dimension, number of draws and source."""

    rows: tuple[AuditRow, ...]
    dimension: int
    draws: int
    source: str

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict (rows as a list of dicts)."""
        return {
            "rows": [asdict(r) for r in self.rows],
            "dimension": self.dimension,
            "draws": self.draws,
            "source": self.source,
        }


_PI = math.pi
REFERENCE_AUDIT_D512: tuple[AuditRow, ...] = (
    AuditRow(0.1, _PI / 2, 176, 946, 2128, 0.953, 0.612, 0.089),
    AuditRow(1.0, _PI / 2, 190, 981, 2145, 0.941, 0.625, 0.096),
    AuditRow(1.0, _PI / 6, 62, 641, 1811, 0.885, 0.412, 0.049),
    AuditRow(10.0, _PI / 2, 785, 1741, 2930, 0.990, 0.955, 0.364),
    AuditRow(30.0, _PI / 2, 1354, 2316, 3503, 1.000, 1.000, 0.750),
)
"""Reference audit (``docs/metrics.md``, "Spherical mechanisms"): Monte Carlo, 4×10⁵ draws, d = 512."""


def angular_exponential_privacy_loss(
    epsilon: float,
    phi: float,
    dimension: int = 512,
    *,
    draws: int = 400_000,
    seed: int = 0,
    delta_theta: float = math.pi,
) -> np.ndarray:
    """Monte-Carlo draws of the privacy loss L = ln f_{v1}(w)/f_{v2}(w), w ~ M(v1), inputs at angle φ."""
    fn = "angular_exponential_privacy_loss"
    positive(fn, "epsilon", epsilon)
    angle = positive(fn, "phi", phi)
    d = count(fn, "dimension", dimension)
    if d < 4:
        raise ValueError(f"{fn}: `dimension` must be >= 4 for the tangent-coordinate law, got {dimension}")
    if angle > math.pi:
        raise ValueError(f"{fn}: `phi` must lie in (0, π], got {phi}")
    n = count(fn, "draws", draws)
    kappa = epsilon / positive(fn, "delta_theta", delta_theta)
    rng = np.random.default_rng(seed)
    theta1 = np.asarray(angular_exponential_theta(rng.random(n), epsilon, delta_theta))
    t = 2.0 * rng.beta((d - 2) / 2.0, (d - 2) / 2.0, n) - 1.0
    cos2 = np.clip(math.cos(angle) * np.cos(theta1) + math.sin(angle) * np.sin(theta1) * t, -1.0, 1.0)
    theta2 = np.arccos(cos2)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.sin(theta2)) - np.log(np.sin(theta1))
    return kappa * (theta2 - theta1) + (d - 2) * log_ratio


def hockey_stick_delta(losses: np.ndarray, epsilon_prime: float) -> float:
    """Tight δ(ε') = E[(1 − e^{ε' − L})_+] from samples of the privacy loss L."""
    eps = float(epsilon_prime)
    with np.errstate(over="ignore"):
        terms = -np.expm1(np.minimum(eps - np.asarray(losses, dtype=np.float64), 0.0))
    return float(np.mean(terms))


def audit_angular_exponential(
    epsilon: float,
    phi: float,
    dimension: int = 512,
    *,
    draws: int = 400_000,
    seed: int = 0,
    delta_theta: float = math.pi,
) -> AuditRow:
    """Monte-Carlo audit of the angular exponential sampler: quantiles of L and δ at ε' ∈ {ε, 100, 1000}."""
    losses = angular_exponential_privacy_loss(
        epsilon, phi, dimension, draws=draws, seed=seed, delta_theta=delta_theta
    )
    median, q90, q99 = np.quantile(losses, [0.5, 0.9, 0.99])
    return AuditRow(
        epsilon=float(epsilon),
        phi=float(phi),
        median_loss=float(median),
        q90_loss=float(q90),
        q99_loss=float(q99),
        delta_at_epsilon=hockey_stick_delta(losses, epsilon),
        delta_at_100=hockey_stick_delta(losses, 100.0),
        delta_at_1000=hockey_stick_delta(losses, 1000.0),
    )


def certify_angular_exponential(
    *,
    epsilon: float,
    dimension: int = 512,
    delta_theta: float = math.pi,
    releases_k: int = 1,
    composition_scope: str = "per-identity",
    rng: RngInfo | int | None = 42,
    audit_draws: int = 100_000,
    extra_params: dict[str, float | int | str] | None = None,
) -> Certification:
    """Record the angular exponential sampler at nominal ε: ``certified=False``, ε/δ ``None``, audit attached.

    At d = 512 the audit is the reference table (``docs/metrics.md``); for any other dimension a Monte-Carlo
    audit of the configured ε at φ = π/2 (``audit_draws`` draws) is run. The default ``rng`` is a published
    default seed, 42 (public, non-secret). ``extra_params`` are added to the record's ``noise_params`` (e.g.
    the caller's name for the sampler); they may not replace the computed ones.
    """
    fn = "certify_angular_exponential"
    eps = positive(fn, "epsilon", epsilon)
    d = count(fn, "dimension", dimension)
    if d == 512:
        audit = SamplerAudit(
            REFERENCE_AUDIT_D512, 512, 400_000, "reference audit, docs/metrics.md (Monte Carlo)"
        )
    else:
        row = audit_angular_exponential(eps, math.pi / 2, d, draws=audit_draws, delta_theta=delta_theta)
        audit = SamplerAudit((row,), d, audit_draws, "angular_exponential_privacy_loss Monte Carlo, seed 0")
    record = PrivacyRecord(
        mechanism="angular_exponential",
        representation=f"IB-restricted identity embedding on S^{d - 1} (d={d})",
        neighbor_relation="replace-one",
        sensitivity=Sensitivity(float(delta_theta), "angular"),
        noise_params=merge_params(
            fn,
            {"kappa": eps / float(delta_theta), "delta_theta": float(delta_theta), "dimension": d},
            extra_params,
        ),
        epsilon_nominal=eps,
        epsilon_certified=None,
        delta=None,
        accountant="none (nominal ε, uncertified: the sampler drops the sin^(d-2) Jacobian; see audit)",
        releases_k=count(fn, "releases_k", releases_k),
        composition_scope=composition_scope,
        rng=RngInfo.coerce(rng),
        certified=False,
    )
    return Certification(None, None, record, audit)
