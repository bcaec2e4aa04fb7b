"""Run-record loading (fake run dirs) and the ``.wandb`` reader (checked against a real offline W&B run)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from src.analysis import (
    RunRecordError,
    WandbFileError,
    find_runs,
    find_wandb_files,
    load_run,
    load_runs,
    load_sweep,
    merge_wandb_runs,
    read_wandb_file,
)
from src.analysis.wandb_file import WandbRun

# --- fake run records ---------------------------------------------------------------------------------------


def _write_run(
    root: Path,
    experiment: str,
    run_id: str,
    *,
    config: str,
    meta: dict[str, Any],
    summary: dict[str, Any] | None,
    metrics: str | None = None,
    overrides: str = "",
) -> Path:
    run_dir = root / experiment / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(textwrap.dedent(config))
    (run_dir / "overrides.txt").write_text(overrides)
    (run_dir / "meta.json").write_text(json.dumps({"run_id": run_id, "experiment": experiment, **meta}))
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    if metrics is not None:
        (run_dir / "metrics.csv").write_text(textwrap.dedent(metrics))
    (run_dir / "checkpoints").mkdir()
    return run_dir


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    _write_run(
        root,
        "demo/recognizer",
        "20260101-000000-aaaaaa",
        config="""\
            experiment: demo/recognizer
            seed: 0
            model:
              optimizer: {lr: 0.001, name: adam}
              widths: [8, 16]
            trainer: {max_epochs: 2}
            """,
        meta={"seed": 0, "status": "finished", "start_time": "2026-01-01T00:00:00"},
        summary={
            "run_id": "20260101-000000-aaaaaa",
            "experiment": "demo/recognizer",
            "status": "finished",
            "test/psnr": 31.2,
            "val/rank1": 0.8,
        },
        metrics="""\
            epoch,step,train/loss,val/rank1
            0,9,0.9,
            0,9,,0.5
            1,19,0.4,
            1,19,,0.8
            """,
        overrides="model.optimizer.lr=0.001\n\ntrainer.max_epochs=2\n",
    )
    _write_run(
        root,
        "demo/obfuscator",
        "20260102-000000-bbbbbb",
        config="""\
            experiment: demo/obfuscator
            seed: 1
            model:
              optimizer: {lr: 0.01, name: sgd}
            """,
        meta={"seed": 1, "status": "running", "start_time": "2026-01-02T00:00:00"},
        summary=None,  # still running: no summary.json, no metrics.csv yet
    )
    # not run dirs: a sweep folder and stray files
    (root / "sweeps" / "s" / "x").mkdir(parents=True)
    (root / "sweeps" / "s" / "x" / "index.csv").write_text("point,status,returncode,run_dir\n")
    return root


def test_find_runs(runs_root: Path) -> None:
    runs = find_runs(runs_root)
    assert [r.name for r in runs] == ["20260102-000000-bbbbbb", "20260101-000000-aaaaaa"]  # sorted by path
    assert [r.name for r in find_runs(runs_root, experiment="demo/recognizer")] == ["20260101-000000-aaaaaa"]
    assert len(find_runs(runs_root, experiment="demo/*")) == 2
    assert find_runs(runs_root, experiment="demo") == []
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_runs(runs_root / "nowhere")


def test_load_run(runs_root: Path) -> None:
    run = load_run(runs_root / "demo/recognizer/20260101-000000-aaaaaa")
    assert run.run_id == "20260101-000000-aaaaaa"
    assert run.experiment == "demo/recognizer"
    assert run.config["model"]["optimizer"] == {"lr": 0.001, "name": "adam"}
    assert run.overrides == ["model.optimizer.lr=0.001", "trainer.max_epochs=2"]
    assert run.summary["test/psnr"] == 31.2 and run.summary["status"] == "finished"
    assert (run.status, run.seed, run.start_time) == ("finished", 0, "2026-01-01T00:00:00")
    assert list(run.history.columns) == ["epoch", "step", "train/loss", "val/rank1"]
    assert run.history["val/rank1"].dropna().tolist() == [0.5, 0.8]
    assert run.wandb is None

    running = load_run(runs_root / "demo/obfuscator/20260102-000000-bbbbbb")
    assert running.summary == {} and running.history.empty and running.status == "running"


def test_load_runs_dataframe(runs_root: Path) -> None:
    df = load_runs(runs_root)
    assert list(df.columns[:6]) == ["run_id", "experiment", "run_dir", "status", "seed", "start_time"]
    df = df.set_index("run_id")
    assert len(df) == 2
    a, b = df.loc["20260101-000000-aaaaaa"], df.loc["20260102-000000-bbbbbb"]
    assert (a["experiment"], a["status"], a["seed"]) == ("demo/recognizer", "finished", 0)
    assert (b["experiment"], b["status"], b["seed"]) == ("demo/obfuscator", "running", 1)
    assert a["config.model.optimizer.lr"] == 0.001 and b["config.model.optimizer.lr"] == 0.01
    assert a["config.model.widths"] == (8, 16) and a["config.trainer.max_epochs"] == 2
    assert math.isnan(b["config.trainer.max_epochs"])
    assert a["test/psnr"] == 31.2 and math.isnan(b["test/psnr"]) and math.isnan(b["val/rank1"])
    assert "status" not in [c for c in df.columns if c.startswith("test/")]
    assert a["run_dir"] == str(runs_root / "demo/recognizer/20260101-000000-aaaaaa")

    only = load_runs(runs_root, experiment="demo/obfuscator")
    assert only["run_id"].tolist() == ["20260102-000000-bbbbbb"]
    empty = load_runs(runs_root, experiment="nothing")
    assert empty.empty and list(empty.columns) == [
        "run_id",
        "experiment",
        "run_dir",
        "status",
        "seed",
        "start_time",
    ]


def test_bad_files_name_the_path(runs_root: Path) -> None:
    run_dir = runs_root / "demo/recognizer/20260101-000000-aaaaaa"
    (run_dir / "summary.json").write_text("{not json")
    with pytest.raises(RunRecordError, match=r"summary\.json"):
        load_run(run_dir)
    with pytest.raises(RunRecordError, match=r"summary\.json"):
        load_runs(runs_root)
    (run_dir / "summary.json").unlink()
    (run_dir / "meta.json").write_text("[1, 2]")
    with pytest.raises(RunRecordError, match=r"meta\.json.*JSON object"):
        load_run(run_dir)
    other = runs_root / "demo/obfuscator/20260102-000000-bbbbbb"
    (other / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.yaml"):
        load_run(other)
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        load_run(runs_root / "demo")


def test_load_sweep_joins_summaries(runs_root: Path, tmp_path: Path) -> None:
    ok = runs_root / "demo/recognizer/20260101-000000-aaaaaa"
    running = runs_root / "demo/obfuscator/20260102-000000-bbbbbb"
    index = tmp_path / "index.csv"
    index.write_text(
        "point,status,returncode,run_dir,model.optimizer.lr,val/rank1\n"
        f"0,ok,0,{ok},0.001,0.8\n"
        f"1,failed,1,{running},0.01,\n"
        "2,failed,-1,,0.1,\n"
    )
    df = load_sweep(index)
    assert df["point"].tolist() == [0, 1, 2]
    assert df.loc[0, "test/psnr"] == 31.2 and df.loc[0, "val/rank1"] == 0.8
    assert df.loc[0, "run_id"] == "20260101-000000-aaaaaa" and df.loc[1, "run_id"] == "20260102-000000-bbbbbb"
    assert math.isnan(df.loc[1, "test/psnr"]) and math.isnan(df.loc[2, "val/rank1"])
    with pytest.raises(FileNotFoundError, match="index"):
        load_sweep(tmp_path / "missing.csv")


# --- a real offline W&B run ---------------------------------------------------------------------------------

N_STEPS = 300
WANDB_SCRIPT = """
import sys
import wandb

run = wandb.init(
    mode="offline", project="t", id="abc123", config={"model": {"lr": 0.1}, "seed": 0}, dir=sys.argv[1]
)
for i in range(N_STEPS):
    wandb.log({"train/loss": 1.0 / (i + 1), "val/acc": i * 0.5})
run.summary.update({"best/val_acc": 149.5, "notes": "x" * 80000})  # > 2 blocks: FIRST, MIDDLE, LAST chunks
run.finish()
""".replace("N_STEPS", str(N_STEPS))


def _wandb_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        WANDB_SILENT="true",
        HF_HUB_OFFLINE="1",
        WANDB_DIR=str(base),
        WANDB_CONFIG_DIR=str(base / "wandb_config"),
        WANDB_CACHE_DIR=str(base / "wandb_cache"),
        WANDB_DATA_DIR=str(base / "wandb_data"),
    )
    return env


@pytest.fixture(scope="module")
def wandb_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir whose ``wandb/`` holds a real offline run written by wandb in a fresh process."""
    base = tmp_path_factory.mktemp("wandb_real")
    run_dir = base / "runs" / "demo" / "20260101-000000-cccccc"
    run_dir.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", WANDB_SCRIPT, str(run_dir)],
        check=True,
        env=_wandb_env(base),
        cwd=base,
        timeout=300,
    )
    (run_dir / "meta.json").write_text(json.dumps({"run_id": "20260101-000000-cccccc", "status": "finished"}))
    (run_dir / "config.yaml").write_text("experiment: demo\nseed: 0\n")
    return run_dir


def test_read_real_offline_wandb_run(wandb_run_dir: Path) -> None:
    (path,) = find_wandb_files(wandb_run_dir)
    assert path.name == "run-abc123.wandb" and path.parent.name.startswith("offline-run-")
    run = read_wandb_file(path)

    assert (run.run_id, run.project, run.exit_code) == ("abc123", "t", 0)
    assert run.config == {"model": {"lr": 0.1}, "seed": 0}

    assert len(run.history) == N_STEPS
    assert [row["_step"] for row in run.history] == list(range(N_STEPS))
    for i, row in enumerate(run.history):
        assert row["train/loss"] == 1.0 / (i + 1) and row["val/acc"] == i * 0.5
        assert set(row) == {"_step", "_runtime", "_timestamp", "train/loss", "val/acc"}

    expected = {
        "train/loss": 1.0 / N_STEPS,
        "val/acc": (N_STEPS - 1) * 0.5,
        "best/val_acc": 149.5,
        "notes": "x" * 80000,
        "_step": N_STEPS - 1,
    }
    assert {k: run.summary[k] for k in expected} == expected
    assert set(run.summary) == {*expected, "_runtime", "_timestamp"}
    frame = run.history_frame()
    assert frame.shape[0] == N_STEPS and frame["val/acc"].iloc[-1] == 149.5

    loaded = load_run(wandb_run_dir)
    assert loaded.wandb is not None and loaded.wandb.config == run.config


def test_wandb_reader_agrees_with_wandb_leet_inspect(wandb_run_dir: Path) -> None:
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent))
    if wandb_cli is None:
        pytest.skip("wandb CLI not installed next to the interpreter")
    (path,) = find_wandb_files(wandb_run_dir)
    proc = subprocess.run(
        [wandb_cli, "leet", "inspect", "--summary", "--json", str(path)],
        capture_output=True,
        text=True,
        env=_wandb_env(wandb_run_dir.parent),
        timeout=120,
    )
    if proc.returncode != 0 and ("No such command" in proc.stderr or "Usage" in proc.stderr):
        pytest.skip("`wandb leet inspect` is not available in this wandb version")
    assert proc.returncode == 0, proc.stderr
    reference = json.loads(proc.stdout)
    run = read_wandb_file(path)
    assert run.config == reference["config"]
    assert run.summary == reference["summary"]
    assert (run.run_id, run.project, run.exit_code) == (reference["run_id"], reference["project"], 0)
    assert run.history[-1]["_step"] == reference["step"]


def test_truncated_wandb_file_reads_up_to_the_last_complete_record(
    wandb_run_dir: Path, tmp_path: Path
) -> None:
    (path,) = find_wandb_files(wandb_run_dir)
    data = path.read_bytes()
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(data[: 40 * 1024 + 123])  # a live or killed run: ends mid-record, no exit record
    run = read_wandb_file(cut)
    assert run.exit_code is None and not run.finished
    assert 0 < len(run.history) < N_STEPS
    assert [row["_step"] for row in run.history] == list(range(len(run.history)))
    assert run.config == {"model": {"lr": 0.1}, "seed": 0}


def test_corrupt_wandb_files_raise_naming_the_path(wandb_run_dir: Path, tmp_path: Path) -> None:
    (path,) = find_wandb_files(wandb_run_dir)
    data = bytearray(path.read_bytes())
    bad_header = tmp_path / "run-header.wandb"
    bad_header.write_bytes(b"NOPE" + bytes(data[4:]))
    with pytest.raises(WandbFileError, match=r"run-header\.wandb.*not a \.wandb file"):
        read_wandb_file(bad_header)
    data[200] ^= 0xFF
    flipped = tmp_path / "run-flip.wandb"
    flipped.write_bytes(bytes(data))
    with pytest.raises(WandbFileError, match=r"run-flip\.wandb: checksum mismatch"):
        read_wandb_file(flipped)
    with pytest.raises(FileNotFoundError):
        read_wandb_file(tmp_path / "missing.wandb")


def test_history_frame_type(wandb_run_dir: Path) -> None:
    run = read_wandb_file(find_wandb_files(wandb_run_dir)[0])
    assert isinstance(run.history_frame(), pd.DataFrame)


def test_merge_wandb_runs_of_a_resumed_run() -> None:
    def part(steps: range, config: dict[str, Any], summary: dict[str, Any], code: int | None) -> WandbRun:
        rows = [{"_step": s, "loss": float(s) + (0.5 if code is not None else 0.0)} for s in steps]
        return WandbRun("r1", "p", config, rows, summary, code)

    first = part(range(0, 10), {"lr": 0.1, "seed": 0}, {"loss": 9.0, "best": 1.0}, None)  # killed at step 9
    second = part(range(6, 12), {"lr": 0.1, "resumed": True}, {"loss": 11.5}, 0)  # resumed from step 6
    merged = merge_wandb_runs([first, second])
    assert [r["_step"] for r in merged.history] == list(range(12))
    assert [r["loss"] for r in merged.history[5:8]] == [5.0, 6.5, 7.5]
    assert merged.config == {"lr": 0.1, "seed": 0, "resumed": True}
    assert merged.summary == {"loss": 11.5, "best": 1.0}
    assert merged.exit_code == 0


def test_load_run_merges_several_wandb_files(wandb_run_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(wandb_run_dir, run_dir, symlinks=True)
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    shutil.copytree(offline, offline.with_name(offline.name.replace("offline-run-", "offline-run-9")))
    latest = run_dir / "wandb" / "latest-run"
    latest.unlink(missing_ok=True)
    latest.symlink_to(offline.name)  # as wandb leaves it: a link to a run folder
    assert len(find_wandb_files(run_dir)) == 2
    run = load_run(run_dir)
    assert run.wandb is not None and len(run.wandb.history) == N_STEPS
    assert run.wandb.config == {"model": {"lr": 0.1}, "seed": 0}


def test_load_sweep_reads_run_dirs_relative_to_the_index(
    runs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``src.sweep`` writes ``run_dir`` relative to the index's folder (``points/000``)."""
    sweep_dir = runs_root / "sweeps" / "s" / "20260101-000000-abcdef"
    shutil.copytree(runs_root / "demo/recognizer/20260101-000000-aaaaaa", sweep_dir / "points" / "000")
    index = sweep_dir / "index.csv"
    index.write_text("point,status,returncode,run_dir\n0,ok,0,points/000\n1,failed,-1,\n")
    monkeypatch.chdir(tmp_path)  # not the sweep folder
    df = load_sweep(index)
    assert df.loc[0, "run_id"] == "20260101-000000-aaaaaa" and df.loc[0, "test/psnr"] == 31.2
    assert load_run(df.loc[0, "run_dir"]).run_id == "20260101-000000-aaaaaa"  # resolved, not "points/000"


def test_runs_that_never_started_are_left_out(runs_root: Path) -> None:
    """A run stopped by a bad data path before fit/test computed nothing: it must not appear among the runs
    a notebook averages or a report chooses from, unless asked for."""
    _write_run(
        runs_root,
        "demo/recognizer",
        "20260103-000000-eeeeee",
        config="experiment: demo/recognizer\nseed: 0\n",
        meta={"seed": 0, "status": "failed_to_start"},
        summary={"status": "failed_to_start"},
    )
    assert "20260103-000000-eeeeee" not in set(load_runs(runs_root)["run_id"])
    assert "20260103-000000-eeeeee" in set(load_runs(runs_root, include_not_started=True)["run_id"])
