"""DP-ε accounting: the DP-ε metric component (``docs/metrics.md``, "DP accounting").

Not a per-sample metric: each ``certify_*`` function turns a mechanism configuration into a
:class:`Certification` — the certified (ε, δ) (``None`` when uncertified) and a :class:`PrivacyRecord` with
the documented fields — and :class:`PrivacyLedger` composes releases per identity.

Modules: ``accountants`` (Gaussian-mechanism PLD ε and RDP ε with its best order), ``record`` (record,
sensitivity, rng provenance, metric→LDP conversion), ``laplace`` / ``dp_pix`` (pure Laplace), ``gaussian``
(classical and analytic calibration), ``conversions`` (RDP/zCDP → DP), ``composition`` (basic, advanced, RDP,
PLD; record composition with the guards), ``dpsgd`` (subsampled Gaussian), ``spherical`` (closed forms of the
identity-sphere mechanisms), ``spherical_pld`` (numeric PLD; Purkayastha and VMF certification), ``samplers``
(torch samplers), ``audit`` (the angular exponential sampler: uncertified, audited), ``attacks`` (averaging
attack), ``ledger``.

Accountant library: dp-accounting==0.6.0 (why: see :mod:`src.metrics.privacy._library`). It is imported
lazily, so the closed forms work without it.
"""

from src.metrics.privacy.accountants import RdpEpsilon, gaussian_pld_epsilon, rdp_epsilon
from src.metrics.privacy.attacks import averaging_attack_cosine
from src.metrics.privacy.audit import (
    REFERENCE_AUDIT_D512,
    AuditRow,
    SamplerAudit,
    angular_exponential_privacy_loss,
    audit_angular_exponential,
    certify_angular_exponential,
    hockey_stick_delta,
)
from src.metrics.privacy.composition import (
    advanced_composition,
    basic_composition,
    compose_certifications,
    laplace_rdp_epsilon,
)
from src.metrics.privacy.conversions import DEFAULT_ORDERS, rdp_to_dp, zcdp_to_dp
from src.metrics.privacy.dp_pix import certify_dp_pix, dp_pix_scale, dp_pix_sensitivity
from src.metrics.privacy.dpsgd import (
    certify_dpsgd,
    dpsgd_epsilon,
    dpsgd_noise_multiplier,
    dpsgd_steps,
    gdp_clt_epsilon,
)
from src.metrics.privacy.gaussian import (
    analytic_gaussian_delta,
    analytic_gaussian_epsilon,
    analytic_gaussian_sigma,
    certify_gaussian,
    classic_gaussian_delta,
    classic_gaussian_sigma,
    composed_gaussian_sigma,
    gaussian_rdp,
    k_fold_gaussian_sigma,
)
from src.metrics.privacy.laplace import (
    certify_laplace,
    laplace_epsilon,
    laplace_pld_epsilon,
    laplace_rdp,
    laplace_scale,
    laplace_std,
)
from src.metrics.privacy.ledger import PrivacyLedger
from src.metrics.privacy.record import (
    MECHANISMS,
    Certification,
    PrivacyRecord,
    RngInfo,
    Sensitivity,
    metric_to_ldp,
    secret_seed,
)
from src.metrics.privacy.samplers import (
    SphericalSample,
    angular_exponential_perturb,
    purkayastha_perturb,
    tangent_direction,
    vmf_perturb,
)
from src.metrics.privacy.spherical import (
    angular_exponential_cdf,
    angular_exponential_expected_angle,
    angular_exponential_expected_cos,
    angular_exponential_median_angle,
    angular_exponential_theta,
    expected_cos,
    gaussian_unit_vector_expected_cos,
    laplace_unit_vector_expected_cos,
    purkayastha_epsilon_for_expected_cos,
    purkayastha_expected_cos,
    vmf_expected_cos,
)
from src.metrics.privacy.spherical_pld import (
    certify_purkayastha,
    certify_vmf,
    spherical_pld,
    spherical_pld_epsilon,
)

__all__ = [
    "DEFAULT_ORDERS",
    "MECHANISMS",
    "REFERENCE_AUDIT_D512",
    "AuditRow",
    "Certification",
    "PrivacyLedger",
    "PrivacyRecord",
    "RdpEpsilon",
    "RngInfo",
    "SamplerAudit",
    "Sensitivity",
    "SphericalSample",
    "advanced_composition",
    "analytic_gaussian_delta",
    "analytic_gaussian_epsilon",
    "analytic_gaussian_sigma",
    "angular_exponential_cdf",
    "angular_exponential_expected_angle",
    "angular_exponential_expected_cos",
    "angular_exponential_median_angle",
    "angular_exponential_perturb",
    "angular_exponential_privacy_loss",
    "angular_exponential_theta",
    "audit_angular_exponential",
    "averaging_attack_cosine",
    "basic_composition",
    "certify_angular_exponential",
    "certify_dp_pix",
    "certify_dpsgd",
    "certify_gaussian",
    "certify_laplace",
    "certify_purkayastha",
    "certify_vmf",
    "classic_gaussian_delta",
    "classic_gaussian_sigma",
    "compose_certifications",
    "composed_gaussian_sigma",
    "dp_pix_scale",
    "dp_pix_sensitivity",
    "dpsgd_epsilon",
    "dpsgd_noise_multiplier",
    "dpsgd_steps",
    "expected_cos",
    "gaussian_pld_epsilon",
    "gaussian_rdp",
    "gaussian_unit_vector_expected_cos",
    "gdp_clt_epsilon",
    "hockey_stick_delta",
    "k_fold_gaussian_sigma",
    "laplace_epsilon",
    "laplace_pld_epsilon",
    "laplace_rdp",
    "laplace_rdp_epsilon",
    "laplace_scale",
    "laplace_std",
    "laplace_unit_vector_expected_cos",
    "metric_to_ldp",
    "purkayastha_epsilon_for_expected_cos",
    "purkayastha_expected_cos",
    "purkayastha_perturb",
    "rdp_epsilon",
    "rdp_to_dp",
    "secret_seed",
    "spherical_pld",
    "spherical_pld_epsilon",
    "tangent_direction",
    "vmf_expected_cos",
    "vmf_perturb",
    "zcdp_to_dp",
]
