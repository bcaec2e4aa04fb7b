"""When a row need not run again: a completed run of the same configuration on the same commit exists.

Both sides are hashed from the resolved configuration as ``config.yaml`` stores it (secrets as ``***``):
the run's ``config.yaml`` and the config the row composes now. Keys that only say where things are written
or how the run is executed are left out of the hash (:data:`IGNORED_KEYS`: the run's id and folder, the
``paths`` group, loggers, ``resume``, devices and loader workers), so the same row run on another machine
layout or with W&B off still matches; everything else (data, model, optimiser, epochs, seed) must be equal.

A run is reused when its ``meta.json`` says ``completed``, the same task, no sweep point, the commit equals
``HEAD`` and the working tree was clean, and the hashes are equal. A dirty working tree reuses nothing:
its runs cannot say which code made them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from src.config.secrets import RunSecrets
from src.reporting.selection import HARMLESS_KEYS, HARMLESS_PREFIXES
from src.utils.run_record import git_state

#: dotted keys left out of the hash (their value never changes a result): the report's harmless keys, less a
#: checkpoint to start from (``ckpt_path``: another run's weights change the result) and the ``trainer`` group
#: choice (its effects are the ``trainer.*`` keys themselves)
IGNORED_KEYS = tuple(
    sorted({prefix.rstrip(".") for prefix in HARMLESS_PREFIXES} | (HARMLESS_KEYS - {"ckpt_path", "trainer"}))
)


@dataclass(frozen=True)
class GitHead:
    """The code a reproduction runs: ``HEAD``'s commit and whether tracked files have changes."""

    commit: str | None
    dirty: bool

    @classmethod
    def read(cls) -> GitHead:
        """The project's git state (commit ``None`` outside a git checkout)."""
        state = git_state()
        return cls(state.get("commit"), bool(state.get("dirty")))


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (16 hex digits) of a resolved config as plain data, without :data:`IGNORED_KEYS`."""
    tree = json.loads(json.dumps(config, default=str))
    for key in IGNORED_KEYS:
        _drop(tree, key)
    text = json.dumps(tree, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def composed_hash(cfg: DictConfig, overrides: list[str]) -> str:
    """The hash of ``cfg`` as its run would store it in ``config.yaml`` (resolved, secrets hidden)."""
    secrets = RunSecrets.prepare(cfg, overrides)
    plain = OmegaConf.to_container(secrets.config(cfg), resolve=True)
    assert isinstance(plain, dict)
    return config_hash(plain)


def stored_hash(run_dir: Path) -> str | None:
    """The hash of a run's ``config.yaml`` (``None`` when it is missing or unreadable). Read as plain YAML:
    nothing in a run directory is built or resolved."""
    path = run_dir / "config.yaml"
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return config_hash(loaded) if isinstance(loaded, dict) else None


def _meta(run_dir: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


@dataclass(frozen=True)
class Reuse:
    """The outcome of looking for a reusable run: the run (or None) and why."""

    run_dir: Path | None
    why: str


def _is_sweep_point(meta: Mapping[str, Any]) -> bool:
    sweep = meta.get("sweep")
    if isinstance(sweep, Mapping):
        return any(value is not None for value in sweep.values())
    return bool(sweep)


def find_reusable(
    runs_root: Path,
    experiment: str,
    task: str,
    wanted_hash: str,
    head: GitHead,
    stored: Callable[[Path], str | None] = stored_hash,
) -> Reuse:
    """The newest completed run of ``experiment`` under ``runs_root`` that the row may reuse, with the reason
    no run qualifies otherwise (the closest miss: another config, another commit, a dirty tree)."""
    if head.commit is None:
        return Reuse(None, "not a git checkout: runs cannot be matched to the code")
    if head.dirty:
        return Reuse(None, "the working tree has uncommitted changes: no earlier run can be matched to it")
    folder = runs_root / experiment
    candidates = []
    for meta_path in sorted(folder.glob("*/meta.json")) if folder.is_dir() else []:
        meta = _meta(meta_path.parent)
        if meta is None or meta.get("status") != "completed" or meta.get("task") != task:
            continue
        if meta.get("experiment") != experiment or _is_sweep_point(meta):
            continue
        candidates.append((str(meta.get("end_time") or ""), meta_path.parent, meta))
    if not candidates:
        return Reuse(None, f"no completed {task} run of {experiment} under {runs_root}")
    reasons = []
    for _, run_dir, meta in sorted(candidates, key=lambda c: c[0], reverse=True):
        git = meta.get("git") if isinstance(meta.get("git"), Mapping) else {}
        if stored(run_dir) != wanted_hash:
            reasons.append("another configuration")
        elif git.get("commit") != head.commit:
            reasons.append(f"commit {str(git.get('commit'))[:7]}, HEAD is {head.commit[:7]}")
        elif git.get("dirty"):
            reasons.append(f"commit {head.commit[:7]} with uncommitted changes")
        else:
            return Reuse(
                run_dir, f"completed run {run_dir.name} (same config hash {wanted_hash}, same commit)"
            )
    newest = reasons[0]
    return Reuse(None, f"{len(candidates)} completed run(s), none reusable (newest: {newest})")


def selected_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run selected: ``summary.json``'s ``best_checkpoint`` when it exists, else the newest
    ``best*.ckpt``, else ``last.ckpt``; an error names the folder when there is none."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        summary = {}
    best = summary.get("best_checkpoint") if isinstance(summary, dict) else None
    if isinstance(best, str) and Path(best).is_file():
        return Path(best)
    folder = run_dir / "checkpoints"
    found = sorted(folder.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    chosen = found[-1] if found else folder / "last.ckpt"
    if not chosen.is_file():
        raise FileNotFoundError(f"{run_dir}: no checkpoint (no best*.ckpt nor last.ckpt in {folder})")
    return chosen
