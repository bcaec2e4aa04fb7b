"""Callbacks that make a resumed run continue exactly like the uninterrupted one.

* :class:`ExactResume` reseeds Python, NumPy and torch at every epoch start from (seed, epoch, rank), so
  epoch ``k`` draws the same random numbers (dropout, random obfuscator choices, ...) whether or not the run
  was interrupted before it; and it saves every rank's RNG states and epoch accumulators in each checkpoint
  and puts them back around the first batch after a mid-epoch resume.
* :class:`LastCheckpoint` writes ``last.ckpt`` after every epoch and, optionally, every N training steps, so
  a process killed mid-epoch loses at most N steps (the training loader resumes at the same batch:
  :class:`src.datamodules.components.sampling.ResumableLoader`; ``metrics.csv`` is cut back to the
  checkpoint's step by :class:`src.utils.loggers.RunCSVLogger`).

A resume may also change the training length (``trainer.max_epochs=12`` for a 6-epoch run): ExactResume
then gives the restored learning-rate schedulers the settings the config built them with
(:mod:`src.utils.schedule_resume`), says so in one line and in ``meta.json`` (``resume_schedule``), or
refuses a scheduler that cannot change course.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from src.config.buildable import buildable
from src.utils.rng import capture_rng_state, reseed_global_rngs, restore_rng_state
from src.utils.run_record import RunRecord
from src.utils.schedule_resume import ScheduleCarryOver
from src.utils.seeding import derive_seed, global_rank

LAST_CHECKPOINT = "last.ckpt"
_EPOCH_STREAM = 2  # distinguishes the epoch reseed from other seeds derived from (seed, epoch, rank)


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class ExactResume(pl.Callback):
    """Epoch-seeded global RNGs; every rank's RNG states and epoch accumulators in every checkpoint.

    Resuming mid-epoch, the RNG states are put back right before the first batch, and the sums behind the
    epoch-level values logged with ``self.log(..., on_epoch=True)`` (e.g. ``train/loss_epoch``) are added
    back after it, so the interrupted epoch's logged values cover all its batches. Values logged as
    torchmetrics objects keep their state in the module and cannot be restored that way: the run record
    (``meta.json``: ``resume_note``) says so in plain words. Learning-rate schedulers keep their progress from
    the checkpoint and take their settings from the config (:class:`ScheduleCarryOver`).
    """

    def __init__(self, seed: int, record: RunRecord | None = None) -> None:
        self.seed = int(seed)
        self.record = record
        self._trainer: pl.Trainer | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._pending_sums: dict[str, dict[str, Any]] | None = None
        self._schedule = ScheduleCarryOver()

    @property
    def state_key(self) -> str:
        """One entry per run in ``checkpoint["callbacks"]``."""
        return "ExactResume"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Keep the trainer: its epoch accumulators go into checkpoints."""
        self._trainer = trainer

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Note how long the checkpoint's run was configured to train."""
        self._schedule.read_checkpoint(checkpoint)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep the schedulers' settings as the config built them (Lightning restores them next)."""
        self._schedule.capture(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """After the restore: the schedulers continue on the config's settings (one line per change)."""
        lines = self._schedule.apply(trainer)
        if lines and trainer.is_global_zero:
            print("\n".join(lines), flush=True)
            if self.record is not None:
                self.record.update_meta(resume_schedule=lines)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Reseed from (seed, epoch, rank); a new epoch supersedes anything restored from a checkpoint."""
        reseed_global_rngs(derive_seed(self.seed, trainer.current_epoch, trainer.global_rank, _EPOCH_STREAM))
        self._pending_rng = self._pending_sums = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """After a mid-epoch resume: continue from the RNG states the checkpoint was written with."""
        if self._pending_rng is not None:
            restore_rng_state(self._pending_rng)
            self._pending_rng = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """After the first batch of a mid-epoch resume: add back the epoch sums of the batches before it."""
        if self._pending_sums is not None:
            sums, self._pending_sums = self._pending_sums, None
            _add_epoch_sums(_training_results(trainer), sums)

    def state_dict(self) -> dict[str, Any]:
        """Every rank's RNG states and epoch sums (gathered: all ranks write a checkpoint together)."""
        results = _training_results(self._trainer) if self._trainer is not None else {}
        state = {"rng": capture_rng_state(), "epoch_sums": _epoch_sums(results)}
        world = _world_size()
        states = [state]
        if world > 1:
            states = [None] * world  # type: ignore[list-item]
            torch.distributed.all_gather_object(states, state)
        return {"world_size": world, "ranks": states, "unrestorable": _unrestorable(results)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep this rank's state for the first batch after resuming (another world size: epoch reseed)."""
        states = state_dict.get("ranks") or []
        if state_dict.get("world_size") != _world_size() or len(states) <= global_rank():
            return
        mine = states[global_rank()]
        self._pending_rng, self._pending_sums = mine.get("rng"), mine.get("epoch_sums") or None
        unrestorable = state_dict.get("unrestorable") or []
        if unrestorable and self._pending_sums is not None and self.record is not None:
            self.record.update_meta(
                resume_note=(
                    "resumed in the middle of an epoch: the epoch-level values of "
                    f"{', '.join(unrestorable)} for that epoch cover only the batches after the resume "
                    "(they are torchmetrics objects whose state is not in the checkpoint); everything else "
                    "continues exactly"
                )
            )


def _training_results(trainer: pl.Trainer | None) -> dict[str, Any]:
    """Lightning's accumulators of the values logged in the current training epoch (``self.log``)."""
    if trainer is None:
        return {}
    return dict(getattr(trainer.fit_loop.epoch_loop, "_results", None) or {})


def _epoch_sums(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The accumulated sums of epoch-level tensor values, as plain tensors."""
    sums = {}
    for key, metric in results.items():
        if getattr(metric, "is_tensor", False) and metric.meta.on_epoch:
            entry = {"value": metric.value.detach().cpu().clone()}
            if metric.meta.is_mean_reduction:
                entry["cumulated_batch_size"] = metric.cumulated_batch_size.detach().cpu().clone()
            sums[key] = entry
    return sums


def _unrestorable(results: dict[str, Any]) -> list[str]:
    """Epoch-level values logged as torchmetrics objects (their state lives in the module)."""
    return sorted(
        metric.meta.name
        for metric in results.values()
        if not getattr(metric, "is_tensor", True) and metric.meta.on_epoch
    )


def _add_epoch_sums(results: dict[str, Any], sums: dict[str, dict[str, Any]]) -> None:
    """Combine restored sums with those of the first resumed batch the way one more update would."""
    for key, entry in sums.items():
        metric = results.get(key)
        if metric is None or not getattr(metric, "is_tensor", False):
            continue
        saved = entry["value"].to(metric.value.device, metric.value.dtype)
        if metric.meta.is_max_reduction or metric.meta.is_min_reduction:
            metric.value = metric.meta.reduce_fx(saved, metric.value)
        else:
            metric.value = saved + metric.value  # one IEEE addition: bit-equal to the uninterrupted run
        if "cumulated_batch_size" in entry and metric.meta.is_mean_reduction:
            saved_size = entry["cumulated_batch_size"].to(metric.cumulated_batch_size.device)
            metric.cumulated_batch_size = saved_size + metric.cumulated_batch_size


@buildable
class LastCheckpoint(Checkpoint):
    """``<dirpath>/last.ckpt`` at the end of every training epoch and, with ``every_n_train_steps``, every N
    optimizer steps: what ``resume=<run dir>`` continues from.

    Lightning's ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only when it also saved a top-k
    checkpoint, so with a monitored metric that stops improving a crash would lose every epoch since. Step
    checkpoints are taken at the end of a batch, what Lightning resumes from (as ``ModelCheckpoint``'s
    ``every_n_train_steps``); the last batch of an epoch is left to the end-of-epoch checkpoint. As a
    ``Checkpoint`` it runs after the other checkpoint callbacks, so it records their updated state.
    """

    def __init__(self, every_n_train_steps: int = 0, dirpath: str | None = None) -> None:
        if int(every_n_train_steps) < 0:
            raise ValueError(f"every_n_train_steps must be >= 0, got {every_n_train_steps}")
        self.every_n_train_steps = int(every_n_train_steps)
        self.dirpath = dirpath
        self._saved_step = -1

    def _save(self, trainer: pl.Trainer) -> None:
        if self.dirpath and not trainer.fast_dev_run and not trainer.sanity_checking:
            trainer.save_checkpoint(str(Path(self.dirpath) / LAST_CHECKPOINT), weights_only=False)
            self._saved_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Every N steps, right after the optimizer step (with gradient accumulation the step count stays the
        same over the next micro-batches: never save in their middle), except on the epoch's last batch.
        Every rank calls: saving is collective."""
        n, step = self.every_n_train_steps, trainer.global_step
        due = n and step and step % n == 0 and step != self._saved_step
        if due and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """After every epoch (and its validation)."""
        self._save(trainer)
