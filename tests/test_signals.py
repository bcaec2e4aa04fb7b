"""A run stopped by a signal says so in its record and exits with the code a scheduler expects.

SIGTERM (``timeout``, schedulers, SLURM) -> ``terminated`` (``preempted`` on SLURM), a last checkpoint, exit
143; SIGINT (Ctrl-C) -> ``interrupted``, exit 130; a crash -> ``failed``, exit 1; SLURM's requeue signal ->
checkpoint, ``scontrol requeue``, and the requeued job resumes exactly.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from src.sweep import failure_reason
from tests.helpers import run_dir_from_output, run_experiment, run_process, tiny_overrides
from tests.interruptions import CRASH, EXPERIMENT, SETTINGS, SIGNAL, same_run


def _train(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m src.train`` in a fresh process; returns it whatever its exit code."""
    return run_process("src.train", args, env=env)


def _meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def _args(runs_dir: Path, *extra: str) -> list[str]:
    return [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, runs_dir, extra=[*SETTINGS, *extra])]


def test_sigterm_stops_with_143_a_terminated_record_and_a_checkpoint_to_resume(runs_dir: Path) -> None:
    straight = run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=SETTINGS))
    stopped = _train(_args(runs_dir, SIGNAL % (5, "SIGTERM")))
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    run_dir = run_dir_from_output(stopped.stdout)
    meta = _meta(run_dir)
    assert meta["status"] == "terminated" and meta["stop"]["exit_code"] == 143
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "terminated"
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 5  # saved at the batch boundary where it stopped
    resumed = _train([f"resume={run_dir}", SIGNAL % (-1, "SIGTERM")])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _meta(run_dir)["status"] == "completed" and "stop" not in _meta(run_dir)
    same_run(straight.run_dir, run_dir)


def test_sigint_exits_130_and_a_crash_exits_1(runs_dir: Path) -> None:
    interrupted = _train(_args(runs_dir, SIGNAL % (2, "SIGINT")))
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert _meta(run_dir_from_output(interrupted.stdout))["status"] == "interrupted"
    crashed = _train(_args(runs_dir, CRASH % 1))
    assert crashed.returncode == 1 and "test crash at the start of epoch 1" in crashed.stderr
    meta = _meta(run_dir_from_output(crashed.stdout))
    assert meta["status"] == "failed" and "test crash" in meta["error"]


def test_slurm_requeue_saves_requeues_and_the_requeued_job_resumes_exactly(
    runs_dir: Path, tmp_path: Path
) -> None:
    """SLURM sends the requeue signal (SIGUSR1) before the time limit: the run checkpoints at the next batch
    boundary, calls ``scontrol requeue <job>`` and stops as ``preempted``; the requeued job (same id, same
    command) continues the same run directory to the same result as a run never pre-empted."""
    straight = run_experiment(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=SETTINGS))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    slurm = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    args = _args(runs_dir, SIGNAL % (5, "SIGUSR1"))
    first = _train(args, slurm)
    assert first.returncode == 143, first.stderr[-3000:]
    run_dir = run_dir_from_output(first.stdout)
    assert run_dir.name == "slurm-4242" and _meta(run_dir)["status"] == "preempted"
    assert calls.read_text().split() == ["requeue", "4242"]
    # a second run in the same job is a new run; the requeued job (restart count 1) reruns its command
    requeued = _train([*args[:-1], SIGNAL % (-1, "SIGUSR1")], {**slurm, "SLURM_RESTART_COUNT": "1"})
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert run_dir_from_output(requeued.stdout) == run_dir and "was requeued: resuming" in requeued.stdout
    assert _meta(run_dir)["status"] == "completed" and len(_meta(run_dir)["resumed_at"]) == 1
    same_run(straight.run_dir, run_dir)


@pytest.mark.parametrize(
    ("returncode", "status", "expected"),
    [
        (143, "terminated", "terminated by a signal (SIGTERM, exit 143)"),
        (130, "interrupted", "interrupted (Ctrl-C, exit 130)"),
        (1, "failed", "failed: RuntimeError: boom"),
        (-9, "running", "killed (signal 9) before it could record why"),
    ],
)
def test_sweeps_count_stopped_points_as_failed_and_say_why(
    tmp_path: Path, returncode: int, status: str, expected: str
) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"status": status, "error": "RuntimeError: boom"}))
    assert failure_reason(returncode, tmp_path) == expected
