"""What differs between two or more runs: config, overrides, code version, status and final metrics.

Reads only the plain run record (``config.yaml``, ``overrides.txt``, ``meta.json``, ``summary.json``), where
secret values are already written as ``***``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from src.analysis.runs import Run, flatten_dict, load_run

__all__ = ["ABSENT", "RunComparison", "compare_runs"]

ABSENT = "(absent)"
"""Shown where a run has no such config key, override or metric."""

_RUN_FIELDS = ("experiment", "status", "seed", "commit", "dirty", "start_time", "end_time", "run_dir")


@dataclass(frozen=True)
class RunComparison:
    """The differences between runs; every table has one column per run, named by its label.

    ``runs``: one row per run (experiment, status, seed, git commit and dirty flag, times, run dir).
    ``config``: flattened config keys whose values differ. ``overrides``: command-line override keys whose
    values differ. ``metrics``: every numeric ``summary.json`` value, then the difference from the first run:
    a ``diff`` column (second minus first) for two runs, ``diff <label>`` columns for more.
    """

    labels: list[str]
    runs: pd.DataFrame
    config: pd.DataFrame
    overrides: pd.DataFrame
    metrics: pd.DataFrame

    @property
    def same_code(self) -> bool:
        """True when every run ran the same known commit with no uncommitted changes."""
        commits = set(self.runs["commit"])
        return len(commits) == 1 and None not in commits and not self.runs["dirty"].any()

    def code_note(self) -> str:
        """One line on the code versions: same commit or not, and which runs had uncommitted changes."""
        commits = list(dict.fromkeys(self.runs["commit"]))
        dirty = [label for label, flag in self.runs["dirty"].items() if flag]
        if None in commits:
            unknown = [str(label) for label, commit in self.runs["commit"].items() if commit is None]
            text = f"commit unknown for {', '.join(unknown)}"
        elif len(commits) == 1:
            text = f"same commit {commits[0]}"
        else:
            text = f"{len(commits)} different commits"
        changes = f"uncommitted changes in {', '.join(dirty)}" if dirty else "no uncommitted changes"
        return f"{text}; {changes}"

    def to_text(self) -> str:
        """A plain-text report of the comparison (what the ``src.compare`` CLI prints)."""
        sections = [
            ("runs", _table_text(self.runs.T)),
            (f"code: {self.code_note()}", ""),
            ("config differences", _table_text(self.config, empty="none")),
            ("override differences", _table_text(self.overrides, empty="none")),
            ("final metrics (summary.json)", _table_text(self.metrics, empty="no numeric metrics")),
        ]
        blocks = [f"== {title}\n{body}" if body else f"== {title}" for title, body in sections]
        return "\n\n".join(blocks) + "\n"

    def __str__(self) -> str:
        return self.to_text()


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _table_text(frame: pd.DataFrame, empty: str = "") -> str:
    if frame.empty:
        return empty
    return frame.map(_text).to_string()


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run ids, or ``experiment/run_id`` when ids repeat; a counter when even those repeat."""
    ids = [r.run_id for r in runs]
    labels = ids if len(set(ids)) == len(ids) else [f"{r.experiment}/{r.run_id}" for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels


def _differing(values: Mapping[str, Mapping[str, Any]], labels: list[str]) -> pd.DataFrame:
    """Keys whose value is not the same in every run (missing counts as a value), one column per run."""
    keys = sorted({key for per_run in values.values() for key in per_run})
    rows = {}
    for key in keys:
        row = [values[label].get(key, ABSENT) for label in labels]
        if len({repr(v) for v in row}) > 1:
            rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=labels, dtype=object)


def _override_values(overrides: Sequence[str]) -> dict[str, str]:
    """``["a.b=1", "+c=2", "~d"]`` -> ``{"a.b": "1", "+c": "2", "~d": ""}`` (last one wins)."""
    parsed: dict[str, str] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        parsed[key.strip()] = value.strip()
    return parsed


def _is_metric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metrics(runs: Sequence[Run], labels: list[str], patterns: Sequence[str] | None) -> pd.DataFrame:
    names = sorted({k for r in runs for k, v in r.summary.items() if _is_metric(v)})
    if patterns is not None:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    frame = pd.DataFrame(
        {
            label: [float(r.summary[n]) if _is_metric(r.summary.get(n)) else math.nan for n in names]
            for label, r in zip(labels, runs, strict=True)
        },
        index=pd.Index(names, dtype=object),
    )
    for label in labels[1:]:
        name = "diff" if len(labels) == 2 else f"diff {label}"
        frame[name] = frame[label] - frame[labels[0]]
    return frame


def _run_row(run: Run) -> dict[str, Any]:
    git = run.meta.get("git") if isinstance(run.meta.get("git"), Mapping) else {}
    return {
        "experiment": run.experiment,
        "status": run.status,
        "seed": run.seed,
        "commit": git.get("commit"),
        "dirty": bool(git.get("dirty")),
        "start_time": run.start_time,
        "end_time": run.meta.get("end_time"),
        "run_dir": str(run.run_dir),
    }


def compare_runs(*runs: Run | str | Path, metrics: Sequence[str] | None = None) -> RunComparison:
    """Compare two or more runs (run dirs or :class:`Run` objects) in the order given.

    ``metrics``: ``fnmatch`` patterns selecting the summary metrics shown (e.g. ``["test/*"]``); all numeric
    summary values by default. Raises ``ValueError`` for fewer than two runs, and what :func:`load_run`
    raises for a path that is not a readable run dir.
    """
    if len(runs) < 2:
        raise ValueError(f"compare_runs needs at least two runs, got {len(runs)}")
    loaded = [r if isinstance(r, Run) else load_run(r, read_wandb=False) for r in runs]
    labels = _labels(loaded)
    by_label = dict(zip(labels, loaded, strict=True))
    runs_table = pd.DataFrame([_run_row(r) for r in loaded], index=labels, columns=list(_RUN_FIELDS))
    return RunComparison(
        labels=labels,
        runs=runs_table,
        config=_differing({k: flatten_dict(r.config) for k, r in by_label.items()}, labels),
        overrides=_differing({k: _override_values(r.overrides) for k, r in by_label.items()}, labels),
        metrics=_metrics(loaded, labels, metrics),
    )
