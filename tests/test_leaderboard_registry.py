"""The leaderboard's entrants come from the registries: every protection method appears, every judge and demo
row is real, and panels and records behave as documented."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from src.leaderboarding.contenders import all_contenders, all_judges, pick, pick_judges
from src.leaderboarding.data import load_faces
from src.leaderboarding.panel import PANEL_DIR, PanelError, load_panel, panel_names
from src.leaderboarding.records import EntrantRecord, folder_name, part_key
from src.papers.registry import (
    CONTENDERS,
    LEADERBOARD_TABLE,
    METHODS,
    TABLES,
    Contender,
    discover,
    register_contenders,
)

PAPERS = discover()


def test_every_protection_method_is_a_contender() -> None:
    ids = [entrant.id for entrant in all_contenders()]
    assert len(ids) == len(set(ids)), "contender ids repeat"
    methods = {entrant.contender.method for entrant in all_contenders()}
    protect = {name for name, entry in METHODS.items() if entry.kind == "protect"}
    assert methods == protect


@pytest.mark.parametrize("entrant", all_contenders(), ids=lambda e: e.id)
def test_contender_is_consistent(entrant) -> None:
    entry = METHODS[entrant.contender.method]
    assert entry.kind == "protect" and entry.paper == entrant.paper
    options = set(entrant.contender.options)
    assert options <= set(entry.options) or "<argument>" in entry.options, f"{entrant.id}: unknown options"
    if entry.needs_checkpoint:
        assert entrant.contender.demo_row, f"{entrant.id}: a trained method needs a demo row"
    if entrant.contender.demo_row is not None:
        rows = {row.name for row in TABLES[entrant.paper][LEADERBOARD_TABLE].rows}
        assert entrant.contender.demo_row in rows


def test_every_detection_judge_is_a_registered_detector_with_a_demo_row() -> None:
    judges = all_judges()
    names = [judge.name for _, judge in judges]
    assert len(names) == len(set(names)) and len(names) >= 5
    for paper, judge in judges:
        assert METHODS[judge.method].kind == "detect" and METHODS[judge.method].paper == paper
        assert judge.demo_row in {row.name for row in TABLES[paper][LEADERBOARD_TABLE].rows}


def test_picking_by_method_or_id_and_unknown_names() -> None:
    entrants = all_contenders()
    assert {e.id for e in pick(entrants, ["blur"])} == {"blur"}
    dp = [e for e in entrants if e.contender.method == "dp_pix"]
    assert pick(entrants, ["dp_pix"]) == dp
    with pytest.raises(PanelError, match="unknown method.*nope"):
        pick(entrants, ["nope"])
    with pytest.raises(PanelError, match="unknown forgery judge"):
        pick_judges(all_judges(), ["nope"])


def test_contender_registration_refuses_repeated_ids() -> None:
    with pytest.raises(ValueError, match="repeat"):
        register_contenders("obfuscation_baselines", Contender("blur"), Contender("blur"))
    assert "obfuscation_baselines" in CONTENDERS


@pytest.mark.parametrize("name", panel_names())
def test_shipped_panels_load(name: str) -> None:
    panel = load_panel(name)
    assert panel.recognizers and any(spec.get("zoo") == "dlib_resnet" for spec in panel.recognizers)
    assert panel.images > 0 and panel.far == pytest.approx(1e-3)


def test_panel_overrides_and_errors(tmp_path: Path) -> None:
    panel = load_panel("demo", ["data.images=12", "attacker.steps=3"])
    assert panel.images == 12 and panel.attacker is not None and panel.attacker["steps"] == 3
    with pytest.raises(PanelError, match="unknown key.*colour"):
        load_panel("demo", ["colour=red"])
    with pytest.raises(PanelError, match="unknown panel 'nope'"):
        load_panel("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text((PANEL_DIR / "demo.yaml").read_text().replace("recognizer: demo_arcface", "recognizer: x"))
    with pytest.raises(PanelError, match=r"bad.yaml.attacker.recognizer: 'x' is not a panel recognizer"):
        load_panel(bad)
    with pytest.raises(PanelError, match="only datamodule"):
        load_panel("demo", ["data.overrides=[seed=3]"])


def test_records_reuse_a_part_only_when_its_key_matches(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, float]:
        calls.append(1)
        return {"x": float(len(calls)), "y": float("nan")}

    folder = tmp_path / folder_name("m/eps=1")
    assert "/" not in folder.name
    record = EntrantRecord(folder, {"entrant": "m/eps=1"})
    key = part_key("utility", 1)
    first = record.get("utility", key, compute)
    assert first["x"] == 1.0 and math.isnan(first["y"])  # NaN is stored as null and read back as NaN
    again = EntrantRecord(folder, {"entrant": "m/eps=1"})
    assert again.get("utility", key, compute)["x"] == 1.0 and len(calls) == 1
    assert again.reused == ["utility"]
    assert again.get("utility", part_key("utility", 2), compute)["x"] == 2.0
    forced = EntrantRecord(folder, {"entrant": "m/eps=1"}, force=True)
    assert forced.get("utility", part_key("utility", 2), compute)["x"] == 3.0
    stored = json.loads((folder / "record.json").read_text())
    assert stored["parts"]["utility"]["values"]["y"] is None
    assert stored["entrant"] == "m/eps=1" and stored["parts"]["utility"]["seconds"] >= 0


def test_missing_panel_data_is_a_panel_error_naming_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no_lfw_here"
    with pytest.raises(PanelError, match=f"dataset root not found: {missing}"):
        load_faces("lfw", [f"datamodule.root={missing}", "datamodule.num_workers=0"], "test", 4, echo=print)


def test_a_missing_runs_folder_is_a_panel_error(tmp_path: Path) -> None:
    from src.leaderboarding.board import run_leaderboard

    with pytest.raises(PanelError, match="runs directory .*nope does not exist"):
        run_leaderboard(load_panel("demo"), runs_root=tmp_path, out=tmp_path, runs=tmp_path / "nope")
