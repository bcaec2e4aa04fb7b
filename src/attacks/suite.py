"""A registry of adversarial attacks built on torchattacks, with one calling convention for every victim.

``build_attack(name, model, eps=..., seed=..., **options)`` returns an :class:`Attack`; calling it
on images in [0, 1] and integer labels gives detached adversarial images in [0, 1]. Units: for L∞
attacks ``eps`` and ``alpha`` are in /255 (``eps=4`` means 4/255); for ``pgd_l2`` they are L2 norms of
the perturbation of the whole [0, 1] image; ``cw_l2`` is unbounded (``eps=None``). See docs/attacks.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torchattacks
from torch import nn
from torchattacks.attack import Attack as BackendAttack

from src.attacks.adapters import LogitsOnly, victim_mode

Options = dict[str, Any]
Maker = Callable[[nn.Module, float, int | None, Options], BackendAttack]


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack: norm (``linf``, ``l2``, or None when unbounded), option defaults, builder."""

    name: str
    norm: str | None
    defaults: Options
    make: Maker
    summary: str


ATTACKS: dict[str, AttackSpec] = {}
COMMON_OPTIONS = ("tuple_output_index",)


def _register(name: str, norm: str | None, summary: str, **defaults: Any) -> Callable[[Maker], Maker]:
    def deco(make: Maker) -> Maker:
        ATTACKS[name] = AttackSpec(name, norm, defaults, make, summary)
        return make

    return deco


@_register(
    "fgsm", "linf", "Fast Gradient Sign Method (Goodfellow et al., 2015): one signed step of size eps."
)
def _fgsm(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.FGSM(model, eps=eps)


@_register("pgd", "linf", "L∞ PGD (Madry et al., 2018).", steps=10, alpha=2.0, random_start=True)
def _pgd(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.PGD(
        model, eps=eps, alpha=o["alpha"] / 255, steps=o["steps"], random_start=o["random_start"]
    )


@_register(
    "pgd_l2",
    "l2",
    "L2 PGD; eps and alpha are L2 norms on [0, 1] images.",
    steps=10,
    alpha=0.2,
    random_start=True,
)
def _pgd_l2(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.PGDL2(
        model, eps=eps, alpha=o["alpha"], steps=o["steps"], random_start=o["random_start"]
    )


@_register(
    "cw_l2",
    None,
    "Carlini-Wagner L2 (2017): unbounded, minimises the L2 distortion.",
    c=1.0,
    kappa=0.0,
    steps=50,
    lr=0.01,
)
def _cw_l2(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.CW(model, c=o["c"], kappa=o["kappa"], steps=o["steps"], lr=o["lr"])


@_register("apgd", "linf", "Auto-PGD with CE loss (Croce & Hein, 2020).", steps=10, n_restarts=1, rho=0.75)
def _apgd(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.APGD(
        model, norm="Linf", eps=eps, steps=o["steps"], n_restarts=o["n_restarts"], seed=seed or 0,
        loss="ce", rho=o["rho"],
    )  # fmt: skip


@_register(
    "autoattack",
    "linf",
    "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square; needs ≥ 4 classes.",
    n_classes=None,
)
def _autoattack(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.AutoAttack(
        model, norm="Linf", eps=eps, version="standard", n_classes=o["n_classes"], seed=seed
    )


@_register(
    "eot_pgd",
    "linf",
    "PGD with Expectation over Transformation (Athalye et al., 2018).",
    steps=10,
    alpha=2.0,
    eot_iter=2,
    random_start=True,
)
def _eot_pgd(model: nn.Module, eps: float, seed: int | None, o: Options) -> BackendAttack:
    return torchattacks.EOTPGD(
        model, eps=eps, alpha=o["alpha"] / 255, steps=o["steps"], eot_iter=o["eot_iter"],
        random_start=o["random_start"],
    )  # fmt: skip


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


# option -> (check, requirement) for the options that several attacks share
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": (_int_at_least(1), "an int >= 1"),
    "eot_iter": (_int_at_least(1), "an int >= 1"),
    "n_restarts": (_int_at_least(1), "an int >= 1"),
    "alpha": (lambda v: isinstance(v, int | float) and v > 0, "a number > 0"),
    "c": (lambda v: isinstance(v, int | float) and v > 0, "a number > 0"),
    "lr": (lambda v: isinstance(v, int | float) and v > 0, "a number > 0"),
    "kappa": (lambda v: isinstance(v, int | float) and v >= 0, "a number >= 0"),
    "rho": (lambda v: isinstance(v, int | float) and 0 < v < 1, "a number in (0, 1)"),
    "random_start": (lambda v: isinstance(v, bool), "a bool"),
    "n_classes": (_int_at_least(4), "an int >= 4 (APGD-T/FAB-T use the 4 top logits)"),
    "tuple_output_index": (lambda v: v is None or isinstance(v, int | str), "None, an int or a str key"),
}


def _resolve(spec: AttackSpec, eps: float | None, options: Options) -> tuple[float | None, Options]:
    """Validate eps and options; return eps in [0, 1] pixel units and the full option set."""
    unknown = set(options) - set(spec.defaults) - set(COMMON_OPTIONS)
    if unknown:
        allowed = ", ".join(sorted([*spec.defaults, *COMMON_OPTIONS]))
        raise ValueError(f"attack '{spec.name}': unknown option(s) {sorted(unknown)}; allowed: {allowed}")
    resolved = {**spec.defaults, "tuple_output_index": None, **options}
    for key, value in resolved.items():
        check, requirement = _CHECKS[key]
        if not check(value):
            raise ValueError(f"attack '{spec.name}': option '{key}' must be {requirement}, got {value!r}")
    if spec.norm is None:
        if eps is not None:
            raise ValueError(f"attack '{spec.name}' is unbounded (no ε budget); pass eps=None")
        return None, resolved
    if eps is None or not isinstance(eps, int | float):
        raise ValueError(f"attack '{spec.name}': eps is required (a number), got {eps!r}")
    if eps < 0:
        raise ValueError(f"attack '{spec.name}': eps must be >= 0, got {eps}")
    return (eps / 255 if spec.norm == "linf" else float(eps)), resolved


@dataclass
class Attack:
    """A configured attack: ``attack(images, labels)`` -> detached adversarial images in [0, 1]."""

    name: str
    norm: str | None
    eps: float | None  # as given: /255 for L∞, L2 units for L2, None when unbounded
    eps_abs: float | None  # in [0, 1] pixel units
    seed: int | None
    options: Options
    model: nn.Module
    victim: nn.Module  # model, wrapped in LogitsOnly when tuple_output_index is set
    backend: BackendAttack
    _checked: bool = field(default=False, repr=False)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check_inputs(images, labels)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
        # inside Lightning's validation/test loops (inference mode) gradients need normal-tensor copies
        with torch.inference_mode(False), victim_mode(self.model), torch.random.fork_rng(devices=devices):
            images = images.detach().float().clone()
            labels = labels.detach().to(images.device).clone()
            if not self._checked:
                self._check_output(images[:1])
            if isinstance(self.backend, torchattacks.APGD):
                self.backend.seed = seed
            torch.manual_seed(seed)
            adv = self.backend(images, labels)
        return adv.detach().clamp_(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly record of the attack for run records."""
        return {
            "name": self.name,
            "backend": f"torchattacks.{type(self.backend).__name__}",
            "torchattacks_version": torchattacks.__version__,
            "norm": self.norm,
            "eps": self.eps,
            "eps_unit": {"linf": "1/255", "l2": "L2 on [0, 1]", None: None}[self.norm],
            "eps_abs": self.eps_abs,
            "seed": self.seed,
            "options": dict(self.options),
        }

    def _check_inputs(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if not torch.is_floating_point(images):
            raise ValueError(
                f"attack '{self.name}': images must be a float tensor in [0, 1], got {images.dtype}"
            )
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"attack '{self.name}': images must lie in [0, 1] (attacks run in pixel space)")
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"attack '{self.name}': labels must have shape [{images.shape[0]}], got {list(labels.shape)}"
            )

    def _check_output(self, probe: torch.Tensor) -> None:
        with torch.no_grad():
            out = self.victim(probe)
        if not isinstance(out, torch.Tensor):
            raise ValueError(
                f"attack '{self.name}': the model returns a {type(out).__name__}, not a logits tensor; "
                "pass tuple_output_index=<index or key of the logits> to build_attack"
            )
        if out.ndim != 2:
            raise ValueError(
                f"attack '{self.name}': the model must return [B, C] logits, got {list(out.shape)}"
            )
        self._checked = True


def build_attack(
    name: str, model: nn.Module, *, eps: float | None, seed: int | None = 0, **options: Any
) -> Attack:
    """Build a registered attack against ``model`` (inputs in [0, 1], returns logits or a tuple of them)."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack '{name}'; available: {', '.join(sorted(ATTACKS))}")
    spec = ATTACKS[name]
    eps_abs, resolved = _resolve(spec, eps, options)
    index = resolved["tuple_output_index"]
    victim = LogitsOnly(model, index) if index is not None else model
    backend = spec.make(victim, eps_abs if eps_abs is not None else 0.0, seed, resolved)
    return Attack(name, spec.norm, eps, eps_abs, seed, resolved, model, victim, backend)
