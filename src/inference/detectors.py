"""Serving a trained frame detector whose LightningModule gives ``fake_probability(images)``.

Frame-level forgery detectors of several papers share their serving: rebuild the module from the checkpoint,
score each face crop with the module's own test-time probability, and describe the backbone. A paper's
``serving.py`` supplies only what differs (its module class, which sub-network is the backbone, the
training crop, the weight files to skip at build, its description) through :func:`build_module_detector`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from src.inference.checkpoints import MethodCheckpoint, ModelEdit
from src.inference.methods import DetectionMethod, FaceCrop, ServingError
from src.utils.checkpoint_files import CheckpointError

__all__ = ["ModuleDetector", "build_module_detector"]


class ModuleDetector(DetectionMethod):
    """A trained detector module scoring face crops with its own ``fake_probability``."""

    def __init__(
        self,
        name: str,
        paper: str,
        module: pl.LightningModule,
        backbone: nn.Module,
        face_size: int,
        crop: FaceCrop,
        *,
        description: str,
        details: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.architecture = str(getattr(backbone, "name", "")) or type(backbone).__name__
        self.input_norm = getattr(backbone, "input_norm", None)
        super().__init__(
            name,
            paper,
            face_size,
            crop=crop,
            device=device,
            description=description.format(architecture=self.architecture),
            provenance=provenance,
        )
        self.details = dict(details or {})
        self.module = module.to(self.device).eval()

    @torch.no_grad()
    def detect_faces(self, faces: Tensor) -> Tensor:
        return self.module.fake_probability(faces.to(self.device, torch.float32)).float()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "architecture": self.architecture,
            "input_norm": self.input_norm,
            "crop": {"scale": self.crop.scale, "shift": self.crop.shift},
            **self.details,
            "provenance": dict(self.provenance),
        }


def build_module_detector(
    checkpoint: MethodCheckpoint | None,
    device: str | torch.device,
    options: Mapping[str, Any],
    *,
    name: str,
    paper: str,
    targets: Iterable[str],
    module_type: type[pl.LightningModule] | tuple[type[pl.LightningModule], ...],
    backbone: Callable[[Any], nn.Module],
    crop: Callable[[MethodCheckpoint], FaceCrop],
    edit: ModelEdit | None = None,
    description: str,
    details: Callable[[Any], Mapping[str, Any]] | Mapping[str, Any] | None = None,
    make: type[ModuleDetector] = ModuleDetector,
) -> ModuleDetector:
    """The detector of a checkpoint: rebuilt (``edit`` first), checked to be a ``module_type``, sized by the
    run's ``datamodule.image_size`` (else the backbone's ``input_size``) and cut with ``crop(checkpoint)``.

    ``description`` may hold ``{architecture}``; ``details`` (a mapping, or a function of the module) adds
    to :meth:`ModuleDetector.describe`.
    """
    if options:
        raise ServingError(f"method '{name}' takes no options, got {', '.join(sorted(options))}")
    if checkpoint is None:
        raise ServingError(f"method '{name}' needs a trained checkpoint")
    module = checkpoint.build_module(targets, name, edit=edit, device=device)
    if not isinstance(module, module_type):
        expected = module_type.__name__ if isinstance(module_type, type) else module_type[0].__name__
        raise CheckpointError(
            f"checkpoint {checkpoint.path} holds a {type(module).__name__}, not a {expected}"
        )
    net = backbone(module)
    size = checkpoint.value("datamodule.image_size", getattr(net, "input_size", None))
    if size is None:
        raise CheckpointError(f"checkpoint {checkpoint.path}: its config gives no datamodule.image_size")
    extra = details(module) if callable(details) else details
    return make(
        name,
        paper,
        module,
        net,
        int(size),
        crop(checkpoint),
        description=description,
        details=extra,
        device=device,
        provenance=checkpoint.provenance(),
    )


def box_margin_crop(checkpoint: MethodCheckpoint, default_margin: float) -> FaceCrop | None:
    """The SBI-style test crop of a checkpoint's data: the detector box plus ``datamodule.box_margin`` per
    side (``default_margin`` when the config has none; None when that is None too)."""
    margin = checkpoint.value("datamodule.box_margin", default_margin)
    return None if margin is None else FaceCrop(scale=1.0 + 2.0 * float(margin), shift=0.0)
