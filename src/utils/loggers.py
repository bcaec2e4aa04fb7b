"""The run's loggers: ``metrics.csv`` that survives kills and resumes, W&B that never repeats a step, and
no secret in either.

* :class:`RunCSVLogger` writes every row as it is logged (a killed process loses nothing) and continues an
  existing file. When resuming, the first row the resumed run logs tells where it restarts: rows of that
  step and later ones, which the interrupted process logged after its checkpoint, are cut first (the resumed
  run logs them again), so the file ends up with the rows of the uninterrupted run, once each.
* :class:`RunWandbLogger` resumes the same W&B run id and skips the (step, metric) pairs that an earlier
  attempt already logged to the run directory's W&B files, so the history has each step once.
* Both show secret hyper-parameters as ``***``.
"""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from argparse import Namespace
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.config.secrets import redact_arguments

METRICS_FILE = "metrics.csv"


def _hide(params: Mapping[str, Any] | Namespace | None, secret: Collection[str]) -> Any:
    if params is None or not secret:
        return params
    return redact_arguments(vars(params) if isinstance(params, Namespace) else dict(params), secret)


def cut_metrics_csv(path: Path, from_step: int) -> int:
    """Drop the rows of ``metrics.csv`` logged at ``from_step`` or later; return how many were dropped."""
    if not path.is_file():
        return 0
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [row for row in rows if not row.get("step") or float(row["step"]) < from_step]
    if len(kept) == len(rows):
        return 0
    handle, temporary = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=path.parent)
    with os.fdopen(handle, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(temporary, path)
    return len(rows) - len(kept)


class _AppendingWriter(ExperimentWriter):
    """Continues an existing ``metrics.csv`` (adopts its header instead of deleting it); when resuming,
    cuts it back at the first step the resumed run logs."""

    resuming = False

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        """Record a row; the first one of a resumed run first cuts what is to be replayed."""
        if self.resuming and step is not None:
            self.resuming = False
            cut = cut_metrics_csv(Path(self.metrics_file_path), int(step))
            if cut:
                print(
                    f"resume: {cut} metrics.csv row(s) from step {step} on were logged after the checkpoint; "
                    "replaying them"
                )
        super().log_metrics(metrics_dict, step)


class RunCSVLogger(CSVLogger):
    """``metrics.csv`` (and ``hparams.yaml``) in the run directory, one write per logged row."""

    def __init__(self, run_dir: str, secret_arguments: Collection[str] = (), resuming: bool = False) -> None:
        super().__init__(save_dir=run_dir, name="", version="", flush_logs_every_n_steps=1)
        self.secret_arguments = frozenset(secret_arguments)
        self.resuming = resuming

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer, created on first use."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
            self._experiment.resuming = self.resuming
        return self._experiment

    @rank_zero_only
    def log_hyperparams(self, params: Any = None) -> None:
        """Lightning's ``hparams.yaml``, secrets shown as ``***``."""
        super().log_hyperparams(_hide(params, self.secret_arguments))


class RunWandbLogger(WandbLogger):
    """Lightning's W&B logger, with secrets hidden and, on resume, no (step, metric) logged twice."""

    def __init__(
        self,
        *,
        secret_arguments: Collection[str] = (),
        already_logged: Collection[tuple[int, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.secret_arguments = frozenset(secret_arguments)
        self.already_logged = set(already_logged)

    @rank_zero_only
    def log_hyperparams(self, params: Any = None) -> None:
        """Hyper-parameters into the W&B config, secrets shown as ``***``."""
        super().log_hyperparams(_hide(params, self.secret_arguments))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log, leaving out what an earlier attempt of this run logged at the same step."""
        if step is not None and self.already_logged:
            metrics = {k: v for k, v in metrics.items() if (int(step), k) not in self.already_logged}
            if not metrics:
                return
        super().log_metrics(metrics, step)


def logged_steps(run_dir: Path) -> set[tuple[int, str]]:
    """(trainer step, metric) pairs in the W&B files an earlier attempt left in ``run_dir`` (offline or
    online runs both keep their ``.wandb`` transaction log locally)."""
    from src.analysis.wandb_file import TRAINER_STEP, WandbFileError, find_wandb_files, read_wandb_file

    pairs: set[tuple[int, str]] = set()
    for path in find_wandb_files(run_dir):
        try:
            history = read_wandb_file(path).history
        except WandbFileError as exc:  # an attempt killed before W&B wrote anything readable
            warnings.warn(f"resume: ignoring unreadable W&B file ({exc})", stacklevel=2)
            continue
        for row in history:
            step = row.get(TRAINER_STEP)
            if isinstance(step, int | float):
                metrics = (key for key in row if not key.startswith("_") and key != TRAINER_STEP)
                pairs.update((int(step), key) for key in metrics)
    return pairs
