"""Data-pipeline speed: CelebA JPEG loading + augmentation vs torchvision, and FF++ video preprocessing.

1. A synthetic CelebA copy (178×218 JPEGs, the real list-file formats) is loaded for one pass over the train
   split by :class:`src.datamodules.celeba.CelebADataModule` (178×178 centre crop → 112, HorizontalFlip
   p=0.5) and by a plain ``torchvision.datasets.ImageFolder`` over the same files with the equivalent
   torchvision transforms (crop, ``Resize(112)``, ``RandomHorizontalFlip``, ``ToTensor``); both with
   ``--workers`` loader workers and batch 64. Passes alternate (ours, torchvision, ...) after one warm-up
   pass each; medians of ``--repeats`` passes give images/s and the ratio (target >= 1.0).
2. A miniature FF++ copy (tests/fixtures_videos: 96×96 H.264 clips with a face) is preprocessed by
   ``src.preprocess.videos`` (MTCNN, 1 worker) and its frames/s printed.

The load average is printed because other processes may share the CPU.

    .venv/bin/python -m benchmarks.bench_data [--images 1200] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

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


def bench_preprocessing(base: Path, frames: int) -> dict:
    """Preprocess the miniature FF++ copy; returns the run summary (frames/s under ``run``)."""
    from src.preprocess.videos import VideoConfig, run_videos
    from tests.fixtures_videos import make_ffpp

    raw = make_ffpp(base / "ffpp_raw")
    config = VideoConfig(
        "ffpp",
        raw,
        base / "ffpp_out",
        frames=frames,
        size=128,
        methods=("Deepfakes", "FaceSwap"),
        progress=False,
    )
    return run_videos(config)


def main() -> None:
    """Run both benchmarks and print the figures with the load average."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=6, help="frames sampled per FF++ clip")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}  torch threads: {threads}")
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        root = make_celeba_copy(base / "celeba", args.images)
        rates = bench_loading(root, args.workers, args.repeats)
        print(
            f"CelebA JPEG + flip, {args.workers} workers, batch {BATCH}: ours {rates['ours']:.0f} img/s, "
            f"torchvision ImageFolder {rates['torchvision']:.0f} img/s, "
            f"ratio {rates['ours'] / rates['torchvision']:.2f}x (target >= 1.0)"
        )
        summary = bench_preprocessing(base, args.frames)
        run = summary["run"]
        print(
            f"FF++ preprocessing (MTCNN, 1 worker, 96x96 clips): {run['decoded_frames']} frames in "
            f"{run['seconds']:.1f} s = {run['frames_per_second']:.2f} frames/s"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
