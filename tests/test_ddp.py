"""Two-process DDP on CPU (gloo): the CLI with ``ddp`` and in-process with ``ddp_spawn``.

Evaluation must count every sample exactly once: the tiny test split has 9 images (uneven over 2 ranks),
and the DDP metrics must equal the single-process ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config.compose import compose
from src.datamodules.base import FaceDataModule
from tests.helpers import run_cli, run_dir_from_output, run_experiment, tiny_overrides

pytestmark = pytest.mark.ddp


def _test_metrics(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary.items() if k.startswith("test/")}


@pytest.fixture(scope="module")
def single_process_eval(
    tmp_path_factory: pytest.TempPathFactory, tiny_recognizer_ckpt: str
) -> dict[str, float]:
    runs = tmp_path_factory.mktemp("single")
    overrides = tiny_overrides("demo/recognizer", runs, extra=[f"ckpt_path={tiny_recognizer_ckpt}"])
    result = run_experiment("demo/recognizer", overrides, task="eval")
    metrics = _test_metrics(json.loads((result.run_dir / "summary.json").read_text()))
    assert metrics
    return metrics


def test_ddp_cli_eval_counts_every_sample_once(
    runs_dir: Path, tiny_recognizer_ckpt: str, single_process_eval: dict[str, float]
) -> None:
    overrides = tiny_overrides(
        "demo/recognizer", runs_dir, extra=["trainer=ddp_cpu", f"ckpt_path={tiny_recognizer_ckpt}"]
    )
    output = run_cli("src.eval", ["experiment=demo/recognizer", *overrides])
    run_dir = run_dir_from_output(output)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert _test_metrics(summary) == pytest.approx(single_process_eval, abs=1e-6)
    assert len(list((runs_dir / "demo" / "recognizer").iterdir())) == 1  # one run dir for both ranks


def test_ddp_cli_training_writes_one_run(runs_dir: Path) -> None:
    overrides = tiny_overrides("demo/recognizer", runs_dir, extra=["trainer=ddp_cpu", "trainer.max_epochs=2"])
    output = run_cli("src.train", ["experiment=demo/recognizer", *overrides])
    run_dir = run_dir_from_output(output)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["strategy"] == "ddp" and meta["devices"] == 2
    assert meta["world_size"] == 2
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((runs_dir / "demo" / "recognizer").iterdir())) == 1


def test_ddp_spawn_in_process_matches_single_process(
    runs_dir: Path, tiny_recognizer_ckpt: str, single_process_eval: dict[str, float]
) -> None:
    overrides = tiny_overrides(
        "demo/recognizer", runs_dir, extra=["trainer=ddp_spawn_cpu", f"ckpt_path={tiny_recognizer_ckpt}"]
    )
    result = run_experiment("demo/recognizer", overrides, task="eval")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert _test_metrics(summary) == pytest.approx(single_process_eval, abs=1e-6)


def test_global_batch_must_divide_by_world_size() -> None:
    class FakeTrainer:
        world_size = 2

    datamodule = FaceDataModule(batch_size=7)
    datamodule.trainer = FakeTrainer()  # type: ignore[assignment]  # set as Lightning does
    with pytest.raises(ValueError, match=r"global batch and must be divisible by the world size 2"):
        datamodule.per_device_batch_size()
    datamodule.batch_size = 8
    assert datamodule.per_device_batch_size() == 4


def test_ddp_config_documents_global_batch() -> None:
    cfg = compose("demo/recognizer", ["trainer=ddp_cpu"]).config
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 2
