"""ArcFace additive angular margin classification head (Deng et al., CVPR 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable


@buildable
class ArcMarginHead(nn.Module):
    """Logits ``s·cos(θ + m)`` for the true class and ``s·cos θ`` for the others.

    Follows the standard "easy margin off" form: where ``θ + m`` would pass π, the logit falls back to
    ``cos θ − m·sin m`` so it stays monotonic in θ.
    """

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.3
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"ArcMarginHead needs at least 2 classes, got {num_classes}")
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = float(scale), float(margin)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.threshold = math.cos(math.pi - margin)
        self.fallback = math.sin(math.pi - margin) * margin

    def cosine(self, embeddings: Tensor) -> Tensor:
        """Cosine similarity of each embedding to each class centre."""
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Margin logits for training with cross-entropy."""
        cosine = self.cosine(embeddings).clamp(-1.0, 1.0)
        sine = torch.sqrt((1.0 - cosine**2).clamp_min(1e-7))
        with_margin = cosine * self.cos_m - sine * self.sin_m
        with_margin = torch.where(cosine > self.threshold, with_margin, cosine - self.fallback)
        one_hot = F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)
        return self.scale * (one_hot * with_margin + (1.0 - one_hot) * cosine)
