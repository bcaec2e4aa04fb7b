"""Analysis of finished runs: load run records into DataFrames and read offline W&B files without a server.

``load_runs("runs")`` gives one row per run (config columns ``config.*`` + summary metrics);
``load_run(dir)`` gives one run's config, overrides, meta, summary, metrics history and W&B data;
``load_sweep(index.csv)`` joins a local sweep's index with each point's summary; ``read_wandb_file`` parses a
``run-<id>.wandb`` file directly. ``aggregate_over_seeds(runs)`` averages metrics over seeds without pooling
runs of different settings; ``compare_runs(a, b)`` shows what differs between runs; ``plot_history(run)``
draws a run's metric history (losses and [0, 1] scores on separate axes) without saving anything, from
``metrics.csv`` or the offline W&B file. For the notebooks of each paper family: ``collect_results`` stacks
the runs' ``results.csv`` tables and ``expand_settings`` splits their settings into columns;
``plot_metric_vs`` draws metrics against a strength or an ε; ``roc_curve``/``plot_roc`` draw ROC curves from
the per-sample scores a detection run stores (``read_predictions``); ``plot_parallel_coordinates`` shows a
sweep; ``diff_commits`` puts the runs of two git commits side by side.
"""

from src.analysis.commits import commit_table, diff_commits, resolve_commit, with_commits
from src.analysis.compare import RunComparison, compare_runs
from src.analysis.curves import PREDICTION_LEVELS, RocCurve, plot_roc, read_predictions, roc_curve
from src.analysis.grouping import (
    BOOKKEEPING_KEYS,
    aggregate_over_seeds,
    current_targets,
    varying_config_columns,
)
from src.analysis.parameter_plots import parallel_coordinates, plot_metric_vs, plot_parallel_coordinates
from src.analysis.plots import HISTORY_SOURCES, history_groups, plot_history, wandb_history
from src.analysis.results import (
    collect_results,
    expand_settings,
    parse_setting,
    pick_columns,
    read_results,
    sweep_columns,
    varying_settings,
)
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
    "HISTORY_SOURCES",
    "PREDICTION_LEVELS",
    "RUN_COLUMNS",
    "RocCurve",
    "Run",
    "RunComparison",
    "RunRecordError",
    "WandbFileError",
    "WandbRun",
    "aggregate_over_seeds",
    "collect_results",
    "commit_table",
    "compare_runs",
    "current_targets",
    "diff_commits",
    "expand_settings",
    "find_runs",
    "find_wandb_files",
    "flatten_dict",
    "history_groups",
    "load_run",
    "load_runs",
    "load_sweep",
    "merge_wandb_runs",
    "parallel_coordinates",
    "parse_setting",
    "pick_columns",
    "plot_history",
    "plot_metric_vs",
    "plot_parallel_coordinates",
    "plot_roc",
    "read_predictions",
    "read_results",
    "read_wandb_file",
    "resolve_commit",
    "roc_curve",
    "sweep_columns",
    "varying_config_columns",
    "varying_settings",
    "wandb_history",
    "with_commits",
]
