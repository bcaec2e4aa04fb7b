"""Image lists in torchkit format on a miniature copy: parsing, labels as listed, batches, errors, config."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.datamodules.components.geometry import resize
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.image_list import ImageListDataModule, read_image_list
from tests.fixtures_datasets import IMAGE_LIST_ODD_SIZE, IMAGE_LIST_ROWS, compose_datamodule, make_image_list

SIZE = 16


@pytest.fixture
def fake(tmp_path: Path) -> dict:
    return make_image_list(tmp_path / "celeba_112")


def image_list(fake: dict, splits: tuple[str, ...] = ("train",), **kwargs) -> ImageListDataModule:
    """A set-up DataModule at 16 px over the lists of ``splits``."""
    lists = {f"{s}_list": str(fake["lists"][s]) for s in splits if s != "train"}
    kwargs = {"image_size": SIZE, "batch_size": 2, **lists, **kwargs}
    dm = ImageListDataModule(str(fake["images"]), str(fake["lists"]["train"]), **kwargs)
    dm.setup()
    return dm


def test_batches_keep_the_listed_labels(fake: dict) -> None:
    dm = image_list(fake, ("train", "val", "test"))
    info = dm.describe()
    assert (info["train_images"], info["val_images"], info["test_images"]) == (7, 4, 4)
    assert info["train_identities"] == 3 and info["num_classes"] == 4 and dm.num_classes == 4
    train = dm.image_dataset("train")
    assert train.labels.tolist() == [label for _, label in IMAGE_LIST_ROWS["train"]]
    assert [p.relative_to(fake["images"]).as_posix() for p in train.paths] == [
        name for name, _ in IMAGE_LIST_ROWS["train"]
    ]
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "index", "identity"}
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert set(batch["identity"].tolist()) <= {0, 1, 3}
    val = next(iter(dm.val_dataloader()))
    assert val["identity"].tolist() == [10, 10] and val["index"].tolist() == [0, 1]
    assert dm.image_dataset("test").labels.tolist() == [20, 20, 21, 21]


def test_images_are_rgb_and_resized_whole(fake: dict) -> None:
    dm = image_list(fake)
    position = [name for name, _ in IMAGE_LIST_ROWS["train"]].index(IMAGE_LIST_ODD_SIZE)
    bgr = cv2.imread(str(fake["images"] / IMAGE_LIST_ODD_SIZE))
    assert bgr.shape[:2] != (20, 20)
    expected = resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), SIZE, SIZE).transpose(2, 0, 1) / 255.0
    item = dm.image_dataset("train")[position]
    assert np.allclose(item["image"].numpy(), expected, atol=1e-6)
    assert item["identity"].item() == 1


def test_describe_records_the_list_files(fake: dict) -> None:
    listed = image_list(fake, ("train", "val")).describe()["list_files"]
    train = fake["lists"]["train"]
    assert listed["train"] == {
        "path": str(train),
        "sha256": hashlib.sha256(train.read_bytes()).hexdigest(),
        "images": 7,
        "labels": 3,
        "max_label": 3,
        "labels_without_images": 1,
        "labels_without_images_first": [2],
    }
    assert listed["val"]["images"] == 4 and listed["val"]["max_label"] == 11 and "test" not in listed


def test_list_under_root_with_crlf_tabs_and_blank_lines(fake: dict) -> None:
    rows = IMAGE_LIST_ROWS["train"]
    text = "\ufeff" + "\r\n".join(f"{name}\t{label}" for name, label in rows[:4]) + "\r\n\r\n"
    (fake["images"] / "train_list.txt").write_bytes(text.encode("utf-8"))
    dm = ImageListDataModule(str(fake["images"]), "train_list.txt", image_size=SIZE, batch_size=2)
    dm.check_layout()
    dm.setup()
    assert dm.listed["train"].names == [name for name, _ in rows[:4]] and dm.num_classes == 2


BAD_LISTS = {
    "empty": ("\n  \n", r"bad\.txt: the image list is empty"),
    "one field": ("id_0000/0001.jpg 0\nid_0000/0002.png\n", r"bad\.txt:2: expected .*got 1 field\(s\)"),
    "three fields": ("id_0000/0001.jpg 0 7\n", r"bad\.txt:1: expected .*got 3 field\(s\)"),
    "tfrecord index": (
        "id_0000/0001.jpg 0\n\nceleb 0 1024 5\n",
        r"bad\.txt:3: 4 fields .*TFRecord index format 'tfr_name tfr_index tfr_offset label'.*not supported",
    ),
    "non-integer label": ("id_0000/0001.jpg 1.5\n", r"bad\.txt:1: label '1\.5' is not an integer"),
    "negative label": ("id_0000/0001.jpg -1\n", r"bad\.txt:1: label -1 is negative"),
    "absolute path": (
        "id_0000/0001.jpg 0\n/etc/hosts 0\n",
        r"bad\.txt:2: image path '/etc/hosts' is absolute",
    ),
    "parent folder": (
        "id_0000/../../secret.jpg 0\n",
        r"bad\.txt:1: image path 'id_0000/\.\./\.\./secret\.jpg' leaves datamodule\.root",
    ),
    "duplicate": (
        "id_0000/0001.jpg 0\nid_0000/0002.png 0\n./id_0000/0001.jpg 0\n",
        r"bad\.txt:3: image id_0000/0001\.jpg is listed twice \(first on line 1\)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LISTS))
def test_bad_lines_name_the_file_and_line(fake: dict, case: str) -> None:
    text, message = BAD_LISTS[case]
    path = fake["images"].parent / "bad.txt"
    path.write_text(text)
    with pytest.raises(MetadataFormatError, match=message):
        read_image_list(path)
    dm = ImageListDataModule(str(fake["images"]), str(fake["lists"]["train"]), test_list=str(path))
    with pytest.raises(MetadataFormatError, match=message):
        dm.setup()


def test_missing_list_files_name_the_key(fake: dict) -> None:
    dm = ImageListDataModule(str(fake["images"]), "Anno/nope.txt")
    for call in (dm.check_layout, dm.setup):
        with pytest.raises(
            DatasetLayoutError, match=r"datamodule\.list_file not found: .*align_crop_112/Anno/nope"
        ):
            call()
    dm = ImageListDataModule(str(fake["images"]), str(fake["lists"]["train"]), val_list="/no/val.txt")
    with pytest.raises(DatasetLayoutError, match=r"datamodule\.val_list not found: /no/val\.txt"):
        dm.check_layout()
    with pytest.raises(ConfigError, match=r"datamodule\.list_file must name the training image list"):
        ImageListDataModule(str(fake["images"]), "???")


def test_missing_images_are_reported_once(fake: dict) -> None:
    (fake["images"] / "id_0003" / "0007.jpg").unlink()
    (fake["images"] / "id_0001" / "more" / "0004.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"2 image\(s\) listed in .*celebA_train\.txt are missing from .*align_crop_112, e.g\. "
        r".*id_0001/more/0004\.jpg, .*id_0003/0007\.jpg.*allow_partial=true",
    ):
        image_list(fake)
    dm = image_list(fake, allow_partial=True)
    info = dm.describe()
    assert info["train_images"] == 5 and dm.num_classes == 4  # the listing's classes, as on a full copy
    assert info["missing_files"]["count"] == 2 and info["missing_files"]["per_split"] == {"train": 2}


def test_val_and_test_need_their_lists(fake: dict) -> None:
    dm = image_list(fake)
    assert len(dm.train_dataloader()) == 3 and "val_images" not in dm.describe()
    for split, key, loader in (
        ("val", "val_list", dm.val_dataloader),
        ("test", "test_list", dm.test_dataloader),
    ):
        with pytest.raises(
            ConfigError,
            match=rf"no {split} split: datamodule\.list_file \(.*celebA_train\.txt\) is training data\. "
            rf"Set datamodule\.{key} to a list of {split} images",
        ):
            loader()


def test_train_identities_is_checked_against_the_class_count(fake: dict) -> None:
    with pytest.raises(ConfigError, match=r"train_identities=3 but .*celebA_train\.txt gives 4 classes"):
        image_list(fake, train_identities=3)
    assert image_list(fake, train_identities=4).num_classes == 4


def test_derived_pairs_are_named_after_the_list(fake: dict, tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    dm = image_list(
        fake, ("train", "val"), eval_protocol="pairs", pair_folds=1, pairs_per_fold=2, splits_dir=str(splits)
    )
    digest = hashlib.sha256(fake["lists"]["val"].read_bytes()).hexdigest()[:10]
    (stored,) = splits.iterdir()
    assert stored.name == f"image_list_val_pairs_1x2_seed0_list-{digest}.csv"
    batch = next(iter(dm.val_dataloader()))
    assert {"image_a", "image_b", "is_same", "fold"} <= set(batch)


def test_config_composes_and_builds(fake: dict) -> None:
    default = compose_datamodule("image_list")
    assert str(default.root).endswith("celeba_112/align_crop_112")
    assert str(default.list_file).endswith("celeba_112/Anno/loss/celebA_train.txt")
    node = compose_datamodule(
        "image_list", [f"datamodule.root={fake['images']}", f"datamodule.list_file={fake['lists']['train']}"]
    )
    dm = instantiate(node)
    assert isinstance(dm, ImageListDataModule) and dm.image_size == 112
    assert dm.transform_spec == [{"name": "HorizontalFlip", "p": 0.5}] and dm.transform_splits == ("train",)
    dm.setup()
    assert dm.num_classes == 4 and dm.image_dataset("train")[0]["image"].shape == (3, 112, 112)
