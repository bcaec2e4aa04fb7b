"""Write the analysis notebooks from source here (keeps them reviewable and free of outputs).

Run ``.venv/bin/python scripts/make_notebooks.py`` after editing; the notebooks are checked by
``tests/test_notebooks.py``, which executes every code cell against real run records.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = """\
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
sys.path.insert(0, str(ROOT))
from src.analysis import load_run, load_runs, load_sweep

RUNS = Path(os.environ.get("PROFACE_RUNS", ROOT / "runs"))
runs = load_runs(RUNS)
print(f"{len(runs)} runs under {RUNS}")
runs[[c for c in ("experiment", "run_id", "status", "seed", "start_time") if c in runs]]"""

PER_EXPERIMENT = """\
metric_columns = [c for c in runs.columns if c.startswith("test/")]
completed = runs[runs["status"] == "completed"]
per_experiment = completed.groupby("experiment")[metric_columns].agg(["mean", "std", "count"])
per_experiment"""

HISTORY = """\
newest = runs.sort_values("start_time").iloc[-1]
run = load_run(newest["run_dir"])
history = run.history
epoch_metrics = [c for c in history.columns if c.startswith("val/") or c.endswith("_epoch")]
fig, ax = plt.subplots(figsize=(6, 3))
for column in epoch_metrics:
    series = history[["epoch", column]].dropna()
    ax.plot(series["epoch"], series[column], marker="o", label=column)
ax.set_xlabel("epoch")
ax.legend(fontsize=7)
ax.set_title(f"{run.experiment} / {run.run_id}")
fig.savefig(Path(run.run_dir) / "history.png", dpi=100, bbox_inches="tight")"""

SWEEPS = """\
indexes = sorted((RUNS / "sweeps").glob("*/*/index.csv"))
sweep = load_sweep(indexes[-1]) if indexes else None
sweep"""

RUNS_OVERVIEW = [
    (
        "markdown",
        "# Runs overview\n\nLoads every run record under `runs/` (or `$PROFACE_RUNS`) into one table, "
        "compares experiments across seeds, plots a run's metric history and reads a sweep index. "
        "Run records are the primary source; offline W&B files are read only when asked for.",
    ),
    ("code", SETUP),
    ("markdown", "## Test metrics per experiment (mean and std over runs, e.g. seeds)"),
    ("code", PER_EXPERIMENT),
    ("markdown", "## Metric history of the newest run"),
    ("code", HISTORY),
    ("markdown", "## Sweeps: each point joined with its run's summary"),
    ("code", SWEEPS),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook with the given (kind, source) cells and a Python 3 kernel spec."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    maker = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook.cells = [maker[kind](source) for kind, source in cells]
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
    return notebook


def main() -> None:
    """Write every notebook."""
    NOTEBOOKS.mkdir(exist_ok=True)
    nbformat.write(build(RUNS_OVERVIEW), NOTEBOOKS / "01-runs-overview.ipynb")


if __name__ == "__main__":
    main()
