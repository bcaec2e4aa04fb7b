"""PRO-Face C as a LightningModule: train the client ``A`` against a frozen server ``S``; test by 10-fold
verification of compensated obfuscated faces on the verification sets (docs/papers/proface_c.md).

Training step (the authors' ``train.py``): ``b = obfuscate(x)`` (the patch-grid hybrid, random per sample),
``r = (x - b) / 0.5`` (the residual in the server's normalised units), ``(a, k) = A(r)``,
``f_c = S(b; a, k)`` (compensated), ``f = S(x)`` (clear, no gradient);
``L = CE(ArcFace_{s, m}(f_c), y) + λ · MSE(f_c, f)`` with L2-normalised embeddings.

Evaluation: for each evaluation obfuscation and each verification set, the 10-fold accuracy (best threshold
on the other folds) of the compensated server, of the server on the obfuscated image alone
(``obfuscated``, no compensation) and of the server on the clear image (``clear``), plus the mean over the
sets. Every obfuscation is deterministic per image index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.config.errors import ConfigError
from src.evaluation.collector import TensorCollector
from src.lightning_modules.base import LabModule
from src.lightning_modules.heads import size_head_from_data
from src.metrics.verification import verification_accuracy
from src.networks.recognizers.stages import StagedRecognizer
from src.obfuscators.base import Obfuscator
from src.papers.proface_c.networks import ClientNetwork, compensated, server_stage_shapes
from src.papers.proface_c.obfuscation import evaluation_obfuscation
from src.papers.proface_c.report import table_from_metrics
from src.papers.proface_c.transmission import Transmission
from src.papers.proface_c.weights import load_authors_client
from src.papers.registry import register_paper
from src.utils.seeding import derive_seed

#: the rows of the table, in order: server on clear images, on obfuscated ones, and compensated
METHODS = ("clear", "obfuscated", "compensated")
MEAN = "mean"


def metric_name(stage: str, method: str, obfuscation: str | None, set_name: str) -> str:
    """``test/compensated/hybrid/lfw``, ``test/clear/lfw`` (the clear row has no obfuscation)."""
    return (
        f"{stage}/{method}/{set_name}" if method == "clear" else f"{stage}/{method}/{obfuscation}/{set_name}"
    )


def is_batchnorm_parameter(module: nn.Module) -> bool:
    """Whether a module's parameters are batch-norm affine ones (no weight decay, as torchkit's split)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def split_decay(network: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters of ``network`` without and with weight decay (batch norm / the rest)."""
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in network.modules():
        if is_batchnorm_parameter(module):
            for param in module.parameters(recurse=False):
                if param.requires_grad:
                    no_decay.append(param)
                    seen.add(id(param))
    decay = [p for p in network.parameters() if p.requires_grad and id(p) not in seen]
    return no_decay, decay


@register_paper(
    "proface_c",
    title="PRO-Face C: privacy-preserving recognition of obfuscated faces via feature compensation",
    venue="IEEE TIFS 2024",
    kind="privacy",
)
class ProFaceCModule(LabModule):
    """Client ``A`` + ArcFace head trained against the frozen server ``S``; verification-set evaluation.

    ``server``: a zoo :class:`StagedRecognizer` (AdaFace IR-101 in the paper) with its weights; it is frozen
    here. ``client``: :class:`ClientNetwork`, whose ``stage_shapes`` must be the server's stage outputs.
    ``obfuscator``: the training obfuscation (the patch-grid hybrid). ``eval_obfuscators``: name → the
    obfuscations of the table. ``client_weights``: the authors' ``Backbone.pth`` (``manifest:`` entry or a
    path) loaded into the client at construction. ``transmission``: optional quantisation of the maps and
    pruning of the client at test time (an extension, see :mod:`src.papers.proface_c.transmission`).
    """

    def __init__(
        self,
        server: StagedRecognizer,
        client: ClientNetwork,
        head: nn.Module,
        obfuscator: Obfuscator,
        eval_obfuscators: Mapping[str, Obfuscator],
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        head_weight_decay: float = 4e-4,
        milestones: Sequence[int] = (5, 10, 16, 22),
        gamma: float = 0.1,
        feature_weight: float = 1.0,
        baselines: bool = True,
        seed: int = 1567,
        client_weights: str | None = None,
        transmission: Transmission | None = None,
        evaluate_untrained: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False,
            ignore=["server", "client", "head", "obfuscator", "eval_obfuscators", "transmission"],
        )
        if not isinstance(server, StagedRecognizer):
            raise ConfigError(
                "model.server must be a zoo recognizer with stages (StagedRecognizer), got "
                f"{type(server).__name__}"
            )
        if not eval_obfuscators:
            raise ConfigError("model.eval_obfuscators must name at least one obfuscation to evaluate")
        self.server = server.freeze()
        shapes = server_stage_shapes(self.server)
        if [tuple(s) for s in client.stage_shapes] != shapes:
            raise ConfigError(
                f"model.client.stage_shapes {client.stage_shapes} do not match the server's stage outputs "
                f"{shapes} ({type(server).__name__} at {server.input_size[0]} px): set "
                "model.client.stage_shapes"
            )
        self.client, self.head = client, head
        if client_weights is not None:
            load_authors_client(self.client, client_weights)
        self.obfuscator = obfuscator
        self.eval_obfuscators = nn.ModuleDict(dict(eval_obfuscators))
        self.transmission = transmission
        self.set_names: list[str] = []
        self.outputs = nn.ModuleDict({stage: TensorCollector(self._collected()) for stage in ("val", "test")})

    @property
    def requires_checkpoint(self) -> bool:
        """Testing needs a trained client unless released weights are loaded or untrained is asked for."""
        return self.hparams.client_weights is None and not self.hparams.evaluate_untrained

    def _collected(self) -> list[str]:
        names = ["index", "set", "is_same", "fold", "score__clear"]
        for name in self.eval_obfuscators:
            names += [f"score__compensated__{name}", f"score__obfuscated__{name}"]
        return names

    # --- set-up -------------------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Size an unsized head from the training identities; remember the verification sets' names."""
        datamodule = self.trainer.datamodule
        verification = getattr(datamodule, "verification", datamodule)
        names = getattr(verification, "set_names", None)
        if names is None:
            raise ConfigError(
                f"{type(datamodule).__name__} has no verification sets: PRO-Face C is evaluated on "
                "verification pairs (datamodule=train_with_verification, or verification_bins for testing)"
            )
        self.set_names = list(names)
        if stage == "fit":
            size_head_from_data(self.head, datamodule)

    def on_train_epoch_start(self) -> None:
        """The server stays frozen (eval mode); the training obfuscation draws random strengths."""
        self.server.eval()
        self.obfuscator.train()

    # --- the networks -------------------------------------------------------------------------------------

    def residual(self, images: Tensor, obfuscated: Tensor) -> Tensor:
        """What the client sees: ``x - b(x)`` in the server's normalised units (the authors' scale)."""
        std = torch.tensor(self.server.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images - obfuscated) / std

    def compensated_embedding(self, images: Tensor, obfuscated: Tensor, quantize: bool = False) -> Tensor:
        """``S(b(x); A(x - b(x)), K)``, L2-normalised (``quantize``: through the transmission extension)."""
        maps, keys = self.client(self.residual(images, obfuscated))
        if quantize and self.transmission is not None:
            maps = self.transmission.transmit(maps)
        with compensated(self.server, maps, keys):
            return self.server.embed(obfuscated, normalize=True)

    def forward(self, images: Tensor, obfuscated: Tensor) -> Tensor:
        """Compensated embeddings of ``images`` obfuscated as ``obfuscated`` (both in [0, 1])."""
        return self.compensated_embedding(images, obfuscated)

    # --- training -----------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """``CE(ArcFace(f_c), y) + λ · MSE(f_c, S(x))`` on a freshly obfuscated batch."""
        images, labels = batch["image"], batch["identity"]
        generator = torch.Generator().manual_seed(
            derive_seed(self.hparams.seed, self.global_step, self.global_rank)
        )
        with torch.no_grad():
            obfuscated = self.obfuscator(images, generator=generator)
            target = self.server.embed(images, normalize=True)
        features = self.compensated_embedding(images, obfuscated)
        logits = self.head(features, labels)
        id_loss = F.cross_entropy(logits, labels)
        feature_loss = F.mse_loss(features, target)
        loss = id_loss + self.hparams.feature_weight * feature_loss
        size = images.shape[0]
        with torch.no_grad():
            accuracy = (self.head.cosine(features).argmax(1) == labels).float().mean()
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/id_loss", id_loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/feature_loss", feature_loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/acc", accuracy, on_step=False, on_epoch=True, batch_size=size)
        return loss

    # --- evaluation ---------------------------------------------------------------------------------------

    def _pair_scores(self, batch: dict[str, Tensor], quantize: bool) -> dict[str, Tensor]:
        """Cosine scores of every pair in the batch: clear, and per obfuscation obfuscated / compensated."""
        a, b = batch["image_a"], batch["image_b"]
        both = torch.cat([a, b])
        indices = torch.cat([batch["index_a"], batch["index_b"]])
        n = a.shape[0]

        def cosine(embeddings: Tensor) -> Tensor:
            return (embeddings[:n] * embeddings[n:]).sum(1)

        scores = {"score__clear": cosine(self.server.embed(both, normalize=True))}
        for name, obfuscator in self.eval_obfuscators.items():
            obfuscated = evaluation_obfuscation(obfuscator, both, indices)
            scores[f"score__compensated__{name}"] = cosine(
                self.compensated_embedding(both, obfuscated, quantize=quantize)
            )
            scores[f"score__obfuscated__{name}"] = cosine(self.server.embed(obfuscated, normalize=True))
        return scores

    def _collect(self, stage: str, batch: dict[str, Tensor]) -> None:
        scores = self._pair_scores(batch, quantize=stage == "test")
        self.outputs[stage].update(
            index=batch["index"], set=batch["set"], is_same=batch["is_same"], fold=batch["fold"], **scores
        )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Scores of every validation pair."""
        self._collect("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Scores of every test pair."""
        self._collect("test", batch)

    def on_test_start(self) -> None:
        """Apply the transmission extension's client pruning (if configured) before testing."""
        if self.transmission is not None:
            self.transmission.prune(self.client)

    def _summarise(self, stage: str) -> dict[str, float]:
        outputs = self.outputs[stage].compute()
        self.outputs[stage].reset()
        order = torch.argsort(outputs["index"])
        outputs = {k: v[order] for k, v in outputs.items()}
        metrics: dict[str, float] = {}
        rows = [("clear", None)] + [
            (method, name) for name in self.eval_obfuscators for method in ("obfuscated", "compensated")
        ]
        if not self.hparams.baselines:
            rows = [(m, o) for m, o in rows if m == "compensated"]
        for method, obfuscation in rows:
            column = "score__clear" if method == "clear" else f"score__{method}__{obfuscation}"
            accuracies = []
            for number, set_name in enumerate(self.set_names):
                chosen = outputs["set"] == number
                if not bool(chosen.any()):
                    continue
                result = verification_accuracy(
                    outputs[column][chosen].double(),
                    outputs["is_same"][chosen],
                    int(outputs["fold"][chosen].max()) + 1,
                    outputs["fold"][chosen],
                )
                accuracies.append(float(result["mean"]))
                metrics[metric_name(stage, method, obfuscation, set_name)] = accuracies[-1]
            if accuracies:
                metrics[metric_name(stage, method, obfuscation, MEAN)] = sum(accuracies) / len(accuracies)
        return metrics

    def _report(self, stage: str) -> None:
        metrics = self._summarise(stage)
        for name, value in metrics.items():
            self.log(
                name, value, rank_zero_only=False, sync_dist=False, prog_bar=name.endswith("hybrid/mean")
            )
        if stage == "test":  # what the client sends per image (float32 maps unless the extension is on)
            transmission = self.transmission or Transmission(bits=None)
            for name, value in transmission.describe_cost(self.client, self.client.stage_shapes).items():
                self.log(f"test/transmission/{name}", float(value), rank_zero_only=False, sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        """Verification accuracy of every row and set (gathered from every rank)."""
        self._report("val")

    def on_test_epoch_end(self) -> None:
        """Verification accuracy of every row and set (gathered from every rank)."""
        self._report("test")

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row per (method, obfuscation), one column per verification set and the mean."""
        return table_from_metrics(metrics, "test")

    # --- optimisation -------------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        """SGD (momentum 0.9): client non-BN weights with weight decay, client BN without, the head with
        its own decay; the learning rate divided by 10 at each milestone epoch (the authors' schedule)."""
        no_decay, decay = split_decay(self.client)
        head_params = [p for p in self.head.parameters() if p.requires_grad]
        groups = [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"params": head_params, "weight_decay": self.hparams.head_weight_decay},
        ]
        optimizer = torch.optim.SGD(groups, lr=self.hparams.lr, momentum=self.hparams.momentum)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(self.hparams.milestones), gamma=self.hparams.gamma
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
