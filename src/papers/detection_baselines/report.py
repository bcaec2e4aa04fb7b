"""The detection baselines' table (docs/papers/detection_baselines.md): one row per run (detector × test
set) with frame- and video-level numbers, the failures that were scored 0.5, the per-method frame AUCs,
and DeepfakeBench's published frame AUCs beside them (``experiments/detection_baselines/published.csv``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from src.papers.registry import register_report

DETECTORS = {"xception": "Xception", "efficientnet_b4": "EfficientNet-B4", "small_cnn": "small CNN (demo)"}
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
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


def detector_label(run: dict[str, Any]) -> str:
    """``SBI`` for SBI runs, else the network's display name."""
    if str(run.get("config.model._target_", "")).endswith(".SBIModule"):
        return "SBI"
    name = str(run.get("config.model.net.name", "?"))
    return DETECTORS.get(name, name)


def test_set_label(run: dict[str, Any]) -> str:
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


@register_report("detection_baselines")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: detector, test set, video aggregation, selection metric, the metrics of
    :data:`COLUMNS` and the per-method frame AUCs a run reports."""
    rows = []
    for run in runs.to_dict("records"):
        row: dict[str, Any] = {
            "experiment": run.get("experiment"),
            "detector": detector_label(run),
            "test set": test_set_label(run),
            "video score": f"{run.get('config.model.video_reduce', 'mean')} of frames (max over faces)",
            "selected on": str(run.get("config.callbacks.model_checkpoint.monitor") or "last epoch"),
        }
        for key, label in COLUMNS:
            row[label] = run.get(f"test/{key}", math.nan)
        for method in METHODS:
            value = run.get(f"test/{method}/frame_auc")
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                row[f"{method} frame AUC"] = value
        rows.append(row)
    return pd.DataFrame(rows)
