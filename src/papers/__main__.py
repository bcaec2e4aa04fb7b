"""List every registered paper: ``python -m src.papers`` (name, kind, venue, title, docs, experiments)."""

from __future__ import annotations

import sys
from pathlib import Path

from src.papers.registry import discover

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    """Print two lines per paper: what it is, then its docs and experiment folder."""
    for name, info in discover().items():
        experiments = PROJECT_ROOT / "experiments" / name
        count = sum(1 for p in experiments.rglob("*.yaml") if "_parts" not in p.parts)
        where = f"experiments/{name}/ ({count} files)" if count else "experiments: see its docs"
        print(f"{name:<22} {info.kind:<9} {info.venue:<16} {info.short_title}")
        print(f"{'':<22} docs/papers/{name}.md, {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
