"""DP-Pix obfuscator (Fan, DBSec 2018): Laplace noise on the means of ``b × b`` pixel cells.

The image is pixelised into ``b × b`` cells (the cell means of :func:`src.obfuscators.pixelate.pixelate`)
and independent Laplace noise is added to every cell mean of every channel. Two images are neighbours when
they differ in at most ``m`` pixels; a cell mean over ``b²`` values in [0, R] then moves by at most ``R·m/b²``
in total (L1), so the Laplace scale ``R·m/(b²ε)`` makes one release ε-DP with ε semantics **PIX** — it
protects small regions (m pixels), not identity as such. The accounting is :mod:`src.metrics.privacy.dp_pix`
(``docs/metrics.md``, "DP accounting"); parameters: ``docs/papers/obfuscation_baselines.md``, "DP-Pix".

Conventions of this port:

- Images are in [0, 1], so ``R = 1`` (:data:`PIXEL_RANGE`): the noise relative to the pixel range is the
  paper's ``255·m/(b²ε)`` on [0, 255] images. The output is clamped to [0, 1] (post-processing, ε unchanged).
- A "pixel" of the neighbour relation is one value of one channel: the three channels get independent noise
  at the same scale, so an RGB pixel whose three channels all change counts as 3 (m = 3 covers it at ε).
- Cells are laid out as in :func:`~src.obfuscators.pixelate.pixelate` (anchored at the top-left corner;
  narrower last row/column when ``b`` does not divide ``H`` or ``W``; one cell when ``b`` exceeds a side).
  A narrower border cell averages ``n < b²`` values, so its mean is more sensitive: its Laplace scale is
  ``R·m/(n·ε)`` (equal to the paper's ``R·m/(b²ε)`` for full cells). The privacy loss of ``m`` changed values
  is then at most ``ε`` wherever they lie, so the ``certify_dp_pix`` record stays valid for any image size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from src.obfuscators.base import (
    Obfuscator,
    as_float,
    as_int,
    as_pair,
    check_range,
    register_obfuscator,
    uniform,
)
from src.obfuscators.pixelate import pixelate

if TYPE_CHECKING:
    from src.metrics.privacy.record import Certification, PrivacyRecord, RngInfo

#: pixel range R of the project's images ([0, 1]); the paper's 255 on [0, 255] images
PIXEL_RANGE = 1.0

# Smallest uniform draw: keeps the Laplace inverse CDF finite (a draw of exactly 0 has probability 2^-53).
_MIN_UNIFORM = 2.0**-53


def laplace_noise(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Standard Laplace draws (scale 1, float64, CPU) of ``shape``, by the inverse CDF of a uniform.

    ``u ~ U(0, 1)`` from ``generator`` (on its own device, so a seed gives the same draws on CPU and GPU),
    ``v = u − ½``, ``x = −sign(v)·ln(1 − 2|v|)``. Every element is an independent draw.
    """
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64).cpu()
    v = u.clamp(min=_MIN_UNIFORM) - 0.5
    return -torch.sign(v) * torch.log1p(-2.0 * v.abs())


def cell_sizes(size: int, cell: int) -> Tensor:
    """Number of pixels along one axis of each cell of :func:`~src.obfuscators.pixelate.pixelate`.

    Cells of ``min(cell, size)`` pixels from the start, the last one holding the remainder (int64, CPU).
    """
    k = min(cell, size)
    n = -(-size // k)
    sizes = torch.full((n,), k, dtype=torch.int64)
    sizes[-1] = size - (n - 1) * k
    return sizes


def dp_pixelate(
    images: Tensor,
    epsilons: Tensor,
    cell: int,
    m: int,
    generator: torch.Generator,
    pixel_range: float = PIXEL_RANGE,
) -> Tensor:
    """DP-Pix without the final clamp: cell means plus Laplace noise of scale ``R·m/(n·ε)`` per cell.

    ``images`` ``[B, C, H, W]``; ``epsilons`` ``[B]`` (one ε per sample, > 0); ``n`` is the cell's pixel
    count (``b²`` for full cells, see the module docstring). One independent Laplace draw per (sample,
    channel, cell), drawn with ``generator`` in float64 and cast to the images' dtype; the output has the
    input's shape and is constant over each cell. Differentiable w.r.t. the images (through the cell means).
    """
    b, c, h, w = images.shape
    rows, cols = cell_sizes(h, cell), cell_sizes(w, cell)
    counts = (rows.reshape(-1, 1) * cols.reshape(1, -1)).to(torch.float64)  # [nh, nw] pixels per cell
    eps = epsilons.to(torch.float64).cpu().reshape(-1, 1, 1, 1)
    scales = pixel_range * m / (counts * eps)  # [B, 1, nh, nw]
    noise = laplace_noise((b, c, len(rows), len(cols)), generator) * scales
    noise = noise.to(images.dtype).to(images.device)
    field = noise.repeat_interleave(rows.to(images.device), dim=-2, output_size=h)
    field = field.repeat_interleave(cols.to(images.device), dim=-1, output_size=w)
    return pixelate(images, cell) + field


@register_obfuscator
class DPPix(Obfuscator):
    """DP-Pix: ``b × b`` cell means plus Laplace noise of scale ``R·m/(b²ε)`` per cell and channel, R = 1.

    Defaults (``docs/papers/obfuscation_baselines.md``, "DP-Pix"): ``cell`` b = 16, ``m`` = 1 and evaluation
    ``epsilon`` = 0.5, the first reference setting of the DP-Pix accounting (Δ1 = 255/256 on [0, 255], Laplace
    scale 1.99219, i.e. 1/512 ≈ 0.00195 in [0, 1] units). Training draws ε per sample log-uniformly from
    ``epsilon_range`` (default 0.01–10, the ε span of the DP image papers' trade-off plots); ``cell`` and
    ``m`` stay fixed.

    The noise is drawn with the ``generator`` passed to ``forward``. In eval mode without one, a generator
    seeded with ``eval_seed`` is created on every call (reproducible, but every batch of the same shape then
    gets the *same* noise, and a known seed makes the noise public: no DP guarantee). For a DP claim, pass a
    generator seeded secretly per batch (e.g. from :func:`src.metrics.privacy.secret_seed`) and say so in the
    record's ``rng``. :meth:`privacy_record` / :meth:`certification` give the accounting of the evaluation ε.
    """

    name = "dp_pix"

    def __init__(
        self,
        epsilon: float = 0.5,
        cell: int = 16,
        m: int = 1,
        epsilon_range: tuple[float, float] = (0.01, 10.0),
        eval_seed: int = 0,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        self.epsilon = as_float(who, "epsilon", epsilon, minimum=0.0, strict=True)
        self.cell = as_int(who, "cell", cell, minimum=1)
        self.m = as_int(who, "m", m, minimum=1)
        low, high = as_pair(who, "epsilon_range", epsilon_range)
        low = as_float(who, "epsilon_range[0]", low, minimum=0.0, strict=True)
        high = as_float(who, "epsilon_range[1]", high, minimum=0.0, strict=True)
        check_range(who, "epsilon_range", low, high)
        self.epsilon_range = (low, high)
        self.eval_seed = as_int(who, "eval_seed", eval_seed, minimum=0)

    @property
    def scale(self) -> float:
        """Laplace scale ``R·m/(b²ε)`` of a full cell at the evaluation ε, in [0, 1] units."""
        return PIXEL_RANGE * self.m / (self.cell**2 * self.epsilon)

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        low, high = self.epsilon_range
        eps = torch.exp(uniform(math.log(low), math.log(high), batch_size, generator))
        return eps.clamp(low, high)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.full((batch_size,), self.epsilon, dtype=torch.float64)

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        eps = params.to(torch.float64).cpu()
        if not bool(torch.isfinite(eps).all()) or bool((eps <= 0).any()):
            raise ValueError(f"{type(self).__name__}: epsilons must be finite and > 0, got {eps.tolist()}")
        if generator is None:
            generator = torch.Generator().manual_seed(self.eval_seed)
        return dp_pixelate(images, eps, self.cell, self.m, generator).clamp(0.0, 1.0)

    def certification(
        self,
        releases: int = 1,
        *,
        delta: float | None = None,
        composition_scope: str = "per-image",
        rng: RngInfo | int | None = None,
    ) -> Certification:
        """The accounting of ``releases`` evaluation-mode releases of one image (``certify_dp_pix``, R = 1).

        Pure ε per release; ``delta`` None/0 gives basic composition ``releases·ε`` (see
        :func:`src.metrics.privacy.certify_laplace`). ``rng`` describes the noise's randomness in the record
        (``None``: unspecified, treated as non-secret).
        """
        from src.metrics.privacy.dp_pix import certify_dp_pix  # lazy: the accounting stack is heavy

        return certify_dp_pix(
            m=self.m,
            cell=self.cell,
            epsilon=self.epsilon,
            pixel_range=PIXEL_RANGE,
            releases_k=releases,
            delta=delta,
            composition_scope=composition_scope,
            rng=rng,
        )

    def privacy_record(
        self,
        releases: int = 1,
        *,
        delta: float | None = None,
        composition_scope: str = "per-image",
        rng: RngInfo | int | None = None,
    ) -> PrivacyRecord:
        """The :class:`~src.metrics.privacy.record.PrivacyRecord` of :meth:`certification`."""
        return self.certification(releases, delta=delta, composition_scope=composition_scope, rng=rng).record

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "epsilon": self.epsilon,
            "cell": self.cell,
            "m": self.m,
            "epsilon_range": list(self.epsilon_range),
            "eval_seed": self.eval_seed,
        }
