"""PRO-Face C's table (docs/papers/proface_c.md, "Evaluation"): per run, one row per (method, obfuscation),
one column per verification set and the mean over the sets. Methods: the server on the clear images
(``clear``, an upper bound), on the obfuscated images alone (``obfuscated``, the baseline) and compensated by
the client (``compensated``, PRO-Face C). Values are 10-fold verification accuracies in [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper's tables (IEEE TIFS 2024, doi 10.1109/TIFS.2024.3388976) are not recorded in this project yet"
)

METHOD_ORDER = {"clear": 0, "obfuscated": 1, "compensated": 2}
TRANSMISSION_PREFIX = "test/transmission/"


def table_from_metrics(metrics: Mapping[str, Any], stage: str = "test") -> pd.DataFrame:
    """Rows (method, obfuscation) × columns (sets…, mean) from logged ``<stage>/<method>[/<obf>]/<set>``."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    sets: list[str] = []
    for name, value in metrics.items():
        parts = str(name).split("/")
        if len(parts) < 3 or parts[0] != stage or parts[1] not in METHOD_ORDER:
            continue
        if parts[1] == "clear" and len(parts) == 3:
            method, obfuscation, set_name = "clear", "none", parts[2]
        elif parts[1] != "clear" and len(parts) == 4:
            method, obfuscation, set_name = parts[1], parts[2], parts[3]
        else:
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        row = rows.setdefault((method, obfuscation), {"method": method, "obfuscation": obfuscation})
        row[set_name] = float(value)
        if set_name not in sets:
            sets.append(set_name)
    if not rows:
        return pd.DataFrame()
    ordered = [s for s in sets if s != "mean"] + (["mean"] if "mean" in sets else [])
    table = pd.DataFrame(
        sorted(
            rows.values(),
            key=lambda r: (METHOD_ORDER[r["method"]], r["obfuscation"] != "none", r["obfuscation"]),
        )
    )
    return table[["method", "obfuscation", *ordered]].reset_index(drop=True)


@register_report("proface_c")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every evaluated run's rows, with its experiment, training data and transmission setting."""
    out = []
    for run in runs.to_dict("records"):
        table = table_from_metrics(run, "test")
        if table.empty:
            continue
        transmission, sent = transmission_label(run)
        for entry in table.to_dict("records"):
            compensated = entry["method"] == "compensated"
            out.append(
                {
                    "experiment": run.get("experiment"),
                    "training data": training_data(run),
                    **entry,
                    "transmission": transmission if compensated else "",
                    "bytes/image": sent if compensated else math.nan,
                }
            )
    return pd.DataFrame(out)


def transmission_label(run: Mapping[str, Any]) -> tuple[str, float]:
    """How the compensation maps were sent (the paper's float32, or the labelled extension) and the bytes
    per image the client sends (NaN for runs that did not log it)."""
    bits = run.get(f"{TRANSMISSION_PREFIX}bits")
    pruned = float(run.get(f"{TRANSMISSION_PREFIX}prune_amount") or 0.0)
    sent = run.get(f"{TRANSMISSION_PREFIX}bytes_per_image")
    sent = float(sent) if _present(sent) else math.nan
    if not _present(bits) or (int(bits) == 32 and pruned == 0.0):
        return "float32 maps (as the paper)", sent
    return f"{int(bits)}-bit maps, {pruned:.0%} of the client pruned (extension)", sent


def training_data(run: Mapping[str, Any]) -> str:
    """The training DataModule's short name (the ``train`` part of a train-with-verification DataModule)."""
    target = run.get("config.datamodule.train._target_")
    if not _present(target):
        return dataset_label(run)
    return dataset_label({"config.datamodule._target_": target})


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
