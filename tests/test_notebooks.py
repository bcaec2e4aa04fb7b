"""The notebooks run in a real Jupyter kernel (nbclient) on tiny runs and leave the records untouched.

Runs folders, built once per module:

- ``runs_root`` (default suite): FAKE records in the exact run-record format (``tests/test_compare.py``'s
  writers plus the family tables below), where a real run costs too much: a recognizer lr x seed sweep, one
  experiment at two git commits, two obfuscation evaluations at two blur strengths, a DP evaluation (nominal
  and certified ε), two detection runs (one with per-frame and per-video scores in ``predictions/``, one
  without) and a robustness run (attack x ε rows).
- ``real_runs`` (slow tests): REAL tiny runs made by the project's own code in one subprocess (20-45 s): the
  demo recognizer trained for two tiny epochs with W&B in offline mode (so a real ``.wandb`` file exists),
  and the demo obfuscation baselines evaluated twice with its checkpoint, at blur sigma 2 and 6.
- a folder with one recognizer run only: each family notebook says it has nothing to show.

Each notebook gets a PROBE cell appended that prints what it plotted and computed as JSON; the assertions
compare that with numbers computed here independently (scikit-learn's ROC, hand deltas, the CSV files read
directly). Also checks ``plot_history`` and that the stored notebooks carry no outputs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import yaml
from nbclient import NotebookClient
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from src.analysis import history_groups, load_run, plot_history, read_wandb_file
from tests.helpers import TINY_DATA
from tests.test_compare import write_run_record, write_sweep_index

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
LR, EPOCHS = "config.model.optimizer.lr", "config.trainer.max_epochs"
KERNEL = "proface-lab-test"

# Code appended to a notebook before it runs: prints what the assertions below need, as JSON on one line.
PROBE_HELPERS = """\
def lines_of(ax):
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]  # not axvline & co
    return [[line.get_label(), *([float(v) for v in data] for data in line.get_data())] for line in lines]
def figure(fig):
    return [[ax.get_title(), lines_of(ax)] for ax in fig.axes]
"""
PROBES = {
    "01-runs-overview.ipynb": """\
import json
print("PROBE" + json.dumps({
    "groups": {e: t[[c for c in t if " " not in c]].to_dict("records") for e, t in seed_tables.items()},
    "run": run.run_id,
    "axes": [[ax.get_title(), [line.get_label() for line in ax.get_lines()]] for ax in fig.axes],
    "wandb_run": str(wandb_run.run_dir) if wandb_run is not None else None,
    "wandb_axes": figure(wandb_fig) if wandb_run is not None else None,
    "parallel": [fig_ax.get_xticklabels()[0].get_text() for fig_ax in parallel_fig.axes[:1]]
        + [lines_of(parallel_fig.axes[0])] if parallel_fig is not None else None,
    "commits": commits["commit"].tolist(),
    "diff": diff.to_dict("records") if diff is not None else None,
    "pooled": diff.attrs["pooled_over"] if diff is not None else None,
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
    "04-privacy.ipynb": """\
import json
print("PROBE" + json.dumps({
    "found": results is not None,
    "utility": UTILITY if results is not None else None,
    "identity": IDENTITY if results is not None else None,
    "figures": {name: figure(fig) for name, fig in strength_figures.items()},
}, default=str))""",
    "05-differential-privacy.ipynb": """\
import json
print("PROBE" + json.dumps({
    "found": variants is not None,
    "figures": {name: figure(fig) for name, fig in epsilon_figures.items()},
}, default=str))""",
    "06-detection.ipynb": """\
import json
print("PROBE" + json.dumps({
    "found": detection is not None,
    "auc_table": auc_table.to_dict("records") if detection is not None else None,
    "roc": {level: {name: curve.auc for name, curve in curves.items()} for level, curves in roc.items()},
    "figures": {level: figure(fig) for level, fig in roc_figures.items()} if detection is not None else {},
}, default=str))""",
    "07-robustness.ipynb": """\
import json
print("PROBE" + json.dumps({
    "found": attacks is not None,
    "metrics": METRICS if attacks is not None else None,
    "figure": figure(robustness_figure) if robustness_figure is not None else None,
}, default=str))""",
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
    # older than the runs above, so the overview's "newest" picks stay the same
    for run_id, commit, lr, seed, rank1 in REGRESSION_RUNS:
        write_run_record(
            root, run_id, experiment="regression/recognizer", commit=commit, lr=lr, seed=seed, rank1=rank1
        )
    write_privacy_run(root, "20261203-031000-9e0001", blur_sigma=2.0)
    write_privacy_run(root, "20261203-032000-9e0002", blur_sigma=6.0)
    write_dp_run(root, "20261203-030000-d90001")
    write_detection_run(root, "20261203-040000-de7001", scores=True)
    write_detection_run(root, "20261203-041000-de7002", scores=False)
    write_robustness_run(root, "20261203-050000-a77001")
    return root


# --- fake records of the paper families (the exact files those runs write) ----------------------------------

OLD_COMMIT = "beef" + "1" * 36
NEW_COMMIT = "c0ffee" + "0" * 34  # write_run_record's default: every other fake run is at this commit
#: (run id, commit, lr, seed, test/rank1): lr 0.001 at both commits (two seeds), 0.003 at both, 0.01 only new
REGRESSION_RUNS = [
    ("20261203-010000-0e0001", OLD_COMMIT, 0.001, 0, 0.50),
    ("20261203-010100-0e0002", OLD_COMMIT, 0.001, 1, 0.52),
    ("20261203-010200-0e0003", OLD_COMMIT, 0.003, 0, 0.60),
    ("20261203-020000-0e0004", NEW_COMMIT, 0.001, 0, 0.55),
    ("20261203-020100-0e0005", NEW_COMMIT, 0.001, 1, 0.59),
    ("20261203-020200-0e0006", NEW_COMMIT, 0.003, 0, 0.70),
    ("20261203-020300-0e0007", NEW_COMMIT, 0.01, 0, 0.20),
]

PRIVACY_COLUMNS = [
    "obfuscator", "eval setting", "psnr", "ssim", "verif_acc", "verif_acc_std", "rank1", "rank5",
    "genuine_cos", "impostor_cos",
]  # fmt: skip
#: the blur row of an obfuscation-baselines evaluation at each eval_sigma
PRIVACY_BLUR = {
    2.0: ["blur", "kernel_size=31, eval_sigma=2.0", 25.0, 0.70, 0.90, 0.02, 0.80, 1.0, 0.60, 0.02],
    6.0: ["blur", "kernel_size=31, eval_sigma=6.0", 20.0, 0.50, 0.70, 0.03, 0.40, 0.9, 0.40, 0.03],
}


def write_privacy_run(root: Path, run_id: str, *, blur_sigma: float) -> Path:
    """An obfuscation-baselines evaluation: no obfuscation, blur at ``blur_sigma``, pixelate (always 7 px)."""
    run_dir = write_run_record(root, run_id, experiment="privacy/blur_strength")
    rows = [
        ["none", "-", 100.0, 1.0, 0.97, 0.01, 0.94, 1.0, 0.75, 0.01],
        PRIVACY_BLUR[blur_sigma],
        [
            "pixelate",
            "eval_block=7, method=block_mean, antialias=True",
            22.7,
            0.54,
            0.93,
            0.02,
            0.86,
            0.97,
            0.66,
            0.02,
        ],
    ]
    _write_csv(run_dir / "results.csv", PRIVACY_COLUMNS, rows)
    return run_dir


DP_COLUMNS = [
    "variant", "method", "sampler", "semantics", "setting", "ε nominal", "ε certified", "δ audited",
    "released_cos", "ssim", "psnr", "lpips", "dlib id_cos", "dlib rank1", "dlib tar@far=0.1",
]  # fmt: skip
#: sampler, ε, certified?, released_cos, dlib id_cos: what a DP evaluation writes per variant
DP_ROWS = [
    ("angular", 1.0, False, 0.45, 0.30),
    ("angular", 10.0, False, 0.92, 0.80),
    ("purkayastha", 1.0, True, 0.003, 0.05),
    ("purkayastha", 10.0, True, 0.004, 0.06),
    ("vmf", 1.0, True, 0.01, 0.07),
    ("vmf", 10.0, True, 0.02, 0.09),
]


def _patch_run(run_dir: Path, config: dict[str, Any], summary: dict[str, Any]) -> None:
    """Merge family-specific keys into a fake record's config.yaml and summary.json."""
    path = run_dir / "config.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in config.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path = run_dir / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **summary}, indent=2))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def write_dp_run(root: Path, run_id: str) -> Path:
    """A DP evaluation: one results.csv row per (sampler, ε) variant, then a DP-Pix and a blur baseline."""
    run_dir = write_run_record(root, run_id, experiment="dp/demo_sweep")
    rows = []
    for sampler, eps, certified, released, id_cos in DP_ROWS:
        semantics = "ε-LDP (certified)" if certified else "nominal, not certified"
        row = [f"{sampler}_eps{eps:g}", "identity DP", sampler, semantics, f"ε={eps:g}", eps]
        row += [eps if certified else None, 0.0 if certified else 0.95, released, 0.4, 14.0, 0.5]
        rows.append([*row, id_cos, 0.1, 0.05])
    rows.append(
        ["dp_pix", "DPPix", "-", "ε-DP on m-pixel neighbourhoods", "cell=16, epsilon=0.5, m=1", 0.5, 0.5]
    )
    rows[-1] += [0.0, None, 0.3, 12.0, 0.6, 0.2, 0.0, 0.0]
    rows.append(["blur", "GaussianBlur", "-", "no DP", "kernel_size=61, eval_sigma=10.0", None, None, None])
    rows[-1] += [None, 0.5, 20.0, 0.4, 0.5, 0.3, 0.2]
    _write_csv(run_dir / "results.csv", DP_COLUMNS, rows)
    return run_dir


def detection_scores(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores (rounded, so some tie) and labels of ``n`` samples, fakes scoring higher on average."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return np.round(0.35 * labels + 0.65 * rng.random(n), 2), labels


def write_detection_run(root: Path, run_id: str, *, scores: bool) -> Path:
    """A detection test run: frame/video AUC in summary.json and, with ``scores``, the per-frame and
    per-video scores in predictions/ (the columns a detection run writes)."""
    run_dir = write_run_record(root, run_id, experiment="detection/demo_small_cnn")
    frame_scores, frame_labels = detection_scores(1, 40)
    video_scores, video_labels = detection_scores(2, 12)
    summary = {
        "test/frame_auc": roc_auc_score(frame_labels, frame_scores),
        "test/video_auc": roc_auc_score(video_labels, video_scores),
        "test/n_videos": 12,
    }
    config = {"model": {"net": {"name": "small_cnn"}}, "datamodule": {"_target_": "src.datamodules.ffpp.X"}}
    _patch_run(run_dir, config, summary)
    if scores:
        frames = [
            [i // 4, f"ffpp/x/{i // 4:03d}", i % 4, s, y, 1, False]
            for i, (s, y) in enumerate(zip(frame_scores, frame_labels, strict=True))
        ]
        header = ["video_idx", "video", "frame_index", "score", "label", "faces", "failed"]
        _write_csv(run_dir / "predictions" / "test_frames.csv", header, frames)
        videos = [
            [i, f"ffpp/x/{i:03d}", s, y, 4, False]
            for i, (s, y) in enumerate(zip(video_scores, video_labels, strict=True))
        ]
        header = ["video_idx", "video", "score", "label", "frames", "failed"]
        _write_csv(run_dir / "predictions" / "test_videos.csv", header, videos)
    return run_dir


ROBUST_COLUMNS = [
    "attack", "eps", "undefended_acc", "natural_acc", "undefended_auc", "acc_accepted", "rejection_rate",
    "robust_acc", "attack_success", "correction_acc", "correction_auc",
]  # fmt: skip
ROBUST_ROWS = [
    ["clean", 0.0, 0.70, 0.70, 0.74, 0.70, 0.0, None, None, None, None],
    ["fgsm", 2.0, 0.22, None, None, 0.22, 0.02, 0.24, 0.68, 0.33, 0.88],
    ["fgsm", 8.0, 0.08, None, None, 0.11, 0.20, 0.29, 0.93, 0.09, 0.39],
    ["pgd10", 2.0, 0.14, None, None, 0.14, 0.02, 0.15, 0.80, 0.20, 0.89],
    ["pgd10", 8.0, 0.00, None, None, 0.00, 0.73, 0.73, 1.00, 0.00, 0.50],
]


def write_robustness_run(root: Path, run_id: str) -> Path:
    """A robustness evaluation: one results.csv row per attack and ε, after the clean row."""
    run_dir = write_run_record(root, run_id, experiment="robustness/demo_attacks")
    _write_csv(run_dir / "results.csv", ROBUST_COLUMNS, ROBUST_ROWS)
    return run_dir


# --- real tiny runs -----------------------------------------------------------------------------------------

TINY = [
    *TINY_DATA["src.datamodules.synthetic_faces.SyntheticFacesDataModule"],
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]
BLUR_SIGMAS = (2.0, 6.0)
REAL_RUNS = textwrap.dedent(
    """
    import json, sys
    from src.config.compose import compose
    from src.tasks import run
    tiny = json.loads(sys.argv[1])
    train = [*tiny, "trainer.max_epochs=2", "logger=wandb", "logger.wandb.mode=offline"]
    recognizer = run(compose("demo/recognizer", train).config, train, task="train").run_dir
    dirs = [str(recognizer)]
    for sigma in json.loads(sys.argv[2]):
        extra = ["logger=none", f"model.recognizer_ckpt={recognizer}/checkpoints/last.ckpt",
                 "model.num_pairs=60", f"model.obfuscators.blur.eval_sigma={sigma}"]
        dirs.append(str(run(compose("demo/obfuscation_baselines", [*tiny, *extra]).config, [*tiny, *extra],
                                task="eval").run_dir))
    print("REAL_RUNS=" + json.dumps(dirs))
    """
)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real tiny runs (one process): the demo recognizer trained with W&B offline, then the obfuscation
    baselines evaluated with its checkpoint at each of BLUR_SIGMAS."""
    root = tmp_path_factory.mktemp("real_runs") / "runs"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    for key in ("PROFACE_RUN_DIR", "PROFACE_RUN_ID"):
        env.pop(key, None)
    args = [json.dumps([*TINY, f"paths.runs_dir={root}"]), json.dumps(BLUR_SIGMAS)]
    proc = subprocess.run(
        [sys.executable, "-c", REAL_RUNS, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REAL_RUNS=")]
    assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-4000:]
    return [Path(p) for p in json.loads(lines[0].removeprefix("REAL_RUNS="))]


@pytest.fixture(scope="module")
def execute(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., dict]]:
    """Runs a notebook (once per module and runs folder; default: the fake records) in a fresh kernel;
    gives its executed cells, probe output and the run-record snapshots taken before and after."""
    done: dict[tuple[str, Path], dict] = {}
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL / "kernel.json"  # this interpreter, whatever kernels the user installed
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(home))
        patch.setenv("IPYTHONDIR", str(home / "ipython"))  # the kernel's history database
        patch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))  # its connection file
        patch.delenv("MPLBACKEND", raising=False)  # the notebook picks the inline backend itself

        def run(name: str, root: Path = runs_root) -> dict:
            if (name, root) not in done:
                patch.setenv("PROFACE_RUNS", str(root))  # the kernel started below inherits it
                notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
                notebook.cells.append(nbformat.v4.new_code_cell(PROBE_HELPERS + PROBES[name]))
                before = snapshot(root)
                client = NotebookClient(
                    notebook,
                    timeout=120,
                    kernel_name=KERNEL,
                    resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
                )
                client.execute()  # raises CellExecutionError naming the failing cell
                texts = [o.get("text", "") for o in notebook.cells[-1].outputs if o.output_type == "stream"]
                (probe,) = [line for line in "".join(texts).splitlines() if line.startswith("PROBE")]
                done[name, root] = {
                    "cells": notebook.cells[:-1],
                    "probe": json.loads(probe.removeprefix("PROBE")),
                    "before": before,
                    "after": snapshot(root),
                }
            return done[name, root]

        yield run


def test_every_notebook_has_a_probe() -> None:
    assert sorted(PROBES) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_writing_into_run_records(path: Path, execute: Callable[..., dict]) -> None:
    result = execute(path.name)
    assert result["after"] == result["before"]
    outputs = [o for cell in result["cells"] if cell.cell_type == "code" for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_overview_groups_runs_by_learning_rate_and_epochs(execute: Callable[..., dict]) -> None:
    groups = execute("01-runs-overview.ipynb")["probe"]["groups"]
    recognizer = {(g[LR], g[EPOCHS]): (g["seeds"], g["count"]) for g in groups["demo/recognizer"]}
    assert recognizer == {(0.001, 1): ("0, 1", 2), (0.003, 1): ("0, 1", 2), (0.003, 6): ("0", 1)}
    assert list(groups["demo/recognizer"][0]) == ["experiment", LR, EPOCHS, "seeds", "count"]
    # the baselines runs differ in nothing but bookkeeping: one group, the same seed twice
    assert groups["demo/obfuscation_baselines"] == [
        {"experiment": "demo/obfuscation_baselines", "seeds": "0, 0", "count": 2}
    ]


def test_overview_plots_losses_and_scores_on_separate_axes(execute: Callable[..., dict]) -> None:
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


def test_compare_notebook_takes_the_two_newest_completed_runs(execute: Callable[..., dict]) -> None:
    probe = execute("02-compare-runs.ipynb")["probe"]
    assert probe["labels"] == ["20261203-093000-5ee003", "20261203-110000-10ea6e"]
    assert {"seed", "trainer.max_epochs", "sweep.point"} <= set(probe["config"])
    assert "model.optimizer.lr" not in probe["config"]  # both 0.003


def test_sdk_notebook_protects_the_photo_with_each_obfuscation(execute: Callable[..., dict]) -> None:
    probe = execute("03-apply-a-method.ipynb")["probe"]
    assert {"blur", "pixelate", "mask", "dp_pix"} <= set(probe["methods"])
    assert probe["faces"] == {"blur": 1, "pixelate": 1, "mask": 1, "dp_pix": 1}
    assert all(probe["changed"].values()) and all(probe["corner_kept"].values())
    assert probe["epsilon"] == 0.5  # DP-Pix's default, certified per release
    assert probe["trained"] == 0  # the fake run records hold no checkpoint


def _lines(axis: list) -> dict[str, tuple[list, list]]:
    """A probed axis ``[title, [[label, xs, ys], ...]]`` as {label: (xs, ys)}."""
    return {label: (xs, ys) for label, xs, ys in axis[1]}


@pytest.mark.slow
def test_overview_draws_the_wandb_history_of_a_real_offline_run(
    execute: Callable[..., dict], real_runs: list[Path]
) -> None:
    probe = execute("01-runs-overview.ipynb", real_runs[0].parents[2])["probe"]
    assert probe["wandb_run"] == str(real_runs[0])  # the trained run; the evaluations logged no W&B
    (wandb_file,) = real_runs[0].glob("wandb/offline-run-*/run-*.wandb")
    rows = read_wandb_file(wandb_file).history  # read here for the check, independently of the notebook
    axes = {title: _lines([title, lines]) for title, lines in probe["wandb_axes"]}
    assert set(axes) >= {"loss", "score in [0, 1]"}
    assert "train/loss_step" in axes["loss"] and "val/rank1" in axes["score in [0, 1]"]
    for title, lines in axes.items():
        for label, (steps, values) in lines.items():
            logged = [(r["trainer/global_step"], r[label]) for r in rows if r.get(label) is not None]
            assert (steps, values) == ([s for s, _ in logged], pytest.approx([v for _, v in logged])), title
    assert probe["commits"] and probe["diff"] is None  # the real runs ran at one commit


def test_overview_draws_the_sweep_as_parallel_coordinates(execute: Callable[..., dict]) -> None:
    first_tick, lines = execute("01-runs-overview.ipynb")["probe"]["parallel"]
    assert first_tick == "model.optimizer.lr"
    assert [label for label, *_ in lines] == ["0", "1", "2", "3"]  # one line per point
    lrs, seeds = [0.001, 0.001, 0.003, 0.003], [0, 1, 0, 1]
    rank1 = [0.6 + lr * 50 + seed / 100 for lr, seed in zip(lrs, seeds, strict=True)]
    low, high = min(rank1), max(rank1)
    for (_, _, ys), lr, seed, score in zip(lines, lrs, seeds, rank1, strict=True):
        assert ys == pytest.approx([(lr - 0.001) / 0.002, seed, (score - low) / (high - low)])


def test_overview_diffs_the_two_newest_commits_setting_by_setting(execute: Callable[..., dict]) -> None:
    probe = execute("01-runs-overview.ipynb")["probe"]
    assert probe["commits"] == [OLD_COMMIT, NEW_COMMIT]
    by_key = {(r["experiment"], r[LR], r["metric"]): r for r in probe["diff"]}
    by_lr: dict[float, dict[str, list[float]]] = {}
    for _, commit, lr, _, rank1 in REGRESSION_RUNS:
        by_lr.setdefault(lr, {}).setdefault(commit, []).append(rank1)
    expected = {}
    for lr, scores in by_lr.items():
        if len(scores) == 2:  # lr 0.01 ran at the new commit only: no row
            old, new = (sum(scores[c]) / len(scores[c]) for c in (OLD_COMMIT, NEW_COMMIT))
            count = len(scores[OLD_COMMIT])
            expected[("regression/recognizer", lr, "test/rank1")] = (old, new, new - old, count)
            # write_run_record's verification accuracy is 0.5 + rank1 / 2
            verif = (0.5 + old / 2, 0.5 + new / 2, (new - old) / 2, count)
            expected[("regression/recognizer", lr, "test/verif_acc")] = verif
    assert set(by_key) == set(expected)
    for key, (old, new, delta, n_old) in expected.items():
        row = by_key[key]
        assert (row["A"], row["B"], row["B - A"]) == pytest.approx((old, new, delta))
        assert row["n A"] == n_old and row["n B"] == n_old
    assert probe["pooled"] == []  # the commits changed no config value


def test_privacy_notebook_plots_utility_and_identity_against_blur_strength(
    execute: Callable[..., dict],
) -> None:
    probe = execute("04-privacy.ipynb")["probe"]
    assert probe["utility"] == ["ssim", "psnr"] and probe["identity"] == ["rank1", "verif_acc"]
    assert list(probe["figures"]) == ["blur"]  # pixelate ran at one strength: no curve
    axes = probe["figures"]["blur"]
    assert [title for title, _ in axes] == ["ssim", "psnr", "rank1", "verif_acc"]
    for title, lines in axes:
        ((label, xs, ys),) = lines
        assert label == "privacy/blur_strength" and xs == [2.0, 6.0]
        column = PRIVACY_COLUMNS.index(title)
        assert ys == pytest.approx([PRIVACY_BLUR[sigma][column] for sigma in (2.0, 6.0)])


@pytest.mark.slow
def test_privacy_notebook_plots_real_runs_against_blur_strength(
    execute: Callable[..., dict], real_runs: list[Path]
) -> None:
    probe = execute("04-privacy.ipynb", real_runs[0].parents[2])["probe"]
    assert probe["utility"] == ["ssim", "psnr"] and probe["identity"] == ["rank1", "verif_acc"]
    assert list(probe["figures"]) == ["blur"]  # the only obfuscator evaluated at two strengths
    blur = {}
    for run_dir in real_runs[1:]:
        with (run_dir / "results.csv").open(encoding="utf-8") as handle:
            (row,) = [r for r in csv.DictReader(handle) if r["obfuscator"] == "blur"]
        assert f"eval_sigma={BLUR_SIGMAS[len(blur)]}" in row["eval setting"]
        blur[BLUR_SIGMAS[len(blur)]] = row
    axes = probe["figures"]["blur"]
    assert [title for title, _ in axes] == ["ssim", "psnr", "rank1", "verif_acc"]
    for title, lines in axes:
        (label, xs, ys), *others = lines
        assert label == "demo/obfuscation_baselines" and not others
        assert xs == list(BLUR_SIGMAS)
        assert ys == pytest.approx([float(blur[sigma][title]) for sigma in BLUR_SIGMAS])


def test_dp_notebook_plots_metrics_against_nominal_and_certified_epsilon(
    execute: Callable[..., dict],
) -> None:
    figures = execute("05-differential-privacy.ipynb")["probe"]["figures"]
    assert list(figures) == ["ε nominal", "ε certified"]
    for column, axes in figures.items():
        assert [title for title, _ in axes] == ["released_cos", "dlib id_cos"]
        for title, lines in axes:
            shown = _lines([title, lines])
            samplers = sorted({s for s, _, certified, *_ in DP_ROWS if certified or column == "ε nominal"})
            assert sorted(shown) == samplers  # the uncertified sampler has no certified ε; baselines no line
            for sampler in samplers:
                points = [(eps, cos if title == "released_cos" else id_cos)
                          for s, eps, _, cos, id_cos in DP_ROWS if s == sampler]  # fmt: skip
                assert shown[sampler] == ([e for e, _ in points], pytest.approx([v for _, v in points]))


def test_detection_notebook_draws_roc_curves_from_the_stored_scores(execute: Callable[..., dict]) -> None:
    probe = execute("06-detection.ipynb")["probe"]
    name = "detection/demo_small_cnn 20261203-040000-de7001"
    for level, seed, n in (("frames", 1, 40), ("videos", 2, 12)):
        scores, labels = detection_scores(seed, n)
        assert probe["roc"][level] == {name: pytest.approx(roc_auc_score(labels, scores))}
        fpr, tpr, _ = sklearn_roc_curve(labels, scores, drop_intermediate=False)
        ((title, lines),) = probe["figures"][level]
        shown = _lines([title, lines])
        assert title == f"ROC, {level}"
        assert list(shown) == [f"{name} (AUC {roc_auc_score(labels, scores):.3f})", "chance"]
        xs, ys = shown[f"{name} (AUC {roc_auc_score(labels, scores):.3f})"]
        assert (xs, ys) == (pytest.approx(list(fpr)), pytest.approx(list(tpr)))
    # both runs are in the AUC table; the one without predictions/ is named, not plotted
    table = {row["run_id"]: row for row in probe["auc_table"]}
    assert set(table) == {"20261203-040000-de7001", "20261203-041000-de7002"}
    assert table["20261203-040000-de7001"]["frame AUC"] == pytest.approx(probe["roc"]["frames"][name])
    assert table["20261203-040000-de7001"]["detector"] == "small CNN (demo)"
    outputs = "".join(
        o.get("text", "") for c in execute("06-detection.ipynb")["cells"] for o in c.get("outputs", [])
    )
    assert "20261203-041000-de7002/predictions/test_frames.csv is missing" in outputs


def test_robustness_notebook_plots_accuracy_and_auc_against_epsilon(execute: Callable[..., dict]) -> None:
    probe = execute("07-robustness.ipynb")["probe"]
    metrics = ["undefended_acc", "acc_accepted", "robust_acc", "correction_acc", "correction_auc"]
    assert probe["metrics"] == metrics  # natural_acc and undefended_auc exist for the clean row only
    for title, lines in probe["figure"]:
        column = ROBUST_COLUMNS.index(title)
        shown = _lines([title, lines])
        assert list(shown) == ["fgsm", "pgd10"]
        for attack, (xs, ys) in shown.items():
            rows = [r for r in ROBUST_ROWS if r[0] == attack]
            assert (xs, ys) == ([r[1] for r in rows], pytest.approx([r[column] for r in rows]))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("04-privacy.ipynb", "no privacy runs under"),
        ("05-differential-privacy.ipynb", "no differential-privacy runs under"),
        ("06-detection.ipynb", "no detection runs under"),
        ("07-robustness.ipynb", "no robustness runs under"),
    ],
)
def test_family_notebook_says_when_the_runs_folder_has_none_of_its_runs(
    name: str, message: str, execute: Callable[..., dict], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A runs folder with one recognizer run only (no run of any family): a message, no traceback."""
    root = tmp_path_factory.getbasetemp() / "no_family_runs"
    if not root.exists():
        write_run_record(root, "20261203-080000-aaaaaa")
    result = execute(name, root)
    outputs = [o for cell in result["cells"] if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert message in "".join(o.get("text", "") for o in outputs)
    assert result["probe"]["found"] is False and result["after"] == result["before"]


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
    execute: Callable[..., dict], runs_root: Path, tmp_path: Path
) -> None:
    """``make notebooks`` (scripts/run_notebooks.py) keeps the tables and figures in an executed copy under
    ``reports/notebooks/``: the stored notebook stays without outputs and the run records untouched."""
    from scripts.run_notebooks import main

    execute("02-compare-runs.ipynb")  # the kernel spec and environment of this module
    before = snapshot(runs_root)
    stored = (NOTEBOOK_DIR / "02-compare-runs.ipynb").read_bytes()
    args = ["--runs", str(runs_root), "--out", str(tmp_path), "--kernel", KERNEL, "--notebook", "02-*"]
    assert main(args) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["02-compare-runs.ipynb"]  # only the one asked for
    executed = nbformat.read(tmp_path / "02-compare-runs.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
    assert (NOTEBOOK_DIR / "02-compare-runs.ipynb").read_bytes() == stored
    assert snapshot(runs_root) == before


def test_make_notebooks_names_a_missing_runs_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.run_notebooks import main

    assert main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
    assert main(["--runs", str(tmp_path), "--out", str(tmp_path / "out"), "--notebook", "09-*"]) == 2
    assert "no notebook matches '09-*'" in capsys.readouterr().err and not (tmp_path / "out").exists()
