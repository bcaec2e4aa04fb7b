"""Loading networks out of ProFace Lab checkpoints (which embed their own config)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from src.config.buildable import buildable
from src.config.instantiate import instantiate_untrusted
from src.utils.callbacks import CHECKPOINT_KEY


def load_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc


@buildable
def load_network(path: str | Path, attribute: str = "net", *, freeze: bool = True) -> nn.Module:
    """Rebuild ``model.<attribute>`` from a checkpoint's embedded config and load its weights.

    The network is returned in eval mode with gradients off when ``freeze`` (the usual case for a
    recognizer used as a judge or a loss).
    """
    checkpoint = load_checkpoint(path)
    record = checkpoint.get(CHECKPOINT_KEY)
    if record is None:
        raise ValueError(f"{path} has no embedded ProFace Lab config (key '{CHECKPOINT_KEY}')")
    model_cfg = record["config"]["model"]
    if attribute not in model_cfg:
        raise ValueError(f"{path}: model config has no '{attribute}' (keys: {sorted(model_cfg)})")
    # the embedded config came with the file: only registered buildable targets (never a free import path)
    network = instantiate_untrusted(model_cfg[attribute], source=str(path), key=f"model.{attribute}")
    prefix = f"{attribute}."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    missing, unexpected = network.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit '{attribute}': missing {missing}, unexpected {unexpected}"
        )
    if freeze:
        network.eval().requires_grad_(False)
    return network
