"""``python -m src.reproduce``: every registered table is well formed, the dry-run's commands, GPU hours and
missing data, the skip rule (same config hash and commit → reused), failures blocking only their dependants,
and a real end-to-end reproduction of a tiny table followed by its report."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torch import nn

from src import reproduce
from src.config.compose import EXPERIMENTS_DIR, compose
from src.config.secrets import RunSecrets
from src.papers.registry import (
    COST_ENTRIES,
    PAPERS,
    TABLES,
    CostEntry,
    CostUse,
    PaperTable,
    Preparation,
    RowCost,
    TableRow,
    discover,
    register_table,
)
from src.reporting.catalog import experiment_catalog
from src.reproducing import (
    BLOCKED,
    DATASET_SIZES,
    FAILED,
    RAN,
    REUSED,
    FlopCache,
    GitHead,
    Reproduction,
    estimate,
    select_rows,
)
from src.reproducing.plan import compose_row
from src.reproducing.records import composed_hash, find_reusable, stored_hash
from src.sweeping.launchers import Job, LaunchResult
from tests.helpers import tiny_overrides

discover()
ALL_TABLES = [(paper, name) for paper in sorted(TABLES) for name in sorted(TABLES[paper])]
HEAD = GitHead("a" * 40, dirty=False)


# --- every table -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("paper", "name"), ALL_TABLES, ids=[f"{p}-{n}" for p, n in ALL_TABLES])
def test_table_rows_compose_in_dependency_order(paper: str, name: str) -> None:
    table = TABLES[paper][name]
    assert table.rows, f"{paper}/{name} has no rows"
    seen: list[str] = []
    for row in table.rows:
        assert all(need in seen for need in row.needs), f"{row.name} needs {row.needs}, earlier: {seen}"
        composed = compose_row(row)
        assert composed.error is None, f"{paper}/{name} row {row.name}: {composed.error}"
        assert composed.result is not None and composed.result.experiment == row.experiment
        if row.cost is not None:
            assert row.cost.dataset in DATASET_SIZES
            networks = {entry.network for entry in COST_ENTRIES[paper]}
            assert {use.network for use in row.cost.uses} <= networks
        seen.append(row.name)


def test_every_paper_with_experiments_has_a_demo_table_and_lists_every_file() -> None:
    catalog = experiment_catalog(EXPERIMENTS_DIR)
    for paper, info in PAPERS.items():
        files = set(catalog.of_targets(info.targets))
        if not files:
            continue
        tables = TABLES.get(paper, {})
        assert "demo" in tables, f"{paper} has experiments but no demo table"
        rows = {row.experiment for table in tables.values() for row in table.rows}
        excluded = {exp for table in tables.values() for exp in table.excluded}
        assert not files - rows - excluded, (
            f"{paper}: no row and no reason for {sorted(files - rows - excluded)}"
        )
        assert not excluded - files, (
            f"{paper}: excluded files that are not its experiments: {excluded - files}"
        )


def test_registration_refuses_a_row_that_needs_a_later_row() -> None:
    rows = [
        TableRow("a", "demo/recognizer", overrides=("ckpt_path={best_ckpt:b}",)),
        TableRow("b", "demo/recognizer"),
    ]
    with pytest.raises(ValueError, match=r"row 'a': depends on \['b'\], which are not earlier rows"):
        register_table("face_recognizer", "broken", rows)
    assert "broken" not in TABLES["face_recognizer"]


def test_rows_pick_dependencies_and_unknown_rows_are_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    table = TABLES["inspector"]["paper"]
    picked = [row.name for row in select_rows(table, ["robust_celeb_*"])]
    assert picked == [*(s for s in ("stage1_detector", "stage2_reconstructor", "stage3_autothresh")),
                      "stage4_corrector", "robust_celeb_df_v2"]  # fmt: skip
    assert reproduce.main(["inspector", "--rows", "nope", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no row matching 'nope'" in err and "stage1_detector" in err and "robust_ffpp_c23" in err
    assert reproduce.main(["nonexistent_paper", "--dry-run"]) == 2
    assert reproduce.main(["face_recognizer", "--dry-run"]) == 2  # no paper table: says which tables exist
    assert "its tables: demo" in capsys.readouterr().err
    assert reproduce.main(["proface", "--dry-run", "trainer.max_epochs=1"]) == 2
    assert "would change the rows' results" in capsys.readouterr().err


# --- costs -------------------------------------------------------------------------------------------------

IN, OUT = 12, 5  # a linear layer: 2 * 12 * 5 = 120 FLOPs per image


def _linear_passes(net: nn.Module, batch: int, size: int, device: Any) -> Mapping[str, Any]:
    x = torch.zeros(batch, IN)
    return {"protect": lambda: net(x)}


FAKE_ENTRY = CostEntry("PRO-Face", lambda: nn.Linear(IN, OUT), 65, ((112, "run size"),), _linear_passes)


def test_gpu_hours_match_a_hand_calculation() -> None:
    cost = RowCost((CostUse("PRO-Face", 112, ("protect",)),), "celeba")
    cfg = {"train": True, "test": True, "trainer": {"max_epochs": 2, "max_steps": -1}, "datamodule": {}}
    flops = lambda paper, use: 120  # noqa: E731
    # 2 epochs x 162,770 CelebA train images x 3 (forward + backward) + 2 x 19,867 val + 19,962 test
    hand = 120 * (3 * 2 * 162_770 + 2 * 19_867 + 19_962) / (156e12 * 0.40) / 3600
    got = estimate("proface", cost, cfg, "train", flops)
    assert math.isclose(got.hours, hand, rel_tol=1e-12)
    evaluated = estimate("proface", cost, cfg, "eval", flops)
    assert math.isclose(evaluated.hours, 120 * 19_962 / (156e12 * 0.40) / 3600, rel_tol=1e-12)
    assert estimate("proface", None, cfg, "train", flops).hours is None


def test_flops_are_measured_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COST_ENTRIES, "proface", (FAKE_ENTRY,))
    cache = FlopCache(tmp_path / "flops.json")
    assert cache("proface", CostUse("PRO-Face", 112, ("protect",))) == 2 * IN * OUT
    assert json.loads((tmp_path / "flops.json").read_text()) == {"proface|PRO-Face|112|protect|65": 120}
    with pytest.raises(ValueError, match="has no pass"):
        cache("proface", CostUse("PRO-Face", 112, ("recover",)))


def test_dry_run_prints_commands_costs_and_missing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(COST_ENTRIES, "proface", (FAKE_ENTRY,))
    monkeypatch.setenv("PROFACE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PROFACE_DATA", str(tmp_path / "data"))
    assert (
        reproduce.main(["proface", "--rows", "blur_31_2_8/IResNet50,pixelate_7/IResNet50", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    assert "python -m src.train experiment=proface/celeba/blur_31_2_8/IResNet50\n" in out
    cfg = compose("proface/celeba/blur_31_2_8/IResNet50").config
    epochs = int(cfg.trainer.max_epochs)
    hours = 120 * (3 * epochs * 162_770 + epochs * 19_867 + 19_962) / (156e12 * 0.40) / 3600
    assert out.count(f"~{hours:.3g} GPU h") == 2
    assert f"~{2 * hours:.3g} GPU h for the 2 priced row(s)" in out
    assert f"MISSING data: celeba: dataset root not found: {tmp_path / 'data' / 'celeba'}" in out
    assert "MISSING weights: proface-ir50-casia" in out
    assert not (tmp_path / "runs" / "proface").exists()  # nothing ran


def test_dry_run_names_the_row_a_value_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reproduce, "FlopCache", lambda path: lambda paper, use: 1)  # no paper-scale network
    assert reproduce.main(["proface_c", "--rows", "transmission_8bit", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "'ckpt_path={best_ckpt:celeba_ir101}'" in out
    assert "ckpt_path: from row celeba_ir101" in out
    assert "would run (after row(s) celeba_ir101, which run first)" in out
    assert "no cost entry" in out  # the transmission rows declare no cost: no invented number


# --- skip rule and failures (a fake launcher writes the run records) ---------------------------------------


class RecordingLauncher:
    """Writes a completed run record for every job (config.yaml as the run would), or fails chosen rows."""

    name = "fake"

    def __init__(self, fail: set[str] = frozenset(), commit: str = HEAD.commit) -> None:
        self.fail, self.commit, self.jobs = fail, commit, []

    def run_all(self, jobs: list[Job], on_done: Any = None) -> list[LaunchResult]:
        results = []
        for job in jobs:
            self.jobs.append(job)
            experiment = job.command[3].split("=", 1)[1]
            overrides = [o for o in job.command[4:] if not o.startswith("run.")]
            job.run_dir.mkdir(parents=True)
            status = "failed" if job.name in self.fail else "completed"
            meta = {"experiment": experiment, "task": job.command[2].split(".")[1], "status": status,
                    "git": {"commit": self.commit, "dirty": False}, "sweep": {"name": None, "point": None},
                    "end_time": job.run_dir.name}  # fmt: skip
            (job.run_dir / "meta.json").write_text(json.dumps(meta))
            cfg = compose(experiment, overrides).config
            OmegaConf.save(RunSecrets.prepare(cfg, overrides).config(cfg), job.run_dir / "config.yaml")
            (job.run_dir / "checkpoints").mkdir()
            (job.run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
            results.append(LaunchResult(1 if job.name in self.fail else 0, job.run_dir))
        return results


def _table(runs: Path) -> PaperTable:
    where = (f"paths.runs_dir={runs}",)
    return PaperTable(
        "face_recognizer",
        "test",
        (
            TableRow("a", "demo/recognizer", overrides=where),
            TableRow(
                "b", "demo/obfuscation_baselines", "eval", (*where, "model.recognizer_ckpt={best_ckpt:a}")
            ),
            TableRow("c", "proface_s/demo_synthetic", overrides=where),
        ),
    )


def _reproduce(runs: Path, launcher: RecordingLauncher, head: GitHead = HEAD, force: bool = False) -> dict:
    table = _table(runs)
    outcomes = Reproduction(
        table, table.rows, launcher, runs, head=head, force=force, echo=lambda _: None
    ).run()
    return {o.name: o for o in outcomes}


def test_same_hash_and_commit_is_reused_anything_else_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = _reproduce(runs, RecordingLauncher())
    assert {n: o.status for n, o in first.items()} == {"a": RAN, "b": RAN, "c": RAN}
    again = _reproduce(runs, launcher := RecordingLauncher())
    assert {n: o.status for n, o in again.items()} == {"a": REUSED, "b": REUSED, "c": REUSED}
    assert not launcher.jobs and again["a"].run_dir == first["a"].run_dir
    assert stored_hash(Path(first["a"].run_dir)) == again["a"].config_hash
    # --force reruns every row
    forced = _reproduce(runs, launcher := RecordingLauncher(), force=True)
    assert {o.status for o in forced.values()} == {RAN} and len(launcher.jobs) == 3
    b_job = next(job for job in launcher.jobs if job.name == "b")
    assert f"model.recognizer_ckpt={Path(forced['a'].run_dir) / 'checkpoints' / 'last.ckpt'}" in b_job.command
    # another commit: nothing matches
    moved = _reproduce(runs, RecordingLauncher(commit="b" * 40), head=GitHead("b" * 40, False))
    assert {o.status for o in moved.values()} == {RAN}
    # a changed configuration of c's newest run: c runs, a and b (same commit, same config) are reused
    newest = Path(moved["c"].run_dir)
    config = yaml.safe_load((newest / "config.yaml").read_text())
    config["trainer"]["max_epochs"] += 1
    (newest / "config.yaml").write_text(yaml.safe_dump(config))
    changed = _reproduce(runs, RecordingLauncher(commit="b" * 40), head=GitHead("b" * 40, False))
    assert {n: o.status for n, o in changed.items()} == {"a": REUSED, "b": REUSED, "c": RAN}
    # a dirty working tree reuses nothing
    dirty = find_reusable(runs, "demo/recognizer", "train", changed["a"].config_hash, GitHead("b" * 40, True))
    assert dirty.run_dir is None and "uncommitted changes" in dirty.why


def test_hash_ignores_where_and_how_not_what(tmp_path: Path) -> None:
    base = compose("demo/recognizer").config
    moved = compose(
        "demo/recognizer", [f"paths.runs_dir={tmp_path}", "logger=none", "trainer.accelerator=cpu"]
    )
    other = compose("demo/recognizer", ["seed=3"]).config
    assert composed_hash(base, []) == composed_hash(moved.config, moved.overrides)
    assert composed_hash(base, []) != composed_hash(other, ["seed=3"])


def test_a_failed_row_blocks_its_dependants_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    outcomes = _reproduce(runs, RecordingLauncher(fail={"a"}))
    assert outcomes["a"].status == FAILED and "exit 1" in outcomes["a"].reason
    assert outcomes["b"].status == BLOCKED and "a failed" in outcomes["b"].reason
    assert outcomes["c"].status == RAN
    # through the command line: exit 1, the record lists every row
    monkeypatch.setitem(TABLES, "face_recognizer", {"test": _table(runs)})
    monkeypatch.setattr(reproduce, "make_launcher", lambda *a, **k: RecordingLauncher(fail={"a"}))
    monkeypatch.setattr(GitHead, "read", classmethod(lambda cls: HEAD))
    monkeypatch.setenv("PROFACE_RUNS", str(runs))
    assert reproduce.main(["face_recognizer", "--table", "test", "--force", "--no-report"]) == 1
    out = capsys.readouterr().out
    assert "blocked  b: needs row(s) that did not complete: a failed" in out
    record = sorted((runs / "reproduce" / "face_recognizer" / "test").glob("*/reproduce.json"))[-1]
    assert [row["status"] for row in json.loads(record.read_text())["rows"]] == [FAILED, BLOCKED, RAN]


def test_a_failed_preparation_fails_its_row(tmp_path: Path) -> None:
    def broken(_: Mapping[str, Path]) -> None:
        raise RuntimeError("cannot write the synthetic data")

    step = Preparation("synthetic data", str(tmp_path / "data"), broken, lambda: False)
    table = PaperTable("face_recognizer", "t", (TableRow("a", "demo/recognizer", prepare=(step,)),))
    launcher = RecordingLauncher()
    [outcome] = Reproduction(table, table.rows, launcher, tmp_path, head=HEAD, echo=lambda _: None).run()
    assert outcome.status == FAILED and "cannot write the synthetic data" in outcome.reason
    assert not launcher.jobs


# --- end to end --------------------------------------------------------------------------------------------


def test_a_tiny_table_runs_for_real_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    recognizer = tiny_overrides("demo/recognizer", runs)
    obfuscations = tiny_overrides("demo/obfuscation_baselines", runs, {"model.recognizer_ckpt": "x"})
    obfuscations = [o for o in obfuscations if not o.startswith("model.recognizer_ckpt=")]
    table = PaperTable(
        "obfuscation_baselines",
        "tiny",
        (
            TableRow("recognizer", "demo/recognizer", overrides=tuple(recognizer)),
            TableRow(
                "baselines",
                "demo/obfuscation_baselines",
                "eval",
                (*obfuscations, "model.recognizer_ckpt={best_ckpt:recognizer}"),
            ),
        ),
    )
    monkeypatch.setitem(TABLES, "obfuscation_baselines", {**TABLES["obfuscation_baselines"], "tiny": table})
    monkeypatch.setenv("PROFACE_RUNS", str(runs))
    assert (
        reproduce.main(["obfuscation_baselines", "--table", "tiny", "--out", str(tmp_path / "reports")]) == 0
    )
    out = capsys.readouterr().out
    assert "ran      recognizer" in out and "ran      baselines" in out
    assert "pinned with --run" in out  # the report uses this reproduction's run
    runs_csv = (tmp_path / "reports" / "obfuscation_baselines.runs.csv").read_text()
    [baselines] = list((runs / "demo" / "obfuscation_baselines").iterdir())
    assert str(baselines) in runs_csv
    assert (tmp_path / "reports" / "obfuscation_baselines.md").is_file()


@pytest.mark.slow
def test_a_demo_table_runs_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_RUNS", str(tmp_path / "runs"))
    assert (
        reproduce.main(["proface_s", "--table", "demo", "--out", str(tmp_path / "reports"), "logger=none"])
        == 0
    )
    assert (tmp_path / "reports" / "proface_s.md").is_file()


def test_launcher_settings_are_checked_before_any_row_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFACE_RUNS", str(tmp_path / "runs"))
    site = tmp_path / "site.yaml"
    site.write_text("partition: gpu\n", encoding="utf-8")
    assert reproduce.main(["face_recognizer", "--table", "demo", "--launcher-config", str(site)]) == 2
    assert "must say its type (type: slurm)" in capsys.readouterr().err
    assert (
        reproduce.main(["face_recognizer", "--table", "demo", "--launcher", "slurm", "launcher.partitoin=x"])
        == 2
    )
    err = capsys.readouterr().err
    assert "partitoin" in err and "partition" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("meta.json"))
