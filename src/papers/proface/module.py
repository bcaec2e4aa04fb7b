"""PRO-Face (ACM MM'22): a fusion network makes a face that looks obfuscated but stays recognizable.

``x_p = G(x, x_o)``: the two-branch dense U-Net ``G`` (:mod:`src.papers.proface.networks`) reads the original
face ``x`` and its conventional obfuscation ``x_o`` (blur, pixelate, ... from :mod:`src.obfuscators`) and is
trained so that ``x_p`` looks like ``x_o`` (LPIPS + L1) while a frozen recognizer ``E`` still matches ``x_p``
with other protected and original images of the same identity (two triplet losses). Documentation:
``docs/papers/proface.md`` (the section names below are its headings).

* Images arrive in [0, 1] and are mapped to the embedder's range ``embedder_range``: the paper's [-1, 1]
  (default), or [0, 1] for the released SimSwap-obfuscator embedders, which were trained on [0, 1] at 224 px
  ("Inputs and preprocessing" and "Original-code defects and fixes": a per-checkpoint input contract). The
  recognizer sees the faces in [0, 1], resized (bicubic) to ``recognizer_input_size``, as every recognizer of
  the framework expects; the perceptual loss and metric always get [-1, 1]; the L1 loss and ``l1_prot_obf``
  are in the embedder's range.
* ``L = w_vis·LPIPS(x_o^a, x_p^a) + w_l1·|x_o^a − x_p^a| + w_p2p·T(E(x_p^a), E(x_p^p), E(x_p^n))
  + w_p2o·T(E(x_p^a), E(x^a), E(x_p^n))`` with ``T`` the Euclidean triplet margin loss on raw
  (un-normalised) embeddings, as the authors' code does ("Losses").
* ``G`` is the only trainable part; the recognizer (and obfuscator) are frozen, and the recognizer stays in
  eval mode whatever Lightning does, yet gradients flow through it into ``G``.
* Evaluation ("Evaluation protocol"): embeddings of the original, obfuscated and protected (clamped) image in
  the four settings Orig / Obf. / ADR (protected–protected) / XDR (protected–original), angular distance,
  10-fold accuracy, AUC, EER and TAR@FAR; plus SSIM, PSNR and the perceptual distance of ``x_p`` to ``x_o``
  (the privacy side, which the authors optimise but do not report). Image batches (pairs derived from
  identities) and pair batches (LFW ``pairs.txt``) both work (:mod:`src.evaluation.protection_protocol`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from src.evaluation.protection_protocol import (
    PAPER_NAMES,
    ProtectionEmbeddings,
    ProtectionResult,
    batch_protocol,
    evaluate_protection,
)
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.losses.perceptual import PerceptualLoss
from src.metrics.image_quality import PSNR, SSIM
from src.metrics.plots import roc_curve_figure, similarity_histogram
from src.obfuscators.base import Obfuscator
from src.papers.proface.networks import load_released_proface
from src.papers.registry import register_paper
from src.weights import resolve_spec

LOSS_TERMS = ("vis", "l1", "p2p", "p2o")
REPORTED = ("accuracy", "accuracy_std", "auc", "eer")
EMBEDDER_RANGES = ("[-1,1]", "[0,1]")
STAGES = ("val", "test")


def input_size_of(recognizer: nn.Module, given: int | None) -> int:
    """The square input size the recognizer takes: ``given``, else its declared ``input_size``."""
    if given is not None:
        return int(given)
    declared = getattr(recognizer, "input_size", None)
    if isinstance(declared, int):
        return declared
    if isinstance(declared, tuple | list) and len(declared) == 2 and declared[0] == declared[1]:
        return int(declared[0])
    raise ValueError(
        f"{type(recognizer).__name__} declares no square input_size ({declared!r}); "
        "set model.recognizer_input_size"
    )


def to_signed(images: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return images * 2.0 - 1.0


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] → [0, 1]."""
    return (images + 1.0) / 2.0


@register_paper(
    "proface",
    title="PRO-Face: A Generic Framework for Privacy-preserving Recognizable Obfuscation of Face Images",
    venue="ACM MM 2022",
    kind="privacy",
    formerly=("src.lightning_modules.proface.ProFaceModule",),
)
class ProFaceModule(LabModule):
    """Train the PRO-Face fusion network through a frozen recognizer; evaluate in the four settings."""

    def __init__(
        self,
        embedder: nn.Module,
        obfuscator: Obfuscator,
        recognizer: nn.Module,
        perceptual: PerceptualLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        recognizer_name: str = "recognizer",
        obfuscator_name: str = "obfuscator",
        recognizer_input_size: int | None = None,
        loss_weights: Mapping[str, float] | None = None,
        triplet_margin: float = 1.0,
        normalize_embeddings: bool = False,
        distance: str = "angular",
        fars: Sequence[float] = (1e-3, 1e-2, 1e-1),
        num_pairs: int = 6000,
        pair_seed: int = 0,
        obfuscator_seed: int = 0,
        embedder_weights: str | None = None,
        embedder_range: str = "[-1,1]",
    ) -> None:
        super().__init__()
        if embedder_range not in EMBEDDER_RANGES:
            raise ValueError(f"model.embedder_range must be one of {EMBEDDER_RANGES}, got {embedder_range!r}")
        self.signed = embedder_range == "[-1,1]"
        self.save_hyperparameters(
            logger=False, ignore=["embedder", "obfuscator", "recognizer", "perceptual", "optimizer"]
        )
        weights = dict(loss_weights or {"vis": 2.0, "l1": 1.0, "p2p": 0.5, "p2o": 0.1})
        if set(weights) != set(LOSS_TERMS):
            raise ValueError(
                f"model.loss_weights must have exactly the keys {LOSS_TERMS}, got {sorted(weights)}"
            )
        self.loss_weights = {k: float(v) for k, v in weights.items()}
        self.embedder = embedder
        if embedder_weights:
            self.embedder.load_state_dict(load_released_proface(resolve_spec(embedder_weights)).state_dict())
        self.obfuscator = obfuscator.requires_grad_(False)
        self.recognizer = recognizer.eval().requires_grad_(False)
        self.perceptual = perceptual
        self.optimizer_factory = optimizer
        self.recognizer_input_size = input_size_of(recognizer, recognizer_input_size)
        self.collectors = nn.ModuleDict()
        self.quality = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {"ssim": SSIM(), "psnr": PSNR(), "perceptual": MeanMetric(), "l1": MeanMetric()}
                )
                for stage in STAGES
            }
        )

    @property
    def requires_checkpoint(self) -> bool:
        """Evaluation needs trained weights: a Lightning checkpoint, unless released weights were loaded."""
        return not self.hparams.embedder_weights

    # ------------------------------------------------------------------------------------------------
    # Building blocks
    # ------------------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> ProFaceModule:
        """Lightning switches modes around validation; the frozen recognizer must stay in eval mode."""
        super().train(mode)
        self.recognizer.eval()
        return self

    def _generator(self) -> torch.Generator:
        """Per-step, per-rank generator for the obfuscator's random strengths (reproducible runs)."""
        seed = (int(self.hparams.obfuscator_seed) * 1_000_003 + self.global_step) * 4096 + self.global_rank
        return torch.Generator().manual_seed(seed)

    def to_model(self, images: Tensor) -> Tensor:
        """[0, 1] images → the embedder's range."""
        return to_signed(images) if self.signed else images

    def to_unit(self, x: Tensor) -> Tensor:
        """Faces in the embedder's range → [0, 1]."""
        return to_unit(x) if self.signed else x

    def to_signed(self, x: Tensor) -> Tensor:
        """Faces in the embedder's range → [-1, 1] (the perceptual loss's range)."""
        return x if self.signed else to_signed(x)

    def clamp(self, x: Tensor) -> Tensor:
        """Clamp to the embedder's range (evaluation clamps, as the authors' code does)."""
        return x.clamp(-1.0 if self.signed else 0.0, 1.0)

    def obfuscate(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The conventional obfuscation of ``x`` (in the embedder's range, in and out)."""
        return self.to_model(self.obfuscator(self.to_unit(x), generator=generator or self._generator()))

    def forward(self, x: Tensor, x_o: Tensor | None = None) -> Tensor:
        """Protected faces ``G(x, x_o)`` of faces in the embedder's range (raw: unclamped, as trained)."""
        return self.embedder(x, self.obfuscate(x) if x_o is None else x_o)

    def embed(self, x: Tensor) -> Tensor:
        """Recognizer embeddings of faces in the embedder's range (resized bicubic to its input size)."""
        size = self.recognizer_input_size
        unit = self.to_unit(x)
        if tuple(unit.shape[-2:]) != (size, size):
            unit = F.interpolate(unit, size=(size, size), mode="bicubic", align_corners=False)
        embeddings = self.recognizer(unit)
        return F.normalize(embeddings, dim=1) if self.hparams.normalize_embeddings else embeddings

    # ------------------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------------------

    def losses(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The four loss terms and their weighted sum on a triplet batch (anchor, positive, negative)."""
        for key in ("image", "image_positive", "image_negative"):
            if key not in batch:
                raise ValueError(
                    f"PRO-Face trains on triplets: no '{key}' in the batch (set train_protocol=triplets)"
                )
        n = batch["image"].shape[0]
        x = self.to_model(torch.cat([batch["image"], batch["image_positive"], batch["image_negative"]]))
        x_o = self.obfuscate(x)
        x_p = self.embedder(x, x_o)
        e_anchor, e_positive, e_negative = self.embed(x_p).split(n)
        with torch.no_grad():
            e_original = self.embed(x[:n])
        margin = float(self.hparams.triplet_margin)
        terms = {
            "vis": self.perceptual(self.to_signed(x_o[:n]), self.to_signed(x_p[:n])),
            "l1": (x_o[:n] - x_p[:n]).abs().mean(),
            "p2p": F.triplet_margin_loss(e_anchor, e_positive, e_negative, margin=margin),
            "p2o": F.triplet_margin_loss(e_anchor, e_original, e_negative, margin=margin),
        }
        terms["loss"] = sum(self.loss_weights[k] * terms[k] for k in LOSS_TERMS)
        return terms

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step of ``G``; logs every term (the visual one under its metric's name)."""
        terms = self.losses(batch)
        size = batch["image"].shape[0]
        names = {"vis": self.perceptual.report_name, "l1": "l1", "p2p": "triplet_p2p", "p2o": "triplet_p2o"}
        self.log("train/loss", terms["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for key, name in names.items():
            self.log(f"train/{name}", terms[key], on_step=True, on_epoch=True, batch_size=size)
        return terms["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on the fusion network only (paper: lr 1e-3, no scheduler)."""
        return self.optimizer_factory(self.embedder.parameters())

    # ------------------------------------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------------------------------------

    def _versions(self, images: Tensor, stage: str) -> dict[str, Tensor]:
        """Embeddings of the original, obfuscated and protected versions; updates the image metrics."""
        x = self.to_model(images)
        x_o = self.obfuscate(x)
        x_p = self.clamp(self.embedder(x, x_o))  # evaluation clamps, as the authors' code does
        quality = self.quality[stage]
        quality["ssim"].update(self.to_unit(x_p), self.to_unit(x_o))
        quality["psnr"].update(self.to_unit(x_p), self.to_unit(x_o))
        quality["perceptual"].update(self.perceptual.per_sample(self.to_signed(x_p), self.to_signed(x_o)))
        quality["l1"].update((x_p - x_o).abs().flatten(1).mean(1))
        return {"original": self.embed(x), "obfuscated": self.embed(x_o), "protected": self.embed(x_p)}

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        protocol = batch_protocol(batch)
        key = f"{stage}_{protocol}"
        if key not in self.collectors:
            self.collectors[key] = ProtectionEmbeddings(protocol).to(self.device)
        collector = self.collectors[key]
        if protocol == "images":
            collector.add_images(self._versions(batch["image"], stage), batch["identity"], batch["index"])
        else:
            sides = [self._versions(batch[f"image_{side}"], stage) for side in "ab"]
            collector.add_pairs(*sides, batch["is_same"], batch["fold"], batch["index"])

    def on_validation_start(self) -> None:
        """Fixed evaluation strength for the obfuscator."""
        self.obfuscator.eval()

    def on_test_start(self) -> None:
        """Fixed evaluation strength for the obfuscator."""
        self.obfuscator.eval()

    def on_train_start(self) -> None:
        """Random training strengths for the obfuscator."""
        self.obfuscator.train()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _finish_eval(self, stage: str) -> ProtectionResult | None:
        """Verification in the four settings plus image metrics; logged as ``<stage>/<setting>/<metric>``."""
        result = None
        for key in [k for k in self.collectors if k.startswith(f"{stage}_")]:
            collector = self.collectors[key]
            result = evaluate_protection(
                collector,
                distance=self.hparams.distance,
                fars=tuple(self.hparams.fars),
                num_pairs=int(self.hparams.num_pairs),
                pair_seed=int(self.hparams.pair_seed),
            )
            collector.reset()
            for setting, summary in result.settings.items():
                for metric in REPORTED:
                    self.log(f"{stage}/{setting}/{metric}", float(summary[metric]), sync_dist=False)
                for far, tar in summary["tar_at_far_fold_mean"].items():
                    self.log(f"{stage}/{setting}/tar_at_far/{far:g}", float(tar), sync_dist=False)
            self.log(f"{stage}/num_pairs", float(result.num_pairs), sync_dist=False)
        quality = self.quality[stage]
        names = {"ssim": "ssim", "psnr": "psnr", "perceptual": self.perceptual.report_name, "l1": "l1"}
        for key, name in names.items():
            if quality[key]._update_count:
                self.log(f"{stage}/{name}_prot_obf", quality[key].compute(), sync_dist=False)
            quality[key].reset()
        return result

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val")

    def on_test_epoch_end(self) -> None:
        result = self._finish_eval("test")
        if result is not None:
            self._log_figures(result)

    def _log_figures(self, result: ProtectionResult) -> None:
        """ROC curves of the four settings and the XDR similarity histogram, in the run record and W&B."""
        labels = result.is_same.numpy()
        curves = {PAPER_NAMES[s]: (scores.numpy(), labels) for s, scores in result.scores.items()}
        log_figure(self, "test/roc_settings", roc_curve_figure(curves, log_x=True, title="PRO-Face settings"))
        if "prot_orig" in result.scores:
            scores = result.scores["prot_orig"]
            fig = similarity_histogram(
                scores[result.is_same].numpy(),
                scores[~result.is_same].numpy(),
                title="XDR: protected vs original",
            )
            log_figure(self, "test/similarity_xdr", fig)

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row per verification setting (paper names), with the image metrics of ``x_p`` vs ``x_o``."""
        fars = [float(f) for f in self.hparams.fars]
        rows: list[dict[str, Any]] = []
        for key, paper in PAPER_NAMES.items():
            row: dict[str, Any] = {
                "obfuscator": self.hparams.obfuscator_name,
                "recognizer": self.hparams.recognizer_name,
                "setting": paper,
                "accuracy": metrics.get(f"test/{key}/accuracy", float("nan")),
                "±std": metrics.get(f"test/{key}/accuracy_std", float("nan")),
            }
            for far in fars:
                row[f"TAR@FAR={far:g}"] = metrics.get(f"test/{key}/tar_at_far/{far:g}", float("nan"))
            row["AUC"] = metrics.get(f"test/{key}/auc", float("nan"))
            rows.append(row)
        table = pd.DataFrame(rows)
        for name in ("ssim", "psnr", self.perceptual.report_name):
            table[f"{name} (x_p vs x_o)"] = metrics.get(f"test/{name}_prot_obf", float("nan"))
        return table
