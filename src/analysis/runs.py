"""Load run records (``runs/<experiment>/<run_id>/``) into Python objects and pandas DataFrames.

A run dir is any folder holding ``meta.json``; next to it ``config.yaml`` (resolved config),
``overrides.txt``, ``metrics.csv`` (Lightning CSVLogger), ``summary.json`` (final metrics) and, with W&B on,
``wandb/``. The plain files are the primary record; the ``.wandb`` file is read only on request
(:func:`load_run`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from src.analysis.wandb_file import WandbRun, find_wandb_files, merge_wandb_runs, read_wandb_file

__all__ = [
    "RUN_COLUMNS",
    "Run",
    "RunRecordError",
    "dataset_label",
    "find_runs",
    "flatten_dict",
    "load_run",
    "load_runs",
    "load_sweep",
    "run_row",
]

RUN_COLUMNS = ("run_id", "experiment", "run_dir", "status", "seed", "start_time")
NOT_STARTED = "failed_to_start"  # the status of a run that stopped before fit or test began
_META = "meta.json"
_START_KEYS = ("start_time", "started_at", "start")


class RunRecordError(ValueError):
    """A run record file that exists but cannot be read; the message names the path."""


@dataclass
class Run:
    """One run's record: config, overrides, meta, final summary, metrics history and (optionally) W&B data."""

    run_dir: Path
    run_id: str
    experiment: str
    config: dict[str, Any]
    overrides: list[str]
    meta: dict[str, Any]
    summary: dict[str, Any]
    history: pd.DataFrame = field(repr=False)
    wandb: WandbRun | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``meta.json``'s status (else the summary's), e.g. finished / failed / running; else ``unknown``."""
        return str(self.meta.get("status") or self.summary.get("status") or "unknown")

    @property
    def seed(self) -> Any:
        """The run's seed (``meta.json``, else the config)."""
        return self.meta.get("seed", self.config.get("seed"))

    @property
    def start_time(self) -> Any:
        """The start time as written in ``meta.json`` (ISO string), or ``None``."""
        return next((self.meta[k] for k in _START_KEYS if k in self.meta), None)


# --- file readers -------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunRecordError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise RunRecordError(f"{path}: cannot read ({err})") from err


def _read_json_dict(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise RunRecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"run record incomplete: {path} is missing")
    try:
        config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # yaml / omegaconf errors have no common base class
        raise RunRecordError(f"{path}: not a readable YAML config ({err})") from err
    if not isinstance(config, dict):
        raise RunRecordError(f"{path}: expected a mapping, got {type(config).__name__}")
    return config


def _read_overrides(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _read_metrics(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise RunRecordError(f"{path}: not a readable CSV ({err})") from err


def _read_summary(path: Path) -> dict[str, Any]:
    return _read_json_dict(path) if path.is_file() else {}


def flatten_dict(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become tuples so columns stay hashable (groupby)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_dict(value, name, sep))
        elif isinstance(value, list):
            flat[name] = tuple(value)
        else:
            flat[name] = value
    return flat


# --- discovery ----------------------------------------------------------------------------------------------


def _experiment_of(run_dir: Path, root: Path | None) -> str | None:
    if root is None:
        return None
    try:
        rel = run_dir.resolve().parent.relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def find_runs(root: str | Path = "runs", experiment: str | None = None) -> list[Path]:
    """Run dirs (folders with ``meta.json``) under ``root``, sorted by path (run ids start with the time).

    ``experiment`` selects ``root/<experiment>/<run_id>`` runs; it may be a glob such as ``"demo/*"``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"runs root not found: {root}")
    runs = sorted(p.parent for p in root.rglob(_META) if p.is_file())
    if experiment is not None:
        pattern = experiment.strip("/")
        runs = [r for r in runs if fnmatch.fnmatchcase(_experiment_of(r, root) or "", pattern)]
    return runs


# --- loading ------------------------------------------------------------------------------------------------


def load_run(run_dir: str | Path, *, root: str | Path | None = None, read_wandb: bool = True) -> Run:
    """Read one run dir. ``summary.json`` and ``metrics.csv`` may be missing (run still going or crashed).

    ``root`` (the runs folder) is used to name the experiment when neither ``meta.json`` nor the config does.
    ``read_wandb=False`` skips the ``.wandb`` files; several files of one resumed run are merged.
    """
    run_dir = Path(run_dir)
    meta_path = run_dir / _META
    if not meta_path.is_file():
        raise FileNotFoundError(f"not a run directory (no {_META}): {run_dir}")
    meta = _read_json_dict(meta_path)
    config = _read_config(run_dir / "config.yaml")
    summary = _read_summary(run_dir / "summary.json")

    wandb_run = None
    if read_wandb:
        parts = [read_wandb_file(f) for f in find_wandb_files(run_dir)]
        same_run = [p for p in parts if p.run_id == parts[-1].run_id] if parts else []
        wandb_run = merge_wandb_runs(same_run) if same_run else None

    experiment = meta.get("experiment") or config.get("experiment")
    if not isinstance(experiment, str) or not experiment:
        experiment = _experiment_of(run_dir, Path(root) if root is not None else None) or run_dir.parent.name
    return Run(
        run_dir=run_dir,
        run_id=str(meta.get("run_id") or run_dir.name),
        experiment=experiment,
        config=config,
        overrides=_read_overrides(run_dir / "overrides.txt"),
        meta=meta,
        summary=summary,
        history=_read_metrics(run_dir / "metrics.csv"),
        wandb=wandb_run,
    )


def run_row(run: Run) -> dict[str, Any]:
    """One run as a :func:`load_runs` row: the run columns, ``config.*`` and the summary metrics."""
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "run_dir": str(run.run_dir),
        "status": run.status,
        "seed": run.seed,
        "start_time": run.start_time,
    }
    row.update(flatten_dict(run.config, prefix="config"))
    row.update({k: v for k, v in run.summary.items() if k not in RUN_COLUMNS})  # meta wins for those
    return row


def _ordered_frame(rows: list[dict[str, Any]], first: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in first:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    rest = [c for c in frame.columns if c not in first]
    config_cols = sorted(c for c in rest if c.startswith("config."))
    other = sorted(c for c in rest if not c.startswith("config."))
    return frame[[*first, *config_cols, *other]]


def load_runs(
    root: str | Path = "runs", experiment: str | None = None, *, include_not_started: bool = False
) -> pd.DataFrame:
    """One row per run under ``root``.

    Columns: ``run_id, experiment, run_dir, status, seed, start_time``, the flattened config as
    ``config.<dotted key>``, then the summary metrics as they are (e.g. ``test/psnr``; NaN when missing).
    Runs that stopped before training or testing began (status ``failed_to_start``: a bad data path, missing
    weights) computed nothing and are left out unless ``include_not_started``.
    """
    root = Path(root)
    runs = (load_run(d, root=root, read_wandb=False) for d in find_runs(root, experiment))
    rows = [run_row(r) for r in runs if include_not_started or r.status != NOT_STARTED]
    return _ordered_frame(rows, list(RUN_COLUMNS))


def load_sweep(index_csv: str | Path) -> pd.DataFrame:
    """A sweep's ``index.csv`` joined with each point's ``summary.json`` (and ``run_id``).

    Summary values replace the index's metric column (the summary is the source of truth); points with no
    run dir, or whose run wrote no summary, get NaN. A relative ``run_dir`` (what ``src.sweep`` writes, e.g.
    ``points/000``) is resolved against the index's folder, so a sweep folder can be moved as a whole; the
    returned ``run_dir`` column holds the resolved paths (ready for :func:`load_run`).
    """
    index_csv = Path(index_csv)
    if not index_csv.is_file():
        raise FileNotFoundError(f"sweep index not found: {index_csv}")
    try:
        index = pd.read_csv(index_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RunRecordError(f"{index_csv}: not a readable sweep index ({err})") from err
    missing = [c for c in ("point", "status", "run_dir") if c not in index.columns]
    if missing:
        raise RunRecordError(f"{index_csv}: missing column(s) {missing}")

    extra_rows: list[dict[str, Any]] = []
    for raw in index["run_dir"]:
        extra: dict[str, Any] = {}
        if isinstance(raw, str) and raw.strip():
            run_dir = Path(raw)
            if not run_dir.is_absolute():  # src.sweep writes run dirs relative to the index's folder
                run_dir = index_csv.parent / run_dir
            if not run_dir.is_dir():
                raise FileNotFoundError(f"{index_csv}: run dir of a sweep point not found: {run_dir}")
            meta_path = run_dir / _META
            if meta_path.is_file():
                extra["run_id"] = str(_read_json_dict(meta_path).get("run_id") or run_dir.name)
            else:
                extra["run_id"] = run_dir.name
            summary = _read_summary(run_dir / "summary.json")
            extra.update({k: v for k, v in summary.items() if k not in ("status", "run_id", "run_dir")})
            extra["run_dir"] = str(run_dir)  # resolved, so it can be passed to load_run from anywhere
        extra_rows.append(extra)

    joined = index.copy()
    summary_frame = pd.DataFrame(extra_rows, index=index.index)
    for column in summary_frame.columns:
        values = summary_frame[column]
        if column in joined.columns:
            joined[column] = values.where(values.notna(), joined[column])
        else:
            joined[column] = values
    return joined


def dataset_label(run: Mapping[str, Any]) -> str:
    """Short name of a run's test data (``SyntheticFaces (synthetic)``, ``LFW``, ``CelebA``, ...)."""
    target = str(run.get("config.datamodule._target_", "?"))
    name = target.rsplit(".", 1)[-1].removesuffix("DataModule")
    return f"{name} (synthetic)" if name == "SyntheticFaces" else name
