"""EG as a LightningModule: SBI training (real frames + self-blends, SAM) with the embedding-guided losses.

EG's training code was never released, so the objective here is **reconstructed**: the main cross-entropy
is exact (it is the only path the released inference uses), the auxiliary terms are a design consistent
with the released module shapes, the abstract and the checkpoint name (``0.4*distill+0.01*rc``). Every
term has a weight in ``loss_weights`` (0 turns it off and skips its computation). For a batch
``[reals; fakes]`` (row ``i`` and ``i + n`` come from the same frame):

======== ========================================================================================
term     definition
======== ========================================================================================
cls      CE(``net._fc(bn(f(x)))``, y): the test-time head (exact)
residual CE(``fc_cat(f(r))``, y) with the residual image ``r = (x − x_real + 1) / 2`` (a uniform grey
         for the reals, the blending artefact for the fakes): artifact features from the residual
fused    CE(``fc_cat1(f(x) + f(r))``, y): image and residual features together
fr       CE(``fc(e(x))``, y), ``e`` the frozen ArcFace embedding: a linear read-out of the guidance
distill  MSE(``reshape_layer(f(x))``, [sg f(x); Δe]), ``Δe = e(x) − e(x_real)`` (0 for reals): the
         identity discrepancy a blend causes, distilled into the artifact features (0.4)
rc       MSE(``reconstruction_network(reshape_layer(f(x)))``, sg f(x)) (0.01)
======== ========================================================================================

``sg`` = stop-gradient. docs/papers/eg.md says what is known and what is inferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.lightning_modules.sbi_detector import SBIModule, pair_halves
from src.papers.eg.network import EGNet
from src.papers.registry import register_paper

LOSS_TERMS = ("cls", "residual", "fused", "fr", "distill", "rc")
DEFAULT_LOSS_WEIGHTS = {"cls": 1.0, "residual": 1.0, "fused": 1.0, "fr": 1.0, "distill": 0.4, "rc": 0.01}
FR_EMBEDDING = "fr_embedding"  # batch key caching the frozen recognizer's embeddings of the batch


def check_loss_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults overridden by ``weights``; unknown names and negative values raise."""
    merged = dict(DEFAULT_LOSS_WEIGHTS)
    for name, value in dict(weights or {}).items():
        if name not in LOSS_TERMS:
            raise ValueError(f"model.loss_weights: unknown term {name!r}; terms: {list(LOSS_TERMS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"model.loss_weights.{name} must be a number >= 0, got {value!r}")
        merged[name] = float(value)
    if merged["cls"] == 0:
        raise ValueError("model.loss_weights.cls must be > 0: it trains the only head used at test time")
    return merged


@register_paper(
    "eg",
    title="Deepfake Detection Leveraging Self-Blended Artifacts Guided by Facial Embedding Discrepancy",
    venue="IEEE TCSVT 2025",
    kind="security",
    stages=(),
)
class EGModule(SBIModule):
    """EG (module docstring): an :class:`SBIModule` whose network is :class:`EGNet` and whose loss adds
    the residual, fused, face-recognition, distillation and reconstruction terms."""

    net: EGNet

    def __init__(self, *args: Any, loss_weights: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.net, EGNet):
            raise TypeError(f"EGModule needs an EGNet, got {type(self.net).__name__}")
        self.loss_weights = check_loss_weights(loss_weights)

    @property
    def requires_checkpoint(self) -> bool:
        """No Lightning checkpoint is needed when the network was built from the released EG weights."""
        return not getattr(self.net, "loaded", {}).get("weights")

    def training_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted sum of the terms (module docstring) and each term's value for the logs."""
        w = self.loss_weights
        images, labels = batch["image"], batch["label"].long()
        n = pair_halves(batch)
        net = self.net
        f = net.artifact_features(images)
        logits = net.classify(f)
        terms: dict[str, Tensor] = {"cls": F.cross_entropy(logits, labels)}
        if w["residual"] or w["fused"]:
            reals, fakes = images[:n], images[n:]
            grey = torch.full_like(reals[:1], 0.5)  # the residual of a real frame with itself
            f_residual = net.artifact_features(torch.cat([grey, (fakes - reals + 1.0) / 2.0]))
            f_r = torch.cat([f_residual[:1].expand(n, -1), f_residual[1:]])
            if w["residual"]:
                terms["residual"] = F.cross_entropy(net.fc_cat(f_r)[1], labels)
            if w["fused"]:
                terms["fused"] = F.cross_entropy(net.fc_cat1(f + f_r)[1], labels)
        if w["fr"] or w["distill"] or w["rc"]:
            e = batch.get(FR_EMBEDDING)
            if e is None:  # frozen and gradient-free: SAM's second pass (same batch dict) reuses it
                e = batch[FR_EMBEDDING] = net.face_embedding(images)
            if w["fr"]:
                terms["fr"] = F.cross_entropy(net.fc(e), labels)
            if w["distill"] or w["rc"]:
                g = net.reshape_layer(f)
                target = f.detach()
                if w["distill"]:
                    delta = e - e[:n].repeat(2, 1)  # Δe: 0 for the reals, e(fake) − e(its real)
                    terms["distill"] = F.mse_loss(g, torch.cat([target, delta], dim=1))
                if w["rc"]:
                    terms["rc"] = F.mse_loss(net.reconstruction_network(g), target)
        loss = sum(w[name] * value for name, value in terms.items())
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        logs = {"loss": loss.detach(), "acc": accuracy, **{f"loss_{k}": v.detach() for k, v in terms.items()}}
        return loss, {**logs, **self.blend_logs(batch)}
