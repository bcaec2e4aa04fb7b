"""Rebuild a paper's table from run records: ``python -m src.report <paper> [<paper> ...] [--runs DIR]``.

For every experiment file whose model is the paper's LightningModule, the newest *eligible* run under
``--runs`` gives the table rows: completed, with test metrics, not a sweep point, and with no command-line
override other than harmless ones (where things are, how the run is executed). ``--include-overrides``
allows overrides and sweep points; ``--run EXPERIMENT=RUN_DIR`` pins a run. Rows are laid out by the paper's
registered report layout (``@register_report`` in ``src/papers/<paper>/report.py``; else one row per
experiment with its ``test/*`` metrics) and published numbers are merged from
``experiments/<paper>/published.csv`` where that file exists.

Writes ``<out>/<paper>.md``, ``.csv``, ``.runs.csv`` (the run, commit and overrides behind each experiment)
and, with ``--latex``, ``.tex``; prints the table and the notes. Several papers give one table with a
``paper`` column, written as ``<a>+<b>.md`` (e.g. ``detection_baselines eg fpg``: every detector side by
side). See ``docs/reports.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from src.config.resolvers import PROJECT_ROOT
from src.reporting import ReportError, build_combined_report, build_report, write_report
from src.utils.tables import to_console


def parse_pins(items: Sequence[str]) -> dict[str, Path]:
    """``["EXPERIMENT=RUN_DIR", ...]`` → {experiment: run dir}; a malformed or repeated one is an error."""
    pins: dict[str, Path] = {}
    for item in items:
        experiment, sep, run_dir = item.partition("=")
        if not sep or not experiment or not run_dir:
            raise ReportError(f"--run {item}: expected EXPERIMENT=RUN_DIR")
        if experiment in pins:
            raise ReportError(f"--run {item}: experiment '{experiment}' is pinned twice")
        pins[experiment] = Path(run_dir)
    return pins


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns 0, or 2 with one error message when there is nothing (valid) to report."""
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "papers", nargs="+", metavar="paper", help="registered paper name(s) (e.g. proface, proface_s)"
    )
    parser.add_argument("--runs", default=str(PROJECT_ROOT / "runs"), help="runs folder (default: runs/)")
    parser.add_argument(
        "--out", default=str(PROJECT_ROOT / "reports"), help="output folder (default: reports/)"
    )
    parser.add_argument("--latex", action="store_true", help="also write a LaTeX tabular")
    parser.add_argument(
        "--include-overrides",
        action="store_true",
        help="also use runs with overrides and sweep points (still completed, with test metrics)",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="EXPERIMENT=RUN_DIR",
        help="use this run for the experiment's rows, eligible or not (repeatable)",
    )
    parser.add_argument("--experiments", default=str(PROJECT_ROOT / "experiments"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        options = {"include_overrides": args.include_overrides, "pins": parse_pins(args.run)}
        if len(args.papers) == 1:
            report = build_report(args.papers[0], Path(args.runs), Path(args.experiments), **options)
        else:
            report = build_combined_report(args.papers, Path(args.runs), Path(args.experiments), **options)
    except (ReportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_report(report, Path(args.out), latex=args.latex)
    print(to_console(report.table))
    print()
    print("\n".join(report.notes))
    print("\nwritten: " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
