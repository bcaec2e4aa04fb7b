"""DP-Pix (Fan, DBSec 2018; ``docs/metrics.md``, "Laplace"): Laplace on b×b cell means.

Two images are neighbours when they differ in at most m pixels; a cell mean over b² pixels in [0, R] moves
by at most R·m/b² in total, so Δ1 = R·m/b² (R = 255 in the paper's pixel scale) and the Laplace scale is
R·m/(b²ε).
ε semantics: PIX (m-pixel neighbourhoods; protects small regions, not identity as such).
This project's images are in [0, 1]: pass ``pixel_range=1.0`` when the noise is added in that scale.
"""

from __future__ import annotations

from src.metrics.privacy._checks import count, positive
from src.metrics.privacy.laplace import certify_laplace
from src.metrics.privacy.record import Certification, RngInfo

__all__ = ["certify_dp_pix", "dp_pix_scale", "dp_pix_sensitivity"]


def dp_pix_sensitivity(m: int, cell: int, pixel_range: float = 255.0) -> float:
    """L1 sensitivity Δ1 = R·m/b² of the b×b cell means for images differing in at most m pixels."""
    fn = "dp_pix_sensitivity"
    return positive(fn, "pixel_range", pixel_range) * count(fn, "m", m) / count(fn, "cell", cell) ** 2


def dp_pix_scale(m: int, cell: int, epsilon: float, pixel_range: float = 255.0) -> float:
    """Laplace scale R·m/(b²ε) per cell."""
    return dp_pix_sensitivity(m, cell, pixel_range) / positive("dp_pix_scale", "epsilon", epsilon)


def certify_dp_pix(
    *,
    m: int,
    cell: int,
    epsilon: float,
    pixel_range: float = 255.0,
    releases_k: int = 1,
    delta: float | None = None,
    composition_scope: str = "per-image",
    rng: RngInfo | int | None = None,
) -> Certification:
    """Certify k DP-Pix releases of the same image (pure ε per release; see :func:`certify_laplace`)."""
    sens = dp_pix_sensitivity(m, cell, pixel_range)
    return certify_laplace(
        sensitivity_l1=sens,
        representation=f"{cell}x{cell} cell means of pixels in [0, {pixel_range:g}]",
        epsilon=epsilon,
        releases_k=releases_k,
        delta=delta,
        neighbor_relation="m-pixel",
        composition_scope=composition_scope,
        rng=rng,
        mechanism="dp_pix",
        extra_params={"m": m, "cell": cell, "pixel_range": float(pixel_range)},
    )
