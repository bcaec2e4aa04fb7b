"""Rebuilding a paper's trained LightningModule from one of its checkpoints, for inference.

The checkpoint is a file from outside: it is read as tensors only, its embedded config may only build
registered targets (:func:`src.config.instantiate.instantiate_untrusted`), and its model must be one of the
paper's own modules (a checkpoint of another paper is refused by name, not by a state-dict dump).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from src.config.instantiate import instantiate_untrusted
from src.utils.checkpoint_files import RECORD_KEY, CheckpointError, CheckpointInfo, open_checkpoint
from src.weights import sha256_file

__all__ = ["MethodCheckpoint", "open_method_checkpoint"]

ModelEdit = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class MethodCheckpoint:
    """A Lightning checkpoint of ProFace Lab with its embedded config, opened safely."""

    path: Path
    checkpoint: dict[str, Any]
    info: CheckpointInfo
    config: dict[str, Any]

    @property
    def model_config(self) -> dict[str, Any]:
        """A copy of the embedded ``config["model"]``."""
        model = self.config.get("model")
        if not isinstance(model, Mapping):
            raise CheckpointError(f"checkpoint {self.path}: its embedded config has no 'model' mapping")
        return copy.deepcopy(dict(model))

    def value(self, dotted: str, default: Any = None) -> Any:
        """A value of the embedded config by dotted key (``datamodule.image_size``), else ``default``."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from: file, sha256, experiment, run id, epoch and step."""
        return {
            "checkpoint": str(self.path),
            "checkpoint_sha256": sha256_file(self.path),
            "experiment": self.info.experiment,
            "run_id": self.info.run_id,
            "epoch": self.info.epoch,
            "global_step": self.info.global_step,
        }

    def check_target(self, targets: Iterable[str], method: str) -> None:
        """Refuse a checkpoint whose model is not one of ``targets`` (another paper's, or none)."""
        targets = tuple(targets)
        if self.info.model_target not in targets:
            raise CheckpointError(
                f"checkpoint {self.path} holds a {self.info.model_target or 'unknown'} model "
                f"(experiment {self.info.experiment or '?'}), not one that method '{method}' serves "
                f"({', '.join(targets)})"
            )

    def build_module(
        self,
        targets: Iterable[str],
        method: str,
        *,
        edit: ModelEdit | None = None,
        ignore_prefixes: tuple[str, ...] = (),
        device: str | torch.device = "cpu",
    ) -> pl.LightningModule:
        """The checkpoint's LightningModule, rebuilt from its embedded config with its weights, in eval mode.

        ``edit`` may change the model config first (e.g. drop a training-only loss network whose weights are
        not needed to serve); the state-dict keys under ``ignore_prefixes`` are then not required.
        """
        self.check_target(targets, method)
        model_cfg = self.model_config
        if edit is not None:
            model_cfg = edit(model_cfg)
        module = instantiate_untrusted(model_cfg, source=str(self.path), key="model")
        if not isinstance(module, pl.LightningModule):
            raise CheckpointError(f"checkpoint {self.path}: model built a {type(module).__name__}")
        # keys under ignore_prefixes are not loaded at all: a network the edit shrank or dropped may have
        # other shapes, which load_state_dict refuses even with strict=False
        state = {k: v for k, v in self.checkpoint["state_dict"].items() if not k.startswith(ignore_prefixes)}
        missing, unexpected = module.load_state_dict(state, strict=False)
        missing = [key for key in missing if not key.startswith(ignore_prefixes)]
        unexpected = [key for key in unexpected if not key.startswith(ignore_prefixes)]
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {self.path}: weights do not fit the rebuilt '{method}' model: {len(missing)} "
                f"missing ({', '.join(missing[:3])}), {len(unexpected)} unexpected "
                f"({', '.join(unexpected[:3])})"
            )
        return module.to(device).eval().requires_grad_(False)


def open_method_checkpoint(path: str | Path) -> MethodCheckpoint:
    """Open a ProFace Lab Lightning checkpoint (tensors only) and check it embeds its config."""
    path = Path(path).expanduser().resolve()
    checkpoint, info = open_checkpoint(path)
    record = checkpoint.get(RECORD_KEY)
    config = record.get("config") if isinstance(record, Mapping) else None
    if not isinstance(config, Mapping):
        raise CheckpointError(
            f"checkpoint {path} has no embedded ProFace Lab config (key '{RECORD_KEY}'): only checkpoints "
            "written by this framework's training runs can be served"
        )
    return MethodCheckpoint(path, checkpoint, info, dict(config))
