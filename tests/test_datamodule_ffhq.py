"""FFHQ DataModule on miniature copies of the real layouts; albumentations from config and its seeding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.instantiate import instantiate
from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.components.transforms import build_albumentations
from src.datamodules.ffhq import FFHQDataModule
from src.datamodules.identity_folders import DatasetLayoutError
from src.utils.seeding import seed_everything
from tests.fixtures_datasets import compose_datamodule, ffhq_landmarks, make_ffhq


def ffhq(root: Path, **kwargs) -> FFHQDataModule:
    """A set-up DataModule at 16 px."""
    kwargs = {"image_size": 16, "batch_size": 2, **kwargs}
    dm = FFHQDataModule(str(root), **kwargs)
    dm.setup()
    return dm


def image_ids(dm: FFHQDataModule, split: str) -> list[int]:
    return dm.datasets[split].extras["image_id"].tolist()


def test_nested_layout_with_json_counts_and_split(tmp_path: Path) -> None:
    dm = ffhq(make_ffhq(tmp_path / "ffhq"))
    assert image_ids(dm, "train") == [0, 1, 2] and image_ids(dm, "val") == [60000]
    assert image_ids(dm, "test") == [60000]  # no test split in FFHQ: the validation set
    info = dm.describe()
    assert (info["train_images"], info["val_images"], info["test_images"], info["images"]) == (3, 1, 1, 4)
    assert info["identities"] == 0 and info["identity_labels"] == "none"
    assert info["images_not_in_metadata"] == 0 and info["metadata_file"].endswith("ffhq-dataset-v2.json")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "index", "image_id"}  # no identity labels
    assert batch["image"].shape == (2, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0


def test_numeric_order_thumbnails_and_extra_images(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq", train=(2, 10, 999, 1000), validation=(60000, 69999))
    (root / "images1024x1024" / "00000" / "notes.png").write_bytes(b"x")  # not an index: ignored
    dm = ffhq(root)
    assert image_ids(dm, "train") == [2, 10, 999, 1000]  # by integer, across shards
    assert dm.datasets["train"].paths[-1].as_posix().endswith("images1024x1024/01000/01000.png")
    assert dm.describe()["non_index_pngs_ignored"] == 1
    thumbs = ffhq(root, image_dir="thumbnails128x128")
    assert image_ids(thumbs, "val") == [60000, 69999]
    assert thumbs.datasets["val"].paths[0].parent.name == "60000"


def test_flat_layout_and_no_json(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "flat", flat=True)
    dm = ffhq(root, image_dir=".")
    assert image_ids(dm, "train") == [0, 1, 2] and image_ids(dm, "val") == [60000]
    root2 = make_ffhq(tmp_path / "nojson", train=(0, 59999), validation=(60000,), with_json=False)
    dm2 = ffhq(root2, metadata_file=None)  # split by index
    assert image_ids(dm2, "train") == [0, 59999] and image_ids(dm2, "val") == [60000]
    assert dm2.describe()["metadata_file"] is None


def test_landmarks_are_scaled_to_output_pixels(tmp_path: Path) -> None:
    dm = ffhq(make_ffhq(tmp_path / "ffhq"), return_landmarks=True, image_size=32)
    batch = next(iter(dm.val_dataloader()))
    assert batch["landmarks"].shape == (1, 68, 2)
    expected = np.asarray(ffhq_landmarks(60000), np.float32) * 32 / 1024
    np.testing.assert_allclose(batch["landmarks"][0].numpy(), expected, rtol=1e-5)


def test_metadata_cache_is_used(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq")
    cache = tmp_path / "cache"
    first = ffhq(root, cache_dir=str(cache), return_landmarks=True)
    files = list(cache.glob("ffhq_metadata_*.npz"))
    assert len(files) == 1
    second = ffhq(root, cache_dir=str(cache), return_landmarks=True)
    assert image_ids(second, "train") == image_ids(first, "train")
    np.testing.assert_array_equal(
        second.datasets["val"].extras["landmarks"], first.datasets["val"].extras["landmarks"]
    )


def test_missing_metadata_file_names_the_path(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq", with_json=False)
    with pytest.raises(
        DatasetLayoutError, match=r"metadata file not found: .*ffhq-dataset-v2\.json.*metadata_file=null"
    ):
        ffhq(root)


def test_missing_listed_image_names_the_path(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq")
    (root / "images1024x1024" / "00000" / "00002.png").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"1 image\(s\) listed in .*ffhq-dataset-v2\.json.*00000/00002\.png"
    ):
        ffhq(root)


def test_bad_category_names_the_key(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq")
    data = json.loads((root / "ffhq-dataset-v2.json").read_text())
    data["1"]["category"] = "train"
    (root / "ffhq-dataset-v2.json").write_text(json.dumps(data))
    with pytest.raises(MetadataFormatError, match=r"ffhq-dataset-v2\.json \['1'\]: 'category'"):
        ffhq(root)


def test_missing_root_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"dataset root not found: .*nowhere"):
        ffhq(tmp_path / "nowhere")
    root = make_ffhq(tmp_path / "ffhq")
    with pytest.raises(DatasetLayoutError, match=r"FFHQ image folder not found: .*ffhq256"):
        ffhq(root, image_dir="ffhq256")


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq", validation=(60000, 60001))
    (root / "images1024x1024" / "60000" / "60000.png").write_bytes(b"\x89PNG broken")
    dm = ffhq(root)
    with pytest.raises(CorruptImageError, match=r"60000/60000\.png.*skip_corrupt=true"):
        next(iter(dm.val_dataloader()))
    skipping = ffhq(root, skip_corrupt=True)  # evaluation images are checked at set-up and dropped
    assert [Path(e["path"]).name for e in skipping.skipped_files] == ["60000.png"]
    assert image_ids(skipping, "val") == [60001] and image_ids(skipping, "test") == [60001]
    (root / "images1024x1024" / "60000" / "60001.png").write_bytes(b"")
    with pytest.raises(ValueError, match="every image of the val split is unreadable"):
        ffhq(root, skip_corrupt=True)


def test_no_pairs_without_identities(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no identity labels"):
        FFHQDataModule(str(tmp_path), eval_protocol="pairs", batch_size=2)


# --- transforms from config and their seeding ------------------------------------------------------


def test_build_albumentations_from_config_and_errors() -> None:
    compose = build_albumentations(
        [
            {"name": "HorizontalFlip", "p": 0.5},
            {"name": "Affine", "rotate": [-5, 5], "border_mode": "cv2.BORDER_REFLECT_101", "p": 0.5},
            {"name": "OneOf", "transforms": [{"name": "Blur", "blur_limit": [3, 3]}, {"name": "ToGray"}]},
        ],
        seed=0,
    )
    assert [type(t).__name__ for t in compose.transforms] == ["HorizontalFlip", "Affine", "OneOf"]
    assert build_albumentations([]) is None and build_albumentations(None) is None
    with pytest.raises(
        ValueError, match=r"transform\[0\]: unknown albumentations transform 'HorizontalFlipp'"
    ):
        build_albumentations([{"name": "HorizontalFlipp"}])
    with pytest.raises(ValueError, match=r"transform\[1\]: HorizontalFlip has no argument\(s\) \['prob'\]"):
        build_albumentations([{"name": "Blur"}, {"name": "HorizontalFlip", "prob": 0.5}])
    with pytest.raises(ValueError, match="unknown OpenCV constant"):
        build_albumentations([{"name": "Affine", "border_mode": "cv2.NOPE"}])
    with pytest.raises(ValueError, match="'name' key"):
        build_albumentations([{"p": 1.0}])


def test_transform_applies_to_configured_splits_only(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq")
    flip = [{"name": "HorizontalFlip", "p": 1.0}]
    plain, flipped = ffhq(root), ffhq(root, transform=flip)
    assert torch.equal(flipped.datasets["train"][0]["image"], plain.datasets["train"][0]["image"].flip(-1))
    assert torch.equal(flipped.datasets["val"][0]["image"], plain.datasets["val"][0]["image"])  # train only
    both = ffhq(root, transform=flip, transform_splits=["train", "val"])
    assert torch.equal(both.datasets["val"][0]["image"], plain.datasets["val"][0]["image"].flip(-1))
    with pytest.raises(ValueError, match="transform_splits"):
        FFHQDataModule(str(root), transform=flip, transform_splits=["training"], batch_size=2)
    with pytest.raises(ValueError, match="unknown albumentations transform"):
        FFHQDataModule(str(root), transform=[{"name": "Nope"}], batch_size=2)


AUGMENT = [{"name": "RandomBrightnessContrast", "p": 1.0}, {"name": "HorizontalFlip", "p": 0.5}]


def augmented_batches(root: Path, num_workers: int, seed: int = 0) -> list[torch.Tensor]:
    """Every validation batch (unshuffled; 16 identical pictures) with the augmentation applied."""
    seed_everything(seed)
    dm = FFHQDataModule(
        str(root),
        image_size=16,
        transform=AUGMENT,
        transform_splits=["val"],
        transform_seed=seed,
        batch_size=4,
        num_workers=num_workers,
    )
    dm.setup()
    return [batch["image"] for batch in dm.val_dataloader()]


@pytest.fixture(scope="module")
def same_pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ffhq(
        tmp_path_factory.mktemp("ffhq_same"),
        train=(0,),
        validation=tuple(range(60000, 60016)),
        size=16,
        same_content=True,
    )


def test_workers_differ_and_reruns_repeat(same_pictures: Path) -> None:
    batches = augmented_batches(same_pictures, num_workers=2)
    assert len(batches) == 4
    # worker 0 loads batches 0 and 2, worker 1 batches 1 and 3: same pictures, different augmentations
    assert not torch.equal(batches[0], batches[1]) and not torch.equal(batches[2], batches[3])
    again = augmented_batches(same_pictures, num_workers=2)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))  # a rerun repeats
    other_seed = augmented_batches(same_pictures, num_workers=2, seed=1)
    assert not torch.equal(batches[0], other_seed[0])


def test_ranks_differ_and_main_process_loading_repeats(
    same_pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rank0 = augmented_batches(same_pictures, num_workers=0)
    assert all(torch.equal(a, b) for a, b in zip(rank0, augmented_batches(same_pictures, 0), strict=True))
    monkeypatch.setenv("RANK", "1")
    rank1 = augmented_batches(same_pictures, num_workers=0)
    assert not torch.equal(rank0[0], rank1[0])
    rank1_workers = augmented_batches(same_pictures, num_workers=2)
    rank0_workers = (monkeypatch.setenv("RANK", "0"), augmented_batches(same_pictures, num_workers=2))[1]
    assert not torch.equal(rank0_workers[0], rank1_workers[0])


def test_yaml_config_composes_and_follows_proface_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_ffhq(tmp_path / "data" / "ffhq")
    monkeypatch.setenv("PROFACE_DATA", str(tmp_path / "data"))
    cfg = compose_datamodule(
        "ffhq", ["datamodule.image_size=16", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    )
    assert cfg.root == str(tmp_path / "data" / "ffhq") and cfg.cache_dir == str(tmp_path / "data" / ".cache")
    dm = instantiate(cfg)
    dm.setup()
    assert dm.describe()["images"] == 4 and list((tmp_path / "data" / ".cache").glob("*.npz"))


def test_partial_copy_and_no_pair_lists(tmp_path: Path) -> None:
    root = make_ffhq(tmp_path / "ffhq", train=(0, 1, 2, 3), validation=(60000, 60001))
    (root / "images1024x1024" / "00000" / "00002.png").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"1 image\(s\) listed in .*ffhq-dataset-v2\.json are missing from .*images1024x1024, e\.g\. "
        r".*00000/00002\.png; the full list of 1 is in .*allow_partial=true",
    ):
        ffhq(root)
    dm = ffhq(root, allow_partial=True)
    assert image_ids(dm, "train") == [0, 1, 3] and image_ids(dm, "val") == [60000, 60001]
    assert dm.describe()["missing_files"]["per_split"] == {"train": 1}
    with pytest.raises(ValueError, match=r"FFHQ has no identity labels, so it takes no pairs_file"):
        FFHQDataModule(str(root), pairs_file="pairs.txt", batch_size=2)
