"""Rows of a forgery-detection table from run records: one row per run (detector × test set) with frame- and
video-level numbers, the failures scored 0.5 and the per-method frame AUCs. Every detection paper's report
layout builds on it, so their tables line up and ``python -m src.report A B …`` can put them side by side."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

#: display names of the detector networks (``model.net.name`` or ``model.net.detector.name``)
NETWORKS = {"xception": "Xception", "efficientnet_b4": "EfficientNet-B4", "small_cnn": "small CNN (demo)"}
TEST_SETS = {"ffpp": "FF++", "celeb_df": "Celeb-DF v2"}
#: (summary key below ``test/``, column label)
COLUMNS = (
    ("frame_auc", "frame AUC"),
    ("frame_ap", "frame AP"),
    ("frame_eer", "frame EER"),
    ("video_auc", "video AUC"),
    ("video_ap", "video AP"),
    ("n_videos", "videos"),
    ("failed_frames", "failed frames"),
    ("failed_videos", "failed videos"),
)
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "SelfBlended")

RunRow = dict[str, Any]


def network_label(run: RunRow) -> str:
    """The display name of the run's detector network."""
    name = run.get("config.model.net.name") or run.get("config.model.net.detector.name") or "?"
    return NETWORKS.get(str(name), str(name))


def test_set_label(run: RunRow) -> str:
    """``FF++ c23``, ``Celeb-DF v2``, ... from the run's DataModule (``(synthetic)`` for the demo data)."""
    target = str(run.get("config.datamodule._target_", ""))
    name = str(run.get("data.dataset") or "")
    if not name:
        module = target.rsplit(".", 2)[-2] if target.count(".") >= 2 else target
        name = "ffpp" if module in ("ffpp", "self_blended") else module
    label = TEST_SETS.get(name, name)
    compression = run.get("config.datamodule.compression")
    if name == "ffpp" and isinstance(compression, str):
        label = f"{label} {compression}"
    if "synthetic" in str(run.get("config.datamodule.root", "")) or "demo" in str(run.get("experiment", "")):
        label = f"{label} (synthetic)"
    return label


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def detection_rows(runs: pd.DataFrame, detector_label: Callable[[RunRow], str]) -> pd.DataFrame:
    """One row per run: experiment, ``detector_label(run)``, test set, video aggregation, selection metric,
    the metrics of :data:`COLUMNS` and the per-method frame AUCs the run reports."""
    rows = []
    for run in runs.to_dict("records"):
        row: RunRow = {
            "experiment": run.get("experiment"),
            "detector": detector_label(run),
            "test set": test_set_label(run),
            "video score": f"{run.get('config.model.video_reduce', 'mean')} of frames (max over faces)",
            "selected on": str(run.get("config.callbacks.model_checkpoint.monitor") or "last epoch"),
        }
        for key, label in COLUMNS:
            row[label] = run.get(f"test/{key}", math.nan)
        for method in METHODS:
            if _present(value := run.get(f"test/{method}/frame_auc")):
                row[f"{method} frame AUC"] = value
        rows.append(row)
    return pd.DataFrame(rows)
