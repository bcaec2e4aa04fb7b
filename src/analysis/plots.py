"""Plot a run's metric history (``metrics.csv``, or the offline W&B file) for a notebook, writing nothing.

Losses and bounded scores (accuracies, AUCs, SSIM: every value in [0, 1]) get separate axes, so a loss of 12
does not flatten an accuracy curve; any other metric (PSNR in dB, cosine similarities) gets a third axis.
The figure is returned for inline display; nothing is saved, and a run record is never touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from src.analysis.runs import Run

__all__ = ["HISTORY_SOURCES", "history_groups", "plot_history", "wandb_history"]

_AXES_COLUMNS = ("epoch", "step")
HISTORY_SOURCES = ("metrics.csv", "wandb")
_WANDB_STEP = "trainer/global_step"
_AXIS_TITLES = {"losses": "loss", "bounded": "score in [0, 1]", "other": "other metrics"}


def _plotted(column: str) -> bool:
    """Metric columns worth a curve: not the x axes, the learning rate, spreads or one-off test values."""
    name = column.rsplit("/", 1)[-1]
    return not (column in _AXES_COLUMNS or column.startswith(("lr-", "test/")) or name.endswith("_std"))


def history_groups(history: pd.DataFrame) -> dict[str, list[str]]:
    """The history's metric columns as ``losses``, ``bounded`` (all values in [0, 1]) and ``other``."""
    groups: dict[str, list[str]] = {"losses": [], "bounded": [], "other": []}
    for column in history.columns:
        values = pd.to_numeric(history[column], errors="coerce").dropna()
        if not _plotted(column) or values.empty:
            continue
        if "loss" in column.rsplit("/", 1)[-1]:
            groups["losses"].append(column)
        elif values.between(0.0, 1.0).all():
            groups["bounded"].append(column)
        else:
            groups["other"].append(column)
    return groups


def wandb_history(run: Run) -> pd.DataFrame:
    """The metric history of the run's offline W&B file (``run.wandb``, read by ``load_run``) in the shape of
    ``metrics.csv``: a ``step`` column (Lightning's ``trainer/global_step``), ``epoch`` and one column per
    logged metric; W&B's own ``_step``, ``_runtime`` and ``_timestamp`` are dropped. Raises ``ValueError``
    when the run has no W&B file (logged with ``logger=none``, or loaded with ``read_wandb=False``)."""
    if run.wandb is None:
        raise ValueError(f"{run.run_dir}: no offline W&B file (wandb/**/run-*.wandb) was read for this run")
    frame = run.wandb.history_frame()
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
    return frame.rename(columns={_WANDB_STEP: "step"})


def plot_history(run: Run, *, source: str = "metrics.csv", width: float = 10.0) -> Figure:
    """A figure of the run's history against the training step: one axis for losses, one for [0, 1] scores.

    ``source`` is ``metrics.csv`` (``run.history``) or ``wandb`` (the offline W&B file:
    :func:`wandb_history`).
    A third axis appears only when the run logged other metrics. Raises ``ValueError`` when the source has
    no plottable history (no ``metrics.csv`` yet, no W&B file).
    """
    from matplotlib.figure import Figure

    if source not in HISTORY_SOURCES:
        raise ValueError(f"source must be one of {HISTORY_SOURCES}, got {source!r}")
    history = run.history if source == "metrics.csv" else wandb_history(run)
    groups = {name: cols for name, cols in history_groups(history).items() if cols or name != "other"}
    if not any(groups.values()):
        raise ValueError(f"{run.run_dir}: no metric history to plot ({source} missing or empty)")
    x_name = next((c for c in ("step", "epoch") if c in history.columns), None)
    fig = Figure(figsize=(width, 3.2), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (name, columns) in zip(axes, groups.items(), strict=True):
        for column in columns:
            series = history[[x_name, column]].dropna() if x_name else history[[column]].dropna()
            x = series[x_name] if x_name else series.index
            ax.plot(x, series[column], marker="." if len(series) > 20 else "o", markersize=3, label=column)
        ax.set_title(_AXIS_TITLES[name], fontsize=9)
        ax.set_ylabel(_AXIS_TITLES[name])
        ax.set_xlabel(x_name or "row")
        if name == "bounded":
            ax.set_ylim(-0.02, 1.02)
        if columns:
            ax.legend(fontsize=7)
    suffix = "" if source == "metrics.csv" else " (W&B file)"
    fig.suptitle(f"{run.experiment} / {run.run_id}{suffix}", fontsize=10)
    return fig
