"""``python -m src.preprocess.synthetic_deepfakes``: layouts the listers accept, decodable videos,
determinism, manipulations confined to the face, face-check skips, argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from src.datamodules.components.video_index import list_celeb_df_videos, list_ffpp_videos
from src.preprocess.synthetic_deepfakes import (
    CELEB_DF_METHOD,
    FFPP_SYNTHETIC_METHODS,
    INFO_FILE,
    METHODS,
    SELF_BLENDED_METHOD,
    Framing,
    face_landmarks68,
    fake_frames,
    main,
    make_synthetic_celeb_df,
    make_synthetic_ffpp,
    original_frames,
    plan_video,
)

FRAMES, WIDTH, HEIGHT = 4, 128, 96
TINY = dict(frames=FRAMES, size=(WIDTH, HEIGHT), detector=None, progress=False)


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic") / "FaceForensics++"
    return root, make_synthetic_ffpp(root, pairs=(1, 1, 1), masks=True, **TINY)


@pytest.fixture(scope="module")
def celeb_df(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic") / "Celeb-DF-v2"
    summary = make_synthetic_celeb_df(
        root, subjects=2, clips=1, youtube=2, fakes_per_clip=1, test_subjects=1, **TINY
    )
    return root, summary


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _plans(seed: int = 0) -> tuple:
    framing = Framing(WIDTH, HEIGHT)
    return plan_video(seed, 0, 0, FRAMES, framing), plan_video(seed, 1, 0, FRAMES, framing)


# --- layouts -----------------------------------------------------------------------------------------------


def test_ffpp_layout_is_listed_with_splits_and_labels(ffpp: tuple[Path, dict]) -> None:
    root, summary = ffpp
    entries = list_ffpp_videos(root, FFPP_SYNTHETIC_METHODS, "c23")
    assert len(entries) == 6 + 4 * 6 == summary["total_videos"]
    splits = json.loads((root / "train.json").read_text()), json.loads((root / "test.json").read_text())
    assert splits == ([["000", "001"]], [["004", "005"]])
    for entry in entries:
        assert entry.label == (0 if entry.method == "youtube" else 1)
        assert entry.label == ("_" in entry.name)
        assert len(entry.name.split("_")[0]) == 3
    for split in ("train", "val", "test"):
        in_split = [e for e in entries if e.split == split]
        assert sum(e.label == 0 for e in in_split) == 2
        assert sum(e.label == 1 for e in in_split) == 8
        assert summary["videos"][split] == {"youtube": 2, **dict.fromkeys(FFPP_SYNTHETIC_METHODS, 2)}
    conversion = json.loads((root / "conversion_dict.json").read_text())
    assert sorted(conversion) == [f"{i:03d}" for i in range(6)]
    youtube_ids = {value.split()[0] for value in conversion.values()}
    assert len(youtube_ids) == 6 and all(len(y) == 11 for y in youtube_ids)
    assert all(value.split()[1] == "0" for value in conversion.values())
    info = json.loads((root / INFO_FILE).read_text())
    assert info["identities"]["000"] == {"identity": 0, "sample": 0}
    assert (root / "manipulated_sequences/FaceSwap/masks/videos/000_001.mp4").is_file()


def test_videos_decode_to_the_requested_frames_and_size(ffpp: tuple[Path, dict]) -> None:
    root, _ = ffpp
    videos = sorted(root.rglob("*.mp4"))
    assert len(videos) == 30 + 4 * 6  # videos and masks
    for path in videos:
        frames = _decode(path)
        assert len(frames) == FRAMES, path
        assert frames[0].shape == (HEIGHT, WIDTH, 3), path
    capture = cv2.VideoCapture(str(root / "original_sequences/youtube/c23/videos/000.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    capture.release()


def test_celeb_df_layout_is_listed(celeb_df: tuple[Path, dict]) -> None:
    root, summary = celeb_df
    entries = {e.name: e for e in list_celeb_df_videos(root)}
    assert sorted(entries) == ["00000", "00001", "id0_0000", "id0_id1_0000", "id1_0000", "id1_id0_0000"]
    assert {n: e.label for n, e in entries.items()} == {
        "00000": 0, "00001": 0, "id0_0000": 0, "id1_0000": 0, "id0_id1_0000": 1, "id1_id0_0000": 1
    }  # fmt: skip
    test = sorted(n for n, e in entries.items() if e.split == "test")
    assert test == ["00001", "id1_0000", "id1_id0_0000"]
    lines = (root / "List_of_testing_videos.txt").read_text().splitlines()
    assert "0 Celeb-synthesis/id1_id0_0000.mp4" in lines and "1 YouTube-real/00001.mp4" in lines
    assert summary["total_videos"] == 6
    ffpp_identities = {0, 1, 2, 3, 4, 5}
    assert not ffpp_identities & {v["identity"] for v in summary["identities"].values()}


# --- frames ------------------------------------------------------------------------------------------------


def test_frames_are_deterministic_and_seed_dependent() -> None:
    target, source = _plans()
    again_target, again_source = _plans()
    assert np.array_equal(original_frames(target), original_frames(again_target))
    for method in METHODS:
        first, mask = fake_frames(method, target, source, seed=0)
        second, mask2 = fake_frames(method, again_target, again_source, seed=0)
        assert first.tobytes() == second.tobytes() and mask.tobytes() == mask2.tobytes(), method
    other_target, _ = _plans(seed=1)
    assert not np.array_equal(original_frames(target), original_frames(other_target))


def test_originals_move_and_fill_about_half_the_frame_height() -> None:
    target, _ = _plans()
    video = original_frames(target)
    assert video.shape == (FRAMES, HEIGHT, WIDTH, 3) and video.dtype == np.uint8
    assert not np.array_equal(video[0], video[-1])
    for variation in target.variations:
        fraction = target.framing.face_pixels(target.traits, variation) / HEIGHT
        assert 0.4 <= fraction <= 0.6


def _face_box(plan, i: int, grow: float) -> tuple[int, int, int, int]:
    """The face oval's pixel bounding box, grown by ``grow`` face heights on every side."""
    tr, var = plan.traits, plan.variations[i]
    w, h = tr.face_width * max(tr.forehead, 1.0), tr.face_height
    corners = np.array([(-w, -h), (w, -h), (-w, h), (w, h)])
    pts = plan.framing.to_pixels(tr, var, corners)
    pad = grow * plan.framing.face_pixels(tr, var)
    x0, y0 = np.floor(pts.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + pad).astype(int)
    return max(x0, 0), max(y0, 0), x1 + 1, y1 + 1


def test_manipulations_change_only_the_face_region() -> None:
    target, source = _plans()
    base = original_frames(target)
    outputs = {}
    for method in METHODS:
        video, masks = fake_frames(method, target, source, seed=0, base=base)
        outputs[method] = video
        assert video.shape == base.shape and masks.shape == base.shape[:3]
        for i in range(FRAMES):
            changed = np.any(video[i] != base[i], axis=2)
            assert changed.sum() > 20, (method, i)
            assert not changed[masks[i] == 0].any(), (method, i)  # only inside the blend mask ...
            x0, y0, x1, y1 = _face_box(target, i, grow=0.1)
            outside = np.ones_like(changed)
            outside[y0:y1, x0:x1] = False
            assert not changed[outside].any(), (method, i)  # ... which lies on the face
    # Each stand-in leaves a different result.
    for a in METHODS:
        for b in METHODS:
            if a < b:
                assert not np.array_equal(outputs[a], outputs[b]), (a, b)
    # FaceSwap pastes with a hard edge, the others blend softly.
    _, hard = fake_frames("FaceSwap", target, source, seed=0, base=base)
    _, soft = fake_frames("Deepfakes", target, source, seed=0, base=base)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert ((soft > 0) & (soft < 1)).sum() > 50
    assert CELEB_DF_METHOD in METHODS


def test_self_blended_videos_blend_each_frame_with_itself_inside_the_landmark_hull() -> None:
    target, source = _plans()
    _, other_source = _plans(seed=3)
    base = original_frames(target)
    video, masks = fake_frames(SELF_BLENDED_METHOD, target, source, seed=0, base=base)
    again, _ = fake_frames(SELF_BLENDED_METHOD, target, other_source, seed=0, base=base)
    assert again.tobytes() == video.tobytes()  # the "source" of the pair name plays no part
    ratios = {float(m.max()) for m in masks}
    assert len(ratios) == 1 and 0 < ratios.pop() <= 1  # one blend ratio for the whole video
    for i in range(FRAMES):
        landmarks = face_landmarks68(target, i)
        x0, y0 = landmarks.min(axis=0)
        x1, y1 = landmarks.max(axis=0)
        assert 0 <= x0 < x1 < WIDTH and 0 <= y0 < y1 < HEIGHT
        pad = 0.5 * (x1 - x0)  # the SBI affine jitter and mask blur reach a little beyond the hull
        ys, xs = np.nonzero(masks[i])
        assert xs.min() >= x0 - pad and xs.max() <= x1 + pad and ys.min() >= y0 - pad and ys.max() <= y1 + pad
        # the landmarks sit on the drawn face: inside its oval's bounding box
        fx0, fy0, fx1, fy1 = _face_box(target, i, grow=0.02)
        assert fx0 <= x0 and x1 <= fx1 and fy0 <= y0 and y1 <= fy1


def test_self_blended_method_is_written_and_listed_in_the_ffpp_layout(tmp_path: Path) -> None:
    root = tmp_path / "ff"
    summary = make_synthetic_ffpp(root, pairs=(1, 0, 1), methods=(SELF_BLENDED_METHOD,), **TINY)
    entries = list_ffpp_videos(root, (SELF_BLENDED_METHOD,), "c23")
    fakes = sorted(e.name for e in entries if e.method == SELF_BLENDED_METHOD)
    assert fakes == ["000_001", "001_000", "002_003", "003_002"] and all(
        e.label == 1 for e in entries if e.name in fakes
    )
    assert summary["videos"]["test"] == {"youtube": 2, SELF_BLENDED_METHOD: 2}
    assert (
        len(_decode(root / f"manipulated_sequences/{SELF_BLENDED_METHOD}/c23/videos/000_001.mp4")) == FRAMES
    )
    with pytest.raises(ValueError, match="unknown FF.. method"):
        list_ffpp_videos(root, ("SelfBlend",), "c23")


def test_face_check_skips_candidates_and_records_them(tmp_path: Path) -> None:
    def reject_identity_0(frames: list[np.ndarray]) -> list[bool]:
        first = original_frames(plan_video(0, 0, 0, 1, Framing(64, 48)))[0]
        return [not np.array_equal(frames[0], first)] * len(frames)

    options = dict(TINY, frames=1, size=(64, 48), detector=reject_identity_0)
    summary = make_synthetic_ffpp(tmp_path / "ff", pairs=(1, 0, 0), methods=("FaceSwap",), **options)
    assert summary["skipped_candidates"] == [{"identity": 0, "sample": 0}]
    assert summary["identities"] == {"000": {"identity": 1, "sample": 0}, "001": {"identity": 2, "sample": 0}}
    assert summary["settings"]["detector"] == "reject_identity_0"


# --- command line ------------------------------------------------------------------------------------------


def test_cli_writes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ff"
    argv = [str(out), "--pairs", "1,0,0", "--frames", "2", "--width", "64", "--height", "48"]
    argv += ["--methods", "NeuralTextures", "--detector", "none", "--no-progress", "--compression", "c40"]
    assert main(argv) == 0
    assert "wrote 4 synthetic videos" in capsys.readouterr().out
    assert len(list_ffpp_videos(out, ("NeuralTextures",), "c40")) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--width", "101"], "width must be an even number"),
        (["--frames", "0"], "frames must be >= 1"),
        (["--methods", "FaceShifter"], "FaceShifter"),
        (["--pairs", "0,0,0"], "at least one pair"),
        (["--layout", "celeb_df", "--subjects", "1"], "subjects >= 2"),
        (["--layout", "celeb_df", "--fakes-per-clip", "9"], "fakes_per_clip"),
        (["--pairs", "1,x,1"], "expected three integers"),
        (["--layout", "celeb_df", "--pairs", "1,1,1"], "--pairs do(es) not apply"),
        (["--compression", "c99"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = [str(tmp_path / "out"), "--detector", "none", "--no-progress", *args]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_non_empty_output_directory_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x")
    argv = [str(tmp_path), "--pairs", "1,0,0", "--frames", "1", "--width", "64", "--height", "48"]
    argv += ["--methods", "FaceSwap", "--detector", "none", "--no-progress"]
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert (tmp_path / "keep.txt").read_text() == "x"
