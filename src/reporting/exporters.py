"""Write a report as markdown, CSV and LaTeX, each escaped for its format.

* markdown (``<paper>.md``): the table (``|`` escaped as ``\\|``, missing values ``--``, a capped PSNR as
  ``∞ (capped at 100 dB)``), then the notes;
* CSV (``<paper>.csv``): the table with plain numbers (missing values empty, the PSNR cap as 100.0);
* runs CSV (``<paper>.runs.csv``): one row per run used (experiment, run id, commit, task, overrides,
  pinned, eligible, reasons, run dir);
* LaTeX (``<paper>.tex``, on request): a self-contained ``tabular`` (``\\hline`` rules, no packages),
  every LaTeX special character escaped in headers and cells (``Δ`` of the difference columns and ``ε``
  as math, so plain pdflatex compiles it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from src.reporting.build import Report
from src.utils.tables import format_cell, is_capped_psnr, to_markdown

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "∞": r"$\infty$",
    "Δ": r"$\Delta$",  # the difference columns (reproduced − published)
    "ε": r"$\varepsilon$",
}
LATEX_PSNR_CAP = r"$\infty$ (capped at 100 dB)"


def escape_latex(text: str) -> str:
    """``text`` with every character that LaTeX treats specially written as its literal form."""
    return "".join(LATEX_SPECIALS.get(char, char) for char in text)


def markdown_text(table: pd.DataFrame, notes: list[str] | None = None) -> str:
    """The table as a markdown table, followed by the notes."""
    return to_markdown(table) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def csv_text(table: pd.DataFrame) -> str:
    """The table as CSV with plain numbers (what spreadsheets and ``pd.read_csv`` should see)."""
    return table.to_csv(index=False)


def _latex_cell(value: object, column: object, floatfmt: str) -> str:
    if is_capped_psnr(column, value):
        return LATEX_PSNR_CAP
    return escape_latex(format_cell(value, column, floatfmt))


def latex_text(table: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """The table as a ``tabular``: text columns left-aligned, numeric ones right-aligned, missing ``--``."""
    align = "".join(
        "r" if pd.api.types.is_numeric_dtype(table.iloc[:, i]) else "l" for i in range(table.shape[1])
    )
    lines = [
        rf"\begin{{tabular}}{{{align}}}",
        r"\hline",
        " & ".join(escape_latex(str(c)) for c in table.columns) + r" \\",
        r"\hline",
    ]
    for row in table.itertuples(index=False):
        cells = (_latex_cell(v, c, floatfmt) for v, c in zip(row, table.columns, strict=True))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path, *, latex: bool = False) -> list[Path]:
    """Write ``<paper>.md``, ``<paper>.csv``, ``<paper>.runs.csv`` (and ``<paper>.tex``) under ``out``; an
    older ``<paper>.tex`` is removed when this report has none, so the folder never mixes two reports."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        f"{report.paper}.md": markdown_text(report.table, report.notes),
        f"{report.paper}.csv": csv_text(report.table),
        f"{report.paper}.runs.csv": csv_text(report.runs),
    }
    stale = out / f"{report.paper}.tex"
    if latex:
        texts[stale.name] = latex_text(report.table)
    elif stale.is_file():  # an earlier --latex run's table, no longer this report's
        stale.unlink()
    written = []
    for name, text in texts.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
