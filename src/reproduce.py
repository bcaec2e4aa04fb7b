"""Reproduce a paper's table with one command: ``python -m src.reproduce <paper> [--table demo|paper] ...``.

Runs every row of the paper's table (or the ``--rows`` picked, with the rows they depend on) in dependency
order through a launcher (``--launcher local``, one run after another; ``--launcher slurm`` with
``launcher.<key>=<value>`` settings, see docs/sweeps.md), reuses a row's completed run when its config hash
and git commit match (``--force`` reruns), then writes and prints the paper's report from the runs used.

``--table demo`` is the CPU-sized table on synthetic data (minutes, nothing downloaded): what a newcomer runs
first. The default, ``--table paper``, is the published table at full scale (GPU days; data and weights to
fetch). ``--dry-run`` prints each row's command, whether it would run or be reused, its expected GPU hours
(an estimate from the paper's measured FLOPs, the dataset sizes and the epochs) and what is missing (data,
weights, values from earlier rows), and runs nothing. ``--list`` shows the papers' tables and rows.

Exit codes: 0 every row completed or reused, 1 a row failed (its dependants are blocked, the others still
run), 2 bad arguments or a configuration error. See docs/reproducing.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from src.check import check_data, check_weights
from src.config.compose import ComposeResult
from src.config.errors import ConfigError
from src.config.resolvers import PROJECT_ROOT
from src.papers.registry import TABLES, discover
from src.reporting import ReportError
from src.reproducing import (
    DEFAULT_TABLE,
    Finding,
    FlopCache,
    GitHead,
    PlanError,
    Reproduction,
    find_table,
    plan_rows,
    print_plan,
    reproduce_report,
    select_rows,
    write_record,
)
from src.reproducing.plan import check_run_overrides
from src.sweeping.launchers import (
    LauncherConfigError,
    make_launcher,
    site_launcher_type,
    split_launcher_overrides,
)
from src.utils.tables import to_console


def check_missing(result: ComposeResult) -> list[Finding]:
    """``src.check``'s data and weights checks on a composed row, as findings."""
    items = [*check_data(result), *check_weights(result.config)]
    return [Finding(item.status, item.what, item.detail, item.fix) for item in items]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.reproduce",
        description="Reproduce a paper's table: run its rows in dependency order (reusing complete runs of "
        "the same config and commit), then write and print the paper's report. Newcomers: --table demo.",
        epilog="Tables: python -m src.reproduce --list. Docs: docs/reproducing.md.",
    )
    parser.add_argument("paper", nargs="?", help="registered paper (python -m src.papers lists them)")
    parser.add_argument(
        "items",
        nargs="*",
        metavar="key=value",
        help="launcher.<key>=<value> settings, and harmless run overrides (paths.*, logger=..., trainer=gpu)",
    )
    parser.add_argument(
        "--table",
        default=DEFAULT_TABLE,
        help=f"'demo': CPU-sized, synthetic data, minutes, nothing to download (start here); 'paper': the "
        f"published table at full scale, GPUs and real data (default: {DEFAULT_TABLE})",
    )
    parser.add_argument("--rows", default="", help="comma-separated row names or globs (default: every row)")
    parser.add_argument(
        "--launcher",
        default=None,
        help="local (default), slurm, or another file of experiments/_base/launcher/ (slurm_local, "
        "slurm_multinode); see docs/sweeps.md",
    )
    parser.add_argument(
        "--launcher-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="a site's launcher file (partition, account, setup lines, ...); its `type:` is the launcher "
        "unless --launcher names one",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, costs and what is missing")
    parser.add_argument("--force", action="store_true", help="rerun rows whose complete run exists")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.add_argument(
        "--out", default=str(PROJECT_ROOT / "reports"), help="report folder (default: reports/)"
    )
    parser.add_argument("--list", action="store_true", help="list every paper's tables and rows, then exit")
    return parser


def list_tables(echo: Callable[[str], None] = print) -> None:
    """Every paper's tables and their rows."""
    papers = discover()
    for paper in papers:
        for name, table in sorted(TABLES.get(paper, {}).items()):
            echo(f"{paper} --table {name}: {len(table.rows)} row(s). {table.description}")
            for row in table.rows:
                needs = f" (needs {', '.join(row.needs)})" if row.needs else ""
                echo(f"    {row.name}: {row.task} {row.experiment}{needs}")


def runs_root() -> Path:
    """``$PROFACE_RUNS`` or the project's ``runs/`` (as ``paths.runs_dir``)."""
    return Path(os.environ.get("PROFACE_RUNS", PROJECT_ROOT / "runs")).expanduser().resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring for the exit codes."""
    args = _parser().parse_intermixed_args(argv)
    if args.list:
        list_tables()
        return 0
    if not args.paper:
        print("error: name a paper (python -m src.reproduce --list shows the tables)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    root = runs_root()
    try:
        launcher_items, run_items = split_launcher_overrides(args.items)
        extra = check_run_overrides(run_items)
        table = find_table(args.paper, args.table)
        patterns = [p.strip() for p in args.rows.split(",") if p.strip()]
        rows = select_rows(table, patterns)
        launcher = None
        if not args.dry_run:
            name = args.launcher or (
                "local" if args.launcher_config is None else site_launcher_type(args.launcher_config)
            )
            launcher = make_launcher(
                name,
                launcher_items,
                log_dir=root / "reproduce" / "logs",
                config_file=args.launcher_config,
            )
    except (PlanError, LauncherConfigError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    head = GitHead.read()
    if args.dry_run:
        flops = FlopCache(root / "reproduce" / "flops.json")
        plans = plan_rows(
            table,
            rows,
            runs_root=root,
            checker=check_missing,
            flops=flops,
            head=head,
            force=args.force,
            extra=extra,
        )
        print_plan(table, plans)
        return 2 if any(p.decision == "config error" for p in plans) else 0
    assert launcher is not None
    print(f"[reproduce] {table.paper}/{table.name}: {len(rows)} row(s) with the {launcher.name} launcher")
    outcomes = Reproduction(table, rows, launcher, root, extra, args.force, head).run()
    record = write_record(
        root, table, outcomes, {"launcher": launcher.name, "force": args.force, "commit": head.commit}
    )
    print(f"\n[reproduce] record: {record}")
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes:
        print(f"  {outcome.status:<8} {outcome.name}: {outcome.reason}")
    if not args.no_report:
        try:
            report, written = reproduce_report(table.paper, outcomes, root, Path(args.out))
        except ReportError as exc:
            print(f"[reproduce] no report: {exc}", file=sys.stderr)
        else:
            print(f"\n## {table.paper} ({table.name} table)\n")
            print(to_console(report.table))
            print("\n" + "\n".join(report.notes))
            print("\nwritten: " + ", ".join(str(p) for p in written))
    print(f"[reproduce] wall time {(time.perf_counter() - start) / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
