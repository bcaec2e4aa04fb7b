"""Result figures: ROC and precision-recall curves (detection or verification), genuine/impostor
similarity histograms and ε-vs-protection curves.

Every function returns a :class:`matplotlib.figure.Figure` drawn on the non-interactive Agg canvas, built
without ``pyplot`` — no global figure registry, no display needed, nothing to leak in long sweeps — and
:func:`save_figure` writes it as PNG. Inputs are tensors, numpy arrays or lists; bad input raises
:class:`ValueError` naming the function. ROC curves use :func:`src.metrics.curves.roc_curve` (labels
1 = positive: fake for detection, genuine pair for verification) and show the AUC in the legend.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from src.metrics._inputs import require_both_classes, scores_labels
from src.metrics.curves import average_precision, binary_counts, roc_auc, roc_curve

__all__ = [
    "epsilon_protection_curve",
    "precision_recall_figure",
    "roc_curve_figure",
    "save_figure",
    "similarity_histogram",
]

ArrayLike = Any


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure with an Agg canvas and one Axes."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot(1, 1, 1)
    return fig


def _as_1d(name: str, arg: str, x: ArrayLike, allow_empty: bool = False) -> np.ndarray:
    """Finite float64 1-D array from a tensor / array / list."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: `{arg}` must be numbers, got {type(x).__name__}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: `{arg}` must be 1-D, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name}: `{arg}` is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: `{arg}` contains non-finite values ({int(np.isnan(arr).sum())} NaN)")
    return arr


def _checked_curves(name: str, curves: Any) -> list[tuple[str, str, Any, Any]]:
    """``(label, where, scores, labels)`` of every entry of a ``name -> (scores, labels)`` mapping, validated
    (non-empty mapping, pairs, both classes) before anything is drawn."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"{name}: `curves` must be a non-empty mapping name -> (scores, labels)")
    checked = []
    for label, entry in curves.items():
        if not isinstance(entry, Sequence) or len(entry) != 2:
            raise ValueError(f"{name}[{label!r}]: expected a (scores, labels) pair")
        where = f"{name}[{label!r}]"
        s, y = scores_labels(where, *entry)
        require_both_classes(where, y)
        checked.append((label, where, s, y))
    return checked


def roc_curve_figure(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    log_x: bool = False,
    min_fpr: float = 1e-4,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    chance: bool = True,
) -> Figure:
    """ROC curves, one per entry ``name -> (scores, labels)``, labelled ``"name (AUC = 0.9876)"``.

    ``log_x=True`` draws the FPR axis on a log scale from ``min_fpr`` to 1 (verification ROC at low FAR;
    the axis labels then default to FAR / TAR). The ``(0, 0)`` start point cannot be drawn on a log axis and
    is dropped there. ``chance`` adds the dashed ``TPR = FPR`` line (not in the legend), so the Axes holds
    ``len(curves) + chance`` lines.
    """
    name = "roc_curve_figure"
    if log_x and not 0 < min_fpr < 1:
        raise ValueError(f"{name}: min_fpr must be in (0, 1) for a log x-axis, got {min_fpr!r}")
    fig = _new_figure((5.0, 4.5))
    ax = fig.axes[0]
    for label, where, s, y in _checked_curves(name, curves):
        fpr, tpr, _ = roc_curve(s, y, where)
        x, yv = fpr.numpy(), tpr.numpy()
        if log_x:
            keep = x > 0
            x, yv = x[keep], yv[keep]
        ax.plot(x, yv, linewidth=1.6, label=f"{label} (AUC = {roc_auc(s, y, where):.4f})")
    if chance:
        grid = np.geomspace(min_fpr, 1.0, 200) if log_x else np.array([0.0, 1.0])
        ax.plot(grid, grid, linestyle="--", color="0.6", linewidth=1.0, label="_chance")
    if log_x:
        ax.set_xscale("log")
        ax.set_xlim(min_fpr, 1.0)
    else:
        ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel(xlabel or ("False accept rate (FAR)" if log_x else "False positive rate"))
    ax.set_ylabel(ylabel or ("True accept rate (TAR)" if log_x else "True positive rate"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def precision_recall_figure(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]], title: str | None = None
) -> Figure:
    """Precision-recall curves (label 1 = positive), one per entry ``name -> (scores, labels)``, labelled
    ``"name (AP = 0.9876)"``; the step curve is the one average precision sums (one point per distinct
    score, no interpolation), with a dotted line at the positive rate (a random detector's precision)."""
    name = "precision_recall_figure"
    fig = _new_figure((5.0, 4.5))
    ax = fig.axes[0]
    for label, where, s, y in _checked_curves(name, curves):
        counts = binary_counts(s, y, where)
        recall = np.concatenate([[0.0], (counts.tps / counts.tps[-1]).numpy()])
        precision = np.concatenate([[1.0], (counts.tps / (counts.tps + counts.fps)).numpy()])
        lines = ax.step(
            recall,
            precision,
            where="post",
            linewidth=1.6,
            label=f"{label} (AP = {average_precision(s, y, where):.4f})",
        )
        rate = float(y.to(torch.float64).mean())
        ax.axhline(rate, linestyle=":", color=lines[0].get_color(), linewidth=1.0)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def similarity_histogram(
    genuine: ArrayLike,
    impostor: ArrayLike,
    threshold: float | None = None,
    bins: int = 50,
    title: str | None = None,
    xlabel: str = "Cosine similarity",
) -> Figure:
    """Overlaid, density-normalised histograms of genuine- and impostor-pair similarities on shared bins, with
    an optional vertical line at the verification ``threshold`` (then the Axes holds one line)."""
    name = "similarity_histogram"
    g = _as_1d(name, "genuine", genuine)
    i = _as_1d(name, "impostor", impostor)
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"{name}: bins must be a positive integer, got {bins!r}")
    lo, hi = float(min(g.min(), i.min())), float(max(g.max(), i.max()))
    if threshold is not None:
        if not np.isfinite(threshold):
            raise ValueError(f"{name}: threshold must be finite, got {threshold!r}")
        lo, hi = min(lo, float(threshold)), max(hi, float(threshold))
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig = _new_figure((5.5, 4.0))
    ax = fig.axes[0]
    ax.hist(g, bins=edges, density=True, alpha=0.55, color="tab:blue", label=f"genuine (n = {g.size})")
    ax.hist(i, bins=edges, density=True, alpha=0.55, color="tab:red", label=f"impostor (n = {i.size})")
    if threshold is not None:
        ax.axvline(
            float(threshold), color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.3f}"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def epsilon_protection_curve(
    epsilons: ArrayLike,
    protection_rates: ArrayLike | Mapping[str, ArrayLike],
    label: str | None = None,
    fig: Figure | None = None,
    xlabel: str = "ε",
    ylabel: str = "Protection success rate",
    title: str | None = None,
) -> Figure:
    """Protection success rate against the perturbation budget ε, one marked line per series.

    ``protection_rates`` is one series (a sequence as long as ``epsilons``, named by ``label``) or a mapping
    ``series name -> rates`` sharing ``epsilons``. Rates are fractions in [0, 1]. Pass ``fig`` (a figure
    returned by this function) to add series to it.
    """
    name = "epsilon_protection_curve"
    eps = _as_1d(name, "epsilons", epsilons)
    if isinstance(protection_rates, Mapping):
        if not protection_rates:
            raise ValueError(f"{name}: `protection_rates` mapping is empty")
        if label is not None:
            raise ValueError(f"{name}: `label` is only for a single series; the mapping keys name the series")
        series = dict(protection_rates)
    else:
        series = {label or "_nolegend_": protection_rates}
    if fig is None:
        fig = _new_figure((5.0, 4.0))
    elif not fig.axes:
        raise ValueError(f"{name}: `fig` has no Axes; pass a figure returned by this function")
    ax = fig.axes[0]
    for series_name, rates in series.items():
        r = _as_1d(f"{name}[{series_name!r}]", "protection_rates", rates)
        if r.shape != eps.shape:
            raise ValueError(
                f"{name}[{series_name!r}]: {r.size} protection rates for {eps.size} epsilons; one rate per ε"
            )
        if (r < 0).any() or (r > 1).any():
            raise ValueError(f"{name}[{series_name!r}]: protection rates must be fractions in [0, 1]")
        order = np.argsort(eps, kind="stable")
        ax.plot(eps[order], r[order], marker="o", linewidth=1.6, label=str(series_name))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if any(not str(line.get_label()).startswith("_") for line in ax.get_lines()):
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG to ``path`` (parent folders created), close it, and return the path.

    Closing releases the figure from ``pyplot``'s registry when it was made with ``pyplot``; figures from this
    module are not registered and are simply freed once unreferenced.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"save_figure: expected a matplotlib Figure, got {type(fig).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure: only PNG is written, got path {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    return path
