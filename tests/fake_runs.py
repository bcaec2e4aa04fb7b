"""Fake but realistic run records, as ``src.utils.run_record`` writes them, for tests that read runs.

``write_run(root, experiment, model, metrics, ...)`` writes ``<root>/<experiment>/<run_id>/`` with
``meta.json`` (task, status, git commit and dirty flag, sweep name/point, start and end time, cwd, command),
``config.yaml`` (experiment, seed, trainer, datamodule, the given model, with the ``key=value`` overrides
applied as a real run would have them), ``overrides.txt``, ``summary.json`` (only for completed runs: status
plus ``metrics``) and an empty ``checkpoints/`` folder; ``checkpoint(run_dir)`` adds a checkpoint file.
Each call is one minute newer than the previous one, so "newest" follows the order of the calls.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SYNTHETIC_FACES = "src.datamodules.synthetic_faces.SyntheticFacesDataModule"
_CLOCK = itertools.count()
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _trainer() -> dict[str, Any]:
    return {
        "_target_": "pytorch_lightning.Trainer",
        "accelerator": "auto",
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "max_epochs": 10,
        "fast_dev_run": False,
        "limit_train_batches": None,
        "limit_val_batches": None,
        "limit_test_batches": None,
    }


def _config(experiment: str, model: Mapping[str, Any], datamodule: str, overrides: Sequence[str]) -> Any:
    config = OmegaConf.create(
        {
            "experiment": experiment,
            "seed": 0,
            "trainer": _trainer(),
            "datamodule": {"_target_": datamodule, "batch_size": 64, "num_workers": 0},
            "model": dict(model),
            "run": {"id": None, "dir": None},
            "sweep": {"name": None, "point": None},
        }
    )
    for item in overrides:
        key, _, value = item.lstrip("+").partition("=")
        if "." in key:  # a value override (group choices such as logger=none pick files: not modelled here)
            OmegaConf.update(config, key, _parsed(value), force_add=True)
    return config


def _parsed(value: str) -> Any:
    """An override value the way the command line reads it (``5`` an int, ``***`` a string)."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def write_run(
    root: Path,
    experiment: str,
    model: Mapping[str, Any],
    metrics: Mapping[str, float],
    *,
    overrides: Sequence[str] = (),
    status: str = "completed",
    task: str = "train",
    sweep: tuple[str, int] | None = None,
    commit: str = COMMIT,
    dirty: bool = False,
    datamodule: str = SYNTHETIC_FACES,
) -> Path:
    """Write one run record (see the module docstring) and return its directory.

    ``model`` is the model config (with its ``_target_``); ``metrics`` the summary's flat ``stage/name``
    values (e.g. ``test/rank1``); ``sweep`` = (sweep name, point) marks a sweep point.
    """
    tick = next(_CLOCK)
    start = _EPOCH + timedelta(minutes=tick)
    run_id = f"{start:%Y%m%d-%H%M%S}-{tick:06x}"
    run_dir = Path(root) / experiment / run_id
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(_config(experiment, model, datamodule, overrides), run_dir / "config.yaml")
    (run_dir / "overrides.txt").write_text("".join(f"{item}\n" for item in overrides))
    meta = {
        "run_id": run_id,
        "experiment": experiment,
        "task": task,
        "status": status,
        "seed": 0,
        "command": ["python", "-m", f"src.{task}", f"experiment={experiment}", *overrides],
        "cwd": str(root),
        "git": {"commit": commit, "branch": "main", "dirty": dirty},
        "sweep": {"name": sweep[0], "point": sweep[1]} if sweep else {"name": None, "point": None},
        "start_time": start.isoformat(timespec="seconds"),
    }
    if status != "running":
        meta["end_time"] = (start + timedelta(seconds=30)).isoformat(timespec="seconds")
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    if status == "completed":
        summary = {"run_id": run_id, "experiment": experiment, "status": status, **metrics}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir


def checkpoint(run_dir: Path, name: str = "last.ckpt") -> Path:
    """Create ``<run_dir>/checkpoints/<name>`` (a placeholder file) and return its path."""
    path = Path(run_dir) / "checkpoints" / name
    path.write_bytes(b"not a real checkpoint")
    return path
