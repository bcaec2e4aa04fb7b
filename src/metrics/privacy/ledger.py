"""Per-identity privacy ledger (``docs/metrics.md``, "Composition per identity" and "Guards").

Releases are tracked per *identity* (person), not per image: every protected image of a person spends budget
on that person. A release may carry a ``noise_key``: releases of one identity with the same key reused the
same perturbation, which is post-processing and is counted once. :meth:`PrivacyLedger.compose` hands the
distinct releases of an identity to :func:`compose_certifications`, which refuses to sum metric-privacy ε
with LDP ε and leaves anything containing the angular exponential sampler uncertified.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

from src.metrics.privacy.composition import compose_certifications
from src.metrics.privacy.record import Certification, PrivacyRecord

__all__ = ["PrivacyLedger"]


@dataclass
class _Entry:
    records: list[PrivacyRecord] = field(default_factory=list)
    keys: dict[Hashable, PrivacyRecord] = field(default_factory=dict)


class PrivacyLedger:
    """Accumulates releases per identity and produces one composed record per identity.

    ``delta`` is the target δ of the composed records (``None``: basic composition, pure ε stays pure).
    """

    def __init__(self, delta: float | None = None) -> None:
        self.delta = delta
        self._entries: dict[Hashable, _Entry] = {}

    def add(
        self, identity: Hashable, release: Certification | PrivacyRecord, *, noise_key: Hashable | None = None
    ) -> None:
        """Record one release (a certification or record, possibly itself k-fold) of ``identity``.

        A repeated ``noise_key`` must come with the same record (the same perturbation re-released) and costs
        nothing. Mixing ε semantics for one identity raises immediately (metric vs LDP: convert first).
        """
        record = release.record if isinstance(release, Certification) else release
        if not isinstance(record, PrivacyRecord):
            raise ValueError(
                f"PrivacyLedger.add: expected a Certification or PrivacyRecord, got {type(release).__name__}"
            )
        if record.semantics == "TRN":
            raise ValueError("PrivacyLedger.add: DP-SGD (training-set) records are not per-identity releases")
        entry = self._entries.setdefault(identity, _Entry())
        if entry.records:
            first = entry.records[0]
            if record.semantics != first.semantics or record.neighbor_relation != first.neighbor_relation:
                hint = (
                    " (metric-privacy ε cannot be summed with LDP ε; convert with metric_to_ldp first)"
                    if "MET" in (record.semantics, first.semantics)
                    else ""
                )
                raise ValueError(
                    f"PrivacyLedger.add: identity {identity!r} has {first.neighbor_relation} releases; "
                    f"cannot add a {record.neighbor_relation} release{hint}"
                )
        if noise_key is not None:
            if noise_key in entry.keys:
                if entry.keys[noise_key] != record:
                    raise ValueError(
                        f"PrivacyLedger.add: noise_key {noise_key!r} of identity {identity!r} was used for a "
                        "different release; a reused perturbation must be the same release"
                    )
                return
            entry.keys[noise_key] = record
        entry.records.append(record)

    def identities(self) -> list[Hashable]:
        """Identities with at least one release, in insertion order."""
        return list(self._entries)

    def releases(self, identity: Hashable) -> tuple[PrivacyRecord, ...]:
        """The distinct releases recorded for ``identity``."""
        if identity not in self._entries:
            raise KeyError(f"PrivacyLedger: no releases for identity {identity!r}")
        return tuple(self._entries[identity].records)

    def releases_k(self, identity: Hashable) -> int:
        """Number of distinct releases of ``identity`` (k-fold records count k)."""
        return sum(r.releases_k for r in self.releases(identity))

    def compose(self, identity: Hashable) -> Certification:
        """Composed certification of every distinct release of ``identity`` (scope per identity)."""
        return compose_certifications(
            self.releases(identity), delta=self.delta, composition_scope="per-identity"
        )

    def records(self) -> dict[Hashable, PrivacyRecord]:
        """Composed record per identity."""
        return {identity: self.compose(identity).record for identity in self._entries}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._entries)
