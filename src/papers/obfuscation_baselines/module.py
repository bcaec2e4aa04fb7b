"""Classical obfuscation baselines (blur, median, pixelate, mask, noise) judged by a frozen recognizer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from src.evaluation.collector import TensorCollector
from src.evaluation.identity_protocol import evaluate_identity, order_by_index, pair_scores
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.metrics.image_quality import PSNR, SSIM
from src.metrics.plots import roc_curve_figure, similarity_histogram
from src.obfuscators.base import Obfuscator
from src.papers.registry import register_paper
from src.utils.checkpoints import load_network

TRAINING_ONLY_KEYS = {"name", "sigma_range", "kernel_range", "block_range", "std_range", "jitter"}
IDENTITY_COLUMNS = ("verif_acc", "verif_acc_std", "rank1", "rank5", "genuine_cos", "impostor_cos")
PAIR_SOURCES = ("derived", "dataset")


@register_paper(
    "obfuscation_baselines",
    title="Classical obfuscation baselines",
    venue="-",
    kind="baseline",
    formerly=("src.lightning_modules.obfuscation_baselines.ObfuscationBaselinesModule",),
)
class ObfuscationBaselinesModule(LabModule):
    """Evaluation only: obfuscate each test image with every obfuscator; score quality and identity leakage.

    Per obfuscator: PSNR and SSIM of the obfuscated image against the clean one, and the identity protocol
    of :mod:`src.evaluation.identity_protocol` with obfuscated probes against the clean gallery (lower
    verification accuracy and rank-1 mean better privacy). The row ``none`` is the recognizer on clean images.

    The recognizer is either a trained ``face_recognizer`` checkpoint (``recognizer_ckpt``) or a zoo
    recognizer (``recognizer``, e.g. the offline ``dlib_resnet`` on real faces) — exactly one of them.
    ``pairs``: ``derived`` draws ``num_pairs`` verification pairs from the identity labels with ``pair_seed``;
    ``dataset`` uses the DataModule's own pair list and folds (``pair_list("test")``, e.g. LFW ``pairs.txt``).
    """

    requires_checkpoint = False  # nothing is trained; the recognizer comes from recognizer_ckpt or the zoo

    def __init__(
        self,
        obfuscators: Mapping[str, Obfuscator],
        recognizer_ckpt: str | None = None,
        num_pairs: int = 2000,
        pair_seed: int = 0,
        recognizer: nn.Module | None = None,
        pairs: str = "derived",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["obfuscators", "recognizer"])
        if not obfuscators:
            raise ValueError("ObfuscationBaselinesModule needs at least one obfuscator")
        if (recognizer is None) == (recognizer_ckpt is None):
            raise ValueError(
                "ObfuscationBaselinesModule needs exactly one of model.recognizer_ckpt (a face_recognizer "
                "checkpoint) and model.recognizer (a zoo recognizer); got "
                + ("both" if recognizer is not None else "neither")
            )
        if pairs not in PAIR_SOURCES:
            raise ValueError(f"model.pairs must be one of {PAIR_SOURCES}, got {pairs!r}")
        self.recognizer = recognizer if recognizer is not None else load_network(Path(recognizer_ckpt), "net")
        self.recognizer.eval().requires_grad_(False)
        self.obfuscators = nn.ModuleDict(dict(obfuscators))
        self.psnr = nn.ModuleDict({name: PSNR() for name in self.obfuscators})
        self.ssim = nn.ModuleDict({name: SSIM() for name in self.obfuscators})
        self.outputs = TensorCollector(["clean", "label", "index", *(f"obf_{n}" for n in self.obfuscators)])

    def on_test_start(self) -> None:
        """Obfuscators use their fixed evaluation strength; the recognizer stays frozen."""
        self.obfuscators.eval()
        self.recognizer.eval()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Obfuscate the batch with every obfuscator; update quality metrics and collect embeddings."""
        images = batch["image"]
        generator = torch.Generator(device="cpu").manual_seed(
            int(self.hparams.pair_seed) + int(batch["index"][0])
        )
        embeddings = {"clean": self.recognizer(images), "label": batch["identity"], "index": batch["index"]}
        for name, obfuscator in self.obfuscators.items():
            obfuscated = obfuscator(images, generator=generator)
            self.psnr[name].update(obfuscated, images)
            self.ssim[name].update(obfuscated, images)
            embeddings[f"obf_{name}"] = self.recognizer(obfuscated)
        self.outputs.update(**embeddings)

    def on_test_epoch_end(self) -> None:
        """Identity metrics per obfuscator over all test images (gathered from every rank)."""
        outputs = self.outputs.compute()
        self.outputs.reset()
        names = list(self.obfuscators)
        index, clean, labels, *obfuscated = order_by_index(
            outputs["index"], outputs["clean"], outputs["label"], *(outputs[f"obf_{n}"] for n in names)
        )
        pairs, fold_ids = self._dataset_pairs(index) if self.hparams.pairs == "dataset" else (None, None)
        protocol = {"num_pairs": self.hparams.num_pairs, "pair_seed": self.hparams.pair_seed, "pairs": pairs}
        curves = {}
        for name, probe in zip(names, obfuscated, strict=True):
            results = evaluate_identity(clean, labels, probe, **protocol, fold_ids=fold_ids)
            scores, is_same = pair_scores(clean, labels, probe, **protocol)
            curves[name] = (scores.numpy(), is_same.numpy())
            results["psnr"] = float(self.psnr[name].compute())
            results["ssim"] = float(self.ssim[name].compute())
            self.psnr[name].reset()
            self.ssim[name].reset()
            for metric, value in results.items():
                self.log(f"test/{name}/{metric}", value, sync_dist=False)
        title = "Obfuscated probes vs clean gallery"
        log_figure(self, "test/roc_obfuscators", roc_curve_figure(curves, log_x=True, title=title))
        for name, (scores, is_same) in curves.items():
            fig = similarity_histogram(scores[is_same], scores[~is_same], title=f"{name}: probe vs clean")
            log_figure(self, f"test/similarity/{name}", fig)

    def _dataset_pairs(self, index: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor]:
        """The DataModule's test pairs as rows of the gathered outputs (sorted ``index``), and their folds."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "pair_list"):
            raise ValueError(
                f"model.pairs=dataset needs a DataModule with a verification pair list (e.g. LFW); "
                f"{type(datamodule).__name__} has none — use model.pairs=derived"
            )
        pair_list = datamodule.pair_list("test").tensors()
        index = index.cpu()
        rows = []
        for side in ("index_a", "index_b"):
            wanted = pair_list[side]
            row = torch.searchsorted(index, wanted).clamp_(max=index.numel() - 1)
            missing = wanted[index[row] != wanted]
            if missing.numel():
                raise ValueError(
                    f"{missing.numel()} test image(s) of the pair list were not evaluated (dataset positions "
                    f"{missing[:5].tolist()}...): limit_test_batches must not cut the test set"
                )
            rows.append(row)
        return (rows[0], rows[1], pair_list["is_same"]), pair_list["fold"]

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row per obfuscator: its evaluation setting, PSNR, SSIM and identity metrics."""
        return results_rows(self.obfuscators, metrics)

    def configure_optimizers(self) -> None:
        """Nothing to train."""
        return None


def results_rows(obfuscators: Mapping[str, Any], metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per obfuscator (anything with ``describe()``): its evaluation setting, PSNR, SSIM and the
    identity metrics from ``metrics`` (``test/<name>/<column>``); shared by the run's table and the report."""
    rows = []
    for name, obfuscator in obfuscators.items():
        setting = {k: v for k, v in obfuscator.describe().items() if k not in TRAINING_ONLY_KEYS}
        row: dict[str, object] = {
            "obfuscator": name,
            "eval setting": ", ".join(f"{k}={v}" for k, v in setting.items()) or "-",
        }
        for column in ("psnr", "ssim", *IDENTITY_COLUMNS):
            row[column] = metrics.get(f"test/{name}/{column}", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)
