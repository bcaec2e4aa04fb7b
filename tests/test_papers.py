"""One test over every registered paper module (timm-style): it has experiments, builds and steps."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import grimp
import pytest
import pytorch_lightning as pl
import torch
import yaml

from src.config.buildable import resolve_untrusted_target
from src.config.compose import list_experiments
from src.config.instantiate import instantiate, locate
from src.papers.registry import (
    COST_ENTRIES,
    KINDS,
    TINY_SETTINGS,
    TinySettings,
    discover,
    tiny_settings,
)
from src.weights import load_manifest, manifest_paths
from tests.helpers import (
    SHARED_FIXTURES,
    TINY_DATA_ROOT,
    composed,
    fill_placeholders,
    model_target,
    tiny_overrides,
)

PAPERS = discover()


def experiments_using(target: str) -> list[str]:
    """Experiment files whose model is built from ``target``, demo-sized ones first."""
    found = [e for e in list_experiments() if model_target(e) == target]
    return sorted(found, key=lambda e: ("demo" not in e, e))


def test_registry_is_populated() -> None:
    assert {"face_recognizer", "obfuscation_baselines"} <= set(PAPERS)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_is_described_and_has_experiments(name: str) -> None:
    info = PAPERS[name]
    assert info.kind in KINDS and info.title
    assert issubclass(info.cls, pl.LightningModule)
    for target in (info.target, *info.stage_targets):
        assert experiments_using(target), f"{name}: no experiment file builds {target}"


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_builds_and_takes_a_step(name: str, tmp_path: Path, required_values: dict[str, str]) -> None:
    experiment = experiments_using(PAPERS[name].target)[0]
    cfg = composed(experiment, tiny_overrides(experiment, tmp_path, required_values))
    model = instantiate(cfg.model)
    assert isinstance(model, PAPERS[name].cls)
    datamodule = instantiate(cfg.datamodule)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        limit_val_batches=0,
        limit_test_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainable = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    if trainable:
        trainer.fit(model, datamodule=datamodule)
        changed = [
            k for k, p in model.named_parameters() if k in trainable and not torch.equal(p, trainable[k])
        ]
        assert changed, f"{name}: one optimisation step changed no parameter"
        assert all(torch.isfinite(p).all() for p in model.parameters())
    else:
        results = trainer.test(model, datamodule=datamodule, verbose=False)
        assert results and all(torch.isfinite(torch.tensor(v)) for v in results[0].values())


# ----------------------------------------------------------------------------------------------------
# Self-contained papers: shared code never names one, papers never import each other
# ----------------------------------------------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Where no paper may be named: the shared layers, the test harness and the Makefile.
SHARED_PLACES = [
    *(
        PROJECT_ROOT / "src" / package
        for package in (
            "config",
            "utils",
            "datatypes",
            "datamodules",
            "metrics",
            "evaluation",
            "analysis",
            "lightning_modules",
            "inference",
            "serving",
            "reporting",
            "reproducing",
            "sweeping",
            "leaderboarding",
        )
    ),
    PROJECT_ROOT / "src" / "tasks.py",
    PROJECT_ROOT / "src" / "sdk.py",
    PROJECT_ROOT / "src" / "reproduce.py",
    PROJECT_ROOT / "src" / "sweep.py",
    PROJECT_ROOT / "src" / "leaderboard.py",
    PROJECT_ROOT / "tests" / "helpers.py",
    PROJECT_ROOT / "tests" / "conftest.py",
    PROJECT_ROOT / "Makefile",
]
#: The project's own name shares letters with a paper's: "ProFace Lab", its PROFACE_* environment variables,
#: its distribution name and the key of its record in checkpoints are not paper names.
PROJECT_NAME_TOKENS = [r"ProFace Lab", r"PROFACE_[A-Z0-9_]+", r"proface-lab", r'RECORD_KEY = "proface"']


def paper_name_patterns() -> list[re.Pattern[str]]:
    """Every way a research paper (not a baseline or tool) is named: registry name, short title, class."""
    patterns = []
    for name, info in PAPERS.items():
        if info.kind in ("baseline", "tool"):
            continue
        patterns.append(re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])"))
        patterns.append(re.compile(re.escape(info.short_title).replace("\\-", "-?"), re.IGNORECASE))
        patterns.append(re.compile(re.escape(info.cls.__name__)))
    return patterns


def test_shared_code_names_no_paper() -> None:
    patterns = paper_name_patterns()
    assert patterns, "no research paper registered"
    hits = []
    for place in SHARED_PLACES:
        files = [place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())
        for path in files:
            if path.suffix not in (".py", ".yaml", "") or "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                text = line
                for token in PROJECT_NAME_TOKENS:
                    text = re.sub(token, "", text)
                if any(p.search(text) for p in patterns):
                    hits.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not hits, "shared code names a paper (move it into src/papers/<paper>/):\n" + "\n".join(hits)


def test_paper_packages_do_not_import_each_other() -> None:
    graph = grimp.build_graph("src")
    packages = sorted({info.package for info in PAPERS.values()})
    chains = [
        f"{a} -> {b}"
        for a in packages
        for b in packages
        if a != b and graph.find_shortest_chain(importer=a, imported=b, as_packages=True)
    ]
    assert not chains, "papers must not import each other (share code through a lower layer): " + str(chains)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_lives_in_its_own_package(name: str) -> None:
    info = PAPERS[name]
    assert info.package == f"src.papers.{name}", f"{info.target} is not in src/papers/{name}/"
    assert (PROJECT_ROOT / "docs" / "papers" / f"{name}.md").is_file(), f"docs/papers/{name}.md is missing"


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_tiny_settings_match_experiments(name: str) -> None:
    """Every experiment glob of a paper's tiny settings names at least one of its experiment files."""
    settings = tiny_settings(name)
    experiments = [e for target in PAPERS[name].targets for e in experiments_using(target)]
    for field in ("experiments", "slow", "needs_fixtures"):
        for pattern in getattr(settings, field):
            assert any(fnmatch.fnmatchcase(e, pattern) for e in experiments), (
                f"{name}: tiny settings {field} glob {pattern!r} matches none of its experiments"
            )


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_manifest_fragment_belongs_to_its_paper(name: str) -> None:
    """A paper's own weight files list that paper; the shared manifest lists no paper-only file."""
    fragment = PROJECT_ROOT / "src" / "papers" / name / "weights.yaml"
    manifest = load_manifest()
    if fragment.is_file():
        own = [item["name"] for item in yaml.safe_load(fragment.read_text())["weights"]]
        assert own and all(name in manifest[entry].papers for entry in own), fragment
    shared = yaml.safe_load(manifest_paths()[0].read_text())["weights"]
    only_this = [item["name"] for item in shared if item["papers"] == [name]]
    assert not only_this, f"entries used only by {name} belong in src/papers/{name}/weights.yaml: {only_this}"


@pytest.mark.parametrize("name", sorted(COST_ENTRIES))
def test_cost_entries_build_at_the_published_size(name: str) -> None:
    """Each cost entry's network has its published parameter count (counted on the meta device: no memory)."""
    for entry in COST_ENTRIES[name]:
        with torch.device("meta"):
            net = entry.build()
        assert sum(p.numel() for p in net.parameters()) == entry.params, entry.network


def test_extras_for_unknown_papers_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TINY_SETTINGS, "no_such_paper", TinySettings())
    with pytest.raises(ValueError, match="unknown paper.*no_such_paper"):
        discover()


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_former_targets_still_build(name: str) -> None:
    """Run records and checkpoints written before a module moved name it by its old path: it still builds,
    from trusted and from untrusted configs alike."""
    info = PAPERS[name]
    for old in info.formerly:
        assert locate(old) is info.cls
        assert resolve_untrusted_target(old, source="old checkpoint", key="model._target_") is info.cls


def test_papers_cli_lists_every_paper(capsys: pytest.CaptureFixture) -> None:
    from src.papers.__main__ import main

    assert main() == 0
    out = capsys.readouterr().out
    for name, info in PAPERS.items():
        assert name in out and info.short_title in out and f"docs/papers/{name}.md" in out


def test_tiny_placeholders_leave_other_braces_alone() -> None:
    overrides = ["a={tiny_data}/x", "b={fixtures}/y", "c=${paths.data_dir}", "d={_target_: m.C}"]
    filled = fill_placeholders(overrides)
    assert filled[0] == f"a={TINY_DATA_ROOT}/x" and filled[1] == f"b={SHARED_FIXTURES}/y"
    assert filled[2:] == overrides[2:]
