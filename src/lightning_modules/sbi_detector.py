"""The SBI training scheme as a LightningModule base: a frame detector trained on real frames paired with
their self-blended fakes (Shiohara & Yamasaki, CVPR 2022). SBI itself and the detectors built on its data
(EG, FPG) derive from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from src.config.buildable import formerly
from src.lightning_modules.frame_detector import FrameDetectorModule


def pair_halves(batch: Mapping[str, Tensor]) -> int:
    """``n`` for a ``[reals; fakes]`` pair batch (row ``i`` and ``i + n`` from the same frame); raises when
    the batch is not laid out that way (e.g. real manipulated frames instead of self-blended pairs)."""
    labels = batch["label"]
    n = labels.shape[0] // 2
    if labels.shape[0] != 2 * n or n == 0 or labels[:n].any() or not labels[n:].all():
        raise ValueError(
            "expected pair batches [reals; fakes] (row i and i + n from the same frame), as "
            f"SelfBlendedFramesDataModule makes them; got labels {labels.tolist()[:8]}"
        )
    return n


@formerly("src.papers.detection_baselines.module.SBIModule")
class SBIModule(FrameDetectorModule):
    """A detector trained on real frames and their self-blended fakes.

    The data come from :class:`src.datamodules.self_blended.SelfBlendedFramesDataModule` (batches
    ``[reals; fakes]``); the SBI recipe (EfficientNet-B4 AdvProp at 380 px on ``[0, 1]`` inputs, SAM around
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
        return loss, {**logs, **self.blend_logs(batch)}

    @staticmethod
    def blend_logs(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``blend_failed``: how many frames of the batch could not be blended and were replaced."""
        if "blend_failed" not in batch:
            return {}
        return {"blend_failed": batch["blend_failed"].float().sum()}
