"""A resumed 2-process DDP run (CPU, gloo) continues exactly like the uninterrupted one.

The same checks as ``tests/test_resume_exact.py`` with the CLI's DDP launcher: a crash at an epoch boundary
and a SIGTERM that reaches rank 0 only, each resumed with ``resume=<run dir>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli, run_dir_from_output, run_process, tiny_overrides
from tests.interruptions import CRASH, EXPERIMENT, SETTINGS, SIGNAL, same_run

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
@pytest.mark.slow  # 45 s; the default run keeps the epoch-boundary DDP resume above and the 1-process SIGTERM
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
