"""Demo checkpoints the leaderboard trains itself: rows of the papers' ``leaderboard`` tables, run in-process.

A contender (or forgery judge) with no checkpoint and a ``demo_row`` gets the selected checkpoint of that row
of its paper's :data:`src.papers.registry.LEADERBOARD_TABLE` table. The rows (with the rows they need) run
through :class:`src.reproducing.Reproduction` — so a completed run of the same configuration on the same
commit is reused, exactly as ``python -m src.reproduce <paper> --table leaderboard`` would — but in this
process (a row costs its training, not a Python start-up), and a row several papers share (the same
experiment, task and overrides, e.g. a stand-in recognizer) runs once per leaderboard.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from src.config.compose import compose
from src.papers.registry import LEADERBOARD_TABLE, TABLES, PaperTable, TableRow
from src.reproducing import GitHead, Reproduction, select_rows
from src.reproducing.records import selected_checkpoint
from src.sweeping.launchers import CallableLauncher, LaunchResult
from src.tasks import run

__all__ = ["DemoTrainer", "TrainOutcome"]

Echo = Callable[[str], None]
RUN_KEYS = ("run.id=", "run.dir=")


@dataclass(frozen=True)
class TrainOutcome:
    """A row's run directory and selected checkpoint, or why there is none."""

    checkpoint: Path | None
    run_dir: Path | None
    reason: str


def _run_dir(argv: Sequence[str]) -> Path | None:
    for item in argv:
        if item.startswith("run.dir="):
            return Path(item.split("=", 1)[1])
    return None


@dataclass
class DemoTrainer:
    """Runs (or reuses) leaderboard-table rows and the panel's own training runs, in this process."""

    runs_root: Path
    echo: Echo = print
    force: bool = False
    head: GitHead | None = None
    _done: dict[str, Path] = field(default_factory=dict)
    _outcomes: dict[tuple[str, str], TrainOutcome] = field(default_factory=dict)

    def _in_process(self, argv: list[str]) -> LaunchResult:
        """Run ``<python> -m src.<task> experiment=<file> <overrides>`` here; an identical command (less its
        run id and dir) already run by this trainer is not run again."""
        task = argv[2].rsplit(".", 1)[-1]
        experiment = argv[3].split("=", 1)[1]
        overrides = argv[4:]
        same = shlex.join([task, experiment, *(o for o in overrides if not o.startswith(RUN_KEYS))])
        if same in self._done:
            return LaunchResult(0, self._done[same])
        run_dir = _run_dir(overrides)
        try:
            result = run(compose(experiment, overrides).config, list(overrides), task=task)
        except (Exception, SystemExit) as exc:  # a failed row is an outcome, never the leaderboard's crash
            return LaunchResult(1, run_dir, reason=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        self._done[same] = result.run_dir
        return LaunchResult(0, result.run_dir)

    def _reproduce(self, table: PaperTable, rows: Sequence[TableRow]) -> dict[str, TrainOutcome]:
        launcher = CallableLauncher(self._in_process, name="in-process")
        head = self.head or GitHead.read()
        outcomes = Reproduction(table, rows, launcher, self.runs_root, (), self.force, head, self.echo).run()
        found = {}
        for outcome in outcomes:
            run_dir = Path(outcome.run_dir) if outcome.run_dir else None
            if not outcome.ok or run_dir is None:
                found[outcome.name] = TrainOutcome(None, run_dir, f"{outcome.status}: {outcome.reason}")
                continue
            try:
                found[outcome.name] = TrainOutcome(selected_checkpoint(run_dir), run_dir, outcome.reason)
            except FileNotFoundError as exc:
                found[outcome.name] = TrainOutcome(None, run_dir, str(exc))
        return found

    def demo_checkpoint(self, paper: str, row: str) -> TrainOutcome:
        """The selected checkpoint of ``row`` of ``paper``'s leaderboard table (trained or reused)."""
        key = (paper, row)
        if key not in self._outcomes:
            table = TABLES.get(paper, {}).get(LEADERBOARD_TABLE)
            if table is None or row not in {r.name for r in table.rows}:
                return TrainOutcome(
                    None, None, f"paper '{paper}' has no {LEADERBOARD_TABLE} table row '{row}'"
                )
            self.echo(f"[leaderboard] demo checkpoint: {paper}/{LEADERBOARD_TABLE} row '{row}'")
            for name, outcome in self._reproduce(table, select_rows(table, [row])).items():
                self._outcomes[(paper, name)] = outcome
        return self._outcomes[key]

    def train(self, name: str, experiment: str, overrides: Sequence[str]) -> TrainOutcome:
        """A run the panel itself asks for (e.g. its recognizer), as a one-row table."""
        key = ("(panel)", name)
        if key not in self._outcomes:
            row = TableRow(name, experiment, overrides=tuple(overrides))
            table = PaperTable("(panel)", "leaderboard", (row,), f"panel run {name}")
            self.echo(f"[leaderboard] panel run '{name}': {experiment} {' '.join(overrides)}")
            self._outcomes[key] = self._reproduce(table, [row])[name]
        return self._outcomes[key]
