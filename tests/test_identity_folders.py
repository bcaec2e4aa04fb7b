"""Identity-folder DataModule on a miniature on-disk layout: splits, counts and every bad-input path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.datamodules.components.image_io import CorruptImageError, read_image_rgb
from src.datamodules.identity_folders import DatasetLayoutError, IdentityFoldersDataModule
from tests.helpers import tiny_overrides


def make_layout(root: Path, identities: int = 8, images: int = 3, size: int = 24) -> Path:
    """``root/person_NN/img_K.png`` with distinct random images."""
    rng = np.random.default_rng(0)
    for i in range(identities):
        folder = root / f"person_{i:02d}"
        folder.mkdir(parents=True)
        for k in range(images):
            cv2.imwrite(str(folder / f"img_{k}.png"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return root


def test_splits_are_identity_disjoint_and_counted(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "faces")
    (root / "loner").mkdir()
    cv2.imwrite(str(root / "loner" / "only.png"), np.zeros((8, 8, 3), np.uint8))
    dm = IdentityFoldersDataModule(
        str(root), image_size=16, val_identities=2, test_identities=2, batch_size=4
    )
    dm.setup()
    names = {split: set(ids) for split, ids in dm.splits.items()}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    assert not (names["val"] & names["test"])
    info = dm.describe()
    assert (info["train_identities"], info["val_identities"], info["test_identities"]) == (4, 2, 2)
    assert info["train_images"] == 12 and info["excluded_identities_below_min_images"] == 1
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].max() <= 1.0
    again = IdentityFoldersDataModule(
        str(root), image_size=16, val_identities=2, test_identities=2, batch_size=4
    )
    again.setup()
    assert again.splits == dm.splits  # the seeded split is reproducible


def test_missing_root_names_the_path_and_the_layout(tmp_path: Path) -> None:
    dm = IdentityFoldersDataModule(str(tmp_path / "nowhere"), batch_size=2)
    with pytest.raises(DatasetLayoutError, match=r"dataset root not found: .*nowhere.*Expected layout"):
        dm.setup()


def test_empty_root_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="no identity folder"):
        IdentityFoldersDataModule(str(tmp_path / "empty"), batch_size=2).setup()


def test_corrupt_image_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "faces")
    bad = root / "person_03" / "img_1.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(CorruptImageError, match=r"person_03/img_1\.png"):
        read_image_rgb(bad)
    dm = IdentityFoldersDataModule(str(root), image_size=16, batch_size=24)
    dm.setup()
    with pytest.raises(CorruptImageError, match=r"person_03/img_1\.png.*skip_corrupt=true"):
        next(iter(dm.train_dataloader()))


def test_skip_corrupt_records_the_files_in_the_run(tmp_path: Path, runs_dir: Path) -> None:
    """Through a real run: the skipped eval and train files end up in data.json, none silently lost."""
    root = make_layout(tmp_path / "faces", identities=10, images=4, size=32)
    (root / "person_01" / "img_2.png").write_bytes(b"\x89PNG broken")
    (root / "person_07" / "img_0.png").write_bytes(b"")
    experiments_dir = tmp_path / "experiments"
    import shutil

    from src.config.compose import EXPERIMENTS_DIR, Composer
    from src.tasks import run

    shutil.copytree(EXPERIMENTS_DIR, experiments_dir)
    (experiments_dir / "folders.yaml").write_text(
        "defaults:\n  - demo/recognizer\ndatamodule:\n  _delete_: true\n"
        "  _target_: src.datamodules.identity_folders.IdentityFoldersDataModule\n"
        f"  root: {root}\n  image_size: 32\n  val_identities: 3\n  test_identities: 3\n"
        "  skip_corrupt: ${data.skip_corrupt}\n  batch_size: 8\n"
        "model:\n  head:\n    num_classes: 4\n  net:\n    input_size: 32\n"
    )
    overrides = [o for o in tiny_overrides("demo/recognizer", runs_dir) if not o.startswith("datamodule.")]
    overrides += ["data.skip_corrupt=true", "trainer.max_epochs=2"]
    composed = Composer(experiments_dir).compose("folders", overrides)
    result = run(composed.config, composed.overrides)
    data = json.loads((result.run_dir / "data.json").read_text())
    skipped = {Path(entry["path"]).relative_to(root).as_posix() for entry in data["skipped_files"]}
    assert skipped == {"person_01/img_2.png", "person_07/img_0.png"}
    assert (result.run_dir / "skipped_files.csv").is_file()
