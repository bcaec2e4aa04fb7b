"""EG served to people: ``load("eg", ckpt=<best.ckpt of eg/ffpp_c23>)`` scores each face with the EG detector.

Only the test-time path runs (the released inference: ``net._fc(bn(dropout(f(x))))``, softmax class 1 =
fake); the frozen face recognizer is a training-time teacher, rebuilt from the checkpoint's own weights
(no ArcFace file is read) and never run. Faces are cut as the SBI test protocol cuts them: the detector box
plus ``datamodule.box_margin`` (1/8) per side, resized to ``datamodule.image_size`` (380), fed in ``[0, 1]``
(the network's ``input_norm`` is applied inside it, ``none`` for EG). EG's training objective is
reconstructed (docs/papers/eg.md): every result says so.
"""

from __future__ import annotations

from typing import Any

import torch

from src.inference.checkpoints import MethodCheckpoint
from src.inference.detectors import ModuleDetector, box_margin_crop, build_module_detector
from src.inference.methods import FaceCrop
from src.papers.eg.module import EGModule
from src.papers.registry import METHODS, MethodEntry, register_method, served_targets

PAPER = "eg"
NAME = "eg"
#: the SBI test crop of the EG experiments (``box_margin: 0.125``), when a config does not say
DEFAULT_BOX_MARGIN = 0.125


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The test crop of the checkpoint's data: the detector box plus ``box_margin`` per side."""
    crop = box_margin_crop(checkpoint, DEFAULT_BOX_MARGIN)
    assert crop is not None  # the default margin is set
    return crop


def _inference_only(model: dict[str, Any]) -> dict[str, Any]:
    """No weight file at build (ImageNet init, ArcFace teacher, released EG file): the checkpoint has all."""
    net = model.get("net")
    if isinstance(net, dict):
        net["weights"] = None
        net["fr_weights"] = None
        if isinstance(net.get("detector"), dict):
            net["detector"]["weights"] = None
    return model


class EGMethod(ModuleDetector):
    """The EG detector scoring face crops (the shared module-detector serving)."""


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> EGMethod:
    """The EG detector of a training run's checkpoint."""
    method = build_module_detector(
        checkpoint,
        device,
        options,
        name=NAME,
        paper=PAPER,
        targets=served_targets(METHODS[NAME]),
        module_type=EGModule,
        backbone=lambda module: module.net.detector,
        crop=training_crop,
        edit=_inference_only,
        description="EG ({architecture} artifact branch; training objective reconstructed)",
        details={
            "reconstructed": True,
            "reconstructed_parts": "training objective (the inference path is the released one)",
        },
        make=EGMethod,
    )
    assert isinstance(method, EGMethod)
    return method


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="detect",
        build=build,
        summary="EG (TCSVT'25): SBI-trained EfficientNet-B4 guided by face-embedding discrepancy "
        "(fake probability per face; training objective reconstructed)",
        experiment="eg/ffpp_c23",
    )
)
