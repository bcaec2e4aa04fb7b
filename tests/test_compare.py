"""``compare_runs`` and ``python -m src.compare`` on fake but complete run records (written by hand here)."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from src.analysis import compare_runs, load_run
from src.analysis.compare import ABSENT
from src.compare import main

ROOT = Path(__file__).resolve().parents[1]

# --- fake run records, shaped like those src.tasks writes ------------------------------------------------


def _config(run_dir: Path, experiment: str, *, lr: float, max_epochs: int, seed: int) -> dict[str, Any]:
    return {
        "paths": {"root_dir": "/lab", "runs_dir": str(run_dir.parents[1]), "data_dir": "/lab/data"},
        "trainer": {"max_epochs": max_epochs, "limit_train_batches": None, "deterministic": "warn"},
        "logger": {"wandb": {"mode": "offline", "project": "proface-lab", "group": None}},
        "datamodule": {"_target_": "src.datamodules.synthetic_faces.SyntheticFacesDataModule", "seed": 1234},
        "model": {
            "_target_": "src.papers.face_recognizer.module.FaceRecognizerModule",
            "net": {"widths": [32, 64], "embedding_dim": 128},
            "optimizer": {"_target_": "torch.optim.AdamW", "lr": lr, "weight_decay": 0.0005},
            "eval_password": "***",
            "_secrets_": ["eval_password"],
        },
        "experiment": experiment,
        "seed": seed,
        "run": {"id": None, "dir": None, "tags": ["demo"], "notes": ""},
        "sweep": {"name": None, "point": None},
    }


def _history(max_epochs: int, rank1: float, steps_per_epoch: int = 4) -> str:
    """A Lightning CSVLogger ``metrics.csv``: step rows, epoch rows, validation rows, one test row."""
    header = (
        "epoch,lr-AdamW,step,test/rank1,train/acc,train/loss_epoch,train/loss_step,val/impostor_cos,val/rank1"
    )
    lines = [header, ",0.003,0,,,,,,"]
    step = 0
    for epoch in range(max_epochs):
        for _ in range(2):
            step += steps_per_epoch // 2
            lines.append(f"{epoch},,{step - 1},,,,{12.0 / (step + 1):.4f},,")
        progress = (epoch + 1) / max_epochs
        lines.append(f"{epoch},,{step - 1},,{0.5 + 0.4 * progress:.4f},{10.0 / (epoch + 2):.4f},,,")
        lines.append(f"{epoch},,{step - 1},,,,,{-0.01 * progress:.4f},{rank1 * progress:.4f}")
    lines.append(f"{max_epochs},,{step},{rank1},,,,,")
    return "\n".join(lines) + "\n"


def write_run_record(
    root: Path,
    run_id: str,
    *,
    experiment: str = "demo/recognizer",
    lr: float = 0.003,
    max_epochs: int = 2,
    seed: int = 0,
    rank1: float = 0.9,
    status: str = "completed",
    commit: str = "c0ffee" + "0" * 34,
    dirty: bool = False,
    overrides: tuple[str, ...] = (),
    sweep: dict[str, Any] | None = None,
) -> Path:
    """A run dir under ``root/<experiment>/<run_id>`` with every file a finished (or failed) run leaves."""
    run_dir = root / experiment / run_id
    (run_dir / "checkpoints").mkdir(parents=True)
    config = _config(run_dir, experiment, lr=lr, max_epochs=max_epochs, seed=seed)
    if sweep is not None:
        config["sweep"] = sweep
        config["logger"]["wandb"]["group"] = sweep["name"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run_dir / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))
    meta = {
        "run_id": run_id,
        "experiment": experiment,
        "task": "train",
        "status": status,
        "seed": seed,
        "command": shlex.join(["python", "-m", "src.train", f"experiment={experiment}", *overrides]),
        "argv": [sys.executable, "-m", "src.train", f"experiment={experiment}", *overrides],
        "git": {"commit": commit, "branch": "main", "dirty": dirty},
        "sweep": sweep or {"name": None, "point": None},
        "secrets": {"model.eval_password": {"salt": "5a17", "scrypt": "f1n9e2p2i2n2t"}},
        "start_time": f"2026-12-03T{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}+00:00",
        "end_time": f"2026-12-03T{run_id[9:11]}:{run_id[11:13]}:59+00:00",
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    summary: dict[str, Any] = {"run_id": run_id, "experiment": experiment, "status": status}
    if status == "completed":
        (run_dir / "metrics.csv").write_text(_history(max_epochs, rank1))
        summary.update(
            {
                "best_checkpoint": str(run_dir / "checkpoints" / "best-001.ckpt"),
                "data": {"dataset": "SyntheticFaces", "synthetic": True},
                "epochs_completed": max_epochs,
                "train/loss": 10.0 / (max_epochs + 1),
                "val/rank1": rank1,
                "test/rank1": rank1,
                "test/verif_acc": round(0.5 + rank1 / 2, 6),
            }
        )
    else:
        summary["error"] = "RuntimeError: CUDA out of memory"
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir


def write_sweep_index(
    root: Path, name: str, sweep_id: str, points: list[tuple[Path, dict[str, Any]]]
) -> Path:
    """``<root>/sweeps/<name>/<sweep_id>/index.csv`` as ``src.sweep`` writes it (metric: val/rank1)."""
    sweep_dir = root / "sweeps" / name / sweep_id
    sweep_dir.mkdir(parents=True)
    names = list(points[0][1])
    lines = [",".join(["point", "status", "returncode", "reason", "run_dir", *names, "val/rank1"])]
    for i, (run_dir, values) in enumerate(points):
        rank1 = json.loads((run_dir / "summary.json").read_text()).get("val/rank1", "")
        lines.append(",".join([str(i), "ok", "0", "", str(run_dir), *map(str, values.values()), str(rank1)]))
    index = sweep_dir / "index.csv"
    index.write_text("\n".join(lines) + "\n")
    return index


# --- compare_runs -------------------------------------------------------------------------------------------


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    a = write_run_record(
        tmp_path, "20261203-090000-aaaaaa", lr=0.001, rank1=0.8, overrides=("model.optimizer.lr=0.001",)
    )
    b = write_run_record(
        tmp_path,
        "20261203-100000-bbbbbb",
        lr=0.003,
        max_epochs=6,
        rank1=0.95,
        commit="beef" + "1" * 36,
        dirty=True,
        overrides=("model.optimizer.lr=0.003", "trainer.max_epochs=6", "model.eval_password=***"),
    )
    return a, b


def test_compare_runs_lists_only_what_differs(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    result = compare_runs(a, load_run(b))  # a path and a Run object
    la, lb = "20261203-090000-aaaaaa", "20261203-100000-bbbbbb"
    assert result.labels == [la, lb]

    assert result.config.index.tolist() == ["model.optimizer.lr", "trainer.max_epochs"]
    assert result.config.loc["model.optimizer.lr"].tolist() == [0.001, 0.003]
    assert result.config.loc["trainer.max_epochs"].tolist() == [2, 6]
    assert "model.eval_password" not in result.config.index  # both are *** in the record

    assert result.overrides.loc["model.optimizer.lr"].tolist() == ["0.001", "0.003"]
    assert result.overrides.loc["trainer.max_epochs"].tolist() == [ABSENT, "6"]
    assert result.overrides.loc["model.eval_password"].tolist() == [ABSENT, "***"]

    runs = result.runs
    assert runs.loc[la, "commit"] == "c0ffee" + "0" * 34 and runs.loc[lb, "commit"] == "beef" + "1" * 36
    assert runs["dirty"].tolist() == [False, True] and runs["status"].tolist() == ["completed", "completed"]
    assert not result.same_code
    assert result.code_note() == f"2 different commits; uncommitted changes in {lb}"

    metrics = result.metrics
    assert list(metrics.columns) == [la, lb, "diff"]
    assert metrics.loc["test/rank1"].tolist() == pytest.approx([0.8, 0.95, 0.15])
    assert metrics.loc["train/loss"].tolist() == pytest.approx([10 / 3, 10 / 7, 10 / 7 - 10 / 3])
    assert not {"status", "run_id", "best_checkpoint", "data"} & set(metrics.index)  # not metrics


def test_compare_runs_text_report(two_runs: tuple[Path, Path]) -> None:
    text = compare_runs(*two_runs, metrics=["test/*"]).to_text()
    sections = [line for line in text.splitlines() if line.startswith("== ")]
    assert sections == [
        "== runs",
        "== code: 2 different commits; uncommitted changes in 20261203-100000-bbbbbb",
        "== config differences",
        "== override differences",
        "== final metrics (summary.json)",
    ]
    metric_lines = text.split("== final metrics (summary.json)\n")[1].splitlines()
    assert [line.split()[0] for line in metric_lines[1:]] == ["test/rank1", "test/verif_acc"]
    assert metric_lines[1].split()[1:] == ["0.8", "0.95", "0.15"]
    assert "***" in text and "f1n9e2p2i2n2t" not in text  # secrets stay redacted, fingerprints unshown


def test_compare_same_code_and_three_runs(tmp_path: Path) -> None:
    runs = [
        write_run_record(tmp_path, f"20261203-0{i}0000-aaaaa{i}", seed=i, rank1=0.5 + i / 10)
        for i in range(3)
    ]
    failed = write_run_record(tmp_path, "20261203-090000-ffffff", status="failed")
    result = compare_runs(*runs, failed)
    assert result.same_code and result.code_note().startswith("same commit c0ffee")
    assert result.config.index.tolist() == ["seed"] and result.config.loc["seed"].tolist() == [0, 1, 2, 0]
    assert result.runs["status"].tolist() == ["completed"] * 3 + ["failed"]
    diffs = result.metrics.loc["test/rank1"]
    assert diffs["diff 20261203-010000-aaaaa1"] == pytest.approx(0.1)
    assert diffs["diff 20261203-020000-aaaaa2"] == pytest.approx(0.2)
    assert math.isnan(diffs["20261203-090000-ffffff"]) and math.isnan(diffs["diff 20261203-090000-ffffff"])
    with pytest.raises(ValueError, match="at least two"):
        compare_runs(runs[0])


def test_same_run_id_in_two_experiments_gets_distinct_labels(tmp_path: Path) -> None:
    a = write_run_record(tmp_path, "20261203-090000-aaaaaa", experiment="demo/recognizer")
    b = write_run_record(tmp_path, "20261203-090000-aaaaaa", experiment="demo/other")
    result = compare_runs(a, b)
    assert result.labels == ["demo/recognizer/20261203-090000-aaaaaa", "demo/other/20261203-090000-aaaaaa"]
    assert result.config.loc["experiment"].tolist() == ["demo/recognizer", "demo/other"]


# --- the CLI ------------------------------------------------------------------------------------------------


def test_cli_prints_the_comparison(two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(p) for p in two_runs]) == 0
    out = capsys.readouterr().out
    assert out == compare_runs(*two_runs).to_text()


def test_cli_bad_paths_exit_2_naming_the_path(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-run"
    assert main([str(two_runs[0]), str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no such run directory: {missing}\n"

    not_a_run = tmp_path / "demo"
    assert main([str(two_runs[0]), str(not_a_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(not_a_run) in err and "meta.json" in err

    (two_runs[1] / "summary.json").write_text("{broken\n json")
    assert main([str(p) for p in two_runs]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(two_runs[1] / "summary.json") in err

    with pytest.raises(SystemExit) as exit_info:
        main([str(two_runs[0])])
    assert exit_info.value.code == 2


def test_cli_as_a_module(two_runs: tuple[Path, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "src.compare", *map(str, two_runs), "--metrics", "test/rank1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "== config differences" in proc.stdout and "test/rank1" in proc.stdout
    assert "test/verif_acc" not in proc.stdout
