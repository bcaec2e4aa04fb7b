"""Interrupting runs in tests: callbacks that crash or signal at a chosen point (named by ``_target_`` in
test overrides), the tiny settings the resume tests share, and the comparison of two runs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl


class CrashAtEpochStart(pl.Callback):
    """Raise at the start of ``epoch`` (after the previous epoch's checkpoint): a crashed run."""

    def __init__(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Crash when the chosen epoch starts."""
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"test crash at the start of epoch {self.epoch}")


class SignalAtStep(pl.Callback):
    """Send this process ``signal`` (SIGKILL, SIGTERM, SIGINT, SIGUSR1) after training step ``step``."""

    def __init__(self, step: int, signal: str = "SIGKILL") -> None:
        self.step = int(step)
        self.signal = signal

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Signal once, at the chosen optimizer step (rank 0 only under DDP)."""
        if trainer.global_step == self.step and trainer.is_global_zero:
            os.kill(os.getpid(), getattr(signal, self.signal))


# The run the resume tests interrupt: 6 images x 6 identities, batch 8: 4 training steps per epoch, 3 epochs
EXPERIMENT = "demo/recognizer"
SETTINGS = ["trainer.max_epochs=3", "datamodule.images_per_identity=6"]
CRASH = "+callbacks.interrupt={_target_: tests.interruptions.CrashAtEpochStart, epoch: %d}"
SIGNAL = "+callbacks.interrupt={_target_: tests.interruptions.SignalAtStep, step: %d, signal: %s}"


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The train/val/test metrics a run's ``summary.json`` ends with."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k.startswith(("train/", "val/", "test/"))}


def same_run(uninterrupted: Path, resumed: Path) -> None:
    """Identical final metrics (to 1e-6) and identical ``metrics.csv`` rows."""
    expected, got = final_metrics(uninterrupted), final_metrics(resumed)
    assert expected.keys() == got.keys()
    assert all(abs(expected[k] - got[k]) <= 1e-6 for k in expected), {
        k: (expected[k], got[k]) for k in expected
    }
    pd.testing.assert_frame_equal(
        pd.read_csv(uninterrupted / "metrics.csv"), pd.read_csv(resumed / "metrics.csv")
    )
