"""PRO-Face's table (docs/papers/proface.md): one row per (obfuscator, recognizer, test data)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.evaluation.protection_protocol import PAPER_NAMES
from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper's tables (ACM MM 2022, doi 10.1145/3503161.3548202) are not recorded in this project yet"
)


@register_report("proface")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout over runs: one row per (obfuscator, recognizer, test data); per setting the
    10-fold accuracy and TAR@FAR, then the image metrics of ``x_p`` against ``x_o``."""
    rows = []
    for run in runs.to_dict("records"):
        fars = sorted(float(far) for far in run.get("config.model.fars") or [1e-3, 1e-2, 1e-1])
        row: dict[str, Any] = {
            "obfuscator": run.get("config.model.obfuscator_name"),
            "recognizer": run.get("config.model.recognizer_name"),
            "test data": dataset_label(run),
        }
        for key, paper in PAPER_NAMES.items():
            row[f"{paper} acc"] = run.get(f"test/{key}/accuracy", float("nan"))
            for far in fars:
                row[f"{paper} TAR@{far:g}"] = run.get(f"test/{key}/tar_at_far/{far:g}", float("nan"))
        perceptual = run.get("config.model.perceptual.kind", "lpips")
        net = run.get("config.model.perceptual.net", "vgg")
        for name in ("ssim", "psnr", f"{perceptual}_{net}", f"{perceptual}_{net}_RANDOM"):
            value = run.get(f"test/{name}_prot_obf")
            if value is not None and value == value:
                row[f"{name} (x_p vs x_o)"] = value
        rows.append(row)
    return pd.DataFrame(rows)
