"""PRO-Face served to people: recognizable obfuscation of faces from a trained checkpoint.

``load("proface", ckpt=...)`` rebuilds the fusion network ``G`` of a training run of this paper (any
experiment of ``experiments/proface/``) and applies it as the module's evaluation does ("Evaluation
protocol" in docs/papers/proface.md): the face is mapped to the network's range, obfuscated by the
checkpoint's obfuscator at its evaluation strength, ``x_p = G(x, x_o)`` is clamped to that range and mapped
back to [0, 1]. PRO-Face is not reversible and takes no key.

The frozen recognizer ``E`` only judges training and evaluation; it is not needed to protect a face, so it is
replaced by :class:`NoRecognizer` (its weights in the checkpoint are skipped) and no recognizer weights file
is needed. The perceptual loss is likewise replaced by a random-trunk one (it has no weights in the
checkpoint, and LPIPS-VGG's trunk is a weights file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from src.config.buildable import buildable
from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import FaceCrop, ProtectionMethod, ServingError, check_options, crop_from_options
from src.papers.proface.module import ProFaceModule
from src.papers.registry import MethodEntry, register_method, served_targets

__all__ = ["NoRecognizer", "ProFaceMethod", "build"]

NAME = PAPER = "proface"
#: CelebA's aligned 178x178 crop (rows 20..198 of the 178x218 image, hair and chin included) around an MTCNN
#: box: the box's larger side is about 2.5 eye-to-mouth distances (41 px there) with the eyes at 0.37 of its
#: height, so the crop is ~1.75 box sides, centred ~0.15 box heights above the box's centre
CELEBA_CROP = FaceCrop(scale=1.75, shift=-0.15)
#: a whole SyntheticFaces render (the demo experiment's data) around its MTCNN box (measured at 64-256 px)
SYNTHETIC_CROP = FaceCrop(scale=2.1, shift=0.0)
OPTIONS = {
    "crop_scale": "face square side / detector box side (default: the training data's, 1.75 for CelebA)",
    "crop_shift": "vertical shift of the face square in box heights (default: the training data's)",
}


@buildable
class NoRecognizer(nn.Module):
    """Stands in for PRO-Face's frozen recognizer when serving: protection never calls the recognizer."""

    input_size = 112

    def forward(self, images: Tensor) -> Tensor:
        raise RuntimeError("the served PRO-Face method has no recognizer: it only protects faces")


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The crop of the checkpoint's training faces: CelebA's aligned crop, or a whole synthetic render."""
    target = str(checkpoint.value("datamodule._target_", ""))
    return SYNTHETIC_CROP if target.endswith("SyntheticFacesDataModule") else CELEBA_CROP


class ProFaceMethod(ProtectionMethod):
    """PRO-Face on face crops: a face that looks obfuscated yet stays recognizable by its recognizer."""

    reversible = False
    needs_password = False

    def __init__(
        self,
        module: ProFaceModule,
        face_size: int,
        *,
        crop: FaceCrop,
        device: torch.device,
        provenance: Mapping[str, Any],
    ) -> None:
        obfuscator = module.hparams.obfuscator_name
        recognizer = module.hparams.recognizer_name
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"PRO-Face: looks like {obfuscator}, stays recognizable by {recognizer}",
            provenance=provenance,
        )
        if face_size % 8:
            raise ServingError(
                f"{NAME}: the fusion network needs a face size divisible by 8, got {face_size}"
            )
        self.module = module.to(self.device).eval()

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        self.check_password(password)
        if faces.ndim != 4 or faces.shape[1] != 3 or faces.shape[-1] % 8 or faces.shape[-2] % 8:
            raise ServingError(
                f"{self.name}: faces must be [B, 3, S, S] with S divisible by 8, got {tuple(faces.shape)}"
            )
        module = self.module
        x = module.to_model(faces.to(self.device, torch.float32))
        x_o = module.obfuscate(x)  # the evaluation strength (the obfuscator is in eval mode)
        return module.to_unit(module.clamp(module.embedder(x, x_o))).clamp(0.0, 1.0)

    def privacy_record(self) -> dict[str, Any]:
        hparams = self.module.hparams
        return {
            **super().privacy_record(),
            "obfuscator": hparams.obfuscator_name,
            "obfuscator_settings": self.module.obfuscator.describe(),
            "recognizable_by": hparams.recognizer_name,
            "reversible": False,
            "formal_guarantee": None,
            "notes": (
                "No formal privacy guarantee. The protected face is made to look like the obfuscation to "
                f"people while staying recognizable by the face recognizer it was trained with "
                f"({hparams.recognizer_name}): it hides the identity from viewers, not from that recognizer "
                "(nor, to an unmeasured degree, from similar ones). Not reversible."
            ),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> ProFaceMethod:
    """PRO-Face from a checkpoint of one of its training runs (see :data:`OPTIONS`)."""
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    check_options(NAME, options, OPTIONS)

    def serving_model(model: dict[str, Any]) -> dict[str, Any]:
        model["recognizer"] = {"_target_": f"{NoRecognizer.__module__}.{NoRecognizer.__qualname__}"}
        model["recognizer_input_size"] = None
        model["perceptual"] = {
            "_target_": "src.losses.perceptual.PerceptualLoss",
            "kind": "lpips_random",
            "net": "alex",
        }
        model["embedder_weights"] = None  # the checkpoint holds the trained fusion network
        return model

    module = checkpoint.build_module(
        served_targets(ENTRY), NAME, edit=serving_model, ignore_prefixes=("recognizer.",), device=device
    )
    assert isinstance(module, ProFaceModule)
    default = training_crop(checkpoint)
    crop = crop_from_options(NAME, default, options)
    face_size = int(checkpoint.value("datamodule.image_size", 112))
    return ProFaceMethod(
        module, face_size, crop=crop, device=torch.device(device), provenance=checkpoint.provenance()
    )


ENTRY = register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="PRO-Face: faces that look obfuscated but stay recognizable by one face recognizer",
        experiment="proface/demo_synthetic",
        options=OPTIONS,
    )
)
