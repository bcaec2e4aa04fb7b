"""The results tables runs print (``results.csv``), stacked across runs, their settings split into columns.

Many runs write one row per evaluated variant (an obfuscator, a DP sampler at an ε, an attack at a budget),
and describe the variant's setting as text, e.g. ``"kernel_size=31, eval_sigma=5.0"``. To plot a metric
against a strength, the rows of several runs are stacked (:func:`collect_results`) and each setting is split
into ``setting.<name>`` columns (:func:`expand_settings`).
"""

from __future__ import annotations

import ast
import fnmatch
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "RESULTS_FILE",
    "collect_results",
    "expand_settings",
    "parse_setting",
    "pick_columns",
    "read_results",
    "sweep_columns",
    "varying_settings",
]

RESULTS_FILE = "results.csv"
#: the columns ``src.sweep`` writes before the swept parameters in a sweep's ``index.csv``
SWEEP_INDEX_COLUMNS = ("point", "status", "returncode", "reason", "run_dir")
_RUN_KEYS = ("experiment", "run_id", "start_time")


def read_results(run_dir: str | Path, name: str = RESULTS_FILE) -> pd.DataFrame:
    """A run's ``results.csv`` (or another table of the run dir, e.g. ``predictions/robust_accuracy.csv``).

    Raises ``FileNotFoundError`` naming the path when the run wrote no such file, ``ValueError`` when it is
    not a readable CSV.
    """
    path = Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"no results table: {path} is missing")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err


def collect_results(
    runs: pd.DataFrame, name: str = RESULTS_FILE, *, require: Iterable[str] = ()
) -> pd.DataFrame:
    """The ``name`` tables of every run in ``runs`` (a :func:`~src.analysis.load_runs` table) stacked, each
    row prefixed with its run's ``experiment``, ``run_id`` and ``start_time``.

    Runs without the file, or whose table lacks a column of ``require``, are left out: a runs folder mixes
    families and only some runs write such a table. The result is empty (with the run columns) when none has.
    """
    needed = list(require)
    frames = []
    for row in runs.to_dict("records"):
        path = Path(row["run_dir"]) / name
        if not path.is_file():
            continue
        table = read_results(row["run_dir"], name)
        if any(column not in table.columns for column in needed):
            continue
        for position, key in enumerate(_RUN_KEYS):
            table.insert(position, key, row.get(key))
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=[*_RUN_KEYS, *needed])
    return pd.concat(frames, ignore_index=True)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets: ``"box=[0.2, 0.8], fill=0"`` -> two parts."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _value(text: str) -> Any:
    """A number, bool, list or None when the text is a Python literal; the text itself otherwise."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_setting(text: Any) -> dict[str, Any]:
    """``"kernel_size=31, eval_sigma=5.0"`` -> ``{"kernel_size": 31, "eval_sigma": 5.0}``.

    ``"-"``, an empty string or NaN (no setting) give ``{}``. Raises ``ValueError`` naming the part that is
    not ``name=value``.
    """
    if not isinstance(text, str) or text.strip() in ("", "-"):
        return {}
    setting: dict[str, Any] = {}
    for part in _split_top_level(text):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"setting {text!r}: {part!r} is not name=value")
        setting[name.strip()] = _value(value.strip())
    return setting


def expand_settings(table: pd.DataFrame, column: str = "eval setting") -> pd.DataFrame:
    """``table`` with each row's ``column`` parsed into ``setting.<name>`` columns (NaN where a row's
    setting lacks the name). Raises ``KeyError`` when the table has no such column."""
    if column not in table.columns:
        raise KeyError(f"no {column!r} column in the table (columns: {list(table.columns)})")
    parsed = pd.DataFrame([parse_setting(text) for text in table[column]], index=table.index)
    parsed.columns = [f"setting.{name}" for name in parsed.columns]
    return pd.concat([table, parsed], axis="columns")


def varying_settings(rows: pd.DataFrame) -> list[str]:
    """The numeric ``setting.*`` columns whose value differs between ``rows`` (e.g. one obfuscator's rows
    across runs): the strength parameters to plot against."""
    varying = []
    for column in (c for c in rows.columns if c.startswith("setting.")):
        values = pd.to_numeric(rows[column], errors="coerce").dropna()
        if len(values) == rows[column].notna().sum() and values.nunique() > 1:
            varying.append(column)
    return varying


def pick_columns(
    table: pd.DataFrame, patterns: Sequence[str], *, first_only: bool = False, exclude: Sequence[str] = ()
) -> list[str]:
    """The numeric columns of ``table`` whose name matches one of the ``fnmatch`` patterns (case-sensitive),
    in the patterns' order, each once; with ``first_only``, only the first match of each pattern (e.g. one
    SSIM column of a table with several). Columns matching ``exclude`` are skipped."""
    numeric = [
        c
        for c in table.columns
        if pd.to_numeric(table[c], errors="coerce").notna().any()
        and not any(fnmatch.fnmatchcase(c, pattern) for pattern in exclude)
    ]
    picked: list[str] = []
    for pattern in patterns:
        matches = [c for c in numeric if fnmatch.fnmatchcase(c, pattern) and c not in picked]
        picked += matches[:1] if first_only else matches
    return picked


def sweep_columns(index_csv: str | Path) -> tuple[list[str], str | None]:
    """The swept parameters and the metric of a sweep's ``index.csv``: the columns after the point, status,
    return code, reason and run dir. The metric is the one ``sweep.json`` next to the index names; without
    that file, the last column when its name has a ``/`` (``val/rank1``; parameters are config keys)."""
    index_csv = Path(index_csv)
    header = list(pd.read_csv(index_csv, nrows=0).columns)
    missing = [c for c in SWEEP_INDEX_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{index_csv}: not a sweep index, missing column(s) {missing}")
    rest = header[max(header.index(c) for c in SWEEP_INDEX_COLUMNS) + 1 :]
    record = index_csv.parent / "sweep.json"
    metric: str | None = None
    if record.is_file():
        try:
            named = json.loads(record.read_text(encoding="utf-8")).get("metric")
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            raise ValueError(f"{record}: not a readable sweep record ({err})") from err
        metric = named.get("name") if isinstance(named, dict) else None
    elif rest and "/" in rest[-1]:
        metric = rest[-1]
    return [c for c in rest if c != metric], metric if metric in rest else None
