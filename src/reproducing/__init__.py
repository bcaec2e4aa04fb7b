"""``python -m src.reproduce``: run a paper's table (its registered rows) and report it.

:mod:`.plan` picks rows and orders them by dependency, :mod:`.records` decides which rows can reuse a complete
run (same config hash, same commit), :mod:`.costs` and :mod:`.datasets` estimate GPU hours, :mod:`.dryrun`
prints the plan without running anything, :mod:`.running` runs the rows through a launcher and records them,
:mod:`.report` writes the paper's report from the runs used. Tables are declared by the papers
(``src/papers/<paper>/tables.py``, :func:`src.papers.registry.register_table`); ``docs/reproducing.md``.
"""

from src.reproducing.costs import REFERENCE_GPU, CostError, Estimate, FlopCache, estimate
from src.reproducing.datasets import DATASET_SIZES, DatasetSize
from src.reproducing.dryrun import Checker, Finding, RowPlan, plan_rows, print_plan
from src.reproducing.plan import DEFAULT_TABLE, PlanError, find_table, levels, select_rows
from src.reproducing.records import GitHead, composed_hash, config_hash, find_reusable
from src.reproducing.report import pins_for, reproduce_report
from src.reproducing.running import BLOCKED, FAILED, RAN, REUSED, Reproduction, RowOutcome, write_record

__all__ = [
    "BLOCKED",
    "DATASET_SIZES",
    "DEFAULT_TABLE",
    "FAILED",
    "RAN",
    "REFERENCE_GPU",
    "REUSED",
    "Checker",
    "CostError",
    "DatasetSize",
    "Estimate",
    "Finding",
    "FlopCache",
    "GitHead",
    "PlanError",
    "Reproduction",
    "RowOutcome",
    "RowPlan",
    "composed_hash",
    "config_hash",
    "estimate",
    "find_reusable",
    "find_table",
    "levels",
    "pins_for",
    "plan_rows",
    "print_plan",
    "reproduce_report",
    "select_rows",
    "write_record",
]
