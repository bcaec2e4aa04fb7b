"""Stopping a run on a signal: a record that says why, a last checkpoint when safe, an honest exit code.

Schedulers, ``timeout`` and SLURM stop jobs with SIGTERM, a user with Ctrl-C (SIGINT). Lightning turns a
SIGTERM during ``fit``/``test`` into its ``SIGTERMException`` at the next batch boundary — a ``SystemExit``
without a code, so the process would exit with status 0 and a scheduler would count a killed run as a
success. Here:

* :class:`SignalWatch` remembers which signal arrived; outside the trainer's loops a SIGTERM stops the run
  at once, inside them Lightning's handler stops it at the next batch boundary;
* :class:`StopCheckpoint` writes ``last.ckpt`` when a SIGTERM stops training between two batches (the state
  is consistent there; not in the middle of validation or after Ctrl-C, which can land mid-step);
* :class:`SlurmRequeue` replaces Lightning's SLURM auto-requeue, which saves from inside the signal handler
  (possibly in the middle of an optimizer step): the requeue signal becomes a SIGTERM at the next batch end,
  so the stop checkpoint is written at a consistent point, then the job is requeued with
  ``scontrol requeue``; the requeued job (same job id, same run directory) resumes from it;
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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from src.utils.exact_resume import LAST_CHECKPOINT

log = logging.getLogger(__name__)
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class RunStopped(Exception):  # noqa: N818 - control flow (a stop), not an error
    """The run was stopped by a signal; ``exit_code`` is what the process should exit with."""

    def __init__(self, status: str, exit_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.exit_code = exit_code


def on_slurm() -> bool:
    """Whether this process runs as a SLURM job (a SIGTERM there is a pre-emption or a time limit)."""
    return "SLURM_JOB_ID" in os.environ


class SignalWatch:
    """Installs SIGTERM/SIGINT handlers for one run and remembers the signal (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.trainer_running = False
        self._previous: dict[int, Any] = {}

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        if not self.trainer_running:  # inside fit/test Lightning's own handler stops at a batch boundary
            raise RunStopped(*stop_status(signum), f"received signal {signal.Signals(signum).name}")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[SignalWatch]:
        """Handlers in place for the ``with`` body, the previous ones restored afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for signum, handler in ((signal.SIGTERM, self._on_sigterm), (signal.SIGINT, self._on_sigint)):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()


def stop_status(signum: int) -> tuple[str, int]:
    """``(record status, exit code)`` for a run stopped by ``signum``."""
    if signum == signal.SIGINT:
        return "interrupted", EXIT_CODES[signal.SIGINT]
    return ("preempted" if on_slurm() else "terminated"), EXIT_CODES[signal.SIGTERM]


class TrainerRunning(pl.Callback):
    """Tells the :class:`SignalWatch` when Lightning's loops (and its SIGTERM handling) are active."""

    def __init__(self, watch: SignalWatch) -> None:
        self.watch = watch

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Lightning's signal handlers are registered from here on."""
        self.watch.trainer_running = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Lightning restores the previous handlers (ours)."""
        self.watch.trainer_running = False


@dataclass
class _StopNote:
    checkpoint: str | None = None
    why_not: str | None = None


class StopCheckpoint(pl.Callback):
    """Write ``last.ckpt`` when a SIGTERM stops training between two batches (every rank takes part)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = dirpath
        self.note = _StopNote()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Save where it is safe (training, between batches); say why not otherwise."""
        if not isinstance(exception, SIGTERMException):
            return
        if not trainer.training or trainer.sanity_checking:
            self.note.why_not = "stopped outside a training step boundary (validation or testing)"
            return
        path = str(Path(self.dirpath) / LAST_CHECKPOINT)
        trainer.save_checkpoint(path, weights_only=False)
        self.note.checkpoint = path


class SlurmRequeue(pl.Callback):
    """On SLURM's requeue signal: stop like a SIGTERM at the next batch boundary, then requeue the job.

    The signal only sets a flag. At the next batch end every rank agrees (one tiny all-reduce under DDP)
    and sends itself SIGTERM, so Lightning stops after the batch is logged, :class:`StopCheckpoint` writes
    ``last.ckpt`` at that consistent point, and then rank 0 runs ``scontrol requeue``.
    """

    def __init__(self, requeue_signal: int = signal.SIGUSR1) -> None:
        self.requeue_signal = requeue_signal
        self._flag = False
        self._stopping = False
        self._previous: Any = None
        self.requeued: bool | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._flag = True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Listen for the requeue signal (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.requeue_signal, self._on_signal)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop listening."""
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(self.requeue_signal, self._previous)
            self._previous = None

    def _agreed(self, trainer: pl.Trainer) -> bool:
        """Whether any rank got the signal."""
        if trainer.world_size <= 1:
            return self._flag
        flag = torch.tensor([1.0 if self._flag else 0.0], device=trainer.strategy.root_device)
        return bool(trainer.strategy.reduce(flag, reduce_op="max").item())

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Turn an agreed requeue signal into a SIGTERM (handled at the end of this batch)."""
        if not self._stopping and self._agreed(trainer):
            self._stopping = True
            os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """After the stop checkpoint: requeue the job (rank 0)."""
        self._restore()
        if self._stopping and isinstance(exception, SIGTERMException) and trainer.is_global_zero:
            self.requeued = requeue_slurm_job()


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
