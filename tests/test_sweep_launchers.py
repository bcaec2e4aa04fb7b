"""Sweep launchers: the launcher config group, SLURM through submitit (sbatch scripts against golden files, a
fake ``sbatch``, submitit's local executor end to end, pre-emption and requeue), crashed points, early
termination of a local point, and the W&B agent launcher against a fake W&B."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from src.analysis.results import sweep_columns
from src.analysis.runs import load_sweep
from src.sweep import main, run_sweep
from src.sweeping import load_sweep_spec
from src.sweeping.launchers import (
    Job,
    LauncherConfigError,
    load_launcher_config,
    make_launcher,
)

REPO = Path(__file__).resolve().parents[1]
EXPECTED = Path(__file__).parent / "expected"

# Stands in for ``python -m src.train``: epochs of a made-up metric (1 - lr + epoch/100) in metrics.csv, a
# SIGTERM stops it after the current epoch with checkpoints/last.ckpt (exit 143), resume=<dir> continues,
# a negative learning rate crashes with a recorded error, as src.train does.
FAKE_TRAIN = """\
#!{python}
import json, os, signal, sys, time
from pathlib import Path

args = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
if "resume" in args:
    run_dir = Path(args["resume"])
    saved = json.loads((run_dir / "checkpoints" / "last.ckpt").read_text())
    args, start = saved["args"], saved["epoch"]
    print("resumed at epoch", start, flush=True)
else:
    run_dir = Path(args["run.dir"])
    run_dir.mkdir(parents=True)
    start = 0
env = {{k: os.environ.get(k, "") for k in ("PROFACE_REQUEUE_OWNER",)}}

def meta(status, **extra):
    (run_dir / "meta.json").write_text(json.dumps({{"status": status, "env": env, **extra}}))

meta("running")
print(f"RUN_DIR={{run_dir}}", flush=True)
lr = float(args.get("model.optimizer.lr", "0.1"))
if lr < 0:
    meta("failed", error=f"Traceback ...\\nValueError: Invalid learning rate: {{lr}}")
    print(f"ValueError: Invalid learning rate: {{lr}}", file=sys.stderr)
    sys.exit(1)
epochs, delay = int(args.get("trainer.max_epochs", "3")), float(args.get("fake.delay", "0.02"))
metrics = run_dir / "metrics.csv"
if not metrics.exists():
    metrics.write_text("epoch,val/rank1\\n")
value = None
for epoch in range(start, epochs):
    time.sleep(delay)
    value = round(1 - lr + epoch / 100, 6)
    with metrics.open("a") as f:
        f.write(f"{{epoch}},{{value}}\\n")
    if stop:
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        (run_dir / "checkpoints" / "last.ckpt").write_text(json.dumps({{"args": args, "epoch": epoch + 1}}))
        meta("terminated")
        sys.exit(143)
(run_dir / "summary.json").write_text(json.dumps({{"val/rank1": value}}))
meta("completed")
"""

SWEEP = """\
name: fake_lr
method: grid
metric: {{name: val/rank1, goal: maximize}}
parameters:
  model.optimizer.lr: {{values: {values}}}
{extra}command:
  - ${{env}}
  - ${{interpreter}}
  - -m
  - src.train
  - experiment=demo/recognizer
  - ${{args_no_hyphens}}
"""


@pytest.fixture
def fake_train(tmp_path: Path) -> str:
    path = tmp_path / "fake_train"
    path.write_text(FAKE_TRAIN.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def _sweep_file(tmp_path: Path, values: list[float], extra: str = "") -> Path:
    path = tmp_path / "fake_lr.yaml"
    path.write_text(SWEEP.format(values=json.dumps(values), extra=extra))
    return path


def _index(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "index.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sbatch`` that keeps each script it is given and prints a job id; ``srun`` so submitit sees SLURM."""
    bin_dir, scripts = tmp_path / "bin", tmp_path / "sbatch_scripts"
    bin_dir.mkdir()
    scripts.mkdir()
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\nn=$(ls {scripts} | wc -l)\ncp "$1" {scripts}/$n.sbatch\n'
        'echo "Submitted batch job 4242"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return scripts


# --- the launcher config group --------------------------------------------------------------------------


def test_an_unknown_launcher_setting_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(LauncherConfigError, match=r"no setting 'partion'; known: .*partition"):
        make_launcher("slurm", ["launcher.partion=gpu"], log_dir=tmp_path)
    with pytest.raises(LauncherConfigError, match=r"unknown launcher 'pbs'.*slurm"):
        make_launcher("pbs", log_dir=tmp_path)
    with pytest.raises(LauncherConfigError, match=r"launcher.nodes must be int"):
        make_launcher("slurm", ["launcher.nodes=two"], log_dir=tmp_path)
    with pytest.raises(LauncherConfigError, match=r"runs whole W&B sweeps"):
        make_launcher("wandb-agent", log_dir=tmp_path)


def test_launcher_settings_reach_the_executor(tmp_path: Path, fake_slurm: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("type: slurm\naccount: lab\nsetup: [module load cuda]\nsbatch: {mail-type: END}\n")
    launcher = make_launcher(
        "slurm",
        ["launcher.partition=gpu", "launcher.time=30", "launcher.mem_gb=64", "launcher.qos=high"],
        log_dir=tmp_path / "logs",
        config_file=site,
    )
    params = launcher.executor("sweep").parameters  # type: ignore[attr-defined]
    assert params["partition"] == "gpu" and params["time"] == 30 and params["mem"] == "64GB"
    assert params["qos"] == "high" and params["account"] == "lab" and params["setup"] == ["module load cuda"]
    assert params["additional_parameters"] == {"requeue": True, "mail-type": "END"}
    assert params["signal_delay_s"] == 120 and params["ntasks_per_node"] == 1 and params["gpus_per_node"] == 1


def test_launcher_errors_on_the_command_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = str(_sweep_file(tmp_path, [0.1]))
    site = tmp_path / "site.yaml"
    site.write_text("partition: gpu\n")
    assert main([sweep, "--launcher-config", str(site), "--dry-run"]) == 2
    assert "must say its type (type: slurm)" in capsys.readouterr().err
    assert main([sweep, "--launcher", "slurm", "launcher.time=-5", "--dry-run"]) == 2  # checked before a run
    assert "launcher.time must be at least 1" in capsys.readouterr().err
    assert main([sweep, "--no-wait", "--dry-run"]) == 2
    assert "--no-wait needs the slurm launcher" in capsys.readouterr().err
    assert main([sweep, "launcher=slurm", "--dry-run"]) == 2  # not a config group switch for the runs
    assert "choose the launcher with --launcher" in capsys.readouterr().err
    site.write_text("type: slurm\npartition: gpu\n")
    assert main([sweep, "--launcher-config", str(site), "--dry-run"]) == 0
    assert "launcher=slurm" in capsys.readouterr().out


def test_launcher_variants_inherit_their_type_defaults() -> None:
    multi = load_launcher_config("slurm_multinode", ["launcher.nodes=4"])
    assert multi["type"] == "slurm" and multi["nodes"] == 4 and multi["gpus_per_node"] == 4
    assert multi["signal_delay_s"] == 120  # from slurm.yaml
    assert load_launcher_config("local")["type"] == "local"


def test_launcher_settings_never_reach_the_runs(tmp_path: Path, fake_train: str) -> None:
    spec = load_sweep_spec(_sweep_file(tmp_path, [0.1]))
    result = run_sweep(
        spec,
        runs_root=tmp_path / "runs",
        extra_overrides=["launcher.poll_s=0.2", "trainer.max_epochs=2"],
        python=fake_train,
        echo=lambda line: None,
    )
    (command,) = result.commands
    assert "trainer.max_epochs=2" in command and not any(c.startswith("launcher.") for c in command)
    assert [row["status"] for row in result.rows] == ["ok"]


# --- sbatch scripts ---------------------------------------------------------------------------------------


def _jobs(n: int) -> list[Job]:
    return [
        Job(
            ["python", "-m", "src.train", "experiment=demo/recognizer", f"run.dir=/runs/p{i}"],
            Path(f"/runs/p{i}"),
            f"lr_sweep-{i:03d}",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("case", "name", "overrides", "n_jobs"),
    [
        ("single", "slurm", ["launcher.partition=gpu", "launcher.use_array=false"], 1),
        ("array", "slurm", ["launcher.partition=gpu", "launcher.array_parallelism=1"], 2),
        (
            "multinode",
            "slurm_multinode",
            [
                "launcher.partition=gpu",
                "launcher.time=60",
                "launcher.setup=[module load cuda/12.1, source .venv/bin/activate]",
            ],
            1,
        ),
    ],
)
def test_sbatch_scripts_match_the_expected_ones(
    tmp_path: Path, fake_slurm: Path, case: str, name: str, overrides: list[str], n_jobs: int
) -> None:
    log_dir = tmp_path / "sweep" / "slurm"
    launcher = make_launcher(name, overrides, log_dir=log_dir, echo=lambda line: None)
    handles = launcher.submit(_jobs(n_jobs))  # type: ignore[attr-defined]
    assert [h.job_id for h in handles] == (["4242"] if n_jobs == 1 else ["4242_0", "4242_1"])
    (script,) = fake_slurm.iterdir()  # one sbatch call, an array for several jobs
    text = script.read_text().replace(str(log_dir), "<LOG_DIR>").replace(sys.executable, "<PYTHON>")
    assert text == (EXPECTED / f"sbatch_{case}.sbatch").read_text()
    if case == "multinode":  # every task runs the point with the job's layout
        task = launcher.tasks(_jobs(1))[0]  # type: ignore[attr-defined]
        assert task.job.command[-2:] == ["trainer.num_nodes=2", "trainer.devices=4"]


def test_no_wait_submits_and_status_fills_the_index_later(
    tmp_path: Path, fake_slurm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_root = tmp_path / "runs"
    sweep_file = _sweep_file(tmp_path, [0.1, 0.2, 0.3])
    code = main(
        [
            str(sweep_file),
            "--runs-root",
            str(runs_root),
            "--launcher",
            "slurm",
            "--no-wait",
            "launcher.partition=gpu",
        ]
    )
    assert code == 0
    (sweep_dir,) = (runs_root / "sweeps" / "fake_lr").iterdir()
    rows = _index(sweep_dir)
    assert [r["status"] for r in rows] == ["submitted"] * 3
    assert [r["job_id"] for r in rows] == ["4242_0", "4242_1", "4242_2"]
    assert [r["log"] for r in rows] == [f"slurm/4242_{i}_0_log.out" for i in range(3)]
    assert json.loads((sweep_dir / "sweep.json").read_text())["launcher"]["partition"] == "gpu"
    assert [r["run_dir"] for r in rows] == ["", "", ""]  # not made yet (readers open every run_dir listed)
    # later: point 0 completed, point 1 failed, point 2 still queued
    for point, meta in (
        (0, {"status": "completed"}),
        (1, {"status": "failed", "error": "x\nValueError: bad"}),
    ):
        run_dir = sweep_dir / "points" / f"00{point}"
        run_dir.mkdir(parents=True)
        (run_dir / "meta.json").write_text(json.dumps(meta))
    (sweep_dir / "points" / "000" / "summary.json").write_text(json.dumps({"val/rank1": 0.75}))
    assert main(["--status", str(sweep_dir)]) == 1
    rows = _index(sweep_dir)
    assert [r["status"] for r in rows] == ["ok", "failed", "submitted"]
    assert [r["run_dir"] for r in rows] == ["points/000", "points/001", ""]
    table = load_sweep(sweep_dir / "index.csv")  # the analysis readers take it as it is
    assert list(table["val/rank1"][:1]) == [0.75]
    assert sweep_columns(sweep_dir / "index.csv") == (["model.optimizer.lr"], "val/rank1")
    assert rows[0]["val/rank1"] == "0.75" and rows[1]["reason"] == "failed: ValueError: bad"
    assert "1 failed, 1 ok, 1 submitted" in capsys.readouterr().out


# --- submitit's local executor: the same jobs without a cluster -------------------------------------------


def test_a_crashed_point_is_failed_with_its_reason_and_the_others_complete(
    tmp_path: Path, fake_train: str
) -> None:
    spec = load_sweep_spec(_sweep_file(tmp_path, [0.1, -1.0, 0.3]))
    lines: list[str] = []
    result = run_sweep(
        spec,
        runs_root=tmp_path / "runs",
        launcher_name="slurm_local",
        extra_overrides=["launcher.poll_s=0.2"],
        python=fake_train,
        echo=lines.append,
    )
    rows = result.rows
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["reason"] == "failed: ValueError: Invalid learning rate: -1.0"
    assert rows[0]["val/rank1"] == pytest.approx(0.92) and rows[2]["val/rank1"] == pytest.approx(0.72)
    assert all(r["job_id"] for r in rows) and len({r["job_id"] for r in rows}) == 3
    assert all((result.sweep_dir / r["log"]).is_file() for r in rows)  # type: ignore[operator]
    assert result.n_failed == 1
    meta = json.loads((result.sweep_dir / rows[0]["run_dir"] / "meta.json").read_text())  # type: ignore[operator]
    assert meta["env"]["PROFACE_REQUEUE_OWNER"] == "submitit"  # the run leaves requeueing to submitit


def test_a_killed_job_is_failed_and_the_other_completes(tmp_path: Path, fake_train: str) -> None:
    launcher = make_launcher(
        "slurm_local",
        ["launcher.poll_s=0.2", "launcher.use_array=false"],
        log_dir=tmp_path / "slurm",
        echo=lambda line: None,
    )
    jobs = [
        Job(
            [
                fake_train,
                "-m",
                "src.train",
                f"run.dir={tmp_path / f'p{i}'}",
                f"fake.delay={d}",
                "trainer.max_epochs=3",
            ],
            tmp_path / f"p{i}",
            f"p{i}",
        )
        for i, d in enumerate((0.02, 5.0))
    ]
    handles = launcher.submit(jobs)  # type: ignore[attr-defined]
    task = _submitit_task(handles[1])
    task.send_signal(signal.SIGKILL)
    results = launcher.wait(jobs, handles)  # type: ignore[attr-defined]
    assert results[0].returncode == 0
    assert results[1].returncode == -1 and "ended without a result" in results[1].reason
    for child in psutil.Process().children(recursive=True):  # the killed job's run, orphaned
        if str(jobs[1].run_dir) in " ".join(child.cmdline()):
            child.kill()


def _submitit_task(handle: Any, timeout: float = 30) -> psutil.Process:
    """The ``python -m submitit.core._submit`` process of a local job (under its controller)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(handle._process.pid).children():
            if "submitit.core._submit" in " ".join(child.cmdline()):
                return child
        time.sleep(0.1)
    raise AssertionError("the job's task process did not start")


def _rows_of(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


def test_a_preempted_job_is_requeued_and_resumes(tmp_path: Path, fake_train: str) -> None:
    """Submitit's pre-emption signal: the run stops with last.ckpt, the job is requeued and the run
    continues from it (resume=<run dir>), ending with the metrics of an uninterrupted run."""
    launcher = make_launcher(
        "slurm_local", ["launcher.poll_s=0.2"], log_dir=tmp_path / "slurm", echo=lambda x: None
    )
    job = Job(
        [
            fake_train,
            "-m",
            "src.train",
            f"run.dir={tmp_path / 'p'}",
            "fake.delay=0.3",
            "trainer.max_epochs=8",
        ],
        tmp_path / "p",
        "p",
    )
    (handle,) = launcher.submit([job])  # type: ignore[attr-defined]
    task = _submitit_task(handle)
    deadline = time.monotonic() + 30
    while _rows_of(job.run_dir / "metrics.csv") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    task.send_signal(signal.SIGUSR2)
    (result,) = launcher.wait([job], [handle])  # type: ignore[attr-defined]
    assert result.returncode == 0 and result.requeues == 1, result
    log = result.log_path.read_text()  # type: ignore[union-attr]
    assert "resuming" in log and "resumed at epoch" in log
    expected = [f"{epoch},{round(1 - 0.1 + epoch / 100, 6)}" for epoch in range(8)]
    assert (job.run_dir / "metrics.csv").read_text().splitlines()[1:] == expected


def test_a_requeued_task_resumes_from_last_ckpt_or_starts_over(tmp_path: Path) -> None:
    from src.sweeping.launch.slurm import PointTask

    run_dir = tmp_path / "p"
    train = ["python", "-m", "src.train", "experiment=demo/recognizer", f"run.dir={run_dir}"]
    task = PointTask(Job(train, run_dir, "p"), stop_timeout_s=1, max_requeues=1)
    assert task.command_now(rank=0) == train  # first attempt
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "meta.json").write_text("{}")
    (run_dir / "checkpoints" / "last.ckpt").write_text("x")
    assert task.command_now(rank=0) == ["python", "-m", "src.train", f"resume={run_dir}"]
    (run_dir / "checkpoints" / "last.ckpt").unlink()  # stopped before any checkpoint: start over
    assert task.command_now(rank=0) == train
    assert not run_dir.exists() and (tmp_path / "p.attempt-1" / "meta.json").is_file()
    evaluate = ["python", "-m", "src.eval", f"run.dir={run_dir}"]  # only training runs resume
    run_dir.mkdir()
    (run_dir / "meta.json").write_text("{}")
    assert PointTask(Job(evaluate, run_dir, "p"), stop_timeout_s=1, max_requeues=1).command_now(0) == evaluate
    assert (tmp_path / "p.attempt-2" / "meta.json").is_file()


# --- early termination (local launcher) -----------------------------------------------------------------


def test_hyperband_stops_a_lagging_local_point(tmp_path: Path, fake_train: str) -> None:
    extra = "early_terminate: {type: hyperband, min_iter: 1, eta: 3}\n"
    spec = load_sweep_spec(_sweep_file(tmp_path, [0.1, 0.2, 0.9], extra))
    lines: list[str] = []
    start = time.monotonic()
    result = run_sweep(
        spec,
        runs_root=tmp_path / "runs",
        extra_overrides=["launcher.poll_s=0.1", "trainer.max_epochs=40", "fake.delay=0.1"],
        python=fake_train,
        echo=lines.append,
    )
    rows = result.rows
    # eta=3: at each band only the best third goes on; point 0 was alone when it got there
    assert [r["status"] for r in rows] == ["ok", "stopped_early", "stopped_early"]
    assert rows[2]["reason"].startswith("stopped early: hyperband: band 1") and rows[2]["returncode"] == 143
    logged = (result.sweep_dir / rows[2]["run_dir"] / "metrics.csv").read_text().splitlines()  # type: ignore[operator]
    assert rows[2]["val/rank1"] == float(logged[-1].split(",")[1])  # the last value it logged
    assert result.n_failed == 0 and time.monotonic() - start < 20
    for row in rows[1:]:  # stopped long before their 40 epochs
        assert _rows_of(result.sweep_dir / row["run_dir"] / "metrics.csv") < 10  # type: ignore[operator]
    assert _rows_of(result.sweep_dir / rows[0]["run_dir"] / "metrics.csv") == 40  # type: ignore[operator]
    assert any("stopping fake_lr-001 early" in line for line in lines)


def test_bayes_proposes_points_from_results_locally_and_in_slurm_waves(
    tmp_path: Path, fake_train: str
) -> None:
    """bayes: the local launcher asks for each point after the last one's metric; the slurm launcher asks
    for ``launcher.parallel`` points at a time (submit a wave, wait, tell, next wave)."""
    sweep = tmp_path / "bayes.yaml"
    sweep.write_text(
        _sweep_file(tmp_path, [0.1])
        .read_text()
        .replace("method: grid", "method: bayes")
        .replace("model.optimizer.lr: {values: [0.1]}", "model.optimizer.lr: {min: 0.0, max: 0.5}")
    )
    spec = load_sweep_spec(sweep)
    for name, extra in (("local", []), ("slurm_local", ["launcher.parallel=2", "launcher.poll_s=0.2"])):
        lines: list[str] = []
        result = run_sweep(
            spec,
            count=4,
            runs_root=tmp_path / name,
            launcher_name=name,
            extra_overrides=extra,
            python=fake_train,
            echo=lines.append,
        )
        assert [r["status"] for r in result.rows] == ["ok"] * 4
        lrs = [float(r["model.optimizer.lr"]) for r in result.rows]
        assert all(0 <= lr <= 0.5 for lr in lrs)
        for row in result.rows:  # each metric read back from the point's own summary
            assert row["val/rank1"] == pytest.approx(1 - float(row["model.optimizer.lr"]) + 0.02)
        assert (result.sweep_dir / "search.db").is_file()  # type: ignore[operator]
        waves = [line for line in lines if line.startswith("wave of")]
        assert waves == ([] if name == "local" else ["wave of 2 point(s): 0..1", "wave of 2 point(s): 2..3"])


# --- a real training through submitit's local executor -----------------------------------------------------


def _tiny(runs_root: Path) -> list[str]:
    from tests.helpers import tiny_overrides

    return tiny_overrides("demo/recognizer", runs_root, extra=["test=false"])


@pytest.mark.slow
def test_slurm_launcher_runs_a_real_two_point_sweep(tmp_path: Path) -> None:
    runs_root = tmp_path / "runs"
    code = main(
        [
            "experiments/sweeps/demo_recognizer_lr.yaml",
            "--runs-root",
            str(runs_root),
            "--count",
            "2",
            "--launcher",
            "slurm_local",
            "launcher.poll_s=0.5",
            *_tiny(runs_root),
        ]
    )
    assert code == 0
    (sweep_dir,) = (runs_root / "sweeps" / "demo_recognizer_lr").iterdir()
    rows = _index(sweep_dir)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(0 <= float(r["val/rank1"]) <= 1 for r in rows)
    assert all(r["job_id"] and (sweep_dir / r["log"]).is_file() for r in rows)
    for row in rows:
        meta = json.loads((sweep_dir / row["run_dir"] / "meta.json").read_text())
        assert meta["status"] == "completed" and meta["sweep"]["point"] == int(row["point"])


@pytest.mark.slow
def test_a_preempted_real_run_resumes_with_the_metrics_of_an_uninterrupted_one(tmp_path: Path) -> None:
    """Two jobs of the same point through submitit's local executor: one gets submitit's pre-emption signal
    while it trains (the run stops at a batch boundary with last.ckpt, the job is requeued and resumes), the
    other runs straight through; both end with the same summary and metrics.csv."""
    from tests.interruptions import EXPERIMENT, SETTINGS, same_run

    base = [
        sys.executable,
        "-m",
        "src.train",
        f"experiment={EXPERIMENT}",
        *_tiny(tmp_path / "runs"),
        *SETTINGS,
    ]
    jobs = [
        Job([*base, f"run.dir={tmp_path / name}"], tmp_path / name, name)
        for name in ("straight", "preempted")
    ]
    launcher = make_launcher(
        "slurm_local", ["launcher.poll_s=0.5", "launcher.use_array=false"], log_dir=tmp_path / "slurm"
    )
    handles = launcher.submit(jobs)  # type: ignore[attr-defined]
    task = _submitit_task(handles[1], timeout=300)
    deadline = time.monotonic() + 300
    while _rows_of(jobs[1].run_dir / "metrics.csv") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # the first training step is logged: the run is inside the training loop
    task.send_signal(signal.SIGUSR2)
    straight, preempted = launcher.wait(jobs, handles)  # type: ignore[attr-defined]
    assert straight.returncode == 0 and straight.requeues == 0, straight
    assert preempted.returncode == 0 and preempted.requeues == 1, preempted
    log = preempted.log_path.read_text()  # type: ignore[union-attr]
    assert "requeued: resuming" in log, log[-3000:]
    meta = json.loads((jobs[1].run_dir / "meta.json").read_text())
    assert meta["status"] == "completed"
    same_run(jobs[0].run_dir, jobs[1].run_dir)


# --- the W&B agent launcher (a fake W&B: no network beyond 127.0.0.1) -------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server_port() -> Any:
    """A port on 127.0.0.1 that accepts connections (the reachability check's only need)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_wandb_agent_refuses_an_unreachable_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    port = _closed_port()
    args = [str(_sweep_file(tmp_path, [0.1])), "--launcher", "wandb-agent", "launcher.timeout_s=2"]
    assert main([*args, f"launcher.base_url=http://127.0.0.1:{port}"]) == 2
    assert f"cannot reach the W&B server at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_wandb_agent_needs_an_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server_port: int
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine elsewhere.example login user password not-for-this-server\n")
    monkeypatch.setenv("NETRC", str(netrc))
    args = [str(_sweep_file(tmp_path, [0.1])), "--launcher", "wandb-agent"]
    assert main([*args, f"launcher.base_url=http://127.0.0.1:{server_port}"]) == 2
    err = capsys.readouterr().err
    assert f"no W&B API key for http://127.0.0.1:{server_port}" in err and "wandb login" in err


def test_wandb_agent_creates_the_sweep_and_runs_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server_port: int
) -> None:
    import wandb

    key = "secret-" + "x" * 33
    monkeypatch.setenv("WANDB_API_KEY", key)
    sent: dict[str, Any] = {}

    def fake_sweep(config: dict[str, Any], project: str | None = None, entity: str | None = None) -> str:
        sent.update(config=config, project=project, entity=entity)
        return "sw33p"

    monkeypatch.setattr(wandb, "sweep", fake_sweep)
    bin_dir, record = tmp_path / "bin", tmp_path / "agent.json"
    bin_dir.mkdir()
    (bin_dir / "wandb").write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'mode': os.environ.get('WANDB_MODE'), "
        f"'path0': os.environ['PATH'].split(os.pathsep)[0]}}, open({str(record)!r}, 'w'))\n"
    )
    (bin_dir / "wandb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code = main(
        [
            str(_sweep_file(tmp_path, [0.1, 0.2])),
            "--launcher",
            "wandb-agent",
            "--count",
            "3",
            f"launcher.base_url=http://127.0.0.1:{server_port}",
            "launcher.project=lab",
            "parameters.model.optimizer.lr.values=[0.5]",
            "trainer.max_epochs=2",
        ]
    )
    assert code == 0
    config = sent["config"]
    assert sent["project"] == "lab" and sent["entity"] is None
    assert config["name"] == "fake_lr" and config["method"] == "grid"
    assert config["parameters"] == {"model.optimizer.lr": {"values": [0.5]}}  # the command line's change
    assert config["metric"] == {"name": "val/rank1", "goal": "maximize"}
    assert config["command"] == [
        "${env}",
        "${interpreter}",
        "-m",
        "src.train",
        "experiment=demo/recognizer",
        "trainer.max_epochs=2",
        "logger.wandb.mode=online",
        "sweep.name=fake_lr",
        "${args_no_hyphens}",
    ]
    agent = json.loads(record.read_text())
    assert agent["argv"] == ["agent", "--count", "3", "lab/sw33p"] and agent["mode"] == "online"
    assert agent["path0"] == str(Path(sys.executable).parent)  # ${interpreter} (python) is this environment's
    out = capsys.readouterr()
    assert key not in out.out + out.err and "API key from WANDB_API_KEY" in out.out
