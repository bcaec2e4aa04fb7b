"""The pieces every launcher shares: a job, its result, the settings error, small process helpers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_DIR_PREFIX",
    "Echo",
    "Job",
    "LaunchResult",
    "LauncherConfigError",
    "config_value",
    "parse_run_dir",
    "wait_for_exit",
]

RUN_DIR_PREFIX = "RUN_DIR="
Echo = Callable[[str], None]


class LauncherConfigError(ValueError):
    """A launcher name, file or ``launcher.*`` override that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Job:
    """One run to execute: the full argv, the run directory it writes (``run.dir=``) and a short label."""

    command: list[str]
    run_dir: Path
    name: str


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher reports for one job.

    ``returncode`` is the run's exit status (-N: killed by signal N; -1 also when it never started),
    ``run_dir`` the directory it printed (``RUN_DIR=``) or was given. ``reason`` is the launcher's own
    account when it has one (a job that crashed before the run could record anything, an early stop);
    ``job_id`` and ``log_path`` name the scheduler's job and its log; ``requeues`` counts pre-emptions
    survived.
    """

    returncode: int
    run_dir: Path | None = None
    job_id: str = ""
    log_path: Path | None = None
    reason: str = ""
    stopped_early: bool = False
    requeues: int = 0


def parse_run_dir(line: str) -> str | None:
    """The path in a ``RUN_DIR=<path>`` line printed by ``src.train``, else ``None``."""
    line = line.strip()
    if line.startswith(RUN_DIR_PREFIX):
        return line[len(RUN_DIR_PREFIX) :].strip() or None
    return None


def config_value(config: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``config[key]`` checked to be a ``kind`` (or None); a clear error naming the setting otherwise."""
    value = config.get(key)
    if value is not None and (
        not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind))
    ):
        names = " or ".join(k.__name__ for k in _tuple(kind))
        raise LauncherConfigError(f"{where}: launcher.{key} must be {names} (got {value!r})")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def wait_for_exit(proc: subprocess.Popen[Any], timeout_s: float) -> int | None:
    """Wait up to ``timeout_s`` for ``proc`` without :meth:`Popen.wait`'s lock (safe in a signal handler)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.returncode is not None:
            return proc.returncode
        try:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by Popen in the meantime
            return proc.returncode if proc.returncode is not None else -1
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)
