"""Which run records a report may use: completed runs of an experiment file as committed.

A run is *usable* when its status is ``completed`` and its summary has test metrics. A usable run is
*eligible* when, in addition, nothing made it differ from its experiment file:

* it is not a sweep point (``meta.json``'s ``sweep`` names a sweep or a point);
* every command-line override (``overrides.txt``) is harmless (:func:`is_harmless`): it only says where
  things are or how the run is executed, or it sets a key the experiment leaves open (``???``);
* no override points into the directory of another run that is itself not eligible (an evaluation of the
  checkpoint of a 5-batch smoke run is a smoke result too);
* its experiment file still exists.

Reports use the newest eligible run per experiment; ``--include-overrides`` relaxes eligibility to usability.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.analysis.runs import Run

COMPLETED = "completed"
SECRET_VALUE = "***"
#: keys (or group choices) that only say where things are or how the run is executed
HARMLESS_KEYS = frozenset(
    {
        "ckpt_path",
        "resume",
        "print_config",
        "logger",  # group choice, e.g. logger=none
        "trainer",  # group choice: the trainer files only pick accelerator / devices / strategy
        "datamodule.num_workers",
        "datamodule.pin_memory",
        "datamodule.cache_dir",
        "trainer.accelerator",
        "trainer.devices",
        "trainer.num_nodes",
        "trainer.strategy",
        "trainer.enable_progress_bar",
        "trainer.enable_model_summary",
        "trainer.log_every_n_steps",
    }
)
HARMLESS_PREFIXES = ("paths.", "logger.", "run.")
#: endings of a key's last part that name a checkpoint file
CHECKPOINT_SUFFIXES = ("_ckpt", "ckpt_path")
#: endings of a ``datamodule.*`` key's last part that name where the data lies
DATA_ROOT_SUFFIXES = ("root", "_root")


def override_key(item: str) -> str:
    """The dotted key of ``key=value``, ``+key=value``, ``++key=value`` or ``~key``."""
    return item.split("=", 1)[0].lstrip("+~").strip()


def override_value(item: str) -> str | None:
    """The value of ``key=value`` (``None`` for a deletion ``~key``)."""
    return item.split("=", 1)[1] if "=" in item else None


def is_harmless(item: str, required: Collection[str] = ()) -> bool:
    """True when override ``item`` cannot change a result: a secret given as ``***``, a key the experiment
    leaves open (``required``), a location (``paths.*``, ``*_ckpt``, ``ckpt_path``, ``datamodule.root``,
    ``datamodule.*_root``) or an execution setting (``logger*``, ``run.*``, ``resume``, devices...)."""
    key = override_key(item)
    if override_value(item) == SECRET_VALUE or key in required or key in HARMLESS_KEYS:
        return True
    if key.startswith(HARMLESS_PREFIXES):
        return True
    last = key.rsplit(".", 1)[-1]
    if last.endswith(CHECKPOINT_SUFFIXES):
        return True
    return key.startswith("datamodule.") and last.endswith(DATA_ROOT_SUFFIXES)


def harmful_overrides(overrides: Iterable[str], required: Collection[str] = ()) -> list[str]:
    """The overrides that make a run differ from its experiment file (in their recorded order)."""
    return [item for item in overrides if not is_harmless(item, required)]


def sweep_label(meta: Mapping[str, Any]) -> str | None:
    """``sweep point <name>#<point>`` for a sweep point, ``None`` for an ordinary run.

    Ordinary runs record ``sweep: {name: null, point: null}``; only a set name or point marks a sweep point.
    """
    sweep = meta.get("sweep")
    if isinstance(sweep, Mapping):
        if all(value is None for value in sweep.values()):
            return None
        return f"sweep point {sweep.get('name')}#{sweep.get('point')}"
    return f"sweep point {sweep}" if sweep else None


def has_test_metrics(summary: Mapping[str, Any]) -> bool:
    """True when the summary holds at least one numeric ``test/*`` value that is not NaN."""
    return any(
        key.startswith("test/") and isinstance(value, (int, float)) and value == value
        for key, value in summary.items()
    )


def short_commit(meta: Mapping[str, Any]) -> str:
    """The commit a run ran (7 characters, ``+dirty`` with uncommitted changes), ``?`` when unknown."""
    git = meta.get("git")
    if not isinstance(git, Mapping) or not git.get("commit"):
        return "?"
    return str(git["commit"])[:7] + ("+dirty" if git.get("dirty") else "")


def run_dir_of(value: str, cwd: Path | None = None) -> Path | None:
    """The run directory a path value lies in (the value itself, its folder, or ``<run>/checkpoints/``)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        if cwd is None:
            return None
        path = cwd / path
    if not path.exists():
        return None
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / "meta.json").is_file():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class Judgement:
    """Why a run may or may not be used; empty tuples mean eligible."""

    run: Run
    #: never used unless pinned: not completed, no test metrics
    problems: tuple[str, ...] = ()
    #: lifted by ``--include-overrides``: sweep point, harmful overrides, excluded source run, unknown file
    deviations: tuple[str, ...] = ()

    @property
    def eligible(self) -> bool:
        """Completed, with test metrics, and run as the experiment file says."""
        return not self.problems and not self.deviations

    def usable(self, include_overrides: bool = False) -> bool:
        """Eligible, or (with ``include_overrides``) completed with test metrics whatever its overrides."""
        return not self.problems and (include_overrides or not self.deviations)

    @property
    def reasons(self) -> str:
        """All problems and deviations in one phrase (``""`` when eligible)."""
        return "; ".join((*self.problems, *self.deviations))


@dataclass
class Judge:
    """Judges runs, following overrides that point into other runs' directories (cached, cycle-safe).

    ``required(experiment)`` gives the keys an experiment file leaves open, ``None`` when there is no such
    file; ``load(run_dir)`` reads another run's record (``None`` when it cannot be read).
    """

    required: Callable[[str], Collection[str] | None]
    load: Callable[[Path], Run | None]
    _cache: dict[Path, Judgement] = field(default_factory=dict)
    _visiting: set[Path] = field(default_factory=set)

    def __call__(self, run: Run) -> Judgement:
        """The judgement of ``run`` (test metrics required)."""
        key = run.run_dir.resolve()
        if key not in self._cache:
            self._visiting.add(key)
            try:
                self._cache[key] = self._judge(run, key)
            finally:
                self._visiting.discard(key)
        return self._cache[key]

    def _judge(self, run: Run, key: Path) -> Judgement:
        problems = []
        if run.status != COMPLETED:
            problems.append(f"status {run.status}")
        elif not has_test_metrics(run.summary):
            problems.append("no test metrics")
        deviations = []
        sweep = sweep_label(run.meta)
        if sweep:
            deviations.append(sweep)
        required = self.required(run.experiment)
        if required is None:
            deviations.append(f"experiment file {run.experiment}.yaml not found")
            required = ()
        harmful = harmful_overrides(run.overrides, required)
        if harmful:
            deviations.append("overrides " + ", ".join(harmful))
        deviations.extend(self._sources(run, key, harmful))
        return Judgement(run, tuple(problems), tuple(deviations))

    def _sources(self, run: Run, key: Path, harmful: list[str]) -> list[str]:
        """Deviations inherited from runs whose files a harmless override points to (e.g. a checkpoint)."""
        cwd = Path(run.meta["cwd"]) if isinstance(run.meta.get("cwd"), str) else None
        found = []
        for item in run.overrides:
            value = override_value(item)
            if item in harmful or not value or value == SECRET_VALUE:
                continue
            source_dir = run_dir_of(value, cwd)
            if source_dir is None or source_dir == key or source_dir in self._visiting:
                continue
            source = self.load(source_dir)
            if source is None:
                continue
            verdict = self(source)
            why = [*(p for p in verdict.problems if p != "no test metrics"), *verdict.deviations]
            if why:
                found.append(
                    f"{override_key(item)} is a file of run {source.run_id} ({source.experiment}), "
                    f"itself excluded: {'; '.join(why)}"
                )
        return found
