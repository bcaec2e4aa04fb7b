"""``python -m src.preprocess.videos``: layouts, split/label parsing, outputs, failures, resuming, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from src.datamodules.components.video_index import (
    MetadataFileError,
    ffpp_split_of_videos,
    list_celeb_df_videos,
    list_ffpp_videos,
    parse_celeb_df_test_list,
    parse_ffpp_split,
)
from src.datamodules.identity_folders import DatasetLayoutError
from src.preprocess.videos import main, sample_indices
from tests.fixtures_videos import CELEB_DF_TEST_LIST, FFPP_SPLITS, PROCESS_FRAMES, preprocessed


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _touch_ffpp(root: Path, methods=("Deepfakes",)) -> Path:
    """An FF++ layout with empty video files (enough for listing and validation)."""
    for split, pairs in FFPP_SPLITS.items():
        (root / f"{split}.json").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.json").write_text(json.dumps(pairs))
        for a, b in pairs:
            for name in (a, b):
                path = root / "original_sequences/youtube/c23/videos" / f"{name}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            for method in methods:
                for name in (f"{a}_{b}", f"{b}_{a}"):
                    path = root / "manipulated_sequences" / method / "c23/videos" / f"{name}.mp4"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
    return root


def _touch_celeb_df(root: Path, test_list: str = CELEB_DF_TEST_LIST) -> Path:
    for rel in ("Celeb-real/id0_0000.mp4", "Youtube-real/00000.mp4", "Celeb-synthesis/id0_id1_0000.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    (root / "Celeb-real/id1_0000.mp4").touch()
    (root / "List_of_testing_videos.txt").write_text(test_list)
    return root


# ------------------------------------------------------------------------------------------ parsing, layouts


def test_sample_indices_are_even_and_in_range() -> None:
    assert sample_indices(300, 32)[:3] == [0, 9, 19] and sample_indices(300, 32)[-1] == 299
    assert sample_indices(6, 3) == [0, 2, 5]
    assert sample_indices(2, 32) == [0, 1]
    assert sample_indices(0, 32) == []


def test_ffpp_pairs_give_both_directions_and_originals(tmp_path: Path) -> None:
    root = _touch_ffpp(tmp_path / "ff", methods=("Deepfakes", "Face2Face"))
    owner = ffpp_split_of_videos(root)
    assert owner["071"] == owner["054"] == owner["071_054"] == owner["054_071"] == "train"
    assert owner["000_003"] == owner["003_000"] == "val" and owner["953_974"] == "test"
    entries = list_ffpp_videos(root, ("Deepfakes", "Face2Face"), "c23")
    assert len(entries) == 6 + 2 * 6
    assert len({e.uid for e in entries}) == len(entries)  # unique across methods
    by_uid = {e.uid: e for e in entries}
    assert by_uid["ffpp/youtube/c23/071"].label == 0
    assert by_uid["ffpp/Face2Face/c23/054_071"].label == 1
    assert by_uid["ffpp/Deepfakes/c23/054_071"].split == "train"
    for split in ("train", "val", "test"):
        labels = [e.label for e in entries if e.split == split]
        assert labels.count(0) == 2 and labels.count(1) == 4


def test_ffpp_broken_layouts_name_the_problem(tmp_path: Path) -> None:
    root = _touch_ffpp(tmp_path / "ff")
    (root / "manipulated_sequences/Deepfakes/c23/videos/003_000.mp4").unlink()
    with pytest.raises(DatasetLayoutError, match=r"missing from .*Deepfakes/c23/videos.*003_000\.mp4"):
        list_ffpp_videos(root, ("Deepfakes",), "c23")
    with pytest.raises(DatasetLayoutError, match=r"video folder not found: .*Face2Face/c23/videos"):
        list_ffpp_videos(root, ("Face2Face",), "c23")
    with pytest.raises(ValueError, match="unknown FF\\+\\+ method"):
        list_ffpp_videos(root, ("Deepfake",), "c23")
    (root / "test.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"split file test\.json not found"):
        ffpp_split_of_videos(root)
    (root / "bad.json").write_text('{"071": "054"}')
    with pytest.raises(MetadataFileError, match="expected a JSON list"):
        parse_ffpp_split(root / "bad.json")
    (root / "bad.json").write_text('[["071", "054", "1"]]')
    with pytest.raises(MetadataFileError, match="entry 0"):
        parse_ffpp_split(root / "bad.json")
    (root / "test.json").write_text('[["071", "999"]]')  # 071 is already train
    with pytest.raises(MetadataFileError, match="also in the train split"):
        ffpp_split_of_videos(root)


def test_celeb_df_test_list_one_means_real(tmp_path: Path) -> None:
    path = tmp_path / "List_of_testing_videos.txt"
    path.write_text(CELEB_DF_TEST_LIST)
    labels = parse_celeb_df_test_list(path)
    assert labels == {
        "celeb-real/id0_0000.mp4": 0,
        "celeb-synthesis/id0_id1_0000.mp4": 1,
        "youtube-real/00000.mp4": 0,
    }
    root = _touch_celeb_df(tmp_path / "cdf")  # "Youtube-real" spelling: matched case-insensitively
    entries = {e.name: e for e in list_celeb_df_videos(root)}
    assert {n: (e.split, e.label) for n, e in entries.items()} == {
        "id0_0000": ("test", 0),
        "id1_0000": ("train", 0),
        "00000": ("test", 0),
        "id0_id1_0000": ("test", 1),
    }


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Celeb-real/id0_0000.mp4 1\n", "line 1: .* is not '<1 real"),
        ("real Celeb-real/id0_0000.mp4\n", "line 1"),
        ("1 Celeb-real/id0_0000.mp4\n1 Celeb-real/id1_0000.mp4 extra\n", "line 2"),
        ("0 Celeb-real/id0_0000.mp4\n", "contradicts folder celeb-real .*1 = real"),
        ("1 Other/x.mp4\n", "unknown folder 'Other'"),
        ("\n", "empty test list"),
    ],
)
def test_celeb_df_wrong_list_format(tmp_path: Path, text: str, match: str) -> None:
    root = _touch_celeb_df(tmp_path / "cdf", test_list=text)
    with pytest.raises(MetadataFileError, match=match):
        list_celeb_df_videos(root)


def test_celeb_df_missing_files(tmp_path: Path) -> None:
    root = _touch_celeb_df(tmp_path / "cdf")
    (root / "Celeb-synthesis/id0_id1_0000.mp4").unlink()
    with pytest.raises(DatasetLayoutError, match=r"missing under .*celeb-synthesis/id0_id1_0000\.mp4"):
        list_celeb_df_videos(root)
    (root / "List_of_testing_videos.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="test list not found"):
        list_celeb_df_videos(root)


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _touch_ffpp(tmp_path / "ff")
    (root / "val.json").unlink()
    assert main(["ffpp", str(root), str(tmp_path / "out"), "--methods", "Deepfakes", "--no-progress"]) == 2
    assert "val.json not found" in capsys.readouterr().err
    cdf = _touch_celeb_df(tmp_path / "cdf", test_list="2 Celeb-real/id0_0000.mp4\n")
    assert main(["celeb_df", str(cdf), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "List_of_testing_videos.txt line 1" in capsys.readouterr().err
    assert main(["ffpp", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "FF++ root not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- full run (MTCNN)


@pytest.fixture(scope="module")
def ffpp_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return preprocessed(tmp_path_factory.getbasetemp(), "ffpp")


def test_ffpp_outputs(ffpp_out: Path) -> None:
    folder = ffpp_out / "ffpp"
    rows, failures = _rows(folder / "index.csv"), _rows(folder / "failures.csv")
    summary = json.loads((folder / "summary.json").read_text())
    videos = {r["video_uid"]: r for r in rows}
    # 6 originals + 2 methods × 6 fakes; the two no-face clips (974_953) have no frames, only failures
    assert summary["counts"]["videos"] == 18 and len(videos) == 16
    assert len(rows) == 16 * PROCESS_FRAMES and summary["counts"]["frames"] == len(rows)
    assert {(f["video_uid"], f["reason"]) for f in failures} == {
        ("ffpp/Deepfakes/c23/974_953", "no_face"),
        ("ffpp/FaceSwap/c23/974_953", "no_face"),
    }
    assert len(failures) == 2 * PROCESS_FRAMES
    assert summary["counts"]["videos_by_split"] == {"test": 6, "train": 6, "val": 6}
    assert summary["run"]["frames_per_second"] > 0
    for row in rows:
        assert row["label"] == ("0" if row["method"] == "youtube" else "1")
        assert row["compression"] == "c23"
        assert (folder / row["path"]).is_file()
        assert row["path"].startswith(f"{row['split']}/{row['video_uid']}/")
        points = [float(row[c]) for c in list(row)[8:]]
        assert len(points) == 10 and all(0 <= p < 64 for p in points)
    assert videos["ffpp/youtube/c23/071"]["split"] == "train"
    assert videos["ffpp/FaceSwap/c23/003_000"]["split"] == "val"
    assert videos["ffpp/Deepfakes/c23/953_974"]["split"] == "test"
    assert sorted({r["frame_index"] for r in rows}) == ["0", "2", "5"]  # linspace(0, 5, 3) on 6 frames
    # FF++'s conversion_dict.json (raw root's dataset/) is copied next to the index for the DataModule
    assert json.loads((folder / "conversion_dict.json").read_text())["000"] == "--b1Ua-kWJE 0"
    assert summary["conversion_dict"].endswith("dataset/conversion_dict.json")


def test_ffpp_resume_redoes_only_missing_videos(ffpp_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(ffpp_out, out)
    raw = ffpp_out.parent / "raw_ffpp"
    argv = ["ffpp", str(raw), str(out), "--frames", str(PROCESS_FRAMES), "--size", "64", "--no-progress"]
    argv += ["--methods", "Deepfakes", "FaceSwap"]
    before = (out / "ffpp/index.csv").read_text()
    assert main(argv) == 0
    summary = json.loads((out / "ffpp/summary.json").read_text())
    assert summary["run"]["processed_videos"] == 0 and summary["run"]["skipped_videos"] == 18
    target = out / "ffpp/train/ffpp/Deepfakes/c23/071_054"
    (target / "002.png").unlink()  # a lost crop makes its video redo
    assert main(argv) == 0
    summary = json.loads((out / "ffpp/summary.json").read_text())
    assert summary["run"]["processed_videos"] == 1
    assert (target / "002.png").is_file() and (out / "ffpp/index.csv").read_text() == before
    assert main([*argv[:-3], "--methods", "Deepfakes"]) == 2  # other settings, same OUT_DIR


def test_celeb_df_outputs(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = preprocessed(tmp_path_factory.getbasetemp(), "celeb_df") / "celeb_df"
    rows = _rows(folder / "index.csv")
    videos = {r["video_uid"]: (r["split"], r["label"]) for r in rows}
    assert videos == {
        "celeb_df/Celeb-real/orig/id0_0000": ("test", "0"),
        "celeb_df/Celeb-real/orig/id1_0000": ("train", "0"),
        "celeb_df/YouTube-real/orig/00000": ("test", "0"),
        "celeb_df/Celeb-synthesis/orig/id0_id1_0000": ("test", "1"),
        "celeb_df/Celeb-synthesis/orig/id1_id0_0000": ("train", "1"),
    }
    assert _rows(folder / "failures.csv") == []
