"""Data-pipeline speed: CelebA JPEG loading + augmentation vs torchvision, and FF++ video preprocessing.

1. A synthetic CelebA copy (178×218 JPEGs, the real list-file formats) is loaded for one pass over the train
   split by :class:`src.datamodules.celeba.CelebADataModule` (178×178 centre crop → 112, HorizontalFlip
   p=0.5) and by a plain ``torchvision.datasets.ImageFolder`` over the same files with the equivalent
   torchvision transforms (crop, ``Resize(112)``, ``RandomHorizontalFlip``, ``ToTensor``); both with
   ``--workers`` loader workers and batch 64. Passes alternate (ours, torchvision, ...) after one warm-up
   pass each; medians of ``--repeats`` passes give images/s and the ratio (target >= 1.0).
2. Video preprocessing at FF++'s real sizes: per size (854×480 and 1280×720), ``--clips`` H.264 clips (CRF 23,
   FF++'s c23 level) of ``--clip-frames`` frames with faces pasted on photographs (the astronaut and synthetic
   faces, face boxes ~120–230 px, drifting, with sensor-like noise; ``tests.fixtures_videos.scene_clip``) are
   laid out as a Celeb-DF copy and preprocessed by ``src.preprocess.videos`` (``--frames`` sampled per clip,
   MTCNN, ``--landmarks dlib68``) with the ``dfb`` and ``sbi`` profiles, with 1 and 2 workers. Printed:
   frames/s end to end (the CLI's own figure: decode, detect, landmarks, crop, write, starting the workers and
   loading the models; the module imports, done once per process, are paid by a warm-up run first), the
   workers' CPU time per frame, and, separately, the maximum box deviation (max abs coordinate difference, px)
   of the CLI's detector (``src.face.fast_mtcnn``, ``--detect-side``) from facenet-pytorch's MTCNN run on each
   full-resolution sampled frame, with the number of faces either one found alone.

The load average is printed because other processes may share the CPU.

    .venv/bin/python -m benchmarks.bench_data [--images 1200] [--workers 2] [--repeats 3] [--part all|1|2]
        [--clips 4] [--clip-frames 64] [--frames 32] [--detect-side 360]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

BATCH = 64


def _crop(image, box: tuple[int, int, int, int]):
    """PIL crop (module-level so loader workers can pickle it)."""
    return image.crop(box)


def make_celeba_copy(root: Path, images: int) -> Path:
    """A CelebA copy with ~``images`` JPEGs (10 train identities, 1 val, 1 test)."""
    from tests.fixtures_datasets import make_celeba

    per_identity = max(1, images // 12)
    make_celeba(root, ids={0: tuple(range(1, 11)), 1: (11,), 2: (12,)}, images_per_identity=per_identity)
    return root


def ours_loader(root: Path, workers: int) -> DataLoader:
    """CelebADataModule's train loader (albumentations flip), identity target."""
    from src.datamodules.celeba import CelebADataModule

    dm = CelebADataModule(
        str(root),
        image_size=112,
        transform=[{"name": "HorizontalFlip", "p": 0.5}],
        batch_size=BATCH,
        num_workers=workers,
    )
    dm.setup("fit")
    return dm.train_dataloader()


def torchvision_loader(root: Path, workers: int) -> DataLoader:
    """ImageFolder over per-identity symlinks to the train JPEGs, equivalent torchvision transforms."""
    from torchvision import datasets, transforms

    from src.datamodules.celeba import CelebAMetadata

    metadata = CelebAMetadata(root, ("identity",))
    folder = root / "_imagefolder"
    if not folder.is_dir():
        names = [n for n in metadata.partition.files if metadata.values("partition", [n])[0, 0] == 0]
        ids = metadata.values("identity", names)[:, 0]
        for name, identity in zip(names, ids.tolist(), strict=True):
            target = folder / str(identity) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(root / "img_align_celeba" / name)
    transform = transforms.Compose(
        [
            transforms.Lambda(partial(_crop, box=(0, 20, 178, 198))),
            transforms.Resize(112),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
        ]
    )
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    return DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=True
    )


def one_pass(loader: DataLoader) -> tuple[int, float]:
    """Images and seconds for one pass over the loader."""
    start, count = time.perf_counter(), 0
    for batch in loader:
        images = batch["image"] if isinstance(batch, dict) else batch[0]
        count += images.shape[0]
    return count, time.perf_counter() - start


def bench_loading(root: Path, workers: int, repeats: int) -> dict[str, float]:
    """Median images/s of both loaders over interleaved passes (after one warm-up pass each)."""
    loaders = {"ours": ours_loader(root, workers), "torchvision": torchvision_loader(root, workers)}
    for loader in loaders.values():
        one_pass(loader)
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            count, seconds = one_pass(loader)
            rates[name].append(count / seconds)
    return {name: statistics.median(values) for name, values in rates.items()}


VIDEO_SIZES = ((854, 480), (1280, 720))
# Celeb-DF layout of the benchmark clips (the copy's test list names the first three).
CLIP_FILES = (
    "Celeb-real/id0_0000.mp4",
    "Celeb-synthesis/id0_id1_0000.mp4",
    "YouTube-real/00000.mp4",
    "Celeb-real/id1_0000.mp4",
    "Celeb-synthesis/id1_id0_0000.mp4",
    "Celeb-real/id2_0000.mp4",
)
# Faces per clip: (face, patch size and position as fractions of the frame height / width); the astronaut or a
# synthetic identity; the patch is ~2.2× the face box.
CLIP_FACES = (
    [("astronaut", 0.70, 0.30, 0.08)],
    [(1, 0.62, 0.45, 0.12)],
    [("astronaut", 0.55, 0.08, 0.15), (4, 0.50, 0.55, 0.20)],
    [(5, 0.75, 0.25, 0.05)],
    [("astronaut", 0.62, 0.50, 0.10)],
    [(3, 0.66, 0.15, 0.12)],
)


def make_video_copy(root: Path, width: int, height: int, clips: int, frames: int) -> Path:
    """A Celeb-DF copy of ``clips`` real-size clips (see ``CLIP_FACES``)."""
    from tests.fixtures_videos import CELEB_DF_TEST_LIST, scene_clip, write_video

    if not 3 <= clips <= len(CLIP_FILES):  # the test list names the first three files
        raise ValueError(f"--clips must be in 3..{len(CLIP_FILES)}, got {clips}")
    for number in range(clips):
        faces = CLIP_FACES[number]
        placed = [(face, round(s * height), round(x * width), round(y * height)) for face, s, x, y in faces]
        clip = scene_clip(width, height, frames, placed, background=number, noise=3)
        write_video(root / CLIP_FILES[number], clip, fps=25, crf=23)
    (root / "List_of_testing_videos.txt").write_text(CELEB_DF_TEST_LIST)
    return root


def preprocess_rate(raw: Path, out: Path, profile: str, workers: int, frames: int, detect_side: int) -> dict:
    """Run the CLI's ``run_videos`` once; returns its summary's ``run`` part."""
    from src.preprocess.videos import VideoConfig, run_videos

    config = VideoConfig(
        "celeb_df",
        raw,
        out,
        frames=frames,
        profile=profile,
        detect_side=detect_side,
        workers=workers,
        progress=False,
    )
    return run_videos(config)["run"]


def box_deviation(raw: Path, frames: int, detect_side: int) -> dict:
    """Max abs box-coordinate difference (px) of the CLI's detector from full-resolution MTCNN on the sampled
    frames, over the faces both find (matched by IoU >= 0.5), and the faces only one of them finds."""
    from src.face.detection import MTCNNDetector
    from src.face.fast_mtcnn import FastMTCNNDetector
    from src.preprocess.video_decode import frame_count, read_frames
    from src.preprocess.videos import sample_indices

    reference, fast = MTCNNDetector(), FastMTCNNDetector(detect_side=detect_side or None)
    totals = {"frames": 0, "faces": 0, "unmatched": 0, "max_deviation": 0.0}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the CLI's workers (and much faster than 2 on a busy machine)
    try:
        for path in sorted(raw.rglob("*.mp4")):
            decoded = read_frames(path, sample_indices(frame_count(path), frames))
            images = [decoded[i] for i in sorted(decoded)]
            totals["frames"] += len(images)
            for image, found in zip(images, fast.detect_batch(images), strict=True):
                _compare_boxes([d.box for d in reference.detect(image)], [d.box for d in found], totals)
    finally:
        torch.set_num_threads(threads)
    return totals


def _compare_boxes(expected: list[np.ndarray], found: list[np.ndarray], totals: dict) -> None:
    """Match each expected box to the found box of highest IoU (>= 0.5); update the deviation and counts."""
    found = list(found)
    for box in expected:
        ious = [_iou(box, other) for other in found]
        if ious and max(ious) >= 0.5:
            best = found.pop(int(np.argmax(ious)))
            totals["max_deviation"] = max(totals["max_deviation"], float(np.abs(best - box).max()))
            totals["faces"] += 1
        else:
            totals["unmatched"] += 1
    totals["unmatched"] += len(found)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def bench_videos(base: Path, args: argparse.Namespace) -> None:
    """Part 2: frames/s at 480p and 720p (both profiles, 1 and 2 workers) and the box deviation."""
    for number, (width, height) in enumerate(VIDEO_SIZES):
        raw = make_video_copy(base / f"videos_{height}p", width, height, args.clips, args.clip_frames)
        if number == 0:  # imports here and in the workers' fork server happen once per process, not per run
            warm = preprocess_rate(raw, base / "warm_up", "dfb", 2, 2, args.detect_side)
            frames = warm["decoded_frames"]
            print(f"warm-up (imports, fork server; 2 workers, {frames} frames): {warm['seconds']:.1f} s")
        for profile in ("dfb", "sbi"):
            for workers in (1, 2):
                out = base / f"out_{height}p_{profile}_{workers}"
                run = preprocess_rate(raw, out, profile, workers, args.frames, args.detect_side)
                cpu_ms = 1000 * run["cpu_seconds"] / max(1, run["decoded_frames"])
                what = f"videos {width}x{height}, {profile}, {workers} worker(s)"
                rate = f"{run['decoded_frames']} frames in {run['seconds']:.1f} s"
                print(
                    f"{what}: {rate} = {run['frames_per_second']:.2f} frames/s end to end; "
                    f"{cpu_ms:.0f} ms CPU per frame in the workers, start-up excluded "
                    f"(load {os.getloadavg()[0]:.2f})"
                )
        deviation = box_deviation(raw, args.frames, args.detect_side)
        print(
            f"videos {width}x{height}: detector vs full-resolution MTCNN on {deviation['frames']} frames: "
            f"max box deviation {deviation['max_deviation']:.4f} px over {deviation['faces']} faces, "
            f"{deviation['unmatched']} found by only one"
        )


def main() -> None:
    """Run both benchmarks and print the figures with the load average."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=("all", "1", "2"), default="all", help="run one part only")
    parser.add_argument("--clips", type=int, default=4, help="video clips per size (part 2)")
    parser.add_argument("--clip-frames", type=int, default=64, help="frames per clip (part 2)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (part 2)")
    parser.add_argument("--detect-side", type=int, default=360, help="the CLI's --detect-side (part 2)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}  torch threads: {threads}")
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        if args.part in ("all", "1"):
            root = make_celeba_copy(base / "celeba", args.images)
            rates = bench_loading(root, args.workers, args.repeats)
            print(
                f"CelebA JPEG + flip, {args.workers} workers, batch {BATCH}: ours {rates['ours']:.0f} img/s, "
                f"torchvision ImageFolder {rates['torchvision']:.0f} img/s, "
                f"ratio {rates['ours'] / rates['torchvision']:.2f}x (target >= 1.0)"
            )
        if args.part in ("all", "2"):
            bench_videos(base, args)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
