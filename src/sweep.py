"""Run a W&B-format sweep file locally: one ``python -m src.train`` subprocess per point, in sequence.

W&B sweeps need the W&B server, so the sweep file is expanded here (grid or seeded random) and every point
runs as an ordinary run (W&B offline, ``group=<sweep name>``). Everything a sweep writes stays together::

    <runs root>/sweeps/<sweep name>/<sweep id>/
        sweep.yaml  sweep.json     the sweep file as run (with any command-line changes) and the record
        index.csv                  point, status, return code, reason, run_dir, parameters, metric
        points/000/ points/001/    the points' run directories (``run.dir`` of each run)

``index.csv``'s ``run_dir`` is relative to the index's folder (``points/000``), so a sweep folder can be
moved or copied as a whole. A failed point is recorded with the reason (a signal such as SIGTERM/SIGKILL, or
the run's error) and the sweep goes on; the exit code is 1 if any point failed.

    python -m src.sweep experiments/sweeps/demo_recognizer_lr.yaml [--count N] [--seed S] [--dry-run]
        [--runs-root runs] [key=value ...]

A ``key=value`` naming a swept parameter changes the sweep (:mod:`src.sweeping.overrides`):
``parameters.model.optimizer.lr.values=[0.001,0.01]`` (or ``model.optimizer.lr.values=[...]``) replaces
the values, ``seed=3`` pins a parameter; an unknown parameter is an error listing the sweep's parameters.
Any other ``key=value`` is a config override given to every point (``trainer.max_epochs=2``).
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
    sweep_points,
)

__all__ = [
    "POINTS_DIR",
    "RUN_DIR_PREFIX",
    "LaunchResult",
    "Launcher",
    "SweepResult",
    "build_command",
    "failure_reason",
    "index_path_of",
    "main",
    "parse_run_dir",
    "point_dir",
    "run_sweep",
    "subprocess_launcher",
]

RUN_DIR_PREFIX = "RUN_DIR="
POINTS_DIR = "points"  # the points' run directories, inside the sweep folder
_PER_POINT_KEYS = frozenset({"run.dir", "run.id", "resume"})
INDEX_BASE_COLUMNS = ("point", "status", "returncode", "reason", "run_dir")
_STOPPED = {
    143: "terminated by a signal (SIGTERM, exit 143)",
    130: "interrupted (Ctrl-C, exit 130)",
    2: "refused its configuration or a checkpoint (exit 2)",
}


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher reports for one point: the exit status and the run dir the run printed (if any)."""

    returncode: int
    run_dir: Path | None = None


Launcher = Callable[[list[str]], LaunchResult]


@dataclass
class SweepResult:
    """The outcome of :func:`run_sweep`: where the index lives and one row per point."""

    sweep_dir: Path | None
    index_path: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        """Number of points whose run failed."""
        return sum(row["status"] != "ok" for row in self.rows)


def parse_run_dir(line: str) -> str | None:
    """The path in a ``RUN_DIR=<path>`` line printed by ``src.train``, else ``None``."""
    line = line.strip()
    if line.startswith(RUN_DIR_PREFIX):
        return line[len(RUN_DIR_PREFIX) :].strip() or None
    return None


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
    launcher: Launcher = subprocess_launcher,
    python: str = sys.executable,
    runs_dir_override: bool = False,
    sweep_id: str | None = None,
    echo: Callable[[str], None] = print,
    check_point: Callable[[str, list[str]], None] | None = None,
) -> SweepResult:
    """Run every point of ``spec`` through ``launcher`` and write ``index.csv``; see the module docstring.

    ``extra_overrides`` may change the sweep's parameters (:mod:`src.sweeping.overrides`); the rest go to
    every run. ``runs_dir_override`` also passes ``paths.runs_dir=<runs_root>`` to each run (used when
    ``--runs-root`` is given). ``launcher`` receives the full command list; tests pass a fake one.
    """
    changes, run_overrides = split_overrides(spec, extra_overrides)
    _check_run_overrides(run_overrides)
    source = Path(spec.source)
    spec = apply_parameter_overrides(spec, changes)
    clash = sorted(set(spec.parameter_names) & set(INDEX_BASE_COLUMNS))
    if clash:
        raise SweepSpecError(f"{spec.source}: parameter name(s) {clash} clash with index.csv columns")
    experiment, fixed = experiment_from_command(spec)
    points = sweep_points(spec, count=count, seed=seed)
    runs_root = Path(runs_root)
    extra = list(run_overrides)
    if runs_dir_override:
        extra.insert(0, f"paths.runs_dir={format_override_value(str(runs_root.resolve()))}")
    sweep_id = sweep_id or _new_sweep_id()
    sweep_dir = runs_root / "sweeps" / _slug(spec.name) / sweep_id
    n = len(points)
    commands = [
        build_command(
            python,
            experiment,
            fixed,
            point_to_overrides(point),
            extra,
            spec.name,
            i,
            point_dir(sweep_dir.resolve(), i, n),
        )
        for i, point in enumerate(points)
    ]
    if check_point is not None:  # every point's config, before anything is launched or written
        for i, command in enumerate(commands):
            try:
                check_point(experiment, command[4:])
            except Exception as exc:
                raise SweepSpecError(f"point {i} of {spec.source} would not start: {exc}") from None
    echo(f"sweep {spec.name!r}: method={spec.method}, {n} point(s), experiment={experiment}")

    if dry_run:
        for i, (point, command) in enumerate(zip(points, commands, strict=True)):
            echo(f"[{i + 1}/{n}] point {i}: {point}")
            echo(f"    {shlex.join(command)}")
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
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "points_dir": POINTS_DIR,
        "points": points,
        "commands": commands,
    }
    _write_sweep_files(sweep_dir, source, spec, bool(changes), record)

    metric = spec.metric.name if spec.metric else None
    columns = [*INDEX_BASE_COLUMNS, *spec.parameter_names]
    if metric is not None and metric not in columns:
        columns.append(metric)
    index_path = sweep_dir / "index.csv"
    result = SweepResult(sweep_dir=sweep_dir, index_path=index_path, commands=commands)
    echo(f"sweep dir: {sweep_dir}")

    with index_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        handle.flush()
        for i, (point, command) in enumerate(zip(points, commands, strict=True)):
            row = _run_point(i, n, point, command, launcher, sweep_dir, metric, echo)
            writer.writerow(row)
            handle.flush()
            result.rows.append({**row, **point, **({} if metric is None else {metric: row[metric]})})

    echo(f"sweep {spec.name!r}: {n - result.n_failed}/{n} point(s) ok; index: {index_path}")
    if spec.metric is not None:
        best = _best_row(result.rows, spec.metric.name, spec.metric.goal)
        if best is not None:
            echo(
                f"best ({spec.metric.goal} {metric}): point {best['point']} = {_shown(best[metric])}"
                f" ({sweep_dir / best['run_dir']})"
            )
    return result


def _run_point(
    i: int,
    n: int,
    point: dict[str, Any],
    command: list[str],
    launcher: Launcher,
    sweep_dir: Path,
    metric: str | None,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Launch one point and return its ``index.csv`` row."""
    echo(f"[{i + 1}/{n}] point {i}: {' '.join(point_to_overrides(point))}")
    start = time.monotonic()
    try:
        launched = launcher(command)
    except OSError as err:
        echo(f"[{i + 1}/{n}] could not start {command[0]}: {err}")
        launched = LaunchResult(returncode=-1)
    status = "ok" if launched.returncode == 0 else "failed"
    run_dir = launched.run_dir
    if run_dir is not None and not run_dir.is_absolute():
        run_dir = run_dir.resolve()
    if run_dir is None and status == "ok":
        echo(f"[{i + 1}/{n}] warning: the run printed no {RUN_DIR_PREFIX}<path> line")
    row: dict[str, Any] = {
        "point": i,
        "status": status,
        "returncode": launched.returncode,
        "reason": "" if status == "ok" else failure_reason(launched.returncode, run_dir),
        "run_dir": index_path_of(run_dir, sweep_dir),
    }
    row.update({name: _cell(value) for name, value in point.items()})
    if metric is not None:
        row[metric] = _read_metric(run_dir, metric, echo)
    tail = f", {metric}={_shown(row[metric])}" if metric is not None and row[metric] != "" else ""
    tail += f": {row['reason']}" if row["reason"] else ""
    echo(
        f"[{i + 1}/{n}] {status} (rc={launched.returncode}, {time.monotonic() - start:.1f} s{tail})"
        f" run_dir={run_dir or '-'}"
    )
    return row


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
        description="Run a W&B-format sweep file locally (grid or random), one src.train run per point.",
    )
    parser.add_argument(
        "sweep_file", type=Path, help="sweep YAML, e.g. experiments/sweeps/demo_recognizer_lr.yaml"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="random: number of points; grid: run only the first N"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    parser.add_argument("--dry-run", action="store_true", help="print the points and commands, run nothing")
    parser.add_argument(
        "--runs-root",
        type=Path,
        default=None,
        help="runs folder (default $PROFACE_RUNS or ./runs); when given, also passed as paths.runs_dir",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="parameters.<parameter>.<field>=<value> (or <parameter>.<field>=, <parameter>=) changes a swept "
        "parameter, e.g. parameters.model.optimizer.lr.values=[0.001,0.01]; any other key=value is a config "
        "override for every point",
    )
    return parser


def compose_point(experiment: str, overrides: list[str]) -> None:
    """Compose one point's config as ``src.train`` will (struct mode, typed groups): a misspelt key or a
    wrong type fails here once, instead of in every launched point."""
    try:
        compose(experiment, overrides, allow_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(str(exc)) from None


def main(argv: Sequence[str] | None = None, launcher: Launcher = subprocess_launcher) -> int:
    """CLI entry point; returns 0 when every point succeeded, 1 if any failed, 2 for a bad sweep file."""
    args = _parser().parse_intermixed_args(argv)
    if args.count is not None and args.count < 1:
        print(f"error: --count must be a positive integer (got {args.count})", file=sys.stderr)
        return 2
    runs_root = args.runs_root or Path(os.environ.get("PROFACE_RUNS", "runs"))
    try:
        spec = load_sweep_spec(args.sweep_file)
        result = run_sweep(
            spec,
            count=args.count,
            seed=args.seed,
            runs_root=runs_root,
            extra_overrides=args.overrides,
            dry_run=args.dry_run,
            launcher=launcher,
            runs_dir_override=args.runs_root is not None,
            check_point=compose_point,
        )
    except (SweepSpecError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if result.n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
