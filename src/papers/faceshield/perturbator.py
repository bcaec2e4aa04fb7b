"""FaceShield's DP perturbator (DPP): an angular perturbation of the identity vector on the unit sphere.

``docs/papers/faceshield.md`` ("DP perturbator") explains the choices; the mechanisms themselves live in
:mod:`src.metrics.privacy.samplers` and their accounting in :mod:`src.metrics.privacy` (``docs/metrics.md``,
"Spherical mechanisms"). This module only wires them together: validation, randomness and the privacy record.

Samplers (all output w = v·cos θ + u·sin θ with v = x/‖x‖ and u a uniform tangent direction):

* ``faceshield_repo`` — the authors' sampler, θ ~ truncated exponential with rate κ = ε/Δθ (the shared
  ``angular_exponential`` mechanism). Its ε is a *nominal* angular rate: it drops the surface Jacobian
  sin^{d−2}θ, so it is never certified (audit attached).
* ``purkayastha`` — angle density ∝ e^{−κθ}·sin^{d−2}θ, κ = ε/Δθ: (κπ)-LDP, i.e. ε-LDP at Δθ = π.
* ``vmf`` — von Mises–Fisher with κ = ε (reconstructed choice): density ∝ e^{ε⟨v, w⟩} is ε·d_2 metric privacy
  (ε per unit of Euclidean distance on the sphere), equivalently 2ε-LDP because the diameter is 2.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from src.config.buildable import buildable
from src.metrics.privacy import (
    Certification,
    PrivacyRecord,
    RngInfo,
    angular_exponential_perturb,
    certify_angular_exponential,
    certify_purkayastha,
    certify_vmf,
    purkayastha_perturb,
    secret_seed,
    vmf_perturb,
)
from src.metrics.privacy.attacks import averaging_attack_cosine_reduced

__all__ = ["DPP_SAMPLERS", "DPPerturbator", "PerturbedIdentity"]

DPP_SAMPLERS: tuple[str, ...] = ("faceshield_repo", "purkayastha", "vmf")
"""``faceshield_repo`` (nominal, uncertified), ``purkayastha`` (ε-LDP), ``vmf`` (ε·d_2 metric privacy)."""

_MECHANISMS: dict[str, str] = {
    "faceshield_repo": "angular_exponential",
    "purkayastha": "purkayastha",
    "vmf": "vmf",
}
"""The record mechanism (``src.metrics.privacy``) of each sampler; the record also names the sampler."""

_EXTERNAL_RNG = RngInfo(
    secret=False,
    provenance="caller-supplied torch.Generator (seed unknown to the record; treated as non-secret)",
)


class PerturbedIdentity(NamedTuple):
    """Released unit identities ``[B, d]``, angles θ from the input ``[B]``, tangent directions ``[B, d]``."""

    output: Tensor
    theta: Tensor
    direction: Tensor


def _fail(message: str) -> ValueError:
    return ValueError(f"DPPerturbator: {message}")


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _fail(f"`{name}` must be a finite number > 0, got {value!r}")
    return float(value)


@buildable
class DPPerturbator(nn.Module):
    """Perturb identity vectors ``[B, d]`` with one spherical mechanism and describe it by a privacy record.

    Holds no parameters or buffers (``.to()`` is a no-op; the noise follows the input's device). Randomness:
    an explicit ``generator`` passed to :meth:`forward` wins; otherwise an internal generator per device,
    seeded with ``seed`` (reproducible, hence a *public* seed in the record) or, when ``seed`` is None, with a
    fresh OS-CSPRNG seed that is never stored (secret, not reproducible).
    """

    def __init__(
        self,
        sampler: str = "faceshield_repo",
        epsilon: float = 30.0,
        delta_theta: float = math.pi,
        *,
        dimension: int = 512,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if sampler not in DPP_SAMPLERS:
            raise _fail(f"unknown sampler {sampler!r}; expected one of {DPP_SAMPLERS}")
        self.sampler = sampler
        self.epsilon = _positive("epsilon", epsilon)
        self.delta_theta = _positive("delta_theta", delta_theta)
        if sampler == "vmf" and self.delta_theta != math.pi:
            raise _fail("`delta_theta` is not used by the vmf sampler (κ = ε); leave it at π")
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 2:
            raise _fail(f"`dimension` must be an integer >= 2, got {dimension!r}")
        self.dimension = dimension
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise _fail(f"`seed` must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        self._rng = RngInfo.from_seed(seed) if seed is not None else RngInfo.csprng()
        self._generators: dict[torch.device, torch.Generator] = {}
        self._used_external_generator = False

    @property
    def kappa(self) -> float:
        """Concentration: ε/Δθ (angular rate) for ``faceshield_repo``/``purkayastha``, ε for ``vmf``."""
        return self.epsilon if self.sampler == "vmf" else self.epsilon / self.delta_theta

    @property
    def rng(self) -> RngInfo:
        """Provenance of the noise released so far (non-secret once a caller-supplied generator was used)."""
        return _EXTERNAL_RNG if self._used_external_generator else self._rng

    def extra_repr(self) -> str:
        return (
            f"sampler={self.sampler!r}, epsilon={self.epsilon}, delta_theta={self.delta_theta:.6g}, "
            f"dimension={self.dimension}, seed={'CSPRNG' if self.seed is None else self.seed}"
        )

    def _internal_generator(self, device: torch.device) -> torch.Generator:
        generator = self._generators.get(device)
        if generator is None:
            seed = self.seed if self.seed is not None else secret_seed()[0]
            generator = torch.Generator(device=device).manual_seed(seed)
            self._generators[device] = generator
        return generator

    def _check_identity(self, identity: object) -> Tensor:
        if not isinstance(identity, Tensor):
            raise _fail(f"`identity` must be a torch.Tensor, got {type(identity).__name__}")
        if identity.ndim != 2 or identity.shape[0] == 0 or identity.shape[1] != self.dimension:
            raise _fail(
                f"`identity` must have shape [B, {self.dimension}] with B >= 1, got {tuple(identity.shape)}"
            )
        if not identity.is_floating_point():
            raise _fail(f"`identity` must be floating point, got {identity.dtype}")
        norms = identity.norm(
            dim=1
        )  # one pass: a NaN/inf entry (or an overflow) makes its row's norm non-finite
        if not bool(torch.isfinite(norms).all()):
            raise _fail("`identity` contains NaN or infinite values (or a row norm overflows)")
        zero = (norms == 0).nonzero().flatten()
        if zero.numel() > 0:
            raise _fail(f"`identity` rows {zero.tolist()[:8]} are zero vectors; their direction is undefined")
        return identity

    def forward(self, identity: Tensor, generator: torch.Generator | None = None) -> PerturbedIdentity:
        """Release perturbed unit identities (any norm in, unit norm out) with the configured sampler."""
        x = self._check_identity(identity)
        if generator is None:
            generator = self._internal_generator(x.device)
        else:
            if not isinstance(generator, torch.Generator):
                raise _fail(f"`generator` must be a torch.Generator or None, got {type(generator).__name__}")
            if generator.device.type != x.device.type:
                raise _fail(f"`generator` is on {generator.device} but `identity` is on {x.device}")
            self._used_external_generator = True
        if self.sampler == "faceshield_repo":
            sample = angular_exponential_perturb(x, self.epsilon, generator, self.delta_theta)
        elif self.sampler == "purkayastha":
            sample = purkayastha_perturb(x, self.epsilon, generator, self.delta_theta)
        else:
            sample = vmf_perturb(x, self.kappa, generator)
        return PerturbedIdentity(*sample)

    def certification(self, releases: int = 1) -> Certification:
        """Certification of ``releases`` releases of the same face (composition per identity).

        ``faceshield_repo``: never certified (mechanism ``angular_exponential``), nominal ε only, with the
        d = 512 reference audit (a fresh audit in another dimension). ``purkayastha``: (k·κπ, 0)-LDP by basic
        composition (= kε at Δθ = π). ``vmf``: k·ε per unit d_2 (metric privacy; ``metric_to_ldp`` gives
        2kε-LDP). The record's ``noise_params["sampler"]`` names the sampler.
        """
        if isinstance(releases, bool) or not isinstance(releases, int) or releases < 1:
            raise _fail(f"`releases` must be an integer >= 1, got {releases!r}")
        common = {
            "dimension": self.dimension,
            "releases_k": releases,
            "rng": self.rng,
            "extra_params": {"sampler": self.sampler},
        }
        if self.sampler == "faceshield_repo":
            return certify_angular_exponential(epsilon=self.epsilon, delta_theta=self.delta_theta, **common)
        if self.sampler == "purkayastha":
            return certify_purkayastha(epsilon=self.epsilon, delta_theta=self.delta_theta, **common)
        return certify_vmf(kappa=self.kappa, neighbor_relation="metric:d_2", **common)

    def privacy_record(self, releases: int = 1) -> PrivacyRecord:
        """The record of :meth:`certification` (``certified=False`` for ``faceshield_repo``)."""
        return self.certification(releases).record

    def repeated_release_cosine(self, releases: int, *, trials: int = 1000, seed: int = 0) -> float:
        """Empirical cost of repeated releases: mean cosine between the average of ``releases`` perturbations
        of one face and the true identity (the averaging attack; Monte Carlo over ``trials``)."""
        if isinstance(releases, bool) or not isinstance(releases, int) or releases < 1:
            raise _fail(f"`releases` must be an integer >= 1, got {releases!r}")
        # The reduced attack takes ε at Δθ = π; κπ is the equivalent ε for any Δθ.
        parameter = self.kappa if self.sampler == "vmf" else self.kappa * math.pi
        return averaging_attack_cosine_reduced(
            _MECHANISMS[self.sampler], parameter, self.dimension, releases, trials=trials, seed=seed
        )
