"""The classical obfuscations served to people: blur, median, pixelate, mask, noise and DP-Pix.

They need no training, so no checkpoint: ``load("blur")``. Their strengths are this paper's evaluation
settings (``experiments/_base/model/obfuscation_baselines.yaml``) at a 128-pixel face crop; every constructor
argument of the obfuscator can be changed as an option (``load("blur", eval_sigma=8.0)``). Noise-based
obfuscations draw their noise from the OS's secure random generator on every call: a fixed seed would let
anyone who knows it subtract the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from src.inference.checkpoints import MethodCheckpoint
from src.inference.methods import FaceCrop, ProtectionMethod
from src.metrics.privacy.record import RngInfo, secret_seed
from src.obfuscators import BlackBoxMask, GaussianBlur, GaussianNoise, MedianBlur, Pixelate
from src.obfuscators.base import Obfuscator
from src.obfuscators.dp_pix import DPPix
from src.papers.registry import MethodEntry, register_method

PAPER = "obfuscation_baselines"
FACE_SIZE = 128
OPTIONS = {
    "face_size": "side of the face crop the obfuscation runs at (pixels; default 128)",
    "<argument>": "any constructor argument of the obfuscator, e.g. eval_sigma=8 (blur), eval_block=10 "
    "(pixelate), epsilon=1.0 (dp_pix)",
}


class ObfuscationMethod(ProtectionMethod):
    """A fixed obfuscator applied to face crops (evaluation strength; fresh secret noise for noisy ones)."""

    def __init__(self, name: str, obfuscator: Obfuscator, face_size: int, description: str) -> None:
        super().__init__(
            name, PAPER, face_size, crop=FaceCrop(scale=1.5, feather=0.1), description=description
        )
        self.obfuscator = obfuscator.eval()

    @torch.no_grad()
    def protect_faces(self, faces: Tensor, password: str | None = None) -> Tensor:
        self.check_password(password)
        seed, _ = secret_seed()
        generator = torch.Generator().manual_seed(seed)
        return self.obfuscator(faces.to(self.device), generator=generator).clamp(0.0, 1.0)

    def privacy_record(self) -> dict[str, Any]:
        record = super().privacy_record()
        record["obfuscator"] = self.obfuscator.describe()
        record["formal_guarantee"] = None
        if isinstance(self.obfuscator, DPPix):
            # each protect() call is one release of the face, with noise from the OS CSPRNG
            dp = self.obfuscator.privacy_record(releases=1, rng=RngInfo.csprng())
            record["formal_guarantee"] = dp.to_dict()
        return record


def _builder(
    name: str, make: Callable[..., Obfuscator], defaults: dict[str, Any], description: str
) -> Callable[..., ObfuscationMethod]:
    def build(
        checkpoint: MethodCheckpoint | None, device: str | torch.device = "cpu", **options: Any
    ) -> ObfuscationMethod:
        face_size = int(options.pop("face_size", FACE_SIZE))
        try:
            obfuscator = make(**{**defaults, **options})
        except TypeError as exc:
            raise ValueError(f"method '{name}': bad option ({exc})") from exc
        method = ObfuscationMethod(name, obfuscator.to(device), face_size, description)
        method.device = torch.device(device)
        return method

    return build


_METHODS: dict[str, tuple[Callable[..., Obfuscator], dict[str, Any], str]] = {
    "blur": (GaussianBlur, {"kernel_size": 31, "eval_sigma": 5.0}, "Gaussian blur (kernel 31, sigma 5)"),
    "median": (MedianBlur, {"kernel_range": (17, 29), "eval_kernel": 23}, "median blur (kernel 23)"),
    "pixelate": (Pixelate, {"block_range": (4, 10), "eval_block": 7}, "pixelation (7-pixel blocks)"),
    "mask": (BlackBoxMask, {"box": (0.2, 0.25, 0.8, 0.9), "jitter": 0.0}, "black box over the face"),
    "noise": (GaussianNoise, {"eval_std": 0.1}, "Gaussian noise (std 0.1), fresh secret noise per call"),
    "dp_pix": (DPPix, {}, "DP-Pix: epsilon-DP pixelation (epsilon 0.5, 16-pixel cells, m = 1)"),
}

for _name, (_make, _defaults, _description) in _METHODS.items():
    register_method(
        MethodEntry(
            name=_name,
            paper=PAPER,
            kind="protect",
            build=_builder(_name, _make, _defaults, _description),
            summary=_description,
            needs_checkpoint=False,
            options=OPTIONS,
        )
    )
