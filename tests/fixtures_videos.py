"""Miniature raw FaceForensics++ and Celeb-DF v2 copies: tiny H.264 clips (PyAV), real metadata formats.

Face clips paste the astronaut's head (the one real face available offline, which MTCNN finds) into 96×96
frames; "noise" clips have no face, so the preprocessing records ``no_face`` failures for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from skimage import data

FRAMES = 6
SIZE = 96

FFPP_SPLITS = {"train": [["071", "054"]], "val": [["000", "003"]], "test": [["953", "974"]]}
FFPP_NO_FACE = {"974_953"}  # a manipulated clip without a face → no_face failures
# conversion_dict.json: original → "<YouTube id> <n>"; 000 and 003 were cut from one YouTube video
FFPP_CONVERSION = {
    "000": "--b1Ua-kWJE 0",
    "003": "--b1Ua-kWJE 1",
    "054": "0NgMI_AJv4A 0",
    "071": "-5jH3SEGzts 0",
    "953": "zZ4y7lLtKSw 0",
    "974": "a6EwQWYa1Uo 0",
    "999": "unused_video 0",
}
CELEB_DF_TEST_LIST = (
    "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n1 YouTube-real/00000.mp4\n"
)


def face_frames(
    frames: int = FRAMES, size: int = SIZE, flip: bool = False, noise: bool = False
) -> np.ndarray:
    """``[T, size, size, 3]`` uint8 RGB: a slowly shifting face (or noise when ``noise``)."""
    if noise:
        return np.random.default_rng(0).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    head = cv2.resize(data.astronaut()[0:256, 96:352], (size, size), interpolation=cv2.INTER_AREA)
    if flip:
        head = head[:, ::-1]
    return np.stack([np.roll(head, t, axis=1) for t in range(frames)])


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    """Write RGB frames as an H.264 (libx264, yuv420p) mp4 with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            )
        container.mux(stream.encode(None))


def make_ffpp(
    root: Path, methods: tuple[str, ...] = ("Deepfakes", "FaceSwap"), compression: str = "c23"
) -> Path:
    """``FaceForensics++/``: originals, fakes ``a_b``/``b_a`` per method, the split JSONs at the root."""
    ids = sorted({i for pairs in FFPP_SPLITS.values() for pair in pairs for i in pair})
    for video_id in ids:
        write_video(
            root / "original_sequences/youtube" / compression / "videos" / f"{video_id}.mp4", face_frames()
        )
    for method in methods:
        for pairs in FFPP_SPLITS.values():
            for a, b in pairs:
                for name in (f"{a}_{b}", f"{b}_{a}"):
                    path = root / "manipulated_sequences" / method / compression / "videos" / f"{name}.mp4"
                    write_video(path, face_frames(flip=True, noise=name in FFPP_NO_FACE))
    for split, pairs in FFPP_SPLITS.items():
        (root / f"{split}.json").write_text(json.dumps(pairs))
    (root / "dataset").mkdir(parents=True, exist_ok=True)
    (root / "dataset" / "conversion_dict.json").write_text(json.dumps(FFPP_CONVERSION))
    return root


def make_celeb_df(root: Path) -> Path:
    """``Celeb-DF-v2/`` with two real folders, the synthesis folder and the test list (1 = real)."""
    for rel in ("Celeb-real/id0_0000.mp4", "Celeb-real/id1_0000.mp4", "YouTube-real/00000.mp4"):
        write_video(root / rel, face_frames())
    for rel in ("Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0000.mp4"):
        write_video(root / rel, face_frames(flip=True))
    (root / "List_of_testing_videos.txt").write_text(CELEB_DF_TEST_LIST)
    return root


PROCESS_FRAMES = 3
_PROCESSED: dict[str, Path] = {}


def preprocessed(base: Path, dataset: str) -> Path:
    """Raw copy of ``dataset`` preprocessed once per session (``--frames 3 --size 64``); returns OUT_DIR."""
    if dataset not in _PROCESSED:
        from src.preprocess.videos import main

        raw = base / f"raw_{dataset}"
        (make_ffpp if dataset == "ffpp" else make_celeb_df)(raw)
        out = base / f"out_{dataset}"
        argv = [dataset, str(raw), str(out), "--frames", str(PROCESS_FRAMES), "--size", "64", "--no-progress"]
        if dataset == "ffpp":
            argv += ["--methods", "Deepfakes", "FaceSwap"]
        assert main(argv) == 0
        _PROCESSED[dataset] = out
    return _PROCESSED[dataset]
