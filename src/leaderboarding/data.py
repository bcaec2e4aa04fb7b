"""The panel's face images: identity-labelled face crops from any project DataModule, held in memory.

Every contender is judged on the same :class:`FaceSet` (the test split) and the parrot attacker learns from
another one (the training split: identities disjoint from the test ones). The DataModule is composed the
usual way (``experiments/_base/datamodule/<option>.yaml`` with ``datamodule.*`` overrides), so its layout
checks and errors are the ones every run gets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor

from src.config.compose import compose
from src.config.instantiate import instantiate
from src.leaderboarding.panel import DATA_EXPERIMENT, PanelError

__all__ = ["FaceSet", "load_faces"]

Echo = Callable[[str], None]
STAGES = {"train": "fit", "val": "validate", "test": "test"}


@dataclass(frozen=True)
class FaceSet:
    """``images`` ``[N, 3, S, S]`` float in ``[0, 1]``, ``identity`` ``[N]``, and what they are."""

    images: Tensor
    identity: Tensor
    #: the DataModule class, its split and the key of its configuration
    source: dict[str, Any]

    @property
    def key(self) -> str:
        """Identifies these images in record keys (the DataModule configuration, split and count)."""
        return hashlib.sha256(json.dumps(self.source, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _loader(module: Any, split: str) -> Any:
    module.setup(STAGES[split])
    return {"train": module.train_dataloader, "val": module.val_dataloader, "test": module.test_dataloader}[
        split
    ]()


def load_faces(
    datamodule: str, overrides: Sequence[str], split: str, count: int, *, echo: Echo = print
) -> FaceSet:
    """The first ``count`` images of ``split`` (in loader order) with their identity labels.

    Batches must be image batches (``image``, ``identity``); a pairs-only protocol is refused with the
    override that switches it (``datamodule.eval_protocol=images`` where the DataModule has one).
    """
    try:
        composed = compose(DATA_EXPERIMENT, [f"datamodule={datamodule}", *overrides]).config
    except Exception as exc:
        raise PanelError(f"panel data (datamodule={datamodule}, {list(overrides)}): {exc}") from None
    config = OmegaConf.to_container(composed, resolve=True)
    assert isinstance(config, dict)
    module_cfg = config["datamodule"]
    module = instantiate(OmegaConf.create(module_cfg))
    images: list[Tensor] = []
    labels: list[Tensor] = []
    have = 0
    for batch in _loader(module, split):
        if "image" not in batch or "identity" not in batch:
            raise PanelError(
                f"panel data {module_cfg['_target_']} ({split}): batches hold {sorted(batch)}, not image and "
                "identity; the leaderboard needs image batches (e.g. datamodule.eval_protocol=images)"
            )
        take = min(count - have, int(batch["image"].shape[0]))
        images.append(batch["image"][:take].float())
        labels.append(batch["identity"][:take].long())
        have += take
        if have >= count:
            break
    if have == 0:
        raise PanelError(f"panel data {module_cfg['_target_']} ({split}) holds no images")
    stacked = torch.cat(images)
    low, high = float(stacked.min()), float(stacked.max())
    if low < -1e-4 or high > 1 + 1e-4:
        raise PanelError(
            f"panel data {module_cfg['_target_']} ({split}): images must be in [0, 1], "
            f"got [{low:.3f}, {high:.3f}]"
        )
    if have < count:
        echo(f"[leaderboard] {split} split holds {have} images (fewer than the {count} asked for): all used")
    source = {"datamodule": module_cfg, "split": split, "count": have}
    return FaceSet(stacked.clamp(0, 1), torch.cat(labels), source)
