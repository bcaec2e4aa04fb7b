"""The run's record of input files skipped on purpose (``<run_dir>/skipped_files.csv``).

A dataset that skips a corrupt file (``data.skip_corrupt=true``) appends it here from any dataloader worker;
:class:`src.utils.callbacks.RunRecordCallback` adds the list to the run record's ``data.json`` at the end.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from src.utils.run_record import ENV_RUN_DIR

SKIPPED_FILE = "skipped_files.csv"


def skipped_log_path(run_dir: str | Path | None = None) -> Path | None:
    """Where skipped files are recorded: the current run's ``skipped_files.csv`` (None outside a run)."""
    run_dir = run_dir or os.environ.get(ENV_RUN_DIR)
    return Path(run_dir) / SKIPPED_FILE if run_dir else None


def record_skipped(path: str | Path, reason: str, log_path: Path | None = None) -> None:
    """Append one skipped file to the run's record (safe from several worker processes: one short write)."""
    log_path = log_path or skipped_log_path()
    if log_path is None:
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    new = not log_path.exists()
    with log_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["path", "reason"])
        writer.writerow([str(path), reason])


def read_skipped(log_path: Path) -> list[dict[str, str]]:
    """The distinct skipped files recorded so far, in first-seen order."""
    if not log_path.is_file():
        return []
    seen: dict[str, dict[str, str]] = {}
    with log_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            seen.setdefault(row["path"], row)
    return list(seen.values())
