"""Lightning callbacks that tie a run to its run record."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from src.config.secrets import RunSecrets
from src.utils.checkpoint_files import CHECKPOINT_FORMAT, RECORD_KEY
from src.utils.run_record import RunRecord, read_json
from src.utils.skipped_files import SKIPPED_FILE, read_skipped

CHECKPOINT_KEY = RECORD_KEY  # the ProFace Lab record in every checkpoint


class RunRecordCallback(pl.Callback):
    """Writes ``data.json`` once data is set up and makes every checkpoint self-describing.

    Each checkpoint carries the resolved config, run id and experiment under ``checkpoint[RECORD_KEY]``, so
    a network can be rebuilt from the checkpoint alone (see :func:`src.utils.checkpoints.load_network`).
    """

    def __init__(self, record: RunRecord, cfg: DictConfig, secrets: RunSecrets | None = None) -> None:
        self.record = record
        secrets = secrets or RunSecrets()
        self.config = OmegaConf.to_container(secrets.config(cfg), resolve=True)
        self.secrets = dict(secrets.stored)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Record what the DataModule loaded (counts, skipped files)."""
        datamodule = trainer.datamodule
        describe = getattr(datamodule, "describe", None)
        if callable(describe) and trainer.is_global_zero:
            self.record.write_data({"stage": stage, **describe()})

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Add the files skipped during loading (``skipped_files.csv``, from any worker) to ``data.json``."""
        log_path = self.record.run_dir / SKIPPED_FILE
        data_path = self.record.run_dir / "data.json"
        if not trainer.is_global_zero or not log_path.is_file() or not data_path.is_file():
            return
        data = read_json(data_path)
        known = {entry["path"] for entry in data.get("skipped_files", [])}
        extra = [entry for entry in read_skipped(log_path) if entry["path"] not in known]
        data["skipped_files"] = [*data.get("skipped_files", []), *extra]
        self.record.write_data(data)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Embed the config (secrets as ``***``, with their fingerprints) and the run identity."""
        checkpoint[CHECKPOINT_KEY] = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config,
            "run_id": self.record.run_id,
            "experiment": self.record.experiment,
            "run_dir": str(self.record.run_dir),
            "secrets": self.secrets,
        }


class LineProgress(pl.Callback):
    """One line per epoch (time and epoch metrics): the progress display for logs and non-terminals.

    tqdm bars written to a file or pipe become thousands of carriage-return updates; this prints a
    short, greppable line instead (used automatically when stdout is not a terminal).
    """

    def __init__(self) -> None:
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch clock."""
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print epoch number, duration and the epoch-level metrics."""
        if not trainer.is_global_zero:
            return
        shown = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if not k.endswith("_step") and getattr(v, "numel", lambda: 1)() == 1
        }
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items()))
        elapsed = time.perf_counter() - self._start
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} ({elapsed:.1f} s): {metrics}", flush=True
        )

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Say that testing started (it can take a while)."""
        if trainer.is_global_zero:
            print(f"testing on {sum(trainer.num_test_batches)} batches ...", flush=True)
