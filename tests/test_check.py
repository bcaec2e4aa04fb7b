"""``python -m src.check``: the checklist of configuration, data and weights, with no run started."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from src.check import MISSING, OK, check_manifest_entry, main, needed_weights
from src.config.compose import compose
from src.weights.core import WeightEntry, load_manifest
from tests.helpers import TINY_DATA


def _lines(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[:1] == [status]]


def test_the_demo_checks_ok_and_writes_no_run(runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic = TINY_DATA["src.datamodules.synthetic_faces.SyntheticFacesDataModule"]
    assert main(["experiment=demo/recognizer", *synthetic, f"paths.runs_dir={runs_dir}"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("check demo/recognizer (")
    assert " -m src.train experiment=demo/recognizer" in out.splitlines()[0]
    checked = _lines(out, OK)
    assert len(checked) == 6 and out.rstrip().endswith("all 6 checks OK")
    assert any("SyntheticFaces (synthetic data): train 24 images / 6 identities" in line for line in checked)
    for split in ("train", "val", "test"):
        assert any(f"{split} sample 0 of" in line and "image 3x32x32" in line for line in checked), split
    assert list(runs_dir.iterdir()) == []


def test_a_missing_data_root_names_the_path_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "my_faces"
    assert main(["experiment=demo/recognizer", "datamodule=identity_folders", f"datamodule.root={root}"]) == 1
    out = capsys.readouterr().out
    (missing,) = _lines(out, MISSING)
    assert "data" in missing and f"dataset root not found: {root}" in missing
    fix = out.splitlines()[out.splitlines().index(missing) + 1].strip()
    assert fix.startswith(f"fix: put the data at {root} or set datamodule.root=<folder>")
    assert 'docs/datasets.md, "Identity folders"' in fix and "data/README.md" in fix
    assert "1 of 3 checks not OK (1 MISSING)" in out


def test_data_that_is_there_but_unusable_is_bad_with_advice_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images directly in the root, or a split smaller than one batch: the data exists, so the advice must not
    be "put the data at <root>"."""
    from tests.test_identity_folders import make_layout

    flat = tmp_path / "flat"
    make_layout(flat, identities=2, images=1)
    for image in list(flat.rglob("*.png")):
        image.rename(flat / f"{image.parent.name}_{image.name}")
        image.parent.rmdir()
    base = ["experiment=demo/recognizer", "datamodule=identity_folders", "datamodule.image_size=32"]
    assert main([*base, f"datamodule.root={flat}"]) == 1
    out = capsys.readouterr().out
    (bad,) = _lines(out, "BAD")
    assert "images directly in it" in bad and "put the data at" not in out
    faces = make_layout(tmp_path / "faces", identities=8, images=3)
    small = [f"datamodule.root={faces}", "datamodule.val_identities=2", "datamodule.test_identities=2"]
    assert main([*base, *small, "datamodule.batch_size=64"]) == 1
    out = capsys.readouterr().out
    assert any("train split" in line and "fewer than one batch of 64" in line for line in _lines(out, "BAD"))


def test_configuration_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment=demo/recognizer", "trainer.max_epoch=3"]) == 2
    assert "Did you mean 'trainer.max_epochs'?" in capsys.readouterr().out
    assert main(["experiment=demo/obfuscation_baselines"]) == 2  # model.recognizer_ckpt: ???
    out = capsys.readouterr().out
    assert "required values not set: model.recognizer_ckpt" in out and "test sample 0 of" in out


def test_checkpoints_named_by_the_config_are_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic = TINY_DATA["src.datamodules.synthetic_faces.SyntheticFacesDataModule"]
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    assert main(["experiment=demo/recognizer", *synthetic, f"ckpt_path={text}"]) == 1
    out = capsys.readouterr().out
    assert any(
        "BAD" in line and "ckpt_path" in line and "not a PyTorch checkpoint" in line
        for line in out.splitlines()
    )
    assert main(["experiment=demo/recognizer", *synthetic, f"ckpt_path={tmp_path / 'gone.ckpt'}"]) == 1
    assert f"ckpt_path: file not found: {tmp_path / 'gone.ckpt'}" in capsys.readouterr().out


def test_weights_are_found_in_the_config_values_and_targets() -> None:
    cfg = compose("proface/released/lfw/simswap/IResNet50").config
    needs = {(need.key, need.manifest) for need in needed_weights(cfg, load_manifest())}
    assert needs == {
        ("model.obfuscator", "simswap-generator-224"),
        ("model.obfuscator", "simswap-arcface"),
        ("model.recognizer", "proface-ir50-casia"),
        ("model.embedder_weights", "proface-embedder-simswap-iresnet50"),
        ("model.perceptual", "lpips-vgg-backbone"),  # the LPIPS of the image metrics (x_p vs x_o)
        ("model.perceptual", "lpips-vgg-lin-v0.1"),
    }
    dlib = compose("obfuscation_baselines/lfw_dlib").config
    assert [need.manifest for need in needed_weights(dlib, load_manifest())] == [
        "dlib-face-recognition-resnet"
    ]
    assert needed_weights(compose("demo/recognizer").config, load_manifest()) == []


def test_a_manifest_file_is_ok_missing_or_bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path))
    content = b"weights"
    entry = WeightEntry(
        name="toy",
        file="toy.pth",
        sha256=hashlib.sha256(content).hexdigest(),
        sha256_complete=True,
        size_bytes=len(content),
        source="none",
        url="https://example.org/toy.pth",
        url_is_file=True,
        licence="test",
        papers=(),
        used_by=(),
        description="a test file",
    )
    manifest = {"toy": entry}
    missing = check_manifest_entry("toy", "model.x", manifest)
    assert missing.status == MISSING and "toy.pth not found" in missing.detail
    assert "python -m src.weights fetch toy" in missing.fix and str(tmp_path / "toy.pth") in missing.fix
    (tmp_path / "toy.pth").write_bytes(content)
    assert check_manifest_entry("toy", "model.x", manifest).status == OK
    (tmp_path / "toy.pth").write_bytes(b"other!!")
    bad = check_manifest_entry("toy", "model.x", manifest)
    assert bad.status == "BAD" and entry.sha256 in bad.detail
