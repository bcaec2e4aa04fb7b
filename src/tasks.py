"""Run one composed configuration: fit and/or test, with a complete run record and W&B logging.

Besides fitting and testing, a run here
* never builds anything from the files of a run directory it resumes (:mod:`src.utils.resume`) and reads
  checkpoints only as tensors, with one-line errors for bad files (:mod:`src.utils.checkpoint_files`);
* continues exactly where an interrupted run stopped (:mod:`src.utils.exact_resume`, the resumable training
  loader, ``metrics.csv`` cut back to the checkpoint, W&B without repeated steps);
* writes no secret anywhere (:mod:`src.config.secrets`), asking for them again on resume and evaluation;
* stops cleanly on SIGTERM / SIGINT / SLURM's requeue signal with the status and exit code a scheduler
  expects (:mod:`src.utils.signals`);
* runs multi-node under SLURM (one process per task, started by ``srun``; Lightning's ``SLURMEnvironment``
  gives the ranks): every rank derives the same run directory from the job, the ranks check that they agree
  once the process group exists, and a job whose tasks per node / nodes do not match ``trainer.devices`` /
  ``trainer.num_nodes`` stops before anything is built, naming both numbers;
* builds the DataModule (with its cheap layout check), the model and the checkpoints it starts from before it
  creates a run directory, so a wrong path or a missing file leaves no run behind; a run that still fails
  before training or testing starts is recorded as ``failed_to_start``.
"""

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
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor
from torch.nn.parameter import UninitializedParameter

from src.analysis.runs import NOT_STARTED
from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.config.secrets import RunSecrets, check_secrets_given_again
from src.lightning_modules.base import LabModule
from src.papers.registry import discover
from src.utils.callbacks import LineProgress, RunRecordCallback, progress_interval
from src.utils.checkpoint_files import check_state_dict_fits, open_checkpoint
from src.utils.checkpoint_io import RunCheckpointIO, check_readable_hyperparameters, remove_partial_writes
from src.utils.exact_resume import LAST_CHECKPOINT, ExactResume, LastCheckpoint
from src.utils.loggers import RunCSVLogger, RunWandbLogger, logged_steps
from src.utils.resume import check_recorded_config
from src.utils.run_record import RunRecord, is_launcher_process, read_json, resolve_resume
from src.utils.seeding import seed_everything
from src.utils.signals import (
    GracefulStop,
    RunStopped,
    SignalWatch,
    requeue_owner,
    slurm_restarted,
    stop_status,
)
from src.utils.tables import to_markdown

TASKS = ("train", "eval")
FAILED_TO_START = NOT_STARTED  # status of a run that failed before its training or testing began


@dataclass
class RunResult:
    """What a finished run returns: where its record is and its final metrics."""

    run_dir: Path
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    table: pd.DataFrame | None = None


@dataclass
class Prepared:
    """What a run builds and checks before it creates its run directory."""

    datamodule: Any
    model: pl.LightningModule
    start_checkpoint: Path | None = None  # the checkpoint fitting starts from (resume or ckpt_path)
    test_checkpoint: str | None = None  # the checkpoint to test when nothing is trained here


class RunProgress(pl.Callback):
    """Whether the run got as far as training or testing, and how many training epochs it completed."""

    def __init__(self) -> None:
        self.started = False
        self.trainer: pl.Trainer | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Fitting begins: keep the trainer for the epoch count."""
        self.trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The training loaders are built (a split smaller than one batch fails before): training starts."""
        self.started = True

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Testing starts (evaluation runs never fit)."""
        self.started = True

    def record(self) -> dict[str, int]:
        """:func:`training_progress` of the run; empty when it never started fitting."""
        return {} if self.trainer is None else training_progress(self.trainer)


def training_progress(trainer: pl.Trainer) -> dict[str, int]:
    """``epochs_completed``: full training epochs done, counted like the console's ``epoch 3/6`` (3 after
    it; Lightning's 0-based ``epoch`` in checkpoints and ``metrics.csv`` is 2 then), and ``global_step``."""
    return {"epochs_completed": int(trainer.current_epoch), "global_step": int(trainer.global_step)}


def build_callbacks(cfg: DictConfig, record: RunRecord, secrets: RunSecrets) -> list[pl.Callback]:
    """Callbacks from the ``callbacks`` blocks (those with a ``_target_``) plus the run's own callbacks."""
    callbacks: list[pl.Callback] = [RunRecordCallback(record, cfg, secrets), ExactResume(cfg.seed, record)]
    for name, block in (cfg.get("callbacks") or {}).items():
        if not isinstance(block, DictConfig) or "_target_" not in block:
            continue
        callback = instantiate(block)
        if isinstance(callback, ModelCheckpoint | LastCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(record.checkpoint_dir)
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name} built {type(callback).__name__}, not a Lightning callback")
        callbacks.append(callback)
    return callbacks


def build_loggers(cfg: DictConfig, record: RunRecord, secrets: RunSecrets) -> list[Logger]:
    """The CSV logger that writes ``metrics.csv`` into the run dir, plus W&B unless disabled."""
    loggers: list[Logger] = [RunCSVLogger(str(record.run_dir), secrets.model_arguments, record.resumed)]
    wandb_cfg = cfg.logger.get("wandb") if cfg.get("logger") else None
    if wandb_cfg is None or wandb_cfg.mode == "disabled":
        return loggers
    if wandb_cfg.mode not in ("online", "offline"):
        raise ConfigError(f"logger.wandb.mode must be online, offline or disabled, got '{wandb_cfg.mode}'")
    import wandb

    config = OmegaConf.to_container(secrets.config(cfg), resolve=True)
    config["run_dir"] = str(record.run_dir)
    group = wandb_cfg.group or (cfg.sweep.name if cfg.get("sweep") else None)
    # W&B records the command line in its metadata: leave that out when a secret is on it
    hide_argv = secrets.items(sys.argv) != sys.argv
    loggers.append(
        RunWandbLogger(
            secret_arguments=secrets.model_arguments,
            already_logged=logged_steps(record.run_dir) if record.resumed else (),
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
            settings=wandb.Settings(x_disable_meta=hide_argv),
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
    """The module's own table (:meth:`LabModule.results_table`), else one row of test metrics."""
    if isinstance(model, LabModule):
        table = model.results_table(metrics)
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
    """Fit and/or test the configured model, writing the run record as it goes.

    Raises :class:`~src.utils.signals.RunStopped` (with the exit code a scheduler expects) when a signal
    stopped the run; any other failure propagates after the record says ``failed``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    discover()  # every paper registered: configs naming a module by a former path still build
    requeue_owner()  # a wrong $PROFACE_REQUEUE_OWNER is a one-line error before anything runs
    check_slurm_layout(cfg)
    _resume_requeued_slurm_job(cfg, task)
    secrets = RunSecrets.prepare(cfg, overrides)
    resume_checkpoint = _check_resume(cfg, secrets) if cfg.get("resume") else None
    seed_everything(cfg.seed)
    prepared = prepare(cfg, task, secrets, resume_checkpoint)  # nothing written yet
    record = RunRecord.open(cfg, task)
    if is_launcher_process():
        print(f"RUN_DIR={record.run_dir}", flush=True)
    record.write_start(cfg, overrides, secrets)
    if record.resumed and is_launcher_process():
        for stale in remove_partial_writes(record.checkpoint_dir):
            print(f"resume: removed {stale.name}, a checkpoint the interrupted run did not finish writing")
    watch = SignalWatch()
    graceful = GracefulStop(watch, str(record.checkpoint_dir))
    progress = RunProgress()
    agreement = SameRunOnEveryRank(record.run_dir)
    status, error, stop, result = "failed", None, {}, RunResult(record.run_dir, record.run_id)
    try:
        with watch.installed():
            result.metrics, result.table = _fit_and_test(
                cfg, task, record, secrets, [agreement, graceful, progress], prepared
            )
        status = "completed"
        return result
    except BaseException as exc:
        stopped = _stopped(exc, watch)
        if stopped is None:
            status = "failed" if progress.started or record.resumed else FAILED_TO_START
            error = secrets.text(_describe(exc))
            record.write_summary({}, status, error=error, **progress.record())
            raise
        status = stopped.status
        stop = {"stop": {"reason": str(stopped), "exit_code": stopped.exit_code, **graceful.stop_record()}}
        record.write_summary({}, status, **stop, **progress.record())
        raise stopped from exc
    finally:
        record.finish(status, error, **stop, **progress.record())
        _finish_wandb()


def prepare(
    cfg: DictConfig, task: str, secrets: RunSecrets, resume_checkpoint: Path | None = None
) -> Prepared:
    """Build the DataModule (and run its cheap layout check), the model and the checkpoints it needs.

    Everything here can fail on a wrong path, a missing weight file or a checkpoint of another model, and it
    runs before :class:`RunRecord` creates the run directory, so such a failure records nothing.
    """
    progress_interval()  # a bad $PROFACE_PROGRESS_EVERY is a one-line error, not a failed run
    datamodule = instantiate(cfg.datamodule)
    check_layout = getattr(datamodule, "check_layout", None)
    if callable(check_layout):
        check_layout()
    model = instantiate(cfg.model)
    check_readable_hyperparameters(model)
    prepared = Prepared(datamodule, model)
    if task == "train" and cfg.train:
        if resume_checkpoint is not None:
            prepared.start_checkpoint = _checked_checkpoint(
                resume_checkpoint, cfg, model, secrets, must_match=True
            )
        else:
            prepared.start_checkpoint = _given_checkpoint(cfg, model, secrets, must_match=False)
    elif cfg.ckpt_path:
        prepared.test_checkpoint = _str(_given_checkpoint(cfg, model, secrets, must_match=False))
    elif task == "eval" and (not isinstance(model, LabModule) or model.requires_checkpoint):
        raise ConfigError(f"src.eval needs ckpt_path=<file> for experiment '{cfg.experiment}'")
    return prepared


def _fit_and_test(
    cfg: DictConfig,
    task: str,
    record: RunRecord,
    secrets: RunSecrets,
    run_callbacks: list[pl.Callback],
    prepared: Prepared,
) -> tuple[dict[str, float], pd.DataFrame]:
    datamodule, model = prepared.datamodule, prepared.model
    callbacks = [*build_callbacks(cfg, record, secrets), *run_callbacks]
    trainer_overrides: dict[str, Any] = {"plugins": [RunCheckpointIO(secrets.model_arguments)]}
    if SLURMEnvironment.detect():  # GracefulStop requeues at a batch boundary, Lightning inside the handler
        trainer_overrides["plugins"].append(SLURMEnvironment(auto_requeue=False))
    if cfg.trainer.get("enable_progress_bar", True) and not sys.stdout.isatty():
        callbacks.append(LineProgress())  # tqdm in a log file is unreadable
        trainer_overrides["enable_progress_bar"] = False
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=build_loggers(cfg, record, secrets),
        default_root_dir=str(record.run_dir),
        **trainer_overrides,
    )
    environment = getattr(trainer.strategy, "cluster_environment", None)  # None: one process, no group
    record.update_meta(
        world_size=trainer.world_size,
        num_processes_per_node=trainer.num_devices,
        num_nodes=trainer.num_nodes,
        cluster_environment=None if environment is None else type(environment).__name__,
    )
    metrics: dict[str, Any] = {}
    trained = task == "train" and cfg.train
    if trained:
        start = prepared.start_checkpoint
        trainer.fit(model, datamodule=datamodule, ckpt_path=_str(start), weights_only=True)
        metrics.update(trainer.callback_metrics)
    test_ckpt = _best_of_run(trainer) if trained else prepared.test_checkpoint
    if task == "eval" or cfg.test:
        # Lightning's box table of test metrics only in a terminal; logs get the run's own results table
        verbose = sys.stdout.isatty()
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=True, verbose=verbose)
        metrics.update(trainer.callback_metrics)
    result_metrics = _float_metrics(metrics)
    best = _best_checkpoint(trainer)
    data = _data_label(datamodule)
    progress = training_progress(trainer) if trained else {}
    record.write_summary(
        result_metrics, "completed", best_checkpoint=best, tested_checkpoint=test_ckpt, data=data, **progress
    )
    table = _results_table(model, result_metrics)
    if is_launcher_process() and trainer.is_global_zero:
        table.to_csv(record.run_dir / "results.csv", index=False)
        heading = f"{record.experiment} ({record.run_id}) on {data.get('dataset', '?')}"
        note = f"\n\n> {data['note']}" if data.get("note") else ""
        (record.run_dir / "results.md").write_text(f"# {heading}{note}\n\n{to_markdown(table)}\n")
    return result_metrics, table


def _str(path: Path | str | None) -> str | None:
    return None if path is None else str(path)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _stopped(exc: BaseException, watch: SignalWatch) -> RunStopped | None:
    """The stop a signal caused (SIGTERM, Ctrl-C, SLURM requeue), or None for an ordinary exit/failure."""
    if isinstance(exc, RunStopped):
        return exc
    signum = watch.received
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and signum is not None):
        signum = signum or 2  # Lightning turns Ctrl-C into SystemExit(1)
    elif isinstance(exc, SIGTERMException):
        signum = signum or 15
    else:
        return None
    status, code = stop_status(signum)
    return RunStopped(status, code, f"stopped by signal {signum} ({status})")


def _check_resume(cfg: DictConfig, secrets: RunSecrets) -> Path:
    """Check a resume before anything is written or built: the recorded config, secrets, the checkpoint."""
    run_dir, checkpoint = resolve_resume(cfg.resume)
    check_recorded_config(run_dir, cfg)
    stored = read_json(run_dir / "meta.json").get("secrets") or {}
    check_secrets_given_again(cfg, stored, set(secrets.given), source=f"run {run_dir}", must_match=True)
    open_checkpoint(checkpoint, mmap=True)
    return checkpoint


def _resume_requeued_slurm_job(cfg: DictConfig, task: str) -> None:
    """A SLURM job requeued after a pre-emption (``SLURM_RESTART_COUNT`` > 0) reruns its command: continue
    its training run directory instead of starting over: ``run.dir`` when the command names one (the
    submitit launcher does), else ``<runs>/<experiment>/<run.id or slurm-<job>>``; every rank finds it."""
    job = os.environ.get("SLURM_JOB_ID")
    if task != "train" or not slurm_restarted() or cfg.get("resume") or not job:
        return
    if cfg.run.dir:
        run_dir = Path(cfg.run.dir)
    else:
        run_dir = Path(cfg.paths.runs_dir) / str(cfg.experiment) / str(cfg.run.id or f"slurm-{job}")
    if (run_dir / "meta.json").is_file() and (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file():
        if is_launcher_process():
            print(f"SLURM job {job} was requeued: resuming {run_dir}", flush=True)
        cfg.resume = str(run_dir)


# Lightning runs one process per SLURM task: (trainer key, SLURM variable, sbatch option) that must agree
_SLURM_LAYOUT = (
    ("trainer.devices", "SLURM_NTASKS_PER_NODE", "--ntasks-per-node"),
    ("trainer.num_nodes", "SLURM_NNODES", "--nodes"),
)


def check_slurm_layout(cfg: DictConfig) -> None:
    """Under ``srun`` every SLURM task is one process: the job's tasks per node must equal
    ``trainer.devices`` and its nodes ``trainer.num_nodes``. Lightning checks this only once fitting starts;
    here a mismatch is a configuration error naming both numbers before anything is built or written.
    ``devices`` Lightning resolves itself (``-1``, ``auto``) is left to Lightning's own check, and a
    single-process run (one device, one node, no ``ddp``) is not checked, as Lightning does not."""
    if not SLURMEnvironment.detect():
        return
    tasks = os.environ.get("SLURM_NTASKS", "1")
    if "SLURM_NTASKS_PER_NODE" not in os.environ and tasks.isdigit() and int(tasks) > 1:
        raise ConfigError(
            f"this SLURM job has {tasks} tasks (SLURM_NTASKS) but no --ntasks-per-node: Lightning needs "
            "--ntasks-per-node=<trainer.devices> with --nodes=<trainer.num_nodes> (not --ntasks)"
        )
    devices, nodes = _device_count(cfg.trainer.get("devices")), int(cfg.trainer.get("num_nodes") or 1)
    ours = {"trainer.devices": devices, "trainer.num_nodes": nodes}
    strategy = str(cfg.trainer.get("strategy") or "")
    if devices == 1 and nodes == 1 and not strategy.startswith("ddp"):
        return  # one process without a process group: it never uses the job's other tasks (Lightning agrees)
    problems = []
    for key, variable, option in _SLURM_LAYOUT:
        theirs = os.environ.get(variable, "")
        if ours[key] is not None and theirs.isdigit() and int(theirs) != ours[key]:
            problems.append(f"{key}={ours[key]} but the job has {option}={theirs} ({variable})")
    if problems:
        raise ConfigError(
            f"this SLURM job does not fit the trainer: {'; '.join(problems)}. Lightning runs one process "
            "per SLURM task: give trainer.devices the tasks per node and trainer.num_nodes the nodes "
            "(trainer=slurm takes both from the job), or submit the job with matching --nodes and "
            "--ntasks-per-node"
        )


def _device_count(devices: Any) -> int | None:
    """How many processes per node ``trainer.devices`` asks for; None when Lightning decides (-1, auto)."""
    if isinstance(devices, bool) or devices is None:
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            return len([part for part in text.split(",") if part.strip()])
        return int(text) if text.isdigit() and int(text) > 0 else None
    return len(devices)  # a list of device indices


class SameRunOnEveryRank(pl.Callback):
    """All ranks of a multi-process run must write one run. Under SLURM (or torchrun) each rank chose its run
    directory itself; once the process group exists they compare, and every rank stops with the same error
    if they differ (instead of rank 0 recording a run the others never trained)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = str(run_dir)
        self.checked = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Compare the ranks' run directories (once per run: fitting and testing share them)."""
        dist = torch.distributed
        if self.checked or trainer.world_size < 2 or not (dist.is_available() and dist.is_initialized()):
            return
        self.checked = True
        chosen: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(chosen, self.run_dir)
        if len(set(chosen)) > 1:
            listing = ", ".join(f"rank {rank}: {path}" for rank, path in enumerate(chosen))
            raise ConfigError(
                f"the ranks of this run chose different run directories ({listing}): give every rank the "
                "same run.dir or run.id (under SLURM, when neither is given, every rank uses slurm-<job id>)"
            )


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


def _checked_checkpoint(
    path: str | Path, cfg: DictConfig, model: pl.LightningModule, secrets: RunSecrets, *, must_match: bool
) -> Path:
    """A checkpoint to load into ``model``: readable, made for this model, its secrets given again."""
    path = Path(path)
    checkpoint, info = open_checkpoint(path, mmap=True)
    _size_from_checkpoint(model, checkpoint["state_dict"])
    check_state_dict_fits(
        path,
        checkpoint["state_dict"],
        model.state_dict(),
        strict=bool(model.strict_loading),
        this_experiment=str(cfg.experiment),
        this_target=str(cfg.model.get("_target_")),
        info=info,
    )
    stored = {key: value for key, value in info.secrets.items() if key in secrets.keys}
    differing = check_secrets_given_again(
        cfg, stored, set(secrets.given), source=f"checkpoint {path}", must_match=must_match
    )
    if differing:
        print(f"note: {', '.join(differing)} differ from the values {path.name} was trained with")
    return path


def _given_checkpoint(
    cfg: DictConfig, model: pl.LightningModule, secrets: RunSecrets, *, must_match: bool
) -> Path | None:
    """``ckpt_path`` (a checkpoint to start from or to evaluate), checked; None when not given."""
    if not cfg.ckpt_path:
        return None
    return _checked_checkpoint(cfg.ckpt_path, cfg, model, secrets, must_match=must_match)


def _size_from_checkpoint(model: pl.LightningModule, state: dict[str, Tensor]) -> None:
    """Parameters the data sizes at set-up (an ArcFace head built with ``num_classes: null``) take the
    checkpoint's sizes, so its weights load and a mismatch with the data is named at set-up."""
    for name, parameter in model.named_parameters():
        saved = state.get(name)
        if isinstance(parameter, UninitializedParameter) and isinstance(saved, Tensor):
            parameter.materialize(tuple(saved.shape))


def _best_of_run(trainer: pl.Trainer) -> str | None:
    """The checkpoint to test after fitting: this run's best one (None: the weights in memory)."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None
