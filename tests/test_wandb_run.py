"""A real offline W&B run from the training CLI, read back without a server, then resumed under its id."""

from __future__ import annotations

from pathlib import Path

from src.analysis import find_wandb_files, load_run, read_wandb_file
from tests.helpers import run_cli, run_dir_from_output, tiny_overrides


def test_offline_wandb_run_is_written_read_back_and_resumed(runs_dir: Path) -> None:
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    overrides = [
        o for o in tiny_overrides("demo/recognizer", runs_dir, extra=["test=false"]) if o != "logger=none"
    ]
    overrides += ["logger=wandb", "logger.wandb.mode=offline", "logger.wandb.group=unit"]
    run_dir = run_dir_from_output(run_cli("src.train", ["experiment=demo/recognizer", *overrides], env=env))
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

    resumed = run_cli(
        "src.train", [f"resume={run_dir}", "trainer.max_epochs=2", "logger.wandb.mode=offline"], env=env
    )
    assert run_dir_from_output(resumed) == run_dir
    files = find_wandb_files(run_dir)
    assert len(files) == 2 and {read_wandb_file(f).run_id for f in files} == {run_dir.name}
    record = load_run(run_dir)
    assert record.wandb is not None and record.wandb.run_id == run_dir.name
    assert sorted(record.history.dropna(subset=["val/rank1"])["epoch"].unique().tolist()) == [0, 1]
