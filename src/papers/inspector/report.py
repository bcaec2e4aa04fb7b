"""The Inspector's table (docs/papers/inspector.md, "Robust-accuracy protocol"): one row per evaluated run,
attack and ε, the undefended detector beside the defence. Built from the logged ``test/<attack>@<ε>/<metric>``
numbers of stage-4 and robust_* runs; the other stages' runs have no such numbers and are left out.
The protocol is reconstructed (the paper's is not published), and the label says so."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from src.analysis.detection_table import network_label, test_set_label
from src.papers.inspector.protocol import table_from_metrics
from src.papers.registry import register_report

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "the paper (IEEE TIP 2024) is closed access and its table values are not recorded in this project; "
    "the robust-accuracy protocol here is reconstructed, so they would not be directly comparable"
)

#: (protocol column, table header)
COLUMNS = (
    ("undefended_acc", "undefended acc"),
    ("natural_acc", "natural acc (rejection = error)"),
    ("robust_acc", "robust acc (rejection = correct)"),
    ("acc_accepted", "acc on accepted"),
    ("rejection_rate", "rejection rate"),
    ("attack_success", "attack success"),
    ("correction_acc", "correction acc"),
)
TARGETS = {"detector": "D only", "eot": "defence, EOT", "bpda": "defence, BPDA"}


def attack_label(run: dict[str, Any], attack: str) -> str:
    """``clean``, or the attack label with what it differentiates (from the run's config)."""
    if attack == "clean":
        return "clean"
    target = run.get(f"config.model.evaluation.attacks.{attack}.target") or "detector"
    return f"{attack} ({TARGETS.get(str(target), str(target))})"


@register_report("inspector")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Protocol rows of every run that logged them (see the module docstring)."""
    rows = []
    for run in runs.to_dict("records"):
        metrics = {k: v for k, v in run.items() if isinstance(k, str) and k.startswith("test/")}
        table = table_from_metrics({k: v for k, v in metrics.items() if _present(v)})
        for entry in table.to_dict("records"):
            eps = entry.get("eps", math.nan)
            row: dict[str, Any] = {
                "experiment": run.get("experiment"),
                "detector": f"Inspector on {network_label(run)} (reconstructed protocol)",
                "test set": test_set_label(run),
                "attack": attack_label(run, entry["attack"]),
                "ε (/255)": _eps_text(entry["attack"], eps),
            }
            for key, header in COLUMNS:
                row[header] = entry.get(key, math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def _eps_text(attack: str, eps: float) -> str:
    if attack == "clean":
        return "-"
    return "unbounded" if math.isnan(eps) else f"{eps:g}"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
