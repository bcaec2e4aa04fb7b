"""Registries of papers and of what each paper declares for the shared machinery.

A paper lives in its own package ``src/papers/<paper>/`` and registers itself there, so adding one edits no
shared file (see ``docs/adding-a-paper.md``):

* its LightningModule, with ``@register_paper("name", title=..., venue=..., kind=...)`` (a paper trained in
  stages names its other stages' modules with ``stages=(...)``);
* its tiny test settings (:class:`TinySettings`, overrides that make a ``fast_dev_run`` CPU-cheap), with
  :func:`register_tiny_settings`;
* its report layout (run records → the paper's table), with ``@register_report("name")``;
* its cost-benchmark entries (:class:`CostEntry`), with :func:`register_cost`;
* its weights-manifest fragment: a ``weights.yaml`` file next to its module, read by :mod:`src.weights`;
* its own obfuscators with :func:`src.obfuscators.base.register_obfuscator`;
* the methods it serves to people (SDK, CLI, web portal; :class:`MethodEntry`), with :func:`register_method`;
* how it enters the cross-paper leaderboard (``python -m src.leaderboard``, ``leaderboard.py``): its
  protection methods' configurations (:class:`Contender`, :func:`register_contenders`), its frame
  detectors that judge protected faces (:class:`ForgeryJudge`, :func:`register_forgery_judges`), and a
  :data:`LEADERBOARD_TABLE` table whose rows train their CPU-sized demo checkpoints;
* its tables for ``python -m src.reproduce`` (``tables.py``): :func:`register_table` declares a table (its
  ``demo`` one, CPU-sized on synthetic data, and its ``paper`` one, the published rows) as ordered
  :class:`TableRow` s. A row names an experiment file, the task that runs it (``train`` → ``python -m
  src.train``, ``eval`` → ``python -m src.eval``), fixed overrides (only ones the report counts as harmless,
  so the row's run stays eligible for the paper's table), placeholders ``{best_ckpt:ROW}`` / ``{run_dir:ROW}``
  that make it depend on an earlier row's output (its selected checkpoint, its run directory),
  :class:`Preparation` steps run before it (synthetic demo data, a network exported from an earlier row) and
  its :class:`RowCost` (which cost-entry networks and passes run on which dataset, for the dry-run's
  GPU-hour estimate). Experiment files of the paper that are no row of any table are listed with the reason
  in ``excluded``.

:func:`discover` imports every module of every paper package; shared code reads the registries, never a paper
name.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl

from src.config.buildable import former_targets_of
from src.config.buildable import formerly as former_names

KINDS = ("privacy", "security", "baseline", "tool")
PAPERS_PACKAGE = "src.papers"
_OWN_MODULES = frozenset({f"{PAPERS_PACKAGE}.registry"})


@dataclass(frozen=True)
class PaperInfo:
    """What the registry knows about one LightningModule."""

    name: str
    cls: type[pl.LightningModule]
    title: str
    venue: str
    kind: str
    formerly: tuple[str, ...] = ()
    stages: tuple[type[pl.LightningModule], ...] = ()

    @property
    def target(self) -> str:
        """The ``_target_`` string that builds this module from YAML."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    @property
    def stage_targets(self) -> tuple[str, ...]:
        """The ``_target_`` strings of the paper's other training stages (their own LightningModules)."""
        return tuple(f"{cls.__module__}.{cls.__qualname__}" for cls in self.stages)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every ``_target_`` run records of this paper may name: the module's (today's and those before it
        moved) and its other stages' (likewise)."""
        stage_formers = tuple(target for cls in self.stages for target in former_targets_of(cls))
        return (self.target, *self.formerly, *self.stage_targets, *stage_formers)

    @property
    def short_title(self) -> str:
        """The paper's name as written in text (the title up to its colon, e.g. ``PRO-Face S``)."""
        return self.title.split(":", 1)[0].strip()

    @property
    def headline(self) -> str:
        """The title with its venue in parentheses, or alone when there is no venue (baselines, tools)."""
        return f"{self.title} ({self.venue})" if self.venue.strip(" -") else self.title

    @property
    def package(self) -> str:
        """The paper's own package (``src.papers.<name>``)."""
        return self.cls.__module__.rsplit(".", 1)[0]


@dataclass(frozen=True)
class TinySettings:
    """Overrides that shrink a paper's experiments to a few seconds of CPU work (for tests only).

    Values may use ``{tiny_data}`` (the root of the miniature datasets the tests build) and ``{fixtures}``
    (the reference fixtures directory, skipped when absent); the test helpers replace these two placeholders
    and leave every other brace (``${...}`` interpolations, ``{_target_: ...}`` values) as written.
    """

    #: applied to every experiment whose model is this paper's module
    model: tuple[str, ...] = ()
    #: experiment-name glob → further overrides (all matching globs apply, in order)
    experiments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: experiment globs whose networks stay paper-scale even with tiny data: their runs are slow tests
    slow: tuple[str, ...] = ()
    #: experiment globs whose tiny version reads the reference fixtures (skipped without them)
    needs_fixtures: tuple[str, ...] = ()
    #: test values for ``???`` keys the paper's experiments leave to the command line (key → value)
    required: Mapping[str, str] = field(default_factory=dict)
    #: files its tiny experiments read, path relative to ``{tiny_data}`` → ``builder(path)`` writing it
    #: (e.g. a checkpoint in a released layout); the tests build them once, after the miniature datasets
    files: Mapping[str, Callable[[Path], Any]] = field(default_factory=dict)


ReportLayout = Callable[[pd.DataFrame], pd.DataFrame]
Passes = Callable[[Any, int, int, Any], Mapping[str, Callable[[], Any]]]


@dataclass(frozen=True)
class CostEntry:
    """One network of a paper as the cost benchmark measures it (parameters, FLOPs, ms per image)."""

    #: label in the cost table (e.g. the network's name in the paper)
    network: str
    #: builds the network with its default arguments (random weights: cost does not depend on them)
    build: Callable[[], Any]
    #: the published parameter count; the benchmark fails when the built network differs
    params: int
    #: (input side, label) pairs at which FLOPs and runtime are measured
    sizes: tuple[tuple[int, str], ...]
    #: ``passes(net, batch, size, device)`` → {pass name: closure over fixed inputs}
    passes: Passes


DEPENDENCY = re.compile(r"\{(best_ckpt|run_dir):([^{}:]+)\}")
"""``{best_ckpt:ROW}`` / ``{run_dir:ROW}`` in a row's overrides: the selected checkpoint / the run directory
of the earlier row ``ROW`` (of this reproduction, or its reused complete run)."""
TASKS = ("train", "eval")


@dataclass(frozen=True)
class Preparation:
    """A step run before a row: writes files its experiment reads (synthetic demo data, an exported network).

    ``run(run_dirs)`` gets ``{row name: run dir}`` of the rows in ``needs``; ``done()`` says whether its
    outputs are already there (then it is not run again, unless a row it needs ran anew in this reproduction).
    """

    #: short label shown in plans and progress lines
    name: str
    #: what it writes, e.g. the folder (shown by the dry-run)
    writes: str
    run: Callable[[Mapping[str, Path]], Any]
    done: Callable[[], bool]
    #: rows whose run directories it reads (they run, or are reused, first)
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class CostUse:
    """One cost-entry network a row runs on every image: its :class:`CostEntry` label, input side, passes."""

    network: str
    size: int
    passes: tuple[str, ...]


@dataclass(frozen=True)
class RowCost:
    """What a row computes per image, for the dry-run's GPU-hour estimate: the networks it runs and the
    dataset it reads (a name in :data:`src.reproducing.datasets.DATASET_SIZES`; the splits and epochs come
    from the composed config)."""

    uses: tuple[CostUse, ...]
    dataset: str


@dataclass(frozen=True)
class TableRow:
    """One row of a reproduction table: an experiment file run by one task, with fixed overrides."""

    #: unique within the table (used by ``--rows`` and in ``{best_ckpt:ROW}``)
    name: str
    #: the experiment file, e.g. ``proface/demo_synthetic``
    experiment: str
    #: ``train`` (python -m src.train) or ``eval`` (python -m src.eval)
    task: str = "train"
    #: ``key=value`` items (harmless ones only), may hold ``{best_ckpt:ROW}`` / ``{run_dir:ROW}``
    overrides: tuple[str, ...] = ()
    prepare: tuple[Preparation, ...] = ()
    cost: RowCost | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        """Earlier rows this row depends on (through its overrides or its preparation steps), in order."""
        found = [name for item in self.overrides for _, name in DEPENDENCY.findall(item)]
        found += [name for step in self.prepare for name in step.needs]
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class PaperTable:
    """A paper's table for ``python -m src.reproduce``: ordered rows and a one-line description."""

    paper: str
    name: str
    rows: tuple[TableRow, ...]
    description: str = ""
    #: experiment files of the paper that are no row of this table → why (e.g. "released weights")
    excluded: Mapping[str, str] = field(default_factory=dict)


MethodBuild = Callable[..., Any]
"""``build(checkpoint, device, **options)`` → a :class:`src.inference.methods.ServedMethod`; ``checkpoint``
is a :class:`src.inference.checkpoints.MethodCheckpoint` (None for methods that need no training)."""


@dataclass(frozen=True)
class MethodEntry:
    """A method a paper serves: applied to people's photos and videos by ``src.sdk.load(name, ckpt=...)``."""

    #: the name users load it by (``proface_s``, ``blur``, ...); unique across papers
    name: str
    #: the registered paper it belongs to
    paper: str
    #: ``protect`` (privacy) or ``detect`` (forgery detection)
    kind: str
    #: ``build(checkpoint, device, **options)`` → the served method
    build: MethodBuild
    #: one line shown in method lists
    summary: str
    #: whether it needs a trained checkpoint (False: e.g. a fixed obfuscator)
    needs_checkpoint: bool = True
    #: an experiment whose checkpoints it serves: the tests build a tiny untrained checkpoint from it
    experiment: str | None = None
    #: keyword options ``build`` accepts → one-line help (the CLI's ``--option key=value``)
    options: Mapping[str, str] = field(default_factory=dict)
    #: whether its protection can be undone (``recover``), and whether it is keyed on a password; known
    #: before the method is built, so method lists can show them (the tests check the built method agrees)
    reversible: bool = False
    needs_password: bool = False
    #: the model ``_target_``s of the checkpoints it serves; empty: the paper's module (today's path and the
    #: former ones), not its earlier training stages (see :func:`served_targets`)
    targets: tuple[str, ...] = ()


#: the name of the table (:func:`register_table`) whose rows train a paper's demo checkpoints for the
#: cross-paper leaderboard (``python -m src.leaderboard``; CPU-sized, seconds per row)
LEADERBOARD_TABLE = "leaderboard"


@dataclass(frozen=True)
class Contender:
    """A protection method in one configuration, as the cross-paper leaderboard judges it.

    Every registered ``protect`` method is judged in its default configuration unless its paper registers
    contenders for it (e.g. one per differential-privacy ε). ``demo_row``: the row of the paper's
    :data:`LEADERBOARD_TABLE` table whose selected checkpoint the demo leaderboard serves it with.
    """

    #: a registered ``protect`` method
    method: str
    #: short name of the configuration (``""``: the default one), e.g. ``eps=1``
    variant: str = ""
    #: the method's build options for this configuration (``MethodEntry.options``)
    options: Mapping[str, Any] = field(default_factory=dict)
    demo_row: str | None = None

    @property
    def id(self) -> str:
        """Unique across the leaderboard: ``method`` or ``method/variant``."""
        return f"{self.method}/{self.variant}" if self.variant else self.method


@dataclass(frozen=True)
class ForgeryJudge:
    """A frame-level forgery detector the leaderboard applies to protected faces (fraction flagged fake)."""

    #: unique across papers, e.g. ``xception``
    name: str
    #: the registered ``detect`` method that serves its checkpoint
    method: str
    #: shown in tables (e.g. ``EfficientNet-B4``)
    label: str
    #: the row of the paper's :data:`LEADERBOARD_TABLE` table whose selected checkpoint the demo uses
    demo_row: str | None = None


METHOD_KINDS = ("protect", "detect")
PAPERS: dict[str, PaperInfo] = {}
TINY_SETTINGS: dict[str, TinySettings] = {}
REPORT_LAYOUTS: dict[str, ReportLayout] = {}
COST_ENTRIES: dict[str, tuple[CostEntry, ...]] = {}
METHODS: dict[str, MethodEntry] = {}
TABLES: dict[str, dict[str, PaperTable]] = {}
CONTENDERS: dict[str, tuple[Contender, ...]] = {}
FORGERY_JUDGES: dict[str, tuple[ForgeryJudge, ...]] = {}


def register_paper(
    name: str,
    *,
    title: str,
    venue: str,
    kind: str,
    formerly: tuple[str, ...] = (),
    stages: tuple[type[pl.LightningModule], ...] = (),
) -> Callable[[type[pl.LightningModule]], type[pl.LightningModule]]:
    """Class decorator adding a LightningModule to :data:`PAPERS` under ``name``.

    ``formerly``: dotted paths the module had before it moved, so old checkpoints and run records still
    build it and still count as its runs. ``stages``: the paper's other LightningModules, for papers trained
    in stages (e.g. a feature extractor first, then a generator on top of it); their runs count as the
    paper's, and the decorated module is the one evaluated and reported.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for stage in stages:
        if not (isinstance(stage, type) and issubclass(stage, pl.LightningModule)):
            raise ValueError(f"paper '{name}': stages must be LightningModule classes, got {stage!r}")

    def decorate(cls: type[pl.LightningModule]) -> type[pl.LightningModule]:
        existing = PAPERS.get(name)
        if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"paper name '{name}' is already registered by {existing.target}")
        PAPERS[name] = PaperInfo(name, cls, title, venue, kind, tuple(formerly), tuple(stages))
        for stage in stages:  # checkpoints and run records of every stage rebuild it
            former_names()(stage)
        return former_names(*formerly)(cls)

    return decorate


def _register_once(registry: dict[str, Any], what: str, name: str, value: Any) -> None:
    if name in registry and registry[name] is not value:
        raise ValueError(f"{what} for paper '{name}' is already registered")
    registry[name] = value


def register_tiny_settings(name: str, settings: TinySettings) -> TinySettings:
    """Declare paper ``name``'s tiny test settings."""
    _register_once(TINY_SETTINGS, "tiny settings", name, settings)
    return settings


def register_report(name: str) -> Callable[[ReportLayout], ReportLayout]:
    """Decorator declaring paper ``name``'s table layout: run records (one row per run) → its table."""

    def decorate(layout: ReportLayout) -> ReportLayout:
        _register_once(REPORT_LAYOUTS, "a report layout", name, layout)
        return layout

    return decorate


def register_cost(name: str, *entries: CostEntry) -> tuple[CostEntry, ...]:
    """Declare the networks of paper ``name`` that the cost benchmark measures."""
    _register_once(COST_ENTRIES, "cost entries", name, tuple(entries))
    return COST_ENTRIES[name]


def register_method(entry: MethodEntry) -> MethodEntry:
    """Declare a method a paper serves (its ``paper`` must be registered by :func:`discover`'s end)."""
    if entry.kind not in METHOD_KINDS:
        raise ValueError(f"method '{entry.name}': kind must be one of {METHOD_KINDS}, got {entry.kind!r}")
    existing = METHODS.get(entry.name)
    if existing is not None and existing != entry:
        raise ValueError(f"method '{entry.name}' is already registered by paper '{existing.paper}'")
    METHODS[entry.name] = entry
    return entry


def register_table(
    paper: str,
    name: str,
    rows: Sequence[TableRow],
    *,
    description: str = "",
    excluded: Mapping[str, str] | None = None,
) -> PaperTable:
    """Declare table ``name`` of ``paper`` (e.g. ``demo``, ``paper``) for ``python -m src.reproduce``.

    Row names must be unique, tasks known, and every ``{best_ckpt:ROW}`` / ``{run_dir:ROW}`` and preparation
    ``needs`` must name an earlier row (so rows run in order and dependencies are acyclic).
    """
    seen: set[str] = set()
    for row in rows:
        where = f"table {paper}/{name}, row '{row.name}'"
        if row.name in seen:
            raise ValueError(f"{where}: the row name is used twice")
        if row.task not in TASKS:
            raise ValueError(f"{where}: task must be one of {TASKS}, got {row.task!r}")
        unknown = [need for need in row.needs if need not in seen]
        if unknown:
            raise ValueError(f"{where}: depends on {unknown}, which are not earlier rows ({sorted(seen)})")
        seen.add(row.name)
    table = PaperTable(paper, name, tuple(rows), description, dict(excluded or {}))
    existing = TABLES.setdefault(paper, {}).get(name)
    if existing is not None and existing != table:
        raise ValueError(f"table '{name}' of paper '{paper}' is already registered")
    TABLES[paper][name] = table
    return table


def register_contenders(paper: str, *contenders: Contender) -> tuple[Contender, ...]:
    """Declare the configurations in which paper ``paper``'s protection methods enter the leaderboard."""
    ids = [contender.id for contender in contenders]
    if len(set(ids)) != len(ids):
        raise ValueError(f"paper '{paper}': contender ids repeat: {ids}")
    _register_once(CONTENDERS, "leaderboard contenders", paper, tuple(contenders))
    return CONTENDERS[paper]


def register_forgery_judges(paper: str, *judges: ForgeryJudge) -> tuple[ForgeryJudge, ...]:
    """Declare paper ``paper``'s frame detectors that judge protected faces on the leaderboard."""
    _register_once(FORGERY_JUDGES, "forgery judges", paper, tuple(judges))
    return FORGERY_JUDGES[paper]


def served_targets(entry: MethodEntry) -> tuple[str, ...]:
    """Model ``_target_``s whose checkpoints ``entry`` serves: its ``targets``, else its paper's module."""
    if entry.targets:
        return entry.targets
    info = PAPERS[entry.paper]
    return (info.target, *info.formerly)


def tiny_settings(name: str) -> TinySettings:
    """Paper ``name``'s tiny settings (empty ones when it needs none)."""
    return TINY_SETTINGS.get(name, TinySettings())


def discover() -> dict[str, PaperInfo]:
    """Import every module of every paper package and return the paper registry (sorted by name).

    Extras registered by a name that is not a paper fail here, so a typo cannot go unnoticed.
    """
    package = importlib.import_module(PAPERS_PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PAPERS_PACKAGE}."):
        if info.name not in _OWN_MODULES:
            importlib.import_module(info.name)
    for what, registry in (
        ("tiny settings", TINY_SETTINGS),
        ("a report layout", REPORT_LAYOUTS),
        ("cost entries", COST_ENTRIES),
        ("served methods", {entry.paper: entry for entry in METHODS.values()}),
        ("tables", TABLES),
        ("leaderboard contenders", CONTENDERS),
        ("forgery judges", FORGERY_JUDGES),
    ):
        unknown = sorted(set(registry) - set(PAPERS))
        if unknown:
            raise ValueError(f"{what} registered for unknown paper(s) {unknown}; papers: {sorted(PAPERS)}")
    return dict(sorted(PAPERS.items()))
