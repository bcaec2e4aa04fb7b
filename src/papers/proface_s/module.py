"""PRO-Face S (TCSVT'24): invertible, keyed face obfuscation.

Documentation: docs/papers/proface_s.md (the quoted section names below are its headings).

The only trainable part is the keyed INN :class:`~src.papers.proface_s.networks.ProFaceSNet`. A training step
("Losses"):

1. map the batch to [-1, 1]; obfuscate it with the configured obfuscator (a per-batch random choice for the
   ``hybridAll`` setting) using a generator seeded from ``(seed, global_step, rank)``;
2. draw i.i.d. ±1 keys ``k`` (and wrong keys ``k'``) with the same generator;
3. ``x_p = G(x, x_o; k)``, ``x_r = G⁻¹(x_p; k)``, ``x_w = G⁻¹(x_p; k')`` (recovery with the default ``ẑ``);
4. ``L = w_img·(5·P(x_o, x_p) + L1(x_o, x_p)) + w_rec·L_rec + w_wr·L_wr`` with ``P`` the configured perceptual
   distance (LPIPS-VGG in the paper) and the ``Random`` / ``Obfs`` wrong-recovery terms of "Losses".

Evaluation ("Evaluation protocol"): every evaluation obfuscator (by default the children of the hybrid, at
their evaluation strength) is a *setting*; per setting the key is derived from ``eval_password`` (PBKDF2, see
:mod:`src.papers.proface_s.keys`), the wrong key from a seeded random 16-character password per batch, and
these groups are scored, each with its own metric instances:

* ``p_*``: protected vs obfuscated; ``p_abs_*``: protected vs original;
* ``r_*``: right-key recovery vs original;
* ``wr_*``: wrong-key recovery (per-image min-max normalised) vs original (Random) or obfuscated (Obfs);

each with SSIM, PSNR and the perceptual metric under its honest name (``lpips_vgg``, ``st_lpips_vgg``, ...).
Invertibility numbers: ``rec_maxerr_exact_z`` (max |x_r − x| with the exact discarded ``z``), ``rec_maxerr``
(with the default ``ẑ``), ``rec_maxerr_q8`` (default ``ẑ`` after 8-bit quantisation of ``x_p``) — maxima over
every pixel of every image — ``rec_mae`` (mean |x_r − x| per image, default ``ẑ``), all in [0, 1] image units
and unclamped, and ``r_q8_psnr`` (PSNR of the recovery from the 8-bit ``x_p``).

Robustness (optional; ``test_tcsvt.py`` only saves these as pictures): recovery PSNRs vs the original with the
key of ``close_password`` (the original uses password ``1`` against ``0``: ``r_close_key_psnr``), with
Gaussian noise of each ``noise_stds`` ([-1, 1] units, the original's ``0.001·m``) added to ``x_p``
(``r_noise<std>_psnr``), and with the right key applied to ``x_o`` itself (``recover_from_obfuscated``:
``r_from_xo_psnr``; ``x_o`` carries no hidden face).

Identity (optional, not in the original test script; an addition, labelled as such): with
``anonymity_recognizer`` (a zoo :class:`~src.networks.recognizers.base.FaceRecognizer`), ``id_cos_<g>`` is
the mean cosine similarity of the recognizer's embedding of ``x_o`` / ``x_p`` / ``x_r`` / ``x_w`` (``g`` =
obf, p, r, wr) to that of the original. The recognizer is frozen and kept out of checkpoints.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric

from src.lightning_modules.base import LabModule
from src.metrics.image_quality import PSNR, SSIM
from src.obfuscators.base import Obfuscator
from src.obfuscators.hybrid import RandomChoice
from src.papers.proface_s.keys import (
    PBKDF2_ITERATIONS,
    PBKDF2_SALT,
    key_from_password,
    random_key_maps,
    random_password,
)
from src.papers.proface_s.networks import ProFaceSNet
from src.papers.registry import register_paper

WRONG_RECOVER_TYPES = ("Random", "Obfs")
TL1_MODES = ("row", "flat")
#: (w_img, w_rec, w_wr) of ``pass_epoch_mm23`` per wrong-recovery type (docs/papers/proface_s.md, "Losses")
LOSS_WEIGHTS: dict[str, dict[str, float]] = {
    "Random": {"img": 0.3, "rec": 0.5, "wr": 0.2},
    "Obfs": {"img": 0.2, "rec": 0.3, "wr": 0.5},
}
GROUPS = ("p", "p_abs", "r", "wr")
#: images whose identity is compared with the original's when an anonymity recognizer is configured
ANONYMITY_GROUPS = ("obf", "p", "r", "wr")
#: max |x_r − x| with the exact z / the default ẑ / the default ẑ after 8-bit x_p; mean |x_r − x| (default ẑ)
INVERTIBILITY_COLUMNS = ("rec_maxerr_exact_z", "rec_maxerr", "rec_maxerr_q8", "rec_mae", "r_q8_psnr")
LPIPS_INPUT_RANGES = ("[-1,1]", "[0,1]")
_TRAINING_ONLY_KEYS = {"name", "sigma_range", "kernel_range", "block_range", "std_range", "jitter", "targets"}


# ---------------------------------------------------------------------------------------------------- losses


def triplet_l1(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float, mode: str) -> Tensor:
    """``TripletMarginLoss(margin, p=1)`` on image batches.

    ``mode="row"`` (the original): applied to the 4-D tensors as they are, so the L1 distance runs along the
    last axis (one distance per image row and channel) and the hinge is averaged over rows, channels and
    images. ``mode="flat"``: one L1 distance per image over all its pixels.
    """
    if mode not in TL1_MODES:
        raise ValueError(f"tl1_mode must be one of {TL1_MODES}, got {mode!r}")
    if mode == "flat":
        anchor, positive, negative = (t.flatten(1) for t in (anchor, positive, negative))
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=1)


def triplet_distance(
    distance: Callable[[Tensor, Tensor], Tensor],
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float,
) -> Tensor:
    """``TripletMarginWithDistanceLoss(distance, margin)`` with a batch-mean distance, as in the original.

    The original's distance is ``lpips_loss(x, y)`` = LPIPS **averaged over the batch**, so the hinge is taken
    once on batch means: ``max(0, d(a, p) − d(a, n) + margin)``.
    """
    return F.relu(distance(anchor, positive) - distance(anchor, negative) + margin)


def proface_s_loss(
    x: Tensor,
    x_o: Tensor,
    x_p: Tensor,
    x_r: Tensor,
    x_w: Tensor,
    perceptual: Callable[[Tensor, Tensor], Tensor],
    wrong_recover_type: str = "Random",
    weights: Mapping[str, float] | None = None,
    margin: float = 1.2,
    tl1_mode: str = "row",
    image_perceptual_weight: float = 5.0,
) -> dict[str, Tensor]:
    """The loss terms of "Losses" (all images in [-1, 1]); ``perceptual(a, b)`` returns a batch-mean distance.

    Returns ``loss`` (weighted total) and the terms ``img`` (= ``image_perceptual_weight·img_perc + img_l1``),
    ``img_perc``, ``img_l1``, ``rec``, ``wr``. ``weights`` (keys ``img``, ``rec``, ``wr``) default to
    :data:`LOSS_WEIGHTS` of ``wrong_recover_type``.
    """
    if wrong_recover_type not in WRONG_RECOVER_TYPES:
        raise ValueError(
            f"wrong_recover_type must be one of {WRONG_RECOVER_TYPES}, got {wrong_recover_type!r}"
        )
    w = dict(LOSS_WEIGHTS[wrong_recover_type] if weights is None else weights)
    if set(w) != {"img", "rec", "wr"}:
        raise ValueError(f"loss weights need exactly the keys img, rec, wr; got {sorted(w)}")
    img_perc = perceptual(x_o, x_p)
    img_l1 = F.l1_loss(x_o, x_p)
    img = image_perceptual_weight * img_perc + img_l1
    if wrong_recover_type == "Random":
        rec = F.l1_loss(x_r, x)
        wr = triplet_distance(perceptual, x, x_r, x_w, margin) + triplet_l1(x, x_r, x_w, margin, tl1_mode)
    else:  # Obfs: the wrong key should reproduce the obfuscated look
        rec = F.l1_loss(x_r, x) + F.l1_loss(x_w, x_o)
        wr = triplet_distance(perceptual, x_r, x, x_o, margin) + triplet_distance(
            perceptual, x_w, x_o, x, margin
        )
    loss = w["img"] * img + w["rec"] * rec + w["wr"] * wr
    return {"loss": loss, "img": img, "img_perc": img_perc, "img_l1": img_l1, "rec": rec, "wr": wr}


# ----------------------------------------------------------------------------------------------- helpers


def to_signed(images: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return images * 2.0 - 1.0


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] → [0, 1] (no clamping)."""
    return (images + 1.0) / 2.0


def quantize_8bit(images: Tensor) -> Tensor:
    """A [-1, 1] image as it comes back from an 8-bit file: clamp, round to 1/255 steps, back to [-1, 1]."""
    return to_signed(torch.round(to_unit(images).clamp(0.0, 1.0) * 255.0) / 255.0)


def minmax_normalize(images: Tensor) -> Tensor:
    """Per-image min-max normalisation to [0, 1] (the original's ``normalize(x, adaptive=True)``, batch 1)."""
    flat = images.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scale = (high - low).clamp_min(1e-12)
    return ((flat - low[:, None]) / scale[:, None]).reshape(images.shape)


def step_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, step, rank, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


def noise_column(std: float) -> str:
    """Metric name of the recovery PSNR with Gaussian noise of ``std`` ([-1, 1] units) added to ``x_p``.

    The std is written in scientific notation with ``p`` for a decimal point (module names cannot hold dots):
    0.001 → ``r_noise1e-3_psnr``, 0.0025 → ``r_noise2p5e-3_psnr``.
    """
    text = np.format_float_scientific(float(std), trim="-", exp_digits=1).replace("+", "")
    return f"r_noise{text.replace('.', 'p')}_psnr"


def added_column_label(column: str) -> str | None:
    """The paper-table label of a robustness or identity column (``None`` for any other column)."""
    if column == "r_close_key_psnr":
        return "r psnr (close password)"
    if column == "r_from_xo_psnr":
        return "r psnr (from x_o)"
    if column.startswith("id_cos_"):
        return f"identity cos {column.removeprefix('id_cos_')} vs x"
    if column.startswith("r_noise") and column.endswith("_psnr"):
        std = column.removeprefix("r_noise").removesuffix("_psnr").replace("p", ".")
        return f"r psnr (x_p + noise {float(std):g})"
    return None


def default_eval_obfuscators(obfuscator: Obfuscator) -> dict[str, Obfuscator]:
    """The children of a :class:`RandomChoice` (one setting each, named by ``name``), else the obfuscator."""
    children = list(obfuscator.obfuscators) if isinstance(obfuscator, RandomChoice) else [obfuscator]
    names = [child.name for child in children]
    return {
        (name if names.count(name) == 1 else f"{name}_{i}"): child
        for i, (name, child) in enumerate(zip(names, children, strict=True))
    }


# ---------------------------------------------------------------------------------------------- the module


@register_paper(
    "proface_s",
    title="PRO-Face S: invertible image obfuscation for facial privacy protection via secure flow",
    venue="IEEE TCSVT 2024",
    kind="privacy",
    formerly=("src.lightning_modules.proface_s.ProFaceSModule",),
)
class ProFaceSModule(LabModule):
    """Train and evaluate PRO-Face S (see the module docstring for the step, losses and metrics).

    ``perceptual`` is a :class:`~src.losses.perceptual.PerceptualLoss` (``kind="lpips"`` for the paper, the
    offline ``st_lpips`` for synthetic demos); its ``report_name`` names the perceptual metric and loss logs.
    ``lpips_input_range="[0,1]"`` feeds the evaluation perceptual metric [0, 1] images as the original test
    script did (the network expects [-1, 1]; docs/papers/proface_s.md, "Original-code defects and fixes") and
    suffixes the metric name ``_in01``.
    """

    def __init__(
        self,
        net: ProFaceSNet,
        obfuscator: Obfuscator,
        perceptual: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        eval_obfuscators: Mapping[str, Obfuscator] | None = None,
        wrong_recover_type: str = "Random",
        loss_weights: Mapping[str, float] | None = None,
        margin: float = 1.2,
        tl1_mode: str = "row",
        image_perceptual_weight: float = 5.0,
        eval_password: str | int = 0,
        key_salt: str | int = PBKDF2_SALT,
        key_iterations: int = PBKDF2_ITERATIONS,
        wrong_password_seed: int = 0,
        seed: int = 0,
        lpips_input_range: str = "[-1,1]",
        close_password: str | int | None = None,
        noise_stds: Sequence[float] = (),
        recover_from_obfuscated: bool = False,
        anonymity_recognizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False,
            ignore=[
                "net",
                "obfuscator",
                "perceptual",
                "optimizer",
                "scheduler",
                "eval_obfuscators",
                "anonymity_recognizer",
            ],
        )
        if wrong_recover_type not in WRONG_RECOVER_TYPES:
            raise ValueError(
                f"model.wrong_recover_type must be one of {WRONG_RECOVER_TYPES}, got {wrong_recover_type!r}"
            )
        if tl1_mode not in TL1_MODES:
            raise ValueError(f"model.tl1_mode must be one of {TL1_MODES}, got {tl1_mode!r}")
        if lpips_input_range not in LPIPS_INPUT_RANGES:
            raise ValueError(
                f"model.lpips_input_range must be one of {LPIPS_INPUT_RANGES}, got {lpips_input_range!r}"
            )
        if not hasattr(perceptual, "report_name") or not hasattr(perceptual, "per_sample"):
            raise ValueError("model.perceptual must be a src.losses.perceptual.PerceptualLoss")
        bad_stds = [std for std in noise_stds if not (isinstance(std, (int, float)) and std > 0)]
        if bad_stds:
            raise ValueError(f"model.noise_stds must be positive numbers, got {list(noise_stds)}")
        if anonymity_recognizer is not None and not hasattr(anonymity_recognizer, "embed"):
            raise ValueError(
                "model.anonymity_recognizer must be a zoo FaceRecognizer (src.networks.recognizers."
                f"build_recognizer), got {type(anonymity_recognizer).__name__}"
            )
        # a plain dict: the frozen recognizer is not registered (no checkpoint entries, never optimised)
        self._anonymity: dict[str, nn.Module] = (
            {}
            if anonymity_recognizer is None
            else {"recognizer": anonymity_recognizer.eval().requires_grad_(False)}
        )
        self.weights = dict(LOSS_WEIGHTS[wrong_recover_type] if loss_weights is None else loss_weights)
        if set(self.weights) != {"img", "rec", "wr"}:
            raise ValueError(
                f"model.loss_weights needs exactly the keys img, rec, wr; got {sorted(self.weights)}"
            )
        self.net = net
        self.obfuscator = obfuscator
        self.perceptual = perceptual
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        settings = dict(eval_obfuscators) if eval_obfuscators else default_eval_obfuscators(obfuscator)
        self.eval_obfuscators = nn.ModuleDict(settings)
        suffix = "_in01" if lpips_input_range == "[0,1]" else ""
        self.perceptual_name = f"{perceptual.report_name}{suffix}"
        self.metrics = nn.ModuleDict(
            {stage: nn.ModuleDict({s: self._metric_set() for s in settings}) for stage in ("val", "test")}
        )
        self._seen = {"val": False, "test": False}
        self._key_cache: dict[tuple[str | int, int, int], Tensor] = {}

    def _metric_set(self) -> nn.ModuleDict:
        metrics: dict[str, nn.Module] = {}
        for group in GROUPS:
            metrics[f"{group}_ssim"] = SSIM()
            metrics[f"{group}_psnr"] = PSNR()
            metrics[f"{group}_{self.perceptual_name}"] = MeanMetric()
        for name in ("rec_maxerr_exact_z", "rec_maxerr", "rec_maxerr_q8"):
            metrics[name] = MaxMetric()
        metrics["rec_mae"] = MeanMetric()
        metrics["r_q8_psnr"] = PSNR()
        for name in self.robustness_columns():
            metrics[name] = PSNR()
        for name in self.anonymity_columns():
            metrics[name] = MeanMetric()
        return nn.ModuleDict(metrics)

    def anonymity_columns(self) -> list[str]:
        """Identity columns when ``anonymity_recognizer`` is set: mean cosine similarity of the recognizer's
        embedding of x_o / x_p / x_r / x_w to that of the original (an addition to the paper's metrics)."""
        return [f"id_cos_{group}" for group in ANONYMITY_GROUPS] if self._anonymity else []

    def robustness_columns(self) -> list[str]:
        """The configured robustness PSNRs: test_tcsvt.py's qualitative checks, as numbers.

        See "Evaluation protocol".
        """
        columns = ["r_close_key_psnr"] if self.hparams.close_password is not None else []
        columns += [noise_column(std) for std in self.hparams.noise_stds]
        if self.hparams.recover_from_obfuscated:
            columns.append("r_from_xo_psnr")
        return columns

    # -- inference API ([0, 1] images, like every datamodule) ------------------------------------------------

    def forward(self, images: Tensor, obfuscated: Tensor, key: Tensor) -> Tensor:
        """Protected image ([0, 1] units, not clamped) of ``images`` given their obfuscation and ``key``."""
        x_p, _ = self.net(to_signed(images), to_signed(obfuscated), key)
        return to_unit(x_p)

    def inverse(self, protected: Tensor, key: Tensor, z: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(recovered, obfuscated_hat)`` ([0, 1] units, not clamped) from a protected image and ``key``."""
        x_r, x_o_hat = self.net.inverse(to_signed(protected), key, z)
        return to_unit(x_r), to_unit(x_o_hat)

    def eval_key(self, height: int, width: int) -> Tensor:
        """The evaluation key ``[1, 1, H, W]`` from ``eval_password`` (PBKDF2-HMAC-SHA512); cached."""
        return self.password_key(self.hparams.eval_password, height, width)

    def password_key(self, password: str | int, height: int, width: int) -> Tensor:
        """The key ``[1, 1, H, W]`` of a fixed ``password`` with the configured salt and count; cached."""
        cache_key = (password, height, width)
        if cache_key not in self._key_cache:
            self._key_cache[cache_key] = key_from_password(
                password, height, width, self.hparams.key_salt, self.hparams.key_iterations
            )
        return self._key_cache[cache_key].to(self.device)

    # -- training ------------------------------------------------------------------------------------------

    def _perceptual_mean(self, a: Tensor, b: Tensor) -> Tensor:
        return self.perceptual(a, b)

    def on_train_epoch_start(self) -> None:
        """Training mode for the INN and the obfuscator (random strengths), whatever mode they were in."""
        self.net.train()
        self.obfuscator.train()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """A step of "Losses": obfuscate, protect with a random key, recover with it and with a wrong key."""
        images = batch["image"]
        b, _, h, w = images.shape
        generator = torch.Generator().manual_seed(
            step_seed(self.hparams.seed, self.global_step, self.global_rank)
        )
        with torch.no_grad():
            x_o = to_signed(self.obfuscator(images, generator=generator)).detach()
        x = to_signed(images)
        key = random_key_maps(b, h, w, generator, device=images.device)
        wrong_key = random_key_maps(b, h, w, generator, device=images.device)
        x_p, _ = self.net(x, x_o, key)
        x_r, _ = self.net.inverse(x_p, key, generator=generator)
        x_w, _ = self.net.inverse(x_p, wrong_key, generator=generator)
        terms = proface_s_loss(
            x,
            x_o,
            x_p,
            x_r,
            x_w,
            self._perceptual_mean,
            self.hparams.wrong_recover_type,
            self.weights,
            self.hparams.margin,
            self.hparams.tl1_mode,
            self.hparams.image_perceptual_weight,
        )
        for name, value in terms.items():
            label = f"img_{self.perceptual.report_name}" if name == "img_perc" else name
            self.log(
                f"train/{label}", value, on_step=True, on_epoch=True, prog_bar=name == "loss", batch_size=b
            )
        return terms["loss"]

    # -- evaluation ----------------------------------------------------------------------------------------

    def _perceptual_values(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image perceptual distance of two [0, 1] batches (fed as ``lpips_input_range`` says)."""
        if self.hparams.lpips_input_range == "[-1,1]":
            preds, target = to_signed(preds), to_signed(target)
        with torch.no_grad():
            return self.perceptual.per_sample(preds, target).flatten()

    def _update_group(self, metrics: nn.ModuleDict, group: str, preds: Tensor, target: Tensor) -> None:
        metrics[f"{group}_ssim"].update(preds, target)
        metrics[f"{group}_psnr"].update(preds, target)
        metrics[f"{group}_{self.perceptual_name}"].update(self._perceptual_values(preds, target))

    @torch.no_grad()
    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        images = batch["image"]
        h, w = images.shape[-2:]
        first = int(batch["index"][0]) if "index" in batch else 0
        key = self.eval_key(h, w)
        password = random_password(random.Random(step_seed(self.hparams.wrong_password_seed, first)))
        wrong_key = key_from_password(password, h, w, self.hparams.key_salt, self.hparams.key_iterations)
        wrong_key = wrong_key.to(images.device)
        x = to_signed(images)
        reference = self._identity(images) if self._anonymity else None
        for index, (setting, obfuscator) in enumerate(self.eval_obfuscators.items()):
            metrics = self.metrics[stage][setting]
            obfuscated = obfuscator(images).clamp(0.0, 1.0)
            noise_seed = step_seed(
                self.hparams.seed, first, index
            )  # Gaussian ẑ only (secret_key_as_noise off)
            x_p, z = self.net(x, to_signed(obfuscated), key)
            x_r, _ = self.net.inverse(x_p, key, generator=torch.Generator().manual_seed(noise_seed))
            x_r_exact, _ = self.net.inverse(x_p, key, z)
            x_r_q8, _ = self.net.inverse(
                quantize_8bit(x_p), key, generator=torch.Generator().manual_seed(noise_seed)
            )
            x_w, _ = self.net.inverse(x_p, wrong_key, generator=torch.Generator().manual_seed(noise_seed + 1))
            protected = to_unit(x_p).clamp(0.0, 1.0)
            recovered = to_unit(x_r).clamp(0.0, 1.0)
            wrong = minmax_normalize(x_w)
            wrong_target = images if self.hparams.wrong_recover_type == "Random" else obfuscated
            self._update_group(metrics, "p", protected, obfuscated)
            self._update_group(metrics, "p_abs", protected, images)
            self._update_group(metrics, "r", recovered, images)
            self._update_group(metrics, "wr", wrong, wrong_target)
            metrics["rec_maxerr_exact_z"].update((x_r_exact - x).abs().max() / 2.0)
            metrics["rec_maxerr"].update((x_r - x).abs().max() / 2.0)
            metrics["rec_maxerr_q8"].update((x_r_q8 - x).abs().max() / 2.0)
            metrics["rec_mae"].update((x_r - x).abs().flatten(1).mean(1) / 2.0)
            metrics["r_q8_psnr"].update(to_unit(x_r_q8).clamp(0.0, 1.0), images)
            self._update_robustness(metrics, images, x_p, to_signed(obfuscated), key, noise_seed)
            if reference is not None:
                variants = {"obf": obfuscated, "p": protected, "r": recovered, "wr": wrong}
                for group, variant in variants.items():
                    similarity = F.cosine_similarity(self._identity(variant), reference, dim=1)
                    metrics[f"id_cos_{group}"].update(similarity)
        self._seen[stage] = True

    def _identity(self, images: Tensor) -> Tensor:
        """The anonymity recognizer's L2-normalised embeddings of [0, 1] images (resized to its input)."""
        recognizer = self._anonymity["recognizer"].to(images.device).eval()
        return recognizer.embed(images, "[0,1]", normalize=True, resize=True)

    def _update_robustness(
        self, metrics: nn.ModuleDict, images: Tensor, x_p: Tensor, x_o: Tensor, key: Tensor, seed: int
    ) -> None:
        """Right-key recovery PSNRs under the configured attacks on the key or on ``x_p`` (all in [-1, 1])."""

        def recover(protected: Tensor, k: Tensor) -> Tensor:
            generator = torch.Generator().manual_seed(seed)  # Gaussian ẑ only (secret_key_as_noise off)
            return to_unit(self.net.inverse(protected, k, generator=generator)[0]).clamp(0.0, 1.0)

        if self.hparams.close_password is not None:
            close = self.password_key(self.hparams.close_password, *images.shape[-2:])
            metrics["r_close_key_psnr"].update(recover(x_p, close), images)
        for i, std in enumerate(self.hparams.noise_stds):
            noise = torch.randn(x_p.shape, generator=torch.Generator().manual_seed(seed + 10 + i))
            metrics[noise_column(std)].update(recover(x_p + std * noise.to(x_p), key), images)
        if self.hparams.recover_from_obfuscated:
            metrics["r_from_xo_psnr"].update(recover(x_o, key), images)

    def _report(self, stage: str) -> None:
        if not self._seen[stage]:
            return
        for setting, metrics in self.metrics[stage].items():
            for name, metric in metrics.items():
                self.log(f"{stage}/{setting}/{name}", float(metric.compute()), sync_dist=False)
                metric.reset()
        self._seen[stage] = False

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Evaluation-protocol metrics on the validation split (every evaluation setting)."""
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Evaluation-protocol metrics on the test split (every evaluation setting)."""
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        """Log and reset the validation metrics."""
        self._report("val")

    def on_test_epoch_end(self) -> None:
        """Log and reset the test metrics."""
        self._report("test")

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """A row per evaluation setting: its evaluation strength and every protocol / invertibility metric."""
        columns = [f"{g}_{m}" for g in GROUPS for m in ("ssim", "psnr", self.perceptual_name)]
        columns += list(INVERTIBILITY_COLUMNS) + self.robustness_columns() + self.anonymity_columns()
        target = "original" if self.hparams.wrong_recover_type == "Random" else "obfuscated"
        rows = []
        for setting, obfuscator in self.eval_obfuscators.items():
            described = {k: v for k, v in obfuscator.describe().items() if k not in _TRAINING_ONLY_KEYS}
            row: dict[str, object] = {
                "obfuscator": setting,
                "eval setting": ", ".join(f"{k}={v}" for k, v in described.items()) or "-",
                "wrong recovery vs": target,
            }
            for column in columns:
                row[column] = metrics.get(f"test/{setting}/{column}", math.nan)
            rows.append(row)
        return pd.DataFrame(rows)

    def configure_optimizers(self) -> Any:
        """The configured optimizer over the INN (constant lr unless a scheduler is configured)."""
        optimizer = self.optimizer_factory(params=self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)},
        }
