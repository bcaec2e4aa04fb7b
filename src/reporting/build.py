"""Assemble a paper's report: pick one run per experiment, apply the paper's layout, merge published numbers.

The rule for picking runs is in :mod:`src.reporting.selection`; this module applies it to the run records
under a folder, honours pinned runs, and writes the notes that say which run gave each row, which runs were
left out and why, and which experiment files of the paper have no row. Published numbers
(``experiments/<paper>/published.csv``) are checked and merged by :mod:`src.reporting.published`; a paper
without that file says why in its report module (:data:`NO_PUBLISHED_ATTRIBUTE`), and the report prints it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from src.analysis.runs import Run, RunRecordError, find_runs, load_run, run_row
from src.papers.registry import REPORT_LAYOUTS, PaperInfo, discover
from src.reporting.catalog import Catalog, experiment_catalog
from src.reporting.errors import ReportError
from src.reporting.published import (
    PUBLISHED_FILE,
    Comparison,
    add_published,
    comparison_notes,
    read_published,
)
from src.reporting.selection import Judge, Judgement, has_test_metrics, short_commit
from src.utils.tables import natural_key

#: the attribute of a paper's report module (``src/papers/<paper>/report.py``) saying why the paper has no
#: published numbers to compare with (a tool, a closed-access paper, ...); printed in the report
NO_PUBLISHED_ATTRIBUTE = "NO_PUBLISHED_NUMBERS"
RUNS_COLUMNS = (
    "experiment",
    "run_id",
    "commit",
    "task",
    "overrides",
    "pinned",
    "eligible",
    "reasons",
    "run_dir",
)


@dataclass
class Report:
    """A paper's table, the notes printed under it and the run behind each experiment's rows."""

    paper: str
    table: pd.DataFrame
    notes: list[str]
    #: one row per run used: :data:`RUNS_COLUMNS`
    runs: pd.DataFrame
    #: paper → what merging its ``published.csv`` found (only the papers that have one)
    comparisons: dict[str, Comparison] = field(default_factory=dict)


@dataclass
class _Choice:
    judgement: Judgement
    pinned: bool = False


@dataclass
class _Records:
    """The run records under a runs folder, read once (unreadable ones kept with their error)."""

    root: Path
    by_dir: dict[Path, Run] = field(default_factory=dict)
    unreadable: dict[Path, str] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path) -> _Records:
        records = cls(root)
        for run_dir in find_runs(root):
            records.load(run_dir)
        return records

    def load(self, run_dir: Path) -> Run | None:
        """The run in ``run_dir`` (read once; ``None`` when its record cannot be read)."""
        key = run_dir.resolve()
        if key not in self.by_dir and key not in self.unreadable:
            try:
                self.by_dir[key] = load_run(run_dir, root=self.root, read_wandb=False)
            except (RunRecordError, FileNotFoundError) as exc:
                self.unreadable[key] = str(exc)
        return self.by_dir.get(key)


def model_target(run: Run) -> str | None:
    """The ``_target_`` of a run's model config."""
    model = run.config.get("model")
    return str(model.get("_target_")) if isinstance(model, Mapping) and model.get("_target_") else None


def generic_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment with its test metrics (for papers that register no report layout)."""
    metrics = sorted(
        (c for c in runs.columns if c.startswith("test/") and runs[c].notna().any()), key=natural_key
    )
    table = runs[["experiment", *metrics]].copy()
    table.columns = ["experiment", *(c.removeprefix("test/") for c in metrics)]
    return table


def no_published_reason(paper: str) -> str | None:
    """Why ``paper`` has no published numbers, as its report module says (``None`` when it says nothing)."""
    layout = REPORT_LAYOUTS.get(paper)
    module = inspect.getmodule(layout) if layout is not None else None
    reason = getattr(module, NO_PUBLISHED_ATTRIBUTE, None)
    return str(reason) if reason else None


def merge_published(
    table: pd.DataFrame, paper: str, experiments_dir: Path
) -> tuple[pd.DataFrame, list[str], Comparison | None]:
    """Add the published numbers of ``experiments/<paper>/published.csv`` (:mod:`src.reporting.published`);
    returns (table, notes, comparison). Without the file the notes say "no published numbers available"."""
    path = experiments_dir / paper / PUBLISHED_FILE
    shown = str(path.relative_to(experiments_dir.parent))
    if not path.is_file():
        reason = no_published_reason(paper) or f"there is no {shown}"
        return table, [f"No published numbers available for {paper}: {reason}."], None
    merged, comparison = add_published(table, read_published(path, table))
    return merged, comparison_notes(comparison, shown), comparison


def _newest_first(judgements: list[Judgement]) -> list[Judgement]:
    def when(j: Judgement) -> tuple[str, str]:
        meta = j.run.meta
        return str(meta.get("end_time") or meta.get("start_time") or ""), j.run.run_id

    return sorted(judgements, key=when, reverse=True)


def _pinned(
    pins: Mapping[str, Path], info: PaperInfo, known: set[str], records: _Records, judge: Judge
) -> dict[str, _Choice]:
    """The pinned run of each named experiment; a clear error for an unknown experiment or a foreign run."""
    chosen = {}
    for experiment, run_dir in pins.items():
        where = f"--run {experiment}={run_dir}"
        if experiment not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ReportError(f"{where}: '{experiment}' is not an experiment of '{info.name}' ({listed})")
        if not (Path(run_dir) / "meta.json").is_file():
            raise ReportError(f"{where}: {run_dir} is not a run directory (no meta.json)")
        run = records.load(Path(run_dir))
        if run is None:
            error = records.unreadable[Path(run_dir).resolve()]
            raise ReportError(f"{where}: cannot read the run record: {error}")
        if model_target(run) not in info.targets:
            raise ReportError(f"{where}: {run_dir} is a run of {model_target(run)}, not of '{info.name}'")
        if run.experiment != experiment:
            raise ReportError(
                f"{where}: {run_dir} is a run of experiment '{run.experiment}', not '{experiment}'"
            )
        if not has_test_metrics(run.summary):
            raise ReportError(f"{where}: {run_dir} has no test metrics (summary.json), status {run.status}")
        chosen[experiment] = _Choice(judge(run), pinned=True)
    return chosen


def _choose(
    judgements: list[Judgement], pinned: dict[str, _Choice], include_overrides: bool
) -> dict[str, _Choice]:
    chosen = dict(pinned)
    for judgement in _newest_first(judgements):
        experiment = judgement.run.experiment
        if experiment not in chosen and judgement.usable(include_overrides):
            chosen[experiment] = _Choice(judgement)
    return dict(sorted(chosen.items()))


def _runs_frame(chosen: dict[str, _Choice]) -> pd.DataFrame:
    rows = [
        {
            "experiment": experiment,
            "run_id": c.judgement.run.run_id,
            "commit": short_commit(c.judgement.run.meta),
            "task": c.judgement.run.meta.get("task", "?"),
            "overrides": json.dumps(list(c.judgement.run.overrides)),  # values may hold spaces
            "pinned": c.pinned,
            "eligible": c.judgement.eligible,
            "reasons": json.dumps([*c.judgement.problems, *c.judgement.deviations]),
            "run_dir": str(c.judgement.run.run_dir),
        }
        for experiment, c in chosen.items()
    ]
    return pd.DataFrame(rows, columns=list(RUNS_COLUMNS))


def _used_note(experiment: str, choice: _Choice) -> str:
    run = choice.judgement.run
    overrides = " ".join(f"`{item}`" for item in run.overrides) or "none"
    line = (
        f"- {experiment}: run {run.run_id} (commit {short_commit(run.meta)}, {run.meta.get('task', '?')}), "
        f"overrides: {overrides}"
    )
    if choice.pinned:
        line += " — pinned with --run"
    if not choice.judgement.eligible:
        line += f" — used although not eligible: {choice.judgement.reasons}"
    return line


def _excluded_notes(
    judgements: list[Judgement], chosen: dict[str, _Choice], expected: list[str], include_overrides: bool
) -> list[list[str]]:
    """Sections of notes: runs left out (other than older usable ones) and the experiments without a row."""
    left_out: dict[str, list[Judgement]] = {}
    older = 0
    used = {c.judgement.run.run_dir for c in chosen.values()}
    for judgement in judgements:
        if judgement.run.run_dir in used:
            continue
        if judgement.usable(include_overrides):
            older += 1
        else:
            left_out.setdefault(judgement.run.experiment, []).append(judgement)

    def summary(experiment: str) -> list[str]:
        found = _newest_first(left_out[experiment])
        return [
            f"- {experiment}: {len(found)} run(s) excluded",
            *(f"  - {j.run.run_id}: {j.reasons}" for j in found),
        ]

    sections = []
    if older:
        sections.append([f"Not used: {older} older {'usable' if include_overrides else 'eligible'} run(s)."])
    with_row = [e for e in sorted(left_out) if e in chosen]
    if with_row:
        heading = "Also excluded (these experiments have a row from another run):"
        sections.append([heading, *(line for e in with_row for line in summary(e))])
    missing = [e for e in sorted({*expected, *left_out}) if e not in chosen]
    if missing:
        excluded = [e for e in missing if e in left_out]
        never = [e for e in missing if e not in left_out]
        hint = " (--include-overrides or --run EXPERIMENT=RUN_DIR uses an excluded run)"
        section = [
            f"No row for {len(missing)} experiment(s) of this paper"
            + (hint if excluded and not include_overrides else "")
            + ":",
            *(line for e in excluded for line in summary(e)),
        ]
        if never:
            section.append(f"- no run at all ({len(never)}): {', '.join(never)}")
        sections.append(section)
    return sections


def build_report(
    paper: str,
    runs_root: Path,
    experiments_dir: Path,
    *,
    include_overrides: bool = False,
    pins: Mapping[str, Path] | None = None,
) -> Report:
    """The paper's table from the newest eligible run of each of its experiments (or the pinned ones)."""
    papers = discover()
    if paper not in papers:
        raise ReportError(f"unknown paper '{paper}'; registered: {', '.join(papers)}")
    info = papers[paper]
    runs_root, experiments_dir = Path(runs_root), Path(experiments_dir)
    if not experiments_dir.is_dir():
        raise ReportError(f"experiments folder not found: {experiments_dir}")
    catalog: Catalog = experiment_catalog(experiments_dir)
    if not runs_root.is_dir():
        raise ReportError(f"runs folder not found: {runs_root}")
    records = _Records.read(runs_root)
    judge = Judge(catalog.required, records.load)
    mine = [judge(run) for run in list(records.by_dir.values()) if model_target(run) in info.targets]
    expected = catalog.of_targets(info.targets)
    known = {*expected, *(j.run.experiment for j in mine)}
    pinned = _pinned(pins or {}, info, known, records, judge)
    chosen = _choose(mine, pinned, include_overrides)
    excluded = _excluded_notes(mine, chosen, expected, include_overrides)
    if not chosen:
        found = f"{len(mine)} run(s) of '{paper}'" if mine else f"no run of '{paper}' ({info.target})"
        lines = [line for section in excluded for line in section]
        raise ReportError("\n".join([f"nothing to report: {found} under {runs_root}", *lines]))

    frame = pd.DataFrame([run_row(c.judgement.run) for c in chosen.values()])
    table = REPORT_LAYOUTS.get(paper, generic_table)(frame)
    table, published, comparison = merge_published(table, paper, experiments_dir)
    allowed = (
        " (--include-overrides: runs with overrides and sweep points allowed)" if include_overrides else ""
    )
    sections = [
        [
            f"{info.headline}. Rebuilt from {len(chosen)} run(s) under {runs_root}{allowed}:",
            *(_used_note(e, c) for e, c in chosen.items()),
        ],
        published,
        *excluded,
    ]
    if records.unreadable:
        unreadable = sorted(records.unreadable.items())
        sections.append(
            [f"Unreadable run records skipped ({len(unreadable)}):", *(f"- {p}: {e}" for p, e in unreadable)]
        )
    notes = [line for section in sections for line in ("", *section)][1:]  # a blank line between sections
    comparisons = {paper: comparison} if comparison is not None else {}
    return Report(paper, table, notes, _runs_frame(chosen), comparisons)


def build_combined_report(
    papers: list[str],
    runs_root: Path,
    experiments_dir: Path,
    *,
    include_overrides: bool = False,
    pins: Mapping[str, Path] | None = None,
) -> Report:
    """Several papers' tables stacked (a leading ``paper`` column; their layouts share columns where they
    report the same things, e.g. every detection paper), with each paper's notes under its name. A paper
    with nothing to report is named in the notes; an error only when none has anything."""
    if len(set(papers)) != len(papers):
        raise ReportError(f"a paper is named twice: {papers}")
    tables, notes, runs, empty = [], [], [], []
    comparisons: dict[str, Comparison] = {}
    for paper in papers:
        try:
            report = build_report(
                paper, runs_root, experiments_dir, include_overrides=include_overrides, pins=pins
            )
        except ReportError as exc:
            if "nothing to report" not in str(exc):
                raise
            empty.append(f"- {paper}: {str(exc).splitlines()[0]}")
            continue
        tables.append(report.table.assign(paper=paper)[["paper", *report.table.columns]])
        notes += ["", f"[{paper}]", *report.notes]
        runs.append(report.runs.assign(paper=paper))
        comparisons |= report.comparisons
    if not tables:
        raise ReportError("nothing to report for any of " + ", ".join(papers) + "\n" + "\n".join(empty))
    if empty:
        notes += ["", "Papers without rows:", *empty]
    table = pd.concat(tables, ignore_index=True)
    return Report("+".join(papers), table, notes[1:], pd.concat(runs, ignore_index=True), comparisons)
