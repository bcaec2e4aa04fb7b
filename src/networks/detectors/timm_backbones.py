"""Detector networks on timm backbones: Xception (the FF++ / DeepfakeBench one), EfficientNet-B4, a small CNN.

ImageNet weights come only from the weights manifest (``manifest:<name>``) or a local path, never from the
network; timm loads the file itself (``pretrained_cfg_overlay``) and drops its 1000-class classifier, so the
checkpoint layout is timm's own (the published files listed in the manifest are exactly those).

- ``xception``: timm ``legacy_xception``, the Keras-ported Xception of Cadene's ``pretrainedmodels`` that
  FaceForensics++ and DeepfakeBench use (20.8 M parameters with a 2-class head), input 299
  (DeepfakeBench: 256), normalisation 0.5/0.5.
- ``efficientnet_b4``: timm ``tf_efficientnet_b4`` (TensorFlow "same" padding and BatchNorm eps, so the
  AdvProp checkpoint ``tf_efficientnet_b4_ap`` — the weights SBI uses — loads unchanged), input 380. Unlike
  DeepfakeBench's port, the pretrained stem is kept (DeepfakeBench replaces it by a new convolution).
- ``small_cnn``: timm ``resnet10t`` (4.9 M), from scratch: the CPU demo's detector, not a paper baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.networks.detectors.base import DetectorNet, register_detector_net
from src.weights import resolve_spec

# The last feature block of each backbone (Grad-CAM layer; FPG's ``net._blocks[-1]`` for EfficientNet).
LAST_BLOCKS = {"legacy_xception": "block12", "tf_efficientnet_b4": "blocks.6.1", "resnet10t": "layer4.0"}


def _timm_backbone(architecture: str, weights: str | None, **kwargs: Any) -> tuple[Any, int]:
    """A timm model without classifier (pooled features) and its feature width; loads ``weights`` if given."""
    import timm

    overlay: dict[str, Any] = {}
    if weights:
        path = resolve_spec(weights)
        if not Path(path).is_file():
            raise FileNotFoundError(f"detector weights not found: {path} (model {architecture})")
        overlay = {"file": str(path), "hf_hub_id": None, "url": None}
    model = timm.create_model(
        architecture,
        pretrained=bool(weights),
        num_classes=0,
        pretrained_cfg_overlay=overlay or None,
        **kwargs,
    )
    return model, int(model.num_features)


def _detector(
    name: str,
    architecture: str,
    weights: str | None,
    num_classes: int,
    input_norm: str,
    input_size: int,
    dropout: float,
    **kwargs: Any,
) -> DetectorNet:
    backbone, width = _timm_backbone(architecture, weights, **kwargs)
    last = LAST_BLOCKS[architecture]
    return DetectorNet(backbone, width, num_classes, input_norm, input_size, name, dropout, last_block=last)


@register_detector_net("xception")
def xception(
    weights: str | None = None,
    num_classes: int = 2,
    input_norm: str = "half",
    input_size: int = 299,
    dropout: float = 0.0,
) -> DetectorNet:
    """Xception (timm ``legacy_xception``); ``weights``: ``manifest:timm-legacy-xception`` or a path."""
    return _detector("xception", "legacy_xception", weights, num_classes, input_norm, input_size, dropout)


@register_detector_net("efficientnet_b4")
def efficientnet_b4(
    weights: str | None = None,
    num_classes: int = 2,
    input_norm: str = "imagenet",
    input_size: int = 380,
    dropout: float = 0.4,
    drop_path_rate: float = 0.2,
) -> DetectorNet:
    """EfficientNet-B4 (timm ``tf_efficientnet_b4``; dropout 0.4 before the head and drop-connect 0.2, the
    reference B4 settings); ``weights``: ``manifest:timm-efficientnet-b4-advprop`` or a path."""
    return _detector(
        "efficientnet_b4",
        "tf_efficientnet_b4",
        weights,
        num_classes,
        input_norm,
        input_size,
        dropout,
        drop_path_rate=drop_path_rate,
    )


@register_detector_net("small_cnn")
def small_cnn(
    weights: str | None = None,
    num_classes: int = 2,
    input_norm: str = "imagenet",
    input_size: int = 128,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> DetectorNet:
    """A 4.9 M-parameter ResNet-10 (timm ``resnet10t``) for CPU demos and tests (same options as the others,
    so an experiment can swap its network for this one by name)."""
    return _detector(
        "small_cnn",
        "resnet10t",
        weights,
        num_classes,
        input_norm,
        input_size,
        dropout,
        drop_path_rate=drop_path_rate,
    )
