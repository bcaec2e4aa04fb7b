"""``--dry-run``: for every row its command, whether it would run or be reused, its expected GPU hours and
what is missing (data, weights, values an earlier row provides), then the totals. Nothing is run or written
(apart from the FLOP cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf.errors import OmegaConfBaseException

from src.config.compose import ComposeResult, compose
from src.config.errors import ConfigError
from src.papers.registry import PaperTable, TableRow
from src.reproducing.costs import REFERENCE_GPU, CostError, Estimate, FlopCounter, estimate
from src.reproducing.plan import compose_row, resolve_overrides, shown_command
from src.reproducing.records import GitHead, composed_hash, find_reusable

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Finding:
    """One line of a pre-flight check (``src.check``'s checklist items): status, what, detail, fix."""

    status: str
    what: str
    detail: str
    fix: str = ""


#: composes → checklist findings (the entry point passes ``src.check``'s data and weights checks)
Checker = Callable[[ComposeResult], list[Finding]]


@dataclass
class RowPlan:
    """What the dry-run says about one row."""

    row: TableRow
    command: str
    decision: str
    estimate: Estimate | None = None
    missing: list[str] = field(default_factory=list)
    error: str | None = None
    reusable_dir: Path | None = None


def _decide(
    row: TableRow, reused: dict[str, Path], runs_root: Path, head: GitHead, force: bool, extra: Sequence[str]
) -> tuple[str, Path | None]:
    if force:
        return "would run (--force)", None
    waiting = [n for n in row.needs if n not in reused]
    if waiting:
        return f"would run (after row(s) {', '.join(waiting)}, which run first)", None
    try:
        overrides = [*resolve_overrides(row, reused), *extra]
        cfg = compose(row.experiment, overrides).config
    except (ConfigError, OmegaConfBaseException, FileNotFoundError) as exc:
        return f"would run (its config does not compose yet: {' '.join(str(exc).split())[:200]})", None
    found = find_reusable(runs_root, row.experiment, row.task, composed_hash(cfg, overrides), head)
    if found.run_dir is not None:
        return f"would be reused: {found.why}", found.run_dir
    return f"would run: {found.why}", None


def plan_rows(
    table: PaperTable,
    rows: Sequence[TableRow],
    *,
    runs_root: Path,
    checker: Checker | None,
    flops: FlopCounter,
    head: GitHead,
    force: bool = False,
    extra: Sequence[str] = (),
    echo: Echo = print,
) -> list[RowPlan]:
    """One :class:`RowPlan` per row, in order (progress is echoed: the checks set up each row's data)."""
    plans, reused = [], {}
    for index, row in enumerate(rows, 1):
        echo(f"[reproduce] checking row {index}/{len(rows)} {row.name} ...")
        plan = RowPlan(row, shown_command(row, extra), "")
        composed = compose_row(row, extra)
        if composed.result is None:
            plan.error = composed.error
            plan.decision = "config error"
            plans.append(plan)
            continue
        cfg = composed.result.config
        try:
            plan.estimate = estimate(table.paper, row.cost, cfg, row.task, flops)
        except CostError as exc:
            plan.error = str(exc)
        plan.decision, plan.reusable_dir = _decide(row, reused, runs_root, head, force, extra)
        if plan.reusable_dir is not None:
            reused[row.name] = plan.reusable_dir
        plan.missing = [f"{key}: from row {name}" for key, name in composed.waits_for.items()]
        for step in row.prepare:
            state = "present" if step.done() else "written first by this step"
            plan.missing.append(f"prepared: {step.name} → {step.writes} ({state})")
        if checker is not None:
            for finding in checker(composed.result):
                if finding.status != "OK" and not any(k in finding.detail for k in composed.waits_for):
                    fix = f" (fix: {finding.fix})" if finding.fix else ""
                    plan.missing.append(f"{finding.status} {finding.what}: {finding.detail}{fix}")
        plans.append(plan)
    return plans


def print_plan(table: PaperTable, plans: Sequence[RowPlan], echo: Echo = print) -> None:
    """The dry-run's output: one block per row, then the totals."""
    echo(f"\nTable {table.paper}/{table.name}: {table.description}".rstrip(": "))
    for index, plan in enumerate(plans, 1):
        row = plan.row
        needs = f", needs {', '.join(row.needs)}" if row.needs else ""
        echo(f"\n[{index}/{len(plans)}] {row.name} ({row.task} {row.experiment}{needs})")
        echo(f"  command:  {plan.command}")
        echo(f"  decision: {plan.decision}")
        if plan.error:
            echo(f"  error:    {plan.error}")
        if plan.estimate is not None:
            echo(f"  cost:     {plan.estimate.shown}")
        if plan.missing:
            echo("  missing:  " + "\n            ".join(plan.missing))
        else:
            echo("  missing:  nothing (data and weights checked)")
    running = [p for p in plans if p.decision.startswith("would run")]
    priced = [p for p in running if p.estimate is not None and p.estimate.hours is not None]
    unpriced = [p.row.name for p in running if p not in priced]
    hours = sum(p.estimate.hours for p in priced if p.estimate is not None and p.estimate.hours is not None)
    echo(
        f"\nTotals: {len(plans)} row(s), {len(running)} would run, "
        f"{len(plans) - len(running)} reused or in error; "
        f"expected ~{hours:.3g} GPU h for the {len(priced)} priced row(s) that would run "
        f"(estimate on {REFERENCE_GPU})" + (f"; no estimate for: {', '.join(unpriced)}" if unpriced else "")
    )
    errors = [p.row.name for p in plans if p.error]
    if errors:
        echo(f"Rows with errors: {', '.join(errors)}")
