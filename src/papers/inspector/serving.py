"""The Inspector served to people: the defended detector, ``load("inspector", ckpt=<stage-4 best.ckpt>)``.

Only a stage-4 checkpoint (``inspector/stage4_corrector``) holds the whole defence (D, G, A and C); earlier
stages' checkpoints are refused with a ``CheckpointError`` naming the stage. Each face goes through the
paper's inference pipeline (:class:`~src.papers.inspector.defense.InspectorDefense`): D scores it, the coarse
stage (G reconstructs D's features, A judges the reconstruction) rejects a face it finds adversarially
perturbed, and on accepted faces the fine stage (C) flips D's decision when it judges an attack successful
(π > threshold). The score is ``softmax(final logits)[:, 1]`` (class 1 = fake); a rejected face scores 1.0
by default (it carries a perturbation aimed at the detector: treat it as manipulated), or D's own
probability with ``on_reject="detector"``. The random rescaling of the accepted, unflipped logits (same
decision, random confidence against score-probing attackers) is off by default, so a face always gets the
same score; ``randomize=True`` switches it on with fresh secret draws per call.
:meth:`InspectorMethod.inspect_faces` gives every decision (rejected, π, flipped) for face tensors.

Faces are cut as the FF++ ``dfb`` preprocessing cut the training faces (ArcFace alignment with margin 1.3,
approximated by a square of 1.5 box heights centred 0.1 box height up; a ``box_margin`` in the config
means the box plus that margin instead) at ``datamodule.image_size`` (299), in ``[0, 1]``: D normalises its
own input (``input_norm``, mean/std 0.5 for Xception), A and C theirs (ImageNet statistics).
"""

from __future__ import annotations

import secrets
from typing import Any

import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import DetectionMethod, FaceCrop, ServingError
from src.papers.inspector.defense import InspectorDefense, InspectorOutput
from src.papers.inspector.module import InspectorCorrector
from src.papers.registry import MethodEntry, register_method
from src.utils.checkpoint_files import CheckpointError

PAPER = "inspector"
NAME = "inspector"
#: the square equivalent of the ``dfb`` preprocessing of FF++ (ArcFace 5-point alignment, margin 1.3)
ALIGNED_CROP = FaceCrop(scale=1.5, shift=-0.1)
#: what a face the coarse stage rejects scores
ON_REJECT = ("fake", "detector")
#: the earlier stages, for the error that refuses their checkpoints
STAGES = {
    "InspectorDetector": ("stage 1 (detector D)", "inspector/stage1_detector"),
    "InspectorReconstructor": ("stage 2 (reconstructor G)", "inspector/stage2_reconstructor"),
    "InspectorAutoThresh": ("stage 3 (auto-thresholder A)", "inspector/stage3_autothresh"),
}
OPTIONS = {
    "on_reject": "score of a face the coarse stage rejects as adversarially perturbed: 'fake' (1.0, default) "
    "or 'detector' (the detector's own probability, as the defence returns it)",
    "randomize": "true: the defence's random rescaling of accepted, unflipped logits (same decision, random "
    "confidence; fresh secret draws per call); default false: reproducible scores",
}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The crop of the checkpoint's faces: the box + ``box_margin`` per side, else the ``dfb`` crop."""
    margin = checkpoint.value("datamodule.box_margin")
    if margin is None:
        return ALIGNED_CROP
    return FaceCrop(scale=1.0 + 2.0 * float(margin), shift=0.0)


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ServingError(f"method '{NAME}': option {name} must be true or false, got {value!r}")


def _inference_only(model: dict[str, Any]) -> dict[str, Any]:
    """No file at build: the stage-4 checkpoint itself holds D, G, A and C (not the stage-3 file it named,
    nor the ImageNet initialisations)."""
    model["autothresh_ckpt"] = None
    for part in ("net", "autothresh", "corrector"):
        if isinstance(model.get(part), dict):
            model[part]["weights"] = None
    return model


class InspectorMethod(DetectionMethod):
    """The detector D defended by the Inspector (coarse rejection by G and A, fine correction by C)."""

    def __init__(
        self,
        module: InspectorCorrector,
        face_size: int,
        crop: FaceCrop,
        *,
        on_reject: str = "fake",
        randomize: bool = False,
        device: str | torch.device = "cpu",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        if on_reject not in ON_REJECT:
            raise ServingError(f"method '{NAME}': on_reject must be one of {ON_REJECT}, got {on_reject!r}")
        self.detector_name = str(getattr(module.net, "name", "")) or type(module.net).__name__
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"{self.detector_name} forgery detector defended by the Inspector "
            "(coarse rejection, fine correction)",
            provenance=provenance,
        )
        self.module = module.to(self.device).eval()
        self.on_reject = on_reject
        self.randomize = bool(randomize)
        self.defense = InspectorDefense(
            module.net,
            module.reconstructor,
            module.autothresh,
            module.corrector,
            randomize=self.randomize,
            generator_seed=0,
            threshold=module.threshold,
        )

    @torch.no_grad()
    def inspect_faces(self, faces: Tensor) -> InspectorOutput:
        """The defence's full output for face crops ``[B, 3, S, S]`` in ``[0, 1]``: final logits, rejected,
        the attack-success probability π and flipped."""
        if self.randomize:
            self.defense.reseed(secrets.randbits(63))  # unpredictable draws: the rescaling is a defence
        return self.defense(faces.to(self.device, torch.float32))

    def detect_faces(self, faces: Tensor) -> Tensor:
        out = self.inspect_faces(faces)
        probability = out.logits.float().softmax(dim=1)[:, 1]
        if self.on_reject == "fake":
            probability = torch.where(out.rejected, torch.ones_like(probability), probability)
        return probability

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "architecture": self.detector_name,
            "input_norm": getattr(self.module.net, "input_norm", None),
            "crop": {"scale": self.crop.scale, "shift": self.crop.shift},
            "defence": "coarse: G + A reject adversarial faces; fine: C flips judged-successful attacks",
            "threshold": self.defense.threshold,
            "on_reject": self.on_reject,
            "randomize": self.randomize,
            "reconstructed": False,
            "provenance": dict(self.provenance),
        }


def _check_stage(checkpoint: MethodCheckpoint) -> None:
    """Refuse another paper's checkpoint (by its model) and an earlier Inspector stage's (by its stage)."""
    from src.papers.registry import PAPERS

    info = PAPERS[PAPER]
    checkpoint.check_target(info.targets, NAME)
    if checkpoint.info.model_target in (info.target, *info.formerly):
        return
    cls = str(checkpoint.info.model_target).rsplit(".", 1)[-1]
    stage, experiment = STAGES.get(cls, (f"stage {cls}", "an earlier stage"))
    raise CheckpointError(
        f"checkpoint {checkpoint.path} is an Inspector {stage} checkpoint ({experiment}): the served defence "
        "needs a stage-4 checkpoint (experiment inspector/stage4_corrector), which holds D, G, A and C"
    )


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> InspectorMethod:
    """The defended detector of a stage-4 Inspector checkpoint."""
    from src.papers.registry import PAPERS

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ServingError(
            f"method '{NAME}': unknown option(s) {', '.join(unknown)}; options: {', '.join(OPTIONS)}"
        )
    on_reject = str(options.get("on_reject", "fake"))
    if on_reject not in ON_REJECT:
        raise ServingError(f"method '{NAME}': on_reject must be one of {ON_REJECT}, got {on_reject!r}")
    randomize = _flag("randomize", options.get("randomize", False))
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    _check_stage(checkpoint)
    module = checkpoint.build_module(PAPERS[PAPER].targets, NAME, edit=_inference_only, device=device)
    if not isinstance(module, InspectorCorrector):
        raise CheckpointError(
            f"checkpoint {checkpoint.path} holds a {type(module).__name__}, not a stage-4 module"
        )
    size = checkpoint.value("datamodule.image_size", getattr(module.net, "input_size", None))
    if size is None:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its config gives no datamodule.image_size")
    return InspectorMethod(
        module,
        int(size),
        training_crop(checkpoint),
        on_reject=on_reject,
        randomize=randomize,
        device=device,
        provenance=checkpoint.provenance(),
    )


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="detect",
        build=build,
        summary="Inspector (TIP'24): a forgery detector defended against adversarial attacks (rejects "
        "perturbed faces, corrects fooled decisions); fake probability per face",
        experiment="inspector/stage4_corrector",
        options=OPTIONS,
    )
)
