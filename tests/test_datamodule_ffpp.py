"""FFPPFramesDataModule: counts, labels, splits, video ids, filters, root from the environment, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from src.datamodules.ffpp import FFPPFramesDataModule
from src.datamodules.identity_folders import DatasetLayoutError
from tests.fixtures_videos import FFPP_CONVERSION, PROCESS_FRAMES, preprocessed


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return preprocessed(tmp_path_factory.getbasetemp(), "ffpp")


def test_counts_labels_and_batches(out: Path) -> None:
    dm = FFPPFramesDataModule(root=str(out), image_size=32, batch_size=4)
    dm.setup()
    info = dm.describe()
    # train/val: 2 originals + 2 methods × 2 fakes; test loses the no-face fakes 974_953 (both methods)
    assert info["train"]["videos"] == info["val"]["videos"] == 6 and info["test"]["videos"] == 4
    assert info["train"]["images"] == 6 * PROCESS_FRAMES
    assert info["train"]["real_videos"] == 2 and info["train"]["fake_videos"] == 4
    assert info["train"]["videos_by_method"] == {"Deepfakes": 2, "FaceSwap": 2, "youtube": 2}
    assert info["preprocessing_failures"] == {"no_face": 2 * PROCESS_FRAMES}
    # the failed frames keep their split and label: the test split scores them (0.5) instead of losing them
    assert info["test"]["failed_frames"] == 2 * PROCESS_FRAMES and info["test"]["failed_videos"] == 2
    assert info["train"]["failed_frames"] == 0
    failed = dm.failed_items("test")
    assert failed["label"].tolist() == [1] * 2 * PROCESS_FRAMES
    assert set(dm.encoders["test"].decode(failed["video_idx"])) == {
        f"ffpp/{m}/c23/974_953" for m in ("Deepfakes", "FaceSwap")
    }
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {
        "image",
        "label",
        "video_idx",
        "frame_index",
        "face_index",
        "index",
        "target_video",
        "source_video",
    }
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    encoder = dm.encoders["val"]
    rows = dm.rows["val"]
    for i, idx in enumerate(batch["index"].tolist()):
        uid = encoder.ids[batch["video_idx"][i].item()]
        assert uid == rows[idx]["video_uid"]
        assert batch["label"][i].item() == (0 if "/youtube/" in uid else 1)
        assert batch["frame_index"][i].item() == int(rows[idx]["frame_index"])
        name = uid.rsplit("/", 1)[1]  # <target>_<source> for fakes, <id> for originals
        target, source = (name.split("_") * 2)[:2]
        assert (batch["target_video"][i].item(), batch["source_video"][i].item()) == (
            int(target),
            int(source),
        )
    assert set(encoder.ids) == {
        "ffpp/youtube/c23/000",
        "ffpp/youtube/c23/003",
        *(f"ffpp/{m}/c23/{n}" for m in ("Deepfakes", "FaceSwap") for n in ("000_003", "003_000")),
    }


def test_method_and_compression_filters(out: Path) -> None:
    dm = FFPPFramesDataModule(root=str(out / "ffpp"), methods=["Deepfakes"], compression="c23", batch_size=2)
    dm.setup()
    assert dm.describe()["train"]["videos_by_method"] == {"Deepfakes": 2, "youtube": 2}
    with pytest.raises(ValueError, match=r"datamodule.methods: \['Face2Face'\] not in the index"):
        FFPPFramesDataModule(root=str(out), methods=["Face2Face"], batch_size=2).setup()
    with pytest.raises(ValueError, match="compression='c40': no frames"):
        FFPPFramesDataModule(root=str(out), compression="c40", batch_size=2).setup()


def test_root_from_environment(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFACE_FFPP_ROOT", str(out))
    dm = FFPPFramesDataModule(batch_size=2)
    dm.setup()
    assert dm.describe()["root"] == str(out)
    monkeypatch.delenv("PROFACE_FFPP_ROOT")
    with pytest.raises(ValueError, match=r"datamodule.root .* \(or set \$PROFACE_FFPP_ROOT\)"):
        FFPPFramesDataModule(batch_size=2)


def test_broken_preprocessed_layouts(out: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="root not found"):
        FFPPFramesDataModule(root=str(tmp_path / "nowhere"), batch_size=2).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DatasetLayoutError, match=r"index.csv not found .*python -m src.preprocess.videos ffpp"
    ):
        FFPPFramesDataModule(root=str(tmp_path / "empty"), batch_size=2).setup()
    copy = tmp_path / "copy"
    shutil.copytree(out / "ffpp", copy)
    frame = copy / "train/ffpp/youtube/c23/071/000.png"
    frame.unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 frame\(s\) listed in .*index.csv are missing"):
        FFPPFramesDataModule(root=str(copy), batch_size=2).setup()
    with (copy / "index.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    (copy / "index.csv").write_text("video_uid,label\n" + "".join(f"{r['video_uid']},1\n" for r in rows))
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['frame_index'"):
        FFPPFramesDataModule(root=str(copy), batch_size=2).setup()


def test_train_loader_with_transform(out: Path) -> None:
    dm = FFPPFramesDataModule(
        root=str(out), image_size=32, batch_size=4, transform=[{"name": "HorizontalFlip", "p": 0.5}]
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="has no test split|no test"):
        FFPPFramesDataModule(root=str(out), batch_size=2, methods=["Deepfakes"]).test_dataloader()


@pytest.mark.parametrize(
    ("name", "env"), [("ffpp", "PROFACE_FFPP_ROOT"), ("celeb_df", "PROFACE_CELEB_DF_ROOT")]
)
def test_config_composes_with_root_from_environment(
    name: str, env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.config.compose import compose
    from src.config.instantiate import instantiate

    monkeypatch.setenv(env, str(tmp_path))
    node = compose("demo/recognizer", [f"datamodule={name}", "model.head.num_classes=3"]).config.datamodule
    dm = instantiate(node)
    assert dm.root == tmp_path and dm.dataset_name == name
    with pytest.raises(DatasetLayoutError, match=f"index.csv not found in {tmp_path}"):
        dm.setup()


def test_conversion_dict_pairs_source_and_target_identities(out: Path, tmp_path: Path) -> None:
    """conversion_dict.json (copied next to index.csv by the preprocessing) gives per-frame identities."""
    dm = FFPPFramesDataModule(
        root=str(out), image_size=16, batch_size=64, conversion_dict="conversion_dict.json"
    )
    dm.setup()
    youtube = {k: v.split()[0] for k, v in FFPP_CONVERSION.items()}
    number = {y: i for i, y in enumerate(sorted(set(youtube.values())))}
    seen = set()
    for split in ("train", "val", "test"):
        batch = next(iter(dm.make_loader(dm.datasets[split], train=False)))
        for i, idx in enumerate(batch["index"].tolist()):
            row = dm.rows[split][idx]
            target, source = (row["video_uid"].rsplit("/", 1)[1].split("_") * 2)[:2]
            assert batch["target_identity"][i].item() == number[youtube[target]]
            assert batch["source_identity"][i].item() == number[youtube[source]]
            # identity swaps show the source's face; reals show their own
            shown = source if row["method"] in ("Deepfakes", "FaceSwap") else target
            assert batch["face_identity"][i].item() == number[youtube[shown]]
            seen.add(row["video_uid"])
    # 000 and 003 were cut from one YouTube video: one identity, so 000_003 swaps a face onto itself
    assert number[youtube["000"]] == number[youtube["003"]] and "ffpp/Deepfakes/c23/000_003" in seen
    info = dm.describe()["conversion_dict"]
    assert info["path"].endswith("conversion_dict.json") and info["originals"] == 7
    assert info["youtube_videos"] == 6 and info["originals_sharing_a_youtube_video"] == 2
    assert FFPPFramesDataModule(root=str(out), batch_size=2).describe()["conversion_dict"] is None

    short = tmp_path / "short.json"
    short.write_text(json.dumps({k: v for k, v in FFPP_CONVERSION.items() if k != "071"}))
    with pytest.raises(
        DatasetLayoutError, match=r"short\.json has no entry for original video\(s\) \['071'\]"
    ):
        FFPPFramesDataModule(root=str(out), batch_size=2, conversion_dict=str(short)).setup()
    short.write_text(json.dumps({"000": "no-sequence-number"}))
    with pytest.raises(DatasetLayoutError, match=r"short\.json: entry '000': 'no-sequence-number' is not"):
        FFPPFramesDataModule(root=str(out), batch_size=2, conversion_dict=str(short)).setup()
    with pytest.raises(DatasetLayoutError, match=r"FF\+\+ conversion_dict not found: .*elsewhere\.json"):
        FFPPFramesDataModule(root=str(out), batch_size=2, conversion_dict="elsewhere.json").setup()
