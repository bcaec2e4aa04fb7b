"""The experiment files a report compares run records with: each one's model and the keys it leaves open.

Composing every experiment file takes a few seconds, so the catalog of one experiments folder is built once
per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import Composer, list_experiments
from src.config.errors import ConfigError

MISSING = "???"


@dataclass(frozen=True)
class ExperimentFile:
    """One experiment file as composed today: its model ``_target_`` and its ``???`` keys."""

    name: str
    model_target: str | None
    required: frozenset[str]


@dataclass(frozen=True)
class Catalog:
    """Every experiment file of a folder (those that do not compose are kept with their error)."""

    experiments: dict[str, ExperimentFile]
    broken: dict[str, str]

    def of_targets(self, targets: tuple[str, ...]) -> list[str]:
        """Names of the experiment files whose model is one of ``targets``, sorted."""
        return sorted(e.name for e in self.experiments.values() if e.model_target in targets)

    def required(self, name: str) -> frozenset[str] | None:
        """The keys experiment ``name`` leaves open; ``None`` when there is no such file."""
        found = self.experiments.get(name)
        if found is not None:
            return found.required
        return frozenset() if name in self.broken else None


def _open_keys(node: object, prefix: str = "") -> set[str]:
    """Dotted keys whose value is ``???`` in a plain (unresolved) config; cheaper than resolving it all."""
    if isinstance(node, dict):
        return {k for key, child in node.items() for k in _open_keys(child, f"{prefix}{key}.")}
    if isinstance(node, list):
        return {k for i, child in enumerate(node) for k in _open_keys(child, f"{prefix}{i}.")}
    return {prefix.removesuffix(".")} if node == MISSING else set()


@functools.cache
def _catalog(experiments_dir: Path) -> Catalog:
    composer = Composer(experiments_dir)
    experiments, broken = {}, {}
    for name in list_experiments(experiments_dir):
        try:
            config = composer.compose(name, allow_missing=True).config
        except (ConfigError, OmegaConfBaseException) as exc:
            broken[name] = str(exc).splitlines()[0]
            continue
        plain = OmegaConf.to_container(config, resolve=False)
        model = plain.get("model") if isinstance(plain, dict) else None
        target = model.get("_target_") if isinstance(model, dict) else None
        experiments[name] = ExperimentFile(
            name, str(target) if target is not None else None, frozenset(_open_keys(plain))
        )
    return Catalog(experiments, broken)


def experiment_catalog(experiments_dir: Path) -> Catalog:
    """The catalog of ``experiments_dir`` (cached per resolved folder)."""
    return _catalog(Path(experiments_dir).resolve())
