"""FaceShield's table (docs/papers/faceshield.md, "Evaluation"): one row per (experiment, test data,
variant) with the columns each evaluation run prints itself (:func:`variant_rows`), rebuilt from the run's
configuration columns and logged metrics (nothing is instantiated from a run record)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from src.analysis.runs import dataset_label
from src.config.instantiate import instantiate_untrusted
from src.papers.faceshield.evaluation import SEMANTICS, describe_baseline, variant_rows
from src.papers.registry import register_report
from src.utils.tables import is_missing

#: why ``python -m src.report`` has no published numbers to show beside this paper's rows
NO_PUBLISHED_NUMBERS = "there is no public paper, only the authors' code: no published table to compare with"

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
    """What each evaluated variant of a run was, perturbators then baselines in configuration order (as the
    run's own table), from its configuration columns; baselines are rebuilt (registered targets only) so
    their setting reads as the run printed it."""
    evaluated = {
        key.split("/")[1]
        for key in run
        if key.startswith("test/") and key.endswith("/ssim") and _present(run[key])
    }
    out: dict[str, dict[str, Any]] = {}
    for name, node in _nodes(run, PERTURBATORS).items():
        if name in evaluated:
            sampler = str(node.get("sampler", "faceshield_repo"))
            out[name] = {
                "method": "FaceShield",
                "sampler": sampler,
                "semantics": SEMANTICS.get(sampler, "?"),
                "setting": f"ε={float(node.get('epsilon', float('nan'))):g}",
            }
    for name, node in _nodes(run, BASELINES).items():
        if name in evaluated:
            out[name] = _described(run, name, node)
    return out


def _described(run: Mapping[str, Any], name: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline rebuilt and described as the run did; its configured arguments when it cannot be built."""
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in node.items()}
    try:
        obfuscator = instantiate_untrusted(
            config, source=f"{run.get('run_dir', '?')}/config.yaml", key=f"model.baselines.{name}"
        )
    except Exception:  # a report must not fail because one baseline cannot be built here
        target = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
        settings = {k: v for k, v in node.items() if not k.startswith("_")}
        return describe_baseline(None, method=target, settings=settings, dp=target == "DPPix")
    return describe_baseline(obfuscator)


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
