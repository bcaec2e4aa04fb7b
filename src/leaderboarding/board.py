"""One leaderboard run: resolve every contender's and judge's checkpoint, judge them all, write the reports.

A checkpoint comes, in this order, from the panel's ``checkpoints`` (or ``--checkpoint id=file``), from a
runs directory (``--runs``: the newest run checkpoint whose model the method serves), or — with
``train_demo`` — from the paper's ``leaderboard`` table (trained here, or reused). A contender with none is
**listed** with the reason and how to get one, never dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from src.inference.checkpoints import open_method_checkpoint
from src.inference.methods import DetectionMethod
from src.leaderboarding.contenders import Entrant, all_contenders, all_judges, pick, pick_judges
from src.leaderboarding.data import load_faces
from src.leaderboarding.outputs import write_leaderboard
from src.leaderboarding.panel import Panel, PanelError
from src.leaderboarding.recognizers import RecognizerUnavailable, build_panel_recognizer
from src.leaderboarding.runner import (
    REFERENCE_ID,
    Built,
    Judge,
    Judging,
    build_contender,
    epsilons,
    score_originals,
    timed,
)
from src.leaderboarding.training import DemoTrainer
from src.networks.recognizers.checkpoints import sha256_file
from src.papers.registry import METHODS, Contender, served_targets
from src.serving.catalog import checkpoint_record, find_run_checkpoints
from src.utils.checkpoint_files import CheckpointError
from src.utils.run_record import git_state, now_iso, write_json

__all__ = ["LeaderboardResult", "run_leaderboard"]

Echo = Callable[[str], None]
DEMO_NOTE = (
    "demo checkpoints: a few training steps on synthetic data (the papers' `leaderboard` tables); these "
    "numbers show the protocol at work and say nothing about the methods"
)


@dataclass
class LeaderboardResult:
    """The leaderboard table, the files written and the run's own record."""

    table: pd.DataFrame
    files: dict[str, Path]
    record: Path
    seconds: float
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class _Checkpoints:
    """Where checkpoints come from for this run."""

    given: Mapping[str, str]
    runs: Path | None
    trainer: DemoTrainer | None
    _found: list[tuple[Path, str | None]] | None = None

    def _run_checkpoints(self) -> list[tuple[Path, str | None]]:
        if self._found is None:
            self._found = []
            if self.runs is not None:
                for path in find_run_checkpoints(self.runs):
                    try:
                        self._found.append((path, checkpoint_record(path).model_target))
                    except CheckpointError:
                        continue
        return self._found

    def resolve(
        self, keys: Sequence[str], method: str, paper: str, demo_row: str | None, *, search_runs: bool = True
    ) -> tuple[Path | None, str]:
        """(checkpoint, how it was found) or (None, why there is none and how to get one).

        ``search_runs=False`` skips the runs directory: forgery judges, several of which a single detector
        method may serve (Xception, EfficientNet-B4 and SBI), are named explicitly or trained as demo rows.
        """
        for key in keys:
            if key in self.given:
                path = Path(self.given[key]).expanduser()
                if not path.is_file():
                    return None, f"missing checkpoint: {path} (given for '{key}') does not exist"
                return path, f"given ({path})"
        entry = METHODS[method]
        if self.runs is not None and search_runs:
            targets = set(served_targets(entry))
            matching = [path for path, target in self._run_checkpoints() if target in targets]
            if matching:
                newest = max(matching, key=lambda p: p.stat().st_mtime)
                return newest, f"newest run checkpoint under {self.runs}"
        if self.trainer is not None and demo_row is not None:
            outcome = self.trainer.demo_checkpoint(paper, demo_row)
            if outcome.checkpoint is not None:
                return outcome.checkpoint, f"demo row {paper}/{demo_row} ({outcome.run_dir})"
            return None, f"failed: demo row {paper}/{demo_row}: {outcome.reason}"
        hint = f" (e.g. the best.ckpt of a run of experiment={entry.experiment})" if entry.experiment else ""
        demo = " or --train-demo" if demo_row is not None else ""
        return None, f"missing checkpoint: give --checkpoint {keys[0]}=<file>{hint}{demo}"


def _recognizers(panel: Panel, trainer: DemoTrainer | None, echo: Echo) -> tuple[dict, dict[str, str]]:
    built, unavailable = {}, {}
    for spec in panel.recognizers:
        name = spec["name"]
        train = panel.recognizer_train(name)
        if train is not None:
            if trainer is None:
                unavailable[name] = "trained by the panel: needs --train-demo (or give it a checkpoint)"
                continue
            outcome = trainer.train(name, train.experiment, train.overrides)
            if outcome.checkpoint is None:
                unavailable[name] = f"its training failed: {outcome.reason}"
                continue
            spec = {"name": name, "checkpoint": str(outcome.checkpoint)}
        try:
            built[name] = build_panel_recognizer(spec, panel.device)
        except RecognizerUnavailable as exc:
            unavailable[name] = str(exc)
            echo(f"[leaderboard] recognizer {name} unavailable: {exc}")
    return built, unavailable


def _judges(panel: Panel, sources: _Checkpoints, wanted: Sequence[str] | None, echo: Echo) -> list[Judge]:
    judges = []
    for paper, judge in pick_judges(all_judges(), wanted):
        path, how = sources.resolve([judge.name], judge.method, paper, judge.demo_row, search_runs=False)
        if path is None:
            judges.append(Judge(paper, judge, None, None, how))
            continue
        try:
            method = METHODS[judge.method].build(open_method_checkpoint(path), panel.device)
        except Exception as exc:
            judges.append(Judge(paper, judge, None, path, f"failed: {type(exc).__name__}: {exc}"))
            continue
        if not isinstance(method, DetectionMethod):
            judges.append(Judge(paper, judge, None, path, f"failed: {judge.method} is not a detector"))
            continue
        echo(f"[leaderboard] forgery judge {judge.label}: {how}")
        judges.append(Judge(paper, judge, method, path, "ok", sha256_file(path)))
    return judges


def _with_options(entrant: Entrant, options: Mapping[str, Mapping[str, Any]]) -> Entrant:
    """The entrant with the panel's options for its method, then for its id, over its registered ones."""
    contender = entrant.contender
    extra = {**options.get(contender.method, {}), **options.get(entrant.id, {})}
    if not extra:
        return entrant
    return Entrant(entrant.paper, replace(contender, options={**contender.options, **extra}))


def _about(built: Built, how: str) -> dict[str, Any]:
    entrant = built.entrant
    return {
        "entrant": entrant.id,
        "method": entrant.contender.method,
        "paper": entrant.paper,
        "variant": entrant.contender.variant,
        "options": dict(entrant.contender.options),
        "checkpoint": str(built.checkpoint) if built.checkpoint else None,
        "checkpoint_sha256": built.sha256,
        "checkpoint_from": how,
        "privacy_record": built.provenance,
    }


def _base_row(entrant: Entrant, status: str) -> dict[str, Any]:
    return {
        "method id": entrant.id,
        "method": entrant.contender.method,
        "paper": entrant.paper,
        "variant": entrant.contender.variant,
        "status": status,
    }


def _summaries(table: pd.DataFrame, recognizers: Sequence[str]) -> pd.DataFrame:
    """``worst rank-1`` / ``worst TAR`` over the panel's recognizers, and ``privacy`` (1 − the worst)."""
    ranks = [f"{n} rank-1" for n in recognizers if f"{n} rank-1" in table]
    tars = [c for c in table.columns if any(c.startswith(f"{n} TAR@") for n in recognizers)]
    table["worst rank-1"] = table[ranks].max(axis=1, skipna=True) if ranks else math.nan
    table["worst TAR"] = table[tars].max(axis=1, skipna=True) if tars else math.nan
    table["privacy"] = 1.0 - table["worst rank-1"].where(table["worst rank-1"].notna(), table["worst TAR"])
    return table


def run_leaderboard(
    panel: Panel,
    *,
    runs_root: Path,
    out: Path,
    methods: Sequence[str] | None = None,
    judges: Sequence[str] | None = None,
    checkpoints: Mapping[str, str] | None = None,
    runs: Path | None = None,
    train_demo: bool | None = None,
    force: bool = False,
    echo: Echo = print,
) -> LeaderboardResult:
    """Judge the contenders ``methods`` names (the panel's when None) and write ``out/leaderboard.*``."""
    start = time.perf_counter()
    if runs is not None and not Path(runs).is_dir():
        raise PanelError(f"runs directory {runs} does not exist or is not a folder")
    entrants = [
        _with_options(entrant, panel.options)
        for entrant in pick(all_contenders(), methods if methods is not None else panel.methods)
    ]
    train = panel.train_demo if train_demo is None else train_demo
    trainer = DemoTrainer(runs_root, echo, force) if train else None
    sources = _Checkpoints({**panel.checkpoints, **(checkpoints or {})}, runs, trainer)
    done = timed(echo, "panel images")
    test = load_faces(panel.datamodule, panel.data_overrides, panel.split, panel.images, echo=echo)
    attacker = panel.attacker
    train_faces = (
        load_faces(
            attacker["datamodule"], attacker["overrides"], attacker["split"], attacker["images"], echo=echo
        )
        if attacker is not None
        else None
    )
    done()
    recognizers, unavailable = _recognizers(panel, trainer, echo)
    judged_by = _judges(panel, sources, judges if judges is not None else panel.judges, echo)
    records_root = runs_root / "leaderboard" / panel.name
    judging = Judging(panel, test, train_faces, recognizers, judged_by, records_root, force, echo)
    rows = []
    reference = Built(Entrant("", Contender(REFERENCE_ID)), "reference")
    rows.append(
        {**_base_row(reference.entrant, "reference"), **judging.judge(reference, {"entrant": REFERENCE_ID})}
    )
    for i, entrant in enumerate(entrants, 1):
        echo(f"[leaderboard] contender {i}/{len(entrants)}: {entrant.id}")
        contender = entrant.contender
        path, how = sources.resolve(
            [entrant.id, contender.method], contender.method, entrant.paper, contender.demo_row
        )
        if METHODS[contender.method].needs_checkpoint and path is None:
            rows.append(_base_row(entrant, how))
            continue
        try:
            built = build_contender(entrant, path, panel.device)
        except Exception as exc:
            rows.append(_base_row(entrant, f"failed: {type(exc).__name__}: {' '.join(str(exc).split())}"))
            continue
        nominal, certified = epsilons(built)
        row = {**_base_row(entrant, "ok"), "ε (nominal)": nominal, "ε (certified)": certified}
        try:
            row.update(judging.judge(built, _about(built, how)))
        except Exception as exc:
            row["status"] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        rows.append(row)
    table = _summaries(pd.DataFrame(rows), list(recognizers))
    extra = {
        "Forgery judges on the original (unprotected) faces": pd.DataFrame(
            score_originals(judged_by, test.images, panel.forgery_threshold, panel.batch_size)
        ),
        "Recognizer panel": _recognizer_table(panel, recognizers, unavailable, judging.exclusions),
    }
    notes = [
        f"panel `{panel.name}` ({panel.source.name}): {panel.description}".rstrip(": "),
        f"{test.describe()} ({panel.datamodule}, {panel.split} split)",
        "privacy = 1 − the worst (highest) rank-1 over the recognizer panel; a recognizer used in a method's "
        "training does not judge it (see the recognizer panel table)",
    ]
    if train:
        notes.append(DEMO_NOTE)
    notes.extend(judging.notes)
    out.mkdir(parents=True, exist_ok=True)
    files = write_leaderboard(
        table,
        out,
        title=f"Leaderboard — panel {panel.name}",
        notes=notes,
        panel=_shown_panel(panel),
        extra_tables=extra,
    )
    seconds = time.perf_counter() - start
    record = records_root / "leaderboard.json"
    records_root.mkdir(parents=True, exist_ok=True)
    write_json(
        record,
        {
            "panel": _shown_panel(panel),
            "finished": now_iso(),
            "seconds": round(seconds, 1),
            "commit": git_state().get("commit"),
            "files": {k: str(v) for k, v in files.items()},
            "rows": table.where(table.notna(), None).to_dict(orient="records"),
        },
    )
    echo(f"[leaderboard] {len(entrants)} contender(s) in {seconds / 60:.1f} min; record {record}")
    return LeaderboardResult(table, files, record, seconds, extra)


def _shown_panel(panel: Panel) -> dict[str, Any]:
    """The panel as records show it (its test key left out: records never hold keys or passwords)."""
    return {k: v for k, v in panel.raw.items() if k != "password"}


def _recognizer_table(
    panel: Panel,
    built: Mapping[str, Any],
    unavailable: Mapping[str, str],
    exclusions: Mapping[str, Mapping[str, str]],
) -> pd.DataFrame:
    rows = []
    for spec in panel.recognizers:
        name = spec["name"]
        excluded = exclusions.get(name, {})
        rows.append(
            {
                "recognizer": name,
                "status": "ok" if name in built else f"unavailable: {unavailable.get(name, '')}",
                "source": ", ".join(f"{k}={v}" for k, v in built[name].source.items())
                if name in built
                else "",
                "not judging (used in their training)": "; ".join(f"{k}: {v}" for k, v in excluded.items()),
            }
        )
    return pd.DataFrame(rows)
