"""Show what differs between runs: ``python -m src.compare RUN_DIR RUN_DIR [...] [--metrics PATTERN ...]``.

Prints the runs (status, seed, git commit and dirty flag), the config keys and command-line overrides whose
values differ, and every final metric of ``summary.json`` side by side with its difference from the first
run. Reads the run records only; writes nothing. Exit code 2 when a path is not a readable run dir.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.analysis.compare import compare_runs
from src.analysis.runs import RunRecordError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more run directories")
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="PATTERN",
        help="only the summary metrics matching these glob patterns (e.g. 'test/*')",
    )
    return parser


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, compare the runs and print the report; 2 on bad input."""
    parser = _parser()
    args = parser.parse_args(argv)
    if len(args.run_dirs) < 2:
        parser.error("give at least two run directories")
    for raw in args.run_dirs:
        if not Path(raw).is_dir():
            print(f"error: no such run directory: {raw}", file=sys.stderr)
            return 2
    try:
        comparison = compare_runs(*args.run_dirs, metrics=args.metrics)
    except (FileNotFoundError, RunRecordError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        print(comparison.to_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
