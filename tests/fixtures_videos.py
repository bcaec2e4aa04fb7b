"""Miniature raw FaceForensics++ and Celeb-DF v2 copies: tiny H.264 clips (PyAV), real metadata formats.

Face clips paste the astronaut's head (the one real face available offline, which MTCNN finds) into 96×96
frames; "noise" clips have no face, so the preprocessing records ``no_face`` failures for them.

``scene_clip`` builds clips at real video sizes (FF++: 854×480, 1280×720): faces (the astronaut's head or a
synthetic face of ``src.datamodules.components.synthetic_face_renderer``) pasted with feathered edges onto a
photograph, drifting a little from frame to frame.
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


def write_video(path: Path, frames: np.ndarray, fps: int = 10, crf: int = 18) -> None:
    """Write RGB frames as an H.264 (libx264, yuv420p) mp4 with PyAV (``crf`` 23 is FF++'s c23 level)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            )
        container.mux(stream.encode(None))


SCENES = ("coffee", "chelsea", "rocket", "immunohistochemistry")
# The astronaut's head, square, with MTCNN's face box at about (66, 52)-(153, 162) of this 220×220 patch.
ASTRONAUT_HEAD = (slice(10, 230), slice(115, 335))


def scene(width: int, height: int, index: int = 0) -> np.ndarray:
    """A photograph without faces (``skimage.data``) resized to ``[height, width, 3]`` uint8 RGB."""
    image = getattr(data, SCENES[index % len(SCENES)])()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.resize(np.ascontiguousarray(image[..., :3]), (width, height), interpolation=cv2.INTER_LINEAR)


def face_patch(face: str | int, size: int) -> np.ndarray:
    """``[size, size, 3]``: the astronaut's head (``"astronaut"``) or synthetic identity ``face`` (an int;
    MTCNN finds identities 1, 3, 4, 5 and 6 of seed 0, whose face box is ~40 % of the patch)."""
    if face == "astronaut":
        head = data.astronaut()[ASTRONAUT_HEAD]
        interpolation = cv2.INTER_AREA if size < head.shape[0] else cv2.INTER_CUBIC
        return cv2.resize(head, (size, size), interpolation=interpolation)
    from src.datamodules.components.synthetic_face_renderer import render_synthetic_face

    return render_synthetic_face(0, int(face), 0, size)


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> np.ndarray:
    """``frame`` with ``patch`` blended in at ``(x, y)`` through a feathered square mask (clipped to the
    frame)."""
    out = frame.copy()
    size = patch.shape[0]
    feather = max(2, size // 24)
    mask = np.zeros((size, size), np.float32)
    mask[feather:-feather, feather:-feather] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), feather / 2)[..., None]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + size, frame.shape[1]), min(y + size, frame.shape[0])
    if x1 <= x0 or y1 <= y0:
        return out
    part = patch[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    alpha = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.rint(region * (1 - alpha) + part * alpha).astype(np.uint8)
    return out


def scene_clip(
    width: int,
    height: int,
    frames: int,
    faces: list[tuple[str | int, int, int, int]],
    background: int = 0,
    drift: float = 1.5,
    noise: int = 0,
) -> np.ndarray:
    """``[frames, height, width, 3]``: faces ``(face, patch size, x, y)`` on a photograph, drifting ``drift``
    px per frame to the right and bobbing up and down by a few pixels (slight head motion); ``noise`` adds
    uniform per-pixel noise in ``[-noise, noise]`` to every frame (sensor noise: real videos' bitrates)."""
    base = scene(width, height, background)
    rng = np.random.default_rng(background)
    patches = [(face_patch(face, size), x, y) for face, size, x, y in faces]
    clip = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        frame = base
        for number, (patch, x, y) in enumerate(patches):
            dx = round(drift * t)
            dy = round(3 * np.sin(0.3 * t + number))
            frame = paste(frame, patch, x + dx, y + dy)
        if noise:
            jitter = rng.integers(-noise, noise + 1, frame.shape, dtype=np.int16)
            frame = np.clip(frame.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        clip[t] = frame
    return clip


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


# Real-size Celeb-DF v2 copy: one face at 854×480, three faces at 854×480 (areas ~1 : 0.75 : 0.25, so
# `--faces all` keeps two and drops the smallest), a corrupt file, a clip without faces and a synthetic
# face at 1280×720.
SCENE_FRAMES = 6
THREE_FACES = [("astronaut", 300, 10, 90), ("astronaut", 260, 330, 110), ("astronaut", 150, 640, 170)]


def make_celeb_df_scenes(root: Path, frames: int = SCENE_FRAMES) -> Path:
    """``Celeb-DF-v2/`` at real video sizes (see ``THREE_FACES``); the test list is ``CELEB_DF_TEST_LIST``."""
    write_video(root / "Celeb-real/id0_0000.mp4", scene_clip(854, 480, frames, [("astronaut", 320, 260, 60)]))
    write_video(root / "Celeb-real/id1_0000.mp4", scene_clip(854, 480, frames, THREE_FACES, background=1))
    (root / "YouTube-real").mkdir(parents=True, exist_ok=True)
    (root / "YouTube-real/00000.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but not a video" * 64)
    write_video(root / "Celeb-synthesis/id0_id1_0000.mp4", scene_clip(854, 480, frames, [], background=2))
    write_video(
        root / "Celeb-synthesis/id1_id0_0000.mp4",
        scene_clip(1280, 720, frames, [(3, 440, 520, 140)], background=3),
    )
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
