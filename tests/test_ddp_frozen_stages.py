"""Two-process CPU DDP (gloo) of a training stage built on frozen parts: the Inspector's auto-thresholder
attacks its frozen detector (PGD) in every training and validation step and reconstructs through its frozen
reconstructor, while DDP synchronises only the trained part (the frozen ones are left out of DDP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_dir_from_output, tiny_overrides

pytestmark = pytest.mark.ddp
EXPERIMENT = "inspector/demo_synthetic/stage3_autothresh"


def test_a_frozen_parts_stage_trains_under_two_process_ddp(runs_dir: Path) -> None:
    limits = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
    overrides = tiny_overrides(
        EXPERIMENT, runs_dir, extra=["trainer=ddp_cpu", "trainer.max_epochs=1", *limits]
    )
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={EXPERIMENT}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["test/acc_mean"] <= 1.0 and 0.0 <= summary["val/acc_mean"] <= 1.0, summary
