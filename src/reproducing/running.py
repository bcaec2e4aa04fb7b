"""Run a table's rows level by level through a launcher, reusing complete runs, and record what happened.

For each dependency level: every row whose earlier rows failed is *blocked* (with the reason); the others run
their preparation steps, resolve their placeholders, compose, and are *reused* when a completed run of the
same configuration on the same commit exists (:mod:`src.reproducing.records`; ``force`` reruns) or become a
job. The level's jobs go to the launcher together (``local``: one after another; ``slurm``: submitted
together, then waited for). A row *ran* when its process exited 0 and its ``meta.json`` says completed.

The reproduction's own record, ``<runs>/reproduce/<paper>/<table>/<stamp>/reproduce.json``, lists every row:
status, reason, command (secrets as the run records them), run directory and config hash.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf.errors import OmegaConfBaseException

from src.config.compose import compose
from src.config.errors import ConfigError
from src.config.secrets import RunSecrets
from src.papers.registry import PaperTable, TableRow
from src.reproducing.plan import command, levels, resolve_overrides
from src.reproducing.records import GitHead, composed_hash, find_reusable
from src.sweeping.launchers import Job, Launcher, LaunchResult
from src.utils.run_record import new_run_id

Echo = Callable[[str], None]
RAN, REUSED, FAILED, BLOCKED = "ran", "reused", "failed", "blocked"


@dataclass
class RowOutcome:
    """What happened to one row."""

    name: str
    experiment: str
    task: str
    status: str
    reason: str
    run_dir: str | None = None
    config_hash: str | None = None
    command: str | None = None

    @property
    def ok(self) -> bool:
        """The row has a completed run (this reproduction's or a reused one)."""
        return self.status in (RAN, REUSED)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ConfigError) else text


def _run_status(run_dir: Path) -> tuple[str | None, str | None]:
    """(status, error) from the run's ``meta.json``; (None, None) when it cannot be read."""
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None, None
    return meta.get("status"), meta.get("error")


@dataclass
class Reproduction:
    """One reproduction of (some rows of) a table; :meth:`run` returns an outcome per row, in table order."""

    table: PaperTable
    rows: Sequence[TableRow]
    launcher: Launcher
    runs_root: Path
    extra: Sequence[str] = ()
    force: bool = False
    head: GitHead | None = None
    echo: Echo = print
    python: str = sys.executable

    def run(self) -> list[RowOutcome]:
        """Run every level; a failed row blocks its dependants and nothing else."""
        head = self.head or GitHead.read()
        if head.dirty and not self.force:
            self.echo(
                "[reproduce] the working tree has uncommitted changes: every row runs (no earlier run can be "
                "matched to this code; commit first to make this reproduction reusable)"
            )
        outcomes: dict[str, RowOutcome] = {}
        order = {row.name: i for i, row in enumerate(self.rows)}
        for depth, level in enumerate(levels(self.rows)):
            jobs: list[tuple[TableRow, Job, str, str]] = []
            for row in level:
                outcome, job = self._prepare_row(row, outcomes, head)
                if outcome is not None:
                    outcomes[row.name] = outcome
                    self._say(order[row.name], row, outcome.status, outcome.reason)
                else:
                    assert job is not None
                    jobs.append(job)
            if jobs:
                self.echo(
                    f"[reproduce] level {depth + 1}: launching {len(jobs)} row(s) ({self.launcher.name})"
                )
                results = self.launcher.run_all([job for _, job, _, _ in jobs])
                for (row, job, digest, shown), result in zip(jobs, results, strict=True):
                    outcomes[row.name] = self._finished(row, job, digest, shown, result)
                    outcome = outcomes[row.name]
                    self._say(order[row.name], row, outcome.status, outcome.reason)
        return [outcomes[row.name] for row in self.rows]

    def _say(self, index: int, row: TableRow, status: str, reason: str) -> None:
        self.echo(f"[reproduce] row {index + 1}/{len(self.rows)} {row.name}: {status} — {reason}")

    def _prepare_row(
        self, row: TableRow, outcomes: dict[str, RowOutcome], head: GitHead
    ) -> tuple[RowOutcome | None, tuple[TableRow, Job, str, str] | None]:
        """The row's outcome when it needs no job (blocked, failed to prepare, reused), else its job."""

        def outcome(status: str, reason: str, **more: Any) -> RowOutcome:
            return RowOutcome(row.name, row.experiment, row.task, status, reason, **more)

        broken = [n for n in row.needs if not outcomes[n].ok]
        if broken:
            why = "; ".join(f"{n} {outcomes[n].status}" for n in broken)
            return outcome(BLOCKED, f"needs row(s) that did not complete: {why}"), None
        run_dirs = {n: Path(outcomes[n].run_dir or "") for n in row.needs}
        ran_anew = {n for n in row.needs if outcomes[n].status == RAN}
        for step in row.prepare:
            if not self.force and step.done() and not (ran_anew & set(step.needs)):
                self.echo(f"[reproduce] {row.name}: {step.name}: already there ({step.writes})")
                continue
            self.echo(f"[reproduce] {row.name}: {step.name} → {step.writes}")
            try:
                step.run({n: run_dirs[n] for n in step.needs})
            except (Exception, SystemExit) as exc:  # a step's own failure is this row's
                return outcome(FAILED, f"preparation '{step.name}' failed: {_one_line(exc)}"), None
        try:
            overrides = [*resolve_overrides(row, run_dirs), *self.extra]
            result = compose(row.experiment, overrides)
        except (ConfigError, OmegaConfBaseException, FileNotFoundError) as exc:
            return outcome(FAILED, f"cannot compose: {_one_line(exc)}"), None
        cfg = result.config
        digest = composed_hash(cfg, overrides)
        shown = " ".join(command(row, RunSecrets.prepare(cfg, overrides).items(overrides)))
        if not self.force:
            reuse = find_reusable(self.runs_root, row.experiment, row.task, digest, head)
            if reuse.run_dir is not None:
                return outcome(
                    REUSED, reuse.why, run_dir=str(reuse.run_dir), config_hash=digest, command=shown
                ), None
            why = reuse.why
        else:
            why = "--force"
        run_id = new_run_id()
        run_dir = Path(str(cfg.paths.runs_dir)) / row.experiment / run_id
        argv = command(row, [*overrides, f"run.id={run_id}", f"run.dir={run_dir}"], self.python)
        self.echo(f"[reproduce] {row.name}: runs ({why})")
        return None, (row, Job(argv, run_dir, row.name.replace("/", "_")), digest, shown)

    def _finished(self, row: TableRow, job: Job, digest: str, shown: str, result: LaunchResult) -> RowOutcome:
        run_dir = result.run_dir or job.run_dir
        status, error = _run_status(run_dir)
        if result.returncode == 0 and status == "completed":
            return RowOutcome(
                row.name,
                row.experiment,
                row.task,
                RAN,
                f"completed in {run_dir}",
                str(run_dir),
                digest,
                shown,
            )
        why = error or result.reason or f"status {status or 'unknown (no meta.json)'}"
        return RowOutcome(
            row.name,
            row.experiment,
            row.task,
            FAILED,
            f"exit {result.returncode}: {why}",
            str(run_dir),
            digest,
            shown,
        )


def write_record(
    runs_root: Path, table: PaperTable, outcomes: Sequence[RowOutcome], extra: dict[str, Any]
) -> Path:
    """Write ``<runs>/reproduce/<paper>/<table>/<stamp>/reproduce.json``; returns its path."""
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{new_run_id()[-6:]}"
    folder = runs_root / "reproduce" / table.paper / table.name / stamp
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"paper": table.paper, "table": table.name, **extra, "rows": [asdict(o) for o in outcomes]}
    path = folder / "reproduce.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
