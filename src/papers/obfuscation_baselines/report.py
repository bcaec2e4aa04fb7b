"""The obfuscation baselines' table (docs/papers/obfuscation_baselines.md): one row per (experiment, test
data, obfuscator) with the columns each run prints itself (``results_rows`` of the module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.config.instantiate import instantiate_untrusted
from src.papers.obfuscation_baselines.module import results_rows
from src.papers.registry import register_report
from src.utils.tables import is_missing

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = (
    "classical obfuscators measured under this project's protocol (its data, recognizer and settings): no "
    "paper publishes this table"
)

OBFUSCATORS_PREFIX = "config.model.obfuscators."


class AsConfigured:
    """Stands in for an obfuscator that cannot be rebuilt here (e.g. a face swap whose weights are absent):
    its setting is described by its configured arguments."""

    def __init__(self, node: Mapping[str, Any]) -> None:
        self.node = dict(node)

    def describe(self) -> dict[str, Any]:
        """The configured arguments, without ``_target_``."""
        return {k: v for k, v in self.node.items() if not k.startswith("_")}


def obfuscator_configs(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: config node}`` of a run's ``model.obfuscators`` from its flattened ``config.*`` columns (in
    column order; missing values, i.e. columns of other runs, are skipped)."""
    nodes: dict[str, dict[str, Any]] = {}
    for key, value in run.items():
        if not key.startswith(OBFUSCATORS_PREFIX) or (is_missing(value) and value is not None):
            continue
        name, *path = key.removeprefix(OBFUSCATORS_PREFIX).split(".")
        node = nodes.setdefault(name, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if path:
            node[path[-1]] = list(value) if isinstance(value, tuple) else value
    return nodes


def _obfuscators(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's evaluation obfuscators, rebuilt from its config (only registered, buildable targets)."""
    nodes = obfuscator_configs(run)
    if not nodes:  # no config columns: the names the summary has metrics for
        names = dict.fromkeys(k.split("/")[1] for k in run if k.startswith("test/") and k.count("/") == 2)
        nodes = {name: {} for name in names}
    built: dict[str, Any] = {}
    for name, node in nodes.items():
        try:
            built[name] = instantiate_untrusted(
                node, source=f"{run.get('run_dir', '?')}/config.yaml", key=f"model.obfuscators.{name}"
            )
        except Exception:  # a report must not fail because one obfuscator cannot be built here
            built[name] = AsConfigured(node)
    return built


@register_report("obfuscation_baselines")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, test data, obfuscator): ``obfuscator``, ``eval setting``, ``psnr``, ``ssim``
    and the identity metrics, exactly as the module's own results table (the demo prints) lays them out."""
    tables = []
    for run in runs.to_dict("records"):
        table = results_rows(_obfuscators(run), run)
        table.insert(0, "experiment", run.get("experiment"))
        table.insert(1, "test data", dataset_label(run))
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
