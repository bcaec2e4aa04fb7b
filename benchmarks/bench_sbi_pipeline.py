"""SBI data-pipeline speed on the CPU vs what one GPU training step of EfficientNet-B4 at 380 px consumes.

1. ``--frames`` synthetic face crops (``--crop`` px PNGs, rendered by the SyntheticFaces renderer) and their
   81-point landmarks (``.npy``, dlib order; the first 68 are used) are written to a temp dir.
2. The SBI training pipeline runs through a ``torch.utils.data.DataLoader`` with ``--workers`` workers and
   batch 16: ``cv2.imread`` + ``np.load``, :func:`src.datamodules.components.self_blending.self_blend` at
   380 px with ``train=True`` (seeded per sample), real and fake to float tensors / 255. After one warm-up
   pass, the median of ``--repeats`` passes gives frames/s (one frame = one real + one fake image).
   The self-blend alone is also timed in the main process (ms per frame, one core).
3. GPU side, computed rather than measured: FLOPs of ``timm.create_model("tf_efficientnet_b4",
   num_classes=2)`` at 380 px (forward, batch 1, ``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per
   multiply-add, convolutions and matrix products only), a training step ≈ 3 × forward (SAM, as SBI trains,
   doubles it), for a batch of ``--gpu-batch`` images = ``--gpu-batch / 2`` frames (each frame gives a real
   and a fake). The step time assumes a sustained ``--gpu-tflops`` (an **assumption**, printed). The default
   60 TFLOP/s is about 20 % of an A100's dense bf16 peak; EfficientNet's depthwise convolutions are
   memory-bound and often sustain less, so the GPU rate (and the worker count) is on the optimistic side.
   The ratio pipeline / GPU and the number of CPU workers needed to keep the GPU busy are printed.

The load average is printed because other processes may share the CPU.

    .venv/bin/python -m benchmarks.bench_sbi_pipeline [--frames 96] [--workers 2] [--repeats 3]
        [--gpu-tflops 60] [--gpu-batch 32]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.timing import load_average
from src.datamodules.components.self_blending import DEFAULT_CONFIG, SelfBlendConfig, sample_rng, self_blend
from src.datamodules.components.synthetic_face_renderer import (
    IdentityTraits,
    ImageVariation,
    face_landmarks,
    render_face,
)

BATCH = 16
SIZE = 380


class SBIFrames(Dataset):
    """Crop PNG + landmark ``.npy`` → (real, fake) float tensors in [0, 1], like the SBI training loader."""

    def __init__(self, root: Path, count: int, config: SelfBlendConfig, seed: int = 0) -> None:
        self.root, self.count, self.config, self.seed = root, count, config, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = cv2.imread(str(self.root / f"{index:05d}.png"), cv2.IMREAD_COLOR)[..., ::-1]
        landmarks = np.load(self.root / f"{index:05d}.npy")
        rng = sample_rng(self.seed, self.epoch, index)
        sample = self_blend(np.ascontiguousarray(image), landmarks, None, rng, self.config, train=True)
        return to_tensor(sample.real), to_tensor(sample.fake)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)


def write_frames(root: Path, frames: int, crop: int) -> None:
    """``frames`` synthetic face crops (PNG) with 81 landmarks (``.npy``)."""
    for index in range(frames):
        traits, variation = IdentityTraits.sample(0, index), ImageVariation.sample(0, index, 0)
        image = render_face(traits, variation, crop)
        landmarks = face_landmarks(traits, variation, crop, points=81)
        cv2.imwrite(str(root / f"{index:05d}.png"), image[..., ::-1])
        np.save(root / f"{index:05d}.npy", landmarks.astype(np.float32))


def one_pass(loader: DataLoader) -> tuple[int, float]:
    """Frames and seconds for one pass over the loader."""
    start, count = time.perf_counter(), 0
    for real, _fake in loader:
        count += real.shape[0]
    return count, time.perf_counter() - start


def bench_pipeline(root: Path, frames: int, workers: int, repeats: int) -> float:
    """Median frames/s of the loader over ``repeats`` passes after one warm-up pass."""
    config = SelfBlendConfig(size=SIZE) if DEFAULT_CONFIG.size != SIZE else DEFAULT_CONFIG
    loader = DataLoader(
        SBIFrames(root, frames, config),
        batch_size=BATCH,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    one_pass(loader)
    rates = []
    for _ in range(repeats):
        count, seconds = one_pass(loader)
        rates.append(count / seconds)
    return statistics.median(rates)


def bench_single(root: Path, count: int) -> float:
    """Median ms of one ``self_blend`` call (380 px, train) in this process, files already decoded."""
    data = [
        (
            np.ascontiguousarray(cv2.imread(str(root / f"{i:05d}.png"))[..., ::-1]),
            np.load(root / f"{i:05d}.npy"),
        )
        for i in range(count)
    ]
    times = []
    for i, (image, landmarks) in enumerate(data):
        start = time.perf_counter()
        self_blend(image, landmarks, None, sample_rng(1, 0, i), train=True)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def efficientnet_b4_forward_flops(size: int = SIZE) -> int:
    """FlopCounterMode FLOPs (2 per multiply-add) of one tf_efficientnet_b4 forward pass, batch 1."""
    import timm
    from torch.utils.flop_counter import FlopCounterMode

    model = timm.create_model("tf_efficientnet_b4", num_classes=2, pretrained=False).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def main() -> None:
    """Run the pipeline benchmark and the GPU estimate; print both and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--crop", type=int, default=400, help="side of the synthetic face crops (px)")
    parser.add_argument(
        "--gpu-tflops",
        type=float,
        default=60.0,
        help="ASSUMED sustained GPU throughput for the training step (TFLOP/s, mixed precision)",
    )
    parser.add_argument(
        "--gpu-batch", type=int, default=32, help="images per GPU step (half real, half fake)"
    )
    args = parser.parse_args()
    print(
        f"load average before: {load_average()}  cpus: {os.cpu_count()}  "
        f"torch threads: {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        write_frames(root, args.frames, args.crop)
        single_ms = bench_single(root, min(args.frames, 32))
        fps = bench_pipeline(root, args.frames, args.workers, args.repeats)
    print(f"self_blend alone ({args.crop}px crop -> {SIZE}px, train, main process): {single_ms:.1f} ms/frame")
    print(
        f"SBI pipeline (PNG + landmarks -> self_blend -> float tensors), {args.workers} workers, "
        f"batch {BATCH}: "
        f"{fps:.1f} frames/s = {2 * fps:.1f} images/s (real + fake)"
    )

    forward = efficientnet_b4_forward_flops()
    step = 3 * forward * args.gpu_batch
    step_s = step / (args.gpu_tflops * 1e12)
    gpu_frames = (args.gpu_batch / 2) / step_s
    print(
        f"EfficientNet-B4 (timm tf_efficientnet_b4, 2 classes) at {SIZE}px: {forward / 1e9:.2f} GFLOP "
        "forward "
        f"(FlopCounterMode, 2/MAC); training step ≈ 3 × forward = {3 * forward / 1e9:.1f} GFLOP/image"
    )
    print(
        f"ASSUMED sustained GPU throughput {args.gpu_tflops:g} TFLOP/s: step of {args.gpu_batch} images "
        f"({args.gpu_batch // 2} frames) = {step / 1e12:.2f} TFLOP ≈ {1e3 * step_s:.1f} ms -> GPU consumes "
        f"{gpu_frames:.0f} frames/s ({2 * gpu_frames:.0f} images/s); with SAM (2 passes/step) "
        f"{gpu_frames / 2:.0f} frames/s"
    )
    per_worker = fps / max(args.workers, 1)
    print(
        f"ratio pipeline / GPU = {fps / gpu_frames:.3f} (SAM: {fps / (gpu_frames / 2):.3f}); at "
        f"{per_worker:.1f} frames/s per worker, keeping up needs ≈ {math.ceil(gpu_frames / per_worker)} CPU "
        f"workers (SAM: {math.ceil(gpu_frames / 2 / per_worker)})"
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
