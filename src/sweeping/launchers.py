"""Launchers: run a list of jobs (``python -m src.train ...`` commands) here or on a SLURM cluster.

A :class:`Job` is one command with the run directory it writes (``run.dir=``). A launcher runs every job and
reports one :class:`LaunchResult` per job; a failed job is a result, never an exception. Launchers:

* ``local``: one subprocess after another on this machine, output streamed to ours (:class:`LocalLauncher`);
* ``slurm``: one SLURM job per point, or one job array, submitted through submitit
  (:mod:`src.sweeping.launch.slurm`); ``launcher.cluster=local`` runs the same jobs with submitit's local
  executor (tests, debugging);
* ``wandb-agent``: a whole sweep through ``wandb sweep`` / ``wandb agent``
  (:mod:`src.sweeping.launch.wandb_agent`), for sweeps only.

Each launcher's settings are a file of the ``launcher`` config group,
``experiments/_base/launcher/<name>.yaml`` (a site's own file can be given instead);
``launcher.<key>=<value>`` items change them. They configure the launcher only and never reach the runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml

from src.config.compose import EXPERIMENTS_DIR
from src.sweeping.launch.core import (
    RUN_DIR_PREFIX,
    Echo,
    Job,
    LauncherConfigError,
    LaunchResult,
    config_value,
    parse_run_dir,
    wait_for_exit,
)
from src.sweeping.spec import load_yaml_value

__all__ = [
    "LAUNCHER_DIR",
    "RUN_DIR_PREFIX",
    "CallableLauncher",
    "Echo",
    "Job",
    "LaunchResult",
    "Launcher",
    "LauncherConfigError",
    "LocalLauncher",
    "config_value",
    "launcher_names",
    "load_launcher_config",
    "make_launcher",
    "parse_run_dir",
    "site_launcher_type",
    "split_launcher_overrides",
    "wait_for_exit",
]

LAUNCHER_DIR = EXPERIMENTS_DIR / "_base" / "launcher"
LAUNCHER_PREFIX = "launcher."
TYPES = ("local", "slurm", "wandb-agent")

WatchFn = Callable[[], "str | None"]


@runtime_checkable
class Launcher(Protocol):
    """Runs jobs; ``on_done(i, result)`` is called as job ``i`` finishes. Never raises for a failed job."""

    name: str

    def run_all(
        self, jobs: Sequence[Job], on_done: Callable[[int, LaunchResult], None] | None = None
    ) -> list[LaunchResult]: ...


# --- local ----------------------------------------------------------------------------------------------


@dataclass
class LocalLauncher:
    """Runs jobs one after another as subprocesses of this process, streaming their output.

    ``run`` takes a ``watch`` callable polled every ``poll_s`` seconds while the job runs: when it returns a
    reason, the job gets SIGTERM (a run stops at the next batch boundary, writes ``last.ckpt`` and exits 143)
    and the result is marked ``stopped_early`` with that reason.
    """

    log_dir: Path | None = None
    echo: Echo = print
    poll_s: float = 1.0
    stop_timeout_s: float = 300.0
    name: str = "local"
    env: dict[str, str] = field(default_factory=dict)

    def run_all(
        self, jobs: Sequence[Job], on_done: Callable[[int, LaunchResult], None] | None = None
    ) -> list[LaunchResult]:
        """Run ``jobs`` in order; see the class docstring."""
        results = []
        for i, job in enumerate(jobs):
            result = self.run(job)
            results.append(result)
            if on_done is not None:
                on_done(i, result)
        return results

    def run(self, job: Job, watch: WatchFn | None = None) -> LaunchResult:
        """Run one job to its end (or until ``watch`` gives a reason to stop it)."""
        log_path = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{_safe_name(job.name)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        seen: dict[str, str] = {}
        try:
            proc = subprocess.Popen(
                job.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
            )
        except OSError as err:
            return LaunchResult(-1, job.run_dir, log_path=log_path, reason=f"could not start: {err}")
        reader = threading.Thread(target=_stream, args=(proc, log_path, seen), daemon=True)
        reader.start()
        stopped = ""
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=self.poll_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if watch is not None and not stopped:
                    stopped = watch() or ""
                    if stopped:
                        self.echo(f"stopping {job.name} early: {stopped}")
                        proc.send_signal(signal.SIGTERM)
            reader.join(timeout=10)
        except BaseException:  # Ctrl-C: do not leave the run behind
            _terminate(proc, self.stop_timeout_s)
            raise
        run_dir = Path(seen["run_dir"]) if "run_dir" in seen else job.run_dir
        return LaunchResult(
            returncode,
            run_dir,
            log_path=log_path,
            reason=f"stopped early: {stopped}" if stopped else "",
            stopped_early=bool(stopped),
        )


def _stream(proc: subprocess.Popen[str], log_path: Path | None, seen: dict[str, str]) -> None:
    """Copy the job's output to our stdout (and its log file), noting its ``RUN_DIR=`` line."""
    assert proc.stdout is not None
    log = log_path.open("a", encoding="utf-8") if log_path is not None else None
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if log is not None:
                log.write(line)
                log.flush()
            found = parse_run_dir(line)
            if found:
                seen["run_dir"] = found
    finally:
        if log is not None:
            log.close()


def _terminate(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class CallableLauncher:
    """A launcher made of a function ``command -> LaunchResult`` (tests, simple wrappers); runs in order."""

    function: Callable[[list[str]], LaunchResult]
    name: str = "local"

    def run_all(
        self, jobs: Sequence[Job], on_done: Callable[[int, LaunchResult], None] | None = None
    ) -> list[LaunchResult]:
        """Call the function for each job in turn; an ``OSError`` is a job that could not start."""
        results = []
        for i, job in enumerate(jobs):
            try:
                result = self.function(list(job.command))
            except OSError as err:
                result = LaunchResult(-1, None, reason=f"could not start {job.command[0]}: {err}")
            results.append(result)
            if on_done is not None:
                on_done(i, result)
        return results


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "job"


# --- configuration --------------------------------------------------------------------------------------


def launcher_names(directory: Path = LAUNCHER_DIR) -> list[str]:
    """The launcher files shipped in the ``launcher`` group (``slurm_multinode`` etc.), by name."""
    return sorted(
        p.stem.replace("_", "-") if p.stem == "wandb_agent" else p.stem for p in directory.glob("*.yaml")
    )


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LauncherConfigError(f"cannot read launcher file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise LauncherConfigError(f"launcher file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LauncherConfigError(
            f"launcher file {path} must hold a mapping of settings (got {type(data).__name__})"
        )
    return data


def _group_file(name: str, directory: Path) -> Path:
    path = directory / f"{name.replace('-', '_')}.yaml"
    if not path.is_file():
        raise LauncherConfigError(
            f"unknown launcher {name!r} (no {path}); launchers: {', '.join(launcher_names(directory))}"
        )
    return path


def split_launcher_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(launcher.* items, the rest)``: the launcher's settings never reach the runs. ``launcher=<name>``
    is refused: the launcher is chosen with ``--launcher``."""
    for item in items:
        if item.lstrip("+~").partition("=")[0] == "launcher":
            raise LauncherConfigError(
                f"{item!r}: choose the launcher with --launcher <name> (and set it up with "
                "launcher.<key>=<value>)"
            )
    mine = [item for item in items if item.lstrip("+").startswith(LAUNCHER_PREFIX)]
    return mine, [item for item in items if item not in mine]


def load_launcher_config(
    name: str,
    overrides: Sequence[str] = (),
    *,
    config_file: Path | None = None,
    directory: Path = LAUNCHER_DIR,
) -> dict[str, Any]:
    """The settings of launcher ``name``: its type's defaults, the named group file (e.g. ``slurm_multinode``
    over ``slurm``), a site file (``config_file``), then ``launcher.<key>=<value>`` items.

    Every key must be one the type's defaults file has; an unknown key is an error listing the known ones.
    """
    chosen = _read_mapping(_group_file(name, directory))
    site = _read_mapping(config_file) if config_file is not None else {}
    kind = site.get("type", chosen.get("type", name))
    if kind not in TYPES:
        where = config_file if "type" in site else _group_file(name, directory)
        raise LauncherConfigError(f"{where}: type must be one of {list(TYPES)} (got {kind!r})")
    defaults = _read_mapping(_group_file(kind, directory))
    config = dict(defaults)
    for source, layer in ((_group_file(name, directory), chosen), (config_file, site)):
        unknown = sorted(set(layer) - set(defaults))
        if unknown:
            raise LauncherConfigError(
                f"{source}: unknown launcher setting(s) {unknown} for a {kind} launcher; known: "
                f"{', '.join(sorted(defaults))}"
            )
        config.update(layer)
    for item in overrides:
        key, equals, text = item.lstrip("+").partition("=")
        if not equals or not key.startswith(LAUNCHER_PREFIX):
            raise LauncherConfigError(f"launcher override {item!r} is not of the form launcher.<key>=<value>")
        key = key[len(LAUNCHER_PREFIX) :]
        if key not in defaults or key == "type":
            raise LauncherConfigError(
                f"{item!r}: a {kind} launcher has no setting {key!r}; known: "
                f"{', '.join(sorted(k for k in defaults if k != 'type'))}"
            )
        try:
            config[key] = load_yaml_value(text) if text != "" else None
        except yaml.YAMLError as err:
            raise LauncherConfigError(f"{item!r}: the value is not valid YAML: {err}") from None
    config["type"] = kind
    return config


def make_launcher(
    name: str,
    overrides: Sequence[str] = (),
    *,
    log_dir: Path,
    echo: Echo = print,
    config_file: Path | None = None,
    for_sweep: bool = False,
) -> Launcher:
    """The launcher ``name`` (``local``, ``slurm``, ``wandb-agent`` or another file of the ``launcher`` group)
    configured by ``overrides`` (``launcher.<key>=<value>``); job logs go under ``log_dir``.

    ``wandb-agent`` runs whole sweeps (``for_sweep=True``, :mod:`src.sweep`); anywhere else it is an error.
    """
    config = load_launcher_config(name, overrides, config_file=config_file)
    kind = config["type"]
    if kind == "local":
        return LocalLauncher(log_dir=log_dir, echo=echo, poll_s=float(config["poll_s"]))
    if kind == "slurm":
        from src.sweeping.launch.slurm import SlurmLauncher

        return SlurmLauncher.from_config(config, log_dir=log_dir, echo=echo)
    if not for_sweep:
        raise LauncherConfigError(
            f"launcher {name!r} ({kind}) runs whole W&B sweeps (python -m src.sweep <file> --launcher "
            f"wandb-agent); use 'local' or 'slurm' to run jobs"
        )
    from src.sweeping.launch.wandb_agent import WandbAgentLauncher

    return WandbAgentLauncher.from_config(config, log_dir=log_dir, echo=echo)


def site_launcher_type(path: Path) -> str:
    """The launcher type a site file names (``type:``), for ``--launcher-config`` without ``--launcher``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise LauncherConfigError(f"cannot read launcher file {path}: {err}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise LauncherConfigError(f"{path}: a launcher file given alone must say its type (type: slurm)")
    return kind
