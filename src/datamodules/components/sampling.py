"""Training order and augmentation as pure functions of (seed, epoch, rank, sample): exact resume.

A shuffled ``DataLoader`` draws its order from the global torch RNG and albumentations keeps one generator
per worker, so both depend on everything that happened before in the process: a run resumed from a
checkpoint sees another order and other augmentations than the uninterrupted run. Here instead

* :class:`EpochSampler` shuffles with ``seed + epoch`` (torch's ``DistributedSampler``, which Lightning
  leaves alone under DDP and steps with ``set_epoch``) and yields each index with its own sample seed
  ``derive_seed(seed, epoch, index)``;
* :class:`SeededItems` reseeds the dataset's augmentation from that sample seed before loading the item, so
  an item's augmentation depends on (transform seed, run seed, epoch, index) only, whichever worker loads
  it and whenever;
* :class:`ResumableLoader` counts the batches it delivered in the current epoch and is *stateful* for
  Lightning (``state_dict``/``load_state_dict``): a checkpoint written mid-epoch records the position, and
  the resumed loader skips exactly the batches already trained on. Its own generator (reseeded per epoch)
  gives worker base seeds without touching the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from src.config.errors import ConfigError
from src.utils.seeding import derive_seed, seedable_transforms


class SampleKey(NamedTuple):
    """A dataset index with the seed of its augmentation."""

    index: int
    seed: int


class EpochSampler(DistributedSampler):
    """Shuffled, rank-sharded training order from ``(seed, epoch)``; yields :class:`SampleKey` items.

    ``num_replicas=1, rank=0`` is a plain seeded shuffle. Lightning calls :meth:`set_epoch` before each
    epoch. ``skip`` drops the first indices of the next iteration only (mid-epoch resume).
    """

    def __init__(self, dataset: Dataset, *, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=int(seed))
        self.skip = 0

    def __iter__(self) -> Iterator[SampleKey]:  # type: ignore[override]
        skip, self.skip = self.skip, 0
        indices = list(super().__iter__())[skip:]
        return iter([SampleKey(index, derive_seed(self.seed, self.epoch, index)) for index in indices])


class SeededItems(Dataset):
    """Wraps a dataset so ``[SampleKey(index, seed)]`` reseeds its augmentation, then loads ``index``.

    Plain integer keys load as usual (unseeded). The transforms' own seeds (``transform_seed``, the
    DataModule's ``seed``) stay part of every sample seed, so they keep their meaning. Other attributes
    are the wrapped dataset's (``loader.dataset.labels`` works as before).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.items = dataset
        # the transforms' own seeds, read once here: workers reseed their copies on start-up
        self._base_seeds = [int(getattr(t, "seed", None) or 0) for t in seedable_transforms(dataset)]
        self._transforms: list[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("items", "_base_seeds", "_transforms"):
            raise AttributeError(name)  # not set yet (unpickling): never recurse
        return getattr(self.items, name)

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]

    def __getitem__(self, key: int | SampleKey) -> Any:
        if isinstance(key, tuple):
            index, seed = key
            if self._transforms is None:  # found per process: workers hold their own copies
                self._transforms = seedable_transforms(self.items)
            for transform, base in zip(self._transforms, self._base_seeds, strict=True):
                transform.set_random_seed(derive_seed(base, seed))
            return self.items[index]
        return self.items[key]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_transforms": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class ResumableLoader(DataLoader):
    """A training DataLoader that Lightning can save and restore mid-epoch (see module docstring).

    Built like any DataLoader (Lightning may re-create it from its arguments); the sampler must be an
    :class:`EpochSampler` for the state to mean anything, and ``generator`` is reseeded per epoch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_delivered = 0
        self._resume_at: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self.sampler
        epoch = int(getattr(sampler, "epoch", 0))
        skip = 0
        if self._resume_at is not None:
            resume_epoch, batches = self._resume_at
            self._resume_at = None
            skip = batches if resume_epoch == epoch else 0
        if isinstance(sampler, EpochSampler):
            sampler.skip = skip * int(self.batch_size or 1)
            if self.generator is not None:
                self.generator.manual_seed(derive_seed(sampler.seed, epoch, sampler.rank, 1))
        self.batches_delivered = skip
        for batch in super().__iter__():
            self.batches_delivered += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the current epoch stands: epoch, batches delivered, and what must match on resume."""
        sampler = self.sampler
        return {
            "epoch": int(getattr(sampler, "epoch", 0)),
            "batches": int(self.batches_delivered),
            "batch_size": int(self.batch_size or 0),
            "num_replicas": int(getattr(sampler, "num_replicas", 1)),
            "seed": int(getattr(sampler, "seed", 0)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Skip the batches the checkpointed run already trained on in its epoch (next iteration only)."""
        mine = self.state_dict()
        differs = [key for key in ("batch_size", "num_replicas", "seed") if state.get(key) != mine[key]]
        if differs:
            details = ", ".join(f"{key} {state.get(key)} -> {mine[key]}" for key in differs)
            raise ConfigError(
                f"cannot resume this epoch exactly: the training data loader changed since the checkpoint "
                f"({details}); resume with the same batch size, devices and seed, or from an end-of-epoch "
                "checkpoint"
            )
        self._resume_at = (int(state["epoch"]), int(state["batches"]))


def training_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    seed: int,
    num_replicas: int,
    rank: int,
    num_workers: int,
    pin_memory: bool,
    drop_last: bool,
    worker_init_fn: Callable[[int], None] | None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> ResumableLoader:
    """The training loader of every DataModule: seeded order and augmentation, resumable mid-epoch."""
    items = dataset if isinstance(dataset, SeededItems) else SeededItems(dataset)
    return ResumableLoader(
        items,
        batch_size=batch_size,
        sampler=EpochSampler(items, seed=seed, num_replicas=num_replicas, rank=rank),
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=worker_init_fn,
        persistent_workers=num_workers > 0,
        generator=torch.Generator(),
        collate_fn=collate_fn,
    )
