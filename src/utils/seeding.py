"""Seeding that reaches every RNG a run uses: Python, NumPy, torch, dataloader workers and albumentations.

Lightning's ``seed_everything(workers=True)`` seeds Python/NumPy/torch in each worker but never reaches
albumentations, whose transforms keep their own generator; without help every worker replays the same
augmentation sequence. :func:`seed_worker` fixes that per worker *and* per rank.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
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


def derive_seed(*parts: int) -> int:
    """A well-mixed 32-bit seed from integers (NumPy's ``SeedSequence``): distinct inputs, other streams."""
    return int(np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(1)[0])


def run_seed() -> int:
    """The run's global seed as exported by :func:`seed_everything` (``PL_GLOBAL_SEED``; 0 when unset)."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def seedable_transforms(obj: Any) -> list[Any]:
    """The objects with ``set_random_seed`` in a dataset (its transforms), through wrappers like ``Subset``.

    The order is deterministic, so copies of a dataset (dataloader workers) list theirs in the same order.
    """
    seen: set[int] = set()
    found: list[Any] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if callable(getattr(item, "set_random_seed", None)):
            found.append(item)
        for attr in ("transform", "transforms_", "dataset", "datasets"):
            child = getattr(item, attr, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif child is not None and not isinstance(child, (str, int, float)):
                stack.append(child)
    return found


def _set_transform_seeds(obj: Any, seed: int) -> None:
    """Call ``set_random_seed`` on the dataset's transform(s), looking through wrappers like ``Subset``."""
    for transform in seedable_transforms(obj):
        transform.set_random_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for every DataLoader: Lightning's worker seeding plus albumentations."""
    pl_worker_init_function(worker_id, rank=global_rank())
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    _set_transform_seeds(info.dataset, albumentations_seed(info.seed, global_rank()))
