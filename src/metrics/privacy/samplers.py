"""Torch samplers of the spherical identity mechanisms (``docs/metrics.md``, "Spherical mechanisms").

All three share two sub-processes: a direction u uniform on the unit sphere of v^⊥
(project z ~ N(0, I) onto the tangent space, resample rows with ‖u_raw‖ ≤ 1e−6, normalise) and an angle θ;
the output is w = v·cos θ + u·sin θ, a unit vector at angle exactly θ from v = x/‖x‖.

* :func:`angular_exponential_perturb` — θ from the truncated exponential by the closed-form inverse CDF (the
  angular exponential mechanism; *uncertified*). Random draws in a fixed order, that of the published
  implementation it reproduces: ``randn`` for z (repeated for degenerate rows), then ``rand`` for U.
* :func:`purkayastha_perturb` — θ by inverting the tabulated CDF of e^{−κθ} sin^{d−2}θ (2×10⁵ cells).
* :func:`vmf_perturb` — w = cos θ by Wood's (1994) rejection sampler; its Beta((d−1)/2, (d−1)/2) proposal is
  drawn by the inverse CDF of a uniform from the explicit generator.

Every function takes an explicit ``torch.Generator`` and returns ``(output, theta, direction)``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
from scipy import special
from torch import Tensor

from src.metrics.privacy._checks import positive
from src.metrics.privacy.spherical import angle_log_density, angular_exponential_theta

__all__ = [
    "SphericalSample",
    "angular_exponential_perturb",
    "purkayastha_perturb",
    "rotate_towards",
    "tangent_direction",
    "vmf_perturb",
]

_DEGENERATE = 1e-6


class SphericalSample(NamedTuple):
    """Perturbed unit vectors ``[B, d]``, angles θ ``[B]`` from the input, tangent directions ``[B, d]``."""

    output: Tensor
    theta: Tensor
    direction: Tensor


def _unit_rows(fn: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{fn}: `x` must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise ValueError(f"{fn}: `x` must have shape [d] or [B, d] with d >= 2, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{fn}: `x` must be floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{fn}: `x` contains non-finite values")
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"{fn}: `x` has zero-norm rows; their direction is undefined")
    return x / norms


def tangent_direction(v: Tensor, generator: torch.Generator) -> Tensor:
    """Uniform unit directions in the tangent spaces v^⊥ of the unit rows of ``v`` ``[B, d]``."""
    z = torch.randn(v.shape, generator=generator, dtype=v.dtype, device=v.device)
    u = z - (z * v).sum(dim=1, keepdim=True) * v
    norms = u.norm(dim=1)
    bad = norms <= _DEGENERATE
    while bool(bad.any()):
        idx = bad.nonzero().squeeze(1)
        z = torch.randn((idx.numel(), v.shape[1]), generator=generator, dtype=v.dtype, device=v.device)
        fresh = z - (z * v[idx]).sum(dim=1, keepdim=True) * v[idx]
        u[idx] = fresh
        norms[idx] = fresh.norm(dim=1)
        bad = norms <= _DEGENERATE
    return u / norms.unsqueeze(1)


def rotate_towards(v: Tensor, u: Tensor, theta: Tensor) -> Tensor:
    """w = v·cos θ + u·sin θ for unit v, unit u ⊥ v: the point at geodesic distance θ from v towards u."""
    t = theta.to(v.dtype).unsqueeze(1)
    return v * torch.cos(t) + u * torch.sin(t)


def angular_exponential_perturb(
    x: Tensor, epsilon: float, generator: torch.Generator, delta_theta: float = math.pi
) -> SphericalSample:
    """Angular exponential mechanism (θ ~ truncated exponential, rate ε/Δθ, Jacobian omitted; uncertified)."""
    positive("angular_exponential_perturb", "epsilon", epsilon)
    v = _unit_rows("angular_exponential_perturb", x)
    u = tangent_direction(v, generator)
    uniform = torch.rand(v.shape[0], generator=generator, dtype=torch.float64, device=v.device)
    theta = torch.from_numpy(
        np.atleast_1d(angular_exponential_theta(uniform.cpu().numpy(), epsilon, delta_theta))
    )
    theta = theta.to(device=v.device, dtype=v.dtype)
    return SphericalSample(rotate_towards(v, u, theta), theta, u)


@lru_cache(maxsize=32)
def _inverse_cdf_table(
    mechanism: str, kappa: float, dimension: int, cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges on [0, π] and the cumulative mass at each edge (piecewise-linear CDF)."""
    edges = np.linspace(0.0, math.pi, cells + 1)
    mid = 0.5 * (edges[:-1] + edges[1:])
    log_p = angle_log_density(mechanism, kappa, dimension, mid)
    mass = np.exp(log_p - log_p.max())
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    return edges, cdf / cdf[-1]


def purkayastha_perturb(
    x: Tensor,
    epsilon: float,
    generator: torch.Generator,
    delta_theta: float = math.pi,
    *,
    cells: int = 200_000,
) -> SphericalSample:
    """Purkayastha / spherical-Laplace mechanism (density ∝ e^{−κ·θ(v, w)}, κ = ε/Δθ): ε-LDP for Δθ = π."""
    fn = "purkayastha_perturb"
    kappa = positive(fn, "epsilon", epsilon) / positive(fn, "delta_theta", delta_theta)
    v = _unit_rows(fn, x)
    u = tangent_direction(v, generator)
    uniform = torch.rand(v.shape[0], generator=generator, dtype=torch.float64, device=v.device).cpu().numpy()
    edges, cdf = _inverse_cdf_table("purkayastha", kappa, v.shape[1], cells)
    theta = torch.from_numpy(np.interp(uniform, cdf, edges)).to(device=v.device, dtype=v.dtype)
    return SphericalSample(rotate_towards(v, u, theta), theta, u)


def _beta_symmetric(n: int, df: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Beta(df/2, df/2) draws by the inverse CDF (``betaincinv``) of uniforms from the explicit generator."""
    uniform = torch.rand(n, generator=generator, dtype=torch.float64, device=device).cpu().numpy()
    return torch.from_numpy(special.betaincinv(df / 2.0, df / 2.0, uniform)).to(device)


def _wood_cosines(
    kappa: float, dimension: int, n: int, generator: torch.Generator, device: torch.device
) -> Tensor:
    """n draws of w = cos θ with density ∝ e^{κw}(1 − w²)^{(d−3)/2} by Wood's (1994) rejection sampler."""
    m1 = dimension - 1
    b = m1 / (2.0 * kappa + math.sqrt(4.0 * kappa**2 + m1**2))  # = (−2κ + √(4κ² + (d−1)²))/(d−1), stable
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + m1 * math.log(1.0 - x0**2)
    out = torch.empty(n, dtype=torch.float64, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel() > 0:
        z = _beta_symmetric(todo.numel(), m1, generator, device)
        log_u = torch.log(torch.rand(todo.numel(), generator=generator, dtype=torch.float64, device=device))
        w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        accept = kappa * w + m1 * torch.log1p(-x0 * w) - c >= log_u
        out[todo[accept]] = w[accept]
        todo = todo[~accept]
    return out


def vmf_perturb(x: Tensor, kappa: float, generator: torch.Generator) -> SphericalSample:
    """von Mises–Fisher mechanism (density ∝ e^{κ⟨v, w⟩}): κ·d_2 metric privacy, 2κ-LDP."""
    fn = "vmf_perturb"
    k = positive(fn, "kappa", kappa, allow_zero=True)
    v = _unit_rows(fn, x)
    u = tangent_direction(v, generator)
    w = _wood_cosines(k, v.shape[1], v.shape[0], generator, v.device)
    theta = torch.arccos(w.clamp(-1.0, 1.0)).to(v.dtype)
    return SphericalSample(rotate_towards(v, u, theta), theta, u)
