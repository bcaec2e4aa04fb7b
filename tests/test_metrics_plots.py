"""Result figures build with the expected lines / labels and save as valid PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from src.metrics.detection import frame_auc
from src.metrics.plots import (
    epsilon_protection_curve,
    precision_recall_figure,
    roc_curve_figure,
    save_figure,
    similarity_histogram,
)


def _scores(seed: int, n: int = 400, shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(size=n) + shift * y, y


def _assert_png(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        return img.size


def test_roc_curve_figure_lines_legend_and_png(tmp_path: Path) -> None:
    curves = {"Xception": _scores(0, shift=1.5), "EffNet-B4": _scores(1, shift=0.8)}
    curves["SBI (tensor)"] = tuple(torch.as_tensor(v) for v in _scores(2, shift=0.3))
    fig = roc_curve_figure(curves, title="FF++ c23")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == len(curves) + 1  # one per curve + the dashed chance line
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{name} (AUC = {frame_auc(*curves[name]):.4f})" for name in curves]
    # Each curve is the full ROC: it starts at (0, 0) and ends at (1, 1).
    for line in ax.get_lines()[:-1]:
        x, y = line.get_data()
        assert (x[0], y[0]) == (0.0, 0.0) and (x[-1], y[-1]) == (1.0, 1.0)
    path = save_figure(fig, tmp_path / "figs" / "roc.png")
    width, height = _assert_png(path)
    assert width > 300 and height > 300


def test_roc_curve_figure_log_x_for_verification() -> None:
    fig = roc_curve_figure({"ArcFace": _scores(3, n=2000, shift=3.0)}, log_x=True, min_fpr=1e-3, chance=False)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlim() == pytest.approx((1e-3, 1.0))
    assert ax.get_xlabel().startswith("False accept rate") and ax.get_ylabel().startswith("True accept rate")
    assert len(ax.get_lines()) == 1
    x, _ = ax.get_lines()[0].get_data()
    assert (x > 0).all()  # FPR = 0 cannot be drawn on a log axis


def test_precision_recall_figure_matches_sklearn() -> None:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    scores = np.array([0.9, 0.8, 0.8, 0.6, 0.4, 0.3, 0.2])
    labels = np.array([1, 0, 1, 1, 0, 1, 0])
    fig = precision_recall_figure({"frames": (scores, labels)}, title="PR")
    ax = fig.axes[0]
    assert (
        ax.get_legend().get_texts()[0].get_text()
        == f"frames (AP = {average_precision_score(labels, scores):.4f})"
    )
    recall, precision = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    precision_ref, recall_ref, _ = precision_recall_curve(labels, scores)
    # sklearn lists the points from the lowest threshold up and ends at (recall 0, precision 1)
    assert np.allclose(recall, recall_ref[::-1]) and np.allclose(precision, precision_ref[::-1])
    assert ax.lines[1].get_ydata()[0] == pytest.approx(labels.mean())  # the random detector's precision
    with pytest.raises(ValueError, match="non-empty mapping"):
        precision_recall_figure({})


def test_similarity_histogram(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    genuine, impostor = rng.normal(0.6, 0.1, 300), torch.tensor(rng.normal(0.1, 0.1, 500))
    fig = similarity_histogram(genuine, impostor, threshold=0.35, bins=30)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * 30  # two histograms on shared bins
    assert len(ax.get_lines()) == 1 and ax.get_lines()[0].get_xdata()[0] == pytest.approx(0.35)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["genuine (n = 300)", "impostor (n = 500)", "threshold 0.350"]
    assert len(similarity_histogram(genuine, impostor).axes[0].get_lines()) == 0
    _assert_png(save_figure(fig, tmp_path / "hist.png"))


def test_epsilon_protection_curve_series(tmp_path: Path) -> None:
    eps = [8, 1, 2, 4]  # unsorted on purpose: drawn in increasing ε
    fig = epsilon_protection_curve(eps, {"PGD-10": [0.95, 0.2, 0.5, 0.8], "FGSM": [0.7, 0.1, 0.3, 0.5]})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["PGD-10", "FGSM"]
    x, y = ax.get_lines()[0].get_data()
    assert list(x) == [1, 2, 4, 8] and list(y) == [0.2, 0.5, 0.8, 0.95]
    epsilon_protection_curve(eps, np.array([0.5, 0.1, 0.2, 0.3]), label="C&W", fig=fig)  # add a series
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["PGD-10", "FGSM", "C&W"]
    single = epsilon_protection_curve([1, 2], [0.1, 0.9], label="ours")
    assert len(single.axes[0].get_lines()) == 1
    _assert_png(save_figure(fig, tmp_path / "eps.png"))


def test_plot_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="roc_curve_figure: `curves` must be a non-empty mapping"):
        roc_curve_figure({})
    with pytest.raises(ValueError, match=r"roc_curve_figure\['a'\]: needs both real and fake samples"):
        roc_curve_figure({"a": ([0.1, 0.2], [1, 1])})
    with pytest.raises(ValueError, match=r"roc_curve_figure\['a'\]: `scores` contains non-finite"):
        roc_curve_figure({"a": ([0.1, float("nan")], [0, 1])})
    with pytest.raises(ValueError, match="similarity_histogram: `impostor` is empty"):
        similarity_histogram([0.5], [])
    with pytest.raises(
        ValueError, match=r"epsilon_protection_curve\['x'\]: 2 protection rates for 3 epsilons"
    ):
        epsilon_protection_curve([1, 2, 4], {"x": [0.1, 0.2]})
    with pytest.raises(
        ValueError, match=r"epsilon_protection_curve\['x'\]: protection rates must be fractions"
    ):
        epsilon_protection_curve([1, 2], {"x": [10, 20]})
    with pytest.raises(ValueError, match="save_figure: only PNG is written"):
        save_figure(roc_curve_figure({"a": ([0.1, 0.9], [0, 1])}), tmp_path / "roc.pdf")
