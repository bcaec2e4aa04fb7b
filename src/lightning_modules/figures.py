"""Result figures of a run: saved under ``<run dir>/plots/`` and logged to W&B.

Modules call :func:`log_figure` at the end of evaluation. Figures are written only inside a run launched by
:mod:`src.tasks` (the run directory is known from ``PROFACE_RUN_DIR``) and only on global rank 0; a bare
``Trainer`` (unit tests, notebooks) writes nothing. Every W&B logger of the trainer gets the PNG as an image
under the same key, so the run record and W&B show the same figure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytorch_lightning as pl
from matplotlib.figure import Figure

from src.metrics.plots import save_figure
from src.utils.run_record import ENV_RUN_DIR

PLOTS_DIR = "plots"


def figure_path(run_dir: str | Path, name: str) -> Path:
    """``<run_dir>/plots/<name>.png``; ``/`` in ``name`` makes sub-folders, odd characters become ``_``."""
    parts = [re.sub(r"[^A-Za-z0-9._=-]+", "_", part) for part in name.split("/") if part]
    if not parts:
        raise ValueError(f"log_figure: empty figure name {name!r}")
    return Path(run_dir, PLOTS_DIR, *parts[:-1], f"{parts[-1]}.png")


def log_figure(module: pl.LightningModule, name: str, fig: Figure) -> Path | None:
    """Save ``fig`` in the run record and log it to W&B under ``name``; return the PNG path (or None)."""
    trainer = module._trainer
    run_dir = os.environ.get(ENV_RUN_DIR)
    if trainer is None or not trainer.is_global_zero or not run_dir:
        return None
    path = save_figure(fig, figure_path(run_dir, name))
    for logger in trainer.loggers:
        if isinstance(logger, pl.loggers.WandbLogger):
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
    return path
