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
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import DetectionMethod, FaceCrop, ServingError
from src.papers.eg.module import EGModule
from src.papers.registry import MethodEntry, register_method
from src.utils.checkpoint_files import CheckpointError

PAPER = "eg"
NAME = "eg"
#: the SBI test crop of the EG experiments (``box_margin: 0.125``), when a config does not say
DEFAULT_BOX_MARGIN = 0.125


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The test crop of the checkpoint's data: the detector box plus ``box_margin`` per side."""
    margin = checkpoint.value("datamodule.box_margin")
    return FaceCrop(scale=1.0 + 2.0 * float(DEFAULT_BOX_MARGIN if margin is None else margin), shift=0.0)


def _inference_only(model: dict[str, Any]) -> dict[str, Any]:
    """No weight file at build (ImageNet init, ArcFace teacher, released EG file): the checkpoint has all."""
    net = model.get("net")
    if isinstance(net, dict):
        net["weights"] = None
        net["fr_weights"] = None
        if isinstance(net.get("detector"), dict):
            net["detector"]["weights"] = None
    return model


class EGMethod(DetectionMethod):
    """The EG detector (its test-time head only) scoring face crops."""

    def __init__(
        self,
        module: EGModule,
        face_size: int,
        crop: FaceCrop,
        *,
        device: str | torch.device = "cpu",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        detector = module.net.detector
        self.architecture = str(getattr(detector, "name", "")) or type(detector).__name__
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"EG ({self.architecture} artifact branch; training objective reconstructed)",
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
            "input_norm": getattr(self.module.net.detector, "input_norm", None),
            "crop": {"scale": self.crop.scale, "shift": self.crop.shift},
            "reconstructed": True,
            "reconstructed_parts": "training objective (the inference path is the released one)",
            "provenance": dict(self.provenance),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> EGMethod:
    """The EG detector of an EG training run's checkpoint."""
    from src.papers.registry import PAPERS

    if options:
        raise ServingError(f"method '{NAME}' takes no options, got {', '.join(sorted(options))}")
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    module = checkpoint.build_module(PAPERS[PAPER].targets, NAME, edit=_inference_only, device=device)
    if not isinstance(module, EGModule):
        raise CheckpointError(
            f"checkpoint {checkpoint.path} holds a {type(module).__name__}, not an EG module"
        )
    size = checkpoint.value("datamodule.image_size", getattr(module.net.detector, "input_size", None))
    if size is None:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its config gives no datamodule.image_size")
    return EGMethod(
        module, int(size), training_crop(checkpoint), device=device, provenance=checkpoint.provenance()
    )


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
