"""The Inspector's four training stages as LightningModules (docs/papers/inspector.md).

=====  ================================  ==================================================================
stage  module                            trains (earlier parts frozen: eval mode, no gradients, outside DDP)
=====  ================================  ==================================================================
1      :class:`InspectorDetector`        D: cross-entropy on real/fake frames (a frame detector)
2      :class:`InspectorReconstructor`   G: MSE(G(feats(x)), x) on clean frames, both in [-1, 1]
3      :class:`InspectorAutoThresh`      A: CE(A([G(feats(x)); G(feats(x_adv))]), [0; 1]), x_adv = PGD on D
4      :class:`InspectorCorrector`       C: BCE(π(x_adv), s) on frames D gets right, s = the attack succeeded;
                                         its test runs the robust-accuracy protocol of the whole defence
=====  ================================  ==================================================================

Each later stage reads one checkpoint of the stage before it from its config
(:mod:`src.papers.inspector.stage_checkpoints`); its own checkpoint then holds every part so far, so the
stage-4 checkpoint alone is the trained defence. Attacks run in fp32 with D in eval mode, seeded per
(run seed, epoch, batch, rank).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.attacks import build_attack
from src.evaluation.collector import TensorCollector
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.lightning_modules.frame_detector import FrameDetectorModule
from src.metrics.detection import accuracy_at_threshold
from src.metrics.plots import epsilon_protection_curve
from src.networks.detectors import DetectorNet
from src.papers.inspector.defense import InspectorDefense
from src.papers.inspector.networks import (
    FEATURE_CHANNELS,
    AutoThresholder,
    Corrector,
    Reconstructor,
    attack_probability,
    feature_blocks,
    multilevel_features,
)
from src.papers.inspector.protocol import (
    COLUMNS,
    evaluate_batch,
    protocol_settings,
    stream_seed,
    summarise,
    table_from_metrics,
    table_metrics,
)
from src.papers.inspector.stage_checkpoints import StageCheckpointError, freeze, load_stage_parts
from src.papers.registry import register_paper
from src.utils.run_record import ENV_RUN_DIR

#: the original's stage-3 attack: PGD L-inf, ε 4/255, α 2/255, 5 steps, random start
PGD_TRAIN = {"attack": "pgd", "eps": 4, "alpha": 2, "steps": 5, "random_start": True}
#: the original's auto-thresholder test attack (test_autothresh): FGSM, ε 4/255
FGSM_TEST = {"attack": "fgsm", "eps": 4}
#: the original's corrector attack: PGD, α 2/255, 5 steps (ε drawn per batch up to ``train_eps_max``)
PGD_CORRECTOR = {"attack": "pgd", "alpha": 2, "steps": 5, "random_start": True}
#: the keys of ``model.evaluation`` (docs/papers/inspector.md, "Robust-accuracy protocol")
EVALUATION_KEYS = ("eps", "attacks", "only", "seed", "randomize", "frame_stride")
#: the original's corrector validation ε, in /255 (2e-4 ... 1e-3 in [0, 1] pixel units)
VAL_EPS = (0.0, 0.051, 0.102, 0.153, 0.255)


class InspectorDetector(FrameDetectorModule):
    """Stage 1: the forgery detector D, a frame detector (cross-entropy; Adam 2e-4, weight decay 1e-5,
    StepLR(20, 0.1) in the experiment file), tested with the frame/video detection protocol."""


def _attack_spec(spec: Mapping[str, Any] | None, default: Mapping[str, Any], key: str) -> dict[str, Any]:
    merged = {**default, **(spec or {})}
    if "attack" not in merged:
        raise ValueError(f"{key} needs an 'attack' name")
    return merged


class _FrozenDetectorStage(LabModule):
    """Stages 2-4: a frozen detector ``net`` and further frozen parts (``frozen``), one trained part.

    Frozen parts stay in eval mode whatever ``train()`` says, and are kept out of DDP's parameter and
    buffer synchronisation (their weights are the same checkpoint on every rank)."""

    frozen: tuple[str, ...] = ("net",)
    stage_name = ""
    ckpt_key = ""

    def __init__(
        self,
        net: DetectorNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None,
        head_channels: Sequence[int],
        random_dependencies: bool,
    ) -> None:
        super().__init__()
        feature_blocks(net)  # refuses detectors without multi-level features, naming them
        self.net = net
        self.reconstructor = Reconstructor(FEATURE_CHANNELS[net.name], head_channels)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.random_dependencies = bool(random_dependencies)
        self.dependencies_from: str | None = None

    def load_dependencies(self, path: str | None) -> None:
        """Load the frozen parts from the previous stage's checkpoint (``path``; ``None``: later, or never
        with ``random_dependencies``), then freeze them."""
        if path is not None:
            parts = {name: getattr(self, name) for name in self.frozen}
            self.dependencies_from = load_stage_parts(path, self.stage_name, self.ckpt_key, parts)
        for name in self.frozen:
            freeze(getattr(self, name))

    def on_fit_start(self) -> None:
        """Training needs the previous stage's weights (random ones only when asked for: tests)."""
        if self.dependencies_from is None and not self.random_dependencies:
            raise StageCheckpointError(
                f"Inspector stage '{self.stage_name}' ({self.ckpt_key}): no checkpoint given; pass "
                f"{self.ckpt_key}=<best.ckpt of the previous stage>"
            )

    def setup(self, stage: str) -> None:
        """Keep frozen parameters and buffers out of DDP (no broadcast, no gradient buckets)."""
        names = [
            f"{part}.{name}"
            for part in self.frozen
            for name, _ in (*getattr(self, part).named_parameters(), *getattr(self, part).named_buffers())
        ]
        self._ddp_params_and_buffers_to_ignore = names

    def train(self, mode: bool = True) -> _FrozenDetectorStage:
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def reconstruct(self, images: Tensor) -> Tensor:
        """G(feats(x)) in ``[-1, 1]`` for images in ``[0, 1]``."""
        _, features = multilevel_features(self.net, images)
        return self.reconstructor(features, images.shape[-2:])

    def attack(
        self, spec: Mapping[str, Any], images: Tensor, labels: Tensor, batch_idx: int, **over: Any
    ) -> Tensor:
        """Adversarial images against D (fp32, D in eval mode), seeded by (epoch, batch, rank)."""
        options = {**spec, **over}
        name, eps = options.pop("attack"), options.pop("eps")
        seed = stream_seed(self.attack_seed, self.current_epoch, batch_idx, self.global_rank, self.training)
        return build_attack(name, self.net, eps=eps, seed=seed, **options)(images, labels)

    def configure_optimizers(self) -> Any:
        """The optimizer over the trained part and, if given, its epoch-level scheduler."""
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def _log_all(self, prefix: str, values: Mapping[str, Tensor | float], size: int | None = None) -> None:
        for key, value in values.items():
            self.log(
                f"{prefix}/{key}", value, prog_bar=key in ("loss", "acc", "acc_mean", "mse"), batch_size=size
            )


class InspectorReconstructor(_FrozenDetectorStage):
    """Stage 2: the reconstructor G, MSE between G(feats(x)) and x in ``[-1, 1]`` on clean frames; validated
    (and selected) by ``val/mse`` of the reconstruction in ``[0, 1]`` (the loss / 4)."""

    stage_name = "reconstructor"
    ckpt_key = "model.detector_ckpt"

    def __init__(
        self,
        net: DetectorNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        detector_ckpt: str | None = None,
        head_channels: Sequence[int] = (64, 32),
        random_dependencies: bool = False,
    ) -> None:
        super().__init__(net, optimizer, scheduler, head_channels, random_dependencies)
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.load_dependencies(detector_ckpt)
        self.errors = nn.ModuleDict({split: TensorCollector(("mse",)) for split in ("val", "test")})

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        images = batch["image"]
        loss = F.mse_loss(self.reconstruct(images), images * 2 - 1)
        self._log_all("train", {"loss": loss.detach()}, images.shape[0])
        return loss

    def _score(self, split: str, batch: dict[str, Tensor]) -> None:
        images = batch["image"]
        recon = (self.reconstruct(images) + 1) / 2
        self.errors[split].update(mse=((recon - images) ** 2).flatten(1).mean(1).double())

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch)

    def _epoch_end(self, split: str) -> None:
        mse = self.errors[split].compute()["mse"]
        self.errors[split].reset()
        if not self.trainer.sanity_checking:
            psnr = 10 * torch.log10(1.0 / mse.mean())
            self._log_all(split, {"mse": mse.mean().float(), "psnr": psnr.float()})

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")


class InspectorAutoThresh(_FrozenDetectorStage):
    """Stage 3: the auto-thresholder A on reconstructions of clean (class 0) and PGD (class 1) frames.

    Validation reconstructs both halves (the original fed the raw image for the clean half) and selects
    on ``val/acc_mean``, the mean of the clean and adversarial accuracies; the test attack is the original
    test script's FGSM ε 4/255."""

    frozen = ("net", "reconstructor")
    stage_name = "autothresh"
    ckpt_key = "model.reconstructor_ckpt"

    def __init__(
        self,
        net: DetectorNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        reconstructor_ckpt: str | None = None,
        head_channels: Sequence[int] = (64, 32),
        autothresh: Mapping[str, Any] | None = None,
        train_attack: Mapping[str, Any] | None = None,
        test_attack: Mapping[str, Any] | None = None,
        attack_seed: int = 0,
        random_dependencies: bool = False,
    ) -> None:
        super().__init__(net, optimizer, scheduler, head_channels, random_dependencies)
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.autothresh = AutoThresholder(**dict(autothresh or {}))
        self.load_dependencies(reconstructor_ckpt)
        self.train_attack = _attack_spec(train_attack, PGD_TRAIN, "model.train_attack")
        self.test_attack = _attack_spec(test_attack, FGSM_TEST, "model.test_attack")
        self.attack_seed = int(attack_seed)
        names = ("correct", "adversarial")
        self.scores = nn.ModuleDict({split: TensorCollector(names) for split in ("val", "test")})

    def _halves(
        self, batch: dict[str, Tensor], batch_idx: int, spec: Mapping[str, Any]
    ) -> tuple[Tensor, Tensor]:
        images, labels = batch["image"], batch["label"].long()
        adversarial = self.attack(spec, images, labels, batch_idx)
        with torch.no_grad():
            recon = self.reconstruct(torch.cat([images, adversarial]))
        n = images.shape[0]
        target = torch.cat([torch.zeros(n), torch.ones(n)]).long().to(images.device)
        return recon, target

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        recon, target = self._halves(batch, batch_idx, self.train_attack)
        logits = self.autothresh(recon)
        loss = F.cross_entropy(logits, target)
        accuracy = (logits.detach().argmax(1) == target).float().mean()
        self._log_all("train", {"loss": loss.detach(), "acc": accuracy}, recon.shape[0])
        return loss

    def _score(self, split: str, batch: dict[str, Tensor], batch_idx: int, spec: Mapping[str, Any]) -> None:
        recon, target = self._halves(batch, batch_idx, spec)
        with torch.no_grad():
            correct = self.autothresh(recon).argmax(1) == target
        self.scores[split].update(correct=correct, adversarial=target.bool())

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch, batch_idx, self.train_attack)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch, batch_idx, self.test_attack)

    def _epoch_end(self, split: str) -> None:
        out = self.scores[split].compute()
        self.scores[split].reset()
        if self.trainer.sanity_checking:
            return
        correct, adversarial = out["correct"].double(), out["adversarial"]
        clean_acc, adv_acc = correct[~adversarial].mean(), correct[adversarial].mean()
        values = {"acc_clean": clean_acc, "acc_adv": adv_acc, "acc_mean": (clean_acc + adv_acc) / 2}
        self._log_all(split, {k: v.float() for k, v in values.items()})

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")


@register_paper(
    "inspector",
    title="Inspector for Face Forgery Detection: Defending Against Adversarial Attacks From Coarse to Fine",
    venue="IEEE TIP 2024",
    kind="security",
    stages=(InspectorDetector, InspectorReconstructor, InspectorAutoThresh),
)
class InspectorCorrector(_FrozenDetectorStage):
    """Stage 4: the corrector C, and the evaluation of the whole defence.

    Training keeps the frames D classifies correctly, attacks them with PGD at ε ~ U(0, ``train_eps_max``)
    (one ε per batch; /255 units, 0.255 = 0.001 in [0, 1]) and fits π(x_adv) = Σ σ(C(x_adv)) softmax(D(x_adv))
    to s = 1[D is fooled] with binary cross-entropy. A batch with fewer than two such frames (BatchNorm needs
    two) contributes a zero loss, so every DDP rank still takes the step. Validation cycles the ε of
    ``val_eps`` over batches and selects on ``val/acc``, the accuracy of π > ``threshold`` at predicting s.
    The test runs the robust-accuracy protocol (:mod:`src.papers.inspector.protocol`) set by ``evaluation``.
    """

    frozen = ("net", "reconstructor", "autothresh")
    stage_name = "corrector"
    ckpt_key = "model.autothresh_ckpt"

    def __init__(
        self,
        net: DetectorNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        autothresh_ckpt: str | None = None,
        head_channels: Sequence[int] = (64, 32),
        autothresh: Mapping[str, Any] | None = None,
        corrector: Mapping[str, Any] | None = None,
        train_attack: Mapping[str, Any] | None = None,
        train_eps_max: float = 0.255,
        val_eps: Sequence[float] = VAL_EPS,
        threshold: float = 0.5,
        evaluation: Mapping[str, Any] | None = None,
        attack_seed: int = 0,
        random_dependencies: bool = False,
    ) -> None:
        super().__init__(net, optimizer, scheduler, head_channels, random_dependencies)
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        autothresh = {k: v for k, v in dict(autothresh or {}).items() if k != "weights"}
        self.autothresh = AutoThresholder(**autothresh)  # its weights come from the stage-3 checkpoint
        self.corrector = Corrector(**dict(corrector or {}))
        self.load_dependencies(autothresh_ckpt)
        if train_eps_max < 0 or not val_eps:
            raise ValueError("model.train_eps_max must be >= 0 and model.val_eps non-empty")
        self.train_attack = _attack_spec(train_attack, PGD_CORRECTOR, "model.train_attack")
        self.train_eps_max, self.val_eps = float(train_eps_max), tuple(float(e) for e in val_eps)
        self.threshold = float(threshold)
        self.attack_seed = int(attack_seed)
        evaluation = dict(evaluation or {})
        unknown = sorted(set(evaluation) - set(EVALUATION_KEYS))
        if unknown:
            raise ValueError(
                f"model.evaluation: unknown key(s) {unknown}; expected {', '.join(EVALUATION_KEYS)}"
            )
        self.settings = protocol_settings(
            evaluation.get("attacks"), evaluation.get("eps", ()), evaluation.get("only")
        )
        self.eval_seed = int(evaluation.get("seed", 0))
        self.randomize = bool(evaluation.get("randomize", True))
        self.frame_stride = int(evaluation.get("frame_stride", 1))
        if self.frame_stride < 1:
            raise ValueError(f"model.evaluation.frame_stride must be >= 1, got {self.frame_stride}")
        self.val_scores = TensorCollector(("probability", "success"))
        self.protocol = TensorCollector(COLUMNS)
        self.last_table: pd.DataFrame | None = None

    # --- training -----------------------------------------------------------------------------------
    def _judged(self, batch: dict[str, Tensor], batch_idx: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        """(adversarial frames, D's logits on them, s) for the frames D gets right when clean."""
        images, labels = batch["image"], batch["label"].long()
        with torch.no_grad():
            right = self.net(images).argmax(1) == labels
        images, labels = images[right], labels[right]
        if images.shape[0] == 0:
            return images, images.new_zeros(0, 2), labels.float()
        adversarial = (
            self.attack(self.train_attack, images, labels, batch_idx, eps=eps) if eps > 0 else images
        )
        with torch.no_grad():
            logits = self.net(adversarial)
        return adversarial, logits, (logits.argmax(1) != labels).float()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        seed = stream_seed(self.attack_seed, self.current_epoch, batch_idx, self.global_rank, 7)
        eps = float(torch.rand((), generator=torch.Generator().manual_seed(seed))) * self.train_eps_max
        adversarial, logits, success = self._judged(batch, batch_idx, eps)
        if adversarial.shape[0] < 2:  # BatchNorm needs two frames; a zero loss keeps DDP ranks in step
            loss = sum(p.sum() for p in self.corrector.parameters()) * 0.0
            self._log_all(
                "train", {"loss": loss.detach(), "kept": adversarial.shape[0] / batch["image"].shape[0]}
            )
            return loss
        probability = attack_probability(self.corrector(adversarial), logits).clamp(1e-6, 1 - 1e-6)
        loss = F.binary_cross_entropy(probability, success)
        accuracy = ((probability.detach() > self.threshold).float() == success).float().mean()
        kept = adversarial.shape[0] / batch["image"].shape[0]
        self._log_all(
            "train", {"loss": loss.detach(), "acc": accuracy, "kept": kept, "success": success.mean()}
        )
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        eps = self.val_eps[batch_idx % len(self.val_eps)]
        adversarial, logits, success = self._judged(batch, batch_idx, eps)
        with torch.no_grad():
            probability = attack_probability(self.corrector(adversarial), logits)
        self.val_scores.update(probability=probability.double(), success=success.long())

    def on_validation_epoch_end(self) -> None:
        if self.val_scores.is_empty():
            self.val_scores.reset()
            return
        out = self.val_scores.compute()
        self.val_scores.reset()
        if self.trainer.sanity_checking or out["success"].numel() == 0:
            return
        accuracy = accuracy_at_threshold(out["probability"].cpu(), out["success"].cpu(), self.threshold)
        self._log_all("val", {"acc": accuracy, "success": float(out["success"].double().mean())})

    # --- the defence and its evaluation -------------------------------------------------------------
    def defense(self) -> InspectorDefense:
        """The trained defence (D, G, A, C) for inference; freezes C as well."""
        return InspectorDefense(
            self.net,
            self.reconstructor,
            self.autothresh,
            self.corrector,
            self.randomize,
            self.eval_seed,
            self.threshold,
        )

    def on_test_epoch_start(self) -> None:
        trainable = [p.requires_grad for p in self.corrector.parameters()]
        self.__dict__["_defense"] = self.defense()  # not a submodule: its parts are this module's own
        self.__dict__["_corrector_flags"] = trainable

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        seed = stream_seed(self.eval_seed, batch_idx, self.global_rank)
        step = self.frame_stride  # every k-th frame of each batch: a cheaper protocol
        images, labels = batch["image"][::step], batch["label"][::step]
        columns = evaluate_batch(self.__dict__["_defense"], images, labels, self.settings, seed)
        self.protocol.update(**columns)

    def on_test_epoch_end(self) -> None:
        for parameter, flag in zip(
            self.corrector.parameters(), self.__dict__.pop("_corrector_flags"), strict=True
        ):
            parameter.requires_grad_(flag)  # the defence froze C for the evaluation only
        columns = self.protocol.compute()
        self.protocol.reset()
        table = summarise(columns, self.settings, self.threshold)
        self.last_table = table
        for name, value in table_metrics(table, self.settings).items():
            self.log(name, value, sync_dist=False, rank_zero_only=False)
        if not self.trainer.is_global_zero:
            return
        run_dir = os.environ.get(ENV_RUN_DIR)
        if run_dir:
            folder = Path(run_dir, "predictions")
            folder.mkdir(parents=True, exist_ok=True)
            table.to_csv(folder / "robust_accuracy.csv", index=False, float_format="%.6f")
        figure = accuracy_vs_eps_figure(table)
        if figure is not None:
            log_figure(self, "test/robust_accuracy", figure)

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """The protocol table: one row per attack and ε (clean first)."""
        return table_from_metrics(metrics)


def accuracy_vs_eps_figure(table: pd.DataFrame) -> Any:
    """Accuracy against ε for every bounded attack: the undefended detector and the defence (rejections
    counted as correct); ``None`` when no attack has two ε."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for attack, rows in table[table["attack"] != "clean"].groupby("attack", sort=True):
        rows = rows.dropna(subset=["eps"]).sort_values("eps")
        if len(rows) < 2:
            continue
        eps = rows["eps"].tolist()
        series[f"{attack}: undefended"] = (eps, rows["undefended_acc"].tolist())
        series[f"{attack}: defended"] = (eps, rows["robust_acc"].tolist())
    if not series:
        return None
    figure = None
    for name, (eps, values) in series.items():
        figure = epsilon_protection_curve(
            eps,
            values,
            label=name,
            fig=figure,
            xlabel="ε (/255)",
            ylabel="Accuracy",
            title="Accuracy under attack",
        )
    return figure
