"""Per-face speed of dlib's face-recognition ResNet vs the PyTorch port, at batch 32 on this CPU.

dlib: ``face_recognition_model_v1.compute_face_descriptor`` on a list of 32 aligned 150×150 uint8 chips (its
batched path). Port: :class:`src.networks.recognizers.dlib_resnet.DlibResNet` on the same chips as one
``[32, 3, 150, 150]`` batch under ``torch.inference_mode``, with 1 and with torch's default number of
threads. Runs are interleaved (dlib, port, port, dlib, ...) after one warm-up each; medians of ``--repeats``
runs are compared. The load average is printed because other processes may share the CPU.

    .venv/bin/python -m benchmarks.bench_dlib [--batch 32] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.timing import interleaved_wall_times
from src.face.dlib_models import dlib_model_path
from src.networks.recognizers.dlib_resnet import DLIB_RESNET_FILE, DlibResNet


def astronaut_chips(batch: int, seed: int = 0) -> np.ndarray:
    """``batch`` uint8 chips: dlib's chip of skimage's astronaut plus noisy copies (content-blind speed)."""
    import dlib
    from skimage import data

    image = data.astronaut()
    boxes, scores, _ = dlib.get_frontal_face_detector().run(image, 1, 0)
    face = boxes[int(np.argmax(scores))]  # the face, not HOG's low-scoring false positive
    shape = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5")))(image, face)
    chip = dlib.get_face_chip(image, shape, 150, 0.25).astype(np.int16)
    rng = np.random.default_rng(seed)
    noisy = chip[None] + rng.integers(-8, 9, (batch, *chip.shape))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def main() -> None:
    """Time both, print per-face milliseconds (median and best run) and the speed ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=str,
        default=None,
        help="comma-separated torch thread counts for the port (default: 1 and torch's default)",
    )
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    thread_counts = (
        [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, default_threads})
    )
    import dlib

    chips = astronaut_chips(args.batch)
    chip_list = [np.ascontiguousarray(c) for c in chips]
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path(DLIB_RESNET_FILE)))
    port = DlibResNet().freeze()
    batch = torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0

    def run_port(threads: int) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return port(batch)

        return run

    functions: dict[str, Callable[[], object]] = {
        "dlib": lambda: recognizer.compute_face_descriptor(chip_list)
    }
    functions.update({f"port{threads}": run_port(threads) for threads in thread_counts})
    load_before = os.getloadavg()
    times = interleaved_wall_times(functions, args.repeats)
    load_after = os.getloadavg()
    torch.set_num_threads(default_threads)
    reference = np.array(recognizer.compute_face_descriptor(chip_list))
    max_diff = float(np.abs(run_port(default_threads)().numpy() - reference).max())

    def per_face(times: list[float]) -> str:
        median_ms, best_ms = (1000 * v / args.batch for v in (statistics.median(times), min(times)))
        return f"{median_ms:8.2f} ms/face median, {best_ms:8.2f} best"

    dlib_median = statistics.median(times["dlib"])
    print(f"CPU cores: {os.cpu_count()}, torch {torch.__version__} (default threads {default_threads})")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"load average (1/5/15 min) after:  {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"batch {args.batch}, {args.repeats} interleaved timed runs each")
    print(f"dlib compute_face_descriptor(list):   {per_face(times['dlib'])}")
    for threads in thread_counts:
        port_times = times[f"port{threads}"]
        ratio = dlib_median / statistics.median(port_times)
        print(
            f"PyTorch port, {threads} torch thread(s): {per_face(port_times)}  → "
            f"speed ratio dlib/port {ratio:.1f}x (median; target >= 10x)"
        )
    print(f"max abs descriptor difference on these chips: {max_diff:.2e}")


if __name__ == "__main__":
    main()
