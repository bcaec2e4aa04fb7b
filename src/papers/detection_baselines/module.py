"""The detection baselines as LightningModules: DeepfakeBench-recipe frame detectors and SBI.

Both are :class:`src.lightning_modules.frame_detector.FrameDetectorModule` (training, validation-only
checkpoint selection, the frame / video test protocol); the experiment files choose the network, recipe
and data. Docs: docs/papers/detection_baselines.md.
"""

from __future__ import annotations

from src.lightning_modules.frame_detector import FrameDetectorModule
from src.lightning_modules.sbi_detector import SBIModule
from src.papers.registry import register_paper


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
