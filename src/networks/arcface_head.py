"""ArcFace additive angular margin classification head (Deng et al., CVPR 2019)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parameter import UninitializedParameter

from src.config.buildable import buildable


@buildable
class ArcMarginHead(nn.Module):
    """Logits ``s·cos(θ + m)`` for the true class and ``s·cos θ`` for the others.

    Follows the standard "easy margin off" form: where ``θ + m`` would pass π, the logit falls back to
    ``cos θ − m·sin m`` so it stays monotonic in θ.

    ``num_classes=None`` leaves the class centres unsized until the data is known: the training module
    calls :meth:`set_num_classes` with the DataModule's training identities at set-up, and loading a state
    dict (a checkpoint) sizes them from the saved weights. Until then the head holds an uninitialised
    parameter and cannot be called.
    """

    def __init__(
        self, embedding_dim: int, num_classes: int | None = None, scale: float = 32.0, margin: float = 0.3
    ) -> None:
        super().__init__()
        self.embedding_dim = int(embedding_dim)
        if num_classes is None:
            self.weight: nn.Parameter = UninitializedParameter()
        else:
            _check_classes(num_classes)
            self.weight = nn.Parameter(torch.empty(int(num_classes), self.embedding_dim))
            nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = float(scale), float(margin)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.threshold = math.cos(math.pi - margin)
        self.fallback = math.sin(math.pi - margin) * margin

    @property
    def num_classes(self) -> int | None:
        """The number of class centres, or None while they are still unsized."""
        return None if isinstance(self.weight, UninitializedParameter) else int(self.weight.shape[0])

    def set_num_classes(self, num_classes: int) -> None:
        """Size (and Xavier-initialise) the class centres of a head built with ``num_classes=None``."""
        _check_classes(num_classes)
        if self.num_classes is not None:
            if self.num_classes != num_classes:
                raise ValueError(f"ArcMarginHead already has {self.num_classes} classes, not {num_classes}")
            return
        self.weight.materialize((int(num_classes), self.embedding_dim))
        with torch.no_grad():
            nn.init.xavier_uniform_(self.weight)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """Cosine similarity of each embedding to each class centre."""
        if self.num_classes is None:
            raise RuntimeError(
                "ArcMarginHead has no classes yet (num_classes=None): it is sized from the training data at "
                "set-up or from a checkpoint"
            )
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Margin logits for training with cross-entropy."""
        cosine = self.cosine(embeddings).clamp(-1.0, 1.0)
        sine = torch.sqrt((1.0 - cosine**2).clamp_min(1e-7))
        with_margin = cosine * self.cos_m - sine * self.sin_m
        with_margin = torch.where(cosine > self.threshold, with_margin, cosine - self.fallback)
        one_hot = F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)
        return self.scale * (one_hot * with_margin + (1.0 - one_hot) * cosine)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        """An unsized head saves its placeholder as it is (``detach`` is not defined for it)."""
        if self.num_classes is not None:
            super()._save_to_state_dict(destination, prefix, keep_vars)
            return
        destination[prefix + "weight"] = self.weight

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """An unsized head takes the number of classes of the weights it loads."""
        saved = state_dict.get(prefix + "weight")
        if (
            self.num_classes is None
            and isinstance(saved, Tensor)
            and not isinstance(saved, UninitializedParameter)
        ):
            self.weight.materialize(tuple(saved.shape))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def _check_classes(num_classes: int) -> None:
    if int(num_classes) < 2:
        raise ValueError(f"ArcMarginHead needs at least 2 classes, got {num_classes}")
