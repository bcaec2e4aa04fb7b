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
from src.datamodules.components.layout import DatasetLayoutError
from src.leaderboarding.panel import DATA_EXPERIMENT, PanelError

__all__ = ["FaceSet", "load_faces"]

Echo = Callable[[str], None]
STAGES = {"train": "fit", "val": "validate", "test": "test"}


@dataclass(frozen=True)
class FaceSet:
    """``images`` ``[N, 3, S, S]`` float in ``[0, 1]``, ``identity`` ``[N]``, and what they are.

    A **pairs** set (a DataModule's verification pairs, e.g. LFW ``pairs.txt``) holds both sides of its
    ``P`` pairs: ``images[:P]`` are the ``a`` sides, ``images[P:]`` the ``b`` sides, ``is_same`` and
    ``fold`` are ``[P]``, and ``identity`` is unknown (-1).
    """

    images: Tensor
    identity: Tensor
    #: the DataModule class, its split and the key of its configuration
    source: dict[str, Any]
    is_same: Tensor | None = None
    fold: Tensor | None = None

    @property
    def protocol(self) -> str:
        """``pairs`` for a verification-pair set, ``images`` for identity-labelled images."""
        return "images" if self.is_same is None else "pairs"

    def describe(self) -> str:
        """``64 faces of 11 identities`` / ``600 pairs (1200 faces)``."""
        if self.is_same is not None:
            return f"{self.is_same.numel()} verification pairs ({len(self)} faces)"
        return f"{len(self)} faces of {int(self.identity.unique().numel())} identities"

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
    """The first ``count`` images of ``split`` (in loader order) with their identity labels, or the first
    ``count`` verification pairs when the DataModule gives pair batches (``image_a``, ``image_b``,
    ``is_same``, ``fold``); any other batch is an error naming its keys.
    """
    try:
        composed = compose(DATA_EXPERIMENT, [f"datamodule={datamodule}", *overrides]).config
    except Exception as exc:
        raise PanelError(f"panel data (datamodule={datamodule}, {list(overrides)}): {exc}") from None
    config = OmegaConf.to_container(composed, resolve=True)
    assert isinstance(config, dict)
    module_cfg = config["datamodule"]
    what = f"panel data {module_cfg['_target_']} ({split})"
    try:
        loader = _loader(instantiate(OmegaConf.create(module_cfg)), split)
    except (DatasetLayoutError, FileNotFoundError, ValueError) as exc:  # missing data: the panel's to fix
        raise PanelError(f"{what}: {' '.join(str(exc).split())}") from None
    parts: dict[str, list[Tensor]] = {}
    have = 0
    for batch in loader:
        keys = _batch_keys(batch, what)
        take = min(count - have, int(batch[keys[0]].shape[0]))
        for key in keys:
            parts.setdefault(key, []).append(batch[key][:take])
        have += take
        if have >= count:
            break
    if have == 0:
        raise PanelError(f"{what} holds no images")
    got = {key: torch.cat(values) for key, values in parts.items()}
    pairs = "image_a" in got
    stacked = torch.cat([got["image_a"], got["image_b"]]) if pairs else got["image"]
    stacked = stacked.float()
    low, high = float(stacked.min()), float(stacked.max())
    if low < -1e-4 or high > 1 + 1e-4:
        raise PanelError(
            f"panel data {module_cfg['_target_']} ({split}): images must be in [0, 1], "
            f"got [{low:.3f}, {high:.3f}]"
        )
    unit = "pairs" if pairs else "images"
    if have < count:
        echo(f"[leaderboard] {split} split holds {have} {unit} (fewer than the {count} asked for): all used")
    source = {"datamodule": module_cfg, "split": split, "count": have, "protocol": unit}
    if pairs:
        unknown = torch.full((stacked.shape[0],), -1, dtype=torch.long)
        return FaceSet(stacked.clamp(0, 1), unknown, source, got["is_same"].bool(), got["fold"].long())
    return FaceSet(stacked.clamp(0, 1), got["identity"].long(), source)


IMAGE_KEYS = ("image", "identity")
PAIR_KEYS = ("image_a", "image_b", "is_same", "fold")


def _batch_keys(batch: Any, what: str) -> tuple[str, ...]:
    """The keys the leaderboard keeps from a batch: image batches, else pair batches."""
    for keys in (IMAGE_KEYS, PAIR_KEYS):
        if all(key in batch for key in keys):
            return keys
    raise PanelError(
        f"{what}: batches hold {sorted(batch)}; the leaderboard needs image batches "
        f"({', '.join(IMAGE_KEYS)}) or verification pairs ({', '.join(PAIR_KEYS)})"
    )
