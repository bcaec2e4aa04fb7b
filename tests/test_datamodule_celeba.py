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
    write_pairs_txt,
    write_text,
    write_triplet_lists,
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


# --- pair and triplet lists of the released protection code ------------------------------------------------


def by_identity(info: dict, code: int) -> dict[int, list[str]]:
    """CelebA id → its files of partition ``code`` in file-number order."""
    files, ids = expected_split(info, code)
    out: dict[int, list[str]] = {}
    for name, identity in zip(files, ids, strict=True):
        out.setdefault(identity, []).append(name)
    return out


def test_lfw_format_pairs_name_celeba_identities(fake: tuple[Path, dict]) -> None:
    """CelebA pairs.txt in LFW format ('10 300' header, no final newline): 'id i' = i-th image of the id."""
    root, info = fake
    images = by_identity(info, 2)  # test: ids 6369 and 10177, 3 images each
    write_pairs_txt(
        root / "pairs.txt",
        [
            ([(6369, 1, 3)], [(6369, 2, 10177, 1)]),
            ([(10177, 2, 3)], [(10177, 3, 6369, 3)]),
        ],
    )
    dm = celeba(root, pairs_file="pairs.txt")
    pairs = dm.pair_list("test")
    names = dm.records["test"].names
    got = [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)]
    assert got == [
        (images[6369][0], images[6369][2]),
        (images[6369][1], images[10177][0]),
        (images[10177][1], images[10177][2]),
        (images[10177][2], images[6369][2]),
    ]
    assert pairs.fold.tolist() == [0, 0, 1, 1] and pairs.is_same.tolist() == [True, False, True, False]
    batch = next(iter(dm.pair_dataloader("test")))
    assert (batch["identity_a"] == batch["identity_b"]).tolist() == [True, False]
    info_pairs = dm.describe()["split_files"]["test_pairs"]
    assert info_pairs["provided"] and info_pairs["naming"] == "index" and info_pairs["format"] == "lfw"
    # a pair whose flag contradicts the identities, an unknown identity, a number beyond the images
    for rows, pattern in [
        (
            [([(6369, 1, 3)], [(6369, 2, 6369, 1)])],
            r"pairs\.txt:3: a mismatched pair, but .* the same identity",
        ),
        (
            [([(2880, 1, 2)], [(6369, 2, 10177, 1)])],
            r"pairs\.txt:2: identity '2880' has no image in the test split",
        ),
        ([([(6369, 1, 4)], [(6369, 2, 10177, 1)])], r"pairs\.txt:2: identity '6369' has 3 image\(s\)"),
    ]:
        write_pairs_txt(root / "pairs.txt", rows)
        with pytest.raises(MetadataFormatError, match=pattern):
            celeba(root, pairs_file="pairs.txt")
    with pytest.raises(DatasetLayoutError, match=r"datamodule\.pairs_file not found: .*nowhere\.txt"):
        celeba(root, pairs_file="nowhere.txt")
    with pytest.raises(ValueError, match=r"pairs are for the val and test splits, not \['train'\]"):
        CelebADataModule(str(root), pairs_file={"train": "pairs.txt"}, batch_size=2)


def test_pair_csv_for_val_and_test(fake: tuple[Path, dict]) -> None:
    root, info = fake
    val, test = by_identity(info, 1), by_identity(info, 2)
    (a, b), (c, d) = sorted(val.items())[:2], sorted(test.items())[:2]
    write_text(
        root / "val_pairs.csv",
        ["fold,is_same,image_a,image_b", f"0,1,{a[1][0]},{a[1][1]}", f"0,0,{a[1][0]},{b[1][0]}"],
    )
    write_text(
        root / "test_pairs.csv",
        ["fold,is_same,image_a,image_b", f"0,1,{c[1][0]},{c[1][2]}", f"1,0,{c[1][0]},{d[1][0]}"],
    )
    dm = celeba(root, pairs_file={"val": "val_pairs.csv", "test": str(root / "test_pairs.csv")})
    assert dm.pair_list("val").is_same.tolist() == [True, False]
    assert dm.pair_list("test").fold.tolist() == [0, 1]
    assert dm.describe()["split_files"]["test_pairs"]["format"] == "csv"
    write_text(root / "test_pairs.csv", ["fold,is_same,image_a,image_b", f"0,1,{c[1][0]},{a[1][0]}"])
    with pytest.raises(
        MetadataFormatError, match=rf"test_pairs\.csv:2: image {a[1][0]} is not in the dataset split"
    ):
        celeba(root, pairs_file={"test": "test_pairs.csv"})


def test_filenames_and_index_triplet_lists(fake: tuple[Path, dict]) -> None:
    """filenames_train.txt + triplets_train.txt ('anchor negative positive' indices into the filenames)."""
    root, info = fake
    files, ids = expected_split(info, 0)
    listed = [f"/home/someone/CelebA/img_align_crop_224/{f}" for f in files[::-1]]  # other order, a prefix
    labels = ids[::-1]
    rng = np.random.default_rng(0)
    triplets = []
    for anchor in range(len(listed)):
        same = [i for i in range(len(listed)) if labels[i] == labels[anchor] and i != anchor]
        other = [i for i in range(len(listed)) if labels[i] != labels[anchor]]
        triplets.append((anchor, int(rng.choice(same)), int(rng.choice(other))))
    write_triplet_lists(root / "lists", "train", listed, triplets, labels=labels)
    kwargs = {
        "train_protocol": "triplets",
        "triplets_file": "lists/triplets_train.txt",
        "triplet_filenames_file": "lists/filenames_train.txt",
    }
    dm = celeba(root, **kwargs)
    names = dm.records["train"].names
    got = [tuple(names[i] for i in row) for row in dm.triplets()]
    assert got == [tuple(files[::-1][i] for i in row) for row in triplets]  # (anchor, positive, negative)
    item = next(iter(dm.train_dataloader()))
    assert {"image", "image_positive", "image_negative", "identity", "identity_negative"} <= set(item)
    record = dm.describe()["split_files"]["train_triplets"]
    assert record["provided"] and record["format"] == "index" and record["triplets"] == 12
    assert record["index_base"] == 0 and record["left_out_unavailable"] == 0
    # 1-based indices
    write_triplet_lists(root / "one", "train", listed, triplets, base=1)
    one_lists = {
        "triplets_file": "one/triplets_train.txt",
        "triplet_filenames_file": "one/filenames_train.txt",
    }
    one = celeba(root, **{**kwargs, **one_lists}, triplet_index_base=1)
    np.testing.assert_array_equal(one.triplets(), dm.triplets())
    # errors name the file and the line
    lines = (root / "lists" / "triplets_train.txt").read_text().splitlines()
    write_text(root / "lists" / "triplets_train.txt", [*lines[:2], "0 3 12", *lines[3:]])
    with pytest.raises(
        MetadataFormatError,
        match=r"triplets_train\.txt:3: index 12 is outside .*filenames_train\.txt, which lists 12 files"
        r".*triplet_index_base=1",
    ):
        celeba(root, **kwargs)
    a, p, n = triplets[2]
    write_text(root / "lists" / "triplets_train.txt", [*lines[:2], f"{a} {p} {n}", *lines[3:]])  # swapped
    with pytest.raises(
        MetadataFormatError, match=r"triplets_train\.txt:3: the positive must share the anchor's identity"
    ):
        celeba(root, **kwargs)
    write_text(root / "lists" / "triplets_train.txt", lines)
    val_file = expected_split(info, 1)[0][0]
    write_text(
        root / "lists" / "filenames_train.txt",
        [f"{val_file} 1", *[f"{f} {lab}" for f, lab in zip(listed[1:], labels[1:], strict=True)]],
    )
    with pytest.raises(
        MetadataFormatError, match=rf"filenames_train\.txt:1: image {val_file} is not in the training split"
    ):
        celeba(root, **kwargs)
    write_triplet_lists(root / "lists", "train", listed, triplets, labels=[labels[0]] * 12)
    with pytest.raises(
        MetadataFormatError, match=r"filenames_train\.txt:\d+: label \d+ of .* groups images differently"
    ):
        celeba(root, **kwargs)
    with pytest.raises(ValueError, match=r"holds image indices; set datamodule\.triplet_filenames_file"):
        celeba(root, train_protocol="triplets", triplets_file="lists/triplets_train.txt")
    with pytest.raises(ValueError, match=r"triplets_file is set but datamodule\.train_protocol is 'images'"):
        CelebADataModule(str(root), triplets_file="lists/triplets_train.txt", batch_size=2)


def test_partial_copy_is_an_error_once_or_used_with_allow_partial(fake: tuple[Path, dict]) -> None:
    root, info = fake
    train, val, test = (by_identity(info, code) for code in (0, 1, 2))
    gone = [train[2880][0], train[8692][1], test[6369][0], *[f for files in val.values() for f in files]]
    for name in gone:
        (root / "img_align_celeba" / name).unlink()
    with pytest.raises(DatasetLayoutError) as error:
        celeba(root)
    message = str(error.value)
    assert message.count("listed in") == 1 and "9 image(s) listed in" in message
    assert "list_eval_partition.txt" in message and "allow_partial=true" in message
    list_file = Path(message.split("the full list of 9 is in ")[1].split(". To proceed")[0])
    assert sorted(Path(line).name for line in list_file.read_text().splitlines()) == sorted(gone)
    # proceed with what is present: the val split has no image left
    write_pairs_txt(
        root / "pairs.txt",
        [([(6369, 2, 3)], [(6369, 1, 10177, 1)]), ([(10177, 1, 2)], [(6369, 3, 10177, 3)])],
    )
    dm = celeba(root, allow_partial=True, pairs_file="pairs.txt", train_identities=4)
    assert set(dm.datasets) == {"train", "test"}
    assert (len(dm.datasets["train"]), len(dm.datasets["test"])) == (10, 5)
    with pytest.raises(ValueError, match=r"has no val split \(none of its images is present\)"):
        dm.val_dataloader()
    record = dm.describe()["missing_files"]
    assert record["count"] == 9 and record["per_split"] == {"train": 2, "val": 6, "test": 1}
    assert record["splits_without_images"] == ["val"] and record["list_file"] == str(list_file)
    assert record["listed_in"] == {str(root / "list_eval_partition.txt"): 9}
    # 'id i' keeps the listing's numbering: image 2 of 6369 is the same file as on the complete copy
    pairs = dm.pair_list("test")
    names = dm.records["test"].names
    assert (names[pairs.index_a[0]], names[pairs.index_b[0]]) == (test[6369][1], test[6369][2])
    assert len(pairs) == 3 and dm.describe()["split_files"]["test_pairs"]["left_out_missing"] == 1


def test_celeba_hq_partial_copy(tmp_path: Path) -> None:
    info = make_celeba(tmp_path / "celeba")
    hq = tmp_path / "hq"
    make_celeba_hq(hq, info["files"])
    (hq / "CelebA-HQ-img" / "3.jpg").unlink()
    dm = CelebAHQDataModule(
        str(hq), str(tmp_path / "celeba"), image_size=16, batch_size=2, allow_partial=True
    )
    dm.setup()
    described = dm.describe()
    assert described["images"] == 23 and described["hq_images_not_in_mapping"] == 0
    assert described["missing_files"]["count"] == 1
    assert described["missing_files"]["examples"] == [str(hq / "CelebA-HQ-img" / "3.jpg")]


def test_partial_copy_in_a_run_records_the_missing_files(tmp_path: Path, runs_dir: Path) -> None:
    """allow_partial through a real run: data.json lists the missing files, the full list sits in the run."""
    root = tmp_path / "celeba"
    info = make_celeba(root, size=(36, 44))
    gone = expected_split(info, 0)[0][:2]
    for name in gone:
        (root / "img_align_celeba" / name).unlink()
    overrides = [
        "datamodule=celeba",
        f"datamodule.root={root}",
        "datamodule.train_identities=4",
        "datamodule.allow_partial=true",
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
    assert data["train_images"] == 10 and data["missing_files"]["count"] == 2
    list_file = Path(data["missing_files"]["list_file"])
    assert list_file == result.run_dir / "missing_files_celeba.txt"
    assert sorted(Path(line).name for line in list_file.read_text().splitlines()) == sorted(gone)
