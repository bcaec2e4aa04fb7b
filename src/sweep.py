"""Run a W&B-format sweep file: one ``python -m src.train`` run per point, here or on a SLURM cluster.

The sweep method proposes the points (:mod:`src.sweeping.search`: grid, seeded random, bayes through Optuna)
and learns each point's metric; with ``early_terminate`` (Hyperband) a local point whose metric falls behind
is stopped early. A launcher runs the points (:mod:`src.sweeping.launchers`): ``local`` (one after another,
the default), ``slurm`` (SLURM jobs through submitit: a job array, waited for) or ``wandb-agent`` (the sweep
created on a W&B server and run by ``wandb agent``). Everything a sweep writes stays together::

    <runs root>/sweeps/<sweep name>/<sweep id>/
        sweep.yaml  sweep.json     the sweep file as run (with any command-line changes) and the record
        index.csv                  point, status, returncode, reason, job_id, log, run_dir, parameters,
                                   metric
        points/000/ points/001/    the points' run directories (``run.dir`` of each run)
        slurm/ logs/               the jobs' logs (slurm / local launcher)

``index.csv``'s ``run_dir`` is relative to the index's folder (``points/000``), so a sweep folder can be
moved or copied as a whole. A failed point is recorded with the reason (a signal such as SIGTERM/SIGKILL, the
run's error, a job that crashed) and the sweep goes on; the exit code is 1 if any point failed.

    python -m src.sweep experiments/sweeps/demo_recognizer_lr.yaml [--count N] [--seed S] [--dry-run]
        [--runs-root runs] [--launcher local|slurm|wandb-agent|<launcher file>] [--launcher-config FILE]
        [--no-wait] [launcher.<key>=<value> ...] [key=value ...]
    python -m src.sweep --status <sweep dir>

A ``key=value`` naming a swept parameter changes the sweep (:mod:`src.sweeping.overrides`):
``parameters.model.optimizer.lr.values=[0.001,0.01]`` (or ``model.optimizer.lr.values=[...]``) replaces
the values, ``seed=3`` pins a parameter; an unknown parameter is an error listing the sweep's parameters.
``launcher.<key>=<value>`` configures the launcher (never the runs). Any other ``key=value`` is a config
override given to every point (``trainer.max_epochs=2``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import compose
from src.config.errors import ConfigError
from src.sweeping import (
    SweepSpec,
    SweepSpecError,
    apply_parameter_overrides,
    experiment_from_command,
    format_override_value,
    load_sweep_spec,
    point_to_overrides,
    split_overrides,
)
from src.sweeping.early_termination import EarlyTermination, make_early_termination
from src.sweeping.launchers import (
    CallableLauncher,
    Job,
    Launcher,
    LauncherConfigError,
    LaunchResult,
    LocalLauncher,
    load_launcher_config,
    make_launcher,
    parse_run_dir,
    site_launcher_type,
    split_launcher_overrides,
)
from src.sweeping.search import ListSearch, PointSearch, make_search

__all__ = [
    "INDEX_BASE_COLUMNS",
    "POINTS_DIR",
    "RUN_DIR_PREFIX",
    "Job",
    "LaunchResult",
    "Launcher",
    "SweepResult",
    "build_command",
    "failure_reason",
    "index_path_of",
    "main",
    "parse_run_dir",
    "point_dir",
    "refresh_status",
    "run_sweep",
    "subprocess_launcher",
]

RUN_DIR_PREFIX = "RUN_DIR="
POINTS_DIR = "points"  # the points' run directories, inside the sweep folder
_PER_POINT_KEYS = frozenset({"run.dir", "run.id", "resume"})
# job_id and log before run_dir: readers take the columns after run_dir as the parameters and the metric
INDEX_BASE_COLUMNS = ("point", "status", "returncode", "reason", "job_id", "log", "run_dir")
FINAL = frozenset({"ok", "failed", "stopped_early"})
_STOPPED = {
    143: "terminated by a signal (SIGTERM, exit 143)",
    130: "interrupted (Ctrl-C, exit 130)",
    2: "refused its configuration or a checkpoint (exit 2)",
}
CommandFn = Callable[[list[str]], LaunchResult]


@dataclass
class SweepResult:
    """The outcome of :func:`run_sweep`: where the index lives and one row per point."""

    sweep_dir: Path | None
    index_path: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    errors: int = 0  # failures outside the points (a W&B agent that failed)

    @property
    def n_failed(self) -> int:
        """Number of points whose run failed (an early stop is not a failure), plus other failures."""
        return sum(row["status"] == "failed" for row in self.rows) + self.errors

    @property
    def n_pending(self) -> int:
        """Number of points submitted but not finished (``--no-wait``)."""
        return sum(row["status"] not in FINAL for row in self.rows)


def subprocess_launcher(command: list[str]) -> LaunchResult:
    """Run ``command``, streaming its stdout to ours, and pick the run dir from its ``RUN_DIR=`` line."""
    run_dir: str | None = None
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            run_dir = parse_run_dir(line) or run_dir
        returncode = proc.wait()
    return LaunchResult(returncode=returncode, run_dir=Path(run_dir) if run_dir else None)


def build_command(
    python: str,
    experiment: str,
    fixed_overrides: Sequence[str],
    point_overrides: Sequence[str],
    extra_overrides: Sequence[str],
    sweep_name: str,
    point: int,
    run_dir: Path | None = None,
) -> list[str]:
    """The ``src.train`` command line for one point; later overrides win over earlier ones (the sweep's own
    keys come last). ``run_dir`` is the point's run directory (``run.dir``)."""
    name = format_override_value(sweep_name)
    where = [] if run_dir is None else [f"run.dir={format_override_value(str(run_dir))}"]
    return [
        python,
        "-m",
        "src.train",
        f"experiment={experiment}",
        *fixed_overrides,
        *point_overrides,
        *extra_overrides,
        f"logger.wandb.group={name}",
        f"sweep.name={name}",
        f"sweep.point={point}",
        *where,
    ]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "sweep"


def _new_sweep_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def point_dir(sweep_dir: Path, point: int, n_points: int) -> Path:
    """``<sweep dir>/points/<point>``, the number zero-padded to at least 3 digits (sorts in point order)."""
    return sweep_dir / POINTS_DIR / f"{point:0{max(3, len(str(n_points - 1)))}d}"


def index_path_of(run_dir: Path | None, sweep_dir: Path) -> str:
    """A run dir as ``index.csv`` stores it: relative to the sweep folder when inside it, else absolute."""
    if run_dir is None:
        return ""
    run_dir = run_dir.resolve()
    try:
        return run_dir.relative_to(sweep_dir.resolve()).as_posix()
    except ValueError:
        return str(run_dir)


def _read_metric(run_dir: Path | None, metric: str | None, echo: Callable[[str], None]) -> Any:
    if run_dir is None or metric is None:
        return ""
    path = run_dir / "summary.json"
    if not path.is_file():
        return ""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        echo(f"warning: cannot read {path}: {err}")
        return ""
    value = summary.get(metric, "") if isinstance(summary, dict) else ""
    return value if value is not None else ""


def _cell(value: Any) -> Any:
    return value if isinstance(value, str) else format_override_value(value)


def _shown(value: Any) -> str:
    """A metric for the console: 4 significant digits (``index.csv`` keeps the full value)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _best_row(rows: list[dict[str, Any]], metric: str, goal: str) -> dict[str, Any] | None:
    scored = [
        r
        for r in rows
        if r["status"] == "ok" and isinstance(r.get(metric), int | float) and not math.isnan(r[metric])
    ]
    if not scored:
        return None
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda r: r[metric])


def _check_run_overrides(items: Sequence[str]) -> None:
    """Refuse config overrides the sweep sets per point (every point would get the same run dir)."""
    for item in items:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in _PER_POINT_KEYS:
            raise SweepSpecError(
                f"override {item!r}: {key} is set by the sweep for each point (run directories under "
                f"<sweep dir>/{POINTS_DIR}/); leave it out"
            )


def _write_sweep_files(
    sweep_dir: Path, source: Path, spec: SweepSpec, changed: bool, record: dict[str, Any]
) -> None:
    """``sweep.yaml`` (the file as given, or the sweep as changed on the command line) and ``sweep.json``."""
    if changed:
        text = f"# {spec.source}\n" + yaml.safe_dump(spec.raw, sort_keys=False, allow_unicode=True)
        (sweep_dir / "sweep.yaml").write_text(text, encoding="utf-8")
    elif source.is_file():
        (sweep_dir / "sweep.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (sweep_dir / "sweep.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")


def run_sweep(
    spec: SweepSpec,
    *,
    count: int | None = None,
    seed: int = 0,
    runs_root: str | Path = "runs",
    extra_overrides: Sequence[str] = (),
    dry_run: bool = False,
    launcher: Launcher | CommandFn | None = None,
    launcher_name: str = "local",
    launcher_overrides: Sequence[str] = (),
    launcher_config: Path | None = None,
    wait: bool = True,
    python: str = sys.executable,
    runs_dir_override: bool = False,
    sweep_id: str | None = None,
    echo: Callable[[str], None] = print,
    check_point: Callable[[str, list[str]], None] | None = None,
) -> SweepResult:
    """Run the points of ``spec`` through a launcher and write ``index.csv``; see the module docstring.

    ``extra_overrides`` may change the sweep's parameters (:mod:`src.sweeping.overrides`); ``launcher.*``
    items configure the launcher; the rest go to every run. ``runs_dir_override`` also passes
    ``paths.runs_dir=<runs_root>`` to each run (used when ``--runs-root`` is given). ``launcher`` is a ready
    launcher or a function ``command -> LaunchResult`` (tests pass a fake one); without it,
    ``launcher_name`` / ``launcher_overrides`` / ``launcher_config`` choose one. ``wait=False`` (slurm):
    submit and return; ``python -m src.sweep --status <sweep dir>`` fills the index later.
    """
    mine, extra_overrides = split_launcher_overrides(extra_overrides)
    launcher_overrides = [*launcher_overrides, *mine]
    changes, run_overrides = split_overrides(spec, extra_overrides)
    _check_run_overrides(run_overrides)
    source = Path(spec.source)
    spec = apply_parameter_overrides(spec, changes)
    clash = sorted(set(spec.parameter_names) & set(INDEX_BASE_COLUMNS))
    if clash:
        raise SweepSpecError(f"{spec.source}: parameter name(s) {clash} clash with index.csv columns")
    experiment, fixed = experiment_from_command(spec)
    if launcher is None:
        config = load_launcher_config(launcher_name, launcher_overrides, config_file=launcher_config)
        kind = config["type"]
    else:
        if launcher_overrides:
            raise LauncherConfigError(f"launcher settings {launcher_overrides} given with a ready launcher")
        config, kind = {}, getattr(launcher, "name", "local")
    runs_root = Path(runs_root)
    extra = list(run_overrides)
    if runs_dir_override:
        extra.insert(0, f"paths.runs_dir={format_override_value(str(runs_root.resolve()))}")
    if kind == "wandb-agent":
        from src.sweeping.launch.wandb_agent import run_wandb_sweep

        outcome = run_wandb_sweep(
            spec,
            config,
            experiment=experiment,
            fixed=fixed,
            changes=[c.text for c in changes],
            run_overrides=extra,
            count=count,
            dry_run=dry_run,
            python=python,
            echo=echo,
        )
        failed = int(outcome.returncode not in (None, 0))
        return SweepResult(sweep_dir=None, index_path=None, commands=[outcome.command], errors=failed)
    if not wait and kind != "slurm":
        raise LauncherConfigError("--no-wait needs the slurm launcher (a local sweep runs in this process)")

    sweep_id = sweep_id or _new_sweep_id()
    sweep_dir = runs_root / "sweeps" / _slug(spec.name) / sweep_id
    storage = None if dry_run else sweep_dir.resolve() / "search.db"
    search = make_search(spec, count=count, seed=seed, storage=storage if spec.method == "bayes" else None)
    fixed_points = _all_points(search) if isinstance(search, ListSearch) else None
    total = len(fixed_points) if fixed_points is not None else search.total
    early = make_early_termination(spec)

    def command_of(i: int, point: dict[str, Any]) -> list[str]:
        where = point_dir(sweep_dir.resolve(), i, total or 0)
        return build_command(python, experiment, fixed, point_to_overrides(point), extra, spec.name, i, where)

    commands = [command_of(i, p) for i, p in enumerate(fixed_points or [])]
    if check_point is not None:  # every known point's config, before anything is launched or written
        for i, command in enumerate(commands):
            _check(check_point, experiment, command, i, spec)
    shown_total = "?" if total is None else str(total)
    shown_launcher = kind if launcher is not None or launcher_name == kind else f"{launcher_name} ({kind})"
    echo(
        f"sweep {spec.name!r}: method={spec.method}, {shown_total} point(s), experiment={experiment}, "
        f"launcher={shown_launcher}"
    )
    if fixed_points is None and not wait:
        raise LauncherConfigError(
            f"--no-wait: method {spec.method!r} chooses each point from the results of earlier ones, so the "
            "sweep must wait for them; run it without --no-wait"
        )
    if early is not None and kind != "local":
        echo(
            f"note: early_terminate is applied by the local launcher only; with {kind} every point runs "
            "to the end"
        )

    if launcher is None:  # made before the dry run returns, so that bad settings fail it too
        log_dir = sweep_dir.resolve() / ("slurm" if kind == "slurm" else "logs")
        launcher = make_launcher(
            launcher_name, launcher_overrides, log_dir=log_dir, echo=echo, config_file=launcher_config
        )
    elif not hasattr(launcher, "run_all"):
        launcher = CallableLauncher(launcher)  # type: ignore[arg-type]

    if dry_run:
        if fixed_points is None:
            echo(
                f"method {spec.method}: points are chosen as results come in; nothing to list before running"
            )
        as_run = getattr(launcher, "job_command", list)  # what a job runs (slurm: + the multi-task layout)
        for i, (point, command) in enumerate(zip(fixed_points or [], commands, strict=True)):
            echo(f"[{i + 1}/{total}] point {i}: {point}")
            echo(f"    {shlex.join(as_run(command))}")
        return SweepResult(sweep_dir=None, index_path=None, commands=commands)

    sweep_dir.mkdir(parents=True, exist_ok=False)
    record = {
        "name": spec.name,
        "sweep_id": sweep_id,
        "source": spec.source,
        "method": spec.method,
        "count": count,
        "seed": seed,
        "experiment": experiment,
        "fixed_overrides": fixed,
        "parameter_overrides": [change.text for change in changes],
        "extra_overrides": run_overrides,
        "metric": None if spec.metric is None else {"name": spec.metric.name, "goal": spec.metric.goal},
        "launcher": {"type": kind, **{k: v for k, v in config.items() if k != "type"}},
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "points_dir": POINTS_DIR,
        "points": fixed_points,
        "commands": commands,
    }
    _write_sweep_files(sweep_dir, source, spec, bool(changes), record)
    metric = spec.metric.name if spec.metric else None
    columns = [*INDEX_BASE_COLUMNS, *spec.parameter_names]
    if metric is not None and metric not in columns:
        columns.append(metric)
    index = SweepIndex(sweep_dir / "index.csv", columns, metric)
    index.write()
    result = SweepResult(sweep_dir=sweep_dir, index_path=index.path, commands=commands)
    echo(f"sweep dir: {sweep_dir}")

    def check_proposed(i: int, command: list[str]) -> str:
        """Why a point proposed during the sweep (bayes) would not start, or "" (known points: checked
        above)."""
        if check_point is None or fixed_points is not None:
            return ""
        try:
            _check(check_point, experiment, command, i, spec)
        except SweepSpecError as err:
            return str(err)
        return ""

    state = _Run(
        check=check_proposed,
        spec=spec,
        sweep_dir=sweep_dir,
        index=index,
        metric=metric,
        echo=echo,
        search=search,
        early=early,
        total=total,
        result=result,
    )
    if isinstance(launcher, LocalLauncher | CallableLauncher):
        _run_in_turn(state, launcher, fixed_points, command_of)
    elif fixed_points is not None:
        _run_at_once(state, launcher, fixed_points, commands, wait)
    else:
        _run_in_waves(state, launcher, command_of, int(config.get("parallel") or 1))
    result.rows = [index.rows[i] for i in sorted(index.rows)]
    _report(state)
    return result


def _all_points(search: PointSearch) -> list[dict[str, Any]]:
    points = []
    while (point := search.propose()) is not None:
        points.append(point)
    return points


def _check(
    check_point: Callable[[str, list[str]], None],
    experiment: str,
    command: list[str],
    i: int,
    spec: SweepSpec,
) -> None:
    try:
        check_point(experiment, command[4:])
    except Exception as exc:
        raise SweepSpecError(f"point {i} of {spec.source} would not start: {exc}") from None


# --- the index ---------------------------------------------------------------------------------------------


@dataclass
class SweepIndex:
    """``index.csv``, rewritten whole (atomically) whenever a row changes: rows may finish in any order."""

    path: Path
    columns: list[str]
    metric: str | None
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)

    def set(self, row: dict[str, Any]) -> None:
        """Add or replace the row of ``row['point']`` and write the file."""
        self.rows[int(row["point"])] = row
        self.write()

    def write(self) -> None:
        """Write every row, in point order."""
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            for point in sorted(self.rows):
                writer.writerow({c: self.rows[point].get(c, "") for c in self.columns})
        os.replace(temporary, self.path)

    @classmethod
    def read(cls, path: Path) -> SweepIndex:
        """An existing ``index.csv``."""
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = {int(row["point"]): dict(row) for row in reader}
        missing = [c for c in ("point", "status", "run_dir") if c not in columns]
        if missing:
            raise SweepSpecError(f"{path}: not a sweep index (missing column(s) {missing})")
        return cls(path, columns, None, rows)


@dataclass
class _Run:
    """A sweep in progress: where it writes, what it asks and tells."""

    spec: SweepSpec
    sweep_dir: Path
    index: SweepIndex
    metric: str | None
    echo: Callable[[str], None]
    search: PointSearch
    early: EarlyTermination | None
    total: int | None
    result: SweepResult
    check: Callable[[int, list[str]], str]
    started: dict[int, float] = field(default_factory=dict)

    def label(self, i: int) -> str:
        return f"[{i + 1}/{'?' if self.total is None else self.total}]"

    def finish(self, i: int, point: dict[str, Any], launched: LaunchResult, last_value: Any = "") -> None:
        """Record point ``i``'s outcome in the index, print it, and tell the search."""
        row = _row(i, point, launched, self.sweep_dir, self.metric, self.echo, last_value)
        self.index.set(row)
        value = row.get(self.metric) if self.metric else None
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        self.search.tell(i, number if number is None or math.isfinite(number) else None, row["status"])
        elapsed = time.monotonic() - self.started.get(i, time.monotonic())
        tail = f", {self.metric}={_shown(value)}" if self.metric is not None and value != "" else ""
        tail += f": {row['reason']}" if row["reason"] else ""
        job = f" job={launched.job_id}" if launched.job_id else ""
        self.echo(
            f"{self.label(i)} {row['status']} (rc={launched.returncode}, {elapsed:.1f} s{tail}){job}"
            f" run_dir={launched.run_dir or '-'}"
        )


def _row(
    i: int,
    point: dict[str, Any],
    launched: LaunchResult,
    sweep_dir: Path,
    metric: str | None,
    echo: Callable[[str], None],
    last_value: Any = "",
) -> dict[str, Any]:
    """One point's ``index.csv`` row."""
    run_dir = launched.run_dir
    if run_dir is not None and not run_dir.is_absolute():
        run_dir = run_dir.resolve()
    if run_dir is not None and not run_dir.exists():  # the run never got to make it
        run_dir = None
    if launched.stopped_early:
        status, reason = "stopped_early", launched.reason
    elif launched.returncode == 0:
        status, reason = "ok", ""
    else:
        status, reason = "failed", launched.reason or failure_reason(launched.returncode, run_dir)
    if run_dir is None and status == "ok":
        echo(f"warning: point {i}: the run printed no {RUN_DIR_PREFIX}<path> line")
    row: dict[str, Any] = {
        "point": i,
        "status": status,
        "returncode": launched.returncode,
        "reason": reason,
        "run_dir": index_path_of(run_dir, sweep_dir),
        "job_id": launched.job_id,
        "log": index_path_of(launched.log_path, sweep_dir),
    }
    row.update({name: _cell(value) for name, value in point.items()})
    if metric is not None:
        value = _read_metric(run_dir, metric, echo)
        row[metric] = last_value if value == "" and status == "stopped_early" else value
    return row


# --- the three ways of running -----------------------------------------------------------------------------


def _run_in_turn(
    state: _Run,
    launcher: LocalLauncher | CallableLauncher,
    fixed_points: list[dict[str, Any]] | None,
    command_of: Callable[[int, dict[str, Any]], list[str]],
) -> None:
    """Local: one point after another; the search proposes each (bayes learns from the ones before)."""
    i = 0
    while True:
        point = fixed_points[i] if fixed_points is not None and i < len(fixed_points) else None
        if fixed_points is None:
            point = state.search.propose()
        if point is None:
            break
        command = command_of(i, point)
        run_dir = Path(command[-1].split("=", 1)[1])
        state.echo(f"{state.label(i)} point {i}: {' '.join(point_to_overrides(point))}")
        state.started[i] = time.monotonic()
        refused = state.check(i, command)
        if refused:
            state.finish(i, point, LaunchResult(2, None, reason=refused))
            i += 1
            continue
        watch = _MetricWatch(run_dir, state.metric, state.early, i) if state.early and state.metric else None
        job = Job(command, run_dir, f"{_slug(state.spec.name)}-{i:03d}")
        if isinstance(launcher, LocalLauncher):
            launched = launcher.run(job, watch)
        else:
            launched = launcher.run_all([job])[0]
        last = ""
        if watch is not None:
            watch()  # the values logged after the last poll count for the thresholds of later points
            last = watch.last
        state.finish(i, point, launched, last)
        i += 1


def _run_at_once(
    state: _Run, launcher: Launcher, points: list[dict[str, Any]], commands: list[list[str]], wait: bool
) -> None:
    """Slurm with fixed points: all submitted at once (one job array) and listed as ``submitted``, then
    waited for (not with ``--no-wait``)."""
    from submitit.core.utils import FailedSubmissionError

    jobs = [
        Job(command, Path(command[-1].split("=", 1)[1]), f"{_slug(state.spec.name)}-{i:03d}")
        for i, command in enumerate(commands)
    ]
    now = time.monotonic()
    for i in range(len(points)):
        state.started[i] = now
    if not hasattr(launcher, "submit"):  # a launcher that only runs jobs
        launcher.run_all(jobs, on_done=lambda i, launched: state.finish(i, points[i], launched))
        return
    try:
        handles = launcher.submit(jobs)
    except (FailedSubmissionError, OSError, subprocess.SubprocessError) as err:
        for i, (point, job) in enumerate(zip(points, jobs, strict=True)):
            state.finish(i, point, LaunchResult(-1, job.run_dir, reason=f"submission failed: {err}"))
        return
    for i, (point, handle) in enumerate(zip(points, handles, strict=True)):
        row = {
            "point": i,
            "status": "submitted",
            "returncode": "",
            "reason": "",
            "run_dir": "",  # filled when the run has made it (readers open every run_dir listed)
            "job_id": handle.job_id,
            "log": index_path_of(launcher.log_path(handle), state.sweep_dir),
            **{name: _cell(value) for name, value in point.items()},
        }
        state.index.set(row)
    follow = f"python -m src.sweep --status {state.sweep_dir}"
    if not wait:
        state.echo(f"submitted {len(jobs)} job(s) and not waiting; later: {follow}")
        return
    try:
        launcher.wait(jobs, handles, on_done=lambda i, launched: state.finish(i, points[i], launched))
    except KeyboardInterrupt:
        state.echo(f"stopped waiting; the jobs keep running on the cluster. Later: {follow}")
        raise


def _run_in_waves(
    state: _Run, launcher: Launcher, command_of: Callable[[int, dict[str, Any]], list[str]], parallel: int
) -> None:
    """Slurm with a sequential method (bayes): ``parallel`` points proposed, submitted, waited for and told;
    then the next wave."""
    i = 0
    while True:
        wave: list[tuple[int, dict[str, Any]]] = []
        while len(wave) < parallel and (point := state.search.propose()) is not None:
            wave.append((i + len(wave), point))
        if not wave:
            return
        state.echo(f"wave of {len(wave)} point(s): {wave[0][0]}..{wave[-1][0]}")
        jobs, runnable = [], []
        for j, point in wave:
            command = command_of(j, point)
            state.started[j] = time.monotonic()
            refused = state.check(j, command)
            if refused:
                state.finish(j, point, LaunchResult(2, None, reason=refused))
                continue
            jobs.append(Job(command, Path(command[-1].split("=", 1)[1]), f"{_slug(state.spec.name)}-{j:03d}"))
            runnable.append((j, point))
        if jobs:
            launcher.run_all(jobs, on_done=_finisher(state, runnable))
        i += len(wave)


def _finisher(state: _Run, wave: list[tuple[int, dict[str, Any]]]) -> Callable[[int, LaunchResult], None]:
    return lambda k, launched: state.finish(wave[k][0], wave[k][1], launched)


class _MetricWatch:
    """Reads a running point's ``metrics.csv`` for new values of the sweep metric and asks the early
    termination about each; returns its reason when the point should stop."""

    def __init__(self, run_dir: Path, metric: str, early: EarlyTermination, point: int) -> None:
        self.path = run_dir / "metrics.csv"
        self.metric = metric
        self.early = early
        self.point = point
        self.seen = 0
        self.last: Any = ""

    def __call__(self) -> str | None:
        values = _metric_values(self.path, self.metric)
        stop = False
        for k in range(self.seen, len(values)):
            self.seen = k + 1
            self.last = values[k]
            stop = self.early.observe(self.point, k + 1, values[k]) or stop
        return self.early.reason(self.point) if stop else None


def _metric_values(path: Path, metric: str) -> list[float]:
    """The logged values of ``metric`` in ``metrics.csv``, in order (empty cells skipped)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error):
        return []
    values = []
    for row in rows:
        cell = row.get(metric)
        if cell not in (None, ""):
            try:
                values.append(float(cell))
            except ValueError:
                continue
    return values


def _report(state: _Run) -> None:
    rows = [state.index.rows[i] for i in sorted(state.index.rows)]
    n = len(rows)
    ok = sum(r["status"] == "ok" for r in rows)
    early = sum(r["status"] == "stopped_early" for r in rows)
    pending = sum(r["status"] not in FINAL for r in rows)
    extra = f", {early} stopped early" if early else ""
    extra += f", {pending} submitted" if pending else ""
    state.echo(f"sweep {state.spec.name!r}: {ok}/{n} point(s) ok{extra}; index: {state.index.path}")
    metric = state.metric
    if state.spec.metric is not None and metric is not None:
        best = _best_row(rows, metric, state.spec.metric.goal)
        if best is not None:
            state.echo(
                f"best ({state.spec.metric.goal} {metric}): point {best['point']} = {_shown(best[metric])}"
                f" ({state.sweep_dir / best['run_dir']})"
            )


# --- status of a submitted sweep --------------------------------------------------------------------------


def refresh_status(sweep_dir: Path, echo: Callable[[str], None] = print) -> SweepResult:
    """Bring ``<sweep dir>/index.csv`` up to date from the points' run records (``meta.json``,
    ``summary.json``) and, for a job that left no record, its log; finished rows are kept as they are."""
    index_path = sweep_dir / "index.csv"
    if not index_path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no index.csv)")
    record = _read_json(sweep_dir / "sweep.json")
    metric = (record.get("metric") or {}).get("name") if isinstance(record.get("metric"), dict) else None
    index = SweepIndex.read(index_path)
    index.metric = metric
    n_points = len(record.get("points") or index.rows)
    for point, row in sorted(index.rows.items()):
        if row["status"] in FINAL:
            continue
        run_dir = (
            (sweep_dir / row["run_dir"]) if row.get("run_dir") else point_dir(sweep_dir, point, n_points)
        )
        row["run_dir"] = index_path_of(run_dir, sweep_dir) if run_dir.is_dir() else ""
        status, reason = _status_from_records(run_dir, sweep_dir / row["log"] if row.get("log") else None)
        row.update(status=status, reason=reason)
        if status in FINAL:
            row["returncode"] = 0 if status == "ok" else row.get("returncode", "")
        if metric is not None and status == "ok":
            row[metric] = _read_metric(run_dir, metric, echo)
        index.rows[point] = row
    index.write()
    rows = [index.rows[i] for i in sorted(index.rows)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    echo(f"{sweep_dir}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    for row in rows:
        if row["status"] == "failed":
            echo(f"point {row['point']}: failed: {row['reason']}")
    return SweepResult(sweep_dir=sweep_dir, index_path=index_path, rows=rows)


def _status_from_records(run_dir: Path | None, log: Path | None) -> tuple[str, str]:
    """``(status, reason)`` of a submitted point from what its run and job wrote."""
    meta = _read_json(run_dir / "meta.json") if run_dir is not None else {}
    status = meta.get("status")
    if status == "completed":
        return "ok", ""
    if status == "running":
        return "running", ""
    if status == "preempted":
        return "running", "pre-empted; waiting for SLURM to requeue it"
    if status:
        error = meta.get("error")
        detail = str(error).splitlines()[-1][:300] if error else f"the run ended as {status!r}"
        return "failed", f"{status}: {detail}" if error else detail
    text = ""
    if log is not None and log.is_file():
        text = log.read_text(encoding="utf-8", errors="replace")[-20000:]
    if "Job not requeued because" in text or "Submitted job triggered an exception" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line.split(":", 1)[0] or "not requeued" in line]
        return "failed", f"job failed: {(errors[-1] if errors else lines[-1])[:300]} (log: {log})"
    return "submitted", ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def failure_reason(returncode: int, run_dir: Path | None) -> str:
    """Why a point failed, in words: the signal that stopped it or the error its run record names."""
    meta: dict[str, Any] = {}
    if run_dir is not None and (run_dir / "meta.json").is_file():
        try:
            meta = json.loads((run_dir / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
    if returncode < 0:
        return f"killed (signal {-returncode}) before it could record why"
    if returncode in (143, 130):
        return _STOPPED[returncode]
    if meta.get("error"):
        return f"{meta.get('status', 'failed')}: {str(meta['error']).splitlines()[-1][:300]}"
    return _STOPPED.get(returncode, f"exit code {returncode}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.sweep",
        description="Run a W&B-format sweep file (grid, random, bayes), one src.train run per point, here "
        "(local), on SLURM (slurm) or through a W&B server (wandb-agent).",
    )
    parser.add_argument(
        "sweep_file", type=Path, nargs="?", help="sweep YAML, e.g. experiments/sweeps/demo_recognizer_lr.yaml"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="random/bayes: number of points; grid: run only the first N"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random/bayes search (default 0)")
    parser.add_argument("--dry-run", action="store_true", help="print the points and commands, run nothing")
    parser.add_argument(
        "--runs-root",
        type=Path,
        default=None,
        help="runs folder (default $PROFACE_RUNS or ./runs); when given, also passed as paths.runs_dir",
    )
    parser.add_argument(
        "--launcher",
        default=None,
        help="local (default), slurm, wandb-agent, or another file of experiments/_base/launcher/ "
        "(slurm_multinode, slurm_local); set its keys with launcher.<key>=<value>",
    )
    parser.add_argument(
        "--launcher-config",
        type=Path,
        default=None,
        help="a site's launcher file (keys as in experiments/_base/launcher/<type>.yaml, with 'type: slurm')",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="slurm: submit the points and return (see --status)"
    )
    parser.add_argument(
        "--status",
        type=Path,
        default=None,
        metavar="SWEEP_DIR",
        help="refresh <sweep dir>/index.csv from the points' run records (after --no-wait) and exit",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="parameters.<parameter>.<field>=<value> (or <parameter>.<field>=, <parameter>=) changes a swept "
        "parameter, e.g. parameters.model.optimizer.lr.values=[0.001,0.01]; launcher.<key>=<value> sets up "
        "the launcher; any other key=value is a config override for every point",
    )
    return parser


def compose_point(experiment: str, overrides: list[str]) -> None:
    """Compose one point's config as ``src.train`` will (struct mode, typed groups): a misspelt key or a
    wrong type fails here once, instead of in every launched point."""
    try:
        compose(experiment, overrides, allow_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(str(exc)) from None


def main(argv: Sequence[str] | None = None, launcher: Launcher | CommandFn | None = None) -> int:
    """CLI entry point; returns 0 when every point succeeded (early stops included), 1 if any failed, 2 for
    a bad sweep file, override or launcher setting."""
    args = _parser().parse_intermixed_args(argv)
    if args.status is not None:
        if args.sweep_file is not None or args.overrides:
            print("error: --status takes only the sweep folder", file=sys.stderr)
            return 2
        try:
            return 1 if refresh_status(args.status).n_failed else 0
        except (FileNotFoundError, SweepSpecError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    if args.sweep_file is None:
        print("error: give a sweep file (or --status <sweep dir>)", file=sys.stderr)
        return 2
    if args.count is not None and args.count < 1:
        print(f"error: --count must be a positive integer (got {args.count})", file=sys.stderr)
        return 2
    runs_root = args.runs_root or Path(os.environ.get("PROFACE_RUNS", "runs"))
    try:
        name = args.launcher or (
            "local" if args.launcher_config is None else site_launcher_type(args.launcher_config)
        )
        spec = load_sweep_spec(args.sweep_file)
        result = run_sweep(
            spec,
            count=args.count,
            seed=args.seed,
            runs_root=runs_root,
            extra_overrides=args.overrides,
            dry_run=args.dry_run,
            launcher=launcher,
            launcher_name=name,
            launcher_config=args.launcher_config,
            wait=not args.no_wait,
            runs_dir_override=args.runs_root is not None,
            check_point=compose_point,
        )
    except (SweepSpecError, LauncherConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if result.n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
