"""Analysis of finished runs: load run records into DataFrames and read offline W&B files without a server.

``load_runs("runs")`` gives one row per run (config columns ``config.*`` + summary metrics);
``load_run(dir)`` gives one run's config, overrides, meta, summary, metrics history and W&B data;
``load_sweep(index.csv)`` joins a local sweep's index with each point's summary; ``read_wandb_file`` parses a
``run-<id>.wandb`` file directly. ``aggregate_over_seeds(runs)`` averages metrics over seeds without pooling
runs of different settings; ``compare_runs(a, b)`` shows what differs between runs; ``plot_history(run)``
draws a run's metric history (losses and [0, 1] scores on separate axes) without saving anything.
"""

from src.analysis.compare import RunComparison, compare_runs
from src.analysis.grouping import (
    BOOKKEEPING_KEYS,
    aggregate_over_seeds,
    current_targets,
    varying_config_columns,
)
from src.analysis.plots import history_groups, plot_history
from src.analysis.runs import (
    RUN_COLUMNS,
    Run,
    RunRecordError,
    find_runs,
    flatten_dict,
    load_run,
    load_runs,
    load_sweep,
)
from src.analysis.wandb_file import (
    WandbFileError,
    WandbRun,
    find_wandb_files,
    merge_wandb_runs,
    read_wandb_file,
)

__all__ = [
    "BOOKKEEPING_KEYS",
    "RUN_COLUMNS",
    "Run",
    "RunComparison",
    "RunRecordError",
    "WandbFileError",
    "WandbRun",
    "aggregate_over_seeds",
    "compare_runs",
    "current_targets",
    "find_runs",
    "find_wandb_files",
    "flatten_dict",
    "history_groups",
    "load_run",
    "load_runs",
    "load_sweep",
    "merge_wandb_runs",
    "plot_history",
    "read_wandb_file",
    "varying_config_columns",
]
