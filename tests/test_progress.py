"""Progress in logs (stdout not a terminal): lines with step/total, rate and ETA during long stages, and an
epoch summary grouped by prefix and wrapped to the width. A fake clock makes the output exact."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.utils.callbacks import PROGRESS_ENV, LineProgress
from src.utils.console import (
    Every,
    console_width,
    format_duration,
    metric_lines,
    progress_line,
)
from src.utils.tables import PSNR_CAP_TEXT as PSNR_CAPPED


class FakeClock:
    """Seconds that pass only when a step says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Timed(pl.LightningModule):
    """Each training batch takes 7 s, each validation batch 2 s, each test batch 20 s (on the fake clock)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.clock = clock

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.clock.now += 7.0
        self.log("train/lr_scale", 0.25, on_step=True, on_epoch=False, prog_bar=True)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.clock.now += 2.0
        self.log("val/rank1", 0.875)
        self.log("val/psnr", 100.0)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.clock.now += 20.0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)  # lr 0: the logged values stay the same


def _run(every: str | None, epochs: int = 1, test: bool = False) -> None:
    clock = FakeClock()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=[LineProgress(every, clock=clock, width=80)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=2,
    )
    model = Timed(clock)

    def data(n: int) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=1)

    trainer.fit(model, data(20), data(30))
    if test:
        trainer.test(model, data(5), verbose=False)


def _ours(out: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(r"(epoch|validation|test|testing| )", line)]


def test_a_log_gets_a_progress_line_every_30_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    _run(None, test=True)
    assert _ours(capsys.readouterr().out) == [
        "epoch 1/1  step 5/20 (25%)  7 s/it  elapsed 0:35  ETA 1:45  train/lr_scale=0.25",
        "epoch 1/1  step 10/20 (50%)  7 s/it  elapsed 1:10  ETA 1:10  train/lr_scale=0.25",
        "epoch 1/1  step 15/20 (75%)  7 s/it  elapsed 1:45  ETA 0:35  train/lr_scale=0.25",
        "validation  step 15/30 (50%)  2 s/it  elapsed 0:30  ETA 0:30",  # not for the sanity check
        "epoch 1/1 done in 3:20",
        "  train  lr_scale=0.25",
        f"  val    psnr={PSNR_CAPPED}  rank1=0.875",
        "testing on 5 batches ...",
        "test  step 2/5 (40%)  20 s/it  elapsed 0:40  ETA 1:00",
        "test  step 4/5 (80%)  20 s/it  elapsed 1:20  ETA 0:20",
    ]


def test_a_share_of_the_batches_instead_of_seconds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "25%")
    _run(None, epochs=2)
    lines = _ours(capsys.readouterr().out)
    steps = [
        line.split("  ")[1] for line in lines if line.startswith(("epoch", "validation")) and "step" in line
    ]
    per_epoch = ["step 5/20 (25%)", "step 10/20 (50%)", "step 15/20 (75%)"]
    per_validation = ["step 8/30 (27%)", "step 15/30 (50%)", "step 23/30 (77%)"]
    assert steps == [*per_epoch, *per_validation] * 2
    assert "epoch 2/2 done in 3:20" in lines


def test_off_prints_only_the_epoch_summary(capsys: pytest.CaptureFixture[str]) -> None:
    _run("off")
    assert _ours(capsys.readouterr().out) == [
        "epoch 1/1 done in 3:20",
        "  train  lr_scale=0.25",
        f"  val    psnr={PSNR_CAPPED}  rank1=0.875",
    ]


@pytest.mark.parametrize("text", ["fast", "0%", "150%", "-3s", "nan"])
def test_a_wrong_interval_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"give seconds \(30s\), a share of the batches \(10%\) or off"):
        Every.parse(text)


def test_rate_and_eta_after_a_mid_epoch_resume() -> None:
    """Resumed at batch 20 of 100: 10 batches in 20 s here; 70 left at 2 s each."""
    assert progress_line("epoch 2/5", 30, 100.0, 10, 20.0) == (
        "epoch 2/5  step 30/100 (30%)  2 s/it  elapsed 0:20  ETA 2:20"
    )
    assert progress_line("epoch 1", 50, float("inf"), 50, 10.0) == "epoch 1  step 50  5 it/s  elapsed 0:10"
    assert format_duration(3723) == "1:02:03"


def test_a_run_resumed_mid_epoch_counts_from_the_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """Resumed at batch 12 of 20 (Lightning calls on_train_start, not on_train_epoch_start): the steps go on
    from 12, the rate and ETA count the batches run since."""
    clock = FakeClock()
    progress = LineProgress("10s", clock=clock, width=80)
    trainer = SimpleNamespace(
        is_global_zero=True,
        current_epoch=2,
        max_epochs=5,
        num_training_batches=20,
        progress_bar_metrics={"train/loss_step": 1.5, "val/rank1": 0.5},
        callback_metrics={"train/loss_step": torch.tensor(1.5), "train/loss_epoch": torch.tensor(1.25)},
    )
    progress.on_train_start(trainer, None)
    for batch_idx in range(12, 20):
        clock.now += 4.0
        progress.on_train_batch_end(trainer, None, None, None, batch_idx)
    progress.on_train_epoch_end(trainer, None)
    assert capsys.readouterr().out.splitlines() == [
        "epoch 3/5  step 15/20 (75%)  4 s/it  elapsed 0:12  ETA 0:20  train/loss_step=1.5",
        "epoch 3/5  step 18/20 (90%)  4 s/it  elapsed 0:24  ETA 0:08  train/loss_step=1.5",
        "epoch 3/5 done in 32.0 s",
        "  train  loss_epoch=1.25",
    ]


def _many_metrics() -> dict[str, Any]:
    metrics: dict[str, Any] = {
        f"train/loss_{name}_epoch": 0.123456789 for name in ("id", "rec", "adv", "total")
    }
    for stage in ("val", "test"):
        kinds = ("clean", "protected", "recovered")
        metrics |= {f"{stage}/{kind}/rank{k}": 0.9 + k / 1000 for kind in kinds for k in range(10)}
        metrics |= {f"{stage}/tar@far=1e-{k}": 0.5 for k in range(1, 7)}
        metrics |= {f"{stage}/psnr": 100.0, f"{stage}/ssim": 0.99999, f"{stage}/lpips_alex": 1.5e-05}
    metrics |= {"lr-AdamW": 0.003, "pld/epsilon_at_delta_1e-5": 12345.678}
    return metrics


@pytest.mark.parametrize("width", [60, 80, 120])
def test_epoch_summary_groups_wraps_and_lists_every_metric_once(width: int) -> None:
    metrics = _many_metrics()
    assert len(metrics) == 84
    lines = metric_lines(metrics, width=width)
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    starts = [line for line in lines if not line[2].isspace()]  # a group's first line names it
    assert [line.split()[0] for line in starts] == ["train", "val", "test", "pld", "other"]
    found, group = [], ""
    for line in lines:
        group = line[2:7].strip() or group  # indent 2, labels padded to the widest ("train", "other")
        for item in line[9:].split("  "):
            name, value = item.rsplit("=", 1)
            found.append(name if group == "other" else f"{group}/{name}")
            if name == "psnr":
                assert value == PSNR_CAPPED
    assert sorted(found) == sorted(metrics)
    text = "\n".join(lines)
    assert "loss_id_epoch=0.1235" in text and "ssim=1" in text and "lpips_alex=1.5e-05" in text
    assert "epsilon_at_delta_1e-5=1.235e+04" in text


def test_an_item_longer_than_a_line_is_cut_to_the_width() -> None:
    lines = metric_lines({"val/" + "x" * 50: 1.0, "val/y": 2.0}, width=30)
    assert all(len(line) <= 30 for line in lines)
    assert "".join(line.strip().removeprefix("val").strip() for line in lines).startswith("x" * 50 + "=1")


def test_the_width_is_the_terminal_else_120_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)

    def no_terminal(*args: Any) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    assert console_width() == 120
    monkeypatch.setenv("COLUMNS", "72")
    assert console_width() == 72


def test_the_displayed_psnr_cap_is_the_metric_cap() -> None:
    """The console shows "capped" exactly where the PSNR metric caps (utils cannot import metrics)."""
    from src.metrics.image_quality import PSNR_CAP_DB
    from src.utils.tables import PSNR_CAP_DB as SHOWN_CAP

    assert SHOWN_CAP == PSNR_CAP_DB
