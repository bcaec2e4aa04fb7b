"""PRO-Face S's table (docs/papers/proface_s.md): a row per (experiment, test data, evaluation obfuscator)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.papers.proface_s.module import added_column_label
from src.papers.registry import register_report
from src.utils.tables import natural_key

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper's tables (IEEE TCSVT 2024, doi 10.1109/TCSVT.2023.3344809) are not recorded in this "
    "project yet"
)


@register_report("proface_s")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout (docs/papers/proface_s.md, "Building the table") over runs: one row per (experiment,
    test data, evaluation obfuscator) with pSSIM / pPSNR / pLPIPS (protected vs obfuscated), their ``_abs``
    variants (vs original), rSSIM / rPSNR / rLPIPS (right-key recovery), wrSSIM / wrPSNR / wrLPIPS (wrong
    key), then the recovery from the 8-bit protected image. The perceptual column keeps its metric's name
    (``lpips_vgg``, ...)."""
    rows = []
    for run in runs.to_dict("records"):
        settings = sorted(
            (
                key.split("/")[1]
                for key, value in run.items()
                if key.startswith("test/") and key.endswith("/p_psnr") and value == value
            ),
            key=natural_key,
        )
        for setting in settings:
            prefix = f"test/{setting}/"
            perceptual = sorted(
                {
                    k.removeprefix(f"{prefix}p_")
                    for k in run
                    if k.startswith(f"{prefix}p_") and not k.startswith(f"{prefix}p_abs_")
                }
                - {"ssim", "psnr"}
            )
            row: dict[str, Any] = {
                "experiment": run.get("experiment"),
                "test data": dataset_label(run),
                "wrong recovery vs": "obfuscated"
                if run.get("config.model.wrong_recover_type") == "Obfs"
                else "original",
                "obfuscator": setting,
            }
            for group, label in (("p", "p"), ("p_abs", "p_abs"), ("r", "r"), ("wr", "wr")):
                for metric in ("ssim", "psnr", *perceptual):
                    row[f"{label} {metric}"] = run.get(f"{prefix}{group}_{metric}", math.nan)
            row["r psnr (8-bit x_p)"] = run.get(f"{prefix}r_q8_psnr", math.nan)
            row["max |x_r - x| (8-bit x_p)"] = run.get(f"{prefix}rec_maxerr_q8", math.nan)
            added = {}
            for key in (k for k in run if k.startswith(prefix) and run[k] == run[k]):
                label = added_column_label(key.removeprefix(prefix))
                if label is not None:
                    added[label] = run[key]
            for label in sorted(added, key=natural_key):  # noise 0.001 < 0.005 < 0.01, not string order
                row[label] = added[label]
            rows.append(row)
    return pd.DataFrame(rows)
