"""Bad checkpoints given to a run (``ckpt_path=``, ``resume=``) stop it with one line naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from src.utils.checkpoint_files import CheckpointError
from tests.helpers import run_cli, run_experiment, tiny_overrides

EXPERIMENT = "demo/recognizer"


def _eval(runs_dir: Path, checkpoint: Path | str) -> None:
    run_experiment(
        EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=[f"ckpt_path={checkpoint}"]), task="eval"
    )


def test_truncated_checkpoint_is_one_line_naming_the_file(runs_dir: Path, tiny_recognizer_ckpt: str) -> None:
    half = runs_dir / "half.ckpt"
    data = Path(tiny_recognizer_ckpt).read_bytes()
    half.write_bytes(data[: len(data) // 2])
    output_error = None
    with pytest.raises(AssertionError) as info:
        run_cli("src.eval", [f"experiment={EXPERIMENT}", f"ckpt_path={half}", "logger=none"], timeout=120)
    output_error = str(info.value)
    assert "failed (2)" in output_error
    (line,) = [line for line in output_error.splitlines() if line.startswith("error:")]
    assert str(half) in line and "truncated or corrupt zip archive" in line
    assert "Traceback" not in output_error


def test_checkpoint_of_another_experiment_names_both_and_summarises_keys(runs_dir: Path) -> None:
    other = run_experiment(
        "proface_s/demo_synthetic",
        tiny_overrides("proface_s/demo_synthetic", runs_dir, extra=["trainer.max_steps=1", "test=false"]),
    )
    checkpoint = other.run_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as info:
        _eval(runs_dir, checkpoint)
    message = str(info.value)
    assert "\n" not in message and str(checkpoint) in message
    assert "experiment proface_s/demo_synthetic" in message and "experiment demo/recognizer" in message
    assert "missing keys (" in message and "unexpected keys (" in message and "..." in message


def test_checkpoint_of_another_network_size_is_a_shape_summary(
    runs_dir: Path, tiny_recognizer_ckpt: str
) -> None:
    overrides = tiny_overrides(
        EXPERIMENT, runs_dir, extra=[f"ckpt_path={tiny_recognizer_ckpt}", "model.net.embedding_dim=64"]
    )
    with pytest.raises(
        CheckpointError, match=r"does not fit experiment demo/recognizer.*shape mismatch.*\[64"
    ):
        run_experiment(EXPERIMENT, overrides, task="eval")


@pytest.mark.parametrize("kind", ["empty", "text"])
def test_resume_from_an_unreadable_last_checkpoint(
    runs_dir: Path, tiny_recognizer_ckpt: str, tmp_path: Path, kind: str
) -> None:
    run_dir = Path(shutil.copytree(Path(tiny_recognizer_ckpt).parents[1], tmp_path / "run"))
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(b"" if kind == "empty" else b"epoch: 3\n")
    overrides = tiny_overrides(EXPERIMENT, runs_dir, extra=["trainer.max_epochs=2", f"resume={run_dir}"])
    with pytest.raises(
        CheckpointError, match="empty" if kind == "empty" else "not a PyTorch checkpoint"
    ) as info:
        run_experiment(EXPERIMENT, overrides)
    assert str(last) in str(info.value)
