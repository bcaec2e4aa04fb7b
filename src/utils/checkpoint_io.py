"""How a run writes and reads checkpoint files: atomically, without secrets, never unpickling objects.

Every checkpoint of a run (``last.ckpt``, the best one, step, signal and SLURM requeue checkpoints) goes
through :class:`RunCheckpointIO`:

* the file is written next to its destination and renamed into place, so a process killed while saving
  (SIGKILL, a node failure) leaves the previous checkpoint intact, on any file system;
* the module's hyper-parameters named as secrets are replaced by ``***`` (the embedded config is redacted
  where it is made), so a password never sits next to the weights it protects;
* reading uses ``weights_only=True`` (tensors and plain containers only).
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from src.config.secrets import redact_arguments

HYPER_PARAMETERS = "hyper_parameters"


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete the temporary files a process killed while saving left in ``folder`` (each as big as a
    checkpoint); return them."""
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _loads_as_plain_data(value: Any) -> bool:
    """Whether ``value`` survives ``torch.save`` then ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError:
        return False
    return True


def check_readable_hyperparameters(module: Any) -> None:
    """Refuse a module whose saved hyper-parameters a ``weights_only`` read could not load back (a callable,
    e.g. an optimizer factory, left out of ``save_hyperparameters(ignore=...)``): every checkpoint of the run
    would be written and then fail to load for the test, a resume or a later stage, after the training."""
    hyper = dict(getattr(module, "hparams", {}) or {})
    if not hyper or _loads_as_plain_data(hyper):
        return
    bad = [
        f"{key} ({type(value).__name__})" for key, value in hyper.items() if not _loads_as_plain_data(value)
    ]
    raise TypeError(
        f"{type(module).__name__} saves hyper-parameters that a checkpoint cannot hold as plain data: "
        f"{', '.join(bad)}; pass them to save_hyperparameters(ignore=[...]) (checkpoints are read back with "
        "weights_only=True, so the test after training, a resume or a later stage could not load them)"
    )


class RunCheckpointIO(TorchCheckpointIO):
    """Atomic, secret-free checkpoint writes and ``weights_only`` reads (see the module docstring)."""

    def __init__(self, secret_arguments: Collection[str] = ()) -> None:
        self.secret_arguments = frozenset(secret_arguments)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in the same folder, then rename."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        checkpoint = self._without_secrets(checkpoint)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read with ``weights_only=True`` whatever the caller asks: checkpoints may come from outside."""
        return super().load_checkpoint(path, map_location=map_location or "cpu", weights_only=True)

    def _without_secrets(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        hyper = checkpoint.get(HYPER_PARAMETERS)
        if not self.secret_arguments or not isinstance(hyper, dict):
            return checkpoint
        return {**checkpoint, HYPER_PARAMETERS: redact_arguments(hyper, self.secret_arguments)}
