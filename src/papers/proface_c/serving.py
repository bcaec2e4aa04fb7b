"""PRO-Face C served to people: the obfuscated face a user's device sends, and its compensation maps.

PRO-Face C does not change how a face looks: the device sends a recognition service the conventionally
obfuscated face ``b(x)`` and, separately, four compensation maps ``A(x - b(x))`` from the trained client,
with which the frozen server recognizes the obfuscated face (docs/papers/proface_c.md). The image the paper
protects is therefore ``b(x)``: ``protect_faces`` returns it, made as the module's evaluation makes it
(``evaluation_obfuscation``: the plain obfuscations at their evaluation strength, the patch hybrid with the
cell assignment of image index 0 for every face, so one face always gives one result). There is nothing to
recover (the server recovers features, not the face) and no password (the keys ``k_i`` are learned weights
shared by client and server).

For a recognition service built on the paper, :meth:`ProFaceCMethod.client_payload` gives what the device
sends (the obfuscated faces and the maps, quantised when the checkpoint's transmission extension is on) and
:meth:`ProFaceCMethod.server_embeddings` what the server computes from it. The server's weights come from the
checkpoint itself (every training checkpoint stores the frozen server), so no recognizer file is needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import FaceCrop, ProtectionMethod, ServingError, check_options, crop_from_options
from src.papers.proface_c.module import ProFaceCModule
from src.papers.proface_c.networks import compensated
from src.papers.proface_c.obfuscation import evaluation_obfuscation
from src.papers.registry import MethodEntry, register_method, served_targets

__all__ = ["ProFaceCMethod", "build"]

NAME = PAPER = "proface_c"
#: the 112-px crops aligned to the ArcFace 5-point template (CelebA training crops, the verification sets)
#: around an MTCNN box: the box's larger side is about 2.5 eye-to-mouth distances (41 px there) with the eyes
#: at 0.37 of its height, so the crop is ~1.1 box sides, centred ~0.1 box heights above the box's centre
ARCFACE_CROP = FaceCrop(scale=1.1, shift=-0.1)
#: a whole SyntheticFaces render (the demo experiment's data) around its MTCNN box (measured at 64-256 px)
SYNTHETIC_CROP = FaceCrop(scale=2.1, shift=0.0)
#: the image index whose hybrid cell assignment every served face gets
HYBRID_INDEX = 0
OPTIONS = {
    "obfuscation": "evaluation obfuscation of the checkpoint (default: hybrid; gaussian, median, pixelate)",
    "crop_scale": "face square side / detector box side (default: the training data's, 1.1 for 112-px "
    "ArcFace-aligned crops)",
    "crop_shift": "vertical shift of the face square in box heights (default: the training data's)",
}


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The crop of the checkpoint's training faces: ArcFace-aligned 112-px crops, or a synthetic render."""
    target = str(checkpoint.value("datamodule.train._target_", checkpoint.value("datamodule._target_", "")))
    return SYNTHETIC_CROP if target.endswith("SyntheticFacesDataModule") else ARCFACE_CROP


class ProFaceCMethod(ProtectionMethod):
    """PRO-Face C on face crops: the obfuscated face its client sends (plus, on request, the maps)."""

    reversible = False
    needs_password = False

    def __init__(
        self,
        module: ProFaceCModule,
        obfuscation: str,
        *,
        crop: FaceCrop,
        device: torch.device,
        provenance: Mapping[str, Any],
    ) -> None:
        super().__init__(
            NAME,
            PAPER,
            int(module.server.input_size[0]),
            crop=crop,
            device=device,
            description=f"PRO-Face C: the {obfuscation} obfuscation its client sends to a compensated server",
            provenance=provenance,
        )
        self.module = module.to(self.device).eval()
        self.obfuscation = obfuscation
        self.obfuscator = module.eval_obfuscators[obfuscation]

    def _check_faces(self, faces: Tensor) -> Tensor:
        size = self.face_size
        if faces.ndim != 4 or faces.shape[1] != 3 or tuple(faces.shape[-2:]) != (size, size):
            raise ServingError(f"{self.name}: faces must be [B, 3, {size}, {size}], got {tuple(faces.shape)}")
        return faces.to(self.device, torch.float32)

    def _obfuscate(self, faces: Tensor) -> Tensor:
        indices = torch.full((faces.shape[0],), HYBRID_INDEX, dtype=torch.int64)
        return evaluation_obfuscation(self.obfuscator, faces, indices).clamp(0.0, 1.0)

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        self.check_password(password)
        return self._obfuscate(self._check_faces(faces))

    @torch.no_grad()
    def client_payload(self, faces: Tensor) -> tuple[Tensor, list[Tensor]]:
        """What the device sends the server: the obfuscated faces and the four compensation maps (through
        the checkpoint's transmission extension when it has one)."""
        faces = self._check_faces(faces)
        obfuscated = self._obfuscate(faces)
        maps, _ = self.module.client(self.module.residual(faces, obfuscated))
        if self.module.transmission is not None:
            maps = self.module.transmission.transmit(maps)
        return obfuscated, maps

    @torch.no_grad()
    def server_embeddings(self, obfuscated: Tensor, maps: list[Tensor]) -> Tensor:
        """The server's L2-normalised embeddings of obfuscated faces compensated with the client's maps."""
        with compensated(self.module.server, maps, list(self.module.client.keys)):
            return self.module.server.embed(self._check_faces(obfuscated), normalize=True)

    def privacy_record(self) -> dict[str, Any]:
        transmission = self.module.transmission
        return {
            **super().privacy_record(),
            "obfuscation": self.obfuscation,
            "obfuscation_settings": self.obfuscator.describe(),
            "reversible": False,
            "maps_bits": None if transmission is None else transmission.bits,
            "formal_guarantee": None,
            "notes": (
                "No formal privacy guarantee. The image is the paper's conventional obfuscation of the face "
                "(the trained networks do not change it): its privacy is that of the obfuscation. The "
                "compensation maps, computed from the clear face, are not in the image; sent with it, they "
                "let the paper's server recognize the face. Not reversible."
            ),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> ProFaceCMethod:
    """PRO-Face C from a checkpoint of one of its training runs (see :data:`OPTIONS`)."""
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    check_options(NAME, options, OPTIONS)

    def serving_model(model: dict[str, Any]) -> dict[str, Any]:
        # the frozen server and the client are both in the checkpoint's state dict: build the server without
        # its weights file and the client without the authors' file; the checkpoint then fills in both
        model["server"] = {**model["server"], "weights": None}
        model["client_weights"] = None
        return model

    with warnings.catch_warnings():  # "RANDOM weights": the checkpoint's server weights replace them below
        warnings.filterwarnings("ignore", message=r"recognizer .* has RANDOM weights")
        module = checkpoint.build_module(served_targets(ENTRY), NAME, edit=serving_model, device=device)
    assert isinstance(module, ProFaceCModule)
    if module.transmission is not None:  # the tested configuration: a pruned client, as on_test_start does
        module.transmission.prune(module.client)
    names = list(module.eval_obfuscators)
    obfuscation = str(options.get("obfuscation", "hybrid" if "hybrid" in names else names[0]))
    if obfuscation not in names:
        raise ServingError(
            f"method '{NAME}': no evaluation obfuscation '{obfuscation}'; obfuscations: {', '.join(names)}"
        )
    default = training_crop(checkpoint)
    crop = crop_from_options(NAME, default, options)
    return ProFaceCMethod(
        module, obfuscation, crop=crop, device=torch.device(device), provenance=checkpoint.provenance()
    )


ENTRY = register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="PRO-Face C: the obfuscated face a client sends to a compensated recognition server",
        experiment="proface_c/celeba_ir101",
        options=OPTIONS,
    )
)
