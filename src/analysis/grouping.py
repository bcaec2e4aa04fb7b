"""Mean and std of metrics over seeds, pooling only runs whose settings are the same.

Runs of one experiment are often not repeats of one setting: a sweep changes the learning rate, a quick check
shortens training. Pooling them into one "mean ± std over seeds" mixes different settings. Here the runs of
an experiment are grouped by every config value that differs between them, except the seed and bookkeeping
keys (run ids and dirs, paths, logger and sweep settings), and the table shows the grouping it used.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from src.config.buildable import former_target

__all__ = ["BOOKKEEPING_KEYS", "aggregate_over_seeds", "current_targets", "varying_config_columns"]

BOOKKEEPING_KEYS = (
    "config.seed",  # what the table averages over
    "config.paths.*",  # where files live, not what ran
    "config.run.*",  # run id, run dir, tags, notes
    "config.sweep.*",  # sweep name and point index
    "config.logger.*",  # W&B mode, project, group, ids
    "config.resume",
    "config.print_config",
    "config.*.dirpath",
    "config.*_dir",
    "config.*_id",
    "config.*timestamp",
    "config.*_time",
)
"""Config columns (``fnmatch`` patterns) that never separate groups: they say where or how a run was
recorded, not what it computed."""


def _comparable(value: Any) -> Any:
    """A hashable stand-in for a config value; missing values (NaN/None) compare equal to each other."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _matches(column: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(column, pattern) for pattern in patterns)


def varying_config_columns(
    runs: pd.DataFrame, *, ignore: Sequence[str] = (), by: str = "experiment"
) -> list[str]:
    """``config.*`` columns whose value differs between two runs of the same ``by`` group (experiment).

    Seeds and :data:`BOOKKEEPING_KEYS` are left out, and so are columns matching a pattern in ``ignore``
    (e.g. ``"config.model.recognizer_ckpt"``). A key present in one run and missing in another counts as
    differing.
    """
    runs = current_targets(runs)
    skip = (*BOOKKEEPING_KEYS, *ignore)
    candidates = [c for c in runs.columns if c.startswith("config.") and not _matches(c, skip)]
    groups = [rows for _, rows in runs.groupby(by, sort=False, dropna=False)] if by in runs else [runs]
    return [
        column
        for column in candidates
        if any(len({_comparable(v) for v in rows[column]}) > 1 for rows in groups)
    ]


def current_targets(runs: pd.DataFrame) -> pd.DataFrame:
    """``config.*._target_`` values that name a class by a path it had before it moved (``@formerly``)
    replaced by today's path, so a refactor does not split runs of one setting into two groups.

    Former paths are known once the classes declaring them are imported (``src.papers.registry.discover()``
    imports every paper); unknown paths are kept as recorded.
    """
    columns = [c for c in runs.columns if c.startswith("config.") and c.endswith("._target_")]
    if not columns:
        return runs
    runs = runs.copy()
    for column in columns:
        runs[column] = runs[column].map(_current_target)
    return runs


def _current_target(value: Any) -> Any:
    moved = former_target(value) if isinstance(value, str) else None
    return f"{moved.__module__}.{moved.__qualname__}" if moved is not None else value


def _default_metrics(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("test/") and pd.api.types.is_numeric_dtype(runs[c])]


def _order(value: Any) -> tuple[int, Any]:
    """Sort key mixing numbers (numeric order), text and missing values (last)."""
    value = _comparable(value)
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _seed_text(seeds: Iterable[Any]) -> str:
    values = [s for s in seeds if _comparable(s) is not None]
    return ", ".join(str(s) for s in sorted(values, key=_order))


def aggregate_over_seeds(
    runs: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    ignore: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per experiment and setting: the grouping columns, ``seeds``, ``count``, each metric's mean/std.

    ``runs`` is a :func:`~src.analysis.load_runs` table (filter it first, e.g. to completed runs). A setting
    is the experiment plus the values of :func:`varying_config_columns`; runs differing in any of them are
    never pooled. ``seeds`` lists every run's seed, repeats included (``"0, 0"`` means the same seed twice:
    the std then measures nondeterminism, not seed variation). ``metrics`` defaults to the numeric
    ``test/*`` columns; each gives ``<metric> mean`` and ``<metric> std`` (sample std, NaN for one run; runs
    without the metric are skipped).
    """
    runs = current_targets(runs)
    metrics = list(_default_metrics(runs) if metrics is None else metrics)
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise KeyError(f"metric column(s) not in the runs table: {missing}")
    keys = ["experiment", *varying_config_columns(runs, ignore=ignore)]
    columns = [*keys, "seeds", "count", *(f"{m} {stat}" for m in metrics for stat in ("mean", "std"))]

    groups: dict[tuple[Any, ...], list[int]] = {}
    for position, (_, row) in enumerate(runs.iterrows()):
        groups.setdefault(tuple(_comparable(row[k]) for k in keys), []).append(position)

    table: list[dict[str, Any]] = []
    for _, positions in sorted(groups.items(), key=lambda item: tuple(_order(v) for v in item[0])):
        members = runs.iloc[positions]
        first = members.iloc[0]
        entry: dict[str, Any] = {key: first[key] for key in keys}
        entry["seeds"] = _seed_text(members["seed"]) if "seed" in members else ""
        entry["count"] = len(members)
        for metric in metrics:
            values = pd.to_numeric(members[metric], errors="coerce")
            entry[f"{metric} mean"] = values.mean()
            entry[f"{metric} std"] = values.std()
        table.append(entry)
    return pd.DataFrame(table, columns=columns)
