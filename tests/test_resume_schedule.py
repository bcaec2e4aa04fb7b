"""Resuming with a longer training: the learning-rate schedule continues on the config's new settings.

A run trained for 3 epochs and resumed with ``trainer.max_epochs=6`` must use, in epochs 4-6, the learning
rates a 6-epoch run uses there (it used to keep ``T_max=3`` from the checkpoint: lr 0, then rising again).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset

from src.config.errors import ConfigError
from src.utils.checkpoint_files import RECORD_KEY
from src.utils.exact_resume import LAST_CHECKPOINT, ExactResume, LastCheckpoint
from src.utils.schedule_resume import ScheduleCarryOver
from tests.helpers import run_experiment, tiny_overrides

BATCHES = 4  # training steps per epoch
Factory = Callable[[torch.optim.Optimizer, pl.Trainer], Any]


class Scheduled(pl.LightningModule):
    """A linear model whose scheduler comes from ``factory``; records the learning rate of every step."""

    def __init__(self, factory: Factory, interval: str = "epoch") -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.factory, self.interval = factory, interval
        self.lrs: list[float] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.lrs.append(float(self.optimizers().param_groups[0]["lr"]))
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.9)
        scheduler = self.factory(optimizer, self.trainer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.interval}}


class RecordLength(pl.Callback):
    """Writes the trainer length into checkpoints the way the run record does (``RECORD_KEY``)."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[RECORD_KEY] = {"config": {"trainer": {"max_epochs": trainer.max_epochs, "max_steps": -1}}}


def _fit(factory: Factory, epochs: int, tmp: Path, resume: Path | None = None, interval: str = "epoch"):
    model = Scheduled(factory, interval)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ExactResume(0), LastCheckpoint(dirpath=str(tmp)), RecordLength()],
    )
    data = DataLoader(TensorDataset(torch.randn(2 * BATCHES, 2)), batch_size=2)
    trainer.fit(model, data, ckpt_path=None if resume is None else str(resume), weights_only=False)
    return model.lrs


SCHEDULES: dict[str, tuple[Factory, str]] = {
    "cosine": (lambda opt, t: lr_scheduler.CosineAnnealingLR(opt, T_max=t.max_epochs, eta_min=0.01), "epoch"),
    "linear": (lambda opt, t: lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=t.max_epochs), "epoch"),
    "polynomial": (
        lambda opt, t: lr_scheduler.PolynomialLR(opt, total_iters=t.max_epochs, power=2.0),
        "epoch",
    ),
    "one_cycle": (
        lambda opt, t: lr_scheduler.OneCycleLR(opt, 1.0, total_steps=t.estimated_stepping_batches),
        "step",
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_longer_resume_follows_the_schedule_of_the_longer_run(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory, interval = SCHEDULES[name]
    _fit(factory, 3, tmp_path / "short", interval=interval)
    capsys.readouterr()
    resumed = _fit(factory, 6, tmp_path / "resumed", tmp_path / "short" / LAST_CHECKPOINT, interval)
    line = capsys.readouterr().out
    straight = _fit(factory, 6, tmp_path / "straight", interval=interval)

    assert len(resumed) == 3 * BATCHES
    assert resumed == pytest.approx(straight[3 * BATCHES :], rel=1e-9, abs=1e-12)
    assert all(lr > 0 for lr in resumed)
    assert f"resume: trainer.max_epochs 3 -> 6: {type_name(name)} " in line
    assert f"continues from {interval} " in line


def type_name(name: str) -> str:
    return {"cosine": "CosineAnnealingLR", "linear": "LinearLR", "polynomial": "PolynomialLR"}.get(
        name, "OneCycleLR"
    )


def test_cosine_learning_rates_of_the_extra_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The numbers themselves: lr(e) = eta_min + (1 - eta_min) (1 + cos(pi e / 6)) / 2 for e = 3, 4, 5."""
    factory = SCHEDULES["cosine"][0]
    _fit(factory, 3, tmp_path / "short")
    resumed = _fit(factory, 6, tmp_path / "resumed", tmp_path / "short" / LAST_CHECKPOINT)
    per_epoch = resumed[::BATCHES]
    expected = [0.01 + 0.99 * (1 + math.cos(math.pi * e / 6)) / 2 for e in (3, 4, 5)]
    assert per_epoch == pytest.approx(expected, rel=1e-9)
    assert (
        "CosineAnnealingLR T_max 3 -> 6 (the learning rate continues from epoch 3" in capsys.readouterr().out
    )


def test_a_scheduler_that_cannot_change_course_is_refused(tmp_path: Path) -> None:
    def warmup_then_cosine(opt: torch.optim.Optimizer, trainer: pl.Trainer) -> Any:
        warmup = lr_scheduler.LinearLR(opt, 0.1, 1.0, total_iters=1)
        cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=trainer.max_epochs - 1)
        return lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[1])

    _fit(warmup_then_cosine, 3, tmp_path / "short")
    with pytest.raises(ConfigError) as error:
        _fit(warmup_then_cosine, 6, tmp_path / "resumed", tmp_path / "short" / LAST_CHECKPOINT)
    message = str(error.value)
    assert "trainer.max_epochs 3 -> 6" in message and "SequentialLR" in message
    assert "_schedulers.1.T_max 2 -> 5" in message
    assert "Resume with the settings the run was started with (trainer.max_epochs=3)" in message


def _configs(scheduler: Any, interval: str = "epoch") -> SimpleNamespace:
    trainer = SimpleNamespace(max_epochs=4, max_steps=-1)
    trainer.lr_scheduler_configs = [SimpleNamespace(scheduler=scheduler, interval=interval)]
    return trainer


def test_an_unchanged_schedule_is_left_alone() -> None:
    """A plain resume (same settings): nothing is touched, nothing printed."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    carry = ScheduleCarryOver()
    carry.capture(_configs(scheduler))
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    before = (optimizer.param_groups[0]["lr"], scheduler.state_dict())
    carry.read_checkpoint({RECORD_KEY: {"config": {"trainer": {"max_epochs": 4}}}})
    assert carry.apply(_configs(scheduler)) == []
    assert (optimizer.param_groups[0]["lr"], scheduler.state_dict()) == before


def test_reduce_on_plateau_takes_new_settings_and_keeps_its_learning_rate() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    fresh = lr_scheduler.ReduceLROnPlateau(optimizer, patience=5)
    carry = ScheduleCarryOver()
    carry.capture(_configs(fresh))
    old = lr_scheduler.ReduceLROnPlateau(optimizer, patience=2)
    for _ in range(4):
        old.step(1.0)  # no improvement: one reduction after patience 2
    fresh.load_state_dict(old.state_dict())
    lr = optimizer.param_groups[0]["lr"]
    (line,) = carry.apply(_configs(fresh))
    assert "ReduceLROnPlateau patience 2 -> 5" in line
    assert fresh.patience == 5 and optimizer.param_groups[0]["lr"] == lr == 0.1


def test_resuming_a_run_with_more_epochs(runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``resume=<run> trainer.max_epochs=4`` of a 2-epoch demo run: a line, the record, the logged lr."""
    settings = ["trainer.max_epochs=2", "test=false"]
    first = run_experiment("demo/recognizer", tiny_overrides("demo/recognizer", runs_dir, extra=settings))
    capsys.readouterr()
    longer = ["trainer.max_epochs=4", "test=false", f"resume={first.run_dir}"]
    run_experiment("demo/recognizer", tiny_overrides("demo/recognizer", runs_dir, extra=longer))
    out = capsys.readouterr().out
    expected = (
        "resume: trainer.max_epochs 2 -> 4: CosineAnnealingLR T_max 2 -> 4 (the learning rate continues"
    )
    assert expected in out
    meta = json.loads((first.run_dir / "meta.json").read_text())
    assert meta["resume_schedule"][0].startswith(expected)
    logged = pd.read_csv(first.run_dir / "metrics.csv")["lr-AdamW"].dropna()  # one value per epoch
    cosine = [0.003 * (1 + math.cos(math.pi * epoch / 4)) / 2 for epoch in range(4)]
    short = [0.003 * (1 + math.cos(math.pi * epoch / 2)) / 2 for epoch in range(2)]
    assert list(logged) == pytest.approx([*short, *cosine[2:]], rel=1e-6)
