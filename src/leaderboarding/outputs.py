"""Write the leaderboard: ``leaderboard.csv``, ``leaderboard.md``, ``leaderboard.html`` and its two figures.

* CSV: every column of the wide result table at full precision (``pd.read_csv`` reads the same numbers
  back; missing values are empty cells), plus a boolean ``pareto`` column;
* markdown: the title, the notes as a bullet list, the panel summary, a compact main table (method id,
  status, ε, utility, worst rank-1, privacy, parrot gain, recovery, forgery flags, Pareto marker), the extra
  tables and links to the figures. Scores in [0, 1] show 3 decimals, dB values 2, missing values ``--``; a
  row that is not ``ok`` keeps its place and shows its status (its numbers ``--``);
* HTML: the same content as one self-contained page (inline CSS, the figures as ``<img>`` with paths relative
  to the page); every text is escaped, as method names and statuses come from configs and exceptions;
* ``leaderboard_pareto.png`` always, ``leaderboard_epsilon.png`` when the table has DP contenders (an older
  one is removed otherwise, so the folder never mixes two leaderboards).
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from src.leaderboarding.pareto import (
    EPSILON_CERTIFIED,
    EPSILON_NOMINAL,
    OK_STATUS,
    epsilon_plot,
    higher_is_better,
    pareto_front,
    pareto_plot,
)
from src.reporting.exporters import csv_text
from src.utils.tables import MISSING_TEXT, format_cell, is_missing, to_markdown

__all__ = ["FILE_NAMES", "PARETO_MARK", "compact_table", "display_table", "write_leaderboard"]

FILE_NAMES = {
    "md": "leaderboard.md",
    "csv": "leaderboard.csv",
    "html": "leaderboard.html",
    "pareto": "leaderboard_pareto.png",
    "epsilon": "leaderboard_epsilon.png",
}
PARETO_MARK = "★"
_REQUIRED = ("method id", "status")
#: rows whose numbers the main table shows: judged contenders and the reference (the unprotected faces)
SHOWN_STATUSES = (OK_STATUS, "reference")
_UTILITY = ("SSIM", "PSNR", "LPIPS")
_RECOVERY = ("recovery PSNR (right key)", "recovery PSNR (wrong key)")
_FLAGGED = " flagged"
_NUM = ' class="num"'
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.not-ok td { color: #888; font-style: italic; }
tr.front td { font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _decimals(column: str) -> str:
    """The number format of a column: 2 decimals for dB values (PSNR), ``g`` for ε, else 3."""
    if "psnr" in column.lower() or "(db)" in column.lower():
        return ".2f"
    if column.startswith("ε"):
        return "g"
    return ".3f"


def _cell(value: object, column: str) -> str:
    """One display cell: lists joined by ``, ``, numbers by :func:`_decimals`, missing ``--``."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in value) if value else MISSING_TEXT
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_cell(value, column, _decimals(column))


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every cell as its display text (see :func:`_cell`), for markdown and HTML."""
    return pd.DataFrame(
        {c: [_cell(v, str(c)) for v in table[c]] for c in table.columns}, index=table.index, dtype="object"
    )


def _finite(value: object) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    if is_missing(value) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _epsilon_text(nominal: object, certified: object) -> str:
    """``8 (certified 7.6)``, ``8 (certified)`` or ``8 (nominal, not certified)``; ``--`` without DP."""
    eps, cert = _finite(nominal), _finite(certified)
    if eps is None:
        return MISSING_TEXT
    if cert is None:
        return f"{eps:g} (nominal, not certified)"
    return f"{eps:g} (certified)" if cert == eps else f"{eps:g} (certified {cert:g})"


def _pair(right: str, wrong: str) -> str:
    """``right / wrong`` recovery cell; ``--`` when both are missing."""
    return MISSING_TEXT if right == wrong == MISSING_TEXT else f"{right} / {wrong}"


def compact_table(table: pd.DataFrame, front: pd.Series, utility: str = "SSIM") -> pd.DataFrame:
    """The leaderboard's main table as display text: method id, status, ε, the utility metrics, worst rank-1,
    privacy, parrot gain, recovery (right / wrong key), each judge's flagged fraction and the Pareto mark.
    Columns the wide table lacks are left out; rows that are neither ``ok`` nor the
    ``reference`` keep only their id and status."""
    table = table.reset_index(drop=True)
    front = pd.Series(list(front), dtype=bool)
    ok = table["status"].astype("object").isin(SHOWN_STATUSES)
    numeric = [c for c in (*_UTILITY, utility) if c in table.columns]
    numeric = list(dict.fromkeys(numeric))
    numeric += [c for c in ("worst rank-1", "privacy", "parrot gain") if c in table.columns]
    flags = [str(c) for c in table.columns if str(c).endswith(_FLAGGED)]
    shown = display_table(table[numeric + flags])
    out = pd.DataFrame(index=table.index)
    out["method id"] = table["method id"].astype("object").map(str)
    out["status"] = table["status"].astype("object").map(lambda s: MISSING_TEXT if is_missing(s) else str(s))
    if EPSILON_NOMINAL in table.columns:
        certified = table[EPSILON_CERTIFIED] if EPSILON_CERTIFIED in table.columns else [None] * len(table)
        out["ε"] = [_epsilon_text(n, c) for n, c in zip(table[EPSILON_NOMINAL], certified, strict=True)]
    for column in numeric:
        out[column] = shown[column]
    if any(c in table.columns for c in _RECOVERY):
        right, wrong = (
            display_table(table[[c]])[c].tolist() if c in table.columns else [MISSING_TEXT] * len(table)
            for c in _RECOVERY
        )
        out["recovery PSNR right / wrong key"] = [_pair(r, w) for r, w in zip(right, wrong, strict=True)]
    for column in flags:
        out[column] = shown[column]
    out["pareto"] = [PARETO_MARK if on else "" for on in front]
    values = [c for c in out.columns if c not in ("method id", "status")]
    out.loc[~ok, values] = MISSING_TEXT
    out.loc[~ok, "pareto"] = ""
    return out.reset_index(drop=True)


def _summary_text(value: Any) -> str:
    """A panel value as one line: mappings ``key: value; ...``, sequences joined by ``, ``."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_summary_text(v)}" for k, v in value.items()) or MISSING_TEXT
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_summary_text(v) for v in value) or MISSING_TEXT
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return format_cell(value, "", "g")
    return MISSING_TEXT if is_missing(value) else str(value)


def _front_note(privacy: str, utility: str) -> str:
    direction = "higher" if higher_is_better(utility) else "lower"
    return (
        f"{PARETO_MARK}: on the Pareto front of {privacy} (higher is better) vs {utility} ({direction} is "
        "better): no other ok contender is at least as good on both and better on one."
    )


def _markdown(
    title: str,
    notes: Sequence[str],
    panel: Mapping[str, Any] | None,
    main: pd.DataFrame,
    front_note: str,
    extra: Mapping[str, pd.DataFrame],
    plots: Mapping[str, Path],
) -> str:
    lines = [f"# {title}", ""]
    if notes:
        lines += [*(f"- {note}" for note in notes), ""]
    if panel:
        lines += ["## Panel", "", *(f"- **{k}**: {_summary_text(v)}" for k, v in panel.items()), ""]
    lines += ["## Results", "", to_markdown(main), "", front_note, ""]
    for name, frame in extra.items():
        lines += [
            f"## {name}",
            "",
            to_markdown(display_table(frame)) if len(frame.columns) else "(empty)",
            "",
        ]
    lines += ["## Plots", ""]
    lines += [f"![{name}]({path.name})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _html_table(
    frame: pd.DataFrame, row_classes: Sequence[str] | None = None, numeric: Sequence[bool] = ()
) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(
            f"<td{_NUM if numeric and numeric[j] else ''}>{esc(str(v))}</td>" for j, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _html(
    title: str,
    notes: Sequence[str],
    panel: Mapping[str, Any] | None,
    main: pd.DataFrame,
    classes: Sequence[str],
    front_note: str,
    extra: Mapping[str, pd.DataFrame],
    plots: Mapping[str, Path],
) -> str:
    esc = html.escape
    text_columns = ("method id", "status", "ε", "pareto")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    if panel:
        items = "".join(f"<li><b>{esc(str(k))}</b>: {esc(_summary_text(v))}</li>" for k, v in panel.items())
        parts += ["<h2>Panel</h2>", f"<ul>{items}</ul>"]
    numeric = [c not in text_columns for c in main.columns]
    parts += ["<h2>Results</h2>", _html_table(main, classes, numeric), f"<p>{esc(front_note)}</p>"]
    for name, frame in extra.items():
        shown = display_table(frame)
        is_num = [_is_number_column(frame[c]) for c in frame.columns]
        parts += [f"<h2>{esc(str(name))}</h2>", _html_table(shown, None, is_num)]
    parts.append("<h2>Plots</h2>")
    parts += [f'<p><img src="{esc(path.name)}" alt="{esc(name)}"></p>' for name, path in plots.items()]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_leaderboard(
    table: pd.DataFrame,
    folder: Path,
    *,
    title: str,
    notes: Sequence[str] = (),
    panel: Mapping[str, Any] | None = None,
    extra_tables: Mapping[str, pd.DataFrame] = MappingProxyType({}),
    privacy: str = "privacy",
    utility: str = "SSIM",
) -> dict[str, Path]:
    """Write the leaderboard files (module docstring) under ``folder`` and return them by kind: ``md``,
    ``csv``, ``html``, ``pareto`` and, when the table has DP contenders, ``epsilon``.

    ``table`` is the wide result table (one row per contender, rows kept in the given order); it needs
    ``method id``, ``status`` and the ``privacy`` and ``utility`` columns. ``panel`` is a summary mapping
    (name -> value) shown as a list; ``extra_tables`` are shown after the main table, under their names.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"write_leaderboard: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in (*_REQUIRED, privacy, utility) if c not in table.columns]
    if missing:
        raise KeyError(
            f"write_leaderboard: column(s) {missing} not in the table (columns: {list(table.columns)})"
        )
    if "pareto" in table.columns:
        raise ValueError("write_leaderboard: the table already has a 'pareto' column; it is computed here")
    for name, frame in extra_tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"write_leaderboard: extra table {name!r} is a {type(frame).__name__}, not a DataFrame"
            )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / name for kind, name in FILE_NAMES.items()}
    front = pareto_front(table, privacy, utility, higher_utility_is_better=higher_is_better(utility))
    plots: dict[str, Path] = {
        f"Pareto front: {privacy} vs {utility}": pareto_plot(table, paths["pareto"], privacy, utility)
    }
    written = {"pareto": paths["pareto"]}
    epsilon = epsilon_plot(table, paths["epsilon"], privacy)
    if epsilon is not None:
        plots[f"{privacy} vs ε (DP contenders)"] = epsilon
        written["epsilon"] = epsilon
    elif paths["epsilon"].is_file():  # an earlier leaderboard's, not this one's
        paths["epsilon"].unlink()
    paths["csv"].write_text(csv_text(table.assign(pareto=front)), encoding="utf-8")
    main = compact_table(table, front, utility)
    note = _front_note(privacy, utility)
    paths["md"].write_text(_markdown(title, notes, panel, main, note, extra_tables, plots), encoding="utf-8")
    ok = table["status"].astype("object").isin(SHOWN_STATUSES).to_numpy()
    classes = ["front" if f else ("" if o else "not-ok") for f, o in zip(front, ok, strict=True)]
    paths["html"].write_text(
        _html(title, notes, panel, main, classes, note, extra_tables, plots), encoding="utf-8"
    )
    return {"md": paths["md"], "csv": paths["csv"], "html": paths["html"], **written}
