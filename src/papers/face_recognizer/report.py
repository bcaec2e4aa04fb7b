"""The face recognizer's table (docs/papers/face_recognizer.md): one row per experiment with the open-set
identity metrics on unseen test identities."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.papers.registry import register_report
from src.utils.tables import natural_key

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "a tool of this project (the recognizer the privacy metrics judge with), trained on its own data: no "
    "paper publishes this table"
)

#: (summary key below ``test/``, column label)
COLUMNS = (
    ("rank1", "rank-1"),
    ("rank5", "rank-5"),
    ("verif_acc", "verif acc"),
    ("verif_acc_std", "verif acc std"),
    ("genuine_cos", "genuine cos"),
    ("impostor_cos", "impostor cos"),
)
TAR_PREFIX = "test/tar_at_far/"


@register_report("face_recognizer")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: test data, rank-1/5 retrieval, 10-fold verification accuracy (± std), mean
    genuine / impostor cosine, then TAR@FAR for each FAR a run reports (numerically ordered)."""
    rows = []
    fars = sorted(
        {
            c.removeprefix(TAR_PREFIX)
            for c in runs.columns
            if c.startswith(TAR_PREFIX) and runs[c].notna().any()
        },
        key=natural_key,
    )
    for run in runs.to_dict("records"):
        row: dict[str, Any] = {"experiment": run.get("experiment"), "test data": dataset_label(run)}
        for key, label in COLUMNS:
            row[label] = run.get(f"test/{key}", math.nan)
        for far in fars:
            row[f"TAR@FAR={far}"] = run.get(f"{TAR_PREFIX}{far}", math.nan)
        rows.append(row)
    return pd.DataFrame(rows)
