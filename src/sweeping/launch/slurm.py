"""The ``slurm`` launcher: every job is a SLURM job (or a task of one job array) submitted through submitit.

Each job runs :class:`PointTask`, a submitit ``Checkpointable`` that starts the job's command as a child
process and waits for it. Pre-emption and time limits: SLURM warns the job with submitit's signal
(``--signal=USR2@<signal_delay_s>``); submitit calls :meth:`PointTask.checkpoint`, which sends SIGTERM to the
run (it stops at the next batch boundary, writes ``checkpoints/last.ckpt`` and exits 143) and hands submitit
the task again, which requeues the job. The requeued job finds ``last.ckpt`` and runs
``python -m src.train resume=<run dir>`` instead of starting over. Submitit owns requeueing: the run is
started with ``PROFACE_REQUEUE_OWNER=submitit`` (it must not ``scontrol requeue`` itself) and with
submitit's signal ignored (SLURM signals every process of the job, and the run's reaction is the SIGTERM
sent here).

Multi-node (``nodes`` > 1 or several tasks per node): every task runs the same command and Lightning's
SLURM environment gives the ranks; ``trainer.num_nodes`` / ``trainer.devices`` are passed to the run unless
the command sets them. With ``cluster: local`` the same jobs run through submitit's local executor.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import FailedSubmissionError, UncompletedJobError
from submitit.helpers import Checkpointable, DelayedSubmission

from src.sweeping.launch.core import Echo, Job, LauncherConfigError, LaunchResult, config_value, wait_for_exit

__all__ = ["REQUEUE_OWNER_ENV", "PointTask", "SlurmLauncher", "read_status", "with_task_layout"]

REQUEUE_OWNER_ENV = "PROFACE_REQUEUE_OWNER"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
_ABANDONED = "abandoned"


def read_status(run_dir: Path) -> str | None:
    """The ``status`` a run's ``meta.json`` records, or None when there is no readable record."""
    import json

    try:
        meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("status") if isinstance(meta, dict) else None


def _is_train(command: Sequence[str]) -> bool:
    return len(command) >= 3 and command[1] == "-m" and command[2] == "src.train"


def with_task_layout(command: Sequence[str], nodes: int, tasks_per_node: int) -> list[str]:
    """``command`` plus ``trainer.num_nodes`` / ``trainer.devices`` for a job of several tasks (each task is
    one rank; Lightning's SLURM environment numbers them), unless the command sets them itself."""
    command = list(command)
    if nodes * tasks_per_node <= 1 or not _is_train(command):
        return command
    keys = {item.split("=", 1)[0].lstrip("+~") for item in command[3:] if "=" in item}
    extra = [f"trainer.num_nodes={nodes}"] if "trainer.num_nodes" not in keys else []
    extra += [f"trainer.devices={tasks_per_node}"] if "trainer.devices" not in keys else []
    return [*command, *extra]


class PointTask(Checkpointable):
    """One job's work inside submitit: run the command (or resume it after a requeue); see the module doc."""

    def __init__(self, job: Job, *, stop_timeout_s: float, max_requeues: int, grace_s: float = 0.0) -> None:
        self.job = job
        self.stop_timeout_s = stop_timeout_s
        self.max_requeues = max_requeues
        self.grace_s = grace_s  # on a cluster: how long to wait for the scheduler after the run got SIGTERM
        self.requeues = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._checkpointing = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_proc"] = None
        state["_checkpointing"] = False
        return state

    # --- the job ------------------------------------------------------------------------------------------
    def __call__(self) -> LaunchResult:
        env = submitit.JobEnvironment()
        rank = env.global_rank
        run_dir = self.job.run_dir
        if read_status(run_dir) == "completed":
            print(f"{run_dir} already holds the completed run: nothing to do", flush=True)
            return LaunchResult(0, run_dir, job_id=env.job_id, requeues=self.requeues)
        command = self.command_now(rank)
        print(f"job {env.job_id}, task {rank}: {shlex.join(command)}", flush=True)
        usr_sig = submitit.JobEnvironment._usr_sig()
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", REQUEUE_OWNER_ENV: "submitit"}
        sys.stdout.flush()
        self._proc = subprocess.Popen(command, env=child_env, preexec_fn=lambda: _ignore(usr_sig))
        while (returncode := self._proc.poll()) is None:
            time.sleep(0.5)
        if returncode == 143 and self.grace_s > 0 and not self._checkpointing:
            # SLURM sent SIGTERM to every process (pre-emption): its requeue signal or the kill may follow
            print(f"the run stopped on SIGTERM; waiting {self.grace_s:.0f} s for SLURM's requeue", flush=True)
            time.sleep(self.grace_s)
        return LaunchResult(returncode, run_dir, job_id=env.job_id, requeues=self.requeues)

    def command_now(self, rank: int) -> list[str]:
        """The command to run now: ``resume=<run dir>`` when an earlier attempt left ``last.ckpt``; an
        attempt that left a record but no checkpoint is moved aside (rank 0) and the run starts over."""
        command, run_dir = list(self.job.command), self.job.run_dir
        if not (run_dir / "meta.json").is_file():
            return command
        if _is_train(command) and (run_dir / LAST_CHECKPOINT).is_file():
            print(f"requeued: resuming {run_dir} from its last.ckpt", flush=True)
            return [*command[:3], f"resume={run_dir}"]
        if rank == 0:
            aside = _free_name(run_dir)
            run_dir.rename(aside)
            print(f"requeued: {run_dir} had no last.ckpt; the earlier attempt is kept as {aside}", flush=True)
        else:  # rank 0 moves it aside: wait until the earlier attempt's record is gone from here
            old = _stamp(run_dir / "meta.json")
            deadline = time.monotonic() + 120
            while _stamp(run_dir / "meta.json") == old and time.monotonic() < deadline:
                time.sleep(1)
        return command

    # --- pre-emption / time limit (called by submitit's signal handler) ---------------------------------
    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission | None:
        """Stop the run (SIGTERM: it writes last.ckpt and exits 143) and hand submitit this task to requeue;
        None (not requeued: the point fails) after ``max_requeues`` requeues."""
        self._checkpointing = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            print("pre-emption or time limit: stopping the run at a batch boundary", flush=True)
            proc.send_signal(signal.SIGTERM)
            returncode = wait_for_exit(proc, self.stop_timeout_s)
            if returncode is None:
                print(f"the run did not stop within {self.stop_timeout_s:.0f} s: killing it", flush=True)
                proc.kill()
                returncode = wait_for_exit(proc, 30)
            print(f"the run stopped (exit {returncode})", flush=True)
        if read_status(self.job.run_dir) == "completed":
            return DelayedSubmission(self)  # requeued only to report the finished run
        if self.requeues >= self.max_requeues:
            print(
                f"not requeued: {self.requeues} requeue(s) already (launcher.max_requeues); continue with "
                f"python -m src.train resume={self.job.run_dir}",
                flush=True,
            )
            return None
        self.requeues += 1
        return DelayedSubmission(self)


def _stamp(path: Path) -> tuple[int, int] | None:
    """``(inode, mtime)`` of a file, None when absent: tells one attempt's record from the next."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _ignore(signum: int) -> None:
    signal.signal(signum, signal.SIG_IGN)


def _free_name(run_dir: Path) -> Path:
    for n in range(1, 1000):
        candidate = run_dir.with_name(f"{run_dir.name}.attempt-{n}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free name to move {run_dir} aside")


# --- the launcher ----------------------------------------------------------------------------------------


@dataclass
class SlurmLauncher:
    """Submits jobs through submitit and waits for them; see the module docstring and ``slurm.yaml``."""

    config: dict[str, Any]
    log_dir: Path
    echo: Echo = print
    name: str = "slurm"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, log_dir: Path, echo: Echo = print) -> SlurmLauncher:
        """Check the settings (types, values) and make the launcher."""
        where = "slurm launcher"
        config = dict(config)
        if config.get("cluster") not in ("slurm", "local"):
            raise LauncherConfigError(
                f"{where}: launcher.cluster must be slurm or local (got {config.get('cluster')!r})"
            )
        for key in (
            "nodes",
            "gpus_per_node",
            "tasks_per_node",
            "cpus_per_task",
            "time",
            "array_parallelism",
            "parallel",
            "signal_delay_s",
            "max_requeues",
        ):
            value = config_value(config, key, int, where)
            minimum = 0 if key in ("gpus_per_node", "max_requeues") else 1
            if value is not None and value < minimum:
                raise LauncherConfigError(f"{where}: launcher.{key} must be at least {minimum} (got {value})")
        for key in ("mem_gb", "stop_timeout_s", "poll_s"):
            config_value(config, key, (int, float), where)
        for key in ("partition", "account", "qos", "constraint", "exclude", "python", "job_name"):
            config_value(config, key, str, where)
        for key in ("setup", "srun_args"):
            value = config_value(config, key, list, where) or []
            if not all(isinstance(v, str) for v in value):
                raise LauncherConfigError(
                    f"{where}: launcher.{key} must be a list of strings (got {value!r})"
                )
            config[key] = value
        config["sbatch"] = config_value(config, "sbatch", dict, where) or {}
        config_value(config, "use_array", bool, where)
        if config["cluster"] == "local" and (config.get("nodes") or 1) > 1:
            raise LauncherConfigError(
                f"{where}: launcher.cluster=local runs on one node (got launcher.nodes={config['nodes']})"
            )
        return cls(config=config, log_dir=Path(log_dir), echo=echo)

    @property
    def tasks_per_node(self) -> int:
        """Tasks (ranks) per node: the setting, else one per GPU, at least one."""
        given = self.config.get("tasks_per_node")
        return int(given) if given else max(1, int(self.config.get("gpus_per_node") or 0))

    @property
    def nodes(self) -> int:
        """Nodes per job."""
        return int(self.config.get("nodes") or 1)

    def executor(self, job_name: str) -> submitit.Executor:
        """The submitit executor with this launcher's settings (``SlurmExecutor`` or ``LocalExecutor``)."""
        c = self.config
        max_requeues = int(c.get("max_requeues") or 0)
        python = c.get("python")
        if c["cluster"] == "local":
            local = submitit.LocalExecutor(folder=self.log_dir, max_num_timeout=max_requeues, python=python)
            local.update_parameters(
                timeout_min=int(c["time"]),
                tasks_per_node=self.tasks_per_node,
                gpus_per_node=int(c.get("gpus_per_node") or 0),
                signal_delay_s=int(c["signal_delay_s"]),
                stderr_to_stdout=True,
                **({"setup": list(c["setup"])} if c["setup"] else {}),
            )
            return local
        executor = submitit.SlurmExecutor(folder=self.log_dir, max_num_timeout=max_requeues, python=python)
        params: dict[str, Any] = {
            "job_name": c.get("job_name") or job_name,
            "time": int(c["time"]),
            "nodes": self.nodes,
            "ntasks_per_node": self.tasks_per_node,
            "signal_delay_s": int(c["signal_delay_s"]),
            "array_parallelism": int(c["array_parallelism"]),
            "stderr_to_stdout": True,
        }
        if c.get("gpus_per_node"):
            params["gpus_per_node"] = int(c["gpus_per_node"])
        for key in ("partition", "account", "qos", "cpus_per_task", "constraint", "exclude"):
            if c.get(key) is not None:
                params[key] = c[key]
        if c.get("mem_gb") is not None:
            gb = float(c["mem_gb"])
            params["mem"] = f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"
        if c["setup"]:
            params["setup"] = list(c["setup"])
        if c["srun_args"]:
            params["srun_args"] = list(c["srun_args"])
        # requeueable (scontrol requeue after a pre-emption), and any site parameters
        params["additional_parameters"] = {"requeue": True, **dict(c["sbatch"])}
        try:
            executor.update_parameters(**params)
        except ValueError as err:
            raise LauncherConfigError(f"slurm launcher: {err}") from None
        return executor

    def job_command(self, command: Sequence[str]) -> list[str]:
        """The command each task of a job runs (the multi-task layout added)."""
        return with_task_layout(command, self.nodes, self.tasks_per_node)

    def tasks(self, jobs: Sequence[Job]) -> list[PointTask]:
        """The submitit callables for ``jobs`` (multi-task layout added to train commands)."""
        c = self.config
        grace = float(c.get("stop_timeout_s") or 0) if c["cluster"] == "slurm" else 0.0
        return [
            PointTask(
                replace(job, command=self.job_command(job.command)),
                stop_timeout_s=float(c.get("stop_timeout_s") or 60),
                max_requeues=int(c.get("max_requeues") or 0),
                grace_s=grace,
            )
            for job in jobs
        ]

    def submit(self, jobs: Sequence[Job], job_name: str | None = None) -> list[submitit.Job[Any]]:
        """Submit ``jobs`` (one array when ``use_array``), returning submitit's job handles.

        Raises :class:`FailedSubmissionError` / ``OSError`` / ``CalledProcessError`` when sbatch refuses."""
        if not jobs:
            return []
        self.log_dir.mkdir(parents=True, exist_ok=True)
        executor = self.executor(job_name or _common_name(jobs))
        tasks = self.tasks(jobs)
        if self.config.get("use_array") and len(tasks) > 1:
            with executor.batch():
                handles = [executor.submit(task) for task in tasks]
        else:
            handles = [executor.submit(task) for task in tasks]
        for job, handle in zip(jobs, handles, strict=True):
            if self.config["cluster"] == "local":  # no shared file system to wait for after a crash
                handle._results_timeout_s = 2
            self.echo(f"submitted {job.name}: job {handle.job_id}, log {self.log_path(handle)}")
        return handles

    def log_path(self, handle: submitit.Job[Any]) -> Path:
        """The job's log (task 0; stderr goes to the same file)."""
        return Path(handle.paths.stdout)

    def run_all(
        self, jobs: Sequence[Job], on_done: Callable[[int, LaunchResult], None] | None = None
    ) -> list[LaunchResult]:
        """Submit every job and wait for all, calling ``on_done`` as each finishes."""
        try:
            handles = self.submit(jobs)
        except (FailedSubmissionError, OSError, subprocess.SubprocessError) as err:
            reason = f"submission failed: {_tail(str(err))}"
            self.echo(reason)
            results = [LaunchResult(-1, job.run_dir, reason=reason) for job in jobs]
            for i, result in enumerate(results):
                if on_done is not None:
                    on_done(i, result)
            return results
        return self.wait(jobs, handles, on_done)

    def wait(
        self,
        jobs: Sequence[Job],
        handles: Sequence[submitit.Job[Any]],
        on_done: Callable[[int, LaunchResult], None] | None = None,
    ) -> list[LaunchResult]:
        """Wait for submitted jobs, reporting progress when it changes; one result per job."""
        results: dict[int, LaunchResult] = {}
        poll_s = float(self.config.get("poll_s") or 15)
        shown = ""
        while len(results) < len(jobs):
            for i, handle in enumerate(handles):
                if i in results or not handle.done():
                    continue
                results[i] = self.collect(jobs[i], handle)
                if on_done is not None:
                    on_done(i, results[i])
            if len(results) < len(jobs):
                line = f"waiting for {len(jobs) - len(results)} of {len(jobs)} job(s)"
                if line != shown:
                    self.echo(line)
                    shown = line
                time.sleep(poll_s)
        return [results[i] for i in range(len(jobs))]

    def collect(self, job: Job, handle: submitit.Job[Any]) -> LaunchResult:
        """The result of a finished job (the task-0 rank's), or a failure with the job's own reason."""
        log = self.log_path(handle)
        try:
            values = handle.results()
        except UncompletedJobError as err:
            return LaunchResult(
                -1, job.run_dir, job_id=handle.job_id, log_path=log, reason=_job_error(err, log)
            )
        first = values[0] if values else None
        if not isinstance(first, LaunchResult):
            reason = f"job {handle.job_id} returned {type(first).__name__}, not a launch result (log: {log})"
            return LaunchResult(-1, job.run_dir, job_id=handle.job_id, log_path=log, reason=reason)
        return replace(first, job_id=handle.job_id, log_path=log)


def _common_name(jobs: Sequence[Job]) -> str:
    prefix = os.path.commonprefix([job.name for job in jobs])  # noqa: RUF071 - names, not paths
    prefix = prefix.rstrip("-_/. 0123456789") if len(jobs) > 1 else prefix
    return prefix or "jobs"


def _tail(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text.strip())[:limit]


def _job_error(err: UncompletedJobError, log: Path) -> str:
    """A one-line reason for a job that ended without a result (the error's last line, the log's path)."""
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception", "Interrupt"))]
    detail = errors[-1] if errors else (lines[0] if lines else type(err).__name__)
    if "has not produced any output" in text:
        state = text.split("(state:", 1)[-1].split(")", 1)[0].strip() if "(state:" in text else "unknown"
        detail = f"the job ended without a result (state: {state}; killed?)"
    return f"job failed: {detail[:300]} (log: {log})"
