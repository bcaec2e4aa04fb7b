"""CelebDFFramesDataModule: the test list's 1 = real flag becomes label 0; the rest is train."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.datamodules.celeb_df import CelebDFFramesDataModule
from tests.fixtures_videos import PROCESS_FRAMES, preprocessed


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return preprocessed(tmp_path_factory.getbasetemp(), "celeb_df")


def test_splits_labels_and_counts(out: Path) -> None:
    dm = CelebDFFramesDataModule(root=str(out), image_size=32, batch_size=3)
    dm.setup()
    info = dm.describe()
    assert set(dm.datasets) == {"train", "test"}
    assert info["test"] == {
        **info["test"],
        "videos": 3,
        "real_videos": 2,
        "fake_videos": 1,
        "images": 3 * PROCESS_FRAMES,
    }
    assert info["train"]["videos"] == 2 and info["train"]["real_videos"] == 1
    labels = {}
    for batch in dm.test_dataloader():
        for idx, label in zip(batch["video_idx"].tolist(), batch["label"].tolist(), strict=True):
            labels[dm.encoders["test"].ids[idx]] = label
    assert labels == {
        "celeb_df/Celeb-real/orig/id0_0000": 0,
        "celeb_df/YouTube-real/orig/00000": 0,
        "celeb_df/Celeb-synthesis/orig/id0_id1_0000": 1,
    }


def test_root_from_environment_and_filters(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_CELEB_DF_ROOT", str(out / "celeb_df"))
    dm = CelebDFFramesDataModule(methods=["synthesis"], batch_size=2)
    dm.setup()
    assert dm.describe()["test"]["videos"] == 3  # real frames are always kept
    with pytest.raises(ValueError, match="has no val split"):
        dm.val_dataloader()
