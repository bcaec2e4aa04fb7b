"""The interface of every frame-level forgery detector network, and the registry that builds them by name.

A detector takes RGB images in ``[0, 1]`` and returns ``[B, 2]`` logits (class 1 = fake), the convention of
SBI and DeepfakeBench (``softmax(logits)[:, 1]`` is the fake probability). It normalises its own input, as
declared by ``input_norm``, so data pipelines and LightningModules never re-implement per-network
preprocessing:

- ``"half"``: ``(x - 0.5) / 0.5`` → ``[-1, 1]`` (Xception-family weights, DeepfakeBench for Xception);
- ``"imagenet"``: ImageNet mean/std (DeepfakeBench for other backbones);
- ``"none"``: ``[0, 1]`` fed as is (the original SBI code does this with AdvProp EfficientNet weights that
  were trained on ``[-1, 1]``; kept as an option for parity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from src.config.buildable import buildable

INPUT_NORMS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]] | None] = {
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": None,
}


class DetectorNet(nn.Module):
    """A backbone with a classification head: ``forward(images in [0, 1]) -> [B, num_classes]`` logits.

    ``backbone`` must map normalised images to pooled features ``[B, feature_dim]``; ``head`` maps those to
    logits. :meth:`features` exposes the pooled features (EG / FPG / Inspector read them).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int = 2,
        input_norm: str = "imagenet",
        input_size: int | None = None,
        name: str = "",
        dropout: float = 0.0,
        last_block: str | None = None,
    ) -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {sorted(INPUT_NORMS)}, got {input_norm!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.input_norm = input_norm
        self.input_size = input_size
        self.name = name
        self.last_block_path = last_block
        stats = INPUT_NORMS[input_norm]
        mean, std = stats if stats is not None else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: Tensor) -> Tensor:
        """``[B, 3, H, W]`` images in ``[0, 1]`` → the backbone's input."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"{self.name or type(self).__name__}: expected [B, 3, H, W], got {tuple(images.shape)}"
            )
        return (images - self.mean) / self.std

    def features(self, images: Tensor) -> Tensor:
        """Pooled backbone features ``[B, feature_dim]`` of images in ``[0, 1]``."""
        return self.backbone(self.normalise(images))

    def feature_map(self, images: Tensor) -> Tensor:
        """Unpooled backbone features ``[B, feature_dim, h, w]`` (timm ``forward_features``); ``pool`` of
        it equals :meth:`features`."""
        if not hasattr(self.backbone, "forward_features"):
            raise TypeError(f"{self.name or type(self).__name__}: the backbone has no forward_features")
        return self.backbone.forward_features(self.normalise(images))

    def pool(self, feature_map: Tensor) -> Tensor:
        """``[B, C, h, w]`` → ``[B, C]`` with the backbone's own pooling (timm ``forward_head``)."""
        return self.backbone.forward_head(feature_map)

    @property
    def last_block(self) -> nn.Module:
        """The backbone's last feature block (the Grad-CAM layer of FPG: EfficientNet's last MBConv)."""
        if self.last_block_path is None:
            raise AttributeError(f"{self.name or type(self).__name__}: no last_block declared")
        return self.backbone.get_submodule(self.last_block_path)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, num_classes]`` of images in ``[0, 1]``."""
        return self.head(self.features(images))

    def describe(self) -> dict[str, Any]:
        """What the run record says about the network."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_norm": self.input_norm,
            "input_size": self.input_size,
            "feature_dim": self.feature_dim,
            "last_block": self.last_block_path,
            "parameters": sum(p.numel() for p in self.parameters()),
        }


DETECTORS: dict[str, Callable[..., DetectorNet]] = {}


def register_detector_net(name: str) -> Callable[[Callable[..., DetectorNet]], Callable[..., DetectorNet]]:
    """Register a detector factory under ``name``."""

    def decorate(factory: Callable[..., DetectorNet]) -> Callable[..., DetectorNet]:
        if name in DETECTORS and DETECTORS[name] is not factory:
            raise ValueError(f"detector network '{name}' is already registered")
        DETECTORS[name] = factory
        return factory

    return decorate


@buildable
def build_detector_net(name: str, **kwargs: Any) -> DetectorNet:
    """Build a registered detector network; unknown names list the available ones."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector network '{name}'; available: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name](**kwargs)
