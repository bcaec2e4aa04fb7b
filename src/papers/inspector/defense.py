"""The Inspector inference-time defence, batched: coarse rejection by A, then fine correction by C.

Per sample (any batch size, no Python branching on tensors):

1. ``logits, feats = D(x)``; ``r = G(feats)``.
2. Coarse: ``rejected = argmax A(r) == 1``; its logits are returned unchanged, the caller rejects it.
3. Fine (not rejected): ``π = Σ_c sigmoid(C(x))_c softmax(logits)_c``; if ``π > threshold`` the attack is
   judged successful and the decision is flipped (:func:`flip_logits`), otherwise the logits are rescaled by
   a random positive factor (same argmax, random confidence scale), drawn from a seeded generator.

The original drew the factor with Python's ``random`` (non-deterministic) and handled batch size 1 only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from src.networks.detectors import DetectorNet
from src.papers.inspector.networks import (
    AutoThresholder,
    Corrector,
    Reconstructor,
    attack_probability,
    multilevel_features,
)

# |ℓ̂| is clamped to at least this before 1/ℓ̂ (a tie ℓ_0 = ℓ_1 gives ℓ̂ = 0); the sign is kept, 0 counts
# as positive, so a tie stays a tie (both outputs 1/FLIP_EPS).
FLIP_EPS = 1e-6


@dataclass
class InspectorOutput:
    """What :class:`InspectorDefense` returns, all per sample."""

    logits: Tensor  # [B, 2] final logits
    rejected: Tensor  # [B] bool: flagged adversarial by the coarse stage (A)
    attack_probability: Tensor  # [B] π from the corrector (computed for every sample)
    flipped: Tensor  # [B] bool: not rejected and π > threshold, decision flipped


def flip_logits(logits: Tensor, eps: float = FLIP_EPS) -> Tensor:
    """The original's deterministic flip of 2-class logits: centre ℓ̃ = ℓ − mean(ℓ), negate ℓ̂ = −ℓ̃,
    output 1/ℓ̂. For two classes ℓ̃ = ±(ℓ_0 − ℓ_1)/2, so 1/ℓ̂ has the opposite sign pattern and the argmax
    swaps (unless ℓ_0 = ℓ_1). ``|ℓ̂|`` is clamped to ``eps`` to avoid division by zero."""
    negated = logits.mean(dim=-1, keepdim=True) - logits
    sign = torch.where(negated >= 0, 1.0, -1.0).to(logits.dtype)
    return 1.0 / (sign * negated.abs().clamp_min(eps))


def random_scales(batch: int, generator: torch.Generator) -> Tensor:
    """``[B]`` positive factors on CPU: with probability ½ uniform in ``(0, 1]`` (``1 − U[0, 1)``, so a
    factor is never 0 and the argmax always survives), else an integer in ``[2, 100]``."""
    coin = torch.rand(batch, generator=generator) < 0.5
    uniform = 1.0 - torch.rand(batch, generator=generator)
    integer = torch.randint(2, 101, (batch,), generator=generator).float()
    return torch.where(coin, uniform, integer)


class InspectorDefense(nn.Module):
    """Detector D wrapped by the Inspector (G, A, C); ``forward(images in [0, 1]) -> InspectorOutput``.

    Inference only: every part is kept in eval mode (``train()`` is a no-op) and its parameters are frozen,
    but the forward stays differentiable w.r.t. the input, for adaptive attacks. ``randomize=False`` turns
    the random rescaling off (clean measurement); otherwise the factors come from a CPU generator seeded with
    ``generator_seed`` (one draw set per forward, sized by the batch only, so a run is reproducible;
    :meth:`reseed` restarts it).
    """

    def __init__(
        self,
        detector: DetectorNet,
        reconstructor: Reconstructor,
        autothresh: AutoThresholder,
        corrector: Corrector,
        randomize: bool = True,
        generator_seed: int = 0,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.detector = detector
        self.reconstructor = reconstructor
        self.autothresh = autothresh
        self.corrector = corrector
        self.randomize = randomize
        self.threshold = float(threshold)
        self.generator = torch.Generator()
        self.reseed(generator_seed)
        self.requires_grad_(False)
        self.train(False)

    def reseed(self, seed: int) -> None:
        """Restart the random rescaling sequence from ``seed``."""
        self.generator_seed = int(seed)
        self.generator.manual_seed(self.generator_seed)

    def train(self, mode: bool = True) -> InspectorDefense:
        """Keep every part in eval mode (BatchNorm statistics frozen), whatever ``mode`` says."""
        return super().train(False)

    def forward(self, images: Tensor) -> InspectorOutput:
        """Defended logits and decisions for ``[B, 3, H, W]`` images in ``[0, 1]``."""
        logits, features = multilevel_features(self.detector, images)
        if logits.shape[-1] != 2:
            raise ValueError(f"the Inspector flip is defined for 2-class logits, got {logits.shape[-1]}")
        reconstruction = self.reconstructor(features, images.shape[-2:])
        rejected = self.autothresh(reconstruction).argmax(dim=-1) == 1
        probability = attack_probability(self.corrector(images), logits)
        flipped = ~rejected & (probability > self.threshold)
        if self.randomize:
            scales = random_scales(logits.shape[0], self.generator).to(logits.device, logits.dtype)
        else:
            scales = torch.ones(logits.shape[0], device=logits.device, dtype=logits.dtype)
        fine = torch.where(flipped[:, None], flip_logits(logits), logits * scales[:, None])
        final = torch.where(rejected[:, None], logits, fine)
        return InspectorOutput(final, rejected, probability, flipped)
