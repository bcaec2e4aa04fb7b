"""OmegaConf resolvers available in every experiment file."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register_resolvers() -> None:
    """Register ``${project_root:}`` (the repository root) once per process."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_resolver("project_root", _project_root)


def _project_root() -> str:
    """The repository root (parent of ``src/``)."""
    return str(PROJECT_ROOT)
