"""FaceShield's table (docs/papers/faceshield.md, "Evaluation"): one row per (experiment, test data,
variant) with the columns each evaluation run prints itself (:func:`variant_rows`), rebuilt from the run's
configuration columns and logged metrics (nothing is instantiated from a run record)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.papers.faceshield.evaluation import SEMANTICS, variant_rows
from src.papers.registry import register_report
from src.utils.tables import is_missing

PERTURBATORS = "config.model.perturbators."
BASELINES = "config.model.baselines."
_TAR = re.compile(r"tar@far=(.+)$")


def _present(value: object) -> bool:
    return not is_missing(value)


def _nodes(run: Mapping[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """``{name: {key: value}}`` of one level of config mappings under ``prefix`` (flattened columns)."""
    nodes: dict[str, dict[str, Any]] = {}
    for key, value in run.items():
        if key.startswith(prefix) and _present(value):
            name, _, rest = key.removeprefix(prefix).partition(".")
            nodes.setdefault(name, {})[rest] = value
    return nodes


def describe_variants(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What each variant of a run was, from its configuration columns (in the order they were logged)."""
    variants = dict.fromkeys(
        key.split("/")[1]
        for key in run
        if key.startswith("test/") and key.endswith("/ssim") and _present(run[key])
    )
    perturbators, baselines = _nodes(run, PERTURBATORS), _nodes(run, BASELINES)
    out: dict[str, dict[str, Any]] = {}
    for name in variants:
        if name in perturbators:
            node = perturbators[name]
            sampler = str(node.get("sampler", "faceshield_repo"))
            out[name] = {
                "method": "FaceShield",
                "sampler": sampler,
                "semantics": SEMANTICS.get(sampler, "?"),
                "setting": f"ε={float(node.get('epsilon', float('nan'))):g}",
            }
        else:
            node = baselines.get(name, {})
            target = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
            settings = ", ".join(f"{k}={v}" for k, v in node.items() if not k.startswith("_"))
            out[name] = {
                "method": target,
                "sampler": "-",
                "semantics": "ε-DP on m-pixel neighbourhoods" if target == "DPPix" else "no DP",
                "setting": settings or "-",
            }
    return out


def judges_and_fars(run: Mapping[str, Any], variant: str) -> tuple[list[str], list[float]]:
    """The judges (recognizers) and FARs a run reported for ``variant``, from its metric names."""
    judges, fars = {}, {}
    for key in run:
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == "test" and parts[1] == variant and _present(run[key]):
            judges[parts[2]] = None
            match = _TAR.match(parts[3])
            if match:
                fars[float(match.group(1))] = None
    return list(judges), sorted(fars)


@register_report("faceshield")
def paper_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, test data, variant), as the evaluation run's own results table."""
    tables = []
    for run in runs.to_dict("records"):
        variants = describe_variants(run)
        if not variants:  # a Stage I run, or a run without evaluation: no row in this table
            continue
        judges, fars = judges_and_fars(run, next(iter(variants)))
        table = pd.DataFrame(variant_rows(variants, judges, run, fars))
        table.insert(0, "experiment", run.get("experiment"))
        table.insert(1, "test data", dataset_label(run))
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
