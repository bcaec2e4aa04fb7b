"""Which rows a reproduction runs, in which order, with which command: the plan before anything starts.

Rows are picked by name or glob (``--rows``); a picked row brings the rows it depends on (they run first, or
their complete run is reused). Rows are grouped in dependency levels: level 0 needs nothing, level ``k``
needs rows of levels below ``k``; a level's rows go to the launcher together.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf.errors import OmegaConfBaseException

from src.config.compose import ComposeResult, compose
from src.config.errors import ConfigError
from src.papers.registry import DEPENDENCY, TABLES, PaperTable, TableRow, discover
from src.reporting.selection import is_harmless, override_key
from src.reproducing.records import selected_checkpoint
from src.utils.run_record import interpreter

DEFAULT_TABLE = "paper"


class PlanError(ValueError):
    """A reproduction that cannot be planned: unknown paper, table or row, a refused override (exit 2)."""


def find_table(paper: str, table: str) -> PaperTable:
    """The registered table ``table`` of ``paper``; a clear error lists what exists."""
    papers = discover()
    if paper not in papers:
        raise PlanError(f"unknown paper '{paper}'; registered: {', '.join(papers)}")
    tables = TABLES.get(paper, {})
    if not tables:
        raise PlanError(f"paper '{paper}' registers no table for python -m src.reproduce")
    if table not in tables:
        raise PlanError(f"paper '{paper}' has no table '{table}'; its tables: {', '.join(sorted(tables))}")
    return tables[table]


def select_rows(table: PaperTable, patterns: Sequence[str] = ()) -> list[TableRow]:
    """The rows matching ``patterns`` (names or globs; all when empty) and the rows they depend on, in table
    order. An unmatched pattern is an error listing the table's rows."""
    if not patterns:
        return list(table.rows)
    names = [row.name for row in table.rows]
    picked: set[str] = set()
    for pattern in patterns:
        matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise PlanError(
                f"table {table.paper}/{table.name} has no row matching '{pattern}'; rows: {', '.join(names)}"
            )
        picked.update(matched)
    by_name = {row.name: row for row in table.rows}
    stack = list(picked)
    while stack:
        for need in by_name[stack.pop()].needs:
            if need not in picked:
                picked.add(need)
                stack.append(need)
    return [row for row in table.rows if row.name in picked]


def levels(rows: Sequence[TableRow]) -> list[list[TableRow]]:
    """``rows`` grouped by dependency level (each row after every row it needs), table order within one."""
    level: dict[str, int] = {}
    for row in rows:  # rows only need earlier rows (checked at registration)
        level[row.name] = 1 + max((level[n] for n in row.needs if n in level), default=-1)
    grouped: list[list[TableRow]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for row in rows:
        grouped[level[row.name]].append(row)
    return grouped


def check_run_overrides(items: Sequence[str]) -> list[str]:
    """Overrides given to every row: only harmless ones (where things are, how runs execute), so that the
    runs stay eligible for the paper's report; any other is an error naming it."""
    refused = [item for item in items if "=" not in item or not is_harmless(item)]
    if refused:
        raise PlanError(
            f"override(s) {refused} would change the rows' results (a reproduction runs the experiment "
            "files as committed); allowed: paths.*, logger, trainer=<option>, "
            "trainer.accelerator/devices/num_nodes/strategy, datamodule.num_workers, launcher.* "
            "(see docs/reports.md, 'Harmless overrides')"
        )
    keys = [override_key(item) for item in items]
    if "run.dir" in keys or "run.id" in keys:
        raise PlanError("run.dir / run.id are chosen per row by the reproduction; do not set them")
    return list(items)


def fixed_overrides(row: TableRow) -> list[str]:
    """The row's overrides that need no earlier row (``{best_ckpt:..}`` / ``{run_dir:..}`` ones left out)."""
    return [item for item in row.overrides if not DEPENDENCY.search(item)]


def resolve_overrides(row: TableRow, run_dirs: Mapping[str, Path]) -> list[str]:
    """The row's overrides with every placeholder replaced by the earlier row's checkpoint or run dir."""

    def value(kind: str, name: str) -> str:
        run_dir = run_dirs[name]
        return str(run_dir if kind == "run_dir" else selected_checkpoint(run_dir))

    return [DEPENDENCY.sub(lambda m: value(m.group(1), m.group(2)), item) for item in row.overrides]


def command(row: TableRow, overrides: Sequence[str], python: str | None = None) -> list[str]:
    """The argv that runs the row: ``<python> -m src.<task> experiment=<file> <overrides>``."""
    return [python or interpreter(), "-m", f"src.{row.task}", f"experiment={row.experiment}", *overrides]


def shown_command(row: TableRow, extra: Sequence[str] = ()) -> str:
    """The row's command as a user pastes it, placeholders kept (``{best_ckpt:ROW}``)."""
    return shlex.join(command(row, [*row.overrides, *extra]))


@dataclass
class ComposedRow:
    """A row composed without its placeholder overrides (those wait for earlier rows)."""

    row: TableRow
    result: ComposeResult | None = None
    error: str | None = None
    waits_for: dict[str, str] = field(default_factory=dict)  # key → row it waits for


def compose_row(row: TableRow, extra: Sequence[str] = ()) -> ComposedRow:
    """Compose the row's experiment with its fixed overrides (``???`` allowed: placeholders come later)."""
    waits = {
        override_key(item): DEPENDENCY.search(item).group(2)  # type: ignore[union-attr]
        for item in row.overrides
        if DEPENDENCY.search(item)
    }
    try:
        result = compose(row.experiment, [*fixed_overrides(row), *extra], allow_missing=True)
    except (ConfigError, OmegaConfBaseException, FileNotFoundError) as exc:
        return ComposedRow(row, error=" ".join(str(exc).split()), waits_for=waits)
    return ComposedRow(row, result, waits_for=waits)
