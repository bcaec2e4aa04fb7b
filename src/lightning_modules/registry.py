"""Registry of paper (and baseline) LightningModules, so one parametrised test can cover them all.

A module registers itself with ``@register_paper("name", ...)``; :func:`discover` imports every module
in ``src.lightning_modules`` so that adding a paper needs no edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import pytorch_lightning as pl

from src.config.buildable import buildable

KINDS = ("privacy", "security", "baseline", "tool")


@dataclass(frozen=True)
class PaperInfo:
    """What the registry knows about one LightningModule."""

    name: str
    cls: type[pl.LightningModule]
    title: str
    venue: str
    kind: str

    @property
    def target(self) -> str:
        """The ``_target_`` string that builds this module from YAML."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


PAPERS: dict[str, PaperInfo] = {}


def register_paper(
    name: str, *, title: str, venue: str, kind: str
) -> Callable[[type[pl.LightningModule]], type[pl.LightningModule]]:
    """Class decorator adding a LightningModule to :data:`PAPERS` under ``name``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def decorate(cls: type[pl.LightningModule]) -> type[pl.LightningModule]:
        existing = PAPERS.get(name)
        if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"paper name '{name}' is already registered by {existing.target}")
        PAPERS[name] = PaperInfo(name, cls, title, venue, kind)
        return buildable(cls)

    return decorate


def discover() -> dict[str, PaperInfo]:
    """Import every module in ``src.lightning_modules`` and return the registry."""
    package = importlib.import_module("src.lightning_modules")
    for info in pkgutil.walk_packages(package.__path__, prefix="src.lightning_modules."):
        importlib.import_module(info.name)
    return dict(sorted(PAPERS.items()))
