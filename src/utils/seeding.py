"""Seeding that reaches every RNG a run uses: Python, NumPy, torch, dataloader workers and albumentations.

Lightning's ``seed_everything(workers=True)`` seeds Python/NumPy/torch in each worker but never reaches
albumentations, whose transforms keep their own generator; without help every worker replays the same
augmentation sequence. :func:`seed_worker` fixes that per worker *and* per rank.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.seed import pl_worker_init_function

_RANK_STRIDE = 7919  # a prime, so (worker seed, rank) pairs map to distinct albumentations seeds


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and torch (and mark workers for seeding); ``0`` is a valid seed."""
    if seed is None:
        raise ValueError("seed must be an integer (0 is valid); got None")
    return pl.seed_everything(int(seed), workers=True, verbose=False)


def global_rank() -> int:
    """The global rank of this process from the launcher's environment (0 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def albumentations_seed(worker_seed: int, rank: int) -> int:
    """The albumentations seed for one worker on one rank: differs across both, repeats across runs."""
    return (int(worker_seed) + _RANK_STRIDE * int(rank)) % 2**32


def _set_transform_seeds(obj: Any, seed: int) -> None:
    """Call ``set_random_seed`` on the dataset's transform(s), looking through wrappers like ``Subset``."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        setter = getattr(item, "set_random_seed", None)
        if callable(setter):
            setter(seed)
        for attr in ("transform", "transforms_", "dataset", "datasets"):
            child = getattr(item, attr, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif child is not None and not isinstance(child, (str, int, float)):
                stack.append(child)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for every DataLoader: Lightning's worker seeding plus albumentations."""
    pl_worker_init_function(worker_id, rank=global_rank())
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    _set_transform_seeds(info.dataset, albumentations_seed(info.seed, global_rank()))
