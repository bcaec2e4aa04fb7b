"""Rebuild a paper's table from run records: ``python -m src.report <paper> [--runs DIR] [--out DIR]``.

For every experiment whose model is the paper's LightningModule, the newest *completed* run (``summary.json``
with test metrics) under ``--runs`` gives one or more table rows, laid out by the paper's registered report
layout (``@register_report`` in ``src/papers/<paper>/report.py``; the generic layout, one row per experiment
with its ``test/*`` metrics, when it has none). Published numbers are merged from
``experiments/<paper>/published.csv`` where that file exists (columns: the table's key columns, as strings,
plus published metric columns, which appear as ``<column> (paper)``); without that file the report says so
instead of inventing a column.

Writes ``<out>/<paper>.md`` and ``<out>/<paper>.csv`` (and ``<out>/<paper>.tex`` with ``--latex``) and prints
the markdown. Runs that failed or are still running are listed, not used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.analysis.runs import find_runs, load_runs
from src.config.resolvers import PROJECT_ROOT
from src.papers.registry import REPORT_LAYOUTS, PaperInfo, discover
from src.utils.tables import to_markdown

PUBLISHED_FILE = "published.csv"


class ReportError(ValueError):
    """Nothing to report, or inputs that cannot be combined; the message says what and where."""


def paper_runs(info: PaperInfo, runs_root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(newest completed run per experiment of the paper, every other run of it with its status)."""
    if not find_runs(runs_root):
        raise ReportError(f"no run records under {runs_root}")
    runs = load_runs(runs_root)
    if "config.model._target_" not in runs.columns:
        raise ReportError(f"no run under {runs_root} records a model config")
    mine = runs[runs["config.model._target_"].isin(info.targets)]
    if mine.empty:
        raise ReportError(f"no run of '{info.name}' ({info.target}) under {runs_root}")
    test_columns = [c for c in mine.columns if c.startswith("test/")]
    done = mine[mine[test_columns].notna().any(axis=1)] if test_columns else mine.iloc[0:0]
    if done.empty:
        raise ReportError(f"runs of '{info.name}' under {runs_root} have no test metrics yet")
    newest = done.sort_values("run_id").groupby("experiment", sort=True).tail(1)
    others = mine[~mine["run_id"].isin(newest["run_id"])][["experiment", "run_id", "status"]]
    return newest.reset_index(drop=True), others.reset_index(drop=True)


def generic_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment with its test metrics (for papers that register no report layout)."""
    metrics = sorted(c for c in runs.columns if c.startswith("test/") and runs[c].notna().any())
    table = runs[["experiment", *metrics]].copy()
    table.columns = ["experiment", *(c.removeprefix("test/") for c in metrics)]
    return table


def merge_published(table: pd.DataFrame, paper: str, experiments_dir: Path) -> tuple[pd.DataFrame, str]:
    """Add the published columns from ``experiments/<paper>/published.csv``; returns (table, note)."""
    path = experiments_dir / paper / PUBLISHED_FILE
    if not path.is_file():
        return table, f"Published numbers: none recorded (no {path.relative_to(experiments_dir.parent)})."
    published = pd.read_csv(path)
    keys = [c for c in published.columns if c in table.columns and published[c].dtype == object]
    if not keys:
        raise ReportError(
            f"{path}: no key column shared with the table (table columns: {list(table.columns)})"
        )
    values = [c for c in published.columns if c not in keys]
    renamed = published.rename(columns={c: f"{c} (paper)" for c in values})
    return table.merge(
        renamed, on=keys, how="left"
    ), f"Published numbers from {path.name}: {', '.join(values)}."


def build_report(paper: str, runs_root: Path, experiments_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The paper's table and the notes printed under it."""
    papers = discover()
    if paper not in papers:
        raise ReportError(f"unknown paper '{paper}'; registered: {', '.join(papers)}")
    info = papers[paper]
    runs, others = paper_runs(info, runs_root)
    table = REPORT_LAYOUTS.get(paper, generic_table)(runs)
    table, note = merge_published(table, paper, experiments_dir)
    notes = [
        f"{info.title} ({info.venue}). Rebuilt from {len(runs)} run(s) under {runs_root}:",
        *(f"- {row.experiment}: {row.run_dir}" for row in runs.itertuples()),
        note,
    ]
    if not others.empty:
        notes.append(f"Not used (older or without test metrics): {len(others)} run(s).")
    return table, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.splitlines()[0])
    parser.add_argument("paper", help="registered paper name (e.g. proface, proface_s)")
    parser.add_argument("--runs", default=str(PROJECT_ROOT / "runs"), help="runs folder (default: runs/)")
    parser.add_argument(
        "--out", default=str(PROJECT_ROOT / "reports"), help="output folder (default: reports/)"
    )
    parser.add_argument("--latex", action="store_true", help="also write a LaTeX tabular")
    parser.add_argument("--experiments", default=str(PROJECT_ROOT / "experiments"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        table, notes = build_report(args.paper, Path(args.runs), Path(args.experiments))
    except (ReportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(table)
    (out / f"{args.paper}.md").write_text(markdown + "\n\n" + "\n".join(notes) + "\n")
    table.to_csv(out / f"{args.paper}.csv", index=False)
    if args.latex:
        (out / f"{args.paper}.tex").write_text(table.to_latex(index=False, float_format="%.4f"))
    print(markdown)
    print()
    print("\n".join(notes))
    print(f"\nwritten: {out / args.paper}.md, .csv" + (", .tex" if args.latex else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
