"""Stopping a run on a signal: a record that says why, a last checkpoint when safe, an honest exit code.

Schedulers, ``timeout`` and SLURM stop jobs with SIGTERM, a user with Ctrl-C (SIGINT), SLURM warns of a
pre-emption or time limit with its requeue signal (``--signal=USR1@90``). Lightning turns a SIGTERM during
``fit``/``test`` into its ``SIGTERMException`` at the next batch boundary — a ``SystemExit`` without a code,
so the process would exit with status 0 and a scheduler would count a killed run as a success. Here:

* :class:`SignalWatch` is in place for the whole run and remembers the signal. Outside the trainer's loops a
  SIGTERM (or the requeue signal) stops the run at once; inside them the stop waits for a batch boundary.
* :class:`GracefulStop` turns the signal into a stop right after a training batch, on every rank at the same
  batch (under DDP the ranks agree with one tiny all-reduce per step, and Lightning's own SIGTERM handler,
  which raises on one rank at a time, is set aside while training), writes ``last.ckpt`` at that consistent
  point and, for the requeue signal, asks SLURM to requeue the job (``scontrol requeue``). It replaces
  Lightning's SLURM auto-requeue, which saves from inside the signal handler, possibly in the middle of an
  optimizer step. The requeued job continues the same run directory (``slurm-<job>``, or the ``run.dir`` /
  ``run.id`` its command names). Only global rank 0 requeues, once per job.
* :func:`requeue_owner`: a launcher that requeues the job itself (submitit, which forwards SIGTERM to the
  run and resubmits) sets ``PROFACE_REQUEUE_OWNER=submitit`` in the run's environment; the run then
  checkpoints and stops as usual but never calls ``scontrol requeue`` (two requeues would clash).
* :func:`stop_status` gives the record status and exit code: ``terminated`` (143, or ``preempted`` on
  SLURM), ``interrupted`` (130).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from src.config.errors import ConfigError
from src.utils.exact_resume import LAST_CHECKPOINT
from src.utils.run_record import is_launcher_process

log = logging.getLogger(__name__)
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
REQUEUE_SIGNAL = signal.SIGUSR1  # SLURM's --signal=USR1@<seconds>, what Lightning's SLURMEnvironment uses
ENV_REQUEUE_OWNER = "PROFACE_REQUEUE_OWNER"
REQUEUE_OWNERS = ("run", "submitit")  # run: this process calls scontrol requeue (the default)


class RunStopped(BaseException):
    """The run was stopped by a signal; ``exit_code`` is what the process should exit with."""

    def __init__(self, status: str, exit_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.exit_code = exit_code


def on_slurm() -> bool:
    """Whether this process runs as a SLURM job (a SIGTERM there is a pre-emption or a time limit)."""
    return "SLURM_JOB_ID" in os.environ


def slurm_restarted() -> bool:
    """Whether this SLURM job is a requeued one (SLURM counts restarts in ``SLURM_RESTART_COUNT``)."""
    return on_slurm() and int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def requeue_owner() -> str:
    """Who requeues a pre-empted SLURM job: ``run`` (this process, with ``scontrol requeue``; the default) or
    ``submitit`` (the launcher that started the run requeues its own job), from ``$PROFACE_REQUEUE_OWNER``."""
    value = os.environ.get(ENV_REQUEUE_OWNER, "").strip() or "run"
    if value not in REQUEUE_OWNERS:
        raise ConfigError(
            f"environment variable {ENV_REQUEUE_OWNER}={value!r} is not a requeue owner: set it to "
            "'submitit' when the submitit launcher requeues the job, or leave it unset (the run requeues "
            "its own job)"
        )
    return value


def stop_status(signum: int) -> tuple[str, int]:
    """``(record status, exit code)`` for a run stopped by ``signum``."""
    if signum == signal.SIGINT:
        return "interrupted", EXIT_CODES[signal.SIGINT]
    return ("preempted" if on_slurm() else "terminated"), EXIT_CODES[signal.SIGTERM]


class SignalWatch:
    """SIGTERM / SIGINT (and on SLURM the requeue signal) handlers for one run (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.requeue_requested = False
        self.requeued: bool | None = None  # whether scontrol requeue succeeded; None: not called here
        self.requeue_left_to: str | None = None  # the launcher that requeues instead (PROFACE_REQUEUE_OWNER)
        self.in_loop = False  # Lightning's training or test loop runs: stop at a batch boundary
        self.training = False  # the training loop runs: GracefulStop stops after a batch
        self._previous: dict[int, Any] = {}

    def record_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Remember a SIGTERM (the stop is made at a batch boundary)."""
        self.received = self.received or signum

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.record_sigterm(signum, frame)
        if not self.in_loop:
            raise RunStopped(*stop_status(signum), f"received {signal.Signals(signum).name}")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        raise KeyboardInterrupt

    def _on_requeue(self, signum: int, frame: FrameType | None) -> None:
        self.requeue_requested = True
        if not self.training:  # nothing to checkpoint: requeue and stop now
            self.received = self.received or signal.SIGTERM
            self.requeue()
            raise RunStopped("preempted", EXIT_CODES[signal.SIGTERM], "SLURM's requeue signal")

    def requeue(self) -> None:
        """Requeue the job from global rank 0 only (every task of a multi-node job gets the signal), unless a
        launcher owns requeueing (:func:`requeue_owner`): then leave it to that launcher."""
        owner = requeue_owner()
        if owner != "run":
            self.requeue_left_to = owner
        elif is_launcher_process() and self.requeued is None:
            self.requeued = requeue_slurm_job()

    @contextmanager
    def installed(self) -> Iterator[SignalWatch]:
        """Handlers in place for the ``with`` body, the previous ones restored afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        handlers = {signal.SIGTERM: self._on_sigterm, signal.SIGINT: self._on_sigint}
        if on_slurm():
            handlers[REQUEUE_SIGNAL] = self._on_requeue
        for signum, handler in handlers.items():
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()


class GracefulStop(pl.Callback):
    """Stop after a training batch on SIGTERM or the requeue signal, with a checkpoint (module docstring)."""

    def __init__(self, watch: SignalWatch, dirpath: str) -> None:
        self.watch = watch
        self.dirpath = dirpath
        self.checkpoint: str | None = None
        self.no_checkpoint: str | None = None
        self._agreed = False
        self._lightning_handler: Any = None

    # which phase the watch is in -------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Training loop: under DDP, set Lightning's per-rank SIGTERM handler aside (the ranks agree here)."""
        self.watch.in_loop = self.watch.training = True
        if trainer.world_size > 1 and threading.current_thread() is threading.main_thread():
            self._lightning_handler = signal.signal(signal.SIGTERM, self.watch.record_sigterm)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Training loop over."""
        self._leave_training()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Test loop: Lightning stops it at a batch boundary."""
        self.watch.in_loop = True

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Test loop over."""
        self.watch.in_loop = False

    def _leave_training(self) -> None:
        self.watch.in_loop = self.watch.training = False
        if self._lightning_handler is not None:
            signal.signal(signal.SIGTERM, self._lightning_handler)
            self._lightning_handler = None

    # the stop ---------------------------------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """If any rank got the signal, all stop after this batch (once it is logged); if any rank got the
        requeue signal, every rank knows it (so global rank 0 requeues even when the signal missed it)."""
        requeue = self.watch.requeue_requested
        local = requeue or (trainer.world_size > 1 and self.watch.received == signal.SIGTERM)
        if trainer.world_size > 1:
            flag = torch.tensor([2.0 if requeue else float(local)], device=trainer.strategy.root_device)
            agreed = float(trainer.strategy.reduce(flag, reduce_op="max").item())
            local = agreed >= 1.0
            self.watch.requeue_requested = requeue or agreed >= 2.0
        if local and not self._agreed:
            self._agreed = True
            self.watch.received = self.watch.received or signal.SIGTERM
            # Lightning's own flag: every rank raises its SIGTERMException at the end of this same batch
            trainer._signal_connector.received_sigterm = True

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Write ``last.ckpt`` where that is safe and say why not otherwise; then requeue if asked."""
        in_training = self.watch.training
        self._leave_training()
        if not isinstance(exception, SIGTERMException):
            return
        why_not = self._why_no_checkpoint(trainer, in_training)
        if why_not is None:
            self.checkpoint = str(Path(self.dirpath) / LAST_CHECKPOINT)
            trainer.save_checkpoint(self.checkpoint, weights_only=False)
        else:
            self.no_checkpoint = why_not
        if self.watch.requeue_requested and trainer.is_global_zero:
            self.watch.requeue()

    def _why_no_checkpoint(self, trainer: pl.Trainer, in_training: bool) -> str | None:
        if not in_training or not trainer.training or trainer.sanity_checking:
            return "stopped outside a training batch (validation or testing): last.ckpt is the last saved one"
        if trainer.world_size > 1 and not self._agreed:
            return "the ranks did not stop at the same batch: last.ckpt is the last saved one"
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if progress.ready % max(int(trainer.accumulate_grad_batches), 1):
            return "stopped in the middle of gradient accumulation: last.ckpt is the last saved one"
        return None

    def stop_record(self) -> dict[str, Any]:
        """What ``meta.json``'s ``stop`` entry adds: the checkpoint written (or why not), the requeue."""
        record: dict[str, Any] = {"checkpoint": self.checkpoint}
        if self.no_checkpoint:
            record["no_checkpoint"] = self.no_checkpoint
        if self.watch.requeued is not None:
            record["requeued"] = self.watch.requeued
        if self.watch.requeue_left_to is not None:
            record["requeue_left_to"] = self.watch.requeue_left_to
        return record


def requeue_slurm_job() -> bool:
    """``scontrol requeue <job>`` for this job (array jobs included); True when it succeeded."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not requeue SLURM job %s: %s", job, exc)
        return False
    if result.returncode != 0:
        log.warning("scontrol requeue %s failed (%s): %s", job, result.returncode, result.stderr.strip())
    return result.returncode == 0
