"""Multi-node DDP through Lightning's SLURM environment, emulated on one machine (CPU, gloo).

A 2-node job with one task per node is two processes started with the variables ``srun`` sets
(``SLURM_PROCID`` 0 and 1, ``SLURM_NODEID`` 0 and 1, ``SLURM_NTASKS=2``, ``SLURM_NNODES=2``, ...), each
running the same ``python -m src.train ... trainer=slurm`` command; nothing is exported from one rank to the
other, as under ``srun``. Both use one thread (``OMP_NUM_THREADS=1``), as does the plain 2-process ``ddp``
run they are compared with: with the same thread count nothing differs, so weights, ``metrics.csv`` and
final metrics must be identical.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from src.config.errors import ConfigError
from src.tasks import _device_count, _resume_requeued_slurm_job, check_slurm_layout
from src.utils.signals import GracefulStop, RunStopped, SignalWatch, requeue_owner
from tests.helpers import PROJECT_ROOT, composed, run_cli, run_dir_from_output, run_experiment, tiny_overrides
from tests.interruptions import EXPERIMENT, SETTINGS, same_run

pytestmark = pytest.mark.ddp

JOB = "31337"
SLURM = "trainer=slurm"  # GPU in the file; the tiny settings switch it to the CPU
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SIGNAL_EVERY_RANK = (
    "+callbacks.interrupt={_target_: tests.test_ddp_slurm.SignalEveryRank, step: %d, signal: %s}"
)


class SignalEveryRank(pl.Callback):
    """Send ``signal`` to this process after training step ``step``, on every rank: SLURM signals every task
    of a job (pre-emption, time limit)."""

    def __init__(self, step: int, signal: str = "SIGTERM") -> None:
        self.step = int(step)
        self.signal = signal

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Signal once, at the chosen optimizer step."""
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signal))


@dataclass
class Task:
    """One finished SLURM task (one rank)."""

    rank: int
    returncode: int
    output: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _srun(
    args: list[str], logs: Path, job: str = JOB, env: dict[str, str] | None = None, **per_rank: list[str]
) -> list[Task]:
    """Start ``python -m src.train args`` as the two tasks of a 2-node SLURM job (one task per node) and
    wait for both; ``rank1=[...]`` adds arguments for one rank only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PROFACE_RUN_"))}
    for key in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        base.pop(key, None)
    base |= {
        "PYTHONUNBUFFERED": "1",
        **ONE_THREAD,
        "SLURM_JOB_ID": job,
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "2",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NODELIST": "node[0-1]",
        "SLURM_LOCALID": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        **(env or {}),
    }
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    for rank in (0, 1):
        log = (logs / f"rank{rank}.log").open("w")
        command = [sys.executable, "-m", "src.train", *args, *per_rank.get(f"rank{rank}", [])]
        rank_env = {**base, "SLURM_PROCID": str(rank), "SLURM_NODEID": str(rank)}
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=rank_env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append((rank, process, log))
    deadline = time.monotonic() + 300
    try:
        for _, process, _ in started:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for _, process, log in started:
            if process.poll() is None:  # a rank that waits for a peer that is gone
                process.kill()
                process.wait()
            log.close()
    return [
        Task(rank, int(process.returncode), (logs / f"rank{rank}.log").read_text())
        for rank, process, _ in started
    ]


def _meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]


def _assert_same_weights(expected: Path, got: Path) -> None:
    first, second = _weights(expected), _weights(got)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first), "trained weights differ"


def test_two_node_slurm_job_trains_one_run_identical_to_plain_ddp(tmp_path: Path) -> None:
    """Lightning picks SLURMEnvironment, world size 2 over 2 nodes; without run.dir both ranks derive
    ``slurm-<job>``, rank 0 alone writes the record, and the result equals a 2-process ddp run bit for bit."""
    plain_runs, slurm_runs = tmp_path / "plain", tmp_path / "slurm"
    plain = run_dir_from_output(
        run_cli(
            "src.train",
            [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, plain_runs, extra=["trainer=ddp_cpu"])],
            env=ONE_THREAD,
        )
    )
    args = [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, slurm_runs, extra=[SLURM])]
    tasks = _srun(args, tmp_path / "logs")
    assert [task.returncode for task in tasks] == [0, 0], tasks[0].output[-3000:] + tasks[1].output[-3000:]
    run_dir = run_dir_from_output(tasks[0].output)  # rank 0 names the run it writes
    assert "RUN_DIR=" not in tasks[1].output
    assert run_dir == (slurm_runs / EXPERIMENT / f"slurm-{JOB}").resolve()
    assert [path.name for path in (slurm_runs / EXPERIMENT).iterdir()] == [f"slurm-{JOB}"]
    meta = _meta(run_dir)
    assert meta["status"] == "completed" and meta["cluster_environment"] == "SLURMEnvironment"
    assert (meta["world_size"], meta["num_nodes"], meta["num_processes_per_node"]) == (2, 2, 1)
    assert meta["strategy"] == "ddp" and meta["accelerator"] == "cpu"
    slurm = meta["slurm"]
    assert slurm["job_id"] == JOB and (slurm["nodes"], slurm["tasks"], slurm["tasks_per_node"]) == (2, 2, 1)
    assert slurm["node_list"] == "node[0-1]" and slurm["requeue_owner"] == "run"
    assert _meta(plain)["cluster_environment"] == "LightningEnvironment" and _meta(plain)["slurm"] is None
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / "checkpoints").glob(".*.tmp"))
    same_run(plain, run_dir)
    _assert_same_weights(plain, run_dir)


def test_ranks_given_different_run_dirs_all_stop_with_one_error(tmp_path: Path) -> None:
    """Each SLURM task chooses its run directory itself: when they differ (here rank 1 is given another
    run.dir) every rank stops with the same error before training, instead of a record no rank completes."""
    runs = tmp_path / "runs"
    args = [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, runs, extra=[SLURM])]
    tasks = _srun(
        [*args, f"run.dir={runs / 'mine'}"], tmp_path / "logs", rank1=[f"run.dir={runs / 'another'}"]
    )
    for task in tasks:
        assert task.returncode == 2, task.output[-3000:]
        assert "error: the ranks of this run chose different run directories" in task.output
        assert f"rank 0: {(runs / 'mine').resolve()}" in task.output
        assert f"rank 1: {(runs / 'another').resolve()}" in task.output
    meta = _meta(runs / "mine")
    assert meta["status"] == "failed_to_start" and "chose different run directories" in meta["error"]
    assert not (runs / "another").exists()  # only rank 0 writes a record


@pytest.fixture
def slurm_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process as global rank 0 of SLURM job 4242 (2 nodes, 2 tasks per node)."""
    for key in [k for k in os.environ if k.startswith("SLURM_")] + ["PROFACE_REQUEUE_OWNER"]:
        monkeypatch.delenv(key, raising=False)
    env = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "4",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_a_job_that_does_not_fit_the_trainer_names_both_numbers(
    slurm_env: dict[str, str], runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job of 2 nodes x 2 tasks per node against other trainer.devices / trainer.num_nodes: an error naming
    the trainer keys, their values and the job's, before a run directory exists; trainer=slurm takes both
    numbers from the job."""
    wrong = tiny_overrides(EXPERIMENT, runs_dir, extra=["trainer=ddp_cpu", "trainer.devices=3"])
    with pytest.raises(ConfigError) as caught:
        run_experiment(EXPERIMENT, wrong)
    message = str(caught.value)
    assert "trainer.devices=3 but the job has --ntasks-per-node=2 (SLURM_NTASKS_PER_NODE)" in message
    assert "trainer.num_nodes=1 but the job has --nodes=2 (SLURM_NNODES)" in message
    assert not runs_dir.joinpath(EXPERIMENT).exists()
    one_node_too_few = composed(EXPERIMENT, [*wrong, "trainer.devices=1", "trainer.num_nodes=2"])
    with pytest.raises(ConfigError, match=r"^this SLURM job does not fit the trainer: trainer.devices=1 but"):
        check_slurm_layout(one_node_too_few)
    single_process = composed(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=["trainer=cpu"]))
    check_slurm_layout(single_process)  # no process group: it never uses the other tasks (Lightning agrees)
    fitting = composed(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=[SLURM]))
    assert (fitting.trainer.devices, fitting.trainer.num_nodes) == (2, 2)
    check_slurm_layout(fitting)  # fits: no error
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE")
    with pytest.raises(ConfigError, match=r"4 tasks \(SLURM_NTASKS\) but no --ntasks-per-node"):
        check_slurm_layout(fitting)
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # Lightning's opt-out of its SLURM environment
    check_slurm_layout(fitting)


def test_lightning_checks_devices_it_resolves_itself_and_the_record_keeps_its_message(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``devices=auto`` is resolved by Lightning (1 on the CPU): its own check names both numbers and the
    run's ``meta.json`` records it as ``failed_to_start``."""
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    for key, value in {"SLURM_JOB_ID": "4243", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "2"}.items():
        monkeypatch.setenv(key, value)
    for key, value in {"SLURM_NNODES": "1", "SLURM_NTASKS_PER_NODE": "2", "SLURM_PROCID": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SLURM_LOCALID", "0")
    monkeypatch.setenv("SLURM_NODEID", "0")
    overrides = tiny_overrides(EXPERIMENT, runs_dir, extra=[SLURM, "trainer.devices=auto"])
    with pytest.raises(ValueError, match=r"`devices=1`.*`--ntasks-per-node=2` does not match"):
        run_experiment(EXPERIMENT, overrides)
    meta = _meta(runs_dir / EXPERIMENT / "slurm-4243")
    assert meta["status"] == "failed_to_start" and "--ntasks-per-node=2" in meta["error"]


def test_device_counts_the_layout_check_understands() -> None:
    assert [_device_count(d) for d in (2, "3", "0,1", [0, 1, 2], -1, "auto", "-1", None)] == [
        2,
        3,
        2,
        3,
        None,
        None,
        None,
        None,
    ]


@pytest.fixture
def fake_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``scontrol`` on PATH that records its arguments in the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def _requeue_signal_outside_training(watch: SignalWatch) -> None:
    with pytest.raises(RunStopped, match="requeue signal"), watch.installed():
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs (and raises) right after this call


def test_the_run_requeues_its_job_from_rank_0_only(
    slurm_env: dict[str, str], fake_scontrol: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every task of a multi-node job gets SLURM's requeue signal; only global rank 0 calls scontrol."""
    monkeypatch.setenv("SLURM_PROCID", "1")
    other_rank = SignalWatch()
    _requeue_signal_outside_training(other_rank)
    assert not fake_scontrol.exists() and other_rank.requeued is None
    monkeypatch.setenv("SLURM_PROCID", "0")
    rank_zero = SignalWatch()
    _requeue_signal_outside_training(rank_zero)
    assert fake_scontrol.read_text().split() == ["requeue", "4242"] and rank_zero.requeued is True


def test_a_submitit_child_never_requeues_its_job(
    slurm_env: dict[str, str], fake_scontrol: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PROFACE_REQUEUE_OWNER=submitit`` (set by the submitit launcher, which requeues the job itself): the
    requeue signal still stops the run (outside training at once, in training with last.ckpt) but scontrol
    is never called, and the stop record says who requeues."""
    monkeypatch.setenv("PROFACE_REQUEUE_OWNER", "submitit")
    assert requeue_owner() == "submitit"
    watch = SignalWatch()
    _requeue_signal_outside_training(watch)
    assert watch.requeue_left_to == "submitit" and watch.requeued is None
    in_training = SignalWatch()
    in_training.requeue_requested = True
    stop = GracefulStop(in_training, "unused")
    stop.on_exception(SimpleNamespace(is_global_zero=True), None, SIGTERMException())  # type: ignore[arg-type]
    assert stop.stop_record()["requeue_left_to"] == "submitit" and "requeued" not in stop.stop_record()
    assert not fake_scontrol.exists()
    monkeypatch.setenv("PROFACE_REQUEUE_OWNER", "slurm")
    with pytest.raises(ConfigError, match=r"PROFACE_REQUEUE_OWNER='slurm' is not a requeue owner"):
        requeue_owner()
    monkeypatch.delenv("PROFACE_REQUEUE_OWNER")
    assert requeue_owner() == "run"


@pytest.mark.parametrize("named", ["nothing", "run.id", "run.dir"])
def test_a_requeued_job_finds_its_run_directory_on_every_rank(
    slurm_env: dict[str, str], runs_dir: Path, monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    """The requeued job reruns its command: it resumes ``slurm-<job>``, or the run.id / run.dir the command
    names (the submitit launcher gives run.dir), once that directory has a record and a last checkpoint."""
    overrides, run_dir = {
        "nothing": ([], runs_dir / EXPERIMENT / "slurm-4242"),
        "run.id": (["run.id=mine"], runs_dir / EXPERIMENT / "mine"),
        "run.dir": ([f"run.dir={runs_dir / 'point-3'}"], runs_dir / "point-3"),
    }[named]
    cfg = composed(EXPERIMENT, tiny_overrides(EXPERIMENT, runs_dir, extra=overrides))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    _resume_requeued_slurm_job(cfg, "train")
    assert cfg.resume is None  # nothing to resume yet: the command starts the run
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "meta.json").write_text("{}")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    _resume_requeued_slurm_job(cfg, "train")
    assert cfg.resume is None  # not requeued: a second run in the same job is a new run
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    _resume_requeued_slurm_job(cfg, "train")
    assert cfg.resume == str(run_dir)


@pytest.fixture(scope="module")
def straight_slurm_settings_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted 2-process ddp run (3 epochs of 4 steps) the pre-empted SLURM jobs must equal."""
    runs = tmp_path_factory.mktemp("straight")
    args = [
        f"experiment={EXPERIMENT}",
        *tiny_overrides(EXPERIMENT, runs, extra=[*SETTINGS, "trainer=ddp_cpu"]),
    ]
    return run_dir_from_output(run_cli("src.train", args, env=ONE_THREAD))


@pytest.mark.slow  # two 2-process runs each (plus the shared straight run): 60-170 s on a busy 2-core machine
@pytest.mark.parametrize("launcher", ["srun", "submitit"])
def test_a_preempted_two_node_job_stops_every_rank_at_one_batch_and_the_requeued_job_ends_identical(
    tmp_path: Path, straight_slurm_settings_run: Path, launcher: str
) -> None:
    """SLURM signals every task: both ranks stop after the same batch, last.ckpt is written there once, both
    exit 143 and the record says ``preempted``; the requeued job (``SLURM_RESTART_COUNT=1``, same command)
    resumes the same run directory and ends identical to the uninterrupted run.

    ``srun``: SIGTERM, no run.dir (both ranks use ``slurm-<job>``). ``submitit``: what the submitit launcher
    starts: an explicit run.dir, ``PROFACE_REQUEUE_OWNER=submitit``, and SLURM's requeue signal, which must
    checkpoint and stop without ``scontrol requeue``.
    """
    runs = tmp_path / "runs"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    extra = [*SETTINGS, SLURM]
    if launcher == "submitit":
        env["PROFACE_REQUEUE_OWNER"] = "submitit"
        extra.append(f"run.dir={runs / 'point-0'}")
    args = [f"experiment={EXPERIMENT}", *tiny_overrides(EXPERIMENT, runs, extra=extra)]
    signal_name = "SIGTERM" if launcher == "srun" else "SIGUSR1"
    stopped = _srun([*args, SIGNAL_EVERY_RANK % (5, signal_name)], tmp_path / "first", env=env)
    for task in stopped:
        assert task.returncode == 143, task.output[-3000:]
    run_dir = run_dir_from_output(stopped[0].output)
    expected_dir = runs / "point-0" if launcher == "submitit" else runs / EXPERIMENT / f"slurm-{JOB}"
    assert run_dir == expected_dir.resolve()
    meta = _meta(run_dir)
    assert meta["status"] == "preempted" and meta["stop"]["checkpoint"].endswith("last.ckpt")
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 5 and len(last["callbacks"]["ExactResume"]["ranks"]) == 2
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))
    assert not calls.exists()  # SIGTERM never requeues; under submitit the launcher requeues, not the run
    if launcher == "submitit":
        assert meta["stop"]["requeue_left_to"] == "submitit" and meta["slurm"]["requeue_owner"] == "submitit"
    requeued = _srun(
        [*args, SIGNAL_EVERY_RANK % (-1, signal_name)],
        tmp_path / "requeued",
        env={**env, "SLURM_RESTART_COUNT": "1"},
    )
    for task in requeued:
        assert task.returncode == 0, task.output[-3000:]
    assert f"SLURM job {JOB} was requeued: resuming {expected_dir}" in requeued[0].output
    assert run_dir_from_output(requeued[0].output) == run_dir
    meta = _meta(run_dir)
    assert (
        meta["status"] == "completed" and len(meta["resumed_at"]) == 1 and meta["slurm"]["restart_count"] == 1
    )
    same_run(straight_slurm_settings_run, run_dir)
    _assert_same_weights(straight_slurm_settings_run, run_dir)
