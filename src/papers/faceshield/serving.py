"""FaceShield served to people: DP identity perturbation of each face (``load("faceshield", ckpt=...)``).

The served method is the Stage II module's evaluation (``FaceShieldIRC.test_step``) applied to face crops:
self-swap extraction and decoding (:func:`src.papers.faceshield.pipeline.prepare`), one DP release of the
restricted identity by a :class:`DPPerturbator`, the generator, and the face back at the crop's size. It
serves checkpoints of ``faceshield/stage2_irc`` runs: the extractor, decoder and generator come from the
checkpoint (the discriminators too, unused); the released files, judges and LPIPS trunk are not needed.

Randomness: every call draws a fresh seed from the OS CSPRNG (never stored), from which the IB / attribute
noise and the DP noise are derived as the evaluation derives them from its public ``noise_seed``. The
privacy record carries the sampler's ε, whether it is certified, δ and the accounting of repeated releases
(``docs/papers/faceshield.md``, "DP perturbator"); the ε covers the identity vector only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import FaceCrop, ProtectionMethod, ServingError, check_options
from src.metrics.privacy.record import secret_seed
from src.papers.faceshield.evaluation import SEMANTICS, privacy_columns
from src.papers.faceshield.module import FaceShieldIRC, noise_seed
from src.papers.faceshield.perturbator import DPP_SAMPLERS, DPPerturbator
from src.papers.faceshield.pipeline import from_faceshield, prepare, to_faceshield
from src.papers.registry import MethodEntry, register_method

__all__ = ["CROP", "FaceShieldMethod", "build", "served_perturbator"]

NAME = PAPER = "faceshield"
#: FaceShield's alignment (ArcFace's 5 points shrunk by 0.85, FFHQ-like) around an MTCNN box: side 1.36 x
#: the box's larger side, centre 0.11 box heights above the box's (measured on skimage's astronaut)
CROP = FaceCrop(scale=1.35, shift=-0.1)
#: the original test.py's DP step when a checkpoint configures none
DEFAULT_SAMPLER, DEFAULT_EPSILON = "faceshield_repo", 30.0
#: the noise stream of the served DP release (the evaluation names each stream after its variant)
SERVED_STREAM = "served"
#: state-dict prefixes of the parts dropped for serving (judges, baselines, evaluation metrics)
IGNORED = (
    "evaluators.",
    "baselines.",
    "perceptual.",
    "ssim.",
    "psnr.",
    "lpips.",
    "released_cos.",
    "embeddings.",
)
OPTIONS = {
    "sampler": f"DP sampler: one of {', '.join(DPP_SAMPLERS)} (default: the checkpoint's evaluated variant, "
    "else faceshield_repo, the original's)",
    "epsilon": "ε of the DP step (default: the checkpoint's evaluated variant, else 30, the original's)",
}
UNCERTIFIED_NOTE = (
    "the authors' sampler: its ε is a nominal angular rate, not a differential-privacy guarantee (the "
    "audited δ at ε' = ε is near 1); sampler=purkayastha gives a certified ε-LDP identity at the same ε, "
    "at the price of a nearly random identity"
)
COVERS = (
    "the 512-d identity vector only: the decoder's input (the photo and its attribute features), the "
    "background and hair and whatever the generator memorised do not pass through the DP step, so the image "
    "is not ε-private (docs/papers/faceshield.md, 'What the ε does not cover')"
)
ACCOUNTING = (
    "one release per face per protect call (each photo, each video frame): releases of the same person "
    "compose per identity (basic composition: k releases give k·ε for the certified samplers; the "
    "faceshield_repo sampler stays uncertified at any k). Fresh secret noise each time: averaging many "
    "releases of one face approaches its identity (docs/papers/faceshield.md, 'Repeated releases of the "
    "same face')"
)


def _edit(model: dict[str, Any]) -> dict[str, Any]:
    """The Stage II config without training-only files: networks from the checkpoint, no judges."""
    model["extractor"] = {**model["extractor"], "released": [], "readout_dir": None}
    model["renderer"] = {**model["renderer"], "released": []}
    model.update(
        extractor_ckpt=None,
        iid_weights=None,
        perceptual=None,
        evaluators={},
        whitebox=False,
        baselines={},
        perturbators={},
    )
    return model


def configured_variant(checkpoint: MethodCheckpoint) -> tuple[str, dict[str, Any]]:
    """The first DP variant the checkpoint's run evaluated (name, settings), or the original's default."""
    perturbators = checkpoint.value("model.perturbators")
    if isinstance(perturbators, Mapping):
        for name, settings in perturbators.items():
            if isinstance(settings, Mapping):
                return str(name), dict(settings)
    return f"{DEFAULT_SAMPLER}_eps30", {"sampler": DEFAULT_SAMPLER, "epsilon": DEFAULT_EPSILON}


class FaceShieldMethod(ProtectionMethod):
    """FaceShield's self-swap protection with one DP release of each face's identity per call."""

    reversible = False
    needs_password = False

    def __init__(
        self,
        module: FaceShieldIRC,
        perturbator: DPPerturbator,
        *,
        device: str | torch.device = "cpu",
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        if perturbator.seed is not None:
            raise ValueError("FaceShield serving: the DP noise must be secret (a perturbator without a seed)")
        description = (
            f"FaceShield: DP identity perturbation ({perturbator.sampler}, ε={perturbator.epsilon:g}, "
            f"{SEMANTICS[perturbator.sampler]})"
        )
        super().__init__(
            NAME,
            PAPER,
            module.extractor.image_size,
            crop=CROP,
            device=device,
            description=description,
            provenance=provenance,
        )
        self.module = module
        self.perturbator = perturbator
        self._dp: dict[str, Any] | None = None

    def _generator(self, seed: int, stream: str) -> torch.Generator:
        """One noise stream of one call, derived as the evaluation derives its streams from a seed."""
        return torch.Generator(device=self.device).manual_seed(noise_seed(seed, 0, stream))

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        self.check_password(password)
        seed, _ = secret_seed()  # never stored: the released noise cannot be re-derived
        images = faces.to(self.device, torch.float32)
        size = (images.shape[-2], images.shape[-1])
        extractor, renderer = self.module.extractor, self.module.renderer
        prepared = prepare(
            extractor, renderer, to_faceshield(images, extractor.image_size), self._generator(seed, "network")
        )
        released = self.perturbator(prepared.restricted, self._generator(seed, SERVED_STREAM))
        protected = renderer.generate(released.output, prepared.attrs, prepared.lambda_maps)
        return from_faceshield(protected, size)

    def privacy_record(self) -> dict[str, Any]:
        record = super().privacy_record()
        record.update(self._dp_record())
        return record

    def _dp_record(self) -> dict[str, Any]:
        """The DP part of the record: computed once (the audit of the authors' sampler is Monte Carlo)."""
        if self._dp is None:
            fresh = DPPerturbator(
                self.perturbator.sampler,
                self.perturbator.epsilon,
                self.perturbator.delta_theta,
                dimension=self.perturbator.dimension,
            )  # never used: its record is that of one release with secret CSPRNG noise
            certification = fresh.certification(1)
            dp = certification.record
            self._dp = {
                "sampler": self.perturbator.sampler,
                "semantics": SEMANTICS[self.perturbator.sampler],
                "epsilon": self.perturbator.epsilon,
                "epsilon_certified": dp.epsilon_certified,
                "delta": dp.delta,
                "certified": dp.certified,
                # the evaluation table's δ: at ε' = ε, audited for the authors' sampler (0 when certified)
                "delta_audited": privacy_columns(fresh)["delta_audited"],
                "formal_guarantee": dp.to_dict(),
                "accounting": ACCOUNTING,
                "covers": COVERS,
                "reconstructed": False,
            }
            if certification.audit is not None:  # faceshield_repo: why it is not certified
                self._dp["audit"] = certification.audit.to_dict()
                self._dp["note"] = UNCERTIFIED_NOTE
        return copy.deepcopy(self._dp)


def served_perturbator(checkpoint: MethodCheckpoint, **options: Any) -> DPPerturbator:
    """The DP step to serve: the checkpoint's evaluated variant, with ``sampler`` / ``epsilon`` options over
    it; always with secret noise (no seed)."""
    check_options(NAME, options, OPTIONS)
    _, settings = configured_variant(checkpoint)
    configured = str(settings.get("sampler", DEFAULT_SAMPLER))
    sampler = str(options.get("sampler", configured))
    try:
        epsilon = float(options.get("epsilon", settings.get("epsilon", DEFAULT_EPSILON)))
        # the configured angular sensitivity belongs to the configured sampler
        delta_theta = float(settings.get("delta_theta", math.pi)) if sampler == configured else math.pi
        dimension = int(settings.get("dimension", 512))
        return DPPerturbator(sampler, epsilon, delta_theta, dimension=dimension)
    except (TypeError, ValueError) as exc:
        raise ServingError(f"method '{NAME}': bad option ({exc})") from exc


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> FaceShieldMethod:
    """FaceShield from a Stage II checkpoint; options ``sampler`` and ``epsilon`` change the DP step."""
    from src.papers.registry import PAPERS

    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained Stage II checkpoint (faceshield/stage2_irc)")
    perturbator = served_perturbator(checkpoint, **options)
    info = PAPERS[PAPER]
    targets = (info.target, *info.formerly)  # Stage II only: a Stage I checkpoint has no renderer
    module = checkpoint.build_module(targets, NAME, edit=_edit, ignore_prefixes=IGNORED, device=device)
    if not isinstance(module, FaceShieldIRC):
        raise ServingError(
            f"method '{NAME}' serves Stage II checkpoints (FaceShieldIRC), got {type(module).__name__}"
        )
    return FaceShieldMethod(module, perturbator, device=device, provenance=checkpoint.provenance())


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="FaceShield: the face re-drawn around a DP-perturbed identity (ε and certification recorded)",
        experiment="faceshield/stage2_irc",
        options=OPTIONS,
    )
)
