"""A resumed run continues exactly like the uninterrupted one: same metrics, same ``metrics.csv`` rows.

Each test runs the same configuration twice: once straight through, once interrupted (a crash at an epoch
boundary, a SIGKILL in the middle of an epoch) and resumed with ``resume=<run dir>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from src.utils.exact_resume import LastCheckpoint
from tests.helpers import run_cli, run_dir_from_output, run_experiment, run_process, tiny_overrides
from tests.interruptions import CRASH, EXPERIMENT, SETTINGS, SIGNAL, same_run


def test_resume_at_an_epoch_boundary_is_exact(runs_dir: Path) -> None:
    straight = run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=SETTINGS))
    with pytest.raises(RuntimeError, match="test crash"):
        run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=[*SETTINGS, CRASH % 1]))
    crashed = next(p for p in (runs_dir / EXPERIMENT).iterdir() if p != straight.run_dir)
    assert json.loads((crashed / "meta.json").read_text())["status"] == "failed"
    partial = crashed / "checkpoints" / ".last.ckpt.x1y2.tmp"  # what a kill during a save leaves behind
    partial.write_bytes(b"half a checkpoint")
    # the crash callback is the user's own code: given again (inactive), not taken from the run directory
    resume = [*SETTINGS, CRASH % -1, f"resume={crashed}"]
    resumed = run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=resume))
    assert resumed.run_dir == crashed and not partial.exists()
    same_run(straight.run_dir, crashed)


def test_sigkill_mid_epoch_resumes_from_the_step_checkpoint_exactly(runs_dir: Path) -> None:
    """Killed with SIGKILL at step 7 (epoch 1, batch 3 of 4), step checkpoints every 2 steps: the resumed run
    restarts after step 6 in the middle of the epoch, with the same order, augmentation and RNG states."""
    schedule = [*SETTINGS, "callbacks.last_checkpoint.every_n_train_steps=2"]
    straight = run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=schedule))
    killed_args = [
        f"experiment={EXPERIMENT}",
        *tiny_overrides(EXPERIMENT, runs_dir, extra=[*schedule, SIGNAL % (7, "SIGKILL")]),
    ]
    killed = run_process("src.train", killed_args)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = run_dir_from_output(killed.stdout)
    assert (
        json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    )  # SIGKILL: no chance to say more
    output = run_cli("src.train", [f"resume={run_dir}", SIGNAL % (-1, "SIGKILL")])
    assert run_dir_from_output(output) == run_dir
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and "resume_note" not in meta
    same_run(straight.run_dir, run_dir)


def test_step_checkpoints_never_land_in_the_middle_of_gradient_accumulation(tmp_path: Path) -> None:
    """With accumulate_grad_batches=2 the step count stays the same over two micro-batches: save once,
    right after the optimizer step."""
    saved: list[int] = []
    trainer = SimpleNamespace(
        global_step=0,
        fast_dev_run=False,
        sanity_checking=False,
        fit_loop=SimpleNamespace(
            epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(is_last_batch=False))
        ),
    )
    trainer.save_checkpoint = lambda path, weights_only: saved.append(trainer.global_step)
    callback = LastCheckpoint(every_n_train_steps=1, dirpath=str(tmp_path))
    for step in (0, 1, 1, 2, 2, 3):  # the step count after each micro-batch
        trainer.global_step = step
        callback.on_train_batch_end(trainer, None, None, None, 0)
    assert saved == [1, 2, 3]
