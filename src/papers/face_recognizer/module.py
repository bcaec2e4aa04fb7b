"""Face-recognizer training (ArcFace margin head on an IResNet), evaluated open-set on unseen identities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.evaluation.collector import TensorCollector
from src.evaluation.identity_protocol import evaluate_identity, order_by_index, pair_scores
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.lightning_modules.heads import size_head_from_data
from src.metrics.plots import roc_curve_figure, similarity_histogram
from src.papers.registry import register_paper


@register_paper(
    "face_recognizer",
    title="ArcFace recognizer training",
    venue="CVPR'19",
    kind="tool",
    formerly=("src.lightning_modules.face_recognizer.FaceRecognizerModule",),
)
class FaceRecognizerModule(LabModule):
    """Train ``net`` with an ArcFace head; validate/test by retrieval and verification on held-out identities.

    The validation/test identities are disjoint from training ones, so the head's classes are never used at
    evaluation: embeddings are compared directly (see :mod:`src.evaluation.identity_protocol`).

    A head built with ``num_classes: null`` (the config's default when the DataModule does not state
    ``train_identities``) is sized at set-up from the DataModule's training identities (``num_classes``), so
    any face DataModule with identity labels works; a checkpoint sizes it when one is loaded instead.
    """

    def __init__(
        self,
        net: nn.Module,
        head: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        num_pairs: int = 2000,
        pair_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "head", "optimizer", "scheduler"])
        self.net, self.head = net, head
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_outputs = TensorCollector(["embedding", "label", "index"])
        self.test_outputs = TensorCollector(["embedding", "label", "index"])

    def setup(self, stage: str) -> None:
        """Before fitting: size an unsized head from the training identities, or check a sized one fits."""
        if stage == "fit":
            size_head_from_data(self.head, self.trainer.datamodule)

    def forward(self, images: Tensor) -> Tensor:
        """Embeddings of images in [0, 1]."""
        return self.net(images)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """ArcFace cross-entropy on the training identities."""
        embeddings = self.net(batch["image"])
        logits = self.head(embeddings, batch["identity"])
        loss = F.cross_entropy(logits, batch["identity"])
        with torch.no_grad():
            accuracy = (self.head.cosine(embeddings).argmax(1) == batch["identity"]).float().mean()
        batch_size = batch["image"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log("train/acc", accuracy, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def _collect(self, collector: TensorCollector, batch: dict[str, Tensor]) -> None:
        collector.update(embedding=self.net(batch["image"]), label=batch["identity"], index=batch["index"])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Store embeddings of the validation identities."""
        self._collect(self.val_outputs, batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Store embeddings of the test identities."""
        self._collect(self.test_outputs, batch)

    def _report(self, collector: TensorCollector, stage: str) -> None:
        outputs = collector.compute()
        collector.reset()
        _, embeddings, labels = order_by_index(outputs["index"], outputs["embedding"], outputs["label"])
        results = evaluate_identity(
            embeddings, labels, num_pairs=self.hparams.num_pairs, pair_seed=self.hparams.pair_seed
        )
        for name, value in results.items():
            self.log(
                f"{stage}/{name}", value, prog_bar=name == "rank1", rank_zero_only=False, sync_dist=False
            )
        if stage == "test":
            scores, is_same = pair_scores(
                embeddings, labels, num_pairs=self.hparams.num_pairs, pair_seed=self.hparams.pair_seed
            )
            curves = {"clean": (scores.numpy(), is_same.numpy())}
            log_figure(self, "test/roc", roc_curve_figure(curves, log_x=True, title="Verification ROC"))
            fig = similarity_histogram(
                scores[is_same].numpy(), scores[~is_same].numpy(), title="Pair similarity"
            )
            log_figure(self, "test/similarity", fig)

    def on_validation_epoch_end(self) -> None:
        """Retrieval and verification over all validation images (gathered from every rank)."""
        self._report(self.val_outputs, "val")

    def on_test_epoch_end(self) -> None:
        """Retrieval and verification over all test images (gathered from every rank)."""
        self._report(self.test_outputs, "test")

    def configure_optimizers(self) -> Any:
        """The configured optimizer over net + head, and the scheduler if one is given."""
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)},
        }
