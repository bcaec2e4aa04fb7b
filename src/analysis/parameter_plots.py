"""Figures of metrics against a parameter: metric-vs-strength curves and a sweep's parallel coordinates.

Both take plain DataFrames (a stacked results table, a :func:`~src.analysis.load_sweep` table) and return a
matplotlib ``Figure`` for inline display; nothing is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["parallel_coordinates", "plot_metric_vs", "plot_parallel_coordinates"]


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: column(s) {missing} not in the table (columns: {list(frame.columns)})")


def plot_metric_vs(
    table: pd.DataFrame,
    x: str,
    metrics: Sequence[str],
    *,
    by: str | None = None,
    logx: bool = False,
    title: str | None = None,
    width: float = 3.4,
) -> Figure:
    """One axis per metric (titled with its name), ``metric`` against ``x``; one line per value of ``by``
    (labelled with it), its points sorted by ``x``. Rows with the same ``x`` in one line (repeats, seeds) are
    averaged; rows with no ``x`` or no metric value are left out of that line. Raises ``KeyError`` for a
    missing column and ``ValueError`` when nothing is left to plot.
    """
    from matplotlib.figure import Figure

    if not metrics:
        raise ValueError("plot_metric_vs needs at least one metric")
    _check_columns(table, [x, *metrics, *([by] if by else [])], "plot_metric_vs")
    groups = list(table.groupby(by, sort=True, dropna=False)) if by else [(None, table)]
    fig = Figure(figsize=(width * len(metrics), 3.0), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    plotted = 0
    for ax, metric in zip(axes, metrics, strict=True):
        for key, rows in groups:
            xs, ys = (pd.to_numeric(rows[c], errors="coerce") for c in (x, metric))
            points = pd.DataFrame({"x": xs, "y": ys}).dropna()
            if points.empty:
                continue
            points = points.groupby("x", as_index=False, sort=True)["y"].mean()
            ax.plot(points["x"], points["y"], marker="o", markersize=3, label=str(key) if by else metric)
            plotted += 1
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(x)
        if logx:
            ax.set_xscale("log")
        if ax.get_lines():
            ax.legend(fontsize=7)
    if not plotted:
        raise ValueError(f"plot_metric_vs: no row has both {x!r} and a value of {list(metrics)}")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _scaled(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Min-max scaled to [0, 1] (a constant column sits at 0.5); text columns by their sorted categories.
    Returns the scaled values and the tick labels (bottom, top) of the column's axis."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        low, high = numeric.min(), numeric.max()
        span = high - low
        scaled = (numeric - low) / span if span > 0 else numeric * 0 + 0.5
        return scaled.to_numpy(dtype=float), [f"{low:.3g}", f"{high:.3g}"]
    categories = sorted({str(v) for v in values.dropna()})
    codes = values.map(lambda v: categories.index(str(v)) if pd.notna(v) else np.nan)
    scaled = codes / (len(categories) - 1) if len(categories) > 1 else codes * 0 + 0.5
    return scaled.to_numpy(dtype=float), [categories[0], categories[-1]]


def parallel_coordinates(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame[columns]`` with each column scaled to [0, 1] as :func:`plot_parallel_coordinates` draws it."""
    _check_columns(frame, columns, "parallel_coordinates")
    return pd.DataFrame({c: _scaled(frame[c])[0] for c in columns}, index=frame.index)


def plot_parallel_coordinates(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    color: str | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """A sweep's points as lines across one vertical axis per column (each scaled to [0, 1], its minimum and
    maximum written at the bottom and top), coloured by the ``color`` column (usually the sweep's metric)
    with a colour bar, and labelled by the ``label`` column (e.g. ``run_id``) when given.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if len(columns) < 2:
        raise ValueError(f"parallel coordinates need at least two columns, got {list(columns)}")
    _check_columns(frame, [*columns, *([color] if color else []), *([label] if label else [])], "parallel")
    if frame.empty:
        raise ValueError("plot_parallel_coordinates: the table has no rows")
    scaled = parallel_coordinates(frame, columns)
    fig = Figure(figsize=(1.6 * len(columns) + 1.5, 3.4), layout="constrained")
    ax = fig.subplots()
    mappable = None
    if color:
        shade = pd.to_numeric(frame[color], errors="coerce")
        mappable = ScalarMappable(Normalize(shade.min(), shade.max()), cmap="viridis")
    xs = np.arange(len(columns))
    for position, (index, row) in enumerate(scaled.iterrows()):
        style: dict[str, Any] = {"alpha": 0.8, "marker": "o", "markersize": 3}
        if mappable is not None:
            value = pd.to_numeric(pd.Series([frame.at[index, color]]), errors="coerce").iloc[0]
            style["color"] = mappable.to_rgba(value) if pd.notna(value) else "lightgrey"
        name = str(frame.at[index, label]) if label else f"row {position}"
        ax.plot(xs, row.to_numpy(dtype=float), label=name, **style)
    for x, column in zip(xs, columns, strict=True):
        ax.axvline(x, color="black", linewidth=0.6)
        low, high = _scaled(frame[column])[1]
        ax.annotate(low, (x, 0), xytext=(2, -12), textcoords="offset points", fontsize=7)
        ax.annotate(high, (x, 1), xytext=(2, 4), textcoords="offset points", fontsize=7)
    ax.set_xticks(xs, list(columns), fontsize=8, rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.1)
    if mappable is not None:
        fig.colorbar(mappable, ax=ax, label=color)
    ax.set_title(title or "parallel coordinates", fontsize=9)
    return fig
