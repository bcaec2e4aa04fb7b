"""FPG served to people: ``load("fpg", ckpt=<best.ckpt of fpg/ffpp_c23>)`` scores each face with the FPG
detector.

Only the evaluation forward runs (``FPGNet.forward``: backbone feature map, irregularity branch, channel
attention, the backbone's head; softmax class 1 = fake); the online refinements and the SDD-FIQA quality
teacher are training-time only (the teacher is never in checkpoints and is not built). Faces are cut as the
SBI test protocol cuts them: the detector box plus ``datamodule.box_margin`` (1/8) per side, resized to
``datamodule.image_size`` (380), fed in ``[0, 1]`` (``input_norm`` is applied inside the network, ``none``
for FPG).
"""

from __future__ import annotations

from typing import Any

import torch

from src.inference.checkpoints import MethodCheckpoint
from src.inference.detectors import ModuleDetector, box_margin_crop, build_module_detector
from src.inference.methods import FaceCrop
from src.papers.fpg.module import FPGModule
from src.papers.registry import METHODS, MethodEntry, register_method, served_targets

PAPER = "fpg"
NAME = "fpg"
#: the SBI test crop of the FPG experiments (``box_margin: 0.125``), when a config does not say
DEFAULT_BOX_MARGIN = 0.125


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The test crop of the checkpoint's data: the detector box plus ``box_margin`` per side."""
    crop = box_margin_crop(checkpoint, DEFAULT_BOX_MARGIN)
    assert crop is not None  # the default margin is set
    return crop


def _inference_only(model: dict[str, Any]) -> dict[str, Any]:
    """No weight file at build (ImageNet init, quality teacher): the checkpoint holds every weight served."""
    model["quality_teacher"] = None
    net = model.get("net")
    if isinstance(net, dict) and isinstance(net.get("backbone"), dict):
        net["backbone"]["weights"] = None
    return model


class FPGMethod(ModuleDetector):
    """The FPG detector scoring face crops (the shared module-detector serving)."""


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> FPGMethod:
    """The FPG detector of a training run's checkpoint."""
    method = build_module_detector(
        checkpoint,
        device,
        options,
        name=NAME,
        paper=PAPER,
        targets=served_targets(METHODS[NAME]),
        module_type=FPGModule,
        backbone=lambda module: module.net.backbone,
        crop=training_crop,
        edit=_inference_only,
        description="FPG ({architecture} with irregularity branch and channel attention)",
        details={"reconstructed": False},
        make=FPGMethod,
    )
    assert isinstance(method, FPGMethod)
    return method


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="detect",
        build=build,
        summary="FPG (MM'24): SBI-trained EfficientNet-B4 with forgery perception guidance "
        "(fake probability per face)",
        experiment="fpg/ffpp_c23",
    )
)
