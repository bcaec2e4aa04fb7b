"""Makeup-privacy as a LightningModule: adversarial makeup transfer trained on MT-Dataset pairs, evaluated by
impersonation (1:1) and identification (1:N) against face recognizers (docs/papers/makeup_privacy.md).

**Forward (protection).** Source ``x`` and makeup reference ``y`` (RGB, [-1, 1] inside, [0, 1] in batches)
go through the frozen VGG19 (relu4_1 … relu1_1); the style-patch correspondence warps the reference's
features onto the source's layout, guided by parsing maps and keeping the source's features inside the
protected region; the SPADE generator decodes ``x̂ = G(warp(φ(x), φ(y)), φ(x))``.

- Test and validation: the parsing maps are the frozen BiSeNet's 19-class softmax maps of ``x`` and ``y``
  (as the authors' test scripts), the protected region their background + eyes + mouth interior + cloth +
  hair channels.
- Training: the protected region, the makeup regions of the histogram losses and (``faithful_bugs``) the
  semantic input come from the MT label maps. The semantic input is, by default, BiSeNet's maps as at test
  time (``train_semantics: bisenet``), or the MT labels one-hot encoded (``mt_labels``); with
  ``faithful_bugs: true`` the raw 1-channel label map, as the authors' training fed it.

**Training** (manual optimisation, the authors' ``train.py`` / ``pix2pix_trainer.py``): the discriminator is
stepped when ``batch_idx % d_every == 0`` (every 20th batch of an epoch, the first one included), before the
generator; the generator every batch. Both with RMSprop, lr 2e-4. The discriminator's weights are clamped to
[-0.01, 0.01] once, at construction (the authors' per-step clamp is a bare attribute reference that does
nothing). ``L_G`` is :func:`~src.papers.makeup_privacy.losses.weighted_total` of the terms of
:mod:`~src.papers.makeup_privacy.losses`; ``L_D`` the LSGAN real/fake sum.

**Evaluation** (decided by the batch keys):

- ``source`` / ``reference`` pairs (every source × every reference, or MT's fixed pairs): each protected
  image is clamped and quantised to 8 bits (the authors evaluate the PNGs they saved); for every test model,
  the cosine with the target's embedding, and the impersonation success rate (ASR) at FAR 0.1 / 0.01 /
  0.001 with the published AMT-GAN thresholds (models in ``published_thresholds``) or thresholds computed
  at each FAR on the clean sources' scores against the target (impostor pairs; ``computed``); the clean
  sources give the ``source`` baseline row. Robustness variants (``blur``, ``noise``, ``jpeg``) degrade the
  protected images before recognition. PSNR / SSIM of the protected images against the sources, FID behind
  ``fid``.
- ``query`` / ``gallery`` 1:N sets: each query is made up with its assigned reference; ``psr_model`` embeds
  the protected (un-quantised, as the authors' 1:N script) and clean queries and the galleries; protection
  success rate at top-k for both (``protected`` and the ``source`` baseline).

Frozen pretrained networks (VGG19, BiSeNet, the recognizers) are held outside the module tree: they are
neither checkpointed nor trained, stay in eval mode and follow the module's device. Only the generator and
the discriminator are in the state dict.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from src.config.errors import ConfigError
from src.datamodules.components.makeup_io import load_target_image
from src.evaluation.collector import TensorCollector
from src.lightning_modules.base import LabModule
from src.metrics.fid import FID
from src.metrics.image_quality import PSNR, SSIM
from src.metrics.impersonation import (
    PUBLISHED_FAR_THRESHOLDS,
    impersonation_success_rate,
    published_threshold,
    target_similarities,
)
from src.metrics.perceptual import LPIPS, LPIPS_NETS
from src.metrics.protection_rank import protection_rank_success_rate
from src.metrics.verification import threshold_at_far
from src.networks.recognizers.base import FaceRecognizer
from src.obfuscators.blur import gaussian_blur
from src.papers.makeup_privacy.correspondence import SemanticCorrespondence
from src.papers.makeup_privacy.discriminator import MultiscaleDiscriminator
from src.papers.makeup_privacy.generator import SPADEGenerator
from src.papers.makeup_privacy.losses import (
    LossWeights,
    discriminator_losses,
    feature_matching_loss,
    generator_gan_loss,
    makeup_terms,
    match_loss,
    recognizer_embedder,
    target_loss,
    vgg_loss,
    weighted_total,
)
from src.papers.makeup_privacy.parser import load_parser, parse
from src.papers.makeup_privacy.parsing import (
    nonmakeup_unchanged,
    protected_mask,
    region_masks,
    semantic_map,
)
from src.papers.makeup_privacy.report import metric_name, table_from_metrics
from src.papers.makeup_privacy.vgg import VGG19Features
from src.papers.registry import register_paper
from src.utils.seeding import derive_seed
from src.weights import resolve, resolve_spec

log = logging.getLogger(__name__)

#: the authors' defaults (base_options.py, test121.py)
FR_TRAIN = ("mobilefacenet", "facenet_vggface2", "ir_se50")
FR_TEST = ("ir152", "ir_se50", "mobilefacenet", "facenet_vggface2", "dlib_resnet")
FARS = (0.1, 0.01, 0.001)
TRAIN_SEMANTICS = ("bisenet", "mt_labels")
OPTIMIZERS = ("rmsprop", "adam")
#: the robustness variants of test121.py with its first (used) setting of each list
ROBUSTNESS_DEFAULTS: dict[str, dict[str, float]] = {
    "blur": {"kernel_size": 5, "sigma": 1.0},  # transforms.GaussianBlur((5, 5), 1) on the [-1, 1] image
    "noise": {"std": 0.05},  # + N(0, 0.05²) on the [-1, 1] image, not clamped
    "jpeg": {"quality": 80},  # cv2 JPEG of the [0, 1] image
}
#: the variant names every 1:1 run reports besides the robustness ones
SOURCE, PROTECTED = "source", "protected"


# ------------------------------------------------------------------------------------------------- helpers


def to_signed(images: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return images * 2.0 - 1.0


def as_saved(images: Tensor) -> Tensor:
    """[-1, 1] generator output → the [0, 1] image the authors saved and read back: clamped, then quantised
    to 8 bits as ``torchvision.utils.save_image`` (``floor(255·x + 0.5)``)."""
    unit = ((images + 1.0) / 2.0).clamp(0.0, 1.0)
    return torch.floor(unit * 255.0 + 0.5) / 255.0


def jpeg(images: Tensor, quality: int) -> Tensor:
    """[0, 1] RGB images through OpenCV's JPEG encoder and decoder at ``quality`` → [0, 1] (test121.py's
    ``image_jpeg``: 8-bit ``floor(255·x + 0.5)``, encoded in BGR order)."""
    out = []
    pixels = (images.detach().float().cpu() * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    for image in pixels:
        bgr = np.ascontiguousarray(image.flip(0).permute(1, 2, 0).numpy())
        ok, encoded = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise RuntimeError(f"OpenCV could not JPEG-encode an image of shape {tuple(bgr.shape)}")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        out.append(torch.from_numpy(decoded).permute(2, 0, 1).flip(0))
    return torch.stack(out).to(device=images.device, dtype=images.dtype) / 255.0


def degrade(
    name: str,
    saved: Tensor,
    params: Mapping[str, float],
    seeds: Sequence[int] = (),
    faithful_bugs: bool = False,
) -> Tensor:
    """A robustness variant of the saved protected images ``saved`` ([0, 1]) → [-1, 1], as test121.py feeds
    the recognizers.

    - ``blur``: Gaussian blur (``kernel_size``, ``sigma``), mirror padding — blurring the [0, 1] image equals
      torchvision's blur of the [-1, 1] one (a normalised kernel commutes with the affine map);
    - ``noise``: ``N(0, std²)`` added to the [-1, 1] image, not clamped; image ``i`` draws its noise from a
      CPU generator seeded with ``seeds[i]`` (the same noise whatever the batch size or device);
    - ``jpeg``: JPEG at ``quality``; the authors mapped the result back with ``clamp((x - 0.5) / 0.5, 0, 1)``,
      losing every value below mid-grey — reproduced with ``faithful_bugs``, else mapped to [-1, 1].
    """
    if name == "blur":
        sigmas = torch.full((saved.shape[0],), float(params["sigma"]), dtype=torch.float64)
        return to_signed(gaussian_blur(saved, sigmas, int(params["kernel_size"])))
    if name == "noise":
        if len(seeds) != saved.shape[0]:
            raise ValueError(
                f"degrade('noise'): {saved.shape[0]} images need as many seeds, got {len(seeds)}"
            )
        noise = torch.stack(
            [
                torch.randn(saved.shape[1:], generator=torch.Generator().manual_seed(int(seed)))
                for seed in seeds
            ]
        )
        return to_signed(saved) + float(params["std"]) * noise.to(saved.device, saved.dtype)
    if name == "jpeg":
        signed = to_signed(jpeg(saved, int(params["quality"])))
        return signed.clamp(0.0, 1.0) if faithful_bugs else signed
    raise ConfigError(f"model.robustness: unknown variant {name!r}; known: {sorted(ROBUSTNESS_DEFAULTS)}")


def load_generator_weights(generator: SPADEGenerator, weights: str) -> Path:
    """Load the authors' released generator (``latest_net_G.pth``: the plain state dict of their SPADE
    generator, ``manifest:<entry>`` or a path) into ``generator``, strictly; errors name the file."""
    path = Path(resolve_spec(weights))
    if not path.is_file():
        raise FileNotFoundError(f"Makeup-privacy generator weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected the generator's state dict, got {type(state).__name__}")
    try:
        generator.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:3]
        raise ValueError(
            f"{path} does not fit model.generator (the authors' SPADE generator, ngf 128, "
            f"multiscale_level 2): {' '.join(first)}"
        ) from None
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (the target image, recorded in the hyper-parameters)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _names(value: Sequence[str] | str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(f"model.{key} must be a list of recognizer names, got the string {value!r}")
    return tuple(str(v) for v in value)


# -------------------------------------------------------------------------------------------------- module


@register_paper(
    "makeup_privacy",
    title="Makeup-privacy: adversarial face privacy protection based on makeup style patch activation",
    venue="Computer Science (计算机科学) 2025",
    kind="privacy",
)
class MakeupPrivacyModule(LabModule):
    """Adversarial makeup transfer (module docstring). Config keys: docs/papers/makeup_privacy.md, "Config".

    ``recognizers``: name → frozen recognizer (a ``null`` entry is not built); ``fr_train`` names the
    training ensemble of the target loss, ``fr_test`` the 1:1 test models, ``psr_model`` the 1:N one.
    ``target_path``: the target identity's image, used by training and testing alike.
    """

    def __init__(
        self,
        generator: SPADEGenerator,
        discriminator: MultiscaleDiscriminator,
        correspondence: SemanticCorrespondence,
        vgg: VGG19Features,
        recognizers: Mapping[str, FaceRecognizer | None],
        target_path: str,
        fr_train: Sequence[str] = FR_TRAIN,
        fr_test: Sequence[str] = FR_TEST,
        psr_model: str = "ir_se50",
        published_thresholds: Sequence[str] = FR_TEST[:4],
        parser_weights: str | None = "manifest:bisenet-face-parsing-79999",
        parse_size: int = 512,
        train_semantics: str = "bisenet",
        faithful_bugs: bool = False,
        loss_weights: Mapping[str, float] | None = None,
        optimizer: str = "rmsprop",
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        d_every: int = 20,
        d_clamp: float | None = 0.01,
        niter_decay: int = 0,
        generator_weights: str | None = None,
        fars: Sequence[float] = FARS,
        psr_topk: Sequence[int] = (1, 5),
        quantize: bool = True,
        robustness: Sequence[str] = (),
        robustness_params: Mapping[str, Mapping[str, float]] | None = None,
        fid: bool = False,
        noise_seed: int = 0,
        lpips: str | None = "alex",
        lpips_random: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False, ignore=["generator", "discriminator", "correspondence", "vgg", "recognizers"]
        )
        self.automatic_optimization = False
        if train_semantics not in TRAIN_SEMANTICS:
            raise ConfigError(
                f"model.train_semantics must be one of {TRAIN_SEMANTICS}, got {train_semantics!r}"
            )
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"model.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if lpips is not None and lpips not in LPIPS_NETS:
            raise ConfigError(f"model.lpips must be one of {LPIPS_NETS} or null, got {lpips!r}")
        if lpips is not None and not lpips_random:  # fail now, not after training: the trunk is a download
            resolve(f"lpips-{lpips}-backbone")
        if int(d_every) < 1:
            raise ConfigError(f"model.d_every must be >= 1, got {d_every}")
        if int(niter_decay) < 0:
            raise ConfigError(f"model.niter_decay must be >= 0, got {niter_decay}")
        if correspondence.multiscale_level != generator.multiscale_level:
            raise ConfigError(
                f"model.correspondence.multiscale_level ({correspondence.multiscale_level}) must equal "
                f"model.generator.multiscale_level ({generator.multiscale_level})"
            )
        self.generator, self.discriminator, self.correspondence = generator, discriminator, correspondence
        if generator_weights is not None:
            load_generator_weights(self.generator, generator_weights)
        if d_clamp is not None:  # once, at construction: the authors' effective WGAN clamp
            with torch.no_grad():
                for param in self.discriminator.parameters():
                    param.clamp_(-float(d_clamp), float(d_clamp))
        self.loss_weights = LossWeights.from_mapping(loss_weights)
        self.fr_train, self.fr_test = _names(fr_train, "fr_train"), _names(fr_test, "fr_test")
        self.published = _names(published_thresholds, "published_thresholds")
        built = {str(name): rec for name, rec in dict(recognizers).items() if rec is not None}
        for key, names in (
            ("fr_train", self.fr_train),
            ("fr_test", self.fr_test),
            ("psr_model", (psr_model,)),
        ):
            unknown = [n for n in names if n not in built]
            if unknown:
                raise ConfigError(
                    f"model.{key} names {unknown}, which model.recognizers does not build "
                    f"(built: {sorted(built)})"
                )
        self.fars = tuple(float(f) for f in fars)
        for name in self.published:
            if name not in PUBLISHED_FAR_THRESHOLDS:
                raise ConfigError(
                    f"model.published_thresholds: no published thresholds for {name!r} "
                    f"(available: {sorted(PUBLISHED_FAR_THRESHOLDS)}); leave it out to compute them"
                )
            for far in self.fars:
                published_threshold(name, far)  # raises naming the FARs that exist
        self.psr_topk = tuple(int(k) for k in psr_topk)
        self.robustness = _names(robustness, "robustness")
        params = {name: dict(values) for name, values in ROBUSTNESS_DEFAULTS.items()}
        for name, values in dict(robustness_params or {}).items():
            if name not in params:
                raise ConfigError(
                    f"model.robustness_params: unknown variant {name!r}; known: {sorted(params)}"
                )
            params[name].update({k: float(v) for k, v in dict(values).items()})
        unknown = [n for n in self.robustness if n not in params]
        if unknown or len(set(self.robustness)) != len(self.robustness):
            raise ConfigError(
                f"model.robustness must list distinct variants of {sorted(params)}, "
                f"got {list(self.robustness)}"
            )
        self.robustness_params = params
        if vgg.channels[0] != generator.fc.in_channels:
            raise ConfigError(
                f"model.vgg gives {vgg.channels[0]} relu4_1 channels but model.generator.semantic_nc is "
                f"{generator.fc.in_channels}: set model.generator.semantic_nc (512 / vgg.width_divisor)"
            )
        # frozen networks, outside the module tree (not checkpointed, not trained, always in eval mode)
        with warnings.catch_warnings():
            if parser_weights is None:
                warnings.simplefilter("ignore")
            parser = load_parser(parser_weights)
        self.__dict__["frozen"] = nn.ModuleDict(
            {"vgg": vgg, "parser": parser, "recognizers": nn.ModuleDict(built)}
        ).eval()
        self.frozen.requires_grad_(False)
        self.__dict__["_frozen_device"] = torch.device("cpu")
        self.embedders: dict[str, Callable[[Tensor], Tensor]] = {
            name: recognizer_embedder(rec) for name, rec in built.items()
        }
        # the target identity: one image for training and testing, recorded with its digest
        path = Path(str(target_path)).expanduser()
        target = load_target_image(path, generator.image_size)
        self.register_buffer("target", to_signed(target).unsqueeze(0), persistent=False)
        self.hparams["target_sha256"] = file_sha256(path)
        # evaluation state
        pair_names = ["index", "source_index", *(f"{SOURCE}__{m}" for m in self.fr_test)]
        pair_names += [f"{v}__{m}" for v in (PROTECTED, *self.robustness) for m in self.fr_test]
        self.pair_scores = TensorCollector(pair_names)
        self.rank_embeddings = TensorCollector(["index", "gallery", SOURCE, PROTECTED])
        self.psnr, self.ssim = PSNR(), SSIM()
        self.__dict__["fid_metric"] = None
        self.__dict__["lpips_metric"] = None
        self._target_embeddings: dict[str, Tensor] = {}

    # --- frozen networks ------------------------------------------------------------------------------

    def _frozen(self) -> nn.ModuleDict:
        """The frozen networks, moved to the module's device when it changed."""
        if self._frozen_device != self.device:
            self.frozen.to(self.device)
            self.__dict__["_frozen_device"] = self.device
        return self.frozen

    @property
    def requires_checkpoint(self) -> bool:
        """Testing needs a trained generator unless the authors' released one is loaded."""
        return self.hparams.generator_weights is None

    # --- the protection pipeline ----------------------------------------------------------------------

    def _check_size(self, images: Tensor, key: str) -> None:
        size = self.generator.image_size
        if tuple(images.shape[-2:]) != (size, size):
            raise ConfigError(
                f"batch['{key}'] is {tuple(images.shape[-2:])} but the generator makes {size}x{size} images: "
                f"set datamodule.image_size={size} (or model.generator.image_size)"
            )

    def parse(self, images: Tensor) -> Tensor:
        """BiSeNet softmax maps ``[B, 19, S, S]`` of [-1, 1] images (the authors' 512-px pass)."""
        return parse(
            self._frozen()["parser"],
            images,
            "[-1,1]",
            output_size=images.shape[-1],
            work_size=int(self.hparams.parse_size),
            faithful_bugs=bool(self.hparams.faithful_bugs),
        )

    def warp(
        self, x: Tensor, y: Tensor, x_semantic: Tensor, y_semantic: Tensor, x_protect: Tensor
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], list[Tensor]]:
        """(φ(x), φ(y), warped reference features), without gradients (nothing here is trained)."""
        with torch.no_grad():
            vgg = self._frozen()["vgg"]
            x_features, y_features = vgg(x), vgg(y)
            warped = self.correspondence(x_features, y_features, x_semantic, y_semantic, x_protect)
        return x_features, y_features, warped

    @torch.no_grad()
    def protect_images(self, source: Tensor, reference: Tensor) -> Tensor:
        """The test-time pipeline: [0, 1] sources and references → made-up sources in [-1, 1] (raw
        generator output), with BiSeNet parsing and the BiSeNet protected region."""
        self._check_size(source, "source")
        self._check_size(reference, "reference")
        x, y = to_signed(source), to_signed(reference)
        x_semantic, y_semantic = self.parse(x), self.parse(y)
        x_features, _, warped = self.warp(x, y, x_semantic, y_semantic, protected_mask(x_semantic, "bisenet"))
        return self.generator(warped, x_features)

    def forward(self, source: Tensor, reference: Tensor) -> Tensor:
        """Protected images in [0, 1] (clamped, not quantised) of [0, 1] sources made up as ``reference``."""
        return ((self.protect_images(source, reference) + 1.0) / 2.0).clamp(0.0, 1.0)

    # --- training -------------------------------------------------------------------------------------

    def training_semantics(
        self, x: Tensor, y: Tensor, x_labels: Tensor, y_labels: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The correspondence's semantic input in training (module docstring)."""
        if self.hparams.faithful_bugs or self.hparams.train_semantics == "mt_labels":
            faithful = bool(self.hparams.faithful_bugs)
            return semantic_map(x_labels, faithful), semantic_map(y_labels, faithful)
        return self.parse(x), self.parse(y)

    def discriminate(
        self, x: Tensor, fake: Tensor, y: Tensor
    ) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
        """D's outputs on (x, x̂) and (x, y), computed in one batch as the authors do."""
        out = self.discriminator(torch.cat([torch.cat([x, fake], 1), torch.cat([x, y], 1)], 0))
        n = x.shape[0]
        return [[t[:n] for t in scale] for scale in out], [[t[n:] for t in scale] for scale in out]

    def generator_terms(
        self,
        x: Tensor,
        y: Tensor,
        fake: Tensor,
        y_features: Sequence[Tensor],
        warped: Sequence[Tensor],
        protect: Tensor,
        x_labels: Tensor,
        y_labels: Tensor,
    ) -> dict[str, Tensor]:
        """Every weighted generator term (unweighted values; terms of weight 0 are not computed)."""
        weights = self.loss_weights
        terms: dict[str, Tensor] = {}
        if weights.gan or weights.feature_matching:
            fake_pred, real_pred = self.discriminate(x, fake, y)
            if weights.gan:
                terms["gan"] = generator_gan_loss(fake_pred)
            if weights.feature_matching:
                terms["feature_matching"] = feature_matching_loss(fake_pred, real_pred)
        if weights.vgg or weights.match:
            fake_features = self._frozen()["vgg"](fake)
            if weights.vgg:
                terms["vgg"] = vgg_loss(fake, x, protect, fake_features, y_features)
            if weights.match:
                terms["match"] = match_loss(fake_features, warped)
        terms |= makeup_terms(fake, y, x, region_masks(x_labels, "mt"), region_masks(y_labels, "mt"), weights)
        if weights.target:
            self._frozen()
            embedders = [self.embedders[name] for name in self.fr_train]
            terms["target"] = target_loss(fake, self.target, x, embedders)
        return terms

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """D (every ``d_every`` batches), then G (module docstring)."""
        opt_g, opt_d = self.optimizers()
        self._check_size(batch["source"], "source")
        x, y = to_signed(batch["source"]), to_signed(batch["reference"])
        x_labels, y_labels = batch["source_labels"].unsqueeze(1), batch["reference_labels"].unsqueeze(1)
        protect = nonmakeup_unchanged(x_labels, y_labels, bool(self.hparams.faithful_bugs))
        x_semantic, y_semantic = self.training_semantics(x, y, x_labels, y_labels)
        x_features, y_features, warped = self.warp(x, y, x_semantic, y_semantic, protect)
        size = x.shape[0]
        if batch_idx % int(self.hparams.d_every) == 0:
            self.toggle_optimizer(opt_d)
            with torch.no_grad():
                fake = self.generator(warped, x_features)
            d_losses = discriminator_losses(*self.discriminate(x, fake, y))
            loss_d = d_losses["fake"] + d_losses["real"]
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
            self.untoggle_optimizer(opt_d)
            for name, value in {"loss_d": loss_d, **{f"d_{k}": v for k, v in d_losses.items()}}.items():
                self.log(f"train/{name}", value.detach(), on_step=True, on_epoch=True, batch_size=size)
        self.toggle_optimizer(opt_g)
        fake = self.generator(warped, x_features)
        terms = self.generator_terms(x, y, fake, y_features, warped, protect, x_labels, y_labels)
        loss_g = weighted_total(terms, self.loss_weights)
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.log("train/loss_g", loss_g.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in terms.items():
            self.log(f"train/{name}", value.detach(), on_step=False, on_epoch=True, batch_size=size)

    def on_train_epoch_end(self) -> None:
        """The authors' learning-rate schedule: constant, then (``niter_decay`` > 0) linear decay to 0."""
        for scheduler in self.lr_schedulers() or []:
            scheduler.step()

    def configure_optimizers(self) -> Any:
        """RMSprop (or Adam with ``betas``) for G and for D, lr ``lr`` each (``no_TTUR``); a per-epoch
        factor ``1 - max(0, e - (max_epochs - niter_decay)) / niter_decay`` (1 when ``niter_decay`` is 0)."""
        lr = float(self.hparams.lr)
        if self.hparams.optimizer == "adam":
            betas = tuple(float(b) for b in self.hparams.betas)
            opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
            opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        else:
            opt_g = torch.optim.RMSprop(self.generator.parameters(), lr=lr)
            opt_d = torch.optim.RMSprop(self.discriminator.parameters(), lr=lr)
        decay = int(self.hparams.niter_decay)
        max_epochs = getattr(self._trainer, "max_epochs", None) if self._trainer is not None else None
        start = max(0, int(max_epochs) - decay) if decay and max_epochs and max_epochs > 0 else 0

        def factor(epoch: int) -> float:
            return 1.0 if not decay else max(0.0, 1.0 - max(0, epoch - start) / decay)

        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], [{"scheduler": s, "interval": "epoch"} for s in schedulers]

    # --- validation -----------------------------------------------------------------------------------

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """Mean cosine to the target of the protected images under each training model (``val/cos/*``)."""
        if "source" not in batch:
            return
        protected = self.protect_images(batch["source"], batch["reference"])
        size = protected.shape[0]
        values = []
        for name in self.fr_train:
            cos = target_similarities(self._embed(name, protected), self._target_embedding(name))
            values.append(cos.mean())
            self.log(f"val/cos/{name}", values[-1].float(), batch_size=size, sync_dist=True)
        self.log(
            "val/cos", torch.stack(values).mean().float(), batch_size=size, sync_dist=True, prog_bar=True
        )

    # --- evaluation -----------------------------------------------------------------------------------

    def _embed(self, name: str, images: Tensor) -> Tensor:
        """Raw embeddings of [-1, 1] images under recognizer ``name`` (resized as the authors do)."""
        self._frozen()
        return self.embedders[name](images)

    def _target_embedding(self, name: str) -> Tensor:
        if name not in self._target_embeddings or self._target_embeddings[name].device != self.device:
            with torch.no_grad():
                self._target_embeddings[name] = self._embed(name, self.target)
        return self._target_embeddings[name]

    def on_validation_epoch_start(self) -> None:
        self._target_embeddings = {}

    def on_test_start(self) -> None:
        """Fresh target embeddings; the FID metric (outside the module tree) when ``fid``."""
        self._target_embeddings = {}
        if self.hparams.fid:
            self.__dict__["fid_metric"] = FID().to(self.device)
        if self.hparams.lpips is not None:  # the trunk comes through the weights manifest (checked at build)
            metric = LPIPS(net=self.hparams.lpips, random_backbone=bool(self.hparams.lpips_random))
            self.__dict__["lpips_metric"] = metric.to(self.device)  # used by 1:1 pairs only

    def _noise_seeds(self, batch: Mapping[str, Tensor]) -> list[int]:
        """One noise seed per image: ``noise_seed`` mixed with the image's dataset index."""
        return [derive_seed(int(self.hparams.noise_seed), int(i)) for i in batch["index"].tolist()]

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        """Protect the batch and collect what the protocol of its kind needs (module docstring)."""
        if "query" in batch:
            self._rank_step(batch)
        elif "source" in batch and "reference" in batch:
            self._pair_step(batch)
        else:
            raise ValueError(
                "Makeup-privacy test batches hold source/reference pairs or 1:N query/gallery sets; got "
                f"keys {sorted(batch)}"
            )

    @torch.no_grad()
    def _pair_step(self, batch: Mapping[str, Tensor]) -> None:
        source = batch["source"]
        protected = self.protect_images(source, batch["reference"])
        saved = as_saved(protected) if self.hparams.quantize else ((protected + 1) / 2).clamp(0, 1)
        variants = {SOURCE: to_signed(source), PROTECTED: to_signed(saved)}
        seeds = self._noise_seeds(batch)
        for name in self.robustness:
            variants[name] = degrade(
                name, saved, self.robustness_params[name], seeds, bool(self.hparams.faithful_bugs)
            )
        scores = {
            f"{variant}__{model}": target_similarities(
                self._embed(model, images), self._target_embedding(model)
            )
            for variant, images in variants.items()
            for model in self.fr_test
        }
        self.pair_scores.update(index=batch["index"], source_index=batch["source_index"], **scores)
        self.psnr.update(saved, source)
        self.ssim.update(saved, source)
        if self.fid_metric is not None:
            self.fid_metric.update(source, real=True)
            self.fid_metric.update(saved, real=False)
        if self.lpips_metric is not None:
            self.lpips_metric.update(saved, source)

    @torch.no_grad()
    def _rank_step(self, batch: Mapping[str, Tensor]) -> None:
        if "reference" not in batch:
            raise ConfigError(
                "1:N evaluation makes up each query with a reference: set datamodule.reference_dir"
            )
        query, model = batch["query"], str(self.hparams.psr_model)
        protected = self.protect_images(query, batch["reference"])  # raw output, as test12n.py
        self.rank_embeddings.update(
            index=batch["index"],
            gallery=self._embed(model, to_signed(batch["gallery"])),
            **{SOURCE: self._embed(model, to_signed(query)), PROTECTED: self._embed(model, protected)},
        )

    def thresholds(self, model: str, clean_scores: Tensor) -> tuple[dict[float, float], bool]:
        """The decision threshold of ``model`` at each FAR, and whether they were computed: the published
        AMT-GAN value (``published_thresholds``) or :func:`threshold_at_far` on the clean sources' target
        scores (impostor pairs); a FAR the number of sources cannot resolve is left out (warned)."""
        if model in self.published:
            return {far: published_threshold(model, far) for far in self.fars}, False
        found = {}
        for far in self.fars:
            try:
                found[far] = threshold_at_far(clean_scores, far)
            except ValueError as exc:
                warnings.warn(
                    f"Makeup-privacy: no computed {model} threshold at FAR {far:g}: {exc}", stacklevel=2
                )
        return found, True

    def _pair_metrics(self) -> dict[str, float]:
        outputs = self.pair_scores.compute()
        order = torch.argsort(outputs["index"])
        outputs = {k: v[order] for k, v in outputs.items()}
        _, first = np.unique(outputs["index"].cpu().numpy(), return_index=True)  # DDP padding duplicates
        outputs = {k: v[torch.as_tensor(first, device=v.device)] for k, v in outputs.items()}
        _, sources = np.unique(outputs["source_index"].cpu().numpy(), return_index=True)
        sources = torch.as_tensor(sources, device=outputs["index"].device)
        metrics: dict[str, float] = {}
        for model in self.fr_test:
            clean = outputs[f"{SOURCE}__{model}"][sources].double()
            thresholds, computed = self.thresholds(model, clean)
            metrics[metric_name("threshold", None, model, leaf="computed")] = float(computed)
            for far, value in thresholds.items():
                metrics[metric_name("threshold", None, model, far=far)] = value
            for variant in (SOURCE, PROTECTED, *self.robustness):
                scores = clean if variant == SOURCE else outputs[f"{variant}__{model}"].double()
                metrics[metric_name("cos", variant, model)] = float(scores.mean())
                for far, value in thresholds.items():
                    rate = impersonation_success_rate(scores, value)
                    metrics[metric_name("asr", variant, model, far=far)] = rate
        metrics[metric_name("psnr")] = float(self.psnr.compute())
        metrics[metric_name("ssim")] = float(self.ssim.compute())
        if self.fid_metric is not None:
            metrics[metric_name("fid")] = float(self.fid_metric.compute())
        if self.lpips_metric is not None:  # lpips_<net> (lpips_<net>_RANDOM with a random trunk)
            metrics[metric_name(self.lpips_metric.report_name)] = float(self.lpips_metric.compute())
        return metrics

    def _rank_metrics(self) -> dict[str, float]:
        outputs = self.rank_embeddings.compute()
        _, first = np.unique(outputs["index"].cpu().numpy(), return_index=True)  # sorted, deduplicated
        outputs = {k: v[torch.as_tensor(first, device=v.device)] for k, v in outputs.items()}
        impostors = outputs["gallery"].shape[0] - 1
        ks = [k for k in self.psr_topk if k <= impostors]
        if len(ks) < len(self.psr_topk):
            warnings.warn(
                f"Makeup-privacy: PSR top-k for k > {impostors} skipped (the gallery has {impostors} "
                "impostors per query)",
                stacklevel=2,
            )
        metrics: dict[str, float] = {}
        model = str(self.hparams.psr_model)
        for variant in (SOURCE, PROTECTED):
            if not ks:
                break
            rates = protection_rank_success_rate(outputs[variant].double(), outputs["gallery"].double(), ks)
            for k in ks:
                metrics[metric_name("psr", variant, model, top=k)] = rates[f"top{k}"]
        return metrics

    def on_test_epoch_end(self) -> None:
        """Every metric of the protocols that saw data, gathered from every rank, logged as ``test/*``."""
        metrics: dict[str, float] = {}
        if not self.pair_scores.is_empty():
            metrics |= self._pair_metrics()
        if not self.rank_embeddings.is_empty():
            metrics |= self._rank_metrics()
        for name, value in metrics.items():
            self.log(name, value, rank_zero_only=False, sync_dist=False)
        for metric in (self.pair_scores, self.rank_embeddings, self.psnr, self.ssim):
            metric.reset()
        self.__dict__["fid_metric"] = None
        self.__dict__["lpips_metric"] = None

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """One row per (protocol, variant, model): ASR per FAR, cosine to the target, threshold source, PSR
        top-k; PSNR / SSIM / FID on the protected rows."""
        return table_from_metrics(metrics)
