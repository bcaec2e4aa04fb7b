"""Behaviour shared by every DataModule: global batch size, seeded workers, exact evaluation sharding.

``batch_size`` in every data config is the **global** batch: under DDP each of ``world_size`` processes
loads ``batch_size // world_size`` samples, and a batch size that does not divide raises. Evaluation
loaders use an unpadded distributed sampler so that every sample is scored exactly once (the default
``DistributedSampler`` repeats samples to even out shards, which skews paper-table metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from src.config.buildable import register_project_subclass
from src.config.errors import ConfigError
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.sampling import training_loader
from src.utils.seeding import run_seed, seed_worker


class FaceDataModule(pl.LightningDataModule):
    """Base class for ProFace Lab DataModules.

    Subclasses build datasets in ``setup`` and return them through :meth:`make_loader`; they report
    what they loaded through :meth:`describe` (written to the run record's ``data.json``).
    :meth:`check_layout` is the cheap check a run makes before it creates its run directory.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every project DataModule is buildable from untrusted configs (:mod:`src.config.buildable`)."""
        super().__init_subclass__(**kwargs)
        register_project_subclass(cls)

    def __init__(self, batch_size: int, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.skipped_files: list[dict[str, str]] = []

    @property
    def world_size(self) -> int:
        """Number of processes sharing one global batch (1 without a trainer)."""
        trainer = self.trainer
        return int(trainer.world_size) if trainer is not None else 1

    def per_device_batch_size(self) -> int:
        """The global ``batch_size`` divided across ranks; raises when it does not divide evenly."""
        world = self.world_size
        if self.batch_size % world:
            raise ValueError(
                f"data.batch_size={self.batch_size} is the global batch and must be divisible by the "
                f"world size {world} (devices x nodes); e.g. {world * max(1, self.batch_size // world)}"
            )
        return self.batch_size // world

    @property
    def global_rank(self) -> int:
        """This process's global rank (0 without a trainer)."""
        trainer = self.trainer
        return int(getattr(trainer, "global_rank", 0)) if trainer is not None else 0

    def make_loader(
        self,
        dataset: Dataset,
        *,
        train: bool,
        drop_last: bool | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> DataLoader:
        """A DataLoader with the per-device batch, seeded workers and, for evaluation, exact sharding.

        Training loaders shuffle and augment as functions of (run seed, epoch, rank, sample) and can be
        resumed mid-epoch (:mod:`src.datamodules.components.sampling`).
        """
        if train:
            drop_last = True if drop_last is None else drop_last
            self._check_one_training_batch(dataset, drop_last)
            return training_loader(
                dataset,
                batch_size=self.per_device_batch_size(),
                seed=run_seed(),
                num_replicas=self.world_size,
                rank=self.global_rank,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                drop_last=drop_last,
                worker_init_fn=seed_worker,
                collate_fn=collate_fn,
            )
        sampler = UnrepeatedDistributedSampler(dataset, shuffle=False) if self.world_size > 1 else None
        return DataLoader(
            dataset,
            batch_size=self.per_device_batch_size(),
            shuffle=False,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False if drop_last is None else drop_last,
            worker_init_fn=seed_worker,
            collate_fn=collate_fn,
            persistent_workers=self.num_workers > 0,
        )

    def _check_one_training_batch(self, dataset: Dataset, drop_last: bool) -> None:
        """Training drops the last partial batch: a split smaller than one batch per process would train on
        nothing (Lightning only warns "No training batches") and test an untrained network."""
        if not hasattr(dataset, "__len__"):  # a stream: its length is not known in advance
            return
        per_process = len(dataset) // self.world_size  # type: ignore[arg-type]
        batch = self.per_device_batch_size()
        if drop_last and per_process < batch:
            name = getattr(self, "dataset_name", type(self).__name__)
            processes = f" per process ({self.world_size} processes)" if self.world_size > 1 else ""
            raise ConfigError(
                f"{name}: the training split has {per_process} samples{processes}, fewer than one batch of "
                f"{batch} (datamodule.batch_size={self.batch_size}; training drops the last partial batch, "
                "so nothing would be trained): set datamodule.batch_size to at most "
                f"{per_process * self.world_size}"
            )

    def check_layout(self) -> None:
        """Cheap checks before anything is recorded (no scan, no decoding): the dataset root exists.

        Raises :class:`DatasetLayoutError` naming the path and the key to set, so a run with a wrong path
        fails before it leaves a run directory. DataModules without a ``root`` (generated data) pass.
        """
        root = getattr(self, "root", None)
        if isinstance(root, Path) and not root.is_dir():
            name = getattr(self, "dataset_name", type(self).__name__)
            raise DatasetLayoutError(
                f"{name}: dataset root not found: {root} (set datamodule.root=<folder>, or PROFACE_DATA to "
                "the folder that holds every dataset; layouts: docs/datasets.md, data/README.md)"
            )

    def describe(self) -> dict[str, Any]:
        """Counts (images, identities, videos, ...) and skipped files for the run record."""
        return {"skipped_files": list(self.skipped_files)}


class EvaluationSetDataModule(FaceDataModule):
    """A DataModule of evaluation data only: validation and test both yield every item of :meth:`dataset`
    once, in its order; asking for training data is an error saying why (:attr:`no_training`)."""

    #: completes "<dataset_name> ..." in the error a training request raises
    no_training = "is evaluation data; it has no training split"

    def dataset(self) -> Dataset:
        """The evaluation items (subclasses build them, setting up on first use)."""
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        """Evaluation data has no training split."""
        raise ValueError(f"{self.dataset_name} {self.no_training}")

    def val_dataloader(self) -> DataLoader:
        """Every item once."""
        return self.make_loader(self.dataset(), train=False)

    def test_dataloader(self) -> DataLoader:
        """Every item once."""
        return self.make_loader(self.dataset(), train=False)
