"""docs/datasets.md stays in step with the DataModules: cited headings exist, every config key and CLI is
documented, and no code cites files users do not have."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "datasets.md"
CITING = [
    *sorted((REPO / "src" / "datamodules").rglob("*.py")),
    *sorted((REPO / "experiments" / "_base" / "datamodule").glob("*.yaml")),
    REPO / "src" / "preprocess" / "videos.py",
    REPO / "src" / "preprocess" / "align.py",
]
CITATION = re.compile(r'docs/datasets\.md(?:,\s*|\s*\(|\s*\(\s*)"([^"]+)"')


def headings() -> set[str]:
    return {line.lstrip("#").strip() for line in DOC.read_text().splitlines() if line.startswith("#")}


def test_no_citation_of_files_users_do_not_have() -> None:
    for path in CITING:
        text = path.read_text()
        for bad in ("shared/", "datasets.md §", ".md §", "papers/proface"):
            assert bad not in text, f"{path.relative_to(REPO)} cites {bad!r}"


def test_cited_headings_exist() -> None:
    known = headings()
    cited = {
        (path.relative_to(REPO).as_posix(), heading)
        for path in CITING
        for heading in CITATION.findall(" ".join(path.read_text().split()))
    }
    assert cited, "expected citations of docs/datasets.md"
    missing = sorted((where, h) for where, h in cited if h not in known)
    assert not missing, f"cited headings not in docs/datasets.md: {missing}"


@pytest.mark.parametrize("config", sorted((REPO / "experiments" / "_base" / "datamodule").glob("*.yaml")))
def test_every_config_key_is_documented(config: Path) -> None:
    text = DOC.read_text()
    keys = [k for k in yaml.safe_load(config.read_text()) if k != "_target_"]
    undocumented = [k for k in keys if f"`{k}`" not in text]
    assert not undocumented, f"{config.name}: keys missing from docs/datasets.md: {undocumented}"
    assert f"`{config.stem}`" in text


def test_documented_commands_exist() -> None:
    modules = set(re.findall(r"python -m (src\.[a-z_.]+)", DOC.read_text()))
    assert {"src.preprocess.videos", "src.preprocess.align", "src.preprocess.celeba_templates"} <= modules
    for name in modules:
        module = importlib.import_module(name)
        assert callable(getattr(module, "main", None)), name
