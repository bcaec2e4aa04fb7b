"""``python -m src.preprocess.videos``: layouts, split/label parsing, outputs, failures, resuming, errors; the
``dfb`` / ``sbi`` profiles, landmarks and ``--faces all`` on real-size clips; the fast MTCNN's agreement."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from src.datamodules.components.video_index import (
    MetadataFileError,
    ffpp_split_of_videos,
    list_celeb_df_videos,
    list_ffpp_videos,
    parse_celeb_df_test_list,
    parse_ffpp_split,
)
from src.datamodules.identity_folders import DatasetLayoutError
from src.face.alignment import alignment_matrix, shrink_factor, warp_image
from src.face.crop_regions import landmark_box, sbi_coarse_box
from src.face.detection import MTCNNDetector
from src.face.fast_mtcnn import FastMTCNNDetector, area_resize_crops, area_resize_frames, integral_images
from src.face.landmarks import LANDMARK_NAMES
from src.preprocess.videos import (
    FAILURE_COLUMNS,
    INDEX_COLUMNS,
    POINT_COLUMNS,
    main,
    margin_template,
    sample_indices,
    warp_region,
)
from tests.fixtures_videos import (
    CELEB_DF_TEST_LIST,
    FFPP_SPLITS,
    PROCESS_FRAMES,
    make_celeb_df_scenes,
    preprocessed,
    scene_clip,
)


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
        points = [float(row[c]) for c in POINT_COLUMNS]
        assert all(0 <= p < 64 for p in points)
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


def test_ffpp_rows_carry_faces_landmarks_and_scoring_columns(ffpp_out: Path) -> None:
    folder = ffpp_out / "ffpp"
    rows, failures = _rows(folder / "index.csv"), _rows(folder / "failures.csv")
    assert list(rows[0]) == INDEX_COLUMNS and list(failures[0]) == FAILURE_COLUMNS
    for row in rows:  # default: --faces largest --landmarks dlib68
        assert row["face_index"] == "0" and row["path"].endswith(f"/{int(row['frame_index']):03d}.png")
        assert row["landmarks"] == row["path"][: -len(".png")] + ".npy"
        points = np.load(folder / row["landmarks"])
        assert points.shape == (68, 2) and points.dtype == np.float32
    for failure in failures:  # the no-face fakes, scorable without the raw dataset
        assert (failure["label"], failure["method"], failure["split"]) == (
            "1",
            failure["video_uid"].split("/")[1],
            "test",
        )
        assert failure["compression"] == "c23"


# ------------------------------------------------------------- real-size clips: profiles, faces, failures


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_celeb_df_scenes(tmp_path_factory.mktemp("scenes") / "raw")


def _run_scenes(raw: Path, out: Path, *options: str) -> Path:
    assert main(["celeb_df", str(raw), str(out), "--frames", "3", "--no-progress", *options]) == 0
    return out / "celeb_df"


@pytest.fixture(scope="module")
def sbi_out(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run_scenes(
        scenes, tmp_path_factory.mktemp("sbi"), "--profile", "sbi", "--faces", "all", "--max-side", "300"
    )


@pytest.fixture(scope="module")
def dfb_out(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run_scenes(scenes, tmp_path_factory.mktemp("dfb"), "--profile", "dfb")


def _image(folder: Path, row: dict[str, str]) -> np.ndarray:
    image = cv2.imread(str(folder / row["path"]))
    assert image is not None, row["path"]
    return image


def _box(row: dict[str, str]) -> np.ndarray:
    return np.array([float(row[c]) for c in ("box_x0", "box_y0", "box_x1", "box_y1")])


@pytest.mark.parametrize("profile", ["sbi", "dfb"])
def test_every_video_is_indexed_or_reported(profile: str, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(f"{profile}_out")
    rows, failures = _rows(folder / "index.csv"), _rows(folder / "failures.csv")
    listed = {e.uid for e in list_celeb_df_videos(request.getfixturevalue("scenes"))}
    assert len(listed) == 5  # nothing lost: every listed video has rows or failures
    assert {r["video_uid"] for r in rows} | {f["video_uid"] for f in failures} == listed
    by_reason = {(f["video_uid"].split("/")[-1], f["frame_index"], f["reason"]): f for f in failures}
    assert set(by_reason) == {("00000", "", "unreadable")} | {
        ("id0_id1_0000", i, "no_face") for i in ("0", "2", "5")
    }
    corrupt = by_reason[("00000", "", "unreadable")]
    assert (corrupt["label"], corrupt["method"], corrupt["compression"], corrupt["split"]) == (
        "0",
        "real",
        "orig",
        "test",
    )
    assert "Invalid data" in corrupt["detail"]
    no_face = by_reason[("id0_id1_0000", "0", "no_face")]
    assert (no_face["label"], no_face["method"], no_face["split"]) == ("1", "synthesis", "test")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["counts"]["videos_without_frames"] == 2 and summary["counts"]["frames"] == 9
    assert summary["settings"]["profile"] == profile


def test_sbi_profile_saves_unaligned_regions_with_landmarks(sbi_out: Path) -> None:
    rows = _rows(sbi_out / "index.csv")
    for row in rows:
        image = _image(sbi_out, row)
        height, width = image.shape[:2]
        assert max(height, width) <= 300
        points = np.load(sbi_out / row["landmarks"])
        assert points.shape == (68, 2) and points.dtype == np.float32
        assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()
        box = _box(row)  # the detector box, in the crop's pixels, inside it
        assert box[0] >= -1 and box[1] >= -1 and box[2] <= width + 1 and box[3] <= height + 1
        assert box[2] - box[0] > width / 4
        eyes = np.array([[float(row[f"{e}_{a}"]) for a in "xy"] for e in ("left_eye", "right_eye")])
        assert (eyes >= 0).all() and (eyes[:, 0] < width).all()
        if row["video_uid"].endswith(("id0_0000", "id1_id0_0000")):  # faces well inside the frame
            coarse = sbi_coarse_box(landmark_box(points))  # SBI's coarse crop fits, with some slack
            assert coarse[0] > 0 and coarse[1] >= 0 and coarse[2] < width and coarse[3] < height
    big = [r for r in rows if r["video_uid"].endswith("id1_id0_0000")]  # 1280×720: region scaled down to 300
    assert len(big) == 3 and all(max(_image(sbi_out, r).shape[:2]) == 300 for r in big)


def test_faces_all_keeps_faces_over_half_the_largest_area(sbi_out: Path) -> None:
    rows = [r for r in _rows(sbi_out / "index.csv") if r["video_uid"].endswith("id1_0000")]
    assert sorted((r["frame_index"], r["face_index"]) for r in rows) == [
        (f, i) for f in ("0", "2", "5") for i in ("0", "1")
    ]
    for row in rows:
        stem = f"{int(row['frame_index']):03d}" + (
            "" if row["face_index"] == "0" else f"_{row['face_index']}"
        )
        assert row["path"].endswith(f"/{stem}.png") and row["landmarks"].endswith(f"/{stem}.npy")
    summary = json.loads((sbi_out / "summary.json").read_text())
    assert summary["counts"]["small_faces_dropped"] == 3  # the small face of each three-face frame
    assert summary["counts"]["faces"] == 12 and summary["settings"]["faces"] == "all"


def test_dfb_profile_saves_aligned_crops(dfb_out: Path) -> None:
    rows = _rows(dfb_out / "index.csv")
    assert len(rows) == 9 and {r["face_index"] for r in rows} == {"0"}  # --faces largest: one face per frame
    template = margin_template(256, 1.3).points
    for row in rows:
        image = _image(dfb_out, row)
        assert image.shape == (256, 256, 3)
        points = np.load(dfb_out / row["landmarks"])
        assert points.shape == (68, 2) and (points > 0).all() and (points < 256).all()
        five = np.array([[float(row[f"{c}_x"]), float(row[f"{c}_y"])] for c in LANDMARK_NAMES])
        assert np.abs(five - template).max() < 12  # aligned to the template
        box = _box(row)
        assert abs((box[0] + box[2]) / 2 - 128) < 20 and 0 <= box[0] < box[2] <= 256
        # dlib's eye contours surround the detector's eye points
        assert np.linalg.norm(points[36:42].mean(0) - five[0]) < 8


def test_resume_with_other_profile_is_refused(
    scenes: Path, sbi_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["celeb_df", str(scenes), str(sbi_out.parent), "--frames", "3", "--no-progress"]
    assert (
        main([*argv, "--profile", "sbi", "--faces", "all", "--max-side", "300", "--landmarks", "none"]) == 2
    )
    assert "landmarks" in capsys.readouterr().err
    assert main([*argv, "--profile", "dfb", "--faces", "all", "--max-side", "300"]) == 2
    assert "['profile']" in capsys.readouterr().err


def test_dlib81_without_the_model_exits_2(
    scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    out = tmp_path / "out"
    assert main(["celeb_df", str(scenes), str(out), "--landmarks", "dlib81", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dlib-shape-predictor-81" in err and "shape_predictor_81_face_landmarks.dat" in err
    assert f"Put it at {tmp_path / 'weights' / 'shape_predictor_81_face_landmarks.dat'}" in err
    assert "github.com/codeniko/shape_predictor_81_face_landmarks" in err
    assert not (out / "celeb_df" / "config.json").exists()  # refused before anything is written


# ------------------------------------------------------------------------------------- fast MTCNN detector


def test_area_resampling_is_bit_identical_to_torch() -> None:
    image = np.random.default_rng(0).integers(0, 256, (73, 130, 3), dtype=np.uint8)
    table = integral_images([image])
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    for size in ((44, 78), (7, 12), (150, 200)):
        expected = F.interpolate(tensor, size=size, mode="area").numpy()
        assert np.array_equal(area_resize_frames(table, size), expected)
    crop = area_resize_crops(
        table, np.array([0]), np.array([5]), np.array([60]), np.array([9]), np.array([40]), 24
    )
    assert np.array_equal(crop, F.interpolate(tensor[:, :, 5:60, 9:40], size=(24, 24), mode="area").numpy())


def test_fast_detector_matches_full_resolution_mtcnn_within_2px() -> None:
    frame = scene_clip(1280, 720, 1, [("astronaut", 440, 150, 120), (4, 400, 720, 200)], background=3)[0]
    expected = sorted(MTCNNDetector().detect(frame), key=lambda d: d.box[0])
    found = sorted(FastMTCNNDetector(detect_side=360).detect(frame), key=lambda d: d.box[0])
    assert len(expected) == len(found) == 2
    for ref, fast in zip(expected, found, strict=True):
        assert np.abs(fast.box - ref.box).max() <= 2.0
        assert np.abs(fast.landmarks - ref.landmarks).max() <= 2.0 and abs(fast.score - ref.score) < 1e-3


def test_warp_region_matches_warping_the_whole_frame() -> None:
    frame = scene_clip(1280, 720, 1, [("astronaut", 440, 150, 120)], background=1)[0]
    points = np.array([[300.0, 310.0], [400.0, 300.0], [352.0, 370.0], [310.0, 420.0], [395.0, 412.0]])
    for size, margin, factor in ((256, 1.3, 1), (48, 1.0, 3), (64, 1.1, 2)):
        matrix = alignment_matrix(points, margin_template(size, margin))
        assert shrink_factor(matrix) == factor  # > 1: the frame is box-shrunk before warping
        difference = warp_region(frame, matrix, size).astype(int) - warp_image(frame, matrix, size)
        assert np.abs(difference).max() <= 1 and (difference != 0).mean() < 0.01


@pytest.mark.slow
def test_two_workers_write_the_same_outputs(scenes: Path, sbi_out: Path, tmp_path: Path) -> None:
    options = ["--profile", "sbi", "--faces", "all", "--max-side", "300", "--workers", "2"]
    folder = _run_scenes(scenes, tmp_path, *options)
    for name in ("index.csv", "failures.csv"):
        assert (folder / name).read_text() == (sbi_out / name).read_text()
