"""EG and FPG beyond one step: FPG's training step (perception passes through ``torch.autograd.grad``,
refinements, separation loss) under two-process CPU DDP, and, for both papers, the checkpoint round trip:
the checkpoint a training run selected, evaluated in one process, gives the training run's test numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, run_dir_from_output, run_experiment, tiny_overrides


def _test_metrics(run_dir: Path) -> dict[str, float]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k.startswith("test/")}


def _checkpoint(run_dir: Path) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary.get("best_checkpoint") or str(run_dir / "checkpoints" / "last.ckpt")


def _evaluated_like(experiment: str, run_dir: Path, runs_dir: Path) -> None:
    """Evaluating the run's checkpoint in one process reproduces the run's test metrics."""
    single = run_experiment(
        experiment,
        tiny_overrides(experiment, runs_dir / "eval", extra=[f"ckpt_path={_checkpoint(run_dir)}"]),
        task="eval",
    )
    assert _test_metrics(single.run_dir) == pytest.approx(_test_metrics(run_dir), abs=1e-6)


@pytest.mark.ddp
def test_fpg_trains_under_ddp_and_its_checkpoint_tests_the_same_in_one_process(runs_dir: Path) -> None:
    experiment = "fpg/ffpp_c23"
    extra = [
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "trainer.precision=32",
        "trainer.accumulate_grad_batches=1",
    ]
    overrides = tiny_overrides(experiment, runs_dir, extra=extra)
    run_dir = run_dir_from_output(run_cli("src.train", [f"experiment={experiment}", *overrides]))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    assert "test/frame_auc" in _test_metrics(run_dir)
    _evaluated_like(experiment, run_dir, runs_dir)


def test_eg_checkpoint_round_trip(runs_dir: Path) -> None:
    experiment = "eg/ffpp_c23"
    trained = run_experiment(experiment, tiny_overrides(experiment, runs_dir, extra=["trainer.max_epochs=1"]))
    assert "test/video_auc" in _test_metrics(trained.run_dir)
    _evaluated_like(experiment, trained.run_dir, runs_dir)
