"""Makeup-transfer DataModules on miniature copies: MT-Dataset pairs, test pairs and 1:N sets."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.datamodules.components.image_io import CorruptImageError
from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.makeup_io import LabelMapError, load_label_map, load_target_image
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.makeup_pairs import MakeupPairsDataModule
from src.datamodules.mt_makeup import MTMakeupDataModule
from src.datamodules.one_to_n import OneToNDataModule
from tests.fixtures_datasets import (
    MT_QUADRANT_LABELS,
    compose_datamodule,
    make_makeup_test_release,
    make_mt_dataset,
    makeup_tiny_data_overrides,
    write_image,
    write_label_map,
    write_text,
)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("makeup") / "Dataset-test"
    return root, make_makeup_test_release(root)


def mt(root: Path, **kwargs) -> MTMakeupDataModule:
    dm = MTMakeupDataModule(str(root), **{"image_size": 48, "batch_size": 2, **kwargs})
    dm.setup()
    return dm


def epoch_pairs(dm: MTMakeupDataModule, epoch: int) -> dict[int, tuple[int, int]]:
    """Item index -> (source, reference) positions of one training epoch."""
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    pairs = {}
    for batch in loader:
        for i, s, r in zip(batch["index"], batch["source_index"], batch["reference_index"], strict=True):
            pairs[int(i)] = (int(s), int(r))
    return pairs


# --- MT-Dataset ------------------------------------------------------------------------------------------


def test_mt_batches_hold_images_in_unit_range_and_integer_label_maps(tmp_path: Path) -> None:
    info = make_mt_dataset(tmp_path / "MT-Dataset")
    dm = mt(tmp_path / "MT-Dataset")
    batch = next(iter(dm.train_dataloader()))
    for key in ("source", "reference"):
        assert batch[key].shape == (2, 3, 48, 48) and batch[key].dtype == torch.float32
        assert float(batch[key].min()) >= 0.0 and float(batch[key].max()) <= 1.0
    for key in ("source_labels", "reference_labels"):
        assert batch[key].shape == (2, 48, 48) and batch[key].dtype == torch.int64
    assert set(batch["source_name"]) <= set(info["non_makeup"])  # names as listed: non-makeup/<file>.png
    assert set(batch["reference_name"]) <= set(info["makeup"])
    # every label map keeps exactly its ids through the 32 -> 48 px resize, palette PNGs included
    item = dm.eval_dataset()[0]
    for side in ("source", "reference"):
        position = int(item[f"{side}_index"])
        listed = info["non_makeup" if side == "source" else "makeup"]
        offset = 0 if side == "source" else len(info["non_makeup"])
        expected = {0, *MT_QUADRANT_LABELS[(offset + position) % len(MT_QUADRANT_LABELS)]}
        assert item[f"{side}_name"] == listed[position]
        assert set(item[f"{side}_labels"].unique().tolist()) == expected
    assert dm.describe()["train_items_per_epoch"] == 4


def test_label_map_resizing_is_nearest_neighbour(tmp_path: Path) -> None:
    path = write_label_map(tmp_path / "seg.png", 8, (3, 7, 9, 14), palette=True)
    labels = load_label_map(path, 16, 15)
    raw = np.asarray(Image.open(path))
    assert labels.dtype == torch.int64 and labels.shape == (16, 16)
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.repeat(raw, 2, axis=0), 2, axis=1))
    assert set(load_label_map(path, 5, 15).unique().tolist()) <= {0, 3, 7, 9, 14}
    with pytest.raises(LabelMapError, match=r"seg\.png holds ids 0\.\.14, outside 0\.\.9.*num_labels"):
        load_label_map(path, 16, 10)
    with pytest.raises(LabelMapError, match=r"seg\.png is 8x8 but its image is 16x8"):
        load_label_map(path, 16, 15, image_shape=(8, 16))
    colour = write_image(tmp_path / "colour.png", 8, 8, seed=1)
    with pytest.raises(LabelMapError, match=r"colour\.png is a RGB image with differing colour channels"):
        load_label_map(colour, 16, 15)


def test_mt_training_pairs_repeat_per_epoch_and_differ_across_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_mt_dataset(tmp_path / "MT-Dataset")
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    dm = mt(tmp_path / "MT-Dataset", image_size=8)
    first = epoch_pairs(dm, 0)
    assert sorted(first) == [0, 1, 2, 3]  # one item per non-makeup image
    again = epoch_pairs(mt(tmp_path / "MT-Dataset", image_size=8), 0)
    assert again == first
    assert epoch_pairs(dm, 1) != first and epoch_pairs(dm, 2) != first
    monkeypatch.setenv("PL_GLOBAL_SEED", "4")
    assert epoch_pairs(mt(tmp_path / "MT-Dataset", image_size=8), 0) != first
    # a rank draws from (seed, epoch, item) only: two ranks together give the single-process epoch
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    data = dm.train_dataset()
    from src.datamodules.components.sampling import training_loader

    shards = {}
    for rank in (0, 1):
        loader = training_loader(
            data,
            batch_size=1,
            seed=3,
            num_replicas=2,
            rank=rank,
            num_workers=0,
            pin_memory=False,
            drop_last=True,
            worker_init_fn=None,
        )
        for batch in loader:
            shards[int(batch["index"])] = (int(batch["source_index"]), int(batch["reference_index"]))
    assert shards == first
    # each_source: every non-makeup image exactly once per epoch
    each = mt(tmp_path / "MT-Dataset", image_size=8, pairing="each_source")
    assert {i: s for i, (s, _) in epoch_pairs(each, 1).items()} == {0: 0, 1: 1, 2: 2, 3: 3}


def test_mt_evaluation_pairs_are_fixed_and_distinct(tmp_path: Path) -> None:
    make_mt_dataset(tmp_path / "MT-Dataset")
    dm = mt(tmp_path / "MT-Dataset", image_size=8, eval_pairs=12)
    pairs = list(zip(dm.eval_dataset().source_index, dm.eval_dataset().reference_index, strict=True))
    assert len(set(pairs)) == 12  # all 4 x 3 pairs, each once
    val = [
        (int(s), int(r))
        for b in dm.val_dataloader()
        for s, r in zip(b["source_index"], b["reference_index"], strict=True)
    ]
    test = [
        (int(s), int(r))
        for b in dm.test_dataloader()
        for s, r in zip(b["source_index"], b["reference_index"], strict=True)
    ]
    assert val == test == [(int(s), int(r)) for s, r in pairs]
    other = mt(tmp_path / "MT-Dataset", image_size=8, eval_pairs=12)
    assert np.array_equal(other.eval_dataset().source_index, dm.eval_dataset().source_index)
    with pytest.raises(ConfigError, match=r"eval_pairs=13 but only 4 x 3 = 12"):
        mt(tmp_path / "MT-Dataset", eval_pairs=13)


def test_mt_layout_errors_name_the_path(tmp_path: Path) -> None:
    root = tmp_path / "MT-Dataset"
    with pytest.raises(DatasetLayoutError, match=r"MT-Dataset root not found: .*MT-Dataset"):
        mt(root)
    make_mt_dataset(root)
    with pytest.raises(
        DatasetLayoutError, match=r"MT-Dataset folder not found: .*nowhere \(datamodule\.seg_dir\)"
    ):
        mt(root, seg_dir="nowhere")
    with pytest.raises(DatasetLayoutError, match=r"list not found: .*other\.txt \(datamodule\.makeup_list\)"):
        MTMakeupDataModule(str(root), makeup_list="other.txt").check_layout()
    (root / "segs" / "non-makeup" / "vHX44.png").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"listed \(label maps\) in .*non-makeup\.txt are missing from .*segs, e\.g\. .*vHX44\.png",
    ):
        mt(root)
    partial = mt(root, allow_partial=True)
    assert "non-makeup/vHX44.png" not in partial.reader.sources and len(partial.reader.sources) == 3
    assert partial.describe()["missing_files"]["count"] == 1
    write_text(root / "non-makeup.txt", ["vSYYZ306.png", "non-makeup/vSYYZ306.png"])
    with pytest.raises(
        MetadataFormatError, match=r"non-makeup\.txt:2: image non-makeup/vSYYZ306\.png is listed twice"
    ):
        mt(root)
    write_text(root / "non-makeup.txt", ["vSYYZ306.png 1"])
    with pytest.raises(MetadataFormatError, match=r"non-makeup\.txt:1: expected one image name per line"):
        mt(root)
    (root / "images" / "makeup" / "vFG112.png").write_bytes(b"\x89PNG")
    write_text(root / "non-makeup.txt", ["vSYYZ306.png"])  # bare names are taken in their folder
    dm = mt(root, eval_pairs=3)
    with pytest.raises(CorruptImageError, match=r"makeup/vFG112\.png"):
        [dm.eval_dataset()[i] for i in range(3)]


def test_target_image_loads_by_path_with_clear_errors(tmp_path: Path) -> None:
    root = tmp_path / "MT-Dataset"
    make_mt_dataset(root)
    target = mt(root, image_size=16).load_target("test_target_image/target/085807.jpg")
    assert target.shape == (3, 16, 16) and target.dtype == torch.float32 and float(target.max()) <= 1.0
    absolute = load_target_image(root / "test_target_image" / "test" / "047073.jpg", 20)
    assert absolute.shape == (3, 20, 20)
    with pytest.raises(
        DatasetLayoutError, match=r"target identity image not found: .*test_target_image/x\.jpg"
    ):
        load_target_image("test_target_image/x.jpg", root=root)


# --- test pairs -------------------------------------------------------------------------------------------


def test_every_source_meets_every_reference(release: tuple[Path, dict]) -> None:
    root, info = release
    dm = MakeupPairsDataModule(str(root), image_size=16, batch_size=5)
    seen = []
    for batch in dm.test_dataloader():
        assert batch["source"].shape[1:] == (3, 16, 16) and batch["reference"].dtype == torch.float32
        seen += list(zip(batch["source_name"], batch["reference_name"], strict=True))
        assert batch["source_size"].tolist()[0] == [40, 32]  # original height, width
    assert seen == list(itertools.product(info["sources"], info["references"]))  # numeric source order
    assert len(dm.dataset()) == 12 and dm.describe()["pairs"] == 12
    limited = MakeupPairsDataModule(str(root), image_size=8, max_sources=2, max_references=1)
    names = [(b["source_name"][0], b["reference_name"][0]) for b in limited.val_dataloader()]
    assert names == [("0.jpg", "XMY-014.png"), ("1.jpg", "XMY-014.png")]
    ladn = MakeupPairsDataModule(str(root), source_dir="LADN/before", image_size=8)
    assert len(ladn.dataset()) == 6
    with pytest.raises(ValueError, match="evaluation data"):
        ladn.train_dataloader()


def test_test_pair_layout_errors_name_the_path(release: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = release
    with pytest.raises(
        DatasetLayoutError, match=r"source folder not found: .*LADN/after \(set datamodule\.source_dir\)"
    ):
        MakeupPairsDataModule(str(root), source_dir="LADN/after").setup()
    with pytest.raises(
        DatasetLayoutError, match=r"reference folder not found: .*refs \(datamodule\.reference_dir\)"
    ):
        MakeupPairsDataModule(str(root), reference_dir="refs").check_layout()
    (tmp_path / "empty").mkdir()
    write_text(tmp_path / "empty" / "notes.txt", ["x"])
    with pytest.raises(DatasetLayoutError, match=r"reference folder .*empty holds no image files"):
        MakeupPairsDataModule(str(root), reference_dir=str(tmp_path / "empty")).setup()


# --- 1:N sets -----------------------------------------------------------------------------------------------


def test_one_to_n_splits_query_and_gallery_per_identity(release: tuple[Path, dict]) -> None:
    root, info = release
    dm = OneToNDataModule(str(root), image_size=16, gallery_size=8, batch_size=3)
    batches = list(dm.test_dataloader())
    assert batches[0]["query"].shape == (3, 3, 16, 16) and batches[0]["gallery"].shape == (3, 3, 8, 8)
    assert batches[0]["reference"].shape == (3, 3, 16, 16)
    queries = [n for b in batches for n in b["query_name"]]
    galleries = [n for b in batches for n in b["gallery_name"]]
    assert queries == [f"{p}/{p}_0001.jpg" for p in info["people"]]
    assert galleries == [f"{p}/{p}_0002.jpg" for p in info["people"]]
    assert torch.cat([b["identity"] for b in batches]).tolist() == [0, 1, 2, 3]
    assert [n for b in batches for n in b["identity_name"]] == info["people"]
    references = [n for b in batches for n in b["reference_name"]]
    assert set(references) <= set(info["references"])
    again = OneToNDataModule(str(root), image_size=8, gallery_size=8, max_identities=2)
    assert [again.dataset()[i]["reference_name"] for i in range(2)] == references[:2]  # seeded per identity
    bare = OneToNDataModule(str(root), image_size=8, gallery_size=8, reference_dir=None).dataset()[0]
    assert "reference" not in bare and "gallery" in bare
    with pytest.raises(ValueError, match="no training split"):
        dm.train_dataloader()


def test_one_to_n_layout_errors_name_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    with pytest.raises(DatasetLayoutError, match=r"one_to_n: root not found: .*/set\. Expected layout"):
        OneToNDataModule(str(folder), reference_dir=None).setup()
    folder.mkdir()
    with pytest.raises(DatasetLayoutError, match=r"1:N image folder not found: .*set/lfw112x112_500"):
        OneToNDataModule(str(folder), reference_dir=None).setup()
    for i, person in enumerate(("A_B", "C_D")):
        for number in (1, 2):
            write_image(
                folder / "lfw112x112_500" / person / f"{person}_{number:04d}.jpg", 8, 8, seed=i + number
            )
    write_image(folder / "lfw112x112_500" / "C_D" / "C_D_0003.jpg", 8, 8, seed=9)
    with pytest.raises(DatasetLayoutError, match=r"identity folder .*C_D holds 3 image\(s\).*exactly 2"):
        OneToNDataModule(str(folder), reference_dir=None).setup()
    (folder / "lfw112x112_500" / "C_D" / "C_D_0003.jpg").rename(
        folder / "lfw112x112_500" / "C_D" / "C_D_x.jpg"
    )
    (folder / "lfw112x112_500" / "C_D" / "C_D_0002.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"query from the gallery image in .*C_D: C_D_x\.jpg does not end"
    ):
        OneToNDataModule(str(folder), reference_dir=None).setup()


# --- configs ---------------------------------------------------------------------------------------------


def test_tiny_data_entries_compose_and_load(tmp_path: Path) -> None:
    """The TINY_DATA entries of the three DataModules compose from their YAML, set up and load a batch."""
    overrides = makeup_tiny_data_overrides(tmp_path)
    keys = {"mt_makeup": ("source", "source_labels"), "makeup_pairs": ("source", "reference")}
    keys["one_to_n"] = ("query", "gallery")
    for name, (image_key, other_key) in keys.items():
        target = next(t for t in overrides if t.split(".")[2] == name)
        cfg = compose_datamodule(name, overrides[target])
        assert cfg._target_ == target and str(cfg.root).startswith(str(tmp_path))
        dm = instantiate(cfg)
        dm.setup()
        batch = next(iter(dm.test_dataloader()))
        assert batch[image_key].shape[-1] == 32 and batch[other_key].shape[-1] == 32
    train = next(iter(dm_from(overrides, "mt_makeup").train_dataloader()))
    assert train["source_labels"].dtype == torch.int64


def dm_from(overrides: dict[str, list[str]], name: str):
    target = next(t for t in overrides if t.split(".")[2] == name)
    dm = instantiate(compose_datamodule(name, overrides[target]))
    dm.setup()
    return dm
