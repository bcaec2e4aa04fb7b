"""Repeated-release averaging attack (``docs/metrics.md``, "Composition per identity"): why releases must be
composed per identity.

An adversary who sees k independent perturbations of the same identity averages them; the cosine of the
average with the true identity grows with k. By rotation invariance the identity can be taken as e1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from src.metrics.privacy._checks import count, positive
from src.metrics.privacy.samplers import SphericalSample, _inverse_cdf_table
from src.metrics.privacy.spherical import angular_exponential_theta

__all__ = ["averaging_attack_cosine", "averaging_attack_cosine_reduced"]

Perturb = Callable[[torch.Tensor, torch.Generator], SphericalSample]


def averaging_attack_cosine(
    perturb: Perturb,
    dimension: int,
    releases_k: int,
    *,
    trials: int = 1000,
    generator: torch.Generator,
    chunk: int = 200_000,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Mean over ``trials`` of cos(mean of k perturbations of e1, e1).

    ``perturb(x, generator)`` perturbs the rows of ``x``
    (e.g. ``lambda x, g: purkayastha_perturb(x, 10, g)``).
    Rows are processed in chunks of at most ``chunk`` perturbations (whole trials per chunk).
    """
    d = count("averaging_attack_cosine", "dimension", dimension)
    k = count("averaging_attack_cosine", "releases_k", releases_k)
    n = count("averaging_attack_cosine", "trials", trials)
    per_chunk = max(1, count("averaging_attack_cosine", "chunk", chunk) // k)
    v = torch.zeros(d, dtype=dtype)
    v[0] = 1.0
    cosines = []
    for start in range(0, n, per_chunk):
        m = min(per_chunk, n - start)
        out = perturb(v.expand(m * k, d).contiguous(), generator).output.reshape(m, k, d).mean(dim=1)
        cosines.append(out[:, 0] / out.norm(dim=1))
    return float(torch.cat(cosines).mean())


def averaging_attack_cosine_reduced(
    mechanism: str,
    parameter: float,
    dimension: int,
    releases_k: int,
    *,
    trials: int = 1000,
    seed: int = 0,
) -> float:
    """:func:`averaging_attack_cosine` computed without d-dimensional vectors (same distribution, far faster).

    With w_i = v cos θ_i + u_i sin θ_i, the mean's cosine with v is c̄ / √(c̄² + ‖S‖²/k²) where c̄ is the mean
    of cos θ_i and S = Σ sin θ_i·u_i. By rotation invariance S is a random walk whose squared norm obeys
    ‖S + s·u‖² = ‖S‖² + s² + 2s‖S‖t, with t = ⟨u, S/‖S‖⟩ a fresh coordinate of a uniform unit vector of
    v^⊥ ((t + 1)/2 ~ Beta((d−2)/2, (d−2)/2)). ``parameter`` is ε for ``angular_exponential`` / ``purkayastha``
    (Δθ = π) and κ for ``vmf``.
    """
    fn = "averaging_attack_cosine_reduced"
    d = count(fn, "dimension", dimension)
    if d < 4:
        raise ValueError(f"{fn}: `dimension` must be >= 4, got {dimension}")
    k = count(fn, "releases_k", releases_k)
    n = count(fn, "trials", trials)
    p = positive(fn, "parameter", parameter)
    rng = np.random.default_rng(seed)
    uniform = rng.random((n, k))
    if mechanism == "angular_exponential":
        theta = np.asarray(angular_exponential_theta(uniform, p))
    elif mechanism in ("purkayastha", "vmf"):
        kappa = p / math.pi if mechanism == "purkayastha" else p
        edges, cdf = _inverse_cdf_table(mechanism, kappa, d, 200_000)
        theta = np.interp(uniform, cdf, edges)
    else:
        raise ValueError(
            f"{fn}: unknown mechanism {mechanism!r}; expected angular_exponential, purkayastha, vmf"
        )
    sin = np.sin(theta)
    t = 2.0 * rng.beta((d - 2) / 2.0, (d - 2) / 2.0, (n, k)) - 1.0
    norm2 = sin[:, 0] ** 2
    for i in range(1, k):
        norm2 = norm2 + sin[:, i] ** 2 + 2.0 * sin[:, i] * np.sqrt(norm2) * t[:, i]
    mean_cos = np.cos(theta).mean(axis=1)
    return float(np.mean(mean_cos / np.sqrt(mean_cos**2 + np.maximum(norm2, 0.0) / k**2)))
