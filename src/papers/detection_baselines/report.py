"""The detection baselines' table (docs/papers/detection_baselines.md): one row per run (detector × test
set) with frame- and video-level numbers, the failures that were scored 0.5, the per-method frame AUCs,
and DeepfakeBench's published frame AUCs beside them with the difference (``frame AUC (paper)``,
``frame AUC Δ``; ``experiments/detection_baselines/published.csv``, merged by ``src.reporting``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from src.analysis.detection_table import detection_rows, network_label
from src.papers.registry import register_report


def detector_label(run: dict[str, Any]) -> str:
    """``SBI`` for SBI runs, else the network's display name."""
    if str(run.get("config.model._target_", "")).endswith(".SBIModule"):
        return "SBI"
    return network_label(run)


@register_report("detection_baselines")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The shared detection rows (:func:`src.analysis.detection_table.detection_rows`)."""
    return detection_rows(runs, detector_label)
