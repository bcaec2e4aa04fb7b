"""The notebooks run in a real Jupyter kernel (nbclient) on fake run records and leave the records untouched.

Also checks the plotting helper they use, and that the stored notebooks carry no outputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from src.analysis import history_groups, load_run, plot_history
from tests.test_compare import write_run_record, write_sweep_index

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
LR, EPOCHS = "config.model.optimizer.lr", "config.trainer.max_epochs"
KERNEL = "proface-lab-test"

# Code appended to a notebook before it runs: prints what the assertions below need, as JSON on one line.
PROBES = {
    "01-runs-overview.ipynb": """\
import json
print("PROBE" + json.dumps({
    "groups": {e: t[[c for c in t if " " not in c]].to_dict("records") for e, t in seed_tables.items()},
    "run": run.run_id,
    "axes": [[ax.get_title(), [line.get_label() for line in ax.get_lines()]] for ax in fig.axes],
}, default=str))""",
    "02-compare-runs.ipynb": """\
import json
print("PROBE" + json.dumps({"labels": comparison.labels, "config": comparison.config.index.tolist()}))""",
    "03-apply-a-method.ipynb": """\
import json
print("PROBE" + json.dumps({
    "methods": methods.index.tolist(),
    "faces": {name: len(result.faces) for name, result in results.items()},
    "changed": {name: bool((result.image != photo).any()) for name, result in results.items()},
    "corner_kept": {name: bool((r.image[:8, :8] == photo[:8, :8]).all()) for name, r in results.items()},
    "epsilon": guarantee["epsilon_certified"],
    "trained": len(trained),
}))""",
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run records as a demo session leaves them: a 4-point lr x seed sweep, a longer run, a failed one."""
    root = tmp_path_factory.mktemp("notebook_runs") / "runs"
    write_run_record(root, "20261203-080000-0b5001", experiment="demo/obfuscation_baselines", rank1=0.4)
    write_run_record(root, "20261203-081000-0b5002", experiment="demo/obfuscation_baselines", rank1=0.4)
    points = []
    for i, (lr, seed) in enumerate([(0.001, 0), (0.001, 1), (0.003, 0), (0.003, 1)]):
        sweep = {"name": "demo_recognizer_lr", "point": i}
        run_dir = write_run_record(
            root,
            f"20261203-09{i}000-5ee{i:03d}",
            lr=lr,
            seed=seed,
            max_epochs=1,
            rank1=0.6 + lr * 50 + seed / 100,
            sweep=sweep,
            overrides=(f"model.optimizer.lr={lr}", f"seed={seed}", "trainer.max_epochs=1"),
        )
        points.append((run_dir, {"model.optimizer.lr": lr, "seed": seed}))
    write_sweep_index(root, "demo_recognizer_lr", "20261203-090000-abcdef", points)
    write_run_record(root, "20261203-110000-10ea6e", lr=0.003, max_epochs=6, rank1=0.95)
    write_run_record(root, "20261203-120000-fa11ed", lr=0.01, status="failed")
    return root


@pytest.fixture(scope="module")
def execute(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], dict]]:
    """Runs a notebook (once per module) in a fresh kernel; gives its executed cells, probe output and the
    run-record snapshots taken before and after."""
    done: dict[str, dict] = {}
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL / "kernel.json"  # this interpreter, whatever kernels the user installed
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(home))
        patch.setenv("PROFACE_RUNS", str(runs_root))
        patch.setenv("IPYTHONDIR", str(home / "ipython"))  # the kernel's history database
        patch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))  # its connection file
        patch.delenv("MPLBACKEND", raising=False)  # the notebook picks the inline backend itself

        def run(name: str) -> dict:
            if name not in done:
                notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
                notebook.cells.append(nbformat.v4.new_code_cell(PROBES[name]))
                before = snapshot(runs_root)
                client = NotebookClient(
                    notebook,
                    timeout=120,
                    kernel_name=KERNEL,
                    resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
                )
                client.execute()  # raises CellExecutionError naming the failing cell
                texts = [o.get("text", "") for o in notebook.cells[-1].outputs if o.output_type == "stream"]
                (probe,) = [line for line in "".join(texts).splitlines() if line.startswith("PROBE")]
                done[name] = {
                    "cells": notebook.cells[:-1],
                    "probe": json.loads(probe.removeprefix("PROBE")),
                    "before": before,
                    "after": snapshot(runs_root),
                }
            return done[name]

        yield run


def test_every_notebook_has_a_probe() -> None:
    assert sorted(PROBES) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_writing_into_run_records(path: Path, execute: Callable[[str], dict]) -> None:
    result = execute(path.name)
    assert result["after"] == result["before"]
    outputs = [o for cell in result["cells"] if cell.cell_type == "code" for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_overview_groups_runs_by_learning_rate_and_epochs(execute: Callable[[str], dict]) -> None:
    groups = execute("01-runs-overview.ipynb")["probe"]["groups"]
    recognizer = {(g[LR], g[EPOCHS]): (g["seeds"], g["count"]) for g in groups["demo/recognizer"]}
    assert recognizer == {(0.001, 1): ("0, 1", 2), (0.003, 1): ("0, 1", 2), (0.003, 6): ("0", 1)}
    assert list(groups["demo/recognizer"][0]) == ["experiment", LR, EPOCHS, "seeds", "count"]
    # the baselines runs differ in nothing but bookkeeping: one group, the same seed twice
    assert groups["demo/obfuscation_baselines"] == [
        {"experiment": "demo/obfuscation_baselines", "seeds": "0, 0", "count": 2}
    ]


def test_overview_plots_losses_and_scores_on_separate_axes(execute: Callable[[str], dict]) -> None:
    result = execute("01-runs-overview.ipynb")
    assert result["probe"]["run"] == "20261203-110000-10ea6e"  # newest completed; the failed one is newer
    axes = dict(result["probe"]["axes"])
    assert axes == {
        "loss": ["train/loss_epoch", "train/loss_step"],
        "score in [0, 1]": ["train/acc", "val/rank1"],
        "other metrics": ["val/impostor_cos"],
    }
    code = [cell for cell in result["cells"] if cell.cell_type == "code"]
    outputs = [o for cell in code if "plot_history(" in cell.source for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # shown inline


def test_compare_notebook_takes_the_two_newest_completed_runs(execute: Callable[[str], dict]) -> None:
    probe = execute("02-compare-runs.ipynb")["probe"]
    assert probe["labels"] == ["20261203-093000-5ee003", "20261203-110000-10ea6e"]
    assert {"seed", "trainer.max_epochs", "sweep.point"} <= set(probe["config"])
    assert "model.optimizer.lr" not in probe["config"]  # both 0.003


def test_sdk_notebook_protects_the_photo_with_each_obfuscation(execute: Callable[[str], dict]) -> None:
    probe = execute("03-apply-a-method.ipynb")["probe"]
    assert {"blur", "pixelate", "mask", "dp_pix"} <= set(probe["methods"])
    assert probe["faces"] == {"blur": 1, "pixelate": 1, "mask": 1, "dp_pix": 1}
    assert all(probe["changed"].values()) and all(probe["corner_kept"].values())
    assert probe["epsilon"] == 0.5  # DP-Pix's default, certified per release
    assert probe["trained"] == 0  # the fake run records hold no checkpoint


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    source = "\n".join(cell.source for cell in code)
    assert "matplotlib.use" not in source and "savefig(" not in source


# --- plot_history -------------------------------------------------------------------------------------------


def test_plot_history_separates_losses_from_bounded_scores(tmp_path: Path) -> None:
    run_dir = write_run_record(tmp_path, "20261203-090000-aaaaaa", max_epochs=3)
    run = load_run(run_dir)
    assert history_groups(run.history) == {
        "losses": ["train/loss_epoch", "train/loss_step"],
        "bounded": ["train/acc", "val/rank1"],
        "other": ["val/impostor_cos"],
    }
    before = snapshot(tmp_path)
    fig = plot_history(run)
    assert snapshot(tmp_path) == before
    loss_ax, score_ax, other_ax = fig.axes
    assert other_ax.get_title() == "other metrics"
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train/loss_epoch", "train/loss_step"]
    assert score_ax.get_ylim() == pytest.approx((-0.02, 1.02))
    steps, rank1 = score_ax.get_lines()[1].get_data()
    assert list(steps) == [3, 7, 11] and list(rank1) == pytest.approx([0.3, 0.6, 0.9])
    assert fig.get_suptitle() == "demo/recognizer / 20261203-090000-aaaaaa"


def test_plot_history_without_other_metrics_has_two_axes(tmp_path: Path) -> None:
    run = load_run(write_run_record(tmp_path, "20261203-090000-aaaaaa"))
    run.history = run.history.drop(columns=["val/impostor_cos"])
    assert [ax.get_title() for ax in plot_history(run).axes] == ["loss", "score in [0, 1]"]
    failed = load_run(write_run_record(tmp_path, "20261203-100000-bbbbbb", status="failed"))
    with pytest.raises(ValueError, match="20261203-100000-bbbbbb.*no metric history"):
        plot_history(failed)


def test_make_notebooks_saves_executed_copies_outside_the_repository_notebooks(
    execute: Callable[[str], dict], runs_root: Path, tmp_path: Path
) -> None:
    """``make notebooks`` (scripts/run_notebooks.py) keeps the tables and figures in an executed copy under
    ``reports/notebooks/``: the stored notebook stays without outputs and the run records untouched."""
    from scripts.run_notebooks import main

    execute("01-runs-overview.ipynb")  # the kernel spec and environment of this module
    before = snapshot(runs_root)
    stored = (NOTEBOOK_DIR / "01-runs-overview.ipynb").read_bytes()
    assert main(["--runs", str(runs_root), "--out", str(tmp_path), "--kernel", KERNEL]) == 0
    executed = nbformat.read(tmp_path / "01-runs-overview.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
    assert (NOTEBOOK_DIR / "01-runs-overview.ipynb").read_bytes() == stored
    assert snapshot(runs_root) == before


def test_make_notebooks_names_a_missing_runs_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.run_notebooks import main

    assert main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
