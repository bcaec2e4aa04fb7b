"""iFADIT served to people: reversible, password-keyed face anonymisation (``load("ifadit", ckpt=...)``).

The served method is the phase-2 module's evaluation (``IFaditFlow.evaluate_batch``) applied to face crops:
``x_a = blend(G(M([F(E_id(x); c); E_attr(x)])), x, mask)`` under the key condition ``c``, and recovery
``x_r = blend(G(M([F⁻¹(ICL(E_id(x_a)); c); E_attr(x_a)])), x_a, mask)`` with the same key, pasted onto the
anonymised face (all a receiver holds). It serves checkpoints of ``ifadit/phase2_*`` runs: every network
(identity encoder, attribute encoder, mapper, flow, ICL, generator) comes from the checkpoint; the judges
and the detector of the evaluation are not needed.

**Key.** The paper keys the flow on a secret ``p ~ U[0.5, 1)^512`` put through the generator's mapping
network. Here ``p`` is derived from the user's password (:func:`password_key`: scrypt, then SHAKE-256
expanded to 512 values of 23 bits in ``[0.5, 1)``), so the same password recovers the face and another one
gives another face. Neither the password nor the key is stored or recorded.

**Mask.** The evaluation blends through the landmark hull of FFHQ's 68 dlib points; served crops carry no
landmarks, so dlib's 68-point predictor is run on each crop from the box where the crop puts the face
(:data:`LANDMARK_BOX`) and the checkpoint's own masker draws the hull. A checkpoint trained with the ellipse
masker uses it.
"""

from __future__ import annotations

import hashlib
import unicodedata
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import FaceCrop, PasswordError, ProtectionMethod, ServingError, check_options
from src.papers.ifadit.masks import EllipseMask, FaceMasker, LandmarkMask
from src.papers.ifadit.module import IFaditFlow
from src.papers.ifadit.report import RECONSTRUCTED_NOTE, RELEASED_NOTE
from src.papers.registry import MethodEntry, register_method

__all__ = ["CROP", "LANDMARK_BOX", "IFaditMethod", "build", "password_key"]

NAME = PAPER = "ifadit"
#: FFHQ's alignment (the training faces, 256 px) around an MTCNN box: side 1.52 x the box's larger side,
#: centre 0.10 box heights above the box's (measured on skimage's astronaut)
CROP = FaceCrop(scale=1.5, shift=-0.1)
#: where dlib's HOG detector finds the face in such a crop (x0, y0, x1, y1 as fractions of the side; measured
#: on the astronaut, made symmetric): the box dlib's 68-point predictor starts from
LANDMARK_BOX = (0.195, 0.315, 0.805, 0.925)
#: password → key: scrypt with a fixed salt (no per-image salt can travel with a photo), then SHAKE-256
KEY_SALT = b"proface-lab/ifadit/key/v1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
KEY_BITS = 23  # per value: (2^23 + n) / 2^24 is exact in float32 and lies in [0.5, 1)
MASKS = ("auto", "landmarks", "ellipse")
OPTIONS = {
    "mask": "blending mask: auto (the checkpoint's: a landmark hull from dlib's 68 points on the crop, or "
    "its ellipse), landmarks, or ellipse",
}
KEY_DESCRIPTION = (
    "password → scrypt (n=2^14, r=8, p=1, fixed salt) → SHAKE-256 → 512 values in [0.5, 1) (the paper's key "
    "distribution) → the generator's mapping network → the flow's condition; neither the password nor the "
    "key is stored or recorded"
)
PASSWORD_SEMANTICS = (
    "the same password recovers the face (recover_faces inverts the flow under its key); another password "
    "gives another face. Protection against recovery is only as strong as the password (the salt is fixed, "
    "so equal passwords give equal keys)"
)


def password_key(password: str, dim: int = 512) -> Tensor:
    """The key ``[1, dim]`` in ``[0.5, 1)`` a password stands for (NFKC-normalised UTF-8 → scrypt → SHAKE-256,
    ``KEY_BITS`` bits per value)."""
    if not password:
        raise PasswordError(f"method '{NAME}' needs a password")
    material = hashlib.scrypt(
        unicodedata.normalize("NFKC", password).encode("utf-8"),
        salt=KEY_SALT,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=64,
    )
    words = np.frombuffer(hashlib.shake_256(material).digest(4 * dim), dtype=">u4").astype(np.int64)
    values = ((words >> (32 - KEY_BITS)) + 2**KEY_BITS) / 2 ** (KEY_BITS + 1)
    return torch.from_numpy(values).float().unsqueeze(0)


def _edit(model: dict[str, Any]) -> dict[str, Any]:
    """The phase-2 config without files: every network from the checkpoint, no judges, no detector."""
    recognizer = model.get("identity_recognizer")
    if isinstance(recognizer, dict) and "weights" in recognizer:  # its weights are in the state dict
        model["identity_recognizer"] = {**recognizer, "weights": None}
    model.update(
        disentangle_ckpt=None,
        generator_weights=None,
        attribute_weights=None,
        mapper_weights=None,
        flow_weights=None,
        compensation_weights=None,
        judges={},
        detector=None,
        evaluate_untrained=True,  # the weights come from the checkpoint's state dict, loaded after
    )
    return model


class IFaditMethod(ProtectionMethod):
    """iFADIT's key-conditioned anonymisation and its inverse, keyed by a password."""

    reversible = True
    needs_password = True

    def __init__(
        self,
        module: IFaditFlow,
        masker: FaceMasker,
        *,
        reconstructed: bool = True,
        device: str | torch.device = "cpu",
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            NAME,
            PAPER,
            module.image_size,
            crop=CROP,
            device=device,
            description="iFADIT: reversible anonymisation; the password keys the identity flow",
            provenance=provenance,
        )
        self.module = module
        self.masker = masker
        self.reconstructed = reconstructed
        self._predictor: Any = None

    def condition(self, password: str | None, batch_size: int) -> Tensor:
        """The flow's condition for ``batch_size`` faces: the password's key through the mapping network."""
        self.check_password(password)
        key = password_key(str(password), self.module.generator.style_dim)
        return self.module.pipeline.condition(key.expand(batch_size, -1).to(self.device))

    def landmarks(self, faces: Tensor) -> Tensor:
        """dlib's 68 points ``[B, 68, 2]`` (crop pixels) of face crops, from :data:`LANDMARK_BOX`."""
        if self._predictor is None:
            from src.face.landmarks import DlibShapePredictor

            self._predictor = DlibShapePredictor(68)
        side = faces.shape[-1]
        box = np.asarray(LANDMARK_BOX) * side
        pixels = (faces.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        points = [self._predictor.predict(np.ascontiguousarray(image), box) for image in pixels]
        return torch.from_numpy(np.stack(points)).float()

    def masks(self, faces: Tensor) -> Tensor:
        """The blending masks ``[B, 1, S, S]`` of face crops, drawn by the checkpoint's masker."""
        batch: dict[str, Tensor] = {"image": faces}
        if isinstance(self.masker, LandmarkMask):
            batch["landmarks"] = self.landmarks(faces)
        return self.masker(batch).to(faces.device, faces.dtype)

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        images = faces.to(self.device, torch.float32)
        condition = self.condition(password, images.shape[0])
        return self.module.pipeline.anonymise(images, self.masks(images), condition).image.clamp(0.0, 1.0)

    @torch.no_grad()
    def recover_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        images = faces.to(self.device, torch.float32)
        condition = self.condition(password, images.shape[0])
        return self.module.pipeline.recover(images, self.masks(images), condition).clamp(0.0, 1.0)

    def privacy_record(self) -> dict[str, Any]:
        record = super().privacy_record()
        record.update(
            formal_guarantee=None,
            reversible=True,
            key=KEY_DESCRIPTION,
            password=PASSWORD_SEMANTICS,
            mask=type(self.masker).__name__,
            reconstructed=self.reconstructed,
            note=RECONSTRUCTED_NOTE if self.reconstructed else RELEASED_NOTE,
        )
        return record


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> IFaditMethod:
    """iFADIT from a phase-2 checkpoint; option ``mask`` picks the blending mask."""
    from src.papers.registry import PAPERS

    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained phase-2 checkpoint (ifadit/phase2_ffhq)")
    check_options(NAME, options, OPTIONS)
    mask = str(options.get("mask", "auto"))
    if mask not in MASKS:
        raise ServingError(f"method '{NAME}': mask must be one of {', '.join(MASKS)}, got {mask!r}")
    info = PAPERS[PAPER]
    targets = (info.target, *info.formerly)  # phase 2 only: a phase-1 checkpoint has no flow
    with warnings.catch_warnings():  # the identity encoder is built without weights, then loaded
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        module = checkpoint.build_module(targets, NAME, edit=_edit, device=device)
    if not isinstance(module, IFaditFlow):
        raise ServingError(
            f"method '{NAME}' serves phase-2 checkpoints (IFaditFlow), got {type(module).__name__}"
        )
    masker = {"auto": module.masker, "landmarks": LandmarkMask(), "ellipse": EllipseMask()}[mask]
    reconstructed = checkpoint.value("model.flow_weights") is None  # else the authors' flow was loaded
    return IFaditMethod(
        module, masker, reconstructed=reconstructed, device=device, provenance=checkpoint.provenance()
    )


register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="iFADIT: reversible anonymisation by a password-keyed identity flow (reconstructed training)",
        experiment="ifadit/phase2_ffhq",
        options=OPTIONS,
        reversible=True,
        needs_password=True,
    )
)
