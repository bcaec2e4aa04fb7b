"""The one interface every face recognizer in the zoo implements.

A recognizer declares what it expects — input size, colour order, normalisation, embedding size — and
:meth:`FaceRecognizer.embed` takes images in a *declared* range (``[0, 1]`` by default, ``[-1, 1]`` on
request), so callers never re-implement per-network preprocessing. Everything is differentiable (privacy
papers back-propagate through frozen recognizers); :meth:`freeze` makes a recognizer a fixed judge/loss.
Stage features (needed by PRO-Face C, which injects features into a frozen backbone) come from
:meth:`forward_stages`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.buildable import buildable

INPUT_RANGES = ("[0,1]", "[-1,1]")


class FaceRecognizer(nn.Module):
    """Base class: subclasses set the class attributes and implement :meth:`forward_features`.

    - ``input_size``: (H, W) the network expects;
    - ``channel_order``: ``"RGB"`` or ``"BGR"``;
    - ``mean``/``std``: per-channel normalisation applied to [0, 1] inputs *after* channel reordering
      (e.g. insightface ArcFace: mean 0.5, std 0.5 → [-1, 1]);
    - ``embedding_dim``: size of the output embedding;
    - ``stage_names``: names of the stage outputs :meth:`forward_stages` returns.
    """

    input_size: tuple[int, int] = (112, 112)
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    embedding_dim: int = 512
    stage_names: ClassVar[tuple[str, ...]] = ()

    def preprocess(self, images: Tensor, input_range: str = "[0,1]", resize: bool = False) -> Tensor:
        """Images ``[B, 3, H, W]`` in ``input_range`` → network input (size, colour order, normalisation)."""
        if input_range not in INPUT_RANGES:
            raise ValueError(
                f"{type(self).__name__}: input_range must be one of {INPUT_RANGES}, got {input_range!r}"
            )
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"{type(self).__name__}: expected [B, 3, H, W] images, got {tuple(images.shape)}"
            )
        x = (images + 1.0) / 2.0 if input_range == "[-1,1]" else images
        if tuple(x.shape[-2:]) != tuple(self.input_size):
            if not resize:
                raise ValueError(
                    f"{type(self).__name__} expects {self.input_size[0]}x{self.input_size[1]} inputs, got "
                    f"{tuple(x.shape[-2:])} (align/crop first, or pass resize=True to resize bilinearly)"
                )
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        if self.channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward_features(self, x: Tensor) -> Tensor:
        """The raw network on preprocessed input → embeddings ``[B, embedding_dim]``."""
        raise NotImplementedError

    def forward_stages(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Embeddings plus the named stage outputs (preprocessed input); override where stages exist."""
        raise NotImplementedError(f"{type(self).__name__} does not expose stage features")

    def embed(
        self, images: Tensor, input_range: str = "[0,1]", normalize: bool = True, resize: bool = False
    ) -> Tensor:
        """Embeddings of images in ``input_range`` (L2-normalised when ``normalize``)."""
        embeddings = self.forward_features(self.preprocess(images, input_range, resize))
        return F.normalize(embeddings, dim=1) if normalize else embeddings

    def forward(self, images: Tensor) -> Tensor:
        """Un-normalised embeddings of images in [0, 1] (so a recognizer drops in where a plain net did)."""
        return self.embed(images, normalize=False)

    def freeze(self) -> FaceRecognizer:
        """Eval mode and no parameter gradients (inputs still get gradients); stays frozen under .train()."""
        self._frozen = True
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FaceRecognizer:
        """Like ``nn.Module.train``, but a frozen recognizer stays in eval mode (BatchNorm stays fixed)."""
        return super().train(mode and not getattr(self, "_frozen", False))

    def describe(self) -> dict[str, Any]:
        """The declared interface, for run records."""
        return {
            "class": type(self).__name__,
            "input_size": list(self.input_size),
            "channel_order": self.channel_order,
            "mean": list(self.mean),
            "std": list(self.std),
            "embedding_dim": self.embedding_dim,
            "stages": list(self.stage_names),
        }


RECOGNIZERS: dict[str, Callable[..., FaceRecognizer]] = {}


def register_recognizer(
    name: str,
) -> Callable[[Callable[..., FaceRecognizer]], Callable[..., FaceRecognizer]]:
    """Register a recognizer constructor (class or factory function) under ``name``."""

    def decorate(factory: Callable[..., FaceRecognizer]) -> Callable[..., FaceRecognizer]:
        if name in RECOGNIZERS and RECOGNIZERS[name] is not factory:
            raise ValueError(f"recognizer '{name}' is already registered")
        RECOGNIZERS[name] = factory
        return factory

    return decorate


@buildable
def build_recognizer(name: str, **kwargs: Any) -> FaceRecognizer:
    """Build a registered recognizer; unknown names list the available ones."""
    if name not in RECOGNIZERS:
        raise ValueError(f"unknown recognizer '{name}'; available: {', '.join(sorted(RECOGNIZERS))}")
    return RECOGNIZERS[name](**kwargs)
