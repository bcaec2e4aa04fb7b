"""ROC curves from the per-sample scores a detection run stores, and a figure of several of them.

A detection run writes ``<run dir>/predictions/<split>_frames.csv`` and ``<split>_videos.csv`` (one row per
frame or video: ``score``, ``label`` with 1 = fake, ...). The ROC is computed here with numpy from those
scores, so a notebook can draw it without the run's network; the tests check it against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PREDICTION_LEVELS", "RocCurve", "plot_roc", "read_predictions", "roc_curve"]

PREDICTION_LEVELS = ("frames", "videos")


@dataclass(frozen=True)
class RocCurve:
    """False and true positive rates at every distinct score threshold (highest first), and the area."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    n_positive: int
    n_negative: int


def roc_curve(scores: np.ndarray | pd.Series, labels: np.ndarray | pd.Series) -> RocCurve:
    """The ROC of ``scores`` (higher = more likely positive) against binary ``labels`` (1 positive, 0 not).

    Tied scores form one point, so the area is the trapezoidal AUC, equal to the Mann-Whitney probability
    that a positive scores above a negative (ties count half). Raises ``ValueError`` for mismatched lengths,
    non-finite scores, labels other than 0/1, or a class with no sample.
    """
    score = np.asarray(scores, dtype=np.float64).ravel()
    label = np.asarray(labels).ravel()
    if score.shape != label.shape:
        raise ValueError(f"scores and labels differ in length: {score.size} vs {label.size}")
    if not np.isfinite(score).all():
        raise ValueError(f"scores must be finite: {int((~np.isfinite(score)).sum())} are NaN or infinite")
    unique = set(np.unique(label).tolist())
    if not unique <= {0, 1}:
        raise ValueError(f"labels must be 0 or 1, got values {sorted(unique, key=str)[:5]}")
    positive = label.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"an ROC needs both classes: {n_pos} positive and {n_neg} negative samples")
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    tps = np.cumsum(positive)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    thresholds = np.r_[np.inf, score[last_of_tie]]
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thresholds, auc=auc, n_positive=n_pos, n_negative=n_neg)


def read_predictions(run_dir: str | Path, level: str = "frames", split: str = "test") -> pd.DataFrame:
    """``<run_dir>/predictions/<split>_<level>.csv`` (``level``: frames or videos) with its ``score`` and
    ``label`` columns checked. Raises ``FileNotFoundError`` naming the file (and the files the folder has)."""
    if level not in PREDICTION_LEVELS:
        raise ValueError(f"level must be one of {PREDICTION_LEVELS}, got {level!r}")
    path = Path(run_dir) / "predictions" / f"{split}_{level}.csv"
    if not path.is_file():
        present = sorted(p.name for p in path.parent.glob("*.csv")) if path.parent.is_dir() else []
        has = present or "none"
        raise FileNotFoundError(f"no per-sample scores: {path} is missing (the folder has {has})")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err
    missing = [c for c in ("score", "label") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return table


def plot_roc(curves: Mapping[str, RocCurve], *, title: str = "ROC", size: float = 4.2) -> Figure:
    """One axis with a line per curve, labelled ``<name> (AUC 0.873)``, and the chance diagonal."""
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("plot_roc needs at least one curve")
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(curve.fpr, curve.tpr, drawstyle="default", label=f"{name} (AUC {curve.auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    return fig
