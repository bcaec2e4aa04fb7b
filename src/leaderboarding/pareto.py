"""Privacy–utility views of the leaderboard's wide result table: the Pareto front and two figures.

* :func:`pareto_front` marks the contenders no other contender beats on both privacy and utility;
* :func:`pareto_plot` draws privacy (y) against a utility metric (x), the front joined by a step line;
* :func:`epsilon_plot` draws privacy against ε for the differentially private contenders, certified ε filled,
  nominal (not certified) ε hollow.

Only rows whose ``status`` is ``"ok"`` and whose two values are finite take part; the figures say how many
contenders they leave out (missing checkpoint, failed, no value), so a short plot never looks complete.
Figures are drawn on the Agg canvas without ``pyplot`` and written as PNG by
:func:`src.metrics.plots.save_figure`. Labels come from configs: ``$`` is escaped so matplotlib never reads
a method id as mathtext.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from src.metrics.plots import save_figure

__all__ = [
    "EPSILON_CERTIFIED",
    "EPSILON_NOMINAL",
    "OK_STATUS",
    "epsilon_plot",
    "higher_is_better",
    "pareto_front",
    "pareto_plot",
]

OK_STATUS = "ok"
EPSILON_NOMINAL = "ε (nominal)"
EPSILON_CERTIFIED = "ε (certified)"
# utility metrics where a smaller value is better (a distance or an error), matched case-insensitively
_LOWER_IS_BETTER = ("lpips", "nme", "fid")
_MAX_LISTED = 6  # contenders named in a figure's "not shown" footnote


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better: False for distances and errors (LPIPS, landmark NME, FID)."""
    name = metric.lower()
    return not any(token in name for token in _LOWER_IS_BETTER)


def _require_columns(table: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"{where}: column(s) {missing} not in the table (columns: {list(table.columns)})")


def _numeric(table: pd.DataFrame, column: str, where: str) -> pd.Series:
    """``table[column]`` as float64 (missing values NaN); a value that is not a number raises."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = values.isna() & raw.notna()
    if bad.any():
        examples = [repr(v) for v in raw[bad].head(3)]
        raise ValueError(f"{where}: column {column!r} holds non-numeric value(s) {', '.join(examples)}")
    return values


def _ok(table: pd.DataFrame) -> pd.Series:
    """True for rows whose status is ``ok`` (every row when the table has no ``status`` column)."""
    if "status" not in table.columns:
        return pd.Series(True, index=table.index)
    return table["status"].astype("object").eq(OK_STATUS).fillna(False).astype(bool)


def pareto_front(
    table: pd.DataFrame,
    privacy: str = "privacy",
    utility: str = "SSIM",
    *,
    higher_utility_is_better: bool | None = True,
) -> pd.Series:
    """A boolean Series (index of ``table``, name ``pareto``): True for the contenders on the front.

    A contender takes part when its ``status`` is ``ok`` and both values are finite; it is on the front when
    no other such contender is at least as good on both axes and strictly better on one (equal points are all
    on it). Higher privacy is better; for utility, ``higher_utility_is_better=False`` (LPIPS, NME) makes lower
    better and ``None`` decides from the name (:func:`higher_is_better`). O(n log n): rows sorted by utility,
    a row is dominated when a strictly better-utility row has at least its privacy, or an equal-utility row
    more privacy.
    """
    where = "pareto_front"
    _require_columns(table, [privacy, utility], where)
    if higher_utility_is_better is None:
        higher_utility_is_better = higher_is_better(utility)
    p = _numeric(table, privacy, where).to_numpy()
    u = _numeric(table, utility, where).to_numpy()
    if not higher_utility_is_better:
        u = -u
    eligible = _ok(table).to_numpy() & np.isfinite(p) & np.isfinite(u)
    front = np.zeros(len(table), dtype=bool)
    rows = np.flatnonzero(eligible)
    order = rows[np.lexsort((-p[rows], -u[rows]))]  # utility descending, then privacy descending
    best_better = -math.inf  # best privacy among rows of strictly higher utility
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and u[order[stop]] == u[order[start]]:
            stop += 1
        group = order[start:stop]
        top = p[group[0]]  # the group's highest privacy (sorted)
        if top > best_better:
            front[group[p[group] == top]] = True
        best_better = max(best_better, top)
        start = stop
    return pd.Series(front, index=table.index, name="pareto")


def _text(value: object) -> str:
    """A label safe for matplotlib: ``$`` escaped (no mathtext), no leading ``_`` (hidden in legends)."""
    text = str(value).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _axis_label(metric: str, higher: bool, axis: str) -> str:
    arrow = {"x": ("→", "←"), "y": ("↑", "↓")}[axis][0 if higher else 1]
    return f"{metric} ({'higher' if higher else 'lower'} is better {arrow})"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot(1, 1, 1)
    return fig


def _footnote(fig: Figure, left_out: Sequence[str]) -> None:
    """Name the contenders a figure leaves out (at most a few, then a count)."""
    if not left_out:
        return
    names = ", ".join(left_out[:_MAX_LISTED])
    if len(left_out) > _MAX_LISTED:
        names += f", … (+{len(left_out) - _MAX_LISTED})"
    fig.text(
        0.01, 0.005, _text(f"not shown (not ok or no value): {names}"), fontsize=6, color="0.35", va="bottom"
    )


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _labels(table: pd.DataFrame, label_column: str) -> pd.Series:
    if label_column in table.columns:
        return table[label_column].astype("object").map(str)
    return pd.Series([str(i) for i in table.index], index=table.index)


def pareto_plot(
    table: pd.DataFrame,
    path: str | Path,
    privacy: str = "privacy",
    utility: str = "SSIM",
    *,
    title: str | None = None,
    label_column: str = "method id",
    higher_utility_is_better: bool | None = None,
) -> Path:
    """Scatter privacy (y) against ``utility`` (x) for every ok contender with both values, write it as PNG to
    ``path`` and return the path.

    Front points (:func:`pareto_front`) are highlighted and joined by the front's step line; every point is
    labelled with ``label_column``; DP contenders (a finite ``ε (nominal)``) are drawn as diamonds. The axis
    labels say which direction is better (``higher_utility_is_better=None`` decides from the name). Left-out
    contenders are named in a footnote; with none to show the figure says so.
    """
    where = "pareto_plot"
    _require_columns(table, [privacy, utility], where)
    table = table.reset_index(drop=True)  # positions, whatever the caller's index
    higher = higher_is_better(utility) if higher_utility_is_better is None else higher_utility_is_better
    p = _numeric(table, privacy, where)
    u = _numeric(table, utility, where)
    front = pareto_front(table, privacy, utility, higher_utility_is_better=higher)
    shown = _ok(table) & np.isfinite(p) & np.isfinite(u)
    dp = (
        np.isfinite(_numeric(table, EPSILON_NOMINAL, where))
        if EPSILON_NOMINAL in table.columns
        else pd.Series(False, index=table.index)
    )
    labels = _labels(table, label_column)
    fig = _new_figure((6.4, 4.8))
    ax = fig.axes[0]
    if not shown.any():
        _empty(ax, "no contender has both values")
    for is_front, is_dp in ((False, False), (False, True), (True, False), (True, True)):
        rows = shown & (front == is_front) & (dp == is_dp)
        if not rows.any():
            continue
        ax.scatter(
            u[rows],
            p[rows],
            marker="D" if is_dp else "o",
            s=55 if is_front else 30,
            color="tab:red" if is_front else "tab:gray",
            edgecolors="black" if is_front else "none",
            zorder=3,
            label=("Pareto front" if is_front else "dominated") + (", DP (finite ε)" if is_dp else ""),
        )
    if front.any():
        points = pd.DataFrame({"u": u[front], "p": p[front]}).sort_values(["u", "p"])
        # higher-is-better utility: the front falls as utility grows; lower-is-better: it rises
        ax.step(points["u"], points["p"], where="pre" if higher else "post", color="tab:red", linewidth=1.2)
    for row in table.index[shown]:
        ax.annotate(
            _text(labels[row]), (u[row], p[row]), xytext=(4, 4), textcoords="offset points", fontsize=7
        )
    ax.margins(x=0.2, y=0.1)  # room for the point labels
    ax.set_xlabel(_axis_label(utility, higher, "x"))
    ax.set_ylabel(_axis_label(privacy, True, "y"))
    ax.grid(True, alpha=0.3)
    if ax.collections:
        ax.legend(fontsize="small", loc="best")
    ax.set_title(_text(title or f"Privacy vs {utility}"), fontsize=10)
    _footnote(fig, list(labels[~shown]))
    return save_figure(fig, path)


def epsilon_plot(table: pd.DataFrame, path: str | Path, privacy: str = "privacy") -> Path | None:
    """Privacy (y) against ε (x, log scale) for the DP contenders (a finite ``ε (nominal)``), one series per
    ``method``; write it as PNG to ``path`` and return the path, or None (no file) when the table has no DP
    contender.

    A point sits at the certified ε, filled, where ``ε (certified)`` is finite, else hollow at the nominal ε
    (the guarantee is claimed, not certified); the legend says which is which. Non-positive ε cannot be drawn
    on a log axis and raises ``ValueError``.
    """
    where = "epsilon_plot"
    _require_columns(table, [privacy], where)
    table = table.reset_index(drop=True)  # positions, whatever the caller's index
    if EPSILON_NOMINAL not in table.columns:
        return None
    nominal = _numeric(table, EPSILON_NOMINAL, where)
    dp = np.isfinite(nominal)
    if not dp.any():
        return None
    certified = (
        _numeric(table, EPSILON_CERTIFIED, where)
        if EPSILON_CERTIFIED in table.columns
        else pd.Series(np.nan, index=table.index)
    )
    is_certified = np.isfinite(certified)
    eps = certified.where(is_certified, nominal)
    p = _numeric(table, privacy, where)
    shown = dp & _ok(table) & np.isfinite(p)
    bad = shown & ~(eps > 0)
    if bad.any():
        raise ValueError(f"{where}: ε must be positive for a log axis, got {list(eps[bad])}")
    methods = (
        table["method"].astype("object").map(str)
        if "method" in table.columns
        else _labels(table, "method id")
    )
    fig = _new_figure((6.4, 4.6))
    ax = fig.axes[0]
    if not shown.any():
        _empty(ax, "no DP contender has a privacy value")
    for method in sorted(set(methods[shown])):
        rows = shown & (methods == method)
        points = pd.DataFrame({"eps": eps[rows], "p": p[rows], "cert": is_certified[rows]}).sort_values("eps")
        (line,) = ax.plot(points["eps"], points["p"], linewidth=1.2, label=_text(method))
        color = line.get_color()
        for cert, face in ((True, color), (False, "white")):
            part = points[points["cert"] == cert]
            if not part.empty:
                ax.scatter(
                    part["eps"], part["p"], marker="o", s=40, facecolors=face, edgecolors=color, zorder=3
                )
    if shown.any():
        ax.set_xscale("log")
        ticks = sorted(set(eps[shown]))  # label the ε values drawn, not powers of ten
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.1)
        handles, _ = ax.get_legend_handles_labels()
        handles += [
            Line2D([], [], linestyle="", marker="o", color="0.3", label="certified ε"),
            Line2D(
                [],
                [],
                linestyle="",
                marker="o",
                markerfacecolor="white",
                color="0.3",
                label="nominal ε (not certified)",
            ),
        ]
        ax.legend(handles=handles, fontsize="small", loc="best")
    ax.set_xlabel("ε (log scale; smaller is a stronger guarantee)")
    ax.set_ylabel(_axis_label(privacy, True, "y"))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Privacy vs ε (DP contenders)", fontsize=10)
    _footnote(fig, list(_labels(table, "method id")[dp & ~shown]))
    return save_figure(fig, path)
