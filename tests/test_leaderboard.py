"""The leaderboard end to end on tiny settings: every contender listed (a missing checkpoint as such), files
written, a second run reading every part back, and numbers equal to a paper's own protocol where the two
protocols coincide (the obfuscation baselines' table: obfuscated probes against the clean gallery)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from src.leaderboarding.board import run_leaderboard
from src.leaderboarding.panel import PANEL_DIR, load_panel, panel_names
from src.leaderboarding.recognizers import RecognizerUnavailable, build_panel_recognizer
from src.leaderboarding.runner import REFERENCE_ID
from tests.fixtures_datasets import lfw_full_format
from tests.helpers import run_experiment

#: 8 test identities x 6 images of SyntheticFaces at 64 px (the default identity splits)
DATA = ["datamodule.image_size=64", "datamodule.augment=false", "datamodule.test_identities=8"]
#: 4 test identities x 6 images at dlib's input size (the baselines' module gives it the images as they are)
DLIB_DATA = ["datamodule.image_size=150", "datamodule.augment=false", "datamodule.test_identities=4"]


def _panel(tmp_path: Path, data: list[str] = DATA, **extra: str):
    text = (PANEL_DIR / "demo.yaml").read_text()
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    overrides = [
        "name=tiny",
        f"data.overrides=[{','.join(data)}]",
        "data.images=48",
        "recognizers=[{name: dlib_resnet, zoo: dlib_resnet}]",
        "attacker=null",
        "train_demo=false",
        "verification.num_pairs=2000",
        *(f"{k}={v}" for k, v in extra.items()),
    ]
    return load_panel(path, overrides)


def test_tiny_leaderboard_lists_everyone_and_reads_parts_back(tmp_path: Path) -> None:
    panel = _panel(tmp_path)
    said: list[str] = []
    out = tmp_path / "reports"
    methods = ["blur", "pixelate", "proface"]
    result = run_leaderboard(
        panel, runs_root=tmp_path / "runs", out=out, methods=methods, judges=[], echo=said.append
    )
    table = result.table.set_index("method id")
    assert list(table.index) == [REFERENCE_ID, "blur", "pixelate", "proface"]
    assert table.loc["proface", "status"].startswith("missing checkpoint: give --checkpoint proface=")
    assert (table.loc[["blur", "pixelate"], "status"] == "ok").all()
    # the unprotected faces are found by dlib far more often than blurred ones
    assert table.loc[REFERENCE_ID, "dlib_resnet rank-1"] > table.loc["blur", "dlib_resnet rank-1"]
    assert table.loc["blur", "SSIM"] < 1.0 and table.loc[REFERENCE_ID, "SSIM"] == pytest.approx(1.0)
    assert table.loc["blur", "privacy"] == pytest.approx(1 - table.loc["blur", "dlib_resnet rank-1"])
    for kind in ("md", "csv", "html", "pareto"):
        assert result.files[kind].is_file(), kind
    assert "missing checkpoint" in result.files["md"].read_text()
    written = pd.read_csv(result.files["csv"])
    assert set(written["method id"]) == set(table.index)
    record = Path(table.loc["blur", "record"])
    assert record.is_file() and "privacy:dlib_resnet" in record.read_text()

    again: list[str] = []
    second = run_leaderboard(
        panel, runs_root=tmp_path / "runs", out=out, methods=methods, judges=[], echo=again.append
    )
    assert any("blur: computed nothing; read back 2 part(s)" in line for line in again), again
    pd.testing.assert_frame_equal(second.table, result.table)


def test_numbers_equal_the_obfuscation_baselines_protocol(tmp_path: Path) -> None:
    """Blur and pixelate judged by dlib's ResNet on the same 24 faces: the baselines' own table (python -m
    src.eval) and the leaderboard give the same rank-1 and verification accuracy."""
    recognizer = "{_target_: src.networks.recognizers.build_recognizer, name: dlib_resnet}"
    own = run_experiment(
        "demo/obfuscation_baselines",
        [
            *DLIB_DATA,
            "model.recognizer_ckpt=null",
            f"model.recognizer={recognizer}",
            "model.num_pairs=200",
            "logger=none",
            f"paths.runs_dir={tmp_path / 'runs'}",
        ],
        task="eval",
    ).metrics
    panel = _panel(
        tmp_path,
        DLIB_DATA,
        options="{blur: {face_size: 150}, pixelate: {face_size: 150}}",
        **{"data.images": "24", "verification.num_pairs": "200"},
    )
    result = run_leaderboard(
        panel,
        runs_root=tmp_path / "runs",
        out=tmp_path / "reports",
        methods=["blur", "pixelate"],
        judges=[],
        echo=lambda _: None,
    )
    table = result.table.set_index("method id")
    for name in ("blur", "pixelate"):
        assert table.loc[name, "dlib_resnet rank-1"] == pytest.approx(own[f"test/{name}/rank1"], abs=1e-6)
        assert table.loc[name, "dlib_resnet verification accuracy"] == pytest.approx(
            own[f"test/{name}/verif_acc"], abs=1e-6
        )
        assert table.loc[name, "SSIM"] == pytest.approx(own[f"test/{name}/ssim"], abs=1e-4)
    assert table.loc[REFERENCE_ID, "dlib_resnet rank-1"] == pytest.approx(own["test/none/rank1"], abs=1e-6)


def test_a_pairs_panel_scores_the_given_pairs_without_rank1(tmp_path: Path) -> None:
    """LFW's pairs.txt protocol (here a miniature: 10 folds of 3 matched + 3 mismatched pairs): TAR and
    accuracy of the protected side a against the original side b; no rank-1, so privacy comes from the TAR."""
    root = lfw_full_format(tmp_path / "lfw")
    data = ["datamodule.image_size=64", "datamodule.num_workers=0", f"datamodule.root={root}"]
    panel = replace(_panel(tmp_path, data, far="0.1"), datamodule="lfw")
    result = run_leaderboard(
        panel, runs_root=tmp_path / "runs", out=tmp_path / "reports", methods=["mask"], judges=[], echo=print
    )
    table = result.table.set_index("method id")
    assert table.loc["mask", "status"] == "ok"
    assert "dlib_resnet rank-1" not in table or pd.isna(table.loc["mask", "dlib_resnet rank-1"])
    tar = table.loc["mask", "dlib_resnet TAR@FAR=1e-1"]
    assert 0.0 <= tar <= 1.0 and table.loc["mask", "privacy"] == pytest.approx(1 - tar)
    assert 0.0 <= table.loc["mask", "dlib_resnet verification accuracy"] <= 1.0
    assert "48 verification pairs (96 faces)" in result.files["md"].read_text()  # the first 48 of 60


@pytest.mark.parametrize("name", panel_names())
def test_shipped_panel_recognizers_build_or_say_which_file_is_missing(name: str) -> None:
    for spec in load_panel(name).recognizers:
        if "train" in spec:
            continue
        try:
            recognizer = build_panel_recognizer(spec)
        except RecognizerUnavailable as exc:
            assert "weights" in str(exc) or "not found" in str(exc), exc
        else:
            assert recognizer.name == spec["name"]
