"""VGGFace2 DataModule on miniature copies: meta-file quirks, official + held-out splits, crops, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from src.config.instantiate import instantiate
from src.datamodules.components.geometry import ARCFACE_112, BoxCrop, LandmarkAlign, similarity_transform
from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.metadata import MetadataFormatError, parse_identity_meta
from src.datamodules.identity_folders import DatasetLayoutError
from src.datamodules.vggface2 import VGGFace2DataModule
from tests.fixtures_datasets import (
    VGGFACE2_ATTRIBUTES,
    VGGFACE2_TEST,
    VGGFACE2_TRAIN,
    compose_datamodule,
    make_vggface2,
    make_vggface2_attributes,
    write_pairs_txt,
    write_text,
)


def vggface2(root: Path, **kwargs) -> VGGFace2DataModule:
    """A set-up DataModule at 16 px."""
    kwargs = {"image_size": 16, "batch_size": 2, **kwargs}
    dm = VGGFace2DataModule(str(root), **kwargs)
    dm.setup()
    return dm


def listed(classes: dict[str, list[str]]) -> list[str]:
    return [f"{c}/{image}" for c in sorted(classes) for image in sorted(classes[c])]


@pytest.mark.parametrize(("style", "meta_dir"), [("spaced", ""), ("errata", "meta/")])
def test_counts_labels_and_official_splits(tmp_path: Path, style: str, meta_dir: str) -> None:
    root = make_vggface2(tmp_path / "vgg", meta_style=style, meta_dir=meta_dir)
    dm = vggface2(root, crop="none")
    info = dm.describe()
    assert (info["train_images"], info["train_identities"]) == (10, 4)
    assert (info["test_images"], info["test_identities"]) == (8, 4)
    assert info["identities"] == 8 and "val_images" not in info
    assert info["identity_meta_rows"] == 9 and info["identity_meta_rows_without_folder"] == 1
    assert info["identity_meta_flag_mismatches"] == [] and info["genders"] == {"f": 5, "m": 3}
    train = dm.datasets["train"]
    names = [p.relative_to(root / "train").as_posix() for p in train.paths]
    assert names == listed(VGGFACE2_TRAIN)
    classes = [n.split("/")[0] for n in names]
    assert train.labels.tolist() == [sorted(set(classes)).index(c) for c in classes]
    assert train.extras["identity_id"].tolist() == [int(c[1:]) for c in classes]
    test_classes = {p.parent.name for p in dm.datasets["test"].paths}
    assert test_classes == set(VGGFACE2_TEST) and not test_classes & set(classes)
    batch = next(iter(dm.test_dataloader()))
    assert set(batch) == {"image", "index", "identity", "identity_id"} and batch["image"].shape == (
        2,
        3,
        16,
        16,
    )


def test_identity_meta_quirks(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "identity_meta.csv",
        [
            "Class_ID, Name, Sample_Num, Flag, Gender",
            'n000001, "14th_Dalai_Lama", 424, 0, m,',
            'n000002," ""A_Fine_Frenzy""",315,1, f',
            'n000005, "Aaron_Carter, Jr.", 12, 1, m',
        ],
        "\r\n",
    )
    meta = parse_identity_meta(path)
    assert meta["n000001"].name == "14th_Dalai_Lama" and meta["n000001"].flag == 0
    assert (
        meta["n000002"].name == "A_Fine_Frenzy"
        and meta["n000002"].sample_num == 315
        and meta["n000002"].gender == "f"
    )
    assert meta["n000005"].name == "Aaron_Carter, Jr."
    write_text(path, ["Class_ID,Name,Sample_Num,Flag,Gender", "n000001, Name, many, 0, m"])
    with pytest.raises(
        MetadataFormatError, match=r"identity_meta\.csv:2: Sample_Num and Flag must be integers"
    ):
        parse_identity_meta(path)
    write_text(path, ["ID,Name", "n000001,x"])
    with pytest.raises(MetadataFormatError, match=r"identity_meta\.csv:1: expected the header"):
        parse_identity_meta(path)


def test_validation_hold_out_is_versioned_and_identity_disjoint(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    splits = tmp_path / "splits"
    dm = vggface2(root, crop="none", val_identities=2, splits_dir=str(splits), train_identities=2)
    stored = splits / "vggface2_val_identities_n2_seed0.csv"
    held_out = stored.read_text().splitlines()
    assert held_out[0] == "class_id" and len(held_out) == 3
    val_classes = {p.parent.name for p in dm.datasets["val"].paths}
    train_classes = {p.parent.name for p in dm.datasets["train"].paths}
    assert val_classes == set(held_out[1:]) and not val_classes & train_classes
    assert train_classes | val_classes == set(VGGFACE2_TRAIN)
    assert dm.describe()["split_files"]["val_identities"]["derived_now"] is True
    again = vggface2(root, crop="none", val_identities=2, splits_dir=str(splits))
    assert again.describe()["split_files"]["val_identities"]["derived_now"] is False
    assert {p.parent.name for p in again.datasets["val"].paths} == val_classes
    other_seed = vggface2(root, crop="none", val_identities=2, split_seed=3)  # in memory, not stored
    assert other_seed.describe()["split_files"]["val_identities"]["path"] is None
    stored.write_text("class_id\nn000002\nn000001\n")  # n000001 is a test identity
    with pytest.raises(
        MetadataFormatError,
        match=r"vggface2_val_identities_n2_seed0\.csv:3: n000001 is not a training identity",
    ):
        vggface2(root, crop="none", val_identities=2, splits_dir=str(splits))
    with pytest.raises(ValueError, match="leaves no training identity"):
        vggface2(root, crop="none", val_identities=4)


def test_test_pairs_are_derived_with_folds(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    dm = vggface2(
        root, crop="bbox", eval_protocol="pairs", pair_folds=2, pairs_per_fold=3, official_splits=["test"]
    )
    assert "train" not in dm.datasets
    pairs = dm.pair_list("test")
    assert pairs.fold.tolist() == [0] * 6 + [1] * 6
    labels = dm.datasets["test"].labels
    assert ((labels[pairs.index_a] == labels[pairs.index_b]) == pairs.is_same).all()
    batch = next(iter(dm.test_dataloader()))
    assert batch["image_a"].shape == (2, 3, 16, 16) and batch["is_same"].tolist() == [True, True]


def test_similarity_transform_matches_skimage() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    reference = SimilarityTransform.from_estimate(src, ARCFACE_112)
    np.testing.assert_allclose(similarity_transform(src, ARCFACE_112), reference.params[:2], atol=1e-9)
    # points that are an exact similarity image of the template land on it
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (ARCFACE_112 @ rotation.T) * scale + shift
    align = LandmarkAlign(56, points[None])
    np.testing.assert_allclose(align.map_points(points, 0), ARCFACE_112 / 2, atol=1e-9)


def test_landmark_and_bbox_crops(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg", size=(48, 60))
    dm = vggface2(root, crop="landmarks", image_size=32)
    geometry = dm.datasets["train"].geometry
    assert isinstance(geometry, LandmarkAlign)
    # first train image: n000002/0001_01 with the fixture's points (k = 0)
    np.testing.assert_allclose(
        geometry.points[0], [[16.5, 24.25], [31.5, 24.0], [24.0, 33.5], [18.0, 42.0], [30.0, 42.5]]
    )
    assert dm.datasets["train"][0]["image"].shape == (3, 32, 32)
    bbox = vggface2(root, crop="bbox", bbox_margin=0.3, image_size=32)
    crop = bbox.datasets["train"].geometry
    assert isinstance(crop, BoxCrop)
    # box (8, 10, 32, 40) grown by 30% around its centre (24, 30) and squared: side 52
    assert crop.box(0) == (-2, 4, 50, 56)
    assert bbox.datasets["train"][0]["image"].shape == (3, 32, 32)


def test_missing_metadata_and_images_name_the_path(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    (root / "train" / "n000003" / "0004_01.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"1 image\(s\) listed in .*train_list\.txt are missing.*train/n000003/0004_01\.jpg",
    ):
        vggface2(root, crop="none")
    assert vggface2(root, crop="none", use_image_lists=False).describe()["train_images"] == 9
    (root / "identity_meta.csv").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"identity_meta\.csv not found; looked for: .*identity_meta\.csv.*meta/identity_meta\.csv",
    ):
        vggface2(root, crop="none", use_image_lists=False)


def test_bb_landmark_csv_errors(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    csv_path = root / "bb_landmark" / "loose_landmark_train.csv"
    lines = csv_path.read_text().splitlines()
    write_text(csv_path, [lines[0], *lines[2:]])  # drop n000002/0001_01
    with pytest.raises(
        MetadataFormatError,
        match=r"loose_landmark_train\.csv has no row for 1 image\(s\), e\.g\. \['n000002/0001_01'\]",
    ):
        vggface2(root)
    write_text(csv_path, ["NAME_ID,P1X,P1Y", *lines[1:]])
    with pytest.raises(
        MetadataFormatError, match=r"loose_landmark_train\.csv:1: expected the header NAME_ID,P1X,P1Y,P2X"
    ):
        vggface2(root)
    (root / "bb_landmark" / "loose_bb_test.csv").unlink()
    with pytest.raises(DatasetLayoutError, match=r"loose_bb_test\.csv \(needed by crop=bbox\) not found"):
        vggface2(root, crop="bbox")


def test_layout_errors(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg", train={**VGGFACE2_TRAIN, "n000099": ["0001_01.jpg"]})
    meta = root / "identity_meta.csv"
    write_text(meta, [line for line in meta.read_text().splitlines() if "n000099" not in line])
    with pytest.raises(
        MetadataFormatError,
        match=r"identity_meta\.csv has no row for 1 identity folder\(s\), e\.g\. \['n000099'\]",
    ):
        vggface2(root, crop="none")
    both = make_vggface2(tmp_path / "both", test={**VGGFACE2_TEST, "n000002": ["0001_01.jpg"]})
    with pytest.raises(
        DatasetLayoutError, match=r"identities in both .*train and .*test \(e\.g\. \['n000002'\]\)"
    ):
        vggface2(both, crop="none")
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(DatasetLayoutError, match=r"VGGFace2 test folder not found: .*nothing/test"):
        vggface2(empty, official_splits=["test"])
    write_text(root / "test_list.txt", ["n000001\\0019_01.jpg", "0019_01.jpg"])
    with pytest.raises(MetadataFormatError, match=r"test_list\.txt:2: expected '<class_id>/<image>\.jpg'"):
        vggface2(root, crop="none", official_splits=["test"])


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    (root / "test" / "n000001" / "0115_02.jpg").write_bytes(b"garbage")
    dm = vggface2(root, crop="landmarks")
    with pytest.raises(CorruptImageError, match=r"test/n000001/0115_02\.jpg.*skip_corrupt=true"):
        next(iter(dm.test_dataloader()))
    skipping = vggface2(root, crop="landmarks", skip_corrupt=True)
    assert len(skipping.datasets["test"]) == 7
    assert skipping.describe()["skipped_files"][0]["path"].endswith("0115_02.jpg")
    # the per-image landmarks follow their images when one is dropped
    kept = [p.relative_to(root / "test").as_posix() for p in skipping.datasets["test"].paths]
    full = [p.relative_to(root / "test").as_posix() for p in dm.datasets["test"].paths]
    rows = [full.index(name) for name in kept]
    np.testing.assert_array_equal(
        skipping.datasets["test"].geometry.points, dm.datasets["test"].geometry.points[rows]
    )


def test_yaml_config_composes_and_follows_proface_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_vggface2(tmp_path / "data" / "vggface2")
    monkeypatch.setenv("PROFACE_DATA", str(tmp_path / "data"))
    small = ["datamodule.image_size=16", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    held_out = ["datamodule.val_identities=1", "datamodule.train_identities=3"]
    cfg = compose_datamodule("vggface2", [*small, *held_out, f"datamodule.splits_dir={tmp_path / 'splits'}"])
    assert cfg.root == str(tmp_path / "data" / "vggface2") and cfg.crop == "landmarks"
    dm = instantiate(cfg)
    dm.setup()
    assert dm.num_classes == 3 and (tmp_path / "splits" / "vggface2_val_identities_n1_seed0.csv").is_file()


def test_test_split_alone_with_the_default_hold_out(tmp_path: Path) -> None:
    """official_splits=[test] with the YAML's val_identities=100: no hold-out, the test split kept whole."""
    root = make_vggface2(tmp_path / "vgg")
    dm = vggface2(root, crop="none", official_splits=["test"], val_identities=100, train_identities=8531)
    assert set(dm.datasets) == {"test"} and len(dm.datasets["test"]) == 8
    info = dm.describe()
    assert info["val_identities_held_out"] == 0
    assert "val_identities=100 not used" in info["val_identities_note"]
    with pytest.raises(ValueError, match="has no val split"):
        dm.val_dataloader()
    cfg = compose_datamodule(
        "vggface2",
        [
            f"datamodule.root={root}",
            "datamodule.official_splits=[test]",
            "datamodule.crop=bbox",
            "datamodule.image_size=16",
            "datamodule.batch_size=2",
            "datamodule.num_workers=0",
            f"datamodule.splits_dir={tmp_path / 'splits'}",
        ],
    )
    assert cfg.val_identities == 100
    composed = instantiate(cfg)
    composed.setup()
    assert next(iter(composed.test_dataloader()))["image"].shape == (2, 3, 16, 16)
    assert not (tmp_path / "splits").exists()  # nothing derived, nothing stored


def test_attribute_lists_per_image(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    values = {
        "n000002/0001_01.jpg": [1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1],
        "n000003/0005_02.jpg": [0] * 11,
        "n000001/0019_01.jpg": [1] * 11,  # a test image
        "n000099/0001_01.jpg": [0, 1] * 5 + [0],  # an image this copy does not hold
    }
    make_vggface2_attributes(root, values)
    dm = vggface2(root, crop="none", attributes=True)
    train = dm.datasets["train"]
    names = [p.relative_to(root / "train").as_posix() for p in train.paths]
    attributes = train.extras["attributes"]
    assert attributes.shape == (10, 11)
    assert attributes[names.index("n000002/0001_01.jpg")].tolist() == values["n000002/0001_01.jpg"]
    assert attributes[names.index("n000003/0005_02.jpg")].tolist() == [0] * 11
    assert attributes[names.index("n000002/0002_01.jpg")].tolist() == [-1] * 11  # not annotated
    batch = next(iter(dm.test_dataloader()))
    assert batch["attributes"].shape == (2, 11)
    info = dm.describe()["attributes"]
    assert info["names"] == VGGFACE2_ATTRIBUTES and info["names"][-1] == "Mouth_Open"
    assert info["annotated_images"] == {"train": 2, "test": 1}
    assert info["rows_for_images_not_loaded"] == 1
    assert "attributes" not in vggface2(root, crop="none").datasets["train"].extras
    # a value other than 0/1 names the file and line (CRLF file)
    path = root / "attributes" / "03-Brown_Hair.txt"
    lines = path.read_bytes().decode().split("\r\n")
    lines[1] = "n000003/0005_02.jpg\t2"
    write_text(path, lines, "\r\n", final_newline=False)
    with pytest.raises(
        MetadataFormatError, match=r"03-Brown_Hair\.txt:2: expected '<class_id>/<image>\.jpg<TAB>0\|1'"
    ):
        vggface2(root, crop="none", attributes=True)
    with pytest.raises(
        DatasetLayoutError, match=r"VGGFace2 attribute folder not found; looked for: .*nowhere"
    ):
        vggface2(root, crop="none", attributes=True, attributes_dir="nowhere")


def test_landmark_crop_without_the_csvs_says_which_file_and_where(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    shutil.rmtree(root / "bb_landmark")
    with pytest.raises(DatasetLayoutError) as error:
        vggface2(root, crop="landmarks")
    message = str(error.value)
    assert "loose_landmark_train.csv (needed by crop=landmarks) not found" in message
    assert "the 5 MTCNN points of every image" in message and "bb_landmark.tar.gz" in message
    assert str(root / "bb_landmark" / "loose_landmark_train.csv") in message
    assert "crop=bbox" in message and "python -m src.preprocess.align" in message
    with pytest.raises(
        DatasetLayoutError, match=r"crop=bbox reads the MTCNN face box .* from loose_bb_train"
    ):
        vggface2(root, crop="bbox")
    assert vggface2(root, crop="none").describe()["train_images"] == 10


def test_partial_copy_reports_once_or_proceeds(tmp_path: Path) -> None:
    root = make_vggface2(tmp_path / "vgg")
    gone = ["train/n000003/0004_01.jpg", "train/n000007/0010_01.jpg", "train/n000007/0011_01.jpg"]
    gone += ["test/n000009/0002_01.jpg"]
    for name in gone:
        (root / name).unlink()
    with pytest.raises(DatasetLayoutError) as error:
        vggface2(root, crop="none")
    message = str(error.value)
    # one error for both lists: counts, examples, the file with the full list, and the option
    assert "3 image(s) listed in" in message and "train_list.txt" in message
    assert "1 image(s) listed in" in message and "test_list.txt" in message
    list_file = Path(message.split("the full list of 4 is in ")[1].split(". To proceed")[0])
    assert sorted(list_file.read_text().splitlines()) == sorted(str(root / n) for n in gone)
    assert "datamodule.allow_partial=true" in message
    splits = tmp_path / "splits"
    kwargs = {"crop": "landmarks", "val_identities": 1, "pair_folds": 1, "pairs_per_fold": 2}
    dm = vggface2(root, allow_partial=True, splits_dir=str(splits), **kwargs)
    dm.pair_list("test")
    info = dm.describe()
    missing = info["missing_files"]
    assert missing["count"] == 4 and missing["allow_partial"] is True
    assert missing["list_file"] == str(list_file) and missing["per_split"] == {"train": 3, "test": 1}
    assert len(dm.datasets["test"]) == 7 and len(dm.datasets["train"]) + len(dm.datasets["val"]) == 7
    # the hold-out is drawn from the listed identities, so it is the complete copy's
    full = vggface2(make_vggface2(tmp_path / "full"), crop="none", val_identities=1)
    assert {p.parent.name for p in dm.datasets["val"].paths} == {
        p.parent.name for p in full.datasets["val"].paths
    }
    # labels keep the listing's numbering: n000007 has no image left but still counts as a class
    assert info["train_identities"] == 2 and dm.num_classes == 3 == full.num_classes
    np.testing.assert_array_equal(dm.datasets["train"].labels, full.datasets["train"].labels[[0, 2, 3, 4]])
    # lists derived from a partial copy get their own file names; the landmarks follow the images
    assert "_partial-" in info["split_files"]["test_pairs"]["path"]
    assert dm.datasets["test"].geometry.points.shape == (7, 5, 2)


def test_index_named_pairs_file(tmp_path: Path) -> None:
    """The VGGFace2 pairs.txt of the released protection code: identities are class ids (index naming)."""
    root = make_vggface2(tmp_path / "vgg")
    write_pairs_txt(
        root / "pairs.txt",
        [
            ([("n000001", 1, 2)], [("n000009", 1, "n000010", 2)]),
            ([("n000012", 2, 1)], [("n000001", 2, "n000012", 1)]),
        ],
    )
    dm = vggface2(root, crop="none", official_splits=["test"], pairs_file="pairs.txt")
    pairs = dm.pair_list("test")
    names = dm.records["test"].names
    assert [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)] == [
        ("n000001/0019_01.jpg", "n000001/0115_02.jpg"),
        ("n000009/0001_01.jpg", "n000010/0004_01.jpg"),
        ("n000012/0002_01.jpg", "n000012/0001_01.jpg"),
        ("n000001/0115_02.jpg", "n000012/0001_01.jpg"),
    ]
    assert pairs.fold.tolist() == [0, 0, 1, 1]
    info = dm.describe()["split_files"]["test_pairs"]
    assert info["provided"] is True and info["naming"] == "index" and info["format"] == "lfw"
    write_pairs_txt(root / "pairs.txt", [([("n000001", 1, 3)], [("n000009", 1, "n000010", 2)])])
    with pytest.raises(
        MetadataFormatError, match=r"pairs\.txt:2: identity 'n000001' has 2 image\(s\) in the test split"
    ):
        vggface2(root, crop="none", official_splits=["test"], pairs_file="pairs.txt")
