"""The base LightningModule of frame-level forgery detectors: train on real/fake frames, select on the
validation split, report frame- and video-level numbers on the test split.

- **Training**: cross-entropy on ``[B, 2]`` logits of ``batch["image"]`` (in ``[0, 1]``) against
  ``batch["label"]`` (1 = fake). With a :class:`src.optim.sam.SAM` optimizer the module switches to manual
  optimisation and takes SAM's two passes per batch (an epoch-level scheduler is stepped at epoch end).
- **Validation** reads only what ``val_dataloader`` gives (the validation split); the run's checkpoint
  callback monitors ``val/frame_auc`` (or ``val/video_auc``), so no test number can choose a checkpoint.
- **Test**: :func:`src.evaluation.detection_protocol.evaluate_detection`: faces → frames (max) → videos
  (mean), frames and videos that preprocessing could not crop scored 0.5 and counted, a per-method
  breakdown, ROC / precision-recall figures and the per-frame / per-video tables in the run record.

Subclasses (papers) override :meth:`training_loss` for extra loss terms and keep the evaluation.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from src.evaluation.collector import TensorCollector
from src.evaluation.detection_protocol import VIDEO_REDUCES, DetectionResult, evaluate_detection
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.metrics.detection import detection_metrics
from src.metrics.plots import precision_recall_figure, roc_curve_figure
from src.optim.sam import SAM
from src.utils.run_record import ENV_RUN_DIR

COLUMNS = ("score", "label", "video_idx", "frame_index", "face_index")
VAL_LEVELS = ("frame", "video")


def is_sam(factory: Callable[..., torch.optim.Optimizer]) -> bool:
    """Whether an optimizer factory (class or ``functools.partial``) builds :class:`SAM`."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    return isinstance(target, type) and issubclass(target, SAM)


class FrameDetectorModule(LabModule):
    """Binary frame detector around ``net`` (images in [0, 1] → ``[B, 2]`` logits, class 1 = fake).

    ``val_level``: ``"frame"`` (frame AUC only: SBI-style validation, where a fake and its real source share
    a frame) or ``"video"`` (frame and video AUC); ``video_reduce``: how frame scores make a video score at
    test (``"mean"``, DeepfakeBench and SBI; ``"max"``); ``threshold``: the accuracy threshold on the fake
    probability.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        val_level: str = "video",
        video_reduce: str = "mean",
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if val_level not in VAL_LEVELS:
            raise ValueError(f"model.val_level must be one of {VAL_LEVELS}, got {val_level!r}")
        if video_reduce not in VIDEO_REDUCES:
            raise ValueError(f"model.video_reduce must be one of {VIDEO_REDUCES}, got {video_reduce!r}")
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.automatic_optimization = not is_sam(optimizer)
        self.val_outputs = TensorCollector(COLUMNS)
        self.test_outputs = TensorCollector(COLUMNS)
        self.last_test: DetectionResult | None = None

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, 2]`` of images in [0, 1]."""
        return self.net(images)

    def fake_probability(self, images: Tensor) -> Tensor:
        """``softmax(logits)[:, 1]``: the probability that each image is fake."""
        return self.net(images).float().softmax(dim=1)[:, 1]

    # --- training -----------------------------------------------------------------------------------
    def training_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of the batch and the values to log (override to add loss terms)."""
        logits = self.net(batch["image"])
        labels = batch["label"].long()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return loss, {"loss": loss.detach(), "acc": accuracy}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        """One optimisation step (two passes under SAM)."""
        loss, logs = self.training_loss(batch)
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            self.manual_backward(loss)

            def closure() -> Tensor:  # the second SAM pass, at the perturbed weights
                again, _ = self.training_loss(batch)
                self.manual_backward(again)
                return again

            optimizer.step(closure=closure)
            optimizer.zero_grad()
        size = batch["image"].shape[0]
        for key, value in logs.items():
            self.log(
                f"train/{key}",
                value,
                on_step=key == "loss",
                on_epoch=True,
                prog_bar=key == "loss",
                batch_size=size,
            )
        return loss if self.automatic_optimization else None

    def on_train_epoch_end(self) -> None:
        """Manual optimisation: step the epoch-level scheduler here (Lightning does it otherwise)."""
        if self.automatic_optimization or self.scheduler_factory is None:
            return
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    # --- evaluation ---------------------------------------------------------------------------------
    def _collect(self, collector: TensorCollector, batch: dict[str, Tensor]) -> None:
        scores = self.fake_probability(batch["image"]).to(torch.float64)
        n = scores.shape[0]
        zeros = torch.zeros(n, dtype=torch.long, device=scores.device)
        collector.update(
            score=scores,
            label=batch["label"].long(),
            video_idx=batch.get("video_idx", zeros).long(),
            frame_index=batch.get("frame_index", zeros).long(),
            face_index=batch.get("face_index", zeros).long(),
        )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Score the validation frames."""
        self._collect(self.val_outputs, batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Score the test faces."""
        self._collect(self.test_outputs, batch)

    def on_validation_epoch_end(self) -> None:
        """``val/frame_auc`` (and ``val/video_auc``) over every validation frame of every rank."""
        out = self.val_outputs.compute()
        self.val_outputs.reset()
        if self.trainer.sanity_checking:
            return
        labels = out["label"]
        if not 0 < int(labels.sum()) < labels.numel():
            rank_zero_warn(
                "validation holds one class only: no val/frame_auc this epoch", category=UserWarning
            )
            return
        if self.hparams.val_level == "frame":
            values = detection_metrics(out["score"].cpu(), out["label"].cpu(), self.hparams.threshold)
            metrics = {
                "frame_auc": values["auc"],
                "frame_ap": values["ap"],
                "frame_eer": values["eer"],
                "frame_acc": values["accuracy"],
            }
        else:
            metrics = self._evaluate(out, "val").metrics
        for key in ("frame_auc", "frame_ap", "frame_eer", "frame_acc", "video_auc", "video_ap"):
            if key in metrics:
                self.log(
                    f"val/{key}",
                    metrics[key],
                    prog_bar=key == "frame_auc",
                    sync_dist=False,
                    rank_zero_only=False,
                )

    def _evaluate(self, out: dict[str, Tensor], split: str) -> DetectionResult:
        datamodule = getattr(self.trainer, "datamodule", None)
        encoders = getattr(datamodule, "encoders", {}) or {}
        names = list(encoders[split].ids) if split in encoders else None
        failed = datamodule.failed_items(split) if hasattr(datamodule, "failed_items") and names else None
        return evaluate_detection(
            out["score"].cpu(),
            out["label"].cpu(),
            out["video_idx"].cpu(),
            out["frame_index"].cpu(),
            failed=failed,
            video_names=names,
            video_reduce=self.hparams.video_reduce,
            threshold=self.hparams.threshold,
        )

    def on_test_epoch_end(self) -> None:
        """Every test metric, the figures and the prediction tables (see the module docstring)."""
        out = self.test_outputs.compute()
        self.test_outputs.reset()
        result = self._evaluate(out, "test")
        self.last_test = result
        for key, value in result.metrics.items():
            self.log(f"test/{key}", value, sync_dist=False, rank_zero_only=False)
        frames, videos = result.frames, result.videos
        self._write_tables(result)
        if "frame_auc" not in result.metrics:  # one class only: no curve to draw
            return
        curves = {
            "frames": (frames["score"].to_numpy(), frames["label"].to_numpy()),
            "videos": (videos["score"].to_numpy(), videos["label"].to_numpy()),
        }
        log_figure(self, "test/roc", roc_curve_figure(curves, title="Detection ROC (test)"))
        log_figure(
            self, "test/precision_recall", precision_recall_figure(curves, title="Precision-recall (test)")
        )
        self._write_tables(result)

    def _write_tables(self, result: DetectionResult) -> None:
        """``<run dir>/predictions/test_{frames,videos,per_method}.csv`` (global rank 0, inside a run)."""
        run_dir = os.environ.get(ENV_RUN_DIR)
        if not run_dir or not self.trainer.is_global_zero:
            return
        folder = Path(run_dir, "predictions")
        folder.mkdir(parents=True, exist_ok=True)
        result.frames.to_csv(folder / "test_frames.csv", index=False, float_format="%.6f")
        result.videos.to_csv(folder / "test_videos.csv", index=False, float_format="%.6f")
        if not result.per_method.empty:
            result.per_method.to_csv(folder / "test_per_method.csv", float_format="%.6f")

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """The configured optimizer (SAM included) over the trainable parameters (frozen parts, e.g. a
        teacher network, stay out) and, if given, its epoch-level scheduler."""
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
