"""Lightning callbacks that tie a run to its run record."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from src.utils.run_record import RunRecord

CHECKPOINT_KEY = "proface"


class RunRecordCallback(pl.Callback):
    """Writes ``data.json`` once data is set up and makes every checkpoint self-describing.

    Each checkpoint carries the resolved config, run id and experiment under ``checkpoint["proface"]``, so
    a network can be rebuilt from the checkpoint alone (see :func:`src.utils.checkpoints.load_network`).
    """

    def __init__(self, record: RunRecord, cfg: DictConfig) -> None:
        self.record = record
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Record what the DataModule loaded (counts, skipped files)."""
        datamodule = trainer.datamodule
        describe = getattr(datamodule, "describe", None)
        if callable(describe) and trainer.is_global_zero:
            self.record.write_data({"stage": stage, **describe()})

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Embed the config and run identity in the checkpoint."""
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.config,
            "run_id": self.record.run_id,
            "experiment": self.record.experiment,
            "run_dir": str(self.record.run_dir),
        }
