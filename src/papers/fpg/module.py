"""FPG as a LightningModule: an SBI-trained detector that watches its own forgery perception while it trains.

Per training batch ``[reals; fakes]`` (``2n`` images, row ``i`` and ``i + n`` from one frame; the SBI
DataModule with ``blend_parts: true`` adds each fake's soft blend mask and source image):

1. each real takes its fake's blend mask (``mask[:n] += mask[n:]``);
2. **perception passes**, network in eval mode (BatchNorm statistics frozen, no dropout), autocast off,
   gradients only through ``torch.autograd.grad`` (parameter ``.grad`` and DDP's hooks are never touched):
   Grad-CAM of the fakes for class "fake" at the backbone's last block and their fake probabilities →
   **shape refinement**; the input gradient of CE(f(fakes), fake) → **magnitude refinement** (with
   probability ``magnitude_p`` per batch); the frozen quality teacher on the refined batch → targets
   ``q = Q(x) / 50``; then the network's mode is restored;
3. the training forward: logits, ``q̂`` and the last block's features; masks binarised and resized to the
   feature map; pairs with an empty mask on either row are dropped **together**;
4. loss = ``ce``·CE + ``sep``·L_sep + ``quality``·MSE(q̂, q) over the kept pairs (all rows when none is
   kept; L_sep is then 0).

``terms`` switches each part: the three loss weights (``ce`` > 0; 0 skips a term and its computation) and
the two refinements (``shape``, ``magnitude``: true/false). ``refinement`` holds their parameters
(:class:`~src.papers.fpg.refinement.RefinementConfig`). The random choices of a batch come from a generator
seeded by (``perception_seed``, epoch, batch index, rank). docs/papers/fpg.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from src.lightning_modules.sbi_detector import SBIModule, pair_halves
from src.networks.grad_cam import grad_cam
from src.papers.fpg.network import FPGNet
from src.papers.fpg.quality import QualityRegressor, build_quality_teacher, quality_targets
from src.papers.fpg.refinement import (
    RefinementConfig,
    draw,
    feature_masks,
    magnitude_refinement,
    pair_keep,
    pair_separation_loss,
    shape_refinement,
)
from src.papers.registry import register_paper

LOSS_TERMS = ("ce", "sep", "quality")
SWITCHES = ("shape", "magnitude")
DEFAULT_TERMS: dict[str, float | bool] = {
    "ce": 1.0,
    "sep": 0.075,
    "quality": 1.0,
    "shape": True,
    "magnitude": True,
}


def check_terms(terms: Mapping[str, Any] | None) -> dict[str, Any]:
    """The defaults overridden by ``terms``; unknown names, negative weights and non-boolean switches
    raise."""
    merged: dict[str, Any] = dict(DEFAULT_TERMS)
    for name, value in dict(terms or {}).items():
        if name in LOSS_TERMS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"model.terms.{name} must be a number >= 0, got {value!r}")
            merged[name] = float(value)
        elif name in SWITCHES:
            if not isinstance(value, bool):
                raise ValueError(f"model.terms.{name} must be true or false, got {value!r}")
            merged[name] = value
        else:
            raise ValueError(f"model.terms: unknown term {name!r}; terms: {[*LOSS_TERMS, *SWITCHES]}")
    if merged["ce"] == 0:
        raise ValueError("model.terms.ce must be > 0: it trains the only head used at test time")
    return merged


@dataclass
class Perception:
    """The batch after the perception passes: refined images and masks, quality targets, values to log."""

    images: Tensor
    masks: Tensor
    quality: Tensor | None = None
    logs: dict[str, Tensor] = field(default_factory=dict)


@register_paper(
    "fpg",
    title="Advancing Generalized Deepfake Detector with Forgery Perception Guidance",
    venue="ACM MM 2024",
    kind="security",
)
class FPGModule(SBIModule):
    """FPG (module docstring): an :class:`SBIModule` whose network is :class:`FPGNet`, whose fakes are refined
    online from the detector's perception and whose loss adds feature separation and quality regression.

    ``quality_teacher``: options of :func:`~src.papers.fpg.quality.build_quality_teacher` (``weights``:
    ``manifest:fpg-sdd-fiqa-r50``), built at the start of training (never saved in checkpoints), or ``None``
    (then ``terms.quality`` must be 0 to train; evaluation never needs it).
    """

    net: FPGNet

    def __init__(
        self,
        *args: Any,
        terms: Mapping[str, Any] | None = None,
        refinement: Mapping[str, Any] | None = None,
        quality_teacher: Mapping[str, Any] | None = None,
        quality_scale: float = 50.0,
        perception_seed: int = 2024,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.net, FPGNet):
            raise TypeError(f"FPGModule needs an FPGNet, got {type(self.net).__name__}")
        self.terms = check_terms(terms)
        try:
            self.refinement = RefinementConfig(**dict(refinement or {}))
        except TypeError as error:
            raise ValueError(f"model.refinement: {error}") from error
        if quality_scale <= 0:
            raise ValueError(f"model.quality_scale must be > 0, got {quality_scale}")
        if isinstance(perception_seed, bool) or not isinstance(perception_seed, int) or perception_seed < 0:
            raise ValueError(f"model.perception_seed must be an integer >= 0, got {perception_seed!r}")
        self.quality_teacher_options = dict(quality_teacher) if quality_teacher is not None else None
        self.quality_scale = float(quality_scale)
        self.perception_seed = perception_seed
        self._batch_index = 0
        # the frozen teacher lives outside the module tree: not in state_dict, parameters() or .to()
        self.__dict__["_teacher"] = None

    # --- the frozen quality teacher -----------------------------------------------------------------
    def quality_teacher(self, device: torch.device) -> QualityRegressor:
        """The teacher on ``device``, built (and its weights loaded) on first use."""
        if self.__dict__["_teacher"] is None:
            if self.quality_teacher_options is None:
                raise ValueError(
                    "model.terms.quality > 0 needs model.quality_teacher (the SDD-FIQA weights, "
                    "{weights: manifest:fpg-sdd-fiqa-r50}); set model.terms.quality=0 to train without it"
                )
            self.__dict__["_teacher"] = build_quality_teacher(**self.quality_teacher_options)
        return self.__dict__["_teacher"].to(device)

    def on_fit_start(self) -> None:
        """Load the quality teacher before the first step, so a missing weight file stops the run at once."""
        if self.terms["quality"] > 0:
            self.quality_teacher(self.device)

    # --- training -----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        """Remember the batch index (it seeds the batch's random choices), then the base step."""
        self._batch_index = int(batch_idx)
        return super().training_step(batch, batch_idx)

    def perception_rng(self) -> np.random.Generator:
        """The generator of this batch's random choices: a function of (seed, epoch, batch, rank)."""
        return np.random.default_rng(
            [self.perception_seed, self.current_epoch, self._batch_index, self.global_rank]
        )

    def perceive(self, images: Tensor, masks: Tensor, sources: Tensor, n: int) -> Perception:
        """The perception passes and the refinements (module docstring, step 2)."""
        terms, config = self.terms, self.refinement
        if not (terms["shape"] or terms["magnitude"] or terms["quality"] > 0):
            return Perception(images, masks)
        rng = self.perception_rng()
        logs: dict[str, Tensor] = {}
        net = self.net
        was_training = net.training
        net.eval()
        try:
            with torch.autocast(device_type=images.device.type, enabled=False):
                images, masks, sources = images.float(), masks.float(), sources.float()
                if terms["shape"]:
                    cams, logits = grad_cam(net, net.last_block, images[n:], 1)
                    shaped = shape_refinement(images, masks, cams, logits.softmax(dim=1)[:, 1], rng, config)
                    images, masks = shaped.images, shaped.masks
                    logs["shape_candidates"] = shaped.candidate.float().sum()
                    logs["shape_refined"] = shaped.refined.float().sum()
                    logs["shape_skipped"] = shaped.skipped.float().sum()
                    logs["cam_ratio"] = shaped.ratio.mean()
                if terms["magnitude"]:
                    stepped = draw(rng, config.magnitude_p)
                    if stepped:
                        fakes, signs = magnitude_refinement(
                            net, images[:n], images[n:], sources, masks[:n], config.eps
                        )
                        images = torch.cat([images[:n], fakes])
                        logs["magnitude_sign"] = signs.mean()
                    logs["magnitude_stepped"] = torch.tensor(float(stepped))
                quality = None
                if terms["quality"] > 0:
                    teacher = self.quality_teacher(images.device)
                    quality = quality_targets(teacher, images, self.quality_scale)
        finally:
            net.train(was_training)
        return Perception(images.detach(), masks.detach(), quality, logs)

    def training_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted loss of the refined batch and the values to log (module docstring)."""
        n = pair_halves(batch)
        if "mask" not in batch or "source" not in batch:
            raise ValueError(
                "FPG needs each fake's blend mask and source image in the training batches: "
                "set datamodule.blend_parts=true (SelfBlendedFramesDataModule)"
            )
        labels = batch["label"].long()
        masks = batch["mask"].clone()
        masks[:n] = masks[:n] + masks[n:]  # each real takes its fake's blend mask (the reals' are zero)
        seen = self.perceive(batch["image"], masks, batch["source"], n)
        logits, predicted_quality, features = self.net.forward_train(seen.images)
        small = feature_masks(seen.masks, tuple(features.shape[-2:]))
        keep = pair_keep(small)
        rows = keep if bool(keep.any()) else torch.ones_like(keep)
        w = self.terms
        values = {
            "ce": F.cross_entropy(logits[rows], labels[rows], label_smoothing=self.hparams.label_smoothing)
        }
        if w["sep"] > 0:
            values["sep"] = pair_separation_loss(features, small)
        if w["quality"] > 0:
            assert seen.quality is not None  # perceive computes it whenever its weight is > 0
            values["quality"] = F.mse_loss(predicted_quality[rows].float(), seen.quality[rows])
        loss = sum(w[name] * value for name, value in values.items())
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        logs = {
            "loss": loss.detach(),
            "acc": accuracy,
            **{f"loss_{name}": value.detach() for name, value in values.items()},
            "kept_pairs": keep[:n].float().sum(),
            **seen.logs,
        }
        return loss, {**logs, **self.blend_logs(batch)}
