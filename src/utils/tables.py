"""Plain-text renderings of result tables (markdown, console blocks), without extra dependencies.

One cell format everywhere text is shown: missing values (NaN, None) as ``--``, floats with ``floatfmt``,
and a PSNR of exactly 100 dB in a column whose name contains ``psnr`` as ``∞ (capped at 100 dB)``: the PSNR
metrics cap identical images at 100 dB (``src.metrics.image_quality.PSNR_CAP_DB``), and a bare ``100.0000``
reads like a measurement. CSV files keep the number.
"""

from __future__ import annotations

import math
import numbers
import re
import shutil

import pandas as pd

PSNR_CAP_DB = 100.0  # the cap of src.metrics.image_quality (utils may not import metrics)
PSNR_CAP_TEXT = "∞ (capped at 100 dB)"
MISSING_TEXT = "--"
DEFAULT_CONSOLE_WIDTH = 120
_NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def is_missing(value: object) -> bool:
    """True for ``None``, NaN and ``pd.NA`` (and False for lists and other containers)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and math.isnan(value)


def is_capped_psnr(column: object, value: object) -> bool:
    """True when ``value`` is the 100 dB cap in a PSNR column (identical images, not a measurement)."""
    return (
        "psnr" in str(column).lower()
        and isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and float(value) == PSNR_CAP_DB
    )


def format_cell(value: object, column: object = "", floatfmt: str = ".4f") -> str:
    """The text shown for one cell (see the module docstring for missing values and the PSNR cap)."""
    if is_missing(value):
        return MISSING_TEXT
    if is_capped_psnr(column, value):
        return PSNR_CAP_TEXT
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return format(float(value), floatfmt)
    return str(value)


def natural_key(text: object) -> tuple[tuple[int, float, str], ...]:
    """Sort key that orders the numbers inside labels by value: ``noise 0.001 < noise 0.005 < noise 0.01``
    and ``block 2 < block 10`` (plain string order puts ``0.01`` before ``0.001``)."""
    parts = _NUMBER.split(str(text))
    return tuple(
        (0, float(part), "") if i % 2 else (1, 0.0, part.lower()) for i, part in enumerate(parts) if part
    )


def escape_markdown(text: str) -> str:
    """A cell or header safe inside a markdown table: ``\\`` and ``|`` escaped, newlines as spaces."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _rendered(table: pd.DataFrame, floatfmt: str) -> tuple[list[str], list[list[str]], list[bool]]:
    """(escaped headers, escaped cell texts per row, whether each column is numeric)."""
    headers = [escape_markdown(str(c)) for c in table.columns]
    rows = [
        [escape_markdown(format_cell(v, c, floatfmt)) for v, c in zip(row, table.columns, strict=True)]
        for row in table.itertuples(index=False)
    ]
    numeric = [pd.api.types.is_numeric_dtype(table.iloc[:, i]) for i in range(table.shape[1])]
    return headers, rows, numeric


def _markdown_lines(headers: list[str], rows: list[list[str]], numeric: list[bool]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric, strict=True)
    )
    return [line(headers), rule + "|", *(line(r) for r in rows)]


def to_markdown(table: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A GitHub-flavoured markdown table; numbers right-aligned, text left-aligned, ``|`` escaped."""
    return "\n".join(_markdown_lines(*_rendered(table, floatfmt)))


def _line_width(widths: list[int], columns: list[int]) -> int:
    return sum(widths[i] + 3 for i in columns) + 1


def _blocks(widths: list[int], repeated: list[int], rest: list[int], width: int) -> list[list[int]]:
    """Column indices per block: the repeated columns, then as many others as fit in ``width``."""
    blocks: list[list[int]] = []
    current = list(repeated)
    for column in rest:
        if len(current) > len(repeated) and _line_width(widths, [*current, column]) > width:
            blocks.append(current)
            current = list(repeated)
        current.append(column)
    blocks.append(current)
    return blocks


def to_console(table: pd.DataFrame, width: int | None = None, floatfmt: str = ".4f") -> str:
    """The table for a terminal of ``width`` characters (default: the terminal's, else 120).

    A table that fits is exactly :func:`to_markdown`. A wider one is split into blocks of columns, each a
    markdown table: text columns with one value in every row are printed once above the blocks, and the
    leading text (key) columns, up to half the width, are repeated in every block so each row stays readable.
    """
    width = width or shutil.get_terminal_size((DEFAULT_CONSOLE_WIDTH, 24)).columns
    headers, rows, numeric = _rendered(table, floatfmt)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    if _line_width(widths, list(range(len(headers)))) <= width:
        return "\n".join(_markdown_lines(headers, rows, numeric))
    keys = [i for i, num in enumerate(numeric) if not num]
    constant = [i for i in keys if rows and len({r[i] for r in rows}) == 1]
    keys = [i for i in keys if i not in constant]
    repeated = keys[:1]
    for i in keys[1:]:
        if _line_width(widths, [*repeated, i]) > width // 2:
            break
        repeated.append(i)
    rest = [i for i in range(len(headers)) if i not in constant and i not in repeated]
    blocks = _blocks(widths, repeated, rest, width)
    parts = ["\n".join(f"{headers[i]}: {rows[0][i]}" for i in constant)] if constant else []
    for n, block in enumerate(blocks, start=1):
        lines = _markdown_lines(
            [headers[i] for i in block], [[r[i] for i in block] for r in rows], [numeric[i] for i in block]
        )
        label = f"(columns, part {n}/{len(blocks)})\n" if len(blocks) > 1 else ""
        parts.append(label + "\n".join(lines))
    return "\n\n".join(parts)
