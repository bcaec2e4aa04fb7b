"""FaceShield: DP identity perturbation, trained in two stages (docs/papers/faceshield.md).

* :class:`FaceShieldFSE` (Stage I, "feature separation extractor") trains the SE module on a frozen encoder
  with ``L_FSE`` (angle + HSIC independence of identity and attribute features, identity reconstruction).
* :class:`FaceShieldIRC` (Stage II, "image reconstructor") trains the attribute decoder and the generator
  against a multiscale LSGAN discriminator and the implicit-identity (IID) detector, with the extractor
  frozen. Its test step is the paper table's evaluation: every configured protection variant (FaceShield
  with one DP perturbator each, or a baseline obfuscator) judged by utility, identity and privacy columns.

Training pairs: each batch is the source half ``X_s``; the target half ``X_t`` is the same batch rolled by
one (the original draws a random image of another identity; a rolled batch of a shuffled loader is one,
except when two neighbours share an identity). Images arrive in [0, 1] at the dataset's size and are
resized to the networks' 512 px in [-1, 1].
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from src.evaluation.collector import TensorCollector
from src.evaluation.identity_protocol import order_by_index
from src.lightning_modules.base import LabModule
from src.losses.perceptual import PerceptualLoss
from src.metrics.image_quality import PSNR, SSIM
from src.obfuscators.base import Obfuscator
from src.papers.faceshield.audit_report import write_audit
from src.papers.faceshield.evaluation import (
    SEMANTICS,
    baseline_privacy_columns,
    describe_baseline,
    identity_columns,
    privacy_columns,
    variant_rows,
)
from src.papers.faceshield.key_mapping import load_imagenet_xception
from src.papers.faceshield.losses import (
    fse_loss,
    generator_loss,
    identity_contrastive_loss,
    iid_detector_loss,
    lsgan_discriminator_loss,
)
from src.papers.faceshield.networks import (
    IIDDiscriminator,
    MultiscaleDiscriminator,
    attribute_features,
)
from src.papers.faceshield.networks.se import NUM_IB_LAYERS
from src.papers.faceshield.perturbator import DPPerturbator
from src.papers.faceshield.pipeline import (
    FaceShieldExtractor,
    FaceShieldRenderer,
    attribute_inputs,
    check_image_size,
    from_faceshield,
    prepare,
    to_faceshield,
)
from src.papers.registry import register_paper
from src.utils.checkpoint_files import CheckpointError, read_checkpoint
from src.utils.run_record import ENV_RUN_DIR
from src.weights import resolve_spec

FSE_WEIGHTS = {"angle": 1.0, "hsic": 0.5, "identity": 0.5}
IRC_WEIGHTS = {"adv": 3.3, "iid": 1.6, "per": 1.0, "icl": 1.0, "icl_pos": 2.0, "icl_neg": 0.5}


def _weights(
    given: Mapping[str, float] | None, defaults: Mapping[str, float], owner: str
) -> dict[str, float]:
    merged = {**defaults, **(given or {})}
    unknown = sorted(set(merged) - set(defaults))
    if unknown:
        raise ValueError(f"{owner}: unknown loss weight(s) {unknown}; expected {sorted(defaults)}")
    return {k: float(v) for k, v in merged.items()}


def load_extractor_state(extractor: FaceShieldExtractor, path: Path) -> None:
    """The encoder, readout statistics and SE of a Stage I checkpoint, loaded strictly into ``extractor``
    (tensors only: nothing in the file is built or run)."""
    checkpoint = read_checkpoint(path)
    prefix = "extractor."
    state = {k[len(prefix) :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path}: no 'extractor.*' weights: give a faceshield/stage1_fse checkpoint")
    try:
        extractor.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(
            f"{path}: its extractor does not fit model.extractor (same image_size as Stage I?): {first}"
        ) from None


def noise_seed(seed: int, first_index: int, stream: str) -> int:
    """A 63-bit seed for one (run seed, batch, noise stream): a NumPy SeedSequence of the three, so distinct
    inputs give independent streams (no sums that collide)."""
    words = [seed, first_index, zlib.crc32(stream.encode("utf-8"))]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def source_target(images: Tensor, size: int, training: bool = True) -> tuple[Tensor, Tensor]:
    """(source, target) halves at ``size`` px from a [0, 1] batch: the target is the batch rolled by one.

    Training needs two images per process (a face paired with itself teaches nothing about swapping);
    validation and test accept one (the last batch of a split may hold a single image: it is paired with
    itself)."""
    if training and images.shape[0] < 2:
        raise ValueError(
            f"FaceShield pairs each image with another one of its batch: batch size must be >= 2 per "
            f"process, got {images.shape[0]}"
        )
    source = to_faceshield(images, size)
    return source, source.roll(1, dims=0)


# ---------------------------------------------------------------------------------------------------------
# Stage I
# ---------------------------------------------------------------------------------------------------------


class FaceShieldFSE(LabModule):
    """Stage I: train the SE (IB) module with ``L_FSE`` on a frozen encoder (G and the decoder are skipped:
    the original runs them only to log a number).

    Logged: ``loss``, ``angle``, ``hsic``, ``identity`` (``L_IR``) and ``id_cos`` (mean cosine between the
    encoder's explicit identity and the SE's restricted one: how much identity survives the bottleneck).
    """

    def __init__(
        self,
        extractor: FaceShieldExtractor,
        optimizer: Callable[..., torch.optim.Optimizer],
        loss_weights: Mapping[str, float] | None = None,
        faithful: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["extractor", "optimizer"])
        self.extractor = extractor
        self.optimizer_factory = optimizer
        self.loss_weights = _weights(loss_weights, FSE_WEIGHTS, "FaceShieldFSE")
        self.faithful = bool(faithful)

    def _losses(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        x_s, x_t = source_target(batch["image"], self.extractor.image_size, training=self.training)
        extraction = self.extractor(torch.cat([x_s, x_t]))
        source, target = extraction.half(0), extraction.half(1)
        layers = NUM_IB_LAYERS
        p_s = attribute_features(source.features[:layers], source.se.lambdas, source.features[:layers])
        # the original blends both halves with the *source* noise statistics (faithful); fixed: each its own
        noise_of_t = source if self.faithful else target
        p_t = attribute_features(target.features[:layers], target.se.lambdas, noise_of_t.features[:layers])
        losses = fse_loss(
            source.se.restricted,
            p_s,
            target.se.restricted,
            p_t,
            (source.explicit, target.explicit),
            (source.se.identity, target.se.identity),
            angle_weight=self.loss_weights["angle"],
            hsic_weight=self.loss_weights["hsic"],
            identity_weight=self.loss_weights["identity"],
            faithful=self.faithful,
        )
        id_cos = F.cosine_similarity(extraction.explicit, extraction.se.identity, dim=1).mean()
        return {
            "loss": losses.total,
            "angle": losses.angle,
            "hsic": losses.hsic,
            "identity": losses.identity,
            "id_cos": id_cos,
        }

    def _log_all(self, stage: str, values: Mapping[str, Tensor], batch_size: int) -> None:
        on_step = stage == "train"
        for name, value in values.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                on_step=on_step,
                on_epoch=True,
                prog_bar=name == "loss",
                batch_size=batch_size,
                sync_dist=stage != "train",
            )

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        values = self._losses(batch, batch_idx)
        self._log_all("train", values, batch["image"].shape[0])
        return values["loss"]

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._log_all("val", self._losses(batch, batch_idx), batch["image"].shape[0])

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._log_all("test", self._losses(batch, batch_idx), batch["image"].shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the SE layers only (the encoder and the readout statistics are frozen)."""
        return self.optimizer_factory(self.extractor.se.layers.parameters())


# ---------------------------------------------------------------------------------------------------------
# Stage II
# ---------------------------------------------------------------------------------------------------------


def recognizer_input(images: Tensor, recognizer: nn.Module) -> Tensor:
    """[0, 1] faces resized (bilinear, antialiased) to the recognizer's declared square input size."""
    size = getattr(recognizer, "input_size", None)
    if isinstance(size, tuple | list):
        size = size[0]
    if not isinstance(size, int):
        raise ValueError(f"evaluator {type(recognizer).__name__} declares no input_size")
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@register_paper(
    "faceshield",
    title="FaceShield: High-Utility Differential Privacy Facial Protection for Online Image Publishing",
    venue="code 2025",  # the paper text is not public yet
    kind="privacy",
    stages=(FaceShieldFSE,),
)
class FaceShieldIRC(LabModule):
    """Stage II: train the decoder and generator (manual optimisation, D → IID → G+decoder); evaluate.

    The extractor comes from a Stage I checkpoint (``extractor_ckpt``) or from its config (released weights).
    Each step: the LSGAN discriminator step, the IID detector step, then the generator step, each with its
    own gradient clipping; a generator step whose loss is NaN/Inf is skipped and counted
    (``train/skipped_steps``). Under DDP use ``strategy=ddp_find_unused_parameters_true``: parameters of the
    networks not stepped in a phase get no gradient there.

    Evaluation variants: ``perturbators`` (name → :class:`DPPerturbator`) run FaceShield with that DP step;
    ``baselines`` (name → obfuscator) protect the same faces with a shared obfuscator. ``evaluators`` (name →
    frozen recognizer taking [0, 1] faces) judge every variant; ``whitebox=True`` adds FaceShield's own
    encoder as ``whitebox``.
    """

    def __init__(
        self,
        extractor: FaceShieldExtractor,
        renderer: FaceShieldRenderer,
        discriminator: MultiscaleDiscriminator,
        iid: IIDDiscriminator,
        optimizer: Callable[..., torch.optim.Optimizer],
        adversary_optimizer: Callable[..., torch.optim.Optimizer],
        extractor_ckpt: str | None = None,
        iid_weights: str | None = None,
        loss_weights: Mapping[str, float] | None = None,
        gradient_clip: float = 1.0,
        perturbators: Mapping[str, DPPerturbator] | None = None,
        baselines: Mapping[str, Obfuscator] | None = None,
        evaluators: Mapping[str, nn.Module] | None = None,
        whitebox: bool = True,
        perceptual: PerceptualLoss | None = None,
        fars: Sequence[float] = (1e-3, 1e-2),
        noise_seed: int = 0,
        evaluate_untrained: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False,
            ignore=[
                "extractor",
                "renderer",
                "discriminator",
                "iid",
                "perturbators",
                "baselines",
                "evaluators",
                "perceptual",
                "optimizer",
                "adversary_optimizer",
            ],
        )
        self.automatic_optimization = False
        check_image_size("FaceShieldIRC: model.extractor", extractor.image_size)  # the renderer's sizes
        if extractor_ckpt is not None:
            load_extractor_state(extractor, Path(extractor_ckpt))
        self.extractor = extractor.eval().requires_grad_(False)
        self.renderer = renderer
        self.discriminator = discriminator
        self.iid = iid
        if iid_weights is not None:
            load_imagenet_xception(self.iid, resolve_spec(iid_weights))
        self.optimizer_factory = optimizer
        self.adversary_optimizer_factory = adversary_optimizer
        self.loss_weights = _weights(loss_weights, IRC_WEIGHTS, "FaceShieldIRC")
        if not (isinstance(gradient_clip, int | float) and gradient_clip > 0):
            raise ValueError(f"FaceShieldIRC: gradient_clip must be > 0, got {gradient_clip!r}")
        self.gradient_clip = float(gradient_clip)
        self.register_buffer("skipped_steps", torch.zeros((), dtype=torch.long))
        # evaluation
        self.perturbators = dict(perturbators or {})
        self.baselines = nn.ModuleDict(dict(baselines or {}))
        clash = sorted(set(self.perturbators) & set(self.baselines))
        if clash:
            raise ValueError(f"FaceShieldIRC: variant name(s) {clash} are both a perturbator and a baseline")
        for name, perturbator in self.perturbators.items():
            if not isinstance(perturbator, DPPerturbator):
                raise ValueError(f"FaceShieldIRC: perturbators.{name} must be a DPPerturbator")
        self.evaluators = nn.ModuleDict(dict(evaluators or {}))
        for evaluator in self.evaluators.values():
            evaluator.eval().requires_grad_(False)
        self.whitebox = bool(whitebox)
        if "whitebox" in self.evaluators:
            raise ValueError(
                "FaceShieldIRC: the evaluator name 'whitebox' is reserved for FaceShield's encoder"
            )
        self.perceptual = perceptual
        if evaluate_untrained:  # an evaluation of random networks: nothing here is to be trained
            for network in (self.renderer, self.discriminator, self.iid):
                network.requires_grad_(False)
        variants = [*self.perturbators, *self.baselines]
        self.ssim = nn.ModuleDict({v: SSIM() for v in variants})
        self.psnr = nn.ModuleDict({v: PSNR() for v in variants})
        self.lpips = nn.ModuleDict({v: MeanMetric() for v in variants})
        self.released_cos = nn.ModuleDict({v: MeanMetric() for v in self.perturbators})
        names = ["index", "label", *(f"clean__{e}" for e in self.judges)]
        names += [f"{v}__{e}" for v in variants for e in self.judges]
        self.embeddings = TensorCollector(names) if variants else None

    # ----- training -----

    @property
    def judges(self) -> list[str]:
        """Names of the recognizers that judge protected faces (the evaluators, then ``whitebox``)."""
        return [*self.evaluators, *(["whitebox"] if self.whitebox else [])]

    def train(self, mode: bool = True) -> FaceShieldIRC:
        """The extractor and evaluators stay frozen in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        self.extractor.eval()
        self.evaluators.eval()
        return self

    def _all_processes_agree(self, decision: bool) -> bool:
        """``decision`` on every process (all must hold it), or the local one outside a Trainer."""
        if self._trainer is None:
            return decision
        return bool(self.trainer.strategy.reduce_boolean_decision(decision, all=True))

    def on_fit_start(self) -> None:
        """The per-network clipping reads the gradients as they are: refuse scaled (mixed-precision) ones."""
        precision = str(self.trainer.precision)
        if not precision.startswith(("32", "64")):
            raise ValueError(
                f"FaceShieldIRC clips each network's gradients itself and needs trainer.precision 32-true "
                f"(or 64-true), got {precision}"
            )

    def _clip_step(self, optimizer: Any, modules: Sequence[nn.Module]) -> None:
        for module in modules:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.gradient_clip)
        optimizer.step()

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d, opt_iid = self.optimizers()
        weights = self.loss_weights
        x_s, x_t = source_target(batch["image"], self.extractor.image_size)
        with torch.no_grad():
            extraction = self.extractor(torch.cat([x_s, x_t]))
        source, target = extraction.half(0), extraction.half(1)
        p_t = attribute_inputs(x_t, target, source)
        y = self.renderer(source.se.identity, p_t, target.se.lambdas)
        batch_size = x_s.shape[0]

        # 1. discriminator (LSGAN): X_t real, Y fake
        self.toggle_optimizer(opt_d)
        loss_d = lsgan_discriminator_loss(self.discriminator(x_t), self.discriminator(y.detach()))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        self._clip_step(opt_d, [self.discriminator])
        self.untoggle_optimizer(opt_d)

        # 2. IID detector: agree with the explicit identity on real faces, tell Y's implicit identity apart
        y_explicit, y_features = self.extractor.explicit(y)
        self.toggle_optimizer(opt_iid)
        phi_s, phi_t = self.iid(x_s), self.iid(x_t)
        loss_iid = iid_detector_loss(
            source.explicit, target.explicit, y_explicit, phi_s, phi_t, self.iid(y.detach())
        )
        opt_iid.zero_grad()
        self.manual_backward(loss_iid)
        self._clip_step(opt_iid, [self.iid])
        self.untoggle_optimizer(opt_iid)

        # 3. generator + decoder
        self.toggle_optimizer(opt_g)
        y_lambdas = self.extractor.se.masks(y_features)  # Y's masks; its restricted identity is not used
        y_feats = attribute_features(y_features[:NUM_IB_LAYERS], y_lambdas, y_features[:NUM_IB_LAYERS])
        y_feats[0] = y
        with torch.no_grad():  # Φ(X_t) after the IID step, as the original recomputes it
            phi_t = self.iid(x_t)
        icl = identity_contrastive_loss(
            y_explicit,
            source.explicit,
            target.explicit,
            target.se.identity,
            pos_weight=weights["icl_pos"],
            neg_weight=weights["icl_neg"],
        )
        losses = generator_loss(
            self.discriminator(y),
            phi_t,
            self.iid(y),
            y_feats,
            p_t,
            icl,
            adv_weight=weights["adv"],
            iid_weight=weights["iid"],
            feature_weight=weights["per"],
            identity_weight=weights["icl"],
        )
        # every process skips together: one skipping alone would leave the others waiting in the all-reduce
        finite = self._all_processes_agree(bool(torch.isfinite(losses.total).all()))
        opt_g.zero_grad()
        if finite:
            self.manual_backward(losses.total)
            self._clip_step(opt_g, [self.renderer.decoder, self.renderer.generator])
        else:
            self.skipped_steps += 1
        self.untoggle_optimizer(opt_g)

        log = {
            "loss_d": loss_d,
            "loss_iid": loss_iid,
            "adv": losses.adversarial,
            "iid_adv": losses.iid_adversarial,
            "per": losses.features,
            "icl_pos": losses.identity.positive,
            "icl_neg": losses.identity.negative,
        }
        for name, value in log.items():
            self.log(f"train/{name}", value.detach(), on_step=True, on_epoch=True, batch_size=batch_size)
        self.log(
            "train/loss",
            losses.total.detach(),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
        )
        self.log(
            "train/skipped_steps",
            self.skipped_steps.float(),
            on_step=True,
            on_epoch=False,
            batch_size=batch_size,
        )

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """The inference task without DP: a self-swap (each face its own source and target) rendered with
        its restricted identity; ``val/pixel_mse`` to the face and ``val/id_cos`` of the two explicit
        identities (how much of the face and of its identity the reconstruction keeps)."""
        faces = to_faceshield(batch["image"], self.extractor.image_size)
        prepared = prepare(self.extractor, self.renderer, faces, self._generator(batch, "network"))
        y = self.renderer.generate(prepared.restricted, prepared.attrs, prepared.lambda_maps)
        y_explicit, _ = self.extractor.explicit(y)
        size = faces.shape[0]
        self.log("val/pixel_mse", F.mse_loss(y, faces), batch_size=size, sync_dist=True)
        self.log(
            "val/id_cos",
            F.cosine_similarity(y_explicit, prepared.extraction.explicit).mean(),
            batch_size=size,
            sync_dist=True,
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """G + decoder, the discriminator, the IID detector (in the order the step uses them)."""
        if self.hparams.evaluate_untrained:
            raise ValueError(
                "FaceShieldIRC: model.evaluate_untrained=true evaluates random networks (the demo) and "
                "freezes them; set it to false to train"
            )
        return [
            self.optimizer_factory(self.renderer.parameters()),
            self.adversary_optimizer_factory(self.discriminator.parameters()),
            self.adversary_optimizer_factory(self.iid.parameters()),
        ]

    # ----- evaluation -----

    @property
    def requires_checkpoint(self) -> bool:
        """A trained renderer is needed unless the networks come from released weights, only baselines are
        evaluated, or ``evaluate_untrained`` asks for random networks (the CPU demo)."""
        trained_elsewhere = bool(self.renderer.released) or bool(self.hparams.evaluate_untrained)
        return bool(self.perturbators) and not trained_elsewhere

    def _judge(self, images: Tensor) -> dict[str, Tensor]:
        """Every judge's embeddings of [0, 1] faces at the dataset's size (clean and protected alike)."""
        out = {
            name: evaluator(recognizer_input(images, evaluator))
            for name, evaluator in self.evaluators.items()
        }
        if self.whitebox:
            out["whitebox"] = self.extractor.explicit(to_faceshield(images, self.extractor.image_size))[0]
        return out

    def _generator(self, batch: Mapping[str, Tensor], stream: str) -> torch.Generator:
        """The noise of one batch and one stream (``network`` or a variant's name): reproducible from
        ``noise_seed`` and the batch's first dataset index, independent of the other streams, of which
        variants a run evaluates and of the batch size."""
        seed = noise_seed(int(self.hparams.noise_seed), int(batch["index"][0]), stream)
        device = self.device if stream == "network" or stream in self.perturbators else torch.device("cpu")
        return torch.Generator(device=device).manual_seed(seed)

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """Protect the batch with every variant; update utility metrics and collect embeddings."""
        if self.embeddings is None:
            raise ValueError("FaceShieldIRC: nothing to evaluate: give model.perturbators or model.baselines")
        images = batch["image"]
        size = (images.shape[-2], images.shape[-1])
        collected = {"index": batch["index"], "label": batch["identity"]}
        collected |= {f"clean__{k}": v for k, v in self._judge(images).items()}
        if self.perturbators:
            faces = to_faceshield(images, self.extractor.image_size)
            prepared = prepare(self.extractor, self.renderer, faces, self._generator(batch, "network"))
            restricted = F.normalize(prepared.restricted, dim=1)
        for name, perturbator in self.perturbators.items():
            released = perturbator(prepared.restricted, self._generator(batch, name))
            protected = from_faceshield(
                self.renderer.generate(released.output, prepared.attrs, prepared.lambda_maps), size
            )
            self.released_cos[name].update((released.output * restricted).sum(dim=1))
            self._utility(name, protected, images)
            collected |= {f"{name}__{k}": v for k, v in self._judge(protected).items()}
        for name, obfuscator in self.baselines.items():
            protected = obfuscator(images, generator=self._generator(batch, name))
            self._utility(name, protected, images)
            collected |= {f"{name}__{k}": v for k, v in self._judge(protected).items()}
        self.embeddings.update(**collected)

    def _utility(self, name: str, protected: Tensor, images: Tensor) -> None:
        self.ssim[name].update(protected, images)
        self.psnr[name].update(protected, images)
        if self.perceptual is not None:
            self.lpips[name].update(self.perceptual.per_sample(protected * 2 - 1, images * 2 - 1))

    def on_test_start(self) -> None:
        self.baselines.eval()

    def on_test_epoch_end(self) -> None:
        """Identity metrics per variant and judge; privacy columns; everything logged as test/<variant>/*."""
        assert self.embeddings is not None
        gathered = self.embeddings.compute()
        self.embeddings.reset()
        keys = [k for k in gathered if k not in ("index", "label")]
        _, labels, *values = order_by_index(
            gathered["index"], gathered["label"], *(gathered[k] for k in keys)
        )
        embeddings = dict(zip(keys, values, strict=True))
        fars = tuple(self.hparams.fars)
        for variant in [*self.perturbators, *self.baselines]:
            logged: dict[str, float] = {
                "ssim": float(self.ssim[variant].compute()),
                "psnr": float(self.psnr[variant].compute()),
            }
            if self.perceptual is not None:
                logged["lpips"] = float(self.lpips[variant].compute())
            for judge in self.judges:
                columns = identity_columns(
                    embeddings[f"clean__{judge}"], embeddings[f"{variant}__{judge}"], labels, fars=fars
                )
                logged |= {f"{judge}/{k}": v for k, v in columns.items()}
            if variant in self.perturbators:
                logged["released_cos"] = float(self.released_cos[variant].compute())
                logged |= privacy_columns(self.perturbators[variant])
            else:
                logged |= baseline_privacy_columns(self.baselines[variant])
            for metric, value in logged.items():
                if math.isfinite(value):  # NaN = does not apply (not certified, no DP, one identity only)
                    self.log(f"test/{variant}/{metric}", value, sync_dist=False)
        for metrics in (self.ssim, self.psnr, self.lpips, self.released_cos):
            for metric in metrics.values():
                metric.reset()
        run_dir = os.environ.get(ENV_RUN_DIR)
        if self.perturbators and run_dir and self.trainer.is_global_zero:
            write_audit(Path(run_dir), list(self.perturbators.values()))

    def variant_descriptions(self) -> dict[str, dict[str, Any]]:
        """What each evaluated variant is, for the results table."""
        out: dict[str, dict[str, Any]] = {}
        for name, perturbator in self.perturbators.items():
            out[name] = {
                "method": "FaceShield",
                "sampler": perturbator.sampler,
                "semantics": SEMANTICS[perturbator.sampler],
                "setting": f"ε={perturbator.epsilon:g}",
            }
        for name, obfuscator in self.baselines.items():
            out[name] = describe_baseline(obfuscator)
        return out

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row per variant: method, sampler, ε (nominal / certified), δ, utility, identity per judge."""
        rows = variant_rows(self.variant_descriptions(), self.judges, metrics, tuple(self.hparams.fars))
        return pd.DataFrame(rows)
