"""The train/eval command line: one-line expected errors (``--debug`` for the traceback), no run directory
for a run that cannot start, ``--help`` listing papers and experiments by paper, suggestions for typos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.cli import experiments_by_paper, folded, main
from src.config.errors import ConfigError
from src.papers.registry import discover
from tests.helpers import TINY_DATA
from tests.test_identity_folders import make_layout

PASSWORD = "Quokka-Zebra-7781"


def _folder_args(root: Path, runs_dir: Path, *extra: str) -> list[str]:
    return [
        "experiment=demo/recognizer",
        "datamodule=identity_folders",
        f"datamodule.root={root}",
        "datamodule.val_identities=2",
        "datamodule.test_identities=2",
        "datamodule.image_size=32",
        "datamodule.num_workers=0",
        "logger=none",
        "trainer.accelerator=cpu",
        f"paths.runs_dir={runs_dir}",
        *extra,
    ]


def test_a_missing_data_root_is_one_line_and_leaves_no_run_directory(
    tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("train", _folder_args(tmp_path / "nowhere", runs_dir)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: dataset root not found:") and "nowhere" in captured.err
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "RUN_DIR=" not in captured.out and list(runs_dir.iterdir()) == []


def test_debug_adds_the_traceback_to_an_expected_error(
    tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("train", [*_folder_args(tmp_path / "nowhere", runs_dir), "--debug"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("Traceback") and "DatasetLayoutError" in error
    assert error.strip().splitlines()[-1].startswith("error: dataset root not found")


def test_a_run_failing_before_training_is_recorded_as_failed_to_start(
    tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The layout check passes (enough identity folders), the scan at set-up finds too few images."""
    root = make_layout(tmp_path / "faces", identities=8, images=3)
    assert main("train", _folder_args(root, runs_dir, "datamodule.min_images_per_identity=5")) == 2
    assert "has 5 or more images" in capsys.readouterr().err
    (run_dir,) = [path.parent for path in runs_dir.rglob("meta.json")]
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == summary["status"] == "failed_to_start"
    assert "epochs_completed" not in meta


def test_unexpected_errors_keep_their_traceback_with_secrets_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import src.tasks

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError(f"boom near {PASSWORD}")

    monkeypatch.setattr(src.tasks, "run", crash)
    args = ["experiment=proface_s/demo_synthetic", f"model.eval_password={PASSWORD}"]
    assert main("train", args) == 1
    error = capsys.readouterr().err
    assert "Traceback" in error and "RuntimeError: boom near ***" in error and PASSWORD not in error

    def refuse(*_: object, **__: object) -> None:
        raise ConfigError(f"refused near {PASSWORD}")

    monkeypatch.setattr(src.tasks, "run", refuse)
    assert main("train", [*args, "--debug"]) == 2
    error = capsys.readouterr().err
    assert "Traceback" in error and error.strip().endswith("error: refused near ***")
    assert PASSWORD not in error


def test_help_lists_the_papers_then_the_experiments_by_paper(capsys: pytest.CaptureFixture[str]) -> None:
    assert main("train", ["--help"]) == 0
    out = capsys.readouterr().out
    assert "--debug" in out and "python -m src.check" in out
    lines = out.splitlines()
    papers = lines.index(next(line for line in lines if line.startswith("papers")))
    experiments = lines.index(next(line for line in lines if line.startswith("experiments by paper")))
    assert papers < experiments
    for name in discover():
        assert any(line.split()[:1] == [name] for line in lines[papers:experiments]), name
    section = lines[experiments:]
    recognizer = section.index("  face_recognizer (1)")
    assert section[recognizer + 1] == "    demo/recognizer"
    baselines = section.index("  obfuscation_baselines (2)")
    assert section[baselines + 1 : baselines + 3] == [
        "    demo/obfuscation_baselines",
        "    obfuscation_baselines/lfw_dlib",
    ]


def test_experiments_outside_a_paper_folder_go_by_their_model() -> None:
    groups = experiments_by_paper(discover(), ["proface/demo_synthetic", "demo/recognizer", "demo/nope"])
    assert groups == {
        "face_recognizer": ["demo/recognizer"],
        "proface": ["proface/demo_synthetic"],
        "other": ["demo/nope"],
    }
    names = [f"a/b/{leaf}" for leaf in "vwxyz"]
    assert folded(["a/c", *names, "a/d/x"]) == ["a/b/{v,w,x,y,z}", "a/c", "a/d/x"]


def test_a_misspelt_experiment_suggests_the_closest_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main("train", ["experiment=demo/recogniser"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: unknown experiment 'demo/recogniser'; did you mean: demo/recognizer")
    assert "proface/celeba" not in error and len(error.strip().splitlines()) == 1


def test_the_rerun_command_of_a_sweep_point_makes_a_new_run() -> None:
    """A sweep point runs with ``run.dir=<sweep>/points/000``; pasting its recorded command must not aim a new
    run at that used folder (it would stop with "already holds a run")."""
    from src.utils.run_record import rerun_command

    command = rerun_command(
        "train",
        "demo/recognizer",
        ["model.optimizer.lr=0.01", "run.dir=runs/sweeps/s/x/points/000", "+run.id=a"],
    )
    assert command.endswith(" -m src.train experiment=demo/recognizer model.optimizer.lr=0.01")


def test_a_training_split_smaller_than_one_batch_stops_instead_of_testing_an_untrained_network(
    tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4 training identities x 3 images = 12 images < batch 64: Lightning only warned "No training batches"
    and the run tested the untrained network as `completed`."""
    root = make_layout(tmp_path / "faces", identities=8, images=3)
    assert main("train", _folder_args(root, runs_dir, "datamodule.batch_size=64")) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("error: ")
        and "fewer than one batch of 64" in error
        and "datamodule.batch_size" in error
    )
    (run_dir,) = [path.parent for path in runs_dir.rglob("meta.json")]
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed_to_start"


def test_a_bad_progress_interval_is_one_line_and_leaves_no_run_directory(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``PROFACE_PROGRESS_EVERY=bogus`` crashed with a traceback after the run directory was made."""
    monkeypatch.setenv("PROFACE_PROGRESS_EVERY", "bogus")
    synthetic = TINY_DATA["src.datamodules.synthetic_faces.SyntheticFacesDataModule"]
    args = ["experiment=demo/recognizer", *synthetic, "logger=none", f"paths.runs_dir={runs_dir}"]
    assert main("train", args) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("error: PROFACE_PROGRESS_EVERY=bogus: progress interval")
        and "Traceback" not in error
    )
    assert list(runs_dir.iterdir()) == []
