"""EG's table (docs/papers/eg.md): the shared detection rows, each labelled with where its weights come from:
a training run of the reconstructed objective, or the authors' released checkpoint."""

from __future__ import annotations

from typing import Any

import pandas as pd

from src.analysis.detection_table import detection_rows, network_label
from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper (IEEE TCSVT 2025) is closed access and its table values are not recorded in this project"
)


def detector_label(run: dict[str, Any]) -> str:
    """``EG (released weights)`` or ``EG (reconstructed training[, <network>])``."""
    if run.get("config.model.net.weights"):
        return "EG (released weights)"
    network = network_label(run)
    suffix = "" if network == "EfficientNet-B4" else f", {network}"
    return f"EG (reconstructed training{suffix})"


@register_report("eg")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The shared detection rows (:func:`src.analysis.detection_table.detection_rows`)."""
    return detection_rows(runs, detector_label)
