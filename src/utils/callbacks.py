"""Lightning callbacks that tie a run to its run record."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from src.config.errors import ConfigError
from src.config.secrets import RunSecrets
from src.utils.checkpoint_files import CHECKPOINT_FORMAT, RECORD_KEY
from src.utils.console import Every, Pacer, format_elapsed, metric_lines, progress_line
from src.utils.run_record import RunRecord, read_json
from src.utils.skipped_files import SKIPPED_FILE, read_skipped

CHECKPOINT_KEY = RECORD_KEY  # the ProFace Lab record in every checkpoint
PROGRESS_ENV = "PROFACE_PROGRESS_EVERY"  # how often LineProgress prints: 30s, 10% or off


def progress_interval(every: str | None = None) -> Every:
    """How often :class:`LineProgress` prints: ``every``, else ``$PROFACE_PROGRESS_EVERY``, else 30 s.

    A value that is none of ``30s`` / ``10%`` / ``off`` is a configuration error (one line, exit 2), raised
    before a run creates its directory (:func:`src.tasks.prepare` checks it)."""
    text = every if every is not None else os.environ.get(PROGRESS_ENV, "30s")
    try:
        return Every.parse(text)
    except ValueError as exc:
        source = "" if every is not None else f"{PROGRESS_ENV}="
        raise ConfigError(f"{source}{text}: {exc}") from None


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
    """Progress for logs and non-terminals: a line every 30 s (or every N % of the batches) with step/total,
    rate and ETA, and after each epoch a summary of its metrics grouped by prefix.

    tqdm bars written to a file or pipe become thousands of carriage-return updates; this prints short,
    greppable lines instead (used automatically when stdout is not a terminal). ``every`` is ``30s``,
    ``10%`` or ``off`` (default: ``$PROFACE_PROGRESS_EVERY``, else every 30 s); ``clock`` and ``width`` are
    there for tests.
    """

    def __init__(
        self, every: str | None = None, clock: Callable[[], float] = time.monotonic, width: int | None = None
    ) -> None:
        self.every = progress_interval(every)
        self.clock = clock
        self.width = width
        self._train: _Stage | None = None  # the training epoch's progress
        self._stage: _Stage | None = None  # what runs now: training, validation or test

    def _begin(self, name: str, total: float) -> _Stage:
        now = self.clock()
        return _Stage(name, Pacer(now, total, self.every), now)

    def _advance(
        self, trainer: pl.Trainer, step: int | None = None, extra: dict[str, float] | None = None
    ) -> None:
        """Count a batch of the current stage; print a line when one is due (``step``: batches of the stage
        finished, also those before a mid-epoch resume; default: those counted here)."""
        stage = self._stage
        if stage is None or not trainer.is_global_zero:
            return
        stage.done += 1
        step = stage.done if step is None else step
        now = self.clock()
        if stage.pacer.due(now, step):
            line = progress_line(stage.name, step, stage.pacer.total, stage.done, now - stage.start, extra)
            print(line, flush=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock (resumed in the middle of an epoch, Lightning skips ``on_train_epoch_start``)."""
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the epoch clock."""
        self._train = self._stage = self._begin(_epoch_label(trainer), float(trainer.num_training_batches))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """A progress line when one is due."""
        self._advance(trainer, batch_idx + 1, _step_metrics(trainer))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validation progress (none for the sanity check)."""
        total = float(sum(trainer.num_val_batches))
        self._stage = None if trainer.sanity_checking else self._begin("validation", total)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        """A progress line when one is due."""
        self._advance(trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Back to the training epoch (validation can also run in the middle of one)."""
        self._stage = self._train

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the epoch, its duration and its metrics, grouped by prefix."""
        train, self._train = self._train, None
        self._stage = None
        if not trainer.is_global_zero:
            return
        elapsed = self.clock() - train.start if train is not None else 0.0
        header = f"{_epoch_label(trainer)} done in {format_elapsed(elapsed)}"
        print("\n".join([header, *metric_lines(_epoch_metrics(trainer), self.width)]), flush=True)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Say that testing started (it can take a while)."""
        if trainer.is_global_zero:
            print(f"testing on {sum(trainer.num_test_batches)} batches ...", flush=True)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Test progress."""
        self._stage = self._begin("test", float(sum(trainer.num_test_batches)))

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        """A progress line when one is due."""
        self._advance(trainer)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Testing is over."""
        self._stage = None


@dataclass
class _Stage:
    """The progress of one stage: its label, pacing, start time and the batches finished in this process."""

    name: str
    pacer: Pacer
    start: float
    done: int = 0


def _epoch_label(trainer: pl.Trainer) -> str:
    epoch, last = trainer.current_epoch + 1, trainer.max_epochs
    return f"epoch {epoch}/{last}" if last not in (None, -1) else f"epoch {epoch}"


def _epoch_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The epoch's scalar metrics; ``x`` is left out when ``x_epoch`` (the same value) is there."""
    metrics = {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if not key.endswith("_step") and getattr(value, "numel", lambda: 1)() == 1
    }
    return {key: value for key, value in metrics.items() if f"{key}_epoch" not in metrics}


def _step_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """This step's values shown in a progress bar (``prog_bar=True``), not the previous epoch's."""
    shown = {}
    for key, value in trainer.progress_bar_metrics.items():
        if key.endswith("_step") or (key.startswith("train/") and not key.endswith("_epoch")):
            try:
                shown[key] = float(value)
            except (TypeError, ValueError):
                continue
    return shown
