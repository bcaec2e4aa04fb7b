"""A resumed run follows the learning-rate schedule its config describes now, not the one in the checkpoint.

Lightning restores a scheduler's whole state from the checkpoint, settings included: resuming a 6-epoch
cosine run with ``trainer.max_epochs=12`` kept ``T_max=6``, so the extra epochs trained on a schedule that had
already ended (the learning rate at 0, then rising again). Here the scheduler's *progress* (its step count)
comes from the checkpoint and its *settings* (``T_max``, ``total_steps``, ``total_iters``, milestones, ...)
from the freshly built scheduler: the learning rate continues from where training is, on the schedule a
run planned with the new settings from the start would follow. A scheduler that cannot be moved to new
settings in the middle of its schedule (``SequentialLR``, ``ChainedScheduler``, warm restarts, custom ones)
is refused with a message that says what to do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch.optim import lr_scheduler

from src.config.errors import ConfigError
from src.utils.checkpoint_files import RECORD_KEY

# State entries that say how far a scheduler got (or are bookkeeping), not how it was configured.
PROGRESS_KEYS = frozenset(
    {
        "last_epoch",
        "_step_count",
        "_get_lr_called_within_step",
        "_is_initial",
        "_last_lr",
        "base_lrs",
        "verbose",
        "best",  # ReduceLROnPlateau
        "num_bad_epochs",
        "cooldown_counter",
    }
)
# Schedulers whose learning rate is a function of (settings, step count): new settings apply at once.
_FUNCTIONAL = (lr_scheduler.OneCycleLR, lr_scheduler.CyclicLR, lr_scheduler.LambdaLR)
# Schedulers that react to a metric: new settings apply from the next reaction, the learning rate stays.
_REACTIVE = (lr_scheduler.ReduceLROnPlateau,)
_TRAINER_KEYS = ("max_epochs", "max_steps")


@dataclass(frozen=True)
class Change:
    """One setting of a scheduler that differs between the checkpoint and the config."""

    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key} {_short(self.old)} -> {_short(self.new)}"


def settings(state: Mapping[str, Any]) -> dict[str, Any]:
    """A scheduler state without its progress entries (also inside nested schedulers' states)."""
    return {key: _strip(value) for key, value in state.items() if key not in PROGRESS_KEYS}


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return settings(value)
    if isinstance(value, list | tuple):
        return [_strip(item) for item in value]
    return value


def changes(old: Any, new: Any, prefix: str = "") -> list[Change]:
    """The leaves that differ between two settings trees (dotted keys; list items by index)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            found += changes(old.get(key), new.get(key), where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            change
            for i, pair in enumerate(zip(old, new, strict=True))
            for change in changes(*pair, f"{prefix}.{i}")
        ]
    return [] if _same(old, new) else [Change(prefix, old, new)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    try:
        return bool(a == b)
    except Exception:  # objects whose == is not a truth value
        return repr(a) == repr(b)


def _short(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def current_lrs(scheduler: Any) -> list[Any] | None:
    """The learning rates ``scheduler`` gives at its current step count, None for reactive schedulers."""
    if isinstance(scheduler, _REACTIVE):
        return None
    if hasattr(scheduler, "_get_closed_form_lr"):
        return list(scheduler._get_closed_form_lr())  # the recursive get_lr would continue the old curve
    scheduler._get_lr_called_within_step = True  # get_lr warns when called outside step()
    try:
        return list(scheduler.get_lr())
    finally:
        scheduler._get_lr_called_within_step = False


def can_carry_over(scheduler: Any) -> bool:
    """Whether ``scheduler`` can take new settings in the middle of its schedule."""
    return hasattr(scheduler, "_get_closed_form_lr") or isinstance(scheduler, _FUNCTIONAL + _REACTIVE)


def apply_settings(scheduler: Any, fresh: Mapping[str, Any], found: list[Change]) -> None:
    """Give ``scheduler`` the changed settings of ``fresh`` and set the learning rates they give now."""
    for key in {change.key.split(".", 1)[0] for change in found}:
        if key in fresh:
            setattr(scheduler, key, copy.deepcopy(fresh[key]))
    lrs = current_lrs(scheduler)
    if lrs is None:
        return
    groups = scheduler.optimizer.param_groups
    for group, lr in zip(groups, lrs, strict=True):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(float(lr))
        else:
            group["lr"] = lr
    scheduler._last_lr = [g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"] for g in groups]


def _copied_state(scheduler: Any) -> dict[str, Any] | None:
    """A deep copy of a scheduler's state; None for a custom one whose state cannot be copied (left alone)."""
    try:
        return copy.deepcopy(dict(scheduler.state_dict()))
    except Exception:  # any custom state: never let bookkeeping break training
        return None


class ScheduleCarryOver:
    """Remembers the freshly built schedulers' settings and gives them to the restored ones.

    Call :meth:`read_checkpoint` from ``on_load_checkpoint``, :meth:`capture` from ``on_fit_start`` (after
    ``configure_optimizers``, before Lightning restores the schedulers) and :meth:`apply` from
    ``on_train_start`` (after the restore). :class:`src.utils.exact_resume.ExactResume` does.
    """

    def __init__(self) -> None:
        self._fresh: list[dict[str, Any] | None] | None = None
        self._recorded: dict[str, Any] = {}

    def read_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        """Note the trainer length the checkpoint's run was configured with (for the message)."""
        record = checkpoint.get(RECORD_KEY) or {}
        trainer = (record.get("config") or {}).get("trainer") or {}
        self._recorded = {key: trainer[key] for key in _TRAINER_KEYS if key in trainer}

    def capture(self, trainer: pl.Trainer) -> None:
        """Copy the state of every scheduler as the config built it."""
        self._fresh = [_copied_state(config.scheduler) for config in trainer.lr_scheduler_configs]

    def apply(self, trainer: pl.Trainer) -> list[str]:
        """Give restored schedulers the config's settings; one line per changed scheduler (none: unchanged).

        Raises :class:`ConfigError` for a scheduler whose settings changed but cannot be carried over.
        """
        fresh, self._fresh = self._fresh, None
        if fresh is None or len(fresh) != len(trainer.lr_scheduler_configs):
            return []
        lines = []
        for config, built in zip(trainer.lr_scheduler_configs, fresh, strict=True):
            scheduler = config.scheduler
            restored = _copied_state(scheduler)
            if built is None or restored is None:
                continue
            found = changes(settings(restored), settings(built))
            if not found:
                continue
            shown = ", ".join(map(str, [c for c in found if not c.key.startswith("_")] or found))
            if not can_carry_over(scheduler):
                raise ConfigError(self._refusal(trainer, type(scheduler).__name__, shown))
            apply_settings(scheduler, built, found)
            lr = ", ".join(f"{float(group['lr']):.4g}" for group in scheduler.optimizer.param_groups)
            lines.append(
                f"resume: {self._length_change(trainer)}{type(scheduler).__name__} {shown} (the learning "
                f"rate continues from {config.interval} {scheduler.last_epoch} on the new schedule: lr {lr})"
            )
        return lines

    def _refusal(self, trainer: pl.Trainer, name: str, shown: str) -> str:
        return (
            f"resume: {self._length_change(trainer)}the {name} learning-rate scheduler was built with other "
            f"settings than the checkpoint's ({shown}), and a {name} cannot be moved to new settings in the "
            f"middle of its schedule. Resume with the settings the run was started with"
            f"{self._original_length(trainer)}, or use a scheduler whose settings can change "
            "(CosineAnnealingLR, OneCycleLR, LinearLR, PolynomialLR, StepLR, MultiStepLR, ...)"
        )

    def _differing(self, trainer: pl.Trainer) -> Iterator[tuple[str, Any, Any]]:
        for key in _TRAINER_KEYS:
            if key in self._recorded and self._recorded[key] != getattr(trainer, key):
                yield key, self._recorded[key], getattr(trainer, key)

    def _length_change(self, trainer: pl.Trainer) -> str:
        return "".join(f"trainer.{key} {old} -> {new}: " for key, old, new in self._differing(trainer))

    def _original_length(self, trainer: pl.Trainer) -> str:
        given = [f"trainer.{key}={old}" for key, old, _ in self._differing(trainer)]
        return f" ({', '.join(given)})" if given else ""
