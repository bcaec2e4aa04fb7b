"""The detection baselines served to people: one frame detector, ``detection_baselines``, whose architecture
(Xception, EfficientNet-B4 or SBI's EfficientNet-B4) comes from the checkpoint's own config.

``load("detection_baselines", ckpt=<best.ckpt of detection_baselines/{xception,efficientnet_b4,sbi}/...>)``.
Each face is cut as the checkpoint's test data were: the SBI family's test crop is the detector box plus
``datamodule.box_margin`` (1/8) per side; the DeepfakeBench rows' faces are ArcFace-aligned with margin 1.3
(``--profile dfb``), which the square crop approximates (side 1.5 box heights, centre 0.1 box height up, no
roll correction). The network normalises its own ``[0, 1]`` input (``input_norm`` in its config) and the
score is the module's own ``softmax(logits)[:, 1]`` (class 1 = fake).
"""

from __future__ import annotations

from typing import Any

import torch

from src.inference.checkpoints import MethodCheckpoint
from src.inference.detectors import ModuleDetector, box_margin_crop, build_module_detector
from src.inference.methods import FaceCrop
from src.lightning_modules.frame_detector import FrameDetectorModule
from src.lightning_modules.sbi_detector import SBIModule
from src.papers.registry import METHODS, MethodEntry, register_method, served_targets

PAPER = "detection_baselines"
NAME = "detection_baselines"
#: the square equivalent of the ``dfb`` preprocessing (ArcFace 5-point alignment, margin 1.3): measured
#: against MTCNN boxes, the aligned crop spans ~1.5 box heights and is centred ~0.1 box height above the box
ALIGNED_CROP = FaceCrop(scale=1.5, shift=-0.1)
ARCHITECTURES = {
    "xception": "Xception",
    "efficientnet_b4": "EfficientNet-B4",
    "small_cnn": "small CNN (demo)",
}


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The crop of the checkpoint's test faces: the box + ``box_margin`` per side, else the ``dfb`` crop."""
    return box_margin_crop(checkpoint, None) or ALIGNED_CROP


def _drop_initial_weights(model: dict[str, Any]) -> dict[str, Any]:
    """No ImageNet file at build: every weight comes from the checkpoint."""
    if isinstance(model.get("net"), dict):
        model["net"]["weights"] = None
    return model


class FrameDetectorMethod(ModuleDetector):
    """A trained frame detector (Xception, EfficientNet-B4, SBI) scoring face crops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.architecture = ARCHITECTURES.get(self.architecture, self.architecture)


def _recipe(module: FrameDetectorModule) -> dict[str, Any]:
    return {"recipe": "SBI" if isinstance(module, SBIModule) else "DeepfakeBench", "reconstructed": False}


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> FrameDetectorMethod:
    """The detector of a detection-baselines checkpoint (Xception / EfficientNet-B4 / SBI runs)."""
    method = build_module_detector(
        checkpoint,
        device,
        options,
        name=NAME,
        paper=PAPER,
        targets=served_targets(METHODS[NAME]),
        module_type=FrameDetectorModule,
        backbone=lambda module: module.net,
        crop=training_crop,
        edit=_drop_initial_weights,
        description="{architecture} frame detector",
        details=_recipe,
        make=FrameDetectorMethod,
    )
    assert isinstance(method, FrameDetectorMethod)
    method.description = f"{method.architecture} frame detector ({method.details['recipe']} recipe)"
    return method


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="detect",
        build=build,
        summary="frame-level deepfake detector: Xception, EfficientNet-B4 or SBI, as the checkpoint's config "
        "says (fake probability per face)",
        experiment="detection_baselines/xception/ffpp_c23",
        # the DeepfakeBench rows' module and the SBI rows' (a shared module the paper registers as a stage)
        targets=(
            "src.papers.detection_baselines.module.FrameDetectorBaseline",
            "src.lightning_modules.sbi_detector.SBIModule",
            "src.papers.detection_baselines.module.SBIModule",
        ),
    )
)
