"""The same experiments run at two git commits, side by side: per setting, each metric's mean at commit A,
at commit B, and the difference B - A.

Every run's ``meta.json`` records the commit it ran (``git.commit``) and whether the working tree had
uncommitted changes (``git.dirty``). Runs of one commit are pooled per experiment and setting the way
:func:`~src.analysis.aggregate_over_seeds` pools them (seeds are averaged, different settings never are), so
a sweep run at both commits is diffed point by point.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from src.analysis.grouping import (
    _comparable,
    _default_metrics,
    _order,
    current_targets,
    varying_config_columns,
)

__all__ = ["commit_table", "diff_commits", "resolve_commit", "with_commits"]


def _git(run_dir: str) -> dict[str, Any]:
    path = Path(run_dir) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the run's meta.json ({err})") from err
    git = meta.get("git") if isinstance(meta, dict) else None
    return git if isinstance(git, dict) else {}


def with_commits(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (a :func:`~src.analysis.load_runs` table) with ``commit`` and ``dirty`` columns read from
    each run's ``meta.json`` (``None`` / ``False`` when it records no git state)."""
    runs = runs.copy()
    gits = [_git(d) for d in runs["run_dir"]]
    runs["commit"] = [g.get("commit") for g in gits]
    runs["dirty"] = [bool(g.get("dirty")) for g in gits]
    return runs


def commit_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per commit of a :func:`with_commits` table, oldest first: its runs, experiments, first and
    last start time, and how many runs had uncommitted changes."""
    known = runs[runs["commit"].notna()]
    rows = [
        {
            "commit": commit,
            "runs": len(group),
            "experiments": ", ".join(sorted(set(group["experiment"]))),
            "first start": group["start_time"].min(),
            "last start": group["start_time"].max(),
            "dirty runs": int(group["dirty"].sum()),
        }
        for commit, group in known.groupby("commit", sort=False)
    ]
    columns = ["commit", "runs", "experiments", "first start", "last start", "dirty runs"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("last start", kind="mergesort", ignore_index=True)


def resolve_commit(runs: pd.DataFrame, commit: str) -> str:
    """The full commit of a :func:`with_commits` table that starts with ``commit`` (a short sha is enough).
    Raises ``ValueError`` when no run or more than one commit matches."""
    known = sorted({c for c in runs["commit"] if isinstance(c, str)})
    matches = [c for c in known if c.startswith(commit.strip())] if commit.strip() else []
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} commits ({', '.join(m[:10] for m in matches)})"
        raise ValueError(f"commit {commit!r}: {found} matches; the runs have {[c[:10] for c in known]}")
    return matches[0]


def diff_commits(
    runs: pd.DataFrame,
    commit_a: str,
    commit_b: str,
    metrics: Sequence[str] | None = None,
    *,
    ignore: Sequence[str] = (),
) -> pd.DataFrame:
    """Per experiment, setting and metric: the mean at ``commit_a`` (``A``), at ``commit_b`` (``B``), the
    difference ``B - A`` and the run counts ``n A`` / ``n B``.

    ``runs`` is a :func:`with_commits` table (filter it to completed runs first). Commits may be given as
    prefixes. A setting is the experiment plus every config value that differs between runs of one commit
    (:func:`~src.analysis.varying_config_columns`; ``ignore`` pools over more keys); config values that
    differ only between the two commits do not split rows, because they are what the commits changed.
    ``metrics`` defaults to the numeric ``test/*`` columns; a metric the setting logged at neither commit gets
    no row. Only settings run at both commits are kept.
    """
    a, b = resolve_commit(runs, commit_a), resolve_commit(runs, commit_b)
    if a == b:
        raise ValueError(f"both commits are {a[:10]}: give two different commits")
    both = current_targets(runs[runs["commit"].isin([a, b])])
    keys: list[str] = []
    for commit in (a, b):
        for column in varying_config_columns(both[both["commit"] == commit], ignore=ignore):
            if column not in keys:
                keys.append(column)
    # keys that differ only between the two commits do not split rows: they are the change being measured
    pooled = [c for c in varying_config_columns(both, ignore=ignore) if c not in keys]
    metrics = list(_default_metrics(both) if metrics is None else metrics)
    missing = [m for m in metrics if m not in both.columns]
    if missing:
        raise KeyError(f"metric column(s) not in the runs table: {missing}")
    group = ["experiment", *keys]
    settings: dict[tuple[Any, ...], dict[str, list[int]]] = {}
    for position, (_, row) in enumerate(both.iterrows()):
        setting = tuple(_comparable(row[k]) for k in group)
        settings.setdefault(setting, {a: [], b: []})[row["commit"]].append(position)
    rows = []
    for _, members in sorted(settings.items(), key=lambda item: tuple(_order(v) for v in item[0])):
        if not members[a] or not members[b]:
            continue  # run at one commit only: nothing to diff
        first = both.iloc[members[a][0]]
        for metric in metrics:
            mean_a, mean_b = (
                pd.to_numeric(both.iloc[members[c]][metric], errors="coerce").mean() for c in (a, b)
            )
            if pd.isna(mean_a) and pd.isna(mean_b):
                continue  # a metric of other experiments: this one logged it at neither commit
            rows.append(
                {
                    **{k: first[k] for k in group},
                    "metric": metric,
                    "A": mean_a,
                    "B": mean_b,
                    "B - A": mean_b - mean_a,
                    "n A": len(members[a]),
                    "n B": len(members[b]),
                }
            )
    table = pd.DataFrame(rows, columns=[*group, "metric", "A", "B", "B - A", "n A", "n B"])
    table.attrs.update(commit_a=a, commit_b=b, pooled_over=pooled)
    return table
