"""Identity-folder DataModule on a miniature on-disk layout: splits, counts and every bad-input path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.datamodules.components.image_io import CorruptImageError, read_image_rgb
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.identity_folders import DatasetLayoutError, IdentityFoldersDataModule
from tests.fixtures_datasets import write_pairs_txt, write_text
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


def make_lfw_style(root: Path, people: dict[str, int], size: int = 16) -> Path:
    """``root/<Name>/<Name>_0001.png`` (an aligned LFW-style folder, as ``python -m src.preprocess.align``
    writes it)."""
    rng = np.random.default_rng(1)
    for name, count in people.items():
        (root / name).mkdir(parents=True)
        for k in range(1, count + 1):
            cv2.imwrite(
                str(root / name / f"{name}_{k:04d}.png"), rng.integers(0, 255, (size, size, 3), np.uint8)
            )
    return root


def test_pairs_file_fixes_the_test_identities(tmp_path: Path) -> None:
    people = {"Ann": 3, "Bob": 1, "Cid": 2, "Dan": 2, "Eve": 2, "Fay": 2, "Gus": 2, "Hal": 2}
    root = make_lfw_style(tmp_path / "faces", people)
    write_pairs_txt(
        tmp_path / "pairs.txt",
        [([("Ann", 1, 3)], [("Ann", 2, "Bob", 1)]), ([("Cid", 1, 2)], [("Cid", 2, "Ann", 1)])],
        separator="\t",
        final_newline=True,
    )
    dm = IdentityFoldersDataModule(
        str(root),
        image_size=16,
        val_identities=2,
        test_identities=100,  # not used: the pair list names the test identities
        pairs_file=str(tmp_path / "pairs.txt"),
        eval_protocol="pairs",
        pair_folds=1,
        pairs_per_fold=1,
        batch_size=2,
    )
    dm.setup()
    assert set(dm.splits["test"]) == {"Ann", "Bob", "Cid"}  # Bob has one image: kept for the pairs
    assert len(dm.splits["val"]) == 2 and not set(dm.splits["train"]) & {"Ann", "Bob", "Cid"}
    pairs = dm.pair_list("test")
    names = dm.records["test"].names
    assert [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)] == [
        ("Ann/Ann_0001.png", "Ann/Ann_0003.png"),
        ("Ann/Ann_0002.png", "Bob/Bob_0001.png"),
        ("Cid/Cid_0001.png", "Cid/Cid_0002.png"),
        ("Cid/Cid_0002.png", "Ann/Ann_0001.png"),
    ]
    info = dm.describe()
    assert info["split_files"]["test_pairs"]["naming"] == "lfw"
    assert info["identities_from_pairs_file"] == {"test": str(tmp_path / "pairs.txt")}
    assert info["test_identities"] == 3 and info["excluded_identities_below_min_images"] == 0
    batch = next(iter(dm.test_dataloader()))
    assert batch["image_a"].shape == (2, 3, 16, 16) and batch["is_same"].tolist() == [True, False]
    # the same list naming an identity without a folder names the file and line
    write_pairs_txt(tmp_path / "pairs.txt", [([("Ann", 1, 3)], [("Ann", 2, "Zed", 1)])])
    with pytest.raises(MetadataFormatError, match=r"pairs\.txt:3: identity 'Zed' has no folder"):
        IdentityFoldersDataModule(str(root), pairs_file=str(tmp_path / "pairs.txt"), batch_size=2).setup()


def test_index_naming_and_triplet_csv(tmp_path: Path) -> None:
    """Re-indexed ``id*/`` folders: 'id3 2' is the 2nd image of id3; triplets as a CSV of image names."""
    root = make_layout(tmp_path / "faces", identities=6, images=3)
    write_pairs_txt(tmp_path / "pairs.txt", [([("person_01", 1, 3)], [("person_01", 2, "person_02", 3)])])
    write_text(
        tmp_path / "triplets.csv",
        [
            "anchor,positive,negative",
            "person_03/img_0.png,person_03/img_2.png,person_04/img_1.png",
            "person_05/img_1.png,person_05/img_0.png,person_03/img_0.png",
        ],
    )
    dm = IdentityFoldersDataModule(
        str(root),
        image_size=16,
        pairs_file={"val": str(tmp_path / "pairs.txt")},
        train_protocol="triplets",
        triplets_file=str(tmp_path / "triplets.csv"),
        batch_size=2,
    )
    dm.setup()
    pairs = dm.pair_list("val")
    names = dm.records["val"].names
    assert [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)] == [
        ("person_01/img_0.png", "person_01/img_2.png"),
        ("person_01/img_1.png", "person_02/img_2.png"),
    ]
    assert dm.describe()["split_files"]["val_pairs"]["naming"] == "index"
    train = dm.records["train"].names
    assert [[train[i] for i in row] for row in dm.triplets()] == [
        ["person_03/img_0.png", "person_03/img_2.png", "person_04/img_1.png"],
        ["person_05/img_1.png", "person_05/img_0.png", "person_03/img_0.png"],
    ]
    item = next(iter(dm.train_dataloader()))
    assert (item["identity"] != item["identity_negative"]).all()
    write_text(
        tmp_path / "triplets.csv",
        ["anchor,positive,negative", "person_01/img_0.png,person_01/img_1.png,person_03/img_0.png"],
    )
    with pytest.raises(
        MetadataFormatError, match=r"triplets\.csv:2: image person_01/img_0\.png is not in the training split"
    ):
        IdentityFoldersDataModule(
            str(root),
            pairs_file={"val": str(tmp_path / "pairs.txt")},
            train_protocol="triplets",
            triplets_file=str(tmp_path / "triplets.csv"),
            batch_size=2,
        ).setup()


def _folder_overrides(root: Path, runs_dir: Path, *extra: str) -> list[str]:
    """demo/recognizer's tiny settings on ``datamodule=identity_folders`` at ``root`` (10 ids: 4/3/3)."""
    tiny = [o for o in tiny_overrides("demo/recognizer", runs_dir) if not o.startswith("datamodule.")]
    folders = ["datamodule=identity_folders", f"datamodule.root={root}", "datamodule.image_size=32"]
    sizes = ["datamodule.val_identities=3", "datamodule.test_identities=3", "datamodule.batch_size=8"]
    return [*tiny, *folders, *sizes, "datamodule.num_workers=0", *extra]


def test_a_recognizer_trains_on_identity_folders_and_its_checkpoint_evaluates(
    tmp_path: Path, runs_dir: Path
) -> None:
    """No class count to set: the ArcFace head is sized from the training identities the folders give, and
    evaluating the checkpoint with the same (unsized) config sizes it from the checkpoint."""
    import torch

    from tests.helpers import run_experiment

    root = make_layout(tmp_path / "faces", identities=10, images=4, size=32)
    overrides = _folder_overrides(root, runs_dir, "trainer.max_epochs=1")
    trained = run_experiment("demo/recognizer", overrides)
    data = json.loads((trained.run_dir / "data.json").read_text())
    checkpoint = trained.run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert data["train_identities"] == 4 and state["head.weight"].shape[0] == 4
    evaluated = run_experiment("demo/recognizer", [*overrides, f"ckpt_path={checkpoint}"], task="eval")
    summary = json.loads((evaluated.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and 0.0 <= summary["test/rank1"] <= 1.0


def test_a_head_size_that_does_not_fit_the_folders_names_the_key(tmp_path: Path, runs_dir: Path) -> None:
    from src.config.errors import ConfigError
    from tests.helpers import run_experiment

    root = make_layout(tmp_path / "faces", identities=10, images=4, size=32)
    with pytest.raises(ConfigError, match=r"model\.head\.num_classes=7 but the training split has 4"):
        run_experiment("demo/recognizer", _folder_overrides(root, runs_dir, "model.head.num_classes=7"))


def test_an_unsized_head_takes_its_size_from_data_or_weights() -> None:
    import torch

    from src.networks.arcface_head import ArcMarginHead

    head = ArcMarginHead(embedding_dim=8)
    assert head.num_classes is None and list(head.state_dict()) == ["weight"]
    with pytest.raises(RuntimeError, match="no classes yet"):
        head(torch.zeros(2, 8), torch.zeros(2, dtype=torch.long))
    trained = ArcMarginHead(embedding_dim=8, num_classes=5)
    head.load_state_dict(trained.state_dict())
    assert head.num_classes == 5 and torch.equal(head.weight, trained.weight)
    with pytest.raises(ValueError, match="already has 5 classes"):
        head.set_num_classes(6)
    sized = ArcMarginHead(embedding_dim=8)
    sized.set_num_classes(3)
    assert sized(torch.randn(2, 8), torch.tensor([0, 2])).shape == (2, 3)


def test_layout_check_names_loose_images_and_too_few_identities_without_scanning(tmp_path: Path) -> None:
    from src.config.errors import ConfigError

    flat = tmp_path / "flat"
    flat.mkdir()
    for k in range(3):
        cv2.imwrite(str(flat / f"img_{k}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetLayoutError, match="3 images directly in it.*own sub-folder"):
        IdentityFoldersDataModule(str(flat), batch_size=2).check_layout()
    root = make_layout(tmp_path / "faces", identities=4, images=1)
    few = IdentityFoldersDataModule(str(root), val_identities=2, test_identities=2, batch_size=2)
    with pytest.raises(ConfigError, match=r"4 identities cannot give 2 validation and 2 test"):
        few.check_layout()
    with pytest.raises(DatasetLayoutError, match=r"nowhere.*Expected layout.*datamodule\.root"):
        IdentityFoldersDataModule(str(tmp_path / "nowhere"), batch_size=2).check_layout()
