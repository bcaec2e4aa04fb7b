"""CelebA and CelebA-HQ DataModules on miniature copies: list-file quirks, splits, labels, pairs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.instantiate import instantiate
from src.datamodules.celeba import CelebADataModule, CelebAHQDataModule
from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.metadata import MetadataFormatError, parse_celeba_txt
from src.datamodules.identity_folders import DatasetLayoutError
from src.metrics.identity import verification_accuracy
from tests.fixtures_datasets import (
    CELEBA_ATTRIBUTES,
    compose_datamodule,
    make_celeba,
    make_celeba_hq,
    write_text,
)
from tests.helpers import TINY_TRAINER, run_experiment


def celeba(root: Path, **kwargs) -> CelebADataModule:
    """A set-up DataModule at 16 px."""
    kwargs = {"image_size": 16, "batch_size": 2, **kwargs}
    dm = CelebADataModule(str(root), **kwargs)
    dm.setup()
    return dm


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "celeba"
    return root, make_celeba(root)


def expected_split(info: dict, code: int) -> tuple[list[str], list[int]]:
    """Files (numeric order) and CelebA ids of one partition code, straight from the fixture."""
    rows = [
        (f, i)
        for f, i, p in zip(info["files"], info["identity"], info["partition"], strict=True)
        if p == code
    ]
    return [f for f, _ in rows], [i for _, i in rows]


def test_counts_splits_labels_and_ids(fake: tuple[Path, dict]) -> None:
    root, info = fake
    dm = celeba(root, train_identities=4)
    described = dm.describe()
    assert (described["train_images"], described["val_images"], described["test_images"]) == (12, 6, 6)
    assert (described["train_identities"], described["val_identities"], described["test_identities"]) == (
        4,
        2,
        2,
    )
    assert described["identities"] == 8 and described["identity_disjoint_checked"] is True
    assert dm.num_classes == 4
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        files, ids = expected_split(info, code)
        dataset = dm.datasets[split]
        assert [p.name for p in dataset.paths] == files  # the partition file decides, numeric order
        assert dataset.extras["identity_id"].tolist() == ids
        assert dataset.extras["image_id"].tolist() == [int(f[:6]) for f in files]
        ranks = {identity: rank for rank, identity in enumerate(sorted(set(ids)))}
        assert dataset.labels.tolist() == [ranks[i] for i in ids]  # 0..K-1 by sorted CelebA id
    batch = next(iter(dm.test_dataloader()))
    assert set(batch) == {"image", "index", "identity", "identity_id", "image_id"}
    assert batch["image"].shape == (2, 3, 16, 16) and batch["identity"].dtype == torch.int64


def test_attributes_bbox_and_landmarks(fake: tuple[Path, dict]) -> None:
    root, info = fake
    dm = celeba(root, targets=["identity", "attr", "bbox", "landmarks"], image_size=89)
    assert dm.describe()["attribute_names"] == CELEBA_ATTRIBUTES  # the header's trailing space is gone
    dataset = dm.datasets["train"]
    rows = [info["files"].index(p.name) for p in dataset.paths]
    np.testing.assert_array_equal(dataset.extras["attributes"], (info["attr"][rows] > 0).astype(np.int64))
    np.testing.assert_array_equal(dataset.extras["bbox"], info["bbox"][rows])
    # aligned points (69, 109), ... minus the crop origin (0, 20), times 89 / 178
    np.testing.assert_allclose(dataset.extras["landmarks"][0, 0], [(69 - 0) / 2, (109 - 20) / 2])
    np.testing.assert_allclose(dataset.extras["landmarks"][0, 4], [108 / 2, (154 - 20) / 2])
    whole = celeba(root, targets=["landmarks"], crop_box=None, image_size=89)
    np.testing.assert_allclose(
        whole.datasets["val"].extras["landmarks"][0, 0], [69 / 2, 109 * 89 / 218], rtol=1e-6
    )
    assert whole.datasets["val"].labels is None  # no identity target: no labels


def test_grayscale_jpeg_is_read_as_rgb(fake: tuple[Path, dict]) -> None:
    root, info = fake
    dm = celeba(root)
    split = {0: "train", 1: "val", 2: "test"}[info["partition"][1]]
    position = [p.name for p in dm.datasets[split].paths].index(info["files"][1])
    assert dm.datasets[split][position]["image"].shape == (3, 16, 16)


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_official_and_kaggle_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / layout
    info = make_celeba(root, layout=layout)
    if layout == "kaggle":  # CSV lists and no identity file: attributes only
        with pytest.raises(
            DatasetLayoutError, match=r"CelebA identity file not found; looked for: .*identity_CelebA\.txt"
        ):
            celeba(root)
        dm = celeba(root, targets=["attr"])
        assert dm.datasets["train"].labels is None
        rows = [info["files"].index(p.name) for p in dm.datasets["train"].paths]
        np.testing.assert_array_equal(dm.datasets["train"].extras["attributes"], (info["attr"][rows] > 0))
    else:
        dm = celeba(root, targets=["identity", "attr", "bbox", "landmarks"])
        assert dm.describe()["identity_file"]["path"].endswith("Anno/identity_CelebA.txt")
    assert (len(dm.datasets["train"]), len(dm.datasets["val"]), len(dm.datasets["test"])) == (12, 6, 6)


def test_list_file_variants(fake: tuple[Path, dict]) -> None:
    root, _ = fake
    identity = root / "identity_CelebA.txt"
    lines = identity.read_bytes().decode().splitlines()
    write_text(identity, ["image_id identity", *lines], "\n")  # LF and an extra header line
    attr = root / "list_attr_celeba.txt"
    attr_lines = attr.read_bytes().decode().split("\r\n")
    write_text(
        attr, ["202599", *[line for line in attr_lines if line][1:]], "\r\n"
    )  # count line kept, rows cut
    dm = celeba(root, targets=["identity", "attr"])
    assert dm.describe()["identities"] == 8
    assert dm.describe()["attr_file"]["warning"] == "count line says 202599 but the file has 24 rows"
    table = parse_celeba_txt(root / "list_bbox_celeba.txt", 4)
    assert table.columns == ["x_1", "y_1", "width", "height"] and table.declared_count == 24
    assert table.files[0] == "000001.jpg" and table.values.shape == (24, 4)


def test_pairs_triplets_and_versioned_split_files(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    ids = {0: (11, 12, 13, 14), 1: (21, 22, 23, 24, 25, 26), 2: (31, 32, 33, 34, 35, 36)}
    make_celeba(root, ids=ids, images_per_identity=2, size=(24, 30))
    splits = tmp_path / "splits"
    kwargs = {
        "eval_protocol": "pairs",
        "train_protocol": "triplets",
        "splits_dir": str(splits),
        "crop_box": None,
    }
    dm = celeba(root, pair_folds=3, pairs_per_fold=2, **kwargs)
    pairs = dm.pair_list("test")
    assert pairs.fold.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert pairs.is_same.tolist() == [True, True, False, False] * 3
    labels = dm.datasets["test"].labels
    assert ((labels[pairs.index_a] == labels[pairs.index_b]) == pairs.is_same).all()
    assert (pairs.index_a != pairs.index_b).all()
    fold_identities = [
        set(labels[np.r_[pairs.index_a, pairs.index_b][np.r_[pairs.fold, pairs.fold] == f]]) for f in range(3)
    ]
    assert not (fold_identities[0] & fold_identities[1]) and not (fold_identities[1] & fold_identities[2])
    stored = splits / "celeba_test_pairs_3x2_seed0.csv"
    assert stored.read_text().splitlines()[0] == "fold,is_same,image_a,image_b"
    info = dm.describe()["split_files"]
    assert info["test_pairs"]["derived_now"] is True and info["test_pairs"]["pairs"] == 12
    # pair batches, and the fold ids feed the verification metric
    batch = next(iter(dm.test_dataloader()))
    assert {"image_a", "image_b", "is_same", "fold", "identity_a", "identity_b"} <= set(batch)
    scores = torch.from_numpy(pairs.is_same.astype(np.float32))
    result = verification_accuracy(
        scores, torch.from_numpy(pairs.is_same), num_folds=3, fold_ids=torch.from_numpy(pairs.fold)
    )
    assert result["mean"] == 1.0
    # triplets: positive shares the anchor's identity, the negative does not
    triplets = dm.triplets()
    train_labels = dm.datasets["train"].labels
    assert len(triplets) == 8
    assert (train_labels[triplets[:, 0]] == train_labels[triplets[:, 1]]).all()
    assert (triplets[:, 0] != triplets[:, 1]).all()
    assert (train_labels[triplets[:, 0]] != train_labels[triplets[:, 2]]).all()
    item = next(iter(dm.train_dataloader()))
    assert {"image", "identity", "image_positive", "image_negative", "identity_negative"} <= set(item)
    # a rerun reads the stored files and gets the same lists
    again = celeba(root, pair_folds=3, pairs_per_fold=2, **kwargs)
    assert again.describe()["split_files"]["test_pairs"]["derived_now"] is False
    np.testing.assert_array_equal(again.pair_list("test").index_a, pairs.index_a)
    np.testing.assert_array_equal(again.triplets(), triplets)
    # a stored list naming an image the split lacks is an error naming the file and line
    text = stored.read_text().replace(dm.records["test"].names[0], "999999.jpg")
    stored.write_text(text)
    with pytest.raises(
        MetadataFormatError, match=r"celeba_test_pairs_3x2_seed0\.csv:\d+: image 999999\.jpg.*delete it"
    ):
        celeba(root, pair_folds=3, pairs_per_fold=2, **kwargs)


def test_missing_metadata_and_images_name_the_path(fake: tuple[Path, dict]) -> None:
    root, _ = fake
    (root / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"1 image\(s\) listed in .*list_eval_partition\.txt.*000005\.jpg"
    ):
        celeba(root)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"CelebA partition file not found; looked for: .*list_eval_partition\.txt"
    ):
        celeba(root)
    with pytest.raises(DatasetLayoutError, match=r"dataset root not found: .*elsewhere"):
        celeba(root.parent / "elsewhere")


def test_malformed_lines_name_file_and_line(fake: tuple[Path, dict]) -> None:
    root, _ = fake
    path = root / "identity_CelebA.txt"
    lines = path.read_bytes().decode().split("\r\n")
    lines[3] = "000004.jpg two"
    write_text(path, lines, "\r\n", final_newline=False)
    with pytest.raises(
        MetadataFormatError, match=r"identity_CelebA\.txt:4: non-integer value in '000004\.jpg two'"
    ):
        celeba(root)
    lines[3] = "000004.jpg 7 8"
    write_text(path, lines, "\r\n", final_newline=False)
    with pytest.raises(
        MetadataFormatError, match=r"identity_CelebA\.txt:4: expected '<image>\.jpg' and 1 value"
    ):
        celeba(root)
    lines[3] = "000004.jpg 7"
    write_text(path, lines[:10], "\r\n")  # a truncated identity file
    with pytest.raises(MetadataFormatError, match=r"identity_CelebA\.txt has no line for 14 image"):
        celeba(root)
    partition = root / "list_eval_partition.txt"
    write_text(partition, [*partition.read_bytes().decode().split("\r\n")[:-1], "000099.jpg 3"], "\r\n")
    with pytest.raises(
        MetadataFormatError, match=r"partition values must be in \[0, 1, 2\]; image 000099\.jpg"
    ):
        celeba(root)


def test_identity_shared_across_splits_and_count_check(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    make_celeba(root, ids={0: (1, 2), 1: (2,), 2: (3,)})
    with pytest.raises(
        MetadataFormatError, match=r"identity_CelebA\.txt: 1 identities appear in more than one"
    ):
        celeba(root)
    assert celeba(root, check_identity_disjoint=False).describe()["identities"] == 3
    with pytest.raises(ValueError, match=r"train_identities=5 but the training split .* has 2 identities"):
        celeba(root, check_identity_disjoint=False, train_identities=5)


def test_corrupt_image_names_the_file_and_skip_records_it(fake: tuple[Path, dict]) -> None:
    root, info = fake
    files, _ = expected_split(info, 1)
    (root / "img_align_celeba" / files[0]).write_bytes(b"\xff\xd8 not a jpeg")
    dm = celeba(root)
    with pytest.raises(CorruptImageError, match=rf"img_align_celeba/{files[0]}.*skip_corrupt=true"):
        next(iter(dm.val_dataloader()))
    skipping = celeba(root, skip_corrupt=True)
    assert [Path(e["path"]).name for e in skipping.describe()["skipped_files"]] == [files[0]]
    assert len(skipping.datasets["val"]) == 5


# --- CelebA-HQ ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "padded"), [(True, False), (False, True)])
def test_celeba_hq_through_the_mapping(tmp_path: Path, header: bool, padded: bool) -> None:
    info = make_celeba(tmp_path / "celeba")
    chosen = make_celeba_hq(tmp_path / "hq", info["files"], header=header, padded=padded)
    dm = CelebAHQDataModule(
        str(tmp_path / "hq"),
        str(tmp_path / "celeba"),
        image_size=16,
        batch_size=2,
        targets=["identity", "attr"],
    )
    dm.setup()
    lookup = {f: (i, p) for f, i, p in zip(info["files"], info["identity"], info["partition"], strict=True)}
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        dataset = dm.datasets[split]
        hq = dataset.extras["image_id"].tolist()
        assert hq == sorted(hq)  # numeric HQ order
        sources = [chosen[i] for i in hq]
        assert all(lookup[f][1] == code for f in sources)  # split via orig_file and the partition file
        assert dataset.extras["identity_id"].tolist() == [lookup[f][0] for f in sources]
        assert dataset.extras["celeba_image_id"].tolist() == [int(f[:6]) for f in sources]
    described = dm.describe()
    assert described["identities"] == 8 and described["images"] == 24
    assert described["hq_images_not_in_mapping"] == 0


def test_celeba_hq_errors(tmp_path: Path) -> None:
    info = make_celeba(tmp_path / "celeba")
    hq = tmp_path / "hq"
    make_celeba_hq(hq, info["files"])

    def setup(**kwargs) -> CelebAHQDataModule:
        dm = CelebAHQDataModule(str(hq), str(tmp_path / "celeba"), image_size=16, batch_size=2, **kwargs)
        dm.setup()
        return dm

    (hq / "CelebA-HQ-img" / "3.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"1 image\(s\) listed in .*CelebA-HQ-to-CelebA-mapping\.txt.*CelebA-HQ-img/3\.jpg",
    ):
        setup()
    mapping = hq / "CelebA-HQ-to-CelebA-mapping.txt"
    lines = mapping.read_text().splitlines()
    lines[2] = "1 5 000005.jpg"
    write_text(mapping, lines)
    with pytest.raises(
        MetadataFormatError, match=r"mapping\.txt:3: orig_file 000005\.jpg does not match orig_idx 5"
    ):
        setup()
    mapping.unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"CelebA-HQ mapping file not found; looked for: .*CelebA-HQ-to-CelebA-mapping",
    ):
        setup()
    with pytest.raises(ValueError, match="unknown target"):
        CelebAHQDataModule(str(hq), str(tmp_path / "celeba"), targets=["landmarks"], batch_size=2)


def test_yaml_configs_compose_and_follow_proface_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    info = make_celeba(data / "celeba")
    make_celeba_hq(data / "celeba_hq", info["files"])
    monkeypatch.setenv("PROFACE_DATA", str(data))
    small = ["datamodule.image_size=16", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    small.append(f"datamodule.splits_dir={tmp_path / 'splits'}")
    cfg = compose_datamodule("celeba", [*small, "datamodule.train_identities=4"])
    assert cfg.root == str(data / "celeba") and cfg.transform[0]["name"] == "HorizontalFlip"
    dm = instantiate(cfg)
    dm.setup()
    assert dm.num_classes == 4 and dm.transform_spec == [{"name": "HorizontalFlip", "p": 0.5}]
    hq_cfg = compose_datamodule("celeba_hq", [*small, "datamodule.train_identities=4"])
    assert hq_cfg.celeba_root == str(data / "celeba")
    hq = instantiate(hq_cfg)
    hq.setup()
    assert hq.describe()["train_images"] == 12


def test_recognizer_run_records_the_counts(tmp_path: Path, runs_dir: Path) -> None:
    """A tiny training run on CelebA: the run record's data.json carries the DataModule's counts."""
    root = tmp_path / "celeba"
    make_celeba(root, size=(36, 44))
    overrides = [
        "datamodule=celeba",
        f"datamodule.root={root}",
        "datamodule.train_identities=4",
        "datamodule.image_size=32",
        "datamodule.crop_box=null",
        "datamodule.batch_size=4",
        "datamodule.num_workers=0",
        f"datamodule.splits_dir={tmp_path / 'splits'}",
        *TINY_TRAINER,
        "test=false",
        f"paths.runs_dir={runs_dir}",
    ]
    result = run_experiment("demo/recognizer", overrides)
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["dataset"] == "celeba" and data["images"] == 24 and data["identities"] == 8
    assert (data["train_images"], data["val_images"], data["test_images"]) == (12, 6, 6)
    assert data["partition_file"]["rows"] == 24 and data["skipped_files"] == []


def test_derived_lists_ignore_the_global_rng_and_unreadable_triplets_are_replaced(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    info = make_celeba(root, size=(24, 30))
    kwargs = {"train_protocol": "triplets", "crop_box": None, "skip_corrupt": True, "batch_size": 4}
    torch.manual_seed(1)
    first = celeba(root, **kwargs).triplets()
    torch.manual_seed(2)
    np.testing.assert_array_equal(celeba(root, **kwargs).triplets(), first)
    files, _ = expected_split(info, 0)
    (root / "img_align_celeba" / files[0]).write_bytes(b"")
    dm = celeba(root, **kwargs)
    items = [dm.triplet_dataset()[i] for i in range(len(first))]
    labels = dm.datasets["train"].labels
    for item in items:  # a substitute triplet keeps anchor and positive together, the negative apart
        assert int(item["identity"]) != int(item["identity_negative"])
        assert int(labels[int(item["anchor_index"])]) == int(item["identity"])
