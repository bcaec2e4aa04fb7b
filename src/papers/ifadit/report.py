"""iFADIT's tables (docs/papers/ifadit.md, "Evaluation"), from logged metrics only.

Phase 2 (:func:`flow_table`): one row per version of the test faces — ``anonymised`` (key 1), ``recovered``
(the right key), ``wrong key`` (recovery with key 2) — with PSNR / SSIM / MAE to the original and the identity
cosine to the original under each judge (``encoder`` is iFADIT's own identity encoder); the anonymised row
also carries the diversity (cosine between the faces of two keys) and, when a detector ran, the detection
rate, box IoU and landmark NME. Phase 1 (:func:`reconstruction_table`): reconstruction quality and identity.
Every row says how the networks were trained: the training recipe is reconstructed unless the released
files were evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper's tables (Pattern Recognition 2025, arXiv 2501.04390) are not recorded in this project yet"
)

RECONSTRUCTED_NOTE = "reconstructed training: the authors released inference code only"
RELEASED_NOTE = "released weights (authors' flow and ICL)"
VERSIONS = {"anonymised": "anonymised (key 1)", "recovered": "recovered (right key)", "wrong": "wrong key"}
IMAGE_SCORES = ("psnr", "ssim", "mae")
DETECTION = {"detected": "detected", "box_iou": "box IoU", "landmark_nme": "landmark NME"}
PHASE1_SUFFIX = "IFaditDisentangle"


def _value(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key)
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _judges(metrics: Mapping[str, Any], stage: str) -> list[str]:
    prefix = f"{stage}/identity/"
    found = []
    for key in metrics:
        judge, _, _version = str(key).removeprefix(prefix).rpartition("/")
        if str(key).startswith(prefix) and judge and judge not in found:
            found.append(judge)
    return sorted(found, key=lambda j: (j != "encoder", j))


def flow_table(metrics: Mapping[str, Any], stage: str = "test") -> pd.DataFrame:
    """Phase 2's rows (see the module docstring); empty when nothing was logged."""
    if not any(str(k).startswith(f"{stage}/recovered/") for k in metrics):
        return pd.DataFrame()
    judges = _judges(metrics, stage)
    rows = []
    for version, label in VERSIONS.items():
        row: dict[str, Any] = {"version": label}
        for score in IMAGE_SCORES:
            row[score.upper() if score != "ssim" else "SSIM"] = _value(metrics, f"{stage}/{version}/{score}")
        for judge in judges:
            row[f"id cos {judge}"] = _value(metrics, f"{stage}/identity/{judge}/{version}")
        if version == "anonymised":
            for judge in judges:
                row[f"diversity {judge}"] = _value(metrics, f"{stage}/identity/{judge}/diversity")
            for field, name in DETECTION.items():
                if f"{stage}/detection/{field}" in metrics:
                    row[name] = _value(metrics, f"{stage}/detection/{field}")
        rows.append(row)
    return pd.DataFrame(rows)


def reconstruction_table(metrics: Mapping[str, Any], stage: str = "test") -> pd.DataFrame:
    """Phase 1's row: reconstruction PSNR / SSIM / MAE and the identity cosines (reconstruction, swap)."""
    if f"{stage}/reconstruction/psnr" not in metrics:
        return pd.DataFrame()
    row = {"version": "reconstruction (phase 1)"}
    for score in IMAGE_SCORES:
        row[score.upper() if score != "ssim" else "SSIM"] = _value(metrics, f"{stage}/reconstruction/{score}")
    row["id cos encoder"] = _value(metrics, f"{stage}/identity/reconstruction")
    row["swap id cos encoder"] = _value(metrics, f"{stage}/identity/swap")
    return pd.DataFrame([row])


def training_label(run: Mapping[str, Any]) -> str:
    """``released weights`` when the run evaluated the authors' flow, else the reconstructed note."""
    flow = run.get("config.model.flow_weights")
    if isinstance(flow, str) and flow.strip():
        return RELEASED_NOTE
    return RECONSTRUCTED_NOTE


@register_report("ifadit")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every evaluated run's rows (phase 1 and phase 2), with its experiment and how it was trained."""
    out = []
    for run in runs.to_dict("records"):
        target = str(run.get("config.model._target_") or "")
        table = reconstruction_table(run) if target.endswith(PHASE1_SUFFIX) else flow_table(run)
        if table.empty:
            continue
        for entry in table.to_dict("records"):
            out.append({"experiment": run.get("experiment"), "training": training_label(run), **entry})
    return pd.DataFrame(out)
