"""Training/evaluation end to end: run record, determinism, resume, evaluation of a checkpoint (every
experiment file is built and run under fast_dev_run in tests/test_experiments.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from src.config.errors import ConfigError
from tests.helpers import (
    run_experiment,
    tiny_overrides,
)


def test_training_leaves_a_complete_run_record(runs_dir: Path) -> None:
    overrides = tiny_overrides("demo/recognizer", runs_dir, extra=["trainer.max_epochs=2", "seed=0"])
    result = run_experiment("demo/recognizer", overrides)
    run_dir = result.run_dir
    assert run_dir.parent == runs_dir / "demo" / "recognizer"
    assert run_dir.name == result.run_id
    config = OmegaConf.load(run_dir / "config.yaml")
    assert config.trainer.max_epochs == 2 and config.seed == 0
    assert (run_dir / "overrides.txt").read_text().splitlines() == overrides
    meta = json.loads((run_dir / "meta.json").read_text())
    for key in ("git", "packages", "seed", "deterministic", "devices", "command", "start_time", "end_time"):
        assert key in meta, key
    assert meta["status"] == "completed" and meta["seed"] == 0
    assert meta["packages"]["torch"] == torch.__version__.split("+")[0]
    history = pd.read_csv(run_dir / "metrics.csv")
    assert {"train/loss_epoch", "val/rank1", "epoch"} <= set(history.columns)
    assert sorted(history.dropna(subset=["val/rank1"])["epoch"].unique().tolist()) == [0, 1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test/rank1"] <= 1.0
    assert Path(summary["best_checkpoint"]).parent == run_dir / "checkpoints"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    data = json.loads((run_dir / "data.json").read_text())
    assert data["synthetic"] is True
    results = (run_dir / "results.md").read_text()
    assert results.startswith("# demo/recognizer") and "not real data" in results
    assert summary["data"]["synthetic"] is True
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["proface"]["run_id"] == result.run_id
    assert (run_dir / "plots" / "test" / "roc.png").is_file()
    assert (run_dir / "plots" / "test" / "similarity.png").is_file()


def test_same_seed_gives_identical_metrics(runs_dir: Path) -> None:
    def metrics(seed: int) -> dict[str, float]:
        result = run_experiment(
            "demo/recognizer", tiny_overrides("demo/recognizer", runs_dir, extra=[f"seed={seed}"])
        )
        return {k: v for k, v in result.metrics.items() if k.startswith(("train/", "val/", "test/"))}

    first, second, other = metrics(0), metrics(0), metrics(1)
    assert first == second
    assert first != other


def test_resume_continues_the_same_run(runs_dir: Path) -> None:
    first = run_experiment(
        "demo/recognizer", tiny_overrides("demo/recognizer", runs_dir, extra=["test=false"])
    )
    overrides = tiny_overrides(
        "demo/recognizer", runs_dir, extra=["test=false", "trainer.max_epochs=2", f"resume={first.run_dir}"]
    )
    second = run_experiment("demo/recognizer", overrides)
    assert second.run_dir == first.run_dir and second.run_id == first.run_id
    meta = json.loads((first.run_dir / "meta.json").read_text())
    assert len(meta["resumed_at"]) == 1
    history = pd.read_csv(first.run_dir / "metrics.csv")
    assert sorted(history.dropna(subset=["val/rank1"])["epoch"].unique().tolist()) == [0, 1]
    last = torch.load(first.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1
    assert len(list((runs_dir / "demo" / "recognizer").iterdir())) == 1


def test_resume_rejects_a_folder_that_is_not_a_run(tmp_path: Path, runs_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        run_experiment(
            "demo/recognizer", tiny_overrides("demo/recognizer", runs_dir, extra=[f"resume={tmp_path}"])
        )


def test_eval_evaluates_a_checkpoint(runs_dir: Path, tiny_recognizer_ckpt: str) -> None:
    overrides = tiny_overrides("demo/recognizer", runs_dir, extra=[f"ckpt_path={tiny_recognizer_ckpt}"])
    result = run_experiment("demo/recognizer", overrides, task="eval")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["tested_checkpoint"] == tiny_recognizer_ckpt
    assert "test/verif_acc" in summary and "train/loss_epoch" not in summary


def test_eval_without_checkpoint_is_an_error(runs_dir: Path) -> None:
    with pytest.raises(ConfigError, match="ckpt_path"):
        run_experiment("demo/recognizer", tiny_overrides("demo/recognizer", runs_dir), task="eval")


def test_obfuscation_baselines_table(runs_dir: Path, tiny_recognizer_ckpt: str) -> None:
    overrides = tiny_overrides(
        "demo/obfuscation_baselines", runs_dir, {"model.recognizer_ckpt": tiny_recognizer_ckpt}
    )
    result = run_experiment("demo/obfuscation_baselines", overrides, task="eval")
    table = result.table
    assert list(table["obfuscator"]) == ["none", "blur", "median", "pixelate", "mask", "noise"]
    clean = table.set_index("obfuscator").loc["none"]
    assert clean["psnr"] == pytest.approx(100.0)  # identical images: PSNR capped
    assert clean["ssim"] == pytest.approx(1.0)
    assert (table.set_index("obfuscator").drop(index="none")["psnr"] < 60).all()
    assert (result.run_dir / "results.csv").is_file()
    plots = result.run_dir / "plots" / "test"
    assert (plots / "roc_obfuscators.png").is_file()
    assert sorted(p.stem for p in (plots / "similarity").glob("*.png")) == sorted(table["obfuscator"])


def test_the_recorded_command_reruns_and_epochs_count_like_the_console(runs_dir: Path) -> None:
    """``meta.json``'s ``command`` is ``<this python> -m src.train experiment=... <overrides>`` (it runs again
    from the project root, whatever started the run; ``argv`` keeps the process's own command line) and
    ``epochs_completed`` counts full epochs as the console does: 2 after ``epoch 2/2``, where Lightning's
    0-based ``epoch`` column says 1."""
    import shlex
    import sys

    from src.utils.run_record import PROJECT_ROOT, interpreter
    from tests.helpers import run_process

    overrides = tiny_overrides("demo/recognizer", runs_dir, extra=["trainer.max_epochs=2", "test=false"])
    result = run_experiment("demo/recognizer", overrides)
    meta = json.loads((result.run_dir / "meta.json").read_text())
    summary = json.loads((result.run_dir / "summary.json").read_text())
    python = interpreter()  # .venv/bin/python here: a bare "python" may lack the pinned stack
    assert meta["command"] == shlex.join(
        [python, "-m", "src.train", "experiment=demo/recognizer", *overrides]
    )
    assert meta["argv"][0] == sys.executable
    assert meta["epochs_completed"] == summary["epochs_completed"] == 2
    assert pd.read_csv(result.run_dir / "metrics.csv")["epoch"].max() == 1
    executable, dash_m, module, *args = shlex.split(meta["command"])
    assert (executable, dash_m, module) == (python, "-m", "src.train")
    assert Path(PROJECT_ROOT, executable).resolve() == Path(sys.executable).resolve()
    rerun = run_process(module, [*args, "--print-config"])
    assert rerun.returncode == 0, rerun.stderr
    assert OmegaConf.create(rerun.stdout) == OmegaConf.load(result.run_dir / "config.yaml")
