"""FPG's table (docs/papers/fpg.md): the shared detection rows (frame / video AUC and AP, failures,
per-method frame AUCs), each labelled with its network and, for ablation runs, the parts of FPG that were
switched off."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from src.analysis.detection_table import NETWORKS, detection_rows
from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper (ACM MM 2024) is closed access and its table values are not recorded in this project"
)

#: (``model.terms`` key, its default, what the label says when it is off)
PARTS = (
    ("shape", True, "shape refinement"),
    ("magnitude", True, "magnitude refinement"),
    ("sep", 0.075, "L_sep"),
    ("quality", 1.0, "quality"),
)


def _off(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False  # not recorded: the default (on)
    return value is False or (not isinstance(value, bool) and float(value) == 0.0)


def variant(run: dict[str, Any]) -> str:
    """``full`` or ``w/o <part>, <part>`` from the run's ``model.terms``; other non-default weights are
    named."""
    off = [label for key, _, label in PARTS if _off(run.get(f"config.model.terms.{key}"))]
    changed = [
        f"{key}={value:g}"
        for key, default, _ in PARTS
        if not isinstance(default, bool)
        and isinstance(value := run.get(f"config.model.terms.{key}"), int | float)
        and not math.isnan(value)
        and value not in (0.0, default)
    ]
    label = "full" if not off else "w/o " + ", ".join(off)
    return f"{label} ({', '.join(changed)})" if changed else label


def detector_label(run: dict[str, Any]) -> str:
    """``FPG (<variant>)``, with the network when it is not EfficientNet-B4."""
    name = str(run.get("config.model.net.backbone.name") or "?")
    network = NETWORKS.get(name, name)
    suffix = "" if network == "EfficientNet-B4" else f", {network}"
    return f"FPG ({variant(run)}{suffix})"


@register_report("fpg")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The shared detection rows (:func:`src.analysis.detection_table.detection_rows`)."""
    return detection_rows(runs, detector_label)
