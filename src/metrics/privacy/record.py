"""The privacy record of the DP-ε metric component (``docs/metrics.md``, "Records") and its value types.

A bare ε is meaningless across methods (``docs/metrics.md``, "ε semantics"), so every certification returns a
:class:`PrivacyRecord` that stores *what* was protected (representation, neighbour relation, sensitivity),
*how* (mechanism, noise parameters, number of releases, randomness) and *what is certified* (ε, δ,
accountant). The record has exactly the documented fields; derived views (ε semantics, metric-or-not) are
properties, not fields.

Conventions
-----------
* ``epsilon_nominal`` is the per-release ε the method is configured with (``None`` when it is configured by a
  noise level instead, e.g. DP-SGD's σ).
* ``epsilon_certified`` / ``delta`` describe all ``releases_k`` releases together and are both ``None``
  exactly when ``certified`` is False ("null if uncertified").
* For a metric neighbour relation (``"metric:d_theta"``, ``"metric:d_2"``) ε is *per unit distance* and
  ``sensitivity.value`` is the diameter of the domain in that metric, so :func:`metric_to_ldp` can convert.
* Bad input raises :class:`ValueError` naming the field (``"PrivacyRecord.delta: ..."``).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

__all__ = [
    "ACCOUNTANT_KINDS",
    "COMPOSITION_SCOPES",
    "MECHANISMS",
    "NEIGHBOR_RELATIONS",
    "SENSITIVITY_NORMS",
    "Certification",
    "PrivacyRecord",
    "RngInfo",
    "Sensitivity",
    "metric_to_ldp",
    "secret_seed",
]

MECHANISMS: tuple[str, ...] = (
    "laplace",
    "gaussian",
    "purkayastha",
    "vmf",
    "angular_exponential",
    "dp_pix",
    "dpsgd",
    "custom_pld",
)
"""The mechanism vocabulary of the record."""

NEIGHBOR_RELATIONS: dict[str, str] = {
    "replace-one": "LDP",
    "m-pixel": "PIX",
    "add-remove": "TRN",
    "add-remove-identity": "TRN",
}
"""Non-metric neighbour relations and their ε semantics code (``docs/metrics.md``); ``"metric:*"`` is MET."""

ACCOUNTANT_KINDS: tuple[str, ...] = ("closed-form", "rdp", "pld", "prv", "none")
COMPOSITION_SCOPES: tuple[str, ...] = ("per-image", "per-identity", "per-example")
SENSITIVITY_NORMS: tuple[str, ...] = ("l1", "l2", "angular", "mixed")


def _fail(owner: str, name: str, message: str) -> ValueError:
    return ValueError(f"{owner}.{name}: {message}")


def _check_number(owner: str, name: str, value: object, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as a finite float >= 0 (or None when allowed), else raise naming the field."""
    if value is None:
        if allow_none:
            return None
        raise _fail(owner, name, "is required, got None")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(owner, name, f"must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise _fail(owner, name, f"must be finite, got {value!r}")
    if out < 0:
        raise _fail(owner, name, f"must be >= 0, got {value!r}")
    return out


def relation_semantics(relation: str) -> str:
    """ε semantics code (PIX, LDP, MET, TRN) of a neighbour relation; raises for an unknown relation."""
    if relation.startswith("metric:") and len(relation) > len("metric:"):
        return "MET"
    if relation in NEIGHBOR_RELATIONS:
        return NEIGHBOR_RELATIONS[relation]
    raise _fail(
        "PrivacyRecord",
        "neighbor_relation",
        f"unknown relation {relation!r}; expected one of {sorted(NEIGHBOR_RELATIONS)} or 'metric:<name>'",
    )


@dataclass(frozen=True)
class Sensitivity:
    """Sensitivity of the released quantity: a value and the norm it is measured in.

    For metric relations ``value`` is the diameter of the domain in that metric (see :func:`metric_to_ldp`).
    ``norm="mixed"`` is only used by composed records whose releases differ in sensitivity.
    """

    value: float
    norm: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check_number("Sensitivity", "value", self.value))
        if self.norm not in SENSITIVITY_NORMS:
            raise _fail(
                "Sensitivity", "norm", f"unknown norm {self.norm!r}; expected one of {SENSITIVITY_NORMS}"
            )


@dataclass(frozen=True)
class RngInfo:
    """Where the noise came from: is the randomness secret (a CSPRNG seed nobody knows), and its provenance.

    A known integer seed (a published default seed such as 42, a config value, …) is public: anyone who knows
    it and the code can re-derive the noise, so ``seed is not None`` forces ``secret=False`` (the guards of
    ``docs/metrics.md``).
    """

    secret: bool
    provenance: str
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bool):
            raise _fail("RngInfo", "secret", f"must be a bool, got {type(self.secret).__name__}")
        if not isinstance(self.provenance, str) or not self.provenance.strip():
            raise _fail("RngInfo", "provenance", "must be a non-empty string")
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, int):
                raise _fail("RngInfo", "seed", f"must be an int or None, got {type(self.seed).__name__}")
            if self.secret:
                raise _fail(
                    "RngInfo",
                    "secret",
                    f"a recorded deterministic seed ({self.seed}) is public; mark the rng secret=False",
                )

    @classmethod
    def from_seed(cls, seed: int | None) -> RngInfo:
        """Describe a deterministic seed (non-secret); ``None``: unspecified randomness (also non-secret)."""
        if seed is None:
            return cls(secret=False, provenance="unspecified (treated as non-secret)")
        return cls(secret=False, provenance=f"deterministic seed {seed}", seed=seed)

    @classmethod
    def csprng(cls, provenance: str = "secrets.randbits (OS CSPRNG), seed not recorded") -> RngInfo:
        """Describe randomness seeded from the OS CSPRNG whose seed is not recorded anywhere."""
        return cls(secret=True, provenance=provenance)

    @classmethod
    def coerce(cls, rng: RngInfo | int | None) -> RngInfo:
        """Accept an :class:`RngInfo`, an integer seed (non-secret) or ``None`` (unspecified, non-secret)."""
        if isinstance(rng, RngInfo):
            return rng
        if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
            return cls.from_seed(rng)
        raise _fail("PrivacyRecord", "rng", f"expected RngInfo, int seed or None, got {type(rng).__name__}")


def secret_seed() -> tuple[int, RngInfo]:
    """Draw a 63-bit seed from the OS CSPRNG; return it with a secret :class:`RngInfo` (seed not recorded)."""
    return secrets.randbits(63), RngInfo.csprng()


def _freeze_params(params: Mapping[str, Any]) -> MappingProxyType:
    if not isinstance(params, Mapping):
        raise _fail("PrivacyRecord", "noise_params", f"must be a mapping, got {type(params).__name__}")
    out: dict[str, float | int | str | bool] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise _fail("PrivacyRecord", "noise_params", f"keys must be strings, got {key!r}")
        if isinstance(value, bool | int | str):
            out[key] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _fail("PrivacyRecord", f"noise_params[{key!r}]", f"must be finite, got {value!r}")
            out[key] = value
        else:
            try:  # numpy scalars
                number = float(value)
            except (TypeError, ValueError):
                raise _fail(
                    "PrivacyRecord",
                    f"noise_params[{key!r}]",
                    f"must be a number, string or bool, got {type(value).__name__}",
                ) from None
            if not math.isfinite(number):
                raise _fail("PrivacyRecord", f"noise_params[{key!r}]", f"must be finite, got {value!r}")
            out[key] = number
    return MappingProxyType(out)


@dataclass(frozen=True)
class PrivacyRecord:
    """One DP-ε metric record with exactly the documented record fields (conventions: module docstring)."""

    mechanism: str
    representation: str
    neighbor_relation: str
    sensitivity: Sensitivity
    noise_params: Mapping[str, float | int | str | bool]
    epsilon_nominal: float | None
    epsilon_certified: float | None
    delta: float | None
    accountant: str
    releases_k: int
    composition_scope: str
    rng: RngInfo
    certified: bool = field(default=False)

    def __post_init__(self) -> None:
        own = "PrivacyRecord"
        if self.mechanism not in MECHANISMS:
            raise _fail(
                own, "mechanism", f"unknown mechanism {self.mechanism!r}; expected one of {MECHANISMS}"
            )
        if not isinstance(self.representation, str) or not self.representation.strip():
            raise _fail(own, "representation", "must be a non-empty string")
        if not isinstance(self.neighbor_relation, str):
            raise _fail(own, "neighbor_relation", "must be a string")
        relation_semantics(self.neighbor_relation)
        if not isinstance(self.sensitivity, Sensitivity):
            raise _fail(own, "sensitivity", f"must be a Sensitivity, got {type(self.sensitivity).__name__}")
        object.__setattr__(self, "noise_params", _freeze_params(self.noise_params))
        for name in ("epsilon_nominal", "epsilon_certified"):
            object.__setattr__(self, name, _check_number(own, name, getattr(self, name), allow_none=True))
        if self.delta is not None:
            if isinstance(self.delta, bool) or not isinstance(self.delta, int | float):
                raise _fail(own, "delta", f"must be a number in [0, 1), got {type(self.delta).__name__}")
            if not 0.0 <= float(self.delta) < 1.0:
                raise _fail(own, "delta", f"must lie in [0, 1), got {self.delta!r}")
            object.__setattr__(self, "delta", float(self.delta))
        if not isinstance(self.accountant, str) or self.accountant.split(" ", 1)[0] not in ACCOUNTANT_KINDS:
            raise _fail(
                own, "accountant", f"must start with one of {ACCOUNTANT_KINDS}, got {self.accountant!r}"
            )
        if isinstance(self.releases_k, bool) or not isinstance(self.releases_k, int) or self.releases_k < 1:
            raise _fail(own, "releases_k", f"must be an integer >= 1, got {self.releases_k!r}")
        if self.composition_scope not in COMPOSITION_SCOPES:
            raise _fail(
                own,
                "composition_scope",
                f"unknown scope {self.composition_scope!r}; expected one of {COMPOSITION_SCOPES}",
            )
        if not isinstance(self.rng, RngInfo):
            raise _fail(own, "rng", f"must be an RngInfo, got {type(self.rng).__name__}")
        if not isinstance(self.certified, bool):
            raise _fail(own, "certified", f"must be a bool, got {type(self.certified).__name__}")
        if self.certified:
            if self.epsilon_certified is None or self.delta is None:
                raise _fail(own, "certified", "a certified record needs epsilon_certified and delta")
            if self.accountant.startswith("none"):
                raise _fail(own, "accountant", "a certified record needs an accountant other than 'none'")
            if self.mechanism == "angular_exponential":
                raise _fail(
                    own,
                    "certified",
                    "the angular exponential sampler (surface Jacobian omitted) has no (ε, δ) guarantee "
                    "and can never be certified",
                )
        elif self.epsilon_certified is not None or self.delta is not None:
            raise _fail(own, "epsilon_certified", "must be None (with delta) when certified is False")
        if self.semantics == "MET" and self.delta not in (None, 0.0):
            raise _fail(
                own, "delta", "metric-privacy records carry pure ε per unit distance; delta must be 0"
            )

    @property
    def semantics(self) -> str:
        """ε semantics code of the neighbour relation: PIX, LDP, MET or TRN (``docs/metrics.md``)."""
        return relation_semantics(self.neighbor_relation)

    @property
    def is_metric(self) -> bool:
        """True for metric (d_X) privacy, whose ε is per unit distance."""
        return self.semantics == "MET"

    @property
    def accountant_kind(self) -> str:
        """The accountant kind (first word of ``accountant``)."""
        return self.accountant.split(" ", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the record fields (nested dataclasses become dicts)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["sensitivity"] = asdict(self.sensitivity)
        out["rng"] = asdict(self.rng)
        out["noise_params"] = dict(self.noise_params)
        return out

    def to_json(self) -> str:
        """Strict JSON text of :meth:`to_dict` (no NaN/Infinity)."""
        return json.dumps(self.to_dict(), allow_nan=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyRecord:
        """Rebuild a record from :meth:`to_dict` output (validates everything again)."""
        data = dict(data)
        try:
            sensitivity = Sensitivity(**data.pop("sensitivity"))
            rng = RngInfo(**data.pop("rng"))
        except KeyError as err:
            raise _fail("PrivacyRecord", str(err.args[0]), "missing from the dict") from None
        return cls(sensitivity=sensitivity, rng=rng, **data)


@dataclass(frozen=True)
class Certification:
    """Result of a ``certify_*`` function: the certified (ε, δ) (``None`` if uncertified), the record, and —
    for the angular exponential sampler only — the privacy audit that shows why it is not certified."""

    epsilon: float | None
    delta: float | None
    record: PrivacyRecord
    audit: Any | None = None

    def as_tuple(self) -> tuple[float | None, float | None, PrivacyRecord]:
        """``(epsilon, delta, record)``."""
        return self.epsilon, self.delta, self.record

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: ε, δ, the record and the audit (if any)."""
        audit = self.audit.to_dict() if self.audit is not None else None
        return {"epsilon": self.epsilon, "delta": self.delta, "record": self.record.to_dict(), "audit": audit}


def metric_to_ldp(record: PrivacyRecord) -> PrivacyRecord:
    """Convert a metric-privacy record to replace-one LDP by multiplying ε by the domain diameter.

    Metric ε is per unit distance (``docs/metrics.md``, "Guards"); the LDP ε is ε·diameter, where the diameter
    is the record's ``sensitivity.value`` (e.g. 2 for d_2 on the unit sphere, π for d_θ).
    """
    if not isinstance(record, PrivacyRecord):
        raise ValueError(f"metric_to_ldp: expected a PrivacyRecord, got {type(record).__name__}")
    if not record.is_metric:
        raise ValueError(
            f"metric_to_ldp: record is not metric privacy (neighbor_relation={record.neighbor_relation!r})"
        )
    diameter = record.sensitivity.value
    if diameter <= 0:
        raise ValueError("metric_to_ldp: sensitivity.value (the domain diameter) must be > 0")

    def scale(eps: float | None) -> float | None:
        return None if eps is None else eps * diameter

    return replace(
        record,
        neighbor_relation="replace-one",
        epsilon_nominal=scale(record.epsilon_nominal),
        epsilon_certified=scale(record.epsilon_certified),
        noise_params={
            **record.noise_params,
            "converted_from": record.neighbor_relation,
            "diameter": diameter,
        },
    )
