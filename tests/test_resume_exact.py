"""A resumed run continues exactly like the uninterrupted one: same metrics, same ``metrics.csv`` rows.

Each test runs the same configuration twice: once straight through, once interrupted (a crash at an epoch
boundary, a SIGKILL in the middle of an epoch) and resumed with ``resume=<run dir>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

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


DDP = [*SETTINGS, "trainer=ddp_cpu"]


@pytest.fixture(scope="module")
def straight_ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-process run (the CLI's ddp launcher, gloo) the interrupted DDP runs must equal."""
    runs_dir = tmp_path_factory.mktemp("ddp_runs")
    args = [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, runs_dir, extra=DDP)]
    return run_dir_from_output(run_cli("src.train", args))


@pytest.mark.ddp
def test_ddp_resume_at_an_epoch_boundary_is_exact(runs_dir: Path, straight_ddp_run: Path) -> None:
    """Two processes: crash at epoch 1, resume: same as straight through."""
    args = [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, runs_dir, extra=[*DDP, CRASH % 1])]
    with pytest.raises(AssertionError, match="test crash"):
        run_cli("src.train", args)
    (crashed,) = (runs_dir / EXPERIMENT).iterdir()
    assert run_dir_from_output(run_cli("src.train", [f"resume={crashed}", CRASH % -1])) == crashed
    same_run(straight_ddp_run, crashed)


@pytest.mark.ddp
def test_ddp_sigterm_stops_every_rank_at_one_batch_and_resumes_exactly(
    runs_dir: Path, straight_ddp_run: Path
) -> None:
    """SIGTERM reaches rank 0 only, in the middle of epoch 1: the ranks agree to stop after the same batch,
    write last.ckpt there together, exit 143; the resumed run ends as the straight one."""
    args = [
        f"experiment={EXPERIMENT}",
        *tiny_overrides(EXPERIMENT, runs_dir, extra=[*DDP, SIGNAL % (6, "SIGTERM")]),
    ]
    stopped = run_process("src.train", args)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    run_dir = run_dir_from_output(stopped.stdout)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "terminated" and meta["stop"]["checkpoint"].endswith("last.ckpt")
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6 and len(last["callbacks"]["ExactResume"]["ranks"]) == 2
    assert (
        run_dir_from_output(run_cli("src.train", [f"resume={run_dir}", SIGNAL % (-1, "SIGTERM")])) == run_dir
    )
    same_run(straight_ddp_run, run_dir)


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
