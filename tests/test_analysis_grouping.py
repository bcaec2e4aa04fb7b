"""``aggregate_over_seeds`` pools only runs of one setting; checked against hand-computed means and stds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from src.analysis import aggregate_over_seeds, varying_config_columns

LR, EPOCHS = "config.model.optimizer.lr", "config.trainer.max_epochs"


def _run(run_id: str, experiment: str, seed: int, metrics: dict[str, float], **config: object) -> dict:
    """A load_runs row; its bookkeeping (run id, dirs, sweep point, W&B group) differs in every run."""
    return {
        "run_id": run_id,
        "experiment": experiment,
        "run_dir": f"/runs/{experiment}/{run_id}",
        "status": "completed",
        "seed": seed,
        "start_time": f"2026-12-03T{run_id}",
        "config.seed": seed,
        "config.paths.runs_dir": f"/scratch/{run_id}",
        "config.run.id": run_id,
        "config.sweep.point": int(run_id[-1]),
        "config.logger.wandb.group": f"sweep-{run_id}",
        "config.callbacks.model_checkpoint.dirpath": f"/runs/{run_id}/checkpoints",
        "config.model.net.widths": (32, 64),
        **{f"config.{key.replace('__', '.')}": value for key, value in config.items()},
        **metrics,
    }


@pytest.fixture
def runs() -> pd.DataFrame:
    rec, obf = "demo/recognizer", "demo/obfuscator"
    rows = [
        _run("r1", rec, 0, {"test/rank1": 0.50}, model__optimizer__lr=0.001, trainer__max_epochs=1),
        _run("r2", rec, 1, {"test/rank1": 0.60}, model__optimizer__lr=0.001, trainer__max_epochs=1),
        _run("r3", rec, 2, {"test/rank1": 0.70}, model__optimizer__lr=0.001, trainer__max_epochs=1),
        _run("r4", rec, 0, {"test/rank1": 0.80}, model__optimizer__lr=0.003, trainer__max_epochs=1),
        _run("r5", rec, 1, {"test/rank1": 0.90}, model__optimizer__lr=0.003, trainer__max_epochs=1),
        _run("r6", rec, 0, {"test/rank1": 0.99}, model__optimizer__lr=0.003, trainer__max_epochs=6),
        _run("r7", obf, 0, {"test/psnr": 30.0}, model__optimizer__lr=0.01),
        _run("r8", obf, 0, {"test/psnr": 32.0}, model__optimizer__lr=0.01),
    ]
    return pd.DataFrame(rows)


def test_varying_columns_leave_out_seed_and_bookkeeping(runs: pd.DataFrame) -> None:
    # the lr differs only inside demo/recognizer and max_epochs is missing (NaN) in both obfuscator runs
    assert varying_config_columns(runs) == [LR, EPOCHS]  # in the table's column order
    assert varying_config_columns(runs, ignore=["config.trainer.*"]) == [LR]
    assert varying_config_columns(runs[runs["experiment"] == "demo/obfuscator"]) == []


def test_groups_by_setting_with_hand_computed_mean_and_std(runs: pd.DataFrame) -> None:
    table = aggregate_over_seeds(runs)
    keys = ["experiment", *varying_config_columns(runs)]
    assert list(table.columns) == [
        *keys,
        "seeds",
        "count",
        "test/rank1 mean",
        "test/rank1 std",
        "test/psnr mean",
        "test/psnr std",
    ]  # metrics in the runs table's column order
    rows = {(r["experiment"], r[LR], r[EPOCHS]): r for _, r in table.iterrows()}
    assert len(table) == 4  # the pooled table had 2 rows: one per experiment

    low = rows[("demo/recognizer", 0.001, 1)]
    assert (low["seeds"], low["count"]) == ("0, 1, 2", 3)
    assert low["test/rank1 mean"] == pytest.approx(0.6)
    assert low["test/rank1 std"] == pytest.approx(0.1)  # sqrt(((-.1)^2 + 0 + .1^2) / 2)
    assert math.isnan(low["test/psnr mean"])

    high = rows[("demo/recognizer", 0.003, 1)]
    assert (high["seeds"], high["count"]) == ("0, 1", 2)
    assert high["test/rank1 mean"] == pytest.approx(0.85)
    assert high["test/rank1 std"] == pytest.approx(math.sqrt(0.005))  # sqrt((.05^2 * 2) / 1)

    longer = rows[("demo/recognizer", 0.003, 6)]  # the 6-epoch run stays on its own
    assert (longer["seeds"], longer["count"]) == ("0", 1)
    assert longer["test/rank1 mean"] == pytest.approx(0.99) and math.isnan(longer["test/rank1 std"])

    (obf,) = [r for key, r in rows.items() if key[0] == "demo/obfuscator"]
    assert (obf["seeds"], obf["count"]) == ("0, 0", 2)  # the same seed twice is shown as such
    assert obf["test/psnr mean"] == pytest.approx(31.0) and obf["test/psnr std"] == pytest.approx(
        math.sqrt(2)
    )
    assert math.isnan(obf[EPOCHS])


def test_rows_are_sorted_numerically(runs: pd.DataFrame) -> None:
    table = aggregate_over_seeds(runs)
    assert table["experiment"].tolist() == ["demo/obfuscator", *["demo/recognizer"] * 3]
    assert table[LR].tolist() == [0.01, 0.001, 0.003, 0.003]
    assert table[EPOCHS].tolist()[1:] == [1, 1, 6]


def test_ignore_and_metrics_arguments(runs: pd.DataFrame) -> None:
    pooled = aggregate_over_seeds(runs, metrics=["test/rank1"], ignore=[EPOCHS])
    assert list(pooled.columns) == ["experiment", LR, "seeds", "count", "test/rank1 mean", "test/rank1 std"]
    (row,) = [r for _, r in pooled.iterrows() if r[LR] == 0.003]
    assert (row["seeds"], row["count"]) == ("0, 0, 1", 3)
    assert row["test/rank1 mean"] == pytest.approx((0.80 + 0.90 + 0.99) / 3)
    with pytest.raises(KeyError, match="test/nothing"):
        aggregate_over_seeds(runs, metrics=["test/nothing"])


def test_a_key_missing_in_one_run_and_unhashable_values(runs: pd.DataFrame) -> None:
    runs = runs[runs["experiment"] == "demo/obfuscator"].copy()
    runs["config.model.kwargs"] = [{}, {}]  # flatten_dict keeps empty mappings as they are
    assert varying_config_columns(runs) == []
    runs["config.model.mask"] = ["box", None]  # key present in one run only
    assert varying_config_columns(runs) == ["config.model.mask"]
    assert aggregate_over_seeds(runs)["count"].tolist() == [1, 1]


def test_empty_table() -> None:
    empty = pd.DataFrame(columns=["run_id", "experiment", "seed", "config.seed", "test/rank1"])
    table = aggregate_over_seeds(empty, metrics=["test/rank1"])
    assert table.empty and list(table.columns) == [
        "experiment",
        "seeds",
        "count",
        "test/rank1 mean",
        "test/rank1 std",
    ]


def test_runs_recorded_before_a_module_moved_group_with_todays_runs() -> None:
    """The demo recognizer's runs split into two "settings" after its module moved into src/papers: the
    recorded ``_target_`` differed, nothing else did."""
    from src.papers.registry import discover

    info = discover()["face_recognizer"]
    (old,) = info.formerly
    runs = pd.DataFrame(
        {
            "experiment": ["demo/recognizer"] * 2,
            "run_id": ["a", "b"],
            "seed": [0, 1],
            "config.model._target_": [old, info.target],
            "test/rank1": [0.9, 0.8],
        }
    )
    assert varying_config_columns(runs) == []
    (row,) = aggregate_over_seeds(runs).to_dict("records")
    assert row["count"] == 2 and row["seeds"] == "0, 1" and row["test/rank1 mean"] == pytest.approx(0.85)
