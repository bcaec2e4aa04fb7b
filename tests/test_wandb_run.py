"""A real offline W&B run from the training CLI, read back without a server, then resumed under its id
without logging any (step, metric) twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.analysis import find_wandb_files, load_run, read_wandb_file
from tests.helpers import run_cli, run_dir_from_output, tiny_overrides
from tests.interruptions import CRASH


def test_offline_wandb_run_is_written_read_back_and_resumed(runs_dir: Path) -> None:
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    # two epochs, crashing when the second starts (after epoch 0's checkpoint and the learning-rate row)
    extra = ["test=false", "trainer.max_epochs=2", CRASH % 1]
    overrides = [o for o in tiny_overrides("demo/recognizer", runs_dir, extra=extra) if o != "logger=none"]
    overrides += ["logger=wandb", "logger.wandb.mode=offline", "logger.wandb.group=unit"]
    with pytest.raises(AssertionError, match="test crash") as crashed:
        run_cli("src.train", ["experiment=demo/recognizer", *overrides], env=env)
    run_dir = run_dir_from_output(str(crashed.value).split("failed (1):", 1)[1])
    files = find_wandb_files(run_dir)
    assert len(files) == 1
    run = read_wandb_file(files[0])
    assert run.run_id == run_dir.name
    assert run.group == "unit"
    assert run.config["run_dir"] == str(run_dir)
    assert run.config["model"]["optimizer"]["lr"] == 0.003  # nested, not flattened
    logged = {key for row in run.history for key in row}
    assert {"train/loss_step", "val/rank1"} <= logged
    assert "val/rank1" in run.summary

    resumed = run_cli("src.train", [f"resume={run_dir}", CRASH % -1, "logger.wandb.mode=offline"], env=env)
    assert run_dir_from_output(resumed) == run_dir
    files = find_wandb_files(run_dir)
    assert len(files) == 2 and {read_wandb_file(f).run_id for f in files} == {run_dir.name}
    record = load_run(run_dir)
    assert record.wandb is not None and record.wandb.run_id == run_dir.name
    assert sorted(record.history.dropna(subset=["val/rank1"])["epoch"].unique().tolist()) == [0, 1]
    # the resumed attempt logged no (step, metric) that the first one had already logged
    logged = [
        {
            (row["trainer/global_step"], key)
            for row in read_wandb_file(path).history
            if "trainer/global_step" in row
            for key in row
            if not key.startswith("_") and key != "trainer/global_step"
        }
        for path in files
    ]
    assert logged[0] and logged[1] and not logged[0] & logged[1]
    merged_val = [row["val/rank1"] for row in record.wandb.history if "val/rank1" in row]
    assert len(merged_val) == 2  # one per epoch, across both files
