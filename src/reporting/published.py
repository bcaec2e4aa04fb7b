"""Published numbers beside the reproduced ones: ``experiments/<paper>/published.csv``, checked against the
paper's table, adds ``<metric> (paper)`` and ``<metric> Δ`` (reproduced − published) after each metric.

The file (docs/reports.md, "Published numbers") has a header row and one row per published table row:

* **key columns**: text columns of the paper's table (``detector``, ``test set``, ...) with the exact values
  the layout writes; a published row is compared with every table row whose keys are equal;
* **metric columns**: numeric columns of the table, in the table's units (an AUC of "96.37 %" is ``0.9637``);
  an empty cell means "not published"; a metric column the table does not have (no run reported it) is
  shown alone, with a note;
* ``source``: where the row's numbers come from (paper, table, row and column, or repository and commit).

Published rows with no reproduced row are appended to the table with empty reproduced values, so the table
shows what is still to reproduce. When no table row matches any published row (e.g. runs on synthetic demo
data, whose test sets are labelled ``(synthetic)``) nothing is added: the table stays as reproduced and the
note says that none matched. Every problem (a column that is not in the table, a value that is not a
number or is out of its metric's range, a duplicate row, a row without a source) is an error naming the
file, the line and the column: a wrong comparison must never look like a result.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.reporting.errors import ReportError
from src.utils.tables import is_missing

PUBLISHED_FILE = "published.csv"
SOURCE_COLUMN = "source"
PAPER_SUFFIX = " (paper)"
DELTA_SUFFIX = " Δ"
#: differences are rounded to this many decimals: no float noise (0.91 − 0.9637 is -0.0537, not
#: -0.05369999999999997) in the CSV, far below any published precision
DELTA_DECIMALS = 10
#: (pattern on the lower-cased column name, lowest, highest, what the metric is); the first match applies
METRIC_RANGES: tuple[tuple[re.Pattern[str], float, float, str], ...] = (
    (re.compile(r"\bcos\b|cosine|diversity"), -1.0, 1.0, "a cosine similarity"),
    (re.compile(r"psnr"), 0.0, 100.0, "a PSNR in dB"),
    (
        re.compile(
            r"\b(auc|ap|eer|acc|accuracy|ssim|rate|tar|asr|psr|success|detected|iou|mean|lfw|cfp_fp|"
            r"cplfw|calfw|agedb)\b|rank-\d+"
        ),
        0.0,
        1.0,
        "a fraction (the table's units: 0.9637, not 96.37)",
    ),
    (re.compile(r"lpips|\bfid\b|\bmae\b|\bnme\b"), 0.0, math.inf, "a non-negative score"),
    (re.compile(r"\b(videos|frames|images)\b|bytes"), 0.0, math.inf, "a count"),
)


@dataclass(frozen=True)
class PublishedRow:
    """One row of a published file: its line, key values, published metric values and source."""

    line: int
    keys: tuple[str, ...]
    values: dict[str, float]
    source: str


@dataclass(frozen=True)
class PublishedTable:
    """A checked published file: which columns are keys, which are metrics, and its rows."""

    path: Path
    keys: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[PublishedRow, ...]


@dataclass(frozen=True)
class Comparison:
    """What merging a published file into a table found (the notes are written from it)."""

    path: Path
    metrics: tuple[str, ...]
    #: metric columns of the file that the table does not have (shown as ``(paper)`` columns alone)
    absent: tuple[str, ...]
    #: published rows, and those that matched at least one table row
    total: int
    matched: int
    #: table rows that have a published row
    compared_rows: int
    #: ``key=value, ...`` of each published row without a reproduced row
    unmatched: tuple[str, ...]
    #: source → number of rows citing it, in file order
    sources: dict[str, int]
    #: keys the rows were compared on
    keys: tuple[str, ...] = ()
    #: False when no table row matched: the published columns and rows were left out of the table
    shown: bool = True


def metric_range(column: str) -> tuple[float, float, str] | None:
    """(lowest, highest, what) a value of metric ``column`` can take, from its name; ``None`` if unknown."""
    name = column.lower()
    for pattern, low, high, what in METRIC_RANGES:
        if pattern.search(name):
            return low, high, what
    return None


def text_columns(table: pd.DataFrame) -> list[str]:
    """The table's text (key) columns: not numeric, or boolean (a flag such as ``faithful_bugs``)."""
    return [
        str(c)
        for c in table.columns
        if pd.api.types.is_bool_dtype(table[c]) or not pd.api.types.is_numeric_dtype(table[c])
    ]


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, cells) of every non-blank row; a clear error for anything csv cannot read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: files saved by spreadsheets
            reader = csv.reader(handle)
            try:
                header = [name.strip() for name in next(reader)]
            except StopIteration:
                raise ReportError(f"{path}: the file is empty (expected a header row)") from None
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise ReportError(f"{path}: not a readable CSV file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text: {exc}") from None
    return header, rows


def _check_header(path: Path, header: list[str]) -> None:
    if any(not name for name in header):
        raise ReportError(f"{path}: the header has an empty column name: {header}")
    duplicated = sorted(name for name, n in Counter(header).items() if n > 1)
    if duplicated:
        raise ReportError(f"{path}: column(s) named twice in the header: {duplicated}")
    if SOURCE_COLUMN not in header:
        raise ReportError(
            f"{path}: no '{SOURCE_COLUMN}' column: every row must say where its numbers come from "
            f"(paper, table, row and column; or repository, file and commit)"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _classify(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], table: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """(key columns, metric columns): the table's text columns are keys, its numeric ones metrics; a column
    the table lacks is a metric when every value is a number, else an error (keys must match the table)."""
    text = text_columns(table)
    keys, metrics = [], []
    for i, name in enumerate(header):
        if name == SOURCE_COLUMN:
            continue
        if name in table.columns:
            (keys if name in text else metrics).append(name)
            continue
        values = [row[i].strip() for _, row in rows if i < len(row) and row[i].strip()]
        if all(_is_number(v) for v in values):
            metrics.append(name)
        elif len(table.columns):
            raise ReportError(
                f"{path}: column '{name}' is not a column of the table, so its rows cannot be matched "
                f"(the table's key columns: {text})"
            )
        else:  # nothing reproduced to match: the published rows are the table
            keys.append(name)
    if not keys:
        raise ReportError(
            f"{path}: no key column: the file must share at least one text column with the table, to say "
            f"which row each number belongs to (the table's key columns: {text}; the file's: {header})"
        )
    if not metrics:
        raise ReportError(f"{path}: no metric column (only keys {keys} and '{SOURCE_COLUMN}')")
    return keys, metrics


def _value(path: Path, line: int, column: str, text: str) -> float:
    where = f"{path}, line {line}, column '{column}'"
    try:
        value = float(text)
    except ValueError:
        raise ReportError(
            f"{where}: '{text}' is not a number (write plain numbers in the table's units, e.g. 0.9637 "
            f"for an AUC of 96.37 %; leave the cell empty when nothing is published)"
        ) from None
    if not math.isfinite(value):
        raise ReportError(f"{where}: '{text}' is not a finite number")
    known = metric_range(column)
    if known is not None and not known[0] <= value <= known[1]:
        low, high, what = known
        raise ReportError(f"{where}: {text} is out of range for {what} ([{low:g}, {high:g}])")
    return value


def read_published(path: Path, table: pd.DataFrame) -> PublishedTable:
    """Read and check ``path`` against ``table`` (see the module docstring); every problem is an error
    naming the file, the line and the column."""
    header, rows = _read_rows(path)
    _check_header(path, header)
    if not rows:
        raise ReportError(f"{path}: no rows below the header")
    keys, metrics = _classify(path, header, rows, table)
    index = {name: i for i, name in enumerate(header)}
    seen: dict[tuple[str, ...], int] = {}
    parsed = []
    for line, cells in rows:
        if len(cells) != len(header):
            raise ReportError(f"{path}, line {line}: {len(cells)} field(s), the header has {len(header)}")
        key = tuple(cells[index[k]].strip() for k in keys)
        for name, value in zip(keys, key, strict=True):
            if not value:
                raise ReportError(f"{path}, line {line}, column '{name}': empty key value")
        if key in seen:
            described = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True))
            raise ReportError(f"{path}, line {line}: the same row ({described}) as line {seen[key]}")
        seen[key] = line
        values = {
            m: _value(path, line, m, cells[index[m]].strip()) for m in metrics if cells[index[m]].strip()
        }
        if not values:
            raise ReportError(f"{path}, line {line}: no published number in any of {metrics}")
        source = cells[index[SOURCE_COLUMN]].strip()
        if not source:
            raise ReportError(
                f"{path}, line {line}, column '{SOURCE_COLUMN}': empty; say where the numbers come from"
            )
        parsed.append(PublishedRow(line, key, values, source))
    return PublishedTable(path, tuple(keys), tuple(metrics), tuple(parsed))


def _key_text(value: object) -> str:
    return "" if is_missing(value) else str(value)


def _typed_key(table: pd.DataFrame, column: str, text: str) -> object:
    """A key value of an appended row, typed like the table's column (``True`` in a boolean column)."""
    if column in table.columns and pd.api.types.is_bool_dtype(table[column]) and text in ("True", "False"):
        return text == "True"
    return text


def add_published(table: pd.DataFrame, published: PublishedTable) -> tuple[pd.DataFrame, Comparison]:
    """``table`` with ``<metric> (paper)`` and ``<metric> Δ`` after each published metric (the paper column
    alone, at the end, for a metric the table lacks) and the unmatched published rows appended; ``table``
    unchanged when none of its rows matches a published row (``Comparison.shown`` is then False)."""
    keys = list(published.keys)
    by_key = {row.keys: row for row in published.rows}
    if len(table):
        table_keys = [tuple(_key_text(v) for v in row) for row in table[keys].itertuples(index=False)]
    else:
        table_keys = []
    matches = [by_key.get(key) for key in table_keys]
    if len(table) and not any(matches):  # nothing comparable (e.g. demo data): the table stays as it is
        return table, _comparison(published, matches, (), shown=False)
    out = table.copy()
    absent = []
    for metric in published.metrics:
        paper_column, delta_column = metric + PAPER_SUFFIX, metric + DELTA_SUFFIX
        clash = [c for c in (paper_column, delta_column) if c in out.columns]
        if clash:
            raise ReportError(f"{published.path}: the table already has a column {clash[0]!r}")
        paper = pd.Series(
            [m.values.get(metric, math.nan) if m else math.nan for m in matches], index=out.index, dtype=float
        )
        if metric in out.columns:
            at = out.columns.get_loc(metric) + 1
            out.insert(at, paper_column, paper)
            delta = pd.to_numeric(out[metric], errors="coerce") - paper
            out.insert(at + 1, delta_column, delta.round(DELTA_DECIMALS))
        else:
            absent.append(metric)
            out[paper_column] = paper
    extra = _unmatched(published, matches)
    if extra:
        for key in keys:
            if key not in out.columns:
                out[key] = pd.Series(dtype=object)
        rows = [
            {
                **{k: _typed_key(table, k, v) for k, v in zip(keys, row.keys, strict=True)},
                **{m + PAPER_SUFFIX: row.values.get(m, math.nan) for m in published.metrics},
            }
            for row in extra
        ]
        appended = pd.DataFrame(rows).reindex(columns=out.columns)
        out = pd.concat([out.astype(object), appended.astype(object)], ignore_index=True)
        out = out.infer_objects()
    return out, _comparison(published, matches, tuple(absent), shown=True)


def _unmatched(published: PublishedTable, matches: list[PublishedRow | None]) -> list[PublishedRow]:
    used = {m.keys for m in matches if m is not None}
    return [row for row in published.rows if row.keys not in used]


def _comparison(
    published: PublishedTable, matches: list[PublishedRow | None], absent: tuple[str, ...], *, shown: bool
) -> Comparison:
    keys = published.keys
    extra = _unmatched(published, matches)
    return Comparison(
        path=published.path,
        metrics=published.metrics,
        absent=absent,
        total=len(published.rows),
        matched=len(published.rows) - len(extra),
        compared_rows=sum(m is not None for m in matches),
        unmatched=tuple(", ".join(f"{k}={v}" for k, v in zip(keys, row.keys, strict=True)) for row in extra),
        sources=dict(Counter(row.source for row in published.rows)),
        keys=keys,
        shown=shown,
    )


def comparison_notes(comparison: Comparison, shown_path: str) -> list[str]:
    """The notes under a table: where the published numbers come from and how many rows matched."""
    c = comparison
    if not c.shown:
        return [
            f"Published numbers from {shown_path} ({', '.join(c.metrics)}): none of its {c.total} row(s) "
            f"matches a row of this table (compared on {', '.join(c.keys)}), so they are not shown in it.",
            *(f"- source ({n} row(s)): {source}" for source, n in c.sources.items()),
        ]
    lines = [
        f"Published numbers from {shown_path}: {', '.join(c.metrics)}. Beside each metric, `<metric>"
        f"{PAPER_SUFFIX}` is the published value and `<metric>{DELTA_SUFFIX}` = reproduced − published.",
        f"- {c.matched} of {c.total} published row(s) match a reproduced row "
        f"({c.compared_rows} table row(s) compared).",
        *(f"- source ({n} row(s)): {source}" for source, n in c.sources.items()),
    ]
    if c.absent:
        lines.append(
            "- not a column of this table (no run reports it), so only the published values are shown: "
            + ", ".join(f"'{m}'" for m in c.absent)
        )
    if c.unmatched:
        lines.append(
            f"- no reproduced row for {len(c.unmatched)} published row(s), listed at the end of the table "
            "with empty reproduced values:"
        )
        lines += [f"  - {row}" for row in c.unmatched]
    return lines
