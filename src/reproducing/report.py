"""The last step of a reproduction: the paper's report, pinned to the runs this reproduction used."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from src.config.compose import EXPERIMENTS_DIR
from src.papers.registry import discover
from src.reporting import Report, build_report, write_report
from src.reporting.selection import has_test_metrics
from src.reproducing.running import RowOutcome


def _read(path: Path, loader: str) -> dict:
    try:
        text = path.read_text()
        data = json.loads(text) if loader == "json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def pins_for(paper: str, outcomes: Sequence[RowOutcome]) -> dict[str, Path]:
    """``{experiment: run dir}`` of the completed rows that are runs of ``paper`` with test metrics (rows of
    stand-in networks, e.g. a recognizer another paper's demo trains first, are not the paper's rows)."""
    info = discover()[paper]
    pins = {}
    for outcome in outcomes:
        if not outcome.ok or not outcome.run_dir:
            continue
        run_dir = Path(outcome.run_dir)
        model = _read(run_dir / "config.yaml", "yaml").get("model")
        target = model.get("_target_") if isinstance(model, dict) else None
        if target in info.targets and has_test_metrics(_read(run_dir / "summary.json", "json")):
            pins[outcome.experiment] = run_dir
    return pins


def reproduce_report(
    paper: str,
    outcomes: Sequence[RowOutcome],
    runs_root: Path,
    out: Path,
    experiments_dir: Path = EXPERIMENTS_DIR,
) -> tuple[Report, list[Path]]:
    """Build and write ``paper``'s report with the reproduction's runs pinned; raises ``ReportError`` when
    there is nothing to report."""
    report = build_report(paper, runs_root, experiments_dir, pins=pins_for(paper, outcomes))
    return report, write_report(report, out)
