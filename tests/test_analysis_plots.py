"""The analysis helpers the family notebooks call: ROC from stored scores, results tables and their settings,
metric-vs-parameter and parallel-coordinates figures, the diff between two commits' runs, W&B histories.

Inputs are small hand-written tables and fake run records (``tests/test_compare.py``'s writer); every
expected number is computed here independently (scikit-learn for the ROC, by hand for the rest).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from src.analysis import (
    WandbRun,
    collect_results,
    commit_table,
    diff_commits,
    expand_settings,
    load_run,
    load_runs,
    parallel_coordinates,
    parse_setting,
    pick_columns,
    plot_history,
    plot_metric_vs,
    plot_parallel_coordinates,
    plot_roc,
    read_predictions,
    resolve_commit,
    roc_curve,
    sweep_columns,
    varying_settings,
    wandb_history,
    with_commits,
)
from tests.test_compare import write_run_record, write_sweep_index

# --- ROC ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_curve_matches_scikit_learn_with_tied_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60) + 0.3 * labels, 1)  # rounded: many ties
    curve = roc_curve(scores, labels)
    fpr, tpr, _ = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    assert curve.auc == pytest.approx(roc_auc_score(labels, scores))
    assert curve.fpr == pytest.approx(fpr) and curve.tpr == pytest.approx(tpr)
    assert (curve.n_positive, curve.n_negative) == (int(labels.sum()), int((1 - labels).sum()))


def test_roc_curve_of_a_perfect_and_a_reversed_detector() -> None:
    assert roc_curve([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]).auc == 1.0
    assert roc_curve([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]).auc == 0.0
    assert roc_curve([0.5] * 4, [0, 1, 0, 1]).auc == 0.5  # all tied: one step from (0, 0) to (1, 1)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [1, 1], "both classes: 2 positive and 0 negative"),
        ([0.1, 0.2, 0.3], [0, 1], "differ in length: 3 vs 2"),
        ([0.1, float("nan")], [0, 1], "1 are NaN or infinite"),
        ([0.1, 0.2], [0, 2], "labels must be 0 or 1"),
    ],
)
def test_roc_curve_refuses_bad_input(scores: list, labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc_curve(scores, labels)


def test_read_predictions_names_the_missing_file_and_columns(tmp_path: Path) -> None:
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "test_videos.csv").write_text("video,score\na,0.5\n")
    with pytest.raises(FileNotFoundError, match=r"predictions/test_frames.csv is missing .*test_videos.csv"):
        read_predictions(tmp_path, "frames")
    with pytest.raises(ValueError, match=r"test_videos.csv: missing column\(s\) \['label'\]"):
        read_predictions(tmp_path, "videos")
    with pytest.raises(ValueError, match="level must be one of"):
        read_predictions(tmp_path, "faces")


def test_plot_roc_labels_each_curve_with_its_auc() -> None:
    fig = plot_roc({"a": roc_curve([0.9, 0.1, 0.6, 0.4], [1, 0, 0, 1])}, title="ROC, frames")
    (ax,) = fig.axes
    assert ax.get_title() == "ROC, frames"
    assert [line.get_label() for line in ax.get_lines()] == ["a (AUC 0.750)", "chance"]
    with pytest.raises(ValueError, match="at least one curve"):
        plot_roc({})


# --- results tables and settings ----------------------------------------------------------------------------


def test_parse_setting_splits_on_top_level_commas_only() -> None:
    assert parse_setting("kernel_size=31, eval_sigma=5.0") == {"kernel_size": 31, "eval_sigma": 5.0}
    assert parse_setting("box=[0.2, 0.25, 0.8, 0.9], fill=0.0") == {"box": [0.2, 0.25, 0.8, 0.9], "fill": 0.0}
    assert parse_setting("eval_block=7, method=block_mean, antialias=True") == {
        "eval_block": 7,
        "method": "block_mean",
        "antialias": True,
    }
    assert parse_setting("ε=30") == {"ε": 30}
    assert parse_setting("-") == parse_setting("") == parse_setting(math.nan) == {}
    with pytest.raises(ValueError, match="'sigma 5' is not name=value"):
        parse_setting("kernel=3, sigma 5")


def test_expand_settings_and_the_varying_strength() -> None:
    table = pd.DataFrame(
        {
            "obfuscator": ["none", "blur", "blur", "pixelate", "pixelate"],
            "eval setting": ["-", "k=31, sigma=2.0", "k=31, sigma=6.0", "block=7, m=a", "block=7, m=b"],
        }
    )
    expanded = expand_settings(table)
    assert list(expanded.columns[2:]) == ["setting.k", "setting.sigma", "setting.block", "setting.m"]
    assert varying_settings(expanded[expanded["obfuscator"] == "blur"]) == ["setting.sigma"]
    assert varying_settings(expanded[expanded["obfuscator"] == "pixelate"]) == []  # m varies but is text
    with pytest.raises(KeyError, match="no 'setting' column"):
        expand_settings(table, column="setting")


def test_collect_results_stacks_the_runs_that_have_the_table(tmp_path: Path) -> None:
    with_table = write_run_record(tmp_path, "20261203-080000-aaaaaa", experiment="x/a")
    (with_table / "results.csv").write_text("obfuscator,eval setting,ssim\nblur,sigma=2,0.7\nnone,-,1.0\n")
    other = write_run_record(tmp_path, "20261203-090000-bbbbbb", experiment="x/b")
    (other / "results.csv").write_text("test/rank1\n0.9\n")  # another family's table
    write_run_record(tmp_path, "20261203-100000-cccccc", experiment="x/c")  # no table at all
    runs = load_runs(tmp_path)
    stacked = collect_results(runs, require=["obfuscator"])
    assert list(stacked.columns) == [
        "experiment",
        "run_id",
        "start_time",
        "obfuscator",
        "eval setting",
        "ssim",
    ]
    assert stacked[["run_id", "obfuscator", "ssim"]].values.tolist() == [
        ["20261203-080000-aaaaaa", "blur", 0.7],
        ["20261203-080000-aaaaaa", "none", 1.0],
    ]
    assert len(collect_results(runs)) == 3  # without a requirement, every table
    empty = collect_results(runs, require=["attack"])
    assert empty.empty and "attack" in empty.columns
    (other / "results.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="bbbbbb/results.csv: not a readable CSV"):
        collect_results(runs)


def test_pick_columns_by_pattern() -> None:
    table = pd.DataFrame(
        {
            "p_ssim": [0.9],
            "r_ssim": [0.8],
            "p_psnr": [30.0],
            "rank1": [0.4],
            "rank1_std": [0.1],
            "name": ["a"],
        }
    )
    assert pick_columns(table, ["*ssim*", "*psnr*"], first_only=True) == ["p_ssim", "p_psnr"]
    assert pick_columns(table, ["*ssim*"]) == ["p_ssim", "r_ssim"]
    assert pick_columns(table, ["rank1*"], exclude=["*_std"]) == ["rank1"]
    assert pick_columns(table, ["name"]) == []  # text, not a metric


def test_sweep_columns_from_the_record_or_the_index_alone(tmp_path: Path) -> None:
    run_dir = write_run_record(tmp_path, "20261203-080000-aaaaaa")
    index = write_sweep_index(tmp_path, "lr", "s1", [(run_dir, {"model.optimizer.lr": 0.1, "seed": 0})])
    assert sweep_columns(index) == (["model.optimizer.lr", "seed"], "val/rank1")
    (index.parent / "sweep.json").write_text(json.dumps({"metric": None}))  # a sweep without a metric
    assert sweep_columns(index) == (["model.optimizer.lr", "seed", "val/rank1"], None)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: not a sweep index, missing column\(s\)"):
        sweep_columns(bad)


# --- figures ------------------------------------------------------------------------------------------------


def test_plot_metric_vs_draws_one_sorted_line_per_group_and_averages_repeats() -> None:
    table = pd.DataFrame(
        {
            "attack": ["pgd", "pgd", "pgd", "fgsm", "fgsm", "clean"],
            "eps": [8.0, 2.0, 2.0, 2.0, 8.0, None],
            "acc": [0.1, 0.3, 0.5, 0.6, 0.2, 0.9],
            "auc": [0.5, 0.7, 0.7, None, 0.4, 0.95],
        }
    )
    fig = plot_metric_vs(table, "eps", ["acc", "auc"], by="attack", title="t")
    acc_ax, auc_ax = fig.axes
    assert (acc_ax.get_title(), auc_ax.get_title(), fig.get_suptitle()) == ("acc", "auc", "t")
    lines = {line.get_label(): [list(v) for v in line.get_data()] for line in acc_ax.get_lines()}
    assert lines == {"fgsm": [[2.0, 8.0], [0.6, 0.2]], "pgd": [[2.0, 8.0], [pytest.approx(0.4), 0.1]]}
    lines = {line.get_label(): [list(v) for v in line.get_data()] for line in auc_ax.get_lines()}
    assert lines == {"fgsm": [[8.0], [0.4]], "pgd": [[2.0, 8.0], [0.7, 0.5]]}  # clean has no eps: no line
    with pytest.raises(KeyError, match=r"column\(s\) \['loss'\] not in the table"):
        plot_metric_vs(table, "eps", ["loss"])
    with pytest.raises(ValueError, match="no row has both 'eps' and a value"):
        plot_metric_vs(table.assign(eps=None), "eps", ["acc"])


def test_parallel_coordinates_scale_each_column_to_its_range() -> None:
    frame = pd.DataFrame({"lr": [0.1, 0.3, 0.2], "opt": ["sgd", "adam", "sgd"], "k": [5, 5, 5]})
    scaled = parallel_coordinates(frame, ["lr", "opt", "k"])
    assert scaled["lr"].tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert scaled["opt"].tolist() == [1.0, 0.0, 1.0]  # categories in sorted order: adam, sgd
    assert scaled["k"].tolist() == [0.5, 0.5, 0.5]  # a constant column sits in the middle


def test_plot_parallel_coordinates_one_line_per_point_coloured_by_the_metric() -> None:
    frame = pd.DataFrame({"lr": [0.1, 0.3], "seed": [0, 1], "val/acc": [0.5, 0.9], "point": [0, 1]})
    fig = plot_parallel_coordinates(frame, ["lr", "seed", "val/acc"], color="val/acc", label="point")
    ax, colorbar = fig.axes
    points = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in points] == ["0", "1"]
    assert list(points[1].get_ydata()) == [1.0, 1.0, 1.0]
    assert points[0].get_color() != points[1].get_color() and colorbar.get_ylabel() == "val/acc"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr", "seed", "val/acc"]
    with pytest.raises(ValueError, match="at least two columns"):
        plot_parallel_coordinates(frame, ["lr"])


# --- two commits --------------------------------------------------------------------------------------------

A, B = "a" * 40, "b" * 40


def _commit_runs(root: Path) -> pd.DataFrame:
    """lr 0.1 at both commits (B trains 3 epochs instead of 2), lr 0.2 at A only; seeds 0 and 1 at A."""
    write_run_record(root, "20261203-080000-000001", commit=A, lr=0.1, seed=0, rank1=0.5)
    write_run_record(root, "20261203-080100-000002", commit=A, lr=0.1, seed=1, rank1=0.7)
    write_run_record(root, "20261203-080200-000003", commit=A, lr=0.2, seed=0, rank1=0.3)
    write_run_record(root, "20261203-090000-000004", commit=B, lr=0.1, max_epochs=3, rank1=0.8, dirty=True)
    write_run_record(root, "20261203-100000-000005", commit=B, lr=0.1, status="failed")
    return with_commits(load_runs(root))


def test_commit_table_and_short_shas(tmp_path: Path) -> None:
    runs = _commit_runs(tmp_path)
    table = commit_table(runs)
    assert table["commit"].tolist() == [A, B]  # oldest last start first
    assert table["runs"].tolist() == [3, 2] and table["dirty runs"].tolist() == [0, 1]
    assert resolve_commit(runs, "aaa") == A
    with pytest.raises(ValueError, match="commit 'c': no run matches"):
        resolve_commit(runs, "c")


def test_diff_commits_gives_per_setting_means_and_deltas(tmp_path: Path) -> None:
    runs = _commit_runs(tmp_path)
    completed = runs[runs["status"] == "completed"]
    diff = diff_commits(completed, "aaaa", "bbbb", metrics=["test/rank1"])
    # lr 0.1: A = mean(0.5, 0.7) over two seeds, B = 0.8; lr 0.2 ran at A only; the epochs are the change
    assert diff[["config.model.optimizer.lr", "metric", "n A", "n B"]].values.tolist() == [
        [0.1, "test/rank1", 2, 1]
    ]
    assert diff[["A", "B", "B - A"]].values.tolist()[0] == pytest.approx([0.6, 0.8, 0.2])
    assert diff.attrs["pooled_over"] == ["config.trainer.max_epochs"]
    assert set(diff_commits(completed, A, B)["metric"]) == {"test/rank1", "test/verif_acc"}
    with pytest.raises(ValueError, match="give two different commits"):
        diff_commits(completed, A, A[:6])
    with pytest.raises(KeyError, match="test/nope"):
        diff_commits(completed, A, B, metrics=["test/nope"])


def test_with_commits_names_an_unreadable_meta(tmp_path: Path) -> None:
    run_dir = write_run_record(tmp_path, "20261203-080000-000001")
    runs = load_runs(tmp_path)
    (run_dir / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="000001/meta.json: cannot read the run's meta.json"):
        with_commits(runs)


# --- W&B history --------------------------------------------------------------------------------------------


def test_plot_history_from_the_wandb_file_uses_the_trainer_step(tmp_path: Path) -> None:
    run = load_run(write_run_record(tmp_path, "20261203-080000-000001"), read_wandb=False)
    with pytest.raises(ValueError, match="000001: no offline W&B file"):
        plot_history(run, source="wandb")
    history = [
        {"_step": 0, "_runtime": 1.0, "trainer/global_step": 0, "lr-AdamW": 0.003},
        {"_step": 1, "trainer/global_step": 3, "train/loss_step": 9.0, "epoch": 0},
        {"_step": 2, "trainer/global_step": 7, "train/loss_step": 7.0, "epoch": 1},
        {"_step": 3, "trainer/global_step": 7, "val/rank1": 0.4, "val/impostor_cos": -0.1, "epoch": 1},
    ]
    run.wandb = WandbRun("r", "p", config={}, history=history, summary={}, exit_code=0)
    frame = wandb_history(run)
    assert sorted(frame.columns) == [
        "epoch",
        "lr-AdamW",
        "step",
        "train/loss_step",
        "val/impostor_cos",
        "val/rank1",
    ]
    fig = plot_history(run, source="wandb")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "score in [0, 1]", "other metrics"]
    (loss,) = fig.axes[0].get_lines()
    assert (list(loss.get_xdata()), list(loss.get_ydata())) == ([3, 7], [9.0, 7.0])
    assert fig.get_suptitle().endswith("(W&B file)")
    with pytest.raises(ValueError, match="source must be one of"):
        plot_history(run, source="tensorboard")
