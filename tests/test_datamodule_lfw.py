"""LFW DataModule on miniature copies: pairs.txt parsing, fold ids, pair and image protocols, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.instantiate import instantiate
from src.datamodules.components.image_io import CorruptImageError, read_image_rgb
from src.datamodules.components.metadata import MetadataFormatError
from src.datamodules.components.pairs import parse_lfw_pairs
from src.datamodules.identity_folders import DatasetLayoutError
from src.datamodules.lfw import LFWDataModule
from src.metrics.identity import verification_accuracy
from tests.fixtures_datasets import LFW_PAIRS_2x1, compose_datamodule, lfw_full_format, make_lfw, write_text


def lfw(root: Path, **kwargs) -> LFWDataModule:
    """A set-up DataModule at the fixture's native 40 px (no resampling, so pixels can be compared)."""
    kwargs = {"image_size": 40, "batch_size": 2, **kwargs}
    dm = LFWDataModule(str(root), **kwargs)
    dm.setup()
    return dm


EXPECTED_2x1 = [  # (image_a, image_b, is_same, fold) of LFW_PAIRS_2x1
    ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True, 0),
    ("Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg", "Dean_Barker/Dean_Barker_0001.jpg", False, 0),
    ("Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0003.jpg", True, 1),
    ("Abel_Pacheco/Abel_Pacheco_0002.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0002.jpg", False, 1),
]


def test_pairs_folds_and_pair_batches(tmp_path: Path) -> None:
    root = make_lfw(tmp_path / "lfw")
    dm = lfw(root)
    pairs = dm.pair_list("test")
    assert pairs.fold.tolist() == [0, 0, 1, 1] and pairs.is_same.tolist() == [True, False, True, False]
    names = dm.records["test"].names
    assert [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)] == [
        (a, b) for a, b, _, _ in EXPECTED_2x1
    ]
    batches = list(dm.test_dataloader())
    assert len(batches) == 2
    batch = batches[0]
    assert {"image_a", "image_b", "is_same", "fold", "index", "identity_a", "identity_b"} <= set(batch)
    assert batch["is_same"].dtype == torch.bool and batch["fold"].tolist() == [0, 0]
    assert (batch["identity_a"] == batch["identity_b"]).tolist() == [True, False]
    first = (
        torch.from_numpy(read_image_rgb(root / "lfw" / EXPECTED_2x1[0][1]).transpose(2, 0, 1).copy()).float()
        / 255
    )
    assert torch.allclose(batch["image_b"][0], first)  # image_b of pair 0 is Abel_Pacheco_0004
    info = dm.describe()
    assert info["test_images"] == 8 and info["test_identities"] == 4 and info["identities"] == 4
    assert info["people_in_folder"] == 5 and info["images"] == 8  # Zico is in the folder, not in the pairs
    assert info["split_files"]["test_pairs"]["official"] is True
    assert info["split_files"]["test_pairs"]["pairs_per_fold"] == {0: 2, 1: 2}


def test_image_protocol_and_verification_accuracy(tmp_path: Path) -> None:
    dm = lfw(make_lfw(tmp_path / "lfw"), eval_protocol="images")
    batches = list(dm.test_dataloader())
    assert set(batches[0]) == {"image", "index", "identity", "identity_id"}
    indices = torch.cat([b["index"] for b in batches])
    assert indices.tolist() == list(range(8))  # each pair image exactly once
    tensors = dm.pair_list("test").tensors()
    scores = tensors["is_same"].float() + 0.1 * tensors["fold"].float()
    result = verification_accuracy(scores, tensors["is_same"], num_folds=2, fold_ids=tensors["fold"])
    assert result["mean"] == 1.0 and result["fold_accuracies"].shape == (2,)


@pytest.mark.parametrize("header", ["10\t3", "10 3"])
def test_full_format_header_without_final_newline(tmp_path: Path, header: str) -> None:
    root = lfw_full_format(tmp_path / "lfw", folds=10, per_fold=3)
    text = (root / "pairs.txt").read_text().split("\n", 1)[1]
    (root / "pairs.txt").write_text(f"{header}\n{text}")
    assert not (root / "pairs.txt").read_text().endswith("\n")
    pairs = lfw(root, image_size=16).pair_list("test")
    assert len(pairs) == 60 and pairs.num_folds == 10
    assert pairs.fold.tolist() == [f for f in range(10) for _ in range(6)]
    assert (
        pairs.is_same.tolist()
        == [True] * 3 + [False] * 3 + [True] * 3 + [False] * 3 + [True, True, True, False, False, False] * 8
    )


def test_view1_single_count_header(tmp_path: Path) -> None:
    root = make_lfw(
        tmp_path / "lfw",
        pairs=["2", "Abel_Pacheco 1 2", "Zico 1 2", "Zico 1 Dean_Barker 1", "Abel_Pacheco 3 Zico 2"],
    )
    pairs = lfw(root).pair_list("val")
    assert pairs.fold.tolist() == [0, 0, 0, 0] and pairs.is_same.tolist() == [True, True, False, False]


def test_crop_box_and_resize(tmp_path: Path) -> None:
    dm = lfw(make_lfw(tmp_path / "lfw"), crop_box=[10, 10, 20, 20], image_size=20, eval_protocol="images")
    name = dm.records["test"].names[0]
    expected = read_image_rgb(dm.records["test"].image_root / name)[10:30, 10:30]
    item = dm.datasets["test"][0]["image"]
    assert torch.allclose(item, torch.from_numpy(expected.transpose(2, 0, 1).copy()).float() / 255)


def test_pairs_file_errors_name_file_and_line(tmp_path: Path) -> None:
    root = make_lfw(tmp_path / "lfw")
    path = root / "pairs.txt"
    write_text(path, LFW_PAIRS_2x1[:-1])
    with pytest.raises(
        MetadataFormatError,
        match=r"pairs\.txt: header .* announces 2 fold\(s\).*= 4 pair lines, but the file has 3",
    ):
        parse_lfw_pairs(path)
    swapped = [LFW_PAIRS_2x1[0], LFW_PAIRS_2x1[2], LFW_PAIRS_2x1[1], *LFW_PAIRS_2x1[3:]]
    write_text(path, swapped)
    with pytest.raises(MetadataFormatError, match=r"pairs\.txt:2: fold 1, pair 1 should be a matched pair"):
        parse_lfw_pairs(path)
    write_text(path, ["two\tone", *LFW_PAIRS_2x1[1:]])
    with pytest.raises(MetadataFormatError, match=r"pairs\.txt:1: expected a header"):
        parse_lfw_pairs(path)
    write_text(path, [*LFW_PAIRS_2x1[:3], "Akhmed_Zakayev\t0\t3", LFW_PAIRS_2x1[4]])
    with pytest.raises(MetadataFormatError, match=r"pairs\.txt:4: expected a 1-based image number, got '0'"):
        parse_lfw_pairs(path)


def test_layout_errors_name_the_path(tmp_path: Path) -> None:
    root = make_lfw(tmp_path / "lfw")
    (root / "lfw" / "Dean_Barker" / "Dean_Barker_0001.jpg").unlink()
    with pytest.raises(
        DatasetLayoutError,
        match=r"1 image\(s\) named in .*pairs\.txt are missing from .*lfw, e\.g\. .*Dean_Barker_0001\.jpg "
        r"\(pairs\.txt line 3\); the full list of 1 is in .*missing_files_lfw.*allow_partial=true",
    ):
        lfw(root)
    (root / "pairs.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"LFW pair list not found: .*pairs\.txt"):
        lfw(root)
    with pytest.raises(DatasetLayoutError, match=r"LFW image folder not found: .*lfw_funneled"):
        lfw(root, image_dir="lfw_funneled")
    dm = LFWDataModule(str(make_lfw(tmp_path / "ok")), batch_size=2)
    with pytest.raises(ValueError, match="LFW is an evaluation set"):
        dm.train_dataloader()


def test_corrupt_image_names_the_file_and_skip_drops_its_pairs(tmp_path: Path) -> None:
    root = make_lfw(tmp_path / "lfw")
    (root / "lfw" / "Dean_Barker" / "Dean_Barker_0001.jpg").write_bytes(b"\xff\xd8\xff")
    dm = lfw(root)
    with pytest.raises(CorruptImageError, match=r"Dean_Barker/Dean_Barker_0001\.jpg.*skip_corrupt=true"):
        next(iter(dm.test_dataloader()))
    skipping = lfw(root, skip_corrupt=True)
    pairs = skipping.pair_list("test")
    assert pairs.fold.tolist() == [0, 1, 1] and pairs.is_same.tolist() == [True, True, False]
    info = skipping.describe()
    assert info["split_files"]["test_pairs"]["left_out_unreadable"] == 1
    assert [Path(e["path"]).name for e in info["skipped_files"]] == ["Dean_Barker_0001.jpg"]
    assert np.array_equal(skipping.pair_list("val").fold, pairs.fold)


def test_yaml_config_composes_and_follows_proface_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_lfw(tmp_path / "data" / "lfw")
    monkeypatch.setenv("PROFACE_DATA", str(tmp_path / "data"))
    cfg = compose_datamodule(
        "lfw", ["datamodule.image_size=16", "datamodule.batch_size=2", "datamodule.num_workers=0"]
    )
    assert cfg.root == str(tmp_path / "data" / "lfw") and cfg.eval_protocol == "pairs"
    dm = instantiate(cfg)
    dm.setup()
    assert dm.pair_list("test").num_folds == 2


def test_tiny_data_overrides_set_up_every_datamodule(tmp_path: Path) -> None:
    """The TINY_DATA entries proposed for tests/helpers.py compose, set up and load a batch."""
    from tests.fixtures_datasets import tiny_data_overrides

    names = {"ffhq": "ffhq", "CelebADataModule": "celeba", "CelebAHQDataModule": "celeba_hq"}
    names |= {"vggface2": "vggface2", "lfw": "lfw", "FFPPFrames": "ffpp", "SelfBlended": "ffpp_sbi"}
    names |= {"CelebDF": "celeb_df", "ImageList": "image_list", "VerificationBins": "verification_bins"}
    names |= {"TrainWithVerification": "train_with_verification"}
    names |= {"MTMakeup": "mt_makeup", "MakeupPairs": "makeup_pairs", "OneToN": "one_to_n"}
    image_keys = {"mt_makeup": "source", "makeup_pairs": "source", "one_to_n": "query"}
    pairs = ("lfw", "verification_bins", "train_with_verification")  # test batches of image pairs
    overrides = tiny_data_overrides(tmp_path)
    assert len(overrides) == len(names)
    for target, entries in overrides.items():
        key = next(k for k in names if k in target)
        if names[key] == "train_with_verification":  # its training part's own keys: the tiny image list
            image_list = overrides["src.datamodules.image_list.ImageListDataModule"]
            entries = [*entries, *(e.replace("datamodule.", "datamodule.train.") for e in image_list[:2])]
        cfg = compose_datamodule(names[key], entries)
        assert cfg._target_ == target
        dm = instantiate(cfg)
        dm.setup()
        batch = next(iter(dm.test_dataloader()))
        image_key = image_keys.get(names[key], "image_a" if names[key] in pairs else "image")
        assert batch[image_key].shape[-1] == 32


def test_aligned_png_copy_and_pair_csv(tmp_path: Path) -> None:
    """An aligned copy written as PNG (python -m src.preprocess.align) keeps LFW's names: any extension."""
    root = make_lfw(tmp_path / "lfw")
    for jpg in sorted((root / "lfw").rglob("*.jpg")):
        png = jpg.with_suffix(".png")
        png.write_bytes(jpg.read_bytes())  # the decoder reads by content
        jpg.unlink()
    dm = lfw(root)
    names = dm.records["test"].names
    pairs = dm.pair_list("test")
    assert [(names[a], names[b]) for a, b in zip(pairs.index_a, pairs.index_b, strict=True)] == [
        (a.replace(".jpg", ".png"), b.replace(".jpg", ".png")) for a, b, _, _ in EXPECTED_2x1
    ]
    rows = [
        f"{f},{int(s)},{a.replace('.jpg', '.png')},{b.replace('.jpg', '.png')}" for a, b, s, f in EXPECTED_2x1
    ]
    write_text(root / "pairs.csv", ["fold,is_same,image_a,image_b", *rows])
    from_csv = lfw(root, pairs_file="pairs.csv").pair_list("test")
    np.testing.assert_array_equal(from_csv.is_same, pairs.is_same)
    np.testing.assert_array_equal(from_csv.fold, pairs.fold)


def test_partial_copy_leaves_out_the_pairs_of_missing_images(tmp_path: Path) -> None:
    root = make_lfw(tmp_path / "lfw")
    (root / "lfw" / "Dean_Barker" / "Dean_Barker_0001.jpg").unlink()
    dm = lfw(root, allow_partial=True)
    pairs = dm.pair_list("test")
    assert pairs.fold.tolist() == [0, 1, 1] and pairs.is_same.tolist() == [True, True, False]
    info = dm.describe()
    assert info["split_files"]["test_pairs"]["left_out_missing"] == 1
    assert info["split_files"]["test_pairs"]["left_out_unreadable"] == 0
    assert info["missing_files"]["count"] == 1 and info["missing_files"]["examples"][0].endswith(
        "Dean_Barker/Dean_Barker_0001.jpg"
    )
    assert info["test_images"] == 7
    with pytest.raises(ValueError, match="LFW has no training split"):
        LFWDataModule(str(root), train_protocol="triplets", batch_size=2)
