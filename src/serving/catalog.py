"""What a server can offer: every registered method that needs no training, plus the trained checkpoints
found under a runs directory or named explicitly, each as a :class:`CatalogEntry`.

Entries are listed without building anything: a checkpoint's experiment, run id and model target are read
from its ProFace Lab record with :func:`src.utils.checkpoint_files.open_checkpoint` (tensors only, memory
mapped, never arbitrary unpickling). A checkpoint is offered for every registered method that serves its model
(:func:`src.papers.registry.served_targets`: the method's declared targets, else its paper's module; a
paper's earlier training stages, such as a feature extractor trained before the served model, are not served).
Methods are built on first use
(:meth:`Catalog.load`) and kept, so a portal started on a large runs directory costs nothing until someone
picks a method.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from src.inference.faces import FaceFinder
from src.inference.inputs import DEFAULT_LIMITS, InputLimits
from src.inference.methods import ServingError
from src.papers.registry import METHODS, MethodEntry, discover, served_targets
from src.serving.sdk import Detector, Protector, load
from src.utils.checkpoint_files import CheckpointError, CheckpointInfo, open_checkpoint

__all__ = [
    "Catalog",
    "CatalogEntry",
    "MethodLoadError",
    "UnknownMethodError",
    "find_run_checkpoints",
    "parse_method_spec",
]

log = logging.getLogger(__name__)

#: folders never walked when looking for checkpoints (logger output, caches)
SKIPPED_FOLDERS = frozenset({"wandb", "plots", "__pycache__", "tensorboard", "csv_logs"})
_ID_SAFE = re.compile(r"[^A-Za-z0-9_.@-]+")

Served = Protector | Detector
Loader = Callable[..., Served]


class UnknownMethodError(ServingError):
    """A method id the catalog does not offer (the portal answers 404)."""


class MethodLoadError(ServingError):
    """A catalog method whose checkpoint could not be built (a server-side problem; details in the log)."""


@dataclass(frozen=True)
class CatalogEntry:
    """One method the server offers: a registered method, with the checkpoint it serves when trained."""

    #: unique id the API and the page use (``blur``, ``<method>@<run id>``)
    id: str
    #: the registered method's name (``src.sdk.load(name)``)
    method: str
    #: ``protect`` or ``detect``
    kind: str
    #: shown in method lists: method, experiment and run id
    label: str
    summary: str
    paper: str
    checkpoint: Path | None = None
    experiment: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, without the checkpoint's full path (which says nothing to a user of the server)."""
        return {
            "id": self.id,
            "method": self.method,
            "kind": self.kind,
            "label": self.label,
            "summary": self.summary,
            "paper": self.paper,
            "trained": self.checkpoint is not None,
            "experiment": self.experiment,
            "run_id": self.run_id,
        }


def parse_method_spec(spec: str) -> tuple[str, Path]:
    """``"name=path/to/best.ckpt"`` → ``("name", Path(...))``; a malformed spec is a :class:`ServingError`."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ServingError(f"--method {spec!r}: expected name=checkpoint (e.g. my_method=runs/.../best.ckpt)")
    return name.strip(), Path(path.strip()).expanduser()


def find_run_checkpoints(runs: str | Path) -> list[Path]:
    """One checkpoint per run under ``runs``: the run's best (as its ``summary.json`` names it, else the
    newest ``best*.ckpt``), else its ``last.ckpt``. Logger folders are not walked."""
    runs = Path(runs)
    if not runs.is_dir():
        raise ServingError(f"runs directory {runs} does not exist or is not a folder")
    found: list[Path] = []
    for folder, subfolders, files in os.walk(runs):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_FOLDERS and not d.startswith("."))
        if Path(folder).name == "checkpoints":
            chosen = _run_checkpoint(Path(folder), [f for f in files if f.endswith(".ckpt")])
            if chosen is not None:
                found.append(chosen)
    return sorted(found)


def _run_checkpoint(folder: Path, names: list[str]) -> Path | None:
    """The checkpoint of one run's ``checkpoints/`` folder to serve: best over last."""
    named = _summary_best(folder.parent)
    if named is not None and named.parent.resolve() == folder.resolve() and named.is_file():
        return folder / named.name
    best = [folder / name for name in names if name.startswith("best")]
    if best:
        return max(best, key=lambda path: (path.stat().st_mtime, path.name))
    return folder / "last.ckpt" if "last.ckpt" in names else None


def _summary_best(run_dir: Path) -> Path | None:
    """The ``best_checkpoint`` a run's ``summary.json`` records, when it records one."""
    import json

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    best = summary.get("best_checkpoint") if isinstance(summary, Mapping) else None
    return Path(best) if isinstance(best, str) and best else None


def _config_target(run_dir: Path) -> str | None:
    """``model._target_`` of a run's ``config.yaml`` (a cheap hint; the checkpoint's own record decides)."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    model = config.get("model") if isinstance(config, Mapping) else None
    target = model.get("_target_") if isinstance(model, Mapping) else None
    return target if isinstance(target, str) else None


def checkpoint_record(path: str | Path) -> CheckpointInfo:
    """What a checkpoint's ProFace Lab record says (experiment, run id, model target), read safely."""
    _, info = open_checkpoint(path, mmap=True)
    return info


class Catalog:
    """The methods a server offers, by id; each built on first use and then shared.

    ``runs``: a runs directory searched for trained checkpoints. ``checkpoints``: explicit ``(method name,
    checkpoint path)`` pairs. ``untrained``: offer every method that needs no checkpoint. ``loader``: what
    builds a method (``src.serving.sdk.load``; tests may pass another).
    """

    def __init__(
        self,
        runs: str | Path | None = None,
        checkpoints: Iterable[tuple[str, str | Path]] = (),
        *,
        untrained: bool = True,
        device: str = "cpu",
        limits: InputLimits = DEFAULT_LIMITS,
        face_detector: str = "mtcnn",
        min_face_score: float = 0.9,
        loader: Loader = load,
    ) -> None:
        self.device = device
        self.limits = limits
        self.finder = FaceFinder(face_detector, min_face_score)
        self._loader = loader
        self._entries: dict[str, CatalogEntry] = {}
        self._loaded: dict[str, Served] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        discover()
        methods = dict(sorted(METHODS.items()))
        for name, path in checkpoints:
            self._add_explicit(methods, name, Path(path))
        if untrained:
            for entry in methods.values():
                if not entry.needs_checkpoint:
                    self._add(entry, None, None)
        if runs is not None:
            self._add_runs(methods, Path(runs))

    # ------------------------------------------------------------------------------------------- listing

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def entries(self, kind: str | None = None) -> list[CatalogEntry]:
        """Every entry (or those of one ``kind``), in catalog order."""
        return [entry for entry in self._entries.values() if kind is None or entry.kind == kind]

    def entry(self, entry_id: str) -> CatalogEntry:
        """The entry ``entry_id``; unknown: :class:`UnknownMethodError` listing a few known ones."""
        try:
            return self._entries[entry_id]
        except KeyError:
            known = ", ".join(list(self._entries)[:8]) + (", ..." if len(self._entries) > 8 else "")
            raise UnknownMethodError(f"unknown method '{entry_id}'; this server offers: {known}") from None

    def is_loaded(self, entry_id: str) -> bool:
        return entry_id in self._loaded

    def traits(self, entry_id: str) -> dict[str, Any]:
        """``needs_password`` / ``reversible`` (as the method's registry entry declares them), ``loaded``."""
        method = METHODS[self.entry(entry_id).method]
        return {
            "loaded": entry_id in self._loaded,
            "needs_password": method.needs_password,
            "reversible": method.reversible,
        }

    def describe(self, entry_id: str) -> dict[str, Any]:
        """The entry with its traits, and the built method's own summary when loaded."""
        data = {**self.entry(entry_id).to_dict(), **self.traits(entry_id)}
        served = self._loaded.get(entry_id)
        if served is not None:
            data["description"] = served.describe().get("description", "")
            data["face_size"] = served.method.face_size
        return data

    # ------------------------------------------------------------------------------------------- loading

    def load(self, entry_id: str) -> Served:
        """The built method of ``entry_id`` (built once, on first use; concurrent first uses build once)."""
        entry = self.entry(entry_id)
        served = self._loaded.get(entry_id)
        if served is not None:
            return served
        with self._guard:
            lock = self._locks.setdefault(entry_id, threading.Lock())
        with lock:
            served = self._loaded.get(entry_id)
            if served is None:
                served = self._build(entry)
                self._loaded[entry_id] = served
        return served

    def _build(self, entry: CatalogEntry) -> Served:
        log.info("loading method %s%s", entry.method, f" from {entry.checkpoint}" if entry.checkpoint else "")
        try:
            served = self._loader(entry.method, ckpt=entry.checkpoint, device=self.device, limits=self.limits)
        except (ServingError, CheckpointError, OSError, RuntimeError, ValueError) as exc:
            log.exception("method %s could not be loaded", entry.id)
            raise MethodLoadError(f"method '{entry.id}' could not be loaded (see the server log)") from exc
        if served.method.kind != entry.kind:
            raise MethodLoadError(
                f"method '{entry.id}' built a {served.method.kind} method, not {entry.kind}"
            )
        served.finder = self.finder  # one face detector for every method
        return served

    # ------------------------------------------------------------------------------------------- building

    def _unique_id(self, wanted: str) -> str:
        base = _ID_SAFE.sub("_", wanted).strip("_") or "method"
        candidate, number = base, 2
        while candidate in self._entries:
            candidate, number = f"{base}-{number}", number + 1
        return candidate

    def _add(self, method: MethodEntry, path: Path | None, info: CheckpointInfo | None) -> CatalogEntry:
        if path is None:
            entry_id, label = self._unique_id(method.name), f"{method.name} — {method.summary}"
            experiment = run_id = None
        else:
            experiment = info.experiment if info else None
            run_id = info.run_id if info else None
            entry_id = self._unique_id(f"{method.name}@{run_id or path.parent.parent.name or path.stem}")
            label = " · ".join(part for part in (method.name, experiment, run_id or path.name) if part)
        entry = CatalogEntry(
            entry_id, method.name, method.kind, label, method.summary, method.paper, path, experiment, run_id
        )
        self._entries[entry_id] = entry
        return entry

    def _add_explicit(self, methods: Mapping[str, MethodEntry], name: str, path: Path) -> None:
        if name not in methods:
            raise ServingError(
                f"--method {name}={path}: unknown method '{name}'; methods: {', '.join(methods)}"
            )
        method = methods[name]
        if not method.needs_checkpoint:
            raise ServingError(
                f"--method {name}={path}: method '{name}' is not trained and takes no checkpoint"
            )
        info = checkpoint_record(path)
        targets = served_targets(method)
        if info.model_target not in targets:
            raise ServingError(
                f"--method {name}={path}: the checkpoint holds a {info.model_target or 'unknown'} model, not "
                f"one that method '{name}' serves ({', '.join(targets)})"
            )
        self._add(method, path.resolve(), info)

    def _add_runs(self, methods: Mapping[str, MethodEntry], runs: Path) -> None:
        serving: dict[str, list[MethodEntry]] = {}
        for method in methods.values():
            if method.needs_checkpoint:
                for target in served_targets(method):
                    serving.setdefault(target, []).append(method)
        if not serving:
            log.info("no registered method serves a trained checkpoint: %s not searched", runs)
            return
        for path in find_run_checkpoints(runs):
            hint = _config_target(path.parent.parent)
            if hint is not None and hint not in serving:
                continue
            try:
                info = checkpoint_record(path)
            except CheckpointError as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            for method in serving.get(info.model_target or "", []):
                self._add(method, path.resolve(), info)
