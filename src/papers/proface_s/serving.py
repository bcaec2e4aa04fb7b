"""PRO-Face S served to people: reversible, password-keyed face protection from a trained checkpoint.

``load("proface_s", ckpt=...)`` rebuilds the keyed INN of a training run of this paper (any experiment of
``experiments/proface_s/``) and applies it as the module's own evaluation does ("Evaluation protocol" in
docs/papers/proface_s.md): the face is obfuscated by one of the checkpoint's evaluation settings (its
evaluation strength), ``x_p = G(x, x_o; k)`` is clamped to [0, 1], and recovery runs the INN backwards with
the same key and the key-derived ``ẑ``. The key comes from the *user's* password with the paper's
derivation (PBKDF2-HMAC-SHA512 with the checkpoint's salt and iteration count, :mod:`.keys`); the password
is used for one call and never stored (the module's own ``password_key`` caches keys by password, so it is
not used here). The checkpoint's ``eval_password`` plays no part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import (
    FaceCrop,
    PasswordError,
    ProtectionMethod,
    ServingError,
    check_options,
    crop_from_options,
)
from src.papers.proface_s.keys import key_from_password
from src.papers.proface_s.module import ProFaceSModule
from src.papers.registry import MethodEntry, register_method, served_targets

__all__ = ["ProFaceSMethod", "build"]

NAME = PAPER = "proface_s"
#: CelebA's aligned 178x178 crop (rows 20..198 of the 178x218 image, hair and chin included) around an MTCNN
#: box: the box's larger side is about 2.5 eye-to-mouth distances (41 px there) with the eyes at 0.37 of its
#: height, so the crop is ~1.75 box sides, centred ~0.15 box heights above the box's centre
CELEBA_CROP = FaceCrop(scale=1.75, shift=-0.15)
#: a whole SyntheticFaces render (the demo experiments' data) around its MTCNN box (measured at 64-256 px)
SYNTHETIC_CROP = FaceCrop(scale=2.1, shift=0.0)
#: a fixed seed for the Gaussian ẑ of checkpoints trained with ``secret_key_as_noise: false`` (repeatable)
Z_SEED = 0
OPTIONS = {
    "obfuscator": "evaluation setting of the checkpoint that x_p imitates (default: the first, e.g. blur for "
    "the hybrid models; the swap settings need their weights and target folders)",
    "crop_scale": "face square side / detector box side (default: the training data's, 1.75 for CelebA)",
    "crop_shift": "vertical shift of the face square in box heights (default: the training data's)",
}


def training_crop(checkpoint: MethodCheckpoint) -> FaceCrop:
    """The crop of the checkpoint's training faces: CelebA's aligned crop, or a whole synthetic render."""
    target = str(checkpoint.value("datamodule._target_", ""))
    return SYNTHETIC_CROP if target.endswith("SyntheticFacesDataModule") else CELEBA_CROP


class ProFaceSMethod(ProtectionMethod):
    """PRO-Face S on face crops: protect with a password-derived key, recover with the same password."""

    reversible = True
    needs_password = True

    def __init__(
        self,
        module: ProFaceSModule,
        setting: str,
        face_size: int,
        *,
        crop: FaceCrop,
        device: torch.device,
        provenance: Mapping[str, Any],
    ) -> None:
        super().__init__(
            NAME,
            PAPER,
            face_size,
            crop=crop,
            device=device,
            description=f"PRO-Face S: reversible, password-keyed protection that looks like {setting}",
            provenance=provenance,
        )
        if face_size % 4:
            raise ServingError(
                f"{NAME}: the face size must be a multiple of 4, the checkpoint has {face_size}"
            )
        self.module = module.to(self.device).eval()
        self.setting = setting
        self.obfuscator = module.eval_obfuscators[setting]

    def key(self, password: str | None, size: int) -> Tensor:
        """The ``[1, 1, size, size]`` ±1 key of ``password`` (PBKDF2 with the checkpoint's salt and count)."""
        self.check_password(password)
        assert password is not None  # check_password refuses an empty one
        try:
            key = key_from_password(
                password, size, size, self.module.hparams.key_salt, self.module.hparams.key_iterations
            )
        except ValueError as exc:  # characters outside Latin-1, as pycryptodome refuses them
            raise PasswordError(f"method '{self.name}': the password must be Latin-1 text ({exc})") from None
        return key.to(self.device)

    def _check_faces(self, faces: Tensor) -> Tensor:
        """``[B, 3, S, S]`` on the device; any ``S`` divisible by 4 (the Haar transform halves it, and the
        key has one PBKDF2 bit per pixel, whole bytes), so native-resolution crops work too."""
        if (
            faces.ndim != 4
            or faces.shape[1] != 3
            or faces.shape[-1] != faces.shape[-2]
            or faces.shape[-1] % 4
        ):
            raise ServingError(
                f"{self.name}: faces must be [B, 3, S, S] with S divisible by 4, got {tuple(faces.shape)}"
            )
        return faces.to(self.device, torch.float32)

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        faces = self._check_faces(faces)
        key = self.key(password, faces.shape[-1])
        obfuscated = self.obfuscator(faces).clamp(0.0, 1.0)  # evaluation strength (eval mode)
        return self.module(faces, obfuscated, key).clamp(0.0, 1.0)

    @torch.no_grad()
    def recover_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        faces = self._check_faces(faces)
        key = self.key(password, faces.shape[-1])
        generator = torch.Generator().manual_seed(Z_SEED)  # used only by a Gaussian ẑ
        z = self.module.net.default_z(key, faces.shape[0], generator).to(self.device)
        recovered, _ = self.module.inverse(faces, key, z)
        return recovered.clamp(0.0, 1.0)

    def privacy_record(self) -> dict[str, Any]:
        hparams = self.module.hparams
        return {
            **super().privacy_record(),
            "obfuscator": self.setting,
            "obfuscator_settings": self.obfuscator.describe(),
            "reversible": True,
            "key_derivation": (
                f"PBKDF2-HMAC-SHA512, salt {hparams.key_salt!r}, {hparams.key_iterations} iterations"
            ),
            "formal_guarantee": None,
            "notes": (
                "No formal privacy guarantee: the protected face imitates the obfuscation, and anyone with "
                "this checkpoint and the password recovers the face. Recovery is learned (approximate) and "
                "needs the protected pixels unchanged: no resizing, JPEG or blending. The key derivation is "
                "the paper's (fixed salt, few iterations): fast to guess, so use a long random password. "
                "Training data and schedule partly reconstructed (docs/papers/proface_s.md)."
            ),
        }


def build(
    checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
) -> ProFaceSMethod:
    """PRO-Face S from a checkpoint of one of its training runs (see :data:`OPTIONS`)."""
    if checkpoint is None:
        raise ServingError(f"method '{NAME}' needs a trained checkpoint")
    check_options(NAME, options, OPTIONS)

    def serving_model(model: dict[str, Any]) -> dict[str, Any]:
        # evaluation-only judges: a random-trunk perceptual net instead of LPIPS-VGG (its trunk is a weights
        # file), no anonymity recognizer; neither has state-dict entries nor takes part in protection
        model["perceptual"] = {
            "_target_": "src.losses.perceptual.PerceptualLoss",
            "kind": "lpips_random",
            "net": "alex",
        }
        model["anonymity_recognizer"] = None
        return model

    module = checkpoint.build_module(served_targets(ENTRY), NAME, edit=serving_model, device=device)
    assert isinstance(module, ProFaceSModule)
    settings = list(module.eval_obfuscators)
    setting = str(options.get("obfuscator", settings[0]))
    if setting not in settings:
        raise ServingError(
            f"method '{NAME}': no evaluation setting '{setting}'; settings: {', '.join(settings)}"
        )
    default = training_crop(checkpoint)
    crop = crop_from_options(NAME, default, options)
    face_size = int(checkpoint.value("datamodule.image_size", 256))
    return ProFaceSMethod(
        module, setting, face_size, crop=crop, device=torch.device(device), provenance=checkpoint.provenance()
    )


ENTRY = register_method(
    MethodEntry(
        name=NAME,
        paper=PAPER,
        kind="protect",
        build=build,
        summary="PRO-Face S: reversible protection keyed by a password (recover with the same password)",
        experiment="proface_s/hybrid_all_celeba",
        options=OPTIONS,
        reversible=True,
        needs_password=True,
    )
)
