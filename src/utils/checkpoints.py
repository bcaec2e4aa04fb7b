"""Loading networks out of ProFace Lab checkpoints (which embed their own config).

The checkpoint is a file from outside: it is read as tensors only (:mod:`src.utils.checkpoint_files`), its
record is checked for shape before use, and its embedded config may only build registered targets
(:func:`src.config.instantiate.instantiate_untrusted`). A checkpoint may name another checkpoint to load (a
recognizer inside a protection method's checkpoint); a chain that comes back to a file already being loaded
is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from torch import nn

from src.config.buildable import buildable
from src.config.instantiate import instantiate_untrusted
from src.utils.checkpoint_files import RECORD_KEY, CheckpointError, open_checkpoint

_LOADING: ContextVar[tuple[Path, ...]] = ContextVar("checkpoints_being_loaded", default=())


@contextmanager
def _loading(path: Path) -> Iterator[None]:
    """Mark ``path`` as being loaded; refuse a chain of checkpoints that comes back to it."""
    chain = _LOADING.get()
    if path in chain:
        raise CheckpointError(
            f"checkpoint {path} refers back to itself through its embedded config "
            f"({' -> '.join(str(p) for p in (*chain, path))})"
        )
    token = _LOADING.set((*chain, path))
    try:
        yield
    finally:
        _LOADING.reset(token)


def _model_config(checkpoint: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """The embedded ``config["model"]`` mapping, checked for shape (the file may come from anyone)."""
    record = checkpoint.get(RECORD_KEY)
    if not isinstance(record, Mapping):
        raise CheckpointError(f"checkpoint {path} has no embedded ProFace Lab config (key '{RECORD_KEY}')")
    config = record.get("config")
    model = config.get("model") if isinstance(config, Mapping) else None
    if not isinstance(model, Mapping):
        raise CheckpointError(f"checkpoint {path}: its embedded config has no 'model' mapping")
    return model


@buildable
def load_network(path: str | Path, attribute: str = "net", *, freeze: bool = True) -> nn.Module:
    """Rebuild ``model.<attribute>`` from a checkpoint's embedded config and load its weights.

    The network is returned in eval mode with gradients off when ``freeze`` (the usual case for a
    recognizer used as a judge or a loss).
    """
    path = Path(path).expanduser().resolve()
    with _loading(path):
        checkpoint, _ = open_checkpoint(path)
        model_cfg = _model_config(checkpoint, path)
        if attribute not in model_cfg or not isinstance(model_cfg[attribute], Mapping):
            raise CheckpointError(
                f"checkpoint {path}: model config has no '{attribute}' (keys: {sorted(model_cfg)})"
            )
        # the embedded config came with the file: only registered buildable targets (never a free import path)
        network = instantiate_untrusted(model_cfg[attribute], source=str(path), key=f"model.{attribute}")
    if not isinstance(network, nn.Module):
        raise CheckpointError(
            f"checkpoint {path}: model.{attribute} built a {type(network).__name__}, not a network"
        )
    prefix = f"{attribute}."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    missing, unexpected = network.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit '{attribute}': {len(missing)} missing keys "
            f"({', '.join(missing[:3])}), {len(unexpected)} unexpected keys ({', '.join(unexpected[:3])})"
        )
    if freeze:
        network.eval().requires_grad_(False)
    return network
