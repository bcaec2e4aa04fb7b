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
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import DetectionMethod, FaceCrop, ServingError
from src.papers.fpg.module import FPGModule
from src.papers.registry import MethodEntry, register_method
from src.utils.checkpoint_files import CheckpointError

PAPER = "fpg"
NAME = "fpg"
#: the SBI test crop of the FPG experiments (``box_margin: 0.125``), when a config does not say
DEFAULT_BOX_MARGIN = 0.125


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The test crop of the checkpoint's data: the detector box plus ``box_margin`` per side."""
    margin = checkpoint.value("datamodule.box_margin")
    return FaceCrop(scale=1.0 + 2.0 * float(DEFAULT_BOX_MARGIN if margin is None else margin), shift=0.0)


def _inference_only(model: dict[str, Any]) -> dict[str, Any]:
    """No weight file at build (ImageNet init, quality teacher): the checkpoint holds every weight served."""
    model["quality_teacher"] = None
    net = model.get("net")
    if isinstance(net, dict) and isinstance(net.get("backbone"), dict):
        net["backbone"]["weights"] = None
    return model


class FPGMethod(DetectionMethod):
    """The FPG detector (its evaluation forward) scoring face crops."""

    def __init__(
        self,
        module: FPGModule,
        face_size: int,
        crop: FaceCrop,
        *,
        device: str | torch.device = "cpu",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        backbone = module.net.backbone
        self.architecture = str(getattr(backbone, "name", "")) or type(backbone).__name__
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"FPG ({self.architecture} with irregularity branch and channel attention)",
            provenance=provenance,
        )
        self.module = module.to(self.device).eval()

    @torch.no_grad()
    def detect_faces(self, faces: Tensor) -> Tensor:
        return self.module.fake_probability(faces.to(self.device, torch.float32)).float()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "architecture": self.architecture,
            "input_norm": getattr(self.module.net.backbone, "input_norm", None),
            "crop": {"scale": self.crop.scale, "shift": self.crop.shift},
            "reconstructed": False,
            "provenance": dict(self.provenance),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> FPGMethod:
    """The FPG detector of an FPG training run's checkpoint."""
    from src.papers.registry import PAPERS

    if options:
        raise ServingError(f"method '{NAME}' takes no options, got {', '.join(sorted(options))}")
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    module = checkpoint.build_module(PAPERS[PAPER].targets, NAME, edit=_inference_only, device=device)
    if not isinstance(module, FPGModule):
        raise CheckpointError(
            f"checkpoint {checkpoint.path} holds a {type(module).__name__}, not an FPG module"
        )
    size = checkpoint.value("datamodule.image_size", getattr(module.net.backbone, "input_size", None))
    if size is None:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its config gives no datamodule.image_size")
    return FPGMethod(
        module, int(size), training_crop(checkpoint), device=device, provenance=checkpoint.provenance()
    )


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
