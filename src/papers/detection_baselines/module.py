"""The detection baselines as LightningModules: DeepfakeBench-recipe frame detectors and SBI.

Both are :class:`src.lightning_modules.frame_detector.FrameDetectorModule` (training, validation-only
checkpoint selection, the frame / video test protocol); the experiment files choose the network, recipe
and data. Docs: docs/papers/detection_baselines.md.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from src.lightning_modules.frame_detector import FrameDetectorModule
from src.papers.registry import register_paper


class SBIModule(FrameDetectorModule):
    """SBI (Shiohara & Yamasaki, CVPR 2022): a detector trained on real frames and their self-blended fakes.

    The data come from :class:`src.datamodules.self_blended.SelfBlendedFramesDataModule` (batches
    ``[reals; fakes]``); the recipe (EfficientNet-B4 AdvProp at 380 px on ``[0, 1]`` inputs, SAM around
    SGD, linear decay over the last quarter of the epochs) is in ``experiments/_base/model/sbi.yaml``.
    Validation is the frame AUC on the self-blended validation pairs (``val_level="frame"``), as in the
    original; test uses the SBI video protocol (max over faces, mean over frames, failures at 0.5).
    Frames whose landmarks could not be blended are replaced by the next frame and counted in
    ``train/blend_failed``.
    """

    def __init__(self, *args: Any, val_level: str = "frame", **kwargs: Any) -> None:
        super().__init__(*args, val_level=val_level, **kwargs)

    def training_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy on the pair batch, plus the count of replaced (unblendable) frames."""
        loss, logs = super().training_loss(batch)
        if "blend_failed" in batch:
            logs["blend_failed"] = batch["blend_failed"].float().sum()
        return loss, logs


@register_paper(
    "detection_baselines",
    title="Frame-level deepfake detectors: Xception, EfficientNet-B4 and SBI",
    venue="-",
    kind="baseline",
    stages=(SBIModule,),
)
class FrameDetectorBaseline(FrameDetectorModule):
    """Xception or EfficientNet-B4 trained on real and manipulated frames with DeepfakeBench's recipe
    (Adam 2e-4, weight decay 5e-4, no scheduler, 10 epochs, 256 px aligned crops), selected on the FF++
    validation split instead of the test sets. SBI runs (:class:`SBIModule`) belong to the same table."""
