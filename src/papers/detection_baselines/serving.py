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
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import DetectionMethod, FaceCrop, ServingError
from src.lightning_modules.frame_detector import FrameDetectorModule
from src.lightning_modules.sbi_detector import SBIModule
from src.papers.registry import MethodEntry, register_method
from src.utils.checkpoint_files import CheckpointError

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
    margin = checkpoint.value("datamodule.box_margin")
    if margin is None:
        return ALIGNED_CROP
    return FaceCrop(scale=1.0 + 2.0 * float(margin), shift=0.0)


def checkpoint_face_size(checkpoint: MethodCheckpoint, module: FrameDetectorModule) -> int:
    """The side the network was trained and tested at: ``datamodule.image_size``, else the net's own."""
    size = checkpoint.value("datamodule.image_size", getattr(module.net, "input_size", None))
    if size is None:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its config gives no datamodule.image_size")
    return int(size)


def _drop_initial_weights(model: dict[str, Any]) -> dict[str, Any]:
    """No ImageNet file at build: every weight comes from the checkpoint."""
    if isinstance(model.get("net"), dict):
        model["net"]["weights"] = None
    return model


class FrameDetectorMethod(DetectionMethod):
    """A trained frame detector (Xception, EfficientNet-B4, SBI) scoring face crops."""

    def __init__(
        self,
        module: FrameDetectorModule,
        face_size: int,
        crop: FaceCrop,
        *,
        device: str | torch.device = "cpu",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        net_name = str(getattr(module.net, "name", ""))
        self.architecture = ARCHITECTURES.get(net_name, net_name or type(module.net).__name__)
        self.recipe = "SBI" if isinstance(module, SBIModule) else "DeepfakeBench"
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"{self.architecture} frame detector ({self.recipe} recipe)",
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
            "recipe": self.recipe,
            "input_norm": getattr(self.module.net, "input_norm", None),
            "crop": {"scale": self.crop.scale, "shift": self.crop.shift},
            "reconstructed": False,
            "provenance": dict(self.provenance),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> FrameDetectorMethod:
    """The detector of a detection-baselines checkpoint (Xception / EfficientNet-B4 / SBI runs)."""
    from src.papers.registry import PAPERS

    if options:
        raise ServingError(f"method '{NAME}' takes no options, got {', '.join(sorted(options))}")
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    module = checkpoint.build_module(PAPERS[PAPER].targets, NAME, edit=_drop_initial_weights, device=device)
    if not isinstance(module, FrameDetectorModule):
        raise CheckpointError(
            f"checkpoint {checkpoint.path} holds a {type(module).__name__}, not a frame detector"
        )
    return FrameDetectorMethod(
        module,
        checkpoint_face_size(checkpoint, module),
        training_crop(checkpoint),
        device=device,
        provenance=checkpoint.provenance(),
    )


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
