"""Run one composed configuration: fit and/or test, with a complete run record and W&B logging."""

from __future__ import annotations

import math
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, WandbLogger

from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.utils.callbacks import LineProgress, RunRecordCallback
from src.utils.loggers import RunCSVLogger
from src.utils.run_record import RunRecord, is_launcher_process, resolve_resume
from src.utils.seeding import seed_everything
from src.utils.tables import to_markdown

TASKS = ("train", "eval")


@dataclass
class RunResult:
    """What a finished run returns: where its record is and its final metrics."""

    run_dir: Path
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    table: pd.DataFrame | None = None


def build_callbacks(cfg: DictConfig, record: RunRecord) -> list[pl.Callback]:
    """Callbacks from the ``callbacks`` blocks (those with a ``_target_``) plus the run-record callback."""
    callbacks: list[pl.Callback] = [RunRecordCallback(record, cfg)]
    for name, block in (cfg.get("callbacks") or {}).items():
        if not isinstance(block, DictConfig) or "_target_" not in block:
            continue
        callback = instantiate(block)
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(record.checkpoint_dir)
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name} built {type(callback).__name__}, not a Lightning callback")
        callbacks.append(callback)
    return callbacks


def build_loggers(cfg: DictConfig, record: RunRecord) -> list[Logger]:
    """The CSV logger that writes ``metrics.csv`` into the run dir, plus W&B unless disabled."""
    loggers: list[Logger] = [RunCSVLogger(str(record.run_dir))]
    wandb_cfg = cfg.logger.get("wandb") if cfg.get("logger") else None
    if wandb_cfg is None or wandb_cfg.mode == "disabled":
        return loggers
    if wandb_cfg.mode not in ("online", "offline"):
        raise ConfigError(f"logger.wandb.mode must be online, offline or disabled, got '{wandb_cfg.mode}'")
    config = OmegaConf.to_container(cfg, resolve=True)
    config["run_dir"] = str(record.run_dir)
    group = wandb_cfg.group or (cfg.sweep.name if cfg.get("sweep") else None)
    loggers.append(
        WandbLogger(
            name=f"{record.experiment}/{record.run_id}",
            id=record.run_id,
            project=wandb_cfg.project,
            entity=wandb_cfg.entity,
            group=group,
            job_type=wandb_cfg.job_type or record.task,
            save_dir=str(record.run_dir),
            mode=wandb_cfg.mode,
            config=config,
            tags=list(cfg.run.tags),
            notes=cfg.run.notes or None,
            log_model=wandb_cfg.log_model,
        )
    )
    return loggers


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[key] = number if math.isfinite(number) else str(number)
    return out


def _results_table(model: pl.LightningModule, metrics: dict[str, float]) -> pd.DataFrame:
    """The module's own table if it defines ``results_table()``, else one row of test metrics."""
    table_fn = getattr(model, "results_table", None)
    if callable(table_fn):
        table = table_fn(metrics)
        if table is not None:
            return table
    test_metrics = {k: v for k, v in metrics.items() if k.startswith("test/")}
    return pd.DataFrame([test_metrics or metrics])


def _finish_wandb() -> None:
    """Close any W&B run so the next run in this process never reuses it."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception:  # pragma: no cover - closing must never mask the real error
        pass


def run(cfg: DictConfig, overrides: list[str], task: str = "train") -> RunResult:
    """Fit and/or test the configured model, writing the run record as it goes."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    seed_everything(cfg.seed)
    record = RunRecord.open(cfg, task)
    if is_launcher_process():
        print(f"RUN_DIR={record.run_dir}", flush=True)
    record.write_start(cfg, overrides)
    status, error, result = "failed", None, RunResult(record.run_dir, record.run_id)
    try:
        datamodule = instantiate(cfg.datamodule)
        model = instantiate(cfg.model)
        callbacks = build_callbacks(cfg, record)
        trainer_overrides: dict[str, Any] = {}
        if cfg.trainer.get("enable_progress_bar", True) and not sys.stdout.isatty():
            callbacks.append(LineProgress())  # tqdm in a log file is unreadable
            trainer_overrides["enable_progress_bar"] = False
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            callbacks=callbacks,
            logger=build_loggers(cfg, record),
            default_root_dir=str(record.run_dir),
            **trainer_overrides,
        )
        record.update_meta(world_size=trainer.world_size, num_processes_per_node=trainer.num_devices)
        metrics: dict[str, Any] = {}
        fit_ckpt = resolve_resume(cfg.resume)[1] if cfg.get("resume") else None
        if task == "train" and cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=str(fit_ckpt) if fit_ckpt else cfg.ckpt_path)
            metrics.update(trainer.callback_metrics)
        test_ckpt = _test_checkpoint(cfg, trainer, model, task)
        if task == "eval" or cfg.test:
            trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt)
            metrics.update(trainer.callback_metrics)
        result.metrics = _float_metrics(metrics)
        status = "completed"
        best = _best_checkpoint(trainer)
        data = _data_label(datamodule)
        record.write_summary(
            result.metrics, status, best_checkpoint=best, tested_checkpoint=test_ckpt, data=data
        )
        result.table = _results_table(model, result.metrics)
        if is_launcher_process() and trainer.is_global_zero:
            result.table.to_csv(record.run_dir / "results.csv", index=False)
            heading = f"{record.experiment} ({record.run_id}) on {data.get('dataset', '?')}"
            note = f"\n\n> {data['note']}" if data.get("note") else ""
            (record.run_dir / "results.md").write_text(f"# {heading}{note}\n\n{to_markdown(result.table)}\n")
        return result
    except BaseException as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        record.write_summary({}, "failed", error=error)
        raise
    finally:
        record.finish(status, error)
        _finish_wandb()


def _data_label(datamodule: Any) -> dict[str, Any]:
    """Which data the numbers are on (dataset name, synthetic flag, note), for summaries and tables."""
    describe = getattr(datamodule, "describe", None)
    info = describe() if callable(describe) else {}
    return {key: info[key] for key in ("dataset", "synthetic", "note") if key in info}


def _best_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint):
        return callback.best_model_path or callback.last_model_path or None
    return None


def _test_checkpoint(
    cfg: DictConfig, trainer: pl.Trainer, model: pl.LightningModule, task: str
) -> str | None:
    """Which weights to test: the given checkpoint (eval), else the best (or last) one of this run."""
    if task == "eval":
        if cfg.ckpt_path:
            if not os.path.isfile(cfg.ckpt_path):
                raise FileNotFoundError(f"ckpt_path not found: {cfg.ckpt_path}")
            return str(cfg.ckpt_path)
        if getattr(model, "requires_checkpoint", True):
            raise ConfigError(f"src.eval needs ckpt_path=<file> for experiment '{cfg.experiment}'")
        return None
    if not cfg.train:
        return cfg.ckpt_path
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None
