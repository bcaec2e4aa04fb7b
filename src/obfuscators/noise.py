"""Additive Gaussian noise obfuscator."""

from __future__ import annotations

from typing import Any

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


@register_obfuscator
class GaussianNoise(Obfuscator):
    """Add ``N(0, std²)`` noise per pixel and channel, then clamp to [0, 1].

    Training draws ``std ~ U(std_range)`` per sample; evaluation uses ``eval_std``. The noise itself is drawn
    with the ``generator`` passed to ``forward``; in eval mode without one, a generator seeded with
    ``eval_seed`` is created on every call, so evaluation is reproducible — but then every batch of the same
    shape gets the *same* noise field. For independent noise across an evaluation set, pass a generator seeded
    per batch (for instance from the batch's sample indices). Noise is drawn on the generator's device (CPU by
    default) and moved to the images, so a seed gives the same noise on CPU and GPU. Differentiable (except
    where clamped).
    """

    name = "noise"

    def __init__(
        self,
        std_range: tuple[float, float] = (0.05, 0.2),
        eval_std: float = 0.1,
        eval_seed: int = 0,
    ) -> None:
        super().__init__()
        who = type(self).__name__
        low, high = as_pair(who, "std_range", std_range)
        low = as_float(who, "std_range[0]", low, minimum=0.0)
        high = as_float(who, "std_range[1]", high, minimum=0.0)
        check_range(who, "std_range", low, high)
        self.std_range = (low, high)
        self.eval_std = as_float(who, "eval_std", eval_std, minimum=0.0)
        self.eval_seed = as_int(who, "eval_seed", eval_seed, minimum=0)

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        return uniform(*self.std_range, batch_size, generator)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.full((batch_size,), self.eval_std, dtype=torch.float64)

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        if generator is None:
            generator = torch.Generator().manual_seed(self.eval_seed)
        noise = torch.randn(images.shape, generator=generator, device=generator.device, dtype=images.dtype)
        std = params.to(images.dtype).to(images.device).reshape(-1, 1, 1, 1)
        return (images + std * noise.to(images.device)).clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "std_range": list(self.std_range),
            "eval_std": self.eval_std,
            "eval_seed": self.eval_seed,
        }
