"""iFADIT as two LightningModules, one per training phase (docs/papers/ifadit.md). The authors released
inference only: both training phases are **reconstructed** (:mod:`src.papers.ifadit.losses`).

* :class:`IFaditDisentangle` (phase 1): trains the attribute encoder ``E_attr`` and the latent mapper ``M`` to
  re-synthesise a face through the frozen StyleGAN2 ``G`` from its identity ``E_id(x)`` (frozen) and its
  attribute codes; evaluated by reconstruction quality and identity.
* :class:`IFaditFlow` (phase 2, the registered paper): trains the key-conditioned flow ``F`` and the identity
  compensation ``ICL`` with the phase-1 networks frozen (from a phase-1 checkpoint or the released files);
  evaluated by anonymisation under one key, recovery with the right key (PSNR / SSIM / MAE to the original),
  recovery with a wrong key, the identity cosine of each to the original under several recognizers (the
  ``judges``), the diversity between two keys, and optionally whether a face detector still finds the face
  in the same place (box IoU, landmark NME).

Keys: ``p ~ U[0.5, 1)^512`` (:func:`draw_key`) through ``G`` 's mapping network; in training one per batch
(as the authors) from ``seed`` and the step, in evaluation one per image from ``key_seed`` and the image's
dataset index, so a test run is reproducible and independent of the batch size and of the split over ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from src.config.errors import ConfigError
from src.evaluation.collector import TensorCollector
from src.face.detection import DETECTORS, FaceDetector, build_detector
from src.lightning_modules.base import LabModule
from src.lightning_modules.figures import log_figure
from src.metrics.face_consistency import FIELDS as DETECTION_FIELDS
from src.metrics.face_consistency import face_consistency
from src.metrics.image_quality import mae, psnr, ssim
from src.networks.recognizers.base import FaceRecognizer
from src.papers.ifadit.blending import blend
from src.papers.ifadit.encoders import AttributeEncoder
from src.papers.ifadit.losses import (
    ID_COS_MARGIN,
    PHASE1_WEIGHTS,
    PHASE2_WEIGHTS,
    check_weights,
    cosine,
    phase1_terms,
    phase2_terms,
    weighted_total,
)
from src.papers.ifadit.masks import FaceMasker
from src.papers.ifadit.networks import (
    IDENTITY_DIM,
    IdentityCompensation,
    IdentityFlow,
    LatentMapper,
    draw_key,
    fuse,
)
from src.papers.ifadit.pipeline import IdentityEncoder, IFaditPipeline, identity_crop, recognizer_side
from src.papers.ifadit.report import RECONSTRUCTED_NOTE, RELEASED_NOTE, flow_table, reconstruction_table
from src.papers.ifadit.stylegan2 import StyleGAN2Generator
from src.papers.ifadit.weights import load_into
from src.papers.registry import register_paper
from src.utils.checkpoint_files import CheckpointError, check_state_dict_fits, read_checkpoint
from src.utils.seeding import derive_seed

#: the PSNR of identical images is capped here (so one perfect recovery cannot make the mean infinite)
PSNR_CAP_DB = 100.0
#: phase-1 parts a phase-2 run reads from a phase-1 checkpoint
PHASE1_PARTS = ("attribute_encoder", "mapper", "generator")
#: images per test grid figure
GRID_ROWS = 4


def freeze(module: nn.Module) -> nn.Module:
    """No gradients and eval mode (a frozen part)."""
    module.requires_grad_(False)
    return module.eval()


def image_scores(prefix: str, images: Tensor, reference: Tensor) -> dict[str, Tensor]:
    """Per-image PSNR (capped), SSIM and MAE of ``images`` against ``reference`` (both [0, 1])."""
    images, reference = images.detach().float().clamp(0, 1), reference.detach().float()
    return {
        f"{prefix}__psnr": psnr(images, reference, max_db=PSNR_CAP_DB),
        f"{prefix}__ssim": ssim(images, reference),
        f"{prefix}__mae": mae(images, reference),
    }


class _IFaditModule(LabModule):
    """What both phases share: the frozen identity encoder and generator, the attribute encoder, the mapper,
    the face masks, and the checks that the parts fit together."""

    def __init__(
        self,
        identity_recognizer: FaceRecognizer,
        attribute_encoder: AttributeEncoder,
        mapper: LatentMapper,
        generator: StyleGAN2Generator,
        masker: FaceMasker,
        generator_weights: str | None,
        train_generator: bool,
    ) -> None:
        super().__init__()
        if attribute_encoder.n_styles != generator.n_latent:
            raise ConfigError(
                f"model.attribute_encoder.n_styles ({attribute_encoder.n_styles}) must equal the generator's "
                f"W+ rows ({generator.n_latent} at {generator.size} px)"
            )
        mapper_in = mapper.model[0].in_features
        if mapper_in != IDENTITY_DIM + attribute_encoder.code_dim:
            raise ConfigError(
                f"model.mapper takes {mapper_in}-d fused rows but the identity (512) and the attribute codes "
                f"({attribute_encoder.code_dim}) make {IDENTITY_DIM + attribute_encoder.code_dim}: set "
                f"model.mapper.attribute_dim={attribute_encoder.code_dim}"
            )
        if attribute_encoder.image_size != generator.size:
            raise ConfigError(
                f"model.attribute_encoder.image_size ({attribute_encoder.image_size}) must equal "
                f"model.generator.size ({generator.size}): faces are encoded and synthesised at one size"
            )
        self.identity_encoder = IdentityEncoder(freeze(identity_recognizer))
        self.attribute_encoder, self.mapper, self.generator = attribute_encoder, mapper, generator
        if generator_weights is not None:
            load_into(self.generator, generator_weights)
        if not train_generator:
            freeze(self.generator)
        self.masker = masker
        self.image_size = generator.size

    def check_images(self, images: Tensor) -> None:
        """Faces must come at the networks' size."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ConfigError(
                f"{type(self).__name__}: the networks are built for {self.image_size}-px faces, the batch "
                f"has {tuple(images.shape[-2:])}: set datamodule.image_size={self.image_size}"
            )

    def frozen_parts(self) -> list[nn.Module]:
        """The networks this phase does not train."""
        return [self.identity_encoder] + ([] if self.hparams.get("train_generator") else [self.generator])

    def on_train_epoch_start(self) -> None:
        """Frozen networks stay in eval mode (Lightning switches the whole module to training mode, which
        would update their batch-norm statistics)."""
        for part in self.frozen_parts():
            part.eval()


class IFaditDisentangle(_IFaditModule):
    """Phase 1 (reconstructed): ``E_attr`` + ``M`` (and, for CPU demos only, ``G``) trained to reconstruct.

    ``x̂ = G(M([E_id(x); E_attr(x)]))``; loss terms and weights in :mod:`src.papers.ifadit.losses`
    (``loss_weights`` overrides the defaults). ``attribute_weights`` / ``mapper_weights`` start from the
    released files. Evaluation: reconstruction PSNR / SSIM / MAE and the identity cosine of ``x̂`` to ``x``
    (and of the swapped faces to their identity donors) under ``E_id``.
    """

    def __init__(
        self,
        identity_recognizer: FaceRecognizer,
        attribute_encoder: AttributeEncoder,
        mapper: LatentMapper,
        generator: StyleGAN2Generator,
        masker: FaceMasker,
        perceptual: nn.Module | None = None,
        loss_weights: Mapping[str, float] | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        generator_weights: str | None = None,
        attribute_weights: str | None = None,
        mapper_weights: str | None = None,
        train_generator: bool = False,
        seed: int = 20,
    ) -> None:
        super().__init__(
            identity_recognizer,
            attribute_encoder,
            mapper,
            generator,
            masker,
            generator_weights,
            train_generator,
        )
        self.save_hyperparameters(
            logger=False,
            ignore=[
                "identity_recognizer",
                "attribute_encoder",
                "mapper",
                "generator",
                "masker",
                "perceptual",
            ],
        )
        self.weights = check_weights(loss_weights, PHASE1_WEIGHTS, "model.loss_weights")
        self.perceptual = perceptual
        if attribute_weights is not None:
            load_into(self.attribute_encoder, attribute_weights)
        if mapper_weights is not None:
            load_into(self.mapper, mapper_weights)
        names = ["index", "psnr", "ssim", "mae", "identity", "swap_identity"]
        self.outputs = nn.ModuleDict({stage: TensorCollector(names) for stage in ("val", "test")})

    def synthesise(self, identity: Tensor, attributes: Tensor) -> Tensor:
        """A face in [0, 1] from an identity and attribute codes."""
        return ((self.generator(self.mapper(fuse(identity, attributes))) + 1.0) / 2.0).clamp(0.0, 1.0)

    def _lpips(self, a: Tensor, b: Tensor) -> Tensor:
        return self.perceptual(a * 2.0 - 1.0, b * 2.0 - 1.0)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The reconstructed phase-1 objective on one batch."""
        images = batch["image"]
        self.check_images(images)
        with torch.no_grad():
            identity = self.identity_encoder(images)
        attributes = self.attribute_encoder(images)
        reconstructed = self.synthesise(identity, attributes)
        donor = identity.roll(1, dims=0)  # another image's identity (the batch shifted by one)

        def swapped() -> tuple[Tensor, Tensor]:
            return self.identity_encoder(self.synthesise(donor, attributes)), donor

        terms = phase1_terms(
            images,
            reconstructed,
            identity,
            lambda: self.identity_encoder(reconstructed),
            self._lpips if self.perceptual is not None else None,
            self.weights,
            swapped=swapped,
        )
        loss = weighted_total(terms, self.weights)
        size = images.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in terms.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def _collect(self, stage: str, batch: dict[str, Tensor]) -> None:
        images = batch["image"]
        self.check_images(images)
        identity = self.identity_encoder(images)
        attributes = self.attribute_encoder(images)
        reconstructed = self.synthesise(identity, attributes)
        donor = identity.roll(1, dims=0)  # within the batch: a batch of one has no other identity (NaN)
        swapped = self.synthesise(donor, attributes)
        scores = image_scores("r", reconstructed, images)
        self.outputs[stage].update(
            index=batch["index"],
            psnr=scores["r__psnr"],
            ssim=scores["r__ssim"],
            mae=scores["r__mae"],
            identity=cosine(self.identity_encoder(reconstructed), identity),
            swap_identity=cosine(self.identity_encoder(swapped), donor)
            if images.shape[0] > 1
            else torch.full((1,), math.nan, device=images.device),
        )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Reconstruction scores of every validation image."""
        self._collect("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Reconstruction scores of every test image."""
        self._collect("test", batch)

    def _report(self, stage: str) -> None:
        outputs = self.outputs[stage].compute()
        self.outputs[stage].reset()
        for name in ("psnr", "ssim", "mae"):
            self.log(f"{stage}/reconstruction/{name}", outputs[name].float().mean(), sync_dist=False)
        self.log(f"{stage}/identity/reconstruction", outputs["identity"].float().mean(), sync_dist=False)
        swap = outputs["swap_identity"].float()
        swap = swap[torch.isfinite(swap)]  # batches of one have no donor
        self.log(f"{stage}/identity/swap", swap.mean() if swap.numel() else math.nan, sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        """Mean reconstruction scores over every rank's images."""
        self._report("val")

    def on_test_epoch_end(self) -> None:
        """Mean reconstruction scores over every rank's images."""
        self._report("test")

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row: reconstruction PSNR / SSIM / MAE and identity cosines, labelled reconstructed (the run
        record's ``results.csv`` says how the networks were trained)."""
        table = reconstruction_table(metrics)
        if not table.empty:
            table.insert(0, "training", RECONSTRUCTED_NOTE)
        return table

    def configure_optimizers(self) -> Any:
        """Adam over ``E_attr`` and ``M`` (and ``G`` when ``train_generator``); pSp's default Ranger is not a
        maintained PyTorch optimizer, Adam is pSp's other option."""
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.lr, betas=tuple(self.hparams.betas))


def load_phase1_parts(module: nn.Module, path: str | Path) -> str:
    """Load ``attribute_encoder``, ``mapper`` and ``generator`` strictly from a phase-1 checkpoint."""
    where = "iFADIT phase 2 (model.disentangle_ckpt)"
    try:
        state = read_checkpoint(Path(path)).get("state_dict")
    except CheckpointError as err:
        raise ConfigError(f"{where}: {err}") from err
    if not isinstance(state, Mapping):
        raise ConfigError(f"{where}: checkpoint {path} has no Lightning 'state_dict'")
    for prefix in PHASE1_PARTS:
        part = getattr(module, prefix)
        own = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        if not own:
            raise ConfigError(
                f"{where}: checkpoint {path} holds no '{prefix}.*' weights; give the checkpoint of a phase-1 "
                "run (experiment ifadit/*phase1*)"
            )
        try:
            check_state_dict_fits(path, own, part.state_dict(), this_target=f"the {prefix} of phase 2")
        except CheckpointError as err:
            raise ConfigError(f"{where}: {err} (same network settings as the phase-1 run?)") from err
        part.load_state_dict(own, strict=True)
    return str(path)


@register_paper(
    "ifadit",
    title="iFADIT: invertible face anonymization via disentangled identity transform",
    venue="Pattern Recognition 2025",
    kind="privacy",
    stages=(IFaditDisentangle,),
)
class IFaditFlow(_IFaditModule):
    """Phase 2 (reconstructed training): the key-conditioned flow ``F`` and the compensation ``ICL``.

    The phase-1 networks come from ``disentangle_ckpt`` (a phase-1 run's checkpoint: attribute encoder,
    mapper and generator) or from the released files (``attribute_weights``, ``mapper_weights``,
    ``generator_weights``); ``flow_weights`` / ``compensation_weights`` load the released flow and ICL (then
    nothing needs training). ``compensation: null`` evaluates without ICL (its term must then have weight 0).
    ``judges``: name → a recognizer judging identities (each sees pSp's crop at its own input size; a null
    entry drops that judge);
    ``detector``: an optional face detector by name (``mtcnn``, ``hog``, ``mmod``), for the detection
    columns. ``recover_onto``: ``anonymised``
    pastes the recovered face onto the anonymised image (all a receiver holds), ``original`` onto the
    original (the authors' test).
    """

    def __init__(
        self,
        identity_recognizer: FaceRecognizer,
        attribute_encoder: AttributeEncoder,
        mapper: LatentMapper,
        generator: StyleGAN2Generator,
        flow: IdentityFlow,
        masker: FaceMasker,
        compensation: IdentityCompensation | None = None,
        judges: Mapping[str, FaceRecognizer] | None = None,
        detector: str | None = None,
        loss_weights: Mapping[str, float] | None = None,
        margin: float = ID_COS_MARGIN,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        disentangle_ckpt: str | None = None,
        generator_weights: str | None = None,
        attribute_weights: str | None = None,
        mapper_weights: str | None = None,
        flow_weights: str | None = None,
        compensation_weights: str | None = None,
        recover_onto: str = "anonymised",
        seed: int = 20,
        key_seed: int = 20,
        evaluate_untrained: bool = False,
    ) -> None:
        super().__init__(
            identity_recognizer, attribute_encoder, mapper, generator, masker, generator_weights, False
        )
        self.save_hyperparameters(
            logger=False,
            ignore=[
                "identity_recognizer",
                "attribute_encoder",
                "mapper",
                "generator",
                "flow",
                "masker",
                "compensation",
                "judges",
            ],
        )
        if recover_onto not in ("anonymised", "original"):
            raise ConfigError(f"model.recover_onto must be 'anonymised' or 'original', got {recover_onto!r}")
        self.weights = check_weights(loss_weights, PHASE2_WEIGHTS, "model.loss_weights")
        if compensation is None and self.weights["compensation"]:
            raise ConfigError(
                "model.compensation is null but the compensation term has a weight: set "
                "model.loss_weights.compensation=0 (the no-ICL ablation)"
            )
        released = (attribute_weights, mapper_weights)
        if disentangle_ckpt is not None and any(w is not None for w in released):
            raise ConfigError(
                "give the phase-1 networks either by model.disentangle_ckpt or by model.attribute_weights / "
                "model.mapper_weights (released files), not both"
            )
        if disentangle_ckpt is not None:
            load_phase1_parts(self, disentangle_ckpt)
        elif all(w is not None for w in released):
            load_into(self.attribute_encoder, attribute_weights)
            load_into(self.mapper, mapper_weights)
        elif not evaluate_untrained:
            raise ConfigError(
                "iFADIT phase 2 needs trained phase-1 networks: set "
                "model.disentangle_ckpt=<phase-1 checkpoint> "
                "or model.attribute_weights and model.mapper_weights (the released files); "
                "model.evaluate_untrained=true runs with random ones (plumbing only)"
            )
        freeze(self.attribute_encoder)
        freeze(self.mapper)
        self.flow, self.compensation = flow, compensation
        if flow_weights is not None and compensation is not None and compensation_weights is None:
            raise ConfigError(
                "model.flow_weights loads the released flow but the ICL would stay random: give "
                "model.compensation_weights too (manifest:ifadit-compensation), or model.compensation=null "
                "for the flow alone"
            )
        if flow_weights is not None:
            load_into(self.flow, flow_weights)
        if compensation_weights is not None:
            if compensation is None:
                raise ConfigError("model.compensation_weights given but model.compensation is null")
            load_into(self.compensation, compensation_weights)
        # the pipeline only groups the networks registered above: kept outside the module tree, so the
        # state dict (and every checkpoint) names each network once
        self.__dict__["_pipeline"] = IFaditPipeline(
            self.identity_encoder,
            self.attribute_encoder,
            self.mapper,
            self.flow,
            self.compensation,
            generator,
        )
        self.__dict__["_judges"] = {name: freeze(r) for name, r in (judges or {}).items() if r is not None}
        if detector is not None and detector not in DETECTORS:
            raise ConfigError(f"model.detector must be one of {sorted(DETECTORS)} or null, got {detector!r}")
        self.detector_name = detector
        self.__dict__["_detector"] = None  # built at the first evaluation (it loads its own weights)
        self.figure_batch: dict[str, Tensor] | None = None
        self.outputs = nn.ModuleDict({stage: TensorCollector(self._collected()) for stage in ("val", "test")})

    def frozen_parts(self) -> list[nn.Module]:
        """Everything but the flow and the compensation."""
        return [self.identity_encoder, self.attribute_encoder, self.mapper, self.generator]

    @property
    def pipeline(self) -> IFaditPipeline:
        """Anonymise / recover over this module's networks (see :class:`IFaditPipeline`)."""
        return self.__dict__["_pipeline"]

    @property
    def judges(self) -> dict[str, FaceRecognizer]:
        """The recognizers judging identities (held outside the module tree: never trained or saved)."""
        return self.__dict__["_judges"]

    @property
    def training_label(self) -> str:
        """How the flow and ICL were trained: released weights (both loaded) or the reconstructed recipe."""
        return RELEASED_NOTE if self.hparams.flow_weights is not None else RECONSTRUCTED_NOTE

    @property
    def requires_checkpoint(self) -> bool:
        """A trained flow is needed unless the released flow is loaded or untrained is asked for."""
        return self.hparams.flow_weights is None and not self.hparams.evaluate_untrained

    def _collected(self) -> list[str]:
        names = ["index"]
        for prefix in ("anonymised", "recovered", "wrong"):
            names += [f"{prefix}__{m}" for m in ("psnr", "ssim", "mae")]
        for judge in ("encoder", *self.judges):
            names += [f"id__{judge}__{v}" for v in ("anonymised", "recovered", "wrong", "diversity")]
        if self.detector_name is not None:
            names += [f"det__{field}" for field in DETECTION_FIELDS]
        return names

    # --- keys -------------------------------------------------------------------------------------------

    def _conditions(self, batch_size: int, seed: int) -> tuple[Tensor, Tensor]:
        """Two different key conditions (the right key and another) from one seed."""
        generator = torch.Generator().manual_seed(seed)
        keys = [draw_key(batch_size, generator).to(self.device) for _ in range(2)]
        with torch.no_grad():
            return self.pipeline.condition(keys[0]), self.pipeline.condition(keys[1])

    def _evaluation_conditions(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Per test image, two keys from ``key_seed`` and the image's dataset index: the table does not depend
        on the batch size or on how the test set is split over ranks (the authors drew one key per batch)."""
        pairs = []
        for index in indices.tolist():
            generator = torch.Generator().manual_seed(derive_seed(self.hparams.key_seed, int(index), 2))
            pairs.append(torch.cat([draw_key(1, generator) for _ in range(2)]))
        keys = torch.stack(pairs, dim=1).to(self.device)  # [2, B, 512]
        with torch.no_grad():
            return self.pipeline.condition(keys[0]), self.pipeline.condition(keys[1])

    # --- training ---------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The reconstructed phase-2 objective on one batch, under two fresh keys."""
        images = batch["image"]
        self.check_images(images)
        masks = self.masker(batch)
        right, other = self._conditions(
            images.shape[0], derive_seed(self.hparams.seed, self.global_step, self.global_rank)
        )
        with torch.no_grad():
            identity = self.identity_encoder(images)
        first = self.pipeline.anonymise(images, masks, right)
        cache: dict[str, Tensor] = {}

        def once(name: str, compute: Any) -> Any:
            if name not in cache:
                cache[name] = compute()
            return cache[name]

        def anonymous() -> Tensor:
            return once("anonymous", lambda: self.identity_encoder(first.image))

        def compensated() -> Tensor:
            return once(
                "compensated",
                lambda: anonymous() if self.compensation is None else self.compensation(anonymous()),
            )

        def recovered() -> Tensor:
            return once("recovered", lambda: self.flow.inverse(compensated(), right))

        def recovered_images() -> tuple[Tensor, Tensor]:
            face = self.pipeline.synthesise(recovered(), first.image)
            return blend(face, first.image, masks), images

        observed = {
            "anonymous": anonymous,
            "anonymous_other": lambda: self.identity_encoder(
                self.pipeline.anonymise(images, masks, other).image
            ),
            "compensated": compensated,
            "recovered": recovered,
            "wrong": lambda: self.flow.inverse(compensated(), other),
            "images": recovered_images,
        }
        terms = phase2_terms(identity, first.anonymous_identity, observed, self.weights, self.hparams.margin)
        loss = weighted_total(terms, self.weights)
        size = images.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in terms.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=size)
        return loss

    # --- evaluation -------------------------------------------------------------------------------------

    def _judge(self, recognizer: FaceRecognizer, images: Tensor) -> Tensor:
        crop = identity_crop(images * 2.0 - 1.0, recognizer_side(recognizer))
        return F.normalize(recognizer.forward_features(recognizer.preprocess(crop, "[-1,1]")), dim=1)

    def _detections(self, originals: Tensor, anonymised: Tensor) -> dict[str, Tensor]:
        def to_uint8(images: Tensor) -> list[np.ndarray]:
            array = (images.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu()
            return list(array.numpy())

        if self.__dict__["_detector"] is None:
            self.__dict__["_detector"] = build_detector(self.detector_name)
        detector: FaceDetector = self.__dict__["_detector"]
        found = detector.detect_batch(to_uint8(originals) + to_uint8(anonymised))
        n = originals.shape[0]
        rows = [face_consistency(found[i], found[n + i]) for i in range(n)]
        return {
            f"det__{field}": torch.tensor(
                [row[field] for row in rows], dtype=torch.float32, device=self.device
            )
            for field in DETECTION_FIELDS
        }

    def evaluate_batch(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per-image scores of one batch and the images of the grid (original, two keys, recoveries)."""
        images = batch["image"]
        self.check_images(images)
        masks = self.masker(batch)
        right, other = self._evaluation_conditions(batch["index"])
        first = self.pipeline.anonymise(images, masks, right)
        second = self.pipeline.anonymise(images, masks, other)
        background = images if self.hparams.recover_onto == "original" else first.image
        recovered = self.pipeline.recover(first.image, masks, right, background=background)
        wrong = self.pipeline.recover(first.image, masks, other, background=background)
        scores: dict[str, Tensor] = {"index": batch["index"]}
        scores |= image_scores("anonymised", first.image, images)
        scores |= image_scores("recovered", recovered, images)
        scores |= image_scores("wrong", wrong, images)
        judges: dict[str, Any] = {"encoder": self.identity_encoder, **self.judges}
        for name, judge in judges.items():
            embed = judge if name == "encoder" else (lambda x, j=judge: self._judge(j, x))
            clear, anon = embed(images), embed(first.image)
            scores[f"id__{name}__anonymised"] = cosine(anon, clear)
            scores[f"id__{name}__recovered"] = cosine(embed(recovered), clear)
            scores[f"id__{name}__wrong"] = cosine(embed(wrong), clear)
            scores[f"id__{name}__diversity"] = cosine(anon, embed(second.image))
        if self.detector_name is not None:
            scores |= self._detections(images, first.image)
        grid = {"original": images, "key 1": first.image, "key 2": second.image}
        grid |= {"recovered (key 1)": recovered, "wrong key (key 2)": wrong}
        return scores, grid

    def _collect(self, stage: str, batch: dict[str, Tensor], batch_idx: int) -> None:
        scores, grid = self.evaluate_batch(batch)
        self.outputs[stage].update(**scores)
        if stage == "test" and batch_idx == 0:
            self.figure_batch = {k: v[:GRID_ROWS].detach().cpu() for k, v in grid.items()}

    def on_test_start(self) -> None:
        """Move the judges (outside the module tree) to the module's device."""
        for judge in self.judges.values():
            judge.to(self.device)

    on_validation_start = on_test_start

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Scores of every validation image."""
        self._collect("val", batch, batch_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Scores of every test image (and the first batch's images for the grid figure)."""
        self._collect("test", batch, batch_idx)

    def _report(self, stage: str) -> None:
        outputs = self.outputs[stage].compute()
        self.outputs[stage].reset()
        for name, values in outputs.items():
            if name == "index":
                continue
            kind, *rest = name.split("__")
            if kind == "id":
                metric = f"{stage}/identity/{rest[0]}/{rest[1]}"
            elif kind == "det":
                metric = f"{stage}/detection/{rest[0]}"
            else:
                metric = f"{stage}/{kind}/{rest[0]}"
            values = values.float()
            if kind == "det":  # NaN = no face in one of the two images: counted by the detection rate only
                values = values[torch.isfinite(values)]
            value = values.mean() if values.numel() else torch.tensor(math.nan)
            self.log(metric, value, sync_dist=False, prog_bar=metric == f"{stage}/recovered/psnr")

    def on_validation_epoch_end(self) -> None:
        """Mean scores over every rank's images."""
        self._report("val")

    def on_test_epoch_end(self) -> None:
        """Mean scores over every rank's images, and the grid figure."""
        self._report("test")
        if self.figure_batch is not None:
            log_figure(self, "test/grid", grid_figure(self.figure_batch, self.training_label))
            self.figure_batch = None

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """Rows: anonymised, recovered (right key), wrong key; columns: how the flow was trained (released
        weights or the reconstructed recipe), image scores and identity cosines."""
        table = flow_table(metrics)
        if not table.empty:
            table.insert(0, "training", self.training_label)
        return table

    def configure_optimizers(self) -> Any:
        """Adam over ``F`` and ``ICL`` (reconstructed: the authors' optimiser is not published)."""
        params = [p for p in self.flow.parameters() if p.requires_grad]
        if self.compensation is not None:
            params += [p for p in self.compensation.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.lr, betas=tuple(self.hparams.betas))


def grid_figure(columns: Mapping[str, Tensor], training: str = RECONSTRUCTED_NOTE) -> Figure:
    """Images in rows, one column per version (the authors' test grid), titled with how it was trained."""
    names = list(columns)
    rows = next(iter(columns.values())).shape[0]
    fig = Figure(figsize=(2.0 * len(names), 2.0 * rows + 0.4))
    axes = fig.subplots(rows, len(names), squeeze=False)
    for r in range(rows):
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(columns[name][r].float().clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(f"iFADIT ({training})", fontsize=9)
    fig.tight_layout()
    return fig
