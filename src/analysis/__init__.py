"""Analysis of finished runs: load run records into DataFrames and read offline W&B files without a server.

``load_runs("runs")`` gives one row per run (config columns ``config.*`` + summary metrics);
``load_run(dir)`` gives one run's config, overrides, meta, summary, metrics history and W&B data;
``load_sweep(index.csv)`` joins a local sweep's index with each point's summary; ``read_wandb_file`` parses a
``run-<id>.wandb`` file directly.
"""

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
    "RUN_COLUMNS",
    "Run",
    "RunRecordError",
    "WandbFileError",
    "WandbRun",
    "find_runs",
    "find_wandb_files",
    "flatten_dict",
    "load_run",
    "load_runs",
    "load_sweep",
    "merge_wandb_runs",
    "read_wandb_file",
]
