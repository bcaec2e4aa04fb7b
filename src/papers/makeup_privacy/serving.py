"""Makeup-privacy served to people: adversarial makeup from a reference face
(``load("makeup_privacy", ckpt=..., reference=...)``).

The served method is the module's test-time protection (:meth:`MakeupPrivacyModule.forward`: BiSeNet parsing
of face and reference, the style-patch correspondence over VGG19 features, the SPADE generator) applied to
face crops, every face made up with the same reference. It serves checkpoints of ``makeup_privacy/mt_train``
runs: the generator comes from the checkpoint, the frozen VGG19 and BiSeNet from their weights files (as in
evaluation); the recognizers, LPIPS and FID of the evaluation are not built.

**Reference.** A made-up face photo (``reference=<image path>``: its largest face is cut out as the served
faces are, or the whole image is taken as an aligned face when none is found), or ``synthetic:<look>``: a
procedurally rendered made-up face (:mod:`src.preprocess.synthetic_makeup`, looks ``red``, ``smoky``,
``coral``, ``berry``, ``nude``), the default being ``synthetic:red``. Not reversible, no password.

**Target.** The generator was trained to make faces impersonate one target identity (``model.target_path``);
the record names it by its SHA-256. The target image is not needed to protect: when it is absent the module
is built on a placeholder.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from src.datamodules.components.synthetic_face_renderer import IdentityTraits
from src.inference.checkpoints import MethodCheckpoint
from src.inference.faces import FaceFinder, crop_faces, whole_image_region
from src.inference.inputs import as_image, to_tensor
from src.inference.methods import FaceCrop, ProtectionMethod, ServingError, check_options
from src.papers.makeup_privacy.module import MakeupPrivacyModule
from src.papers.registry import MethodEntry, register_method
from src.preprocess.synthetic_makeup import IDENTITY_BASES, STYLES, render_makeup_face

__all__ = ["CROP", "DEFAULT_REFERENCE", "MakeupMethod", "build", "reference_face"]

NAME = PAPER = "makeup_privacy"
#: the loose, FFHQ-like crops of MT-Dataset and the CelebA-HQ test faces around an MTCNN box: side 1.5 x
#: the box's larger side, centre 0.1 box heights above the box's (FFHQ's alignment, measured on skimage's
#: astronaut)
CROP = FaceCrop(scale=1.5, shift=-0.1)
SYNTHETIC = "synthetic:"
LOOKS = {style.name: style for style in STYLES}
DEFAULT_REFERENCE = f"{SYNTHETIC}red"
SYNTHETIC_SEED = 0
#: the one recognizer the module is built with (it needs one to name as psr_model; random, never used)
UNUSED, UNUSED_NAME = "unused", "mobilefacenet"
OPTIONS = {
    "reference": "the makeup reference: an image path (a made-up face; its largest face is cut out) or "
    f"synthetic:<look> ({', '.join(LOOKS)}: a rendered made-up face, not a real photo); default "
    f"{DEFAULT_REFERENCE}",
}
RANDOM_FROZEN = (
    "the run used random VGG19 / BiSeNet weights, which checkpoints do not hold: this build draws other "
    "random ones, so the generator meets features it was not trained on (tests and the CPU demo only)"
)
NOTE = (
    "a port of the authors' code with the documented fixes (docs/papers/makeup_privacy.md, 'Faithful, "
    "fixed, reconstructed'); protection is empirical (impersonation of the target under face recognizers), "
    "with no formal guarantee"
)


def synthetic_reference(look: str, size: int) -> np.ndarray:
    """A rendered made-up face ``[size, size, 3]`` uint8 with one of :data:`LOOKS` (the first reference
    identity of the synthetic test data without glasses or facial hair)."""
    if look not in LOOKS:
        raise ServingError(f"method '{NAME}': unknown synthetic look {look!r}; looks: {', '.join(LOOKS)}")
    identity = IDENTITY_BASES["reference"]
    while True:
        traits = IdentityTraits.sample(SYNTHETIC_SEED, identity)
        if not (traits.glasses or traits.beard or traits.moustache):
            break
        identity += 1
    return render_makeup_face(SYNTHETIC_SEED, identity, 0, size, LOOKS[look])[1]


def reference_face(reference: Any, size: int) -> tuple[Tensor, dict[str, Any]]:
    """The reference as a ``[1, 3, size, size]`` face crop in [0, 1], and what the record says of it."""
    if isinstance(reference, str) and reference.startswith(SYNTHETIC):
        look = reference[len(SYNTHETIC) :]
        image = to_tensor(synthetic_reference(look, size))[None]
        return image, {"reference": reference, "synthetic": True}
    image = as_image(reference, name="reference")
    regions = FaceFinder("mtcnn").find(image, CROP)
    region = regions[0] if regions else whole_image_region(*image.shape[:2])
    crop = crop_faces(to_tensor(image), [region], size)
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
    described = Path(reference).name if isinstance(reference, (str, Path)) else type(reference).__name__
    return crop, {
        "reference": described,
        "reference_pixels_sha256": digest,
        "reference_face_found": bool(regions),
        "synthetic": False,
    }


def _edit(target_path: str) -> Any:
    """The model config without training and evaluation parts (recognizers, LPIPS, FID, released files)."""

    def edit(model: dict[str, Any]) -> dict[str, Any]:
        model.update(
            recognizers={
                UNUSED: {
                    "_target_": "src.networks.recognizers.pretrained.pretrained_recognizer",
                    "name": UNUSED_NAME,
                    "weights": None,
                }
            },
            fr_train=[],
            fr_test=[],
            psr_model=UNUSED,
            published_thresholds=[],
            generator_weights=None,
            lpips=None,
            fid=False,
            robustness=[],
            target_path=target_path,
        )
        return model

    return edit


def target_record(checkpoint: MethodCheckpoint) -> dict[str, Any]:
    """The identity the generator was trained to impersonate: its path and SHA-256 (from the checkpoint's
    hyper-parameters, else from the file when it is present)."""
    path = checkpoint.value("model.target_path")
    hparams = checkpoint.checkpoint.get("hyper_parameters")
    digest = hparams.get("target_sha256") if isinstance(hparams, Mapping) else None
    present = isinstance(path, str) and Path(path).expanduser().is_file()
    if digest is None and present:
        digest = hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    return {"path": path, "sha256": digest, "present": present}


class MakeupMethod(ProtectionMethod):
    """Every face made up with one reference by the module's test-time pipeline."""

    reversible = False
    needs_password = False

    def __init__(
        self,
        module: MakeupPrivacyModule,
        reference: Tensor,
        *,
        about: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        size = module.generator.image_size
        super().__init__(
            NAME,
            PAPER,
            size,
            crop=CROP,
            device=device,
            description="Makeup-privacy: adversarial makeup transfer from a reference face",
            provenance=provenance,
        )
        if tuple(reference.shape) != (1, 3, size, size):
            raise ServingError(f"method '{NAME}': the reference must be [1, 3, {size}, {size}]")
        self.module = module
        self.reference = reference.to(self.device, torch.float32)
        self.about = dict(about or {})

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        self.check_password(password)
        images = faces.to(self.device, torch.float32)
        return self.module(images, self.reference.expand(images.shape[0], -1, -1, -1))

    def privacy_record(self) -> dict[str, Any]:
        record = super().privacy_record()
        record.update(self.about)
        record.update(formal_guarantee=None, reversible=False, reconstructed=False, note=NOTE)
        return record


def _placeholder_target(folder: Path) -> str:
    """A small grey image standing in for an absent target (the target is not used to protect)."""
    path = folder / "target_placeholder.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))
    return str(path)


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> MakeupMethod:
    """Makeup-privacy from a training checkpoint; option ``reference`` is the makeup reference."""
    from src.papers.registry import PAPERS

    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint (makeup_privacy/mt_train)")
    check_options(NAME, options, OPTIONS)
    size = int(checkpoint.value("model.generator.image_size", 256))
    reference, about = reference_face(options.get("reference", DEFAULT_REFERENCE), size)
    target = target_record(checkpoint)
    with tempfile.TemporaryDirectory(prefix="makeup_target_") as folder, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f"recognizer '{UNUSED_NAME}' has RANDOM weights")
        target_path = str(target["path"]) if target["present"] else _placeholder_target(Path(folder))
        module = checkpoint.build_module(PAPERS[PAPER].targets, NAME, edit=_edit(target_path), device=device)
    if not isinstance(module, MakeupPrivacyModule):
        raise ServingError(
            f"method '{NAME}' serves MakeupPrivacyModule checkpoints, got {type(module).__name__}"
        )
    about["impersonation_target"] = target
    frozen = {
        "vgg": checkpoint.value("model.vgg.weights"),
        "parser": checkpoint.value("model.parser_weights"),
    }
    about["frozen_weights"] = frozen
    if any(weights is None for weights in frozen.values()):
        about["warning"] = RANDOM_FROZEN
    return MakeupMethod(module, reference, about=about, device=device, provenance=checkpoint.provenance())


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="Makeup-privacy: makeup from a reference face that makes recognizers see a target identity",
        experiment="makeup_privacy/mt_train",
        options=OPTIONS,
    )
)
