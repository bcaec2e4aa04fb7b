"""SelfBlendedFramesDataModule: pair batches [reals; fakes], evenly spread frames, seeded fakes (same seed and
epoch → same fakes; next epoch → new ones), a fixed validation set, the SBI test crop, clear errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.self_blended import SelfBlendedFramesDataModule, spread_frames
from tests.fixtures_datasets import make_preprocessed_frames


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_preprocessed_frames(tmp_path_factory.mktemp("sbi_frames"), "ffpp")


def _dm(root: Path, **kwargs) -> SelfBlendedFramesDataModule:  # type: ignore[no-untyped-def]
    dm = SelfBlendedFramesDataModule(root=str(root), image_size=48, batch_size=2, **kwargs)
    dm.setup()
    return dm


def _first_batch(dm: SelfBlendedFramesDataModule, epoch: int) -> dict[str, torch.Tensor]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return next(iter(loader))


def test_spread_frames_takes_evenly_spaced_frames() -> None:
    rows = [{"video_uid": "v", "frame_index": str(i)} for i in range(32)]
    picked = [int(r["frame_index"]) for r in spread_frames(rows, 8)]
    assert picked == [round(x) for x in np.linspace(0, 31, 8)]
    assert len(spread_frames(rows[:3], 8)) == 3


def test_pair_batches_are_reals_then_their_fakes(frames: Path) -> None:
    dm = _dm(frames)
    batch = _first_batch(dm, 0)
    assert batch["image"].shape == (4, 3, 48, 48) and batch["label"].tolist() == [0, 0, 1, 1]
    assert torch.equal(batch["video_idx"][:2], batch["video_idx"][2:])
    assert torch.equal(batch["frame_index"][:2], batch["frame_index"][2:])
    assert not torch.equal(batch["image"][:2], batch["image"][2:])  # the fakes differ from their sources
    info = dm.describe()
    assert info["self_blended"]["train"]["frames"] == 6 and info["self_blended"]["val"]["frames"] == 6
    train_uids = {dm.encoders["train"].ids[i] for i in batch["video_idx"].tolist()}
    assert all("/youtube/" in uid for uid in train_uids)  # only real frames are blended


def test_blend_parts_give_the_masks_and_sources_the_fakes_were_blended_from(frames: Path) -> None:
    plain = _first_batch(_dm(frames), 0)
    batch = _first_batch(_dm(frames, blend_parts=True), 0)
    assert torch.equal(batch["image"], plain["image"])  # the parts add fields, nothing else changes
    assert batch["mask"].shape == (4, 1, 48, 48) and batch["source"].shape == (2, 3, 48, 48)
    assert not batch["mask"][:2].any() and batch["mask"][2:].flatten(1).amax(1).gt(0).all()
    # fakes differ from their reals where the mask is (the joint JPEG/colour augmentation blurs "exactly")
    inside = batch["mask"][2:, 0] > 0.1
    change = (batch["image"][2:] - batch["image"][:2]).abs().mean(1)
    assert change[inside].mean() > 3 * change[~inside].mean()
    assert "mask" not in next(iter(_dm(frames, blend_parts=True).val_dataloader()))


def test_fakes_are_a_function_of_seed_epoch_and_sample(frames: Path) -> None:
    first, again = _first_batch(_dm(frames), 0), _first_batch(_dm(frames), 0)
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["index"], again["index"])
    later = _first_batch(_dm(frames), 1)
    assert not torch.equal(first["image"], later["image"])


def test_validation_pairs_are_fixed(frames: Path) -> None:
    dm = _dm(frames)
    a, b = next(iter(dm.val_dataloader())), next(iter(dm.val_dataloader()))
    assert torch.equal(a["image"], b["image"]) and a["label"].tolist() == [0, 0, 1, 1]


def test_test_split_is_every_face_cropped_by_its_box(frames: Path) -> None:
    dm = _dm(frames)
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape[1:] == (3, 48, 48) and "face_index" in batch
    assert set(dm.datasets["test"].extras["face_index"].tolist()) == {0, 1}
    labels = {row["label"] for row in dm.rows["test"]}
    assert labels == {"0", "1"}


def test_index_without_landmarks_is_refused(frames: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ffpp"
    shutil.copytree(frames, copy)
    with (copy / "index.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c != "landmarks"]
    with (copy / "index.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DatasetLayoutError, match="no landmarks / face-box columns.*--profile sbi"):
        _dm(copy)


def test_unblendable_frame_is_replaced_and_flagged(frames: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ffpp"
    shutil.copytree(frames, copy)
    dm = _dm(copy)
    dataset = dm.pair_datasets["val"]
    bad = copy / dataset.rows[0]["landmarks"]
    np.save(bad, np.full((68, 2), np.nan, dtype=np.float32))
    with pytest.warns(UserWarning, match="self-blending skipped .*NaN"):
        item = dataset[0]
    assert item["blend_failed"].item() == 1 and item["index"].item() == 1
    assert dataset[2]["blend_failed"].item() == 0


def test_bad_blend_settings_name_the_key(frames: Path) -> None:
    with pytest.raises(ValueError, match="datamodule.blend"):
        SelfBlendedFramesDataModule(root=str(frames), blend={"no_such_option": 1}, batch_size=2)
