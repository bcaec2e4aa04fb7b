"""Draws per second of FaceShield's ``DPPerturbator`` at d = 512 on this CPU, per sampler (not a test).

Each sampler perturbs one ``[--batch, 512]`` float32 batch of random identities (4096 by default) per call,
with its own seeded generator; a draw is one released identity vector. Calls are interleaved across the
samplers after one warm-up each (the warm-up also builds the cached Purkayastha inverse-CDF table), and the
median of ``--repeats`` wall times is reported. Target (``docs/papers/faceshield.md``, "DP perturbator"):
**≥ 10⁵ draws/s for ``faceshield_repo``**. The load average is printed because other processes may share the
CPU.

    .venv/bin/python -m benchmarks.bench_dp_samplers [--batch 4096] [--repeats 5] [--epsilon 30]
        [--threads N]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.timing import interleaved_wall_times, load_average
from src.papers.faceshield.perturbator import DPP_SAMPLERS, DPPerturbator

DIMENSION = 512
TARGET_DRAWS_PER_S = {"faceshield_repo": 1e5}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=4096, help="identities per call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per sampler (median reported)")
    parser.add_argument("--epsilon", type=float, default=30.0, help="ε of every sampler (vmf: κ = ε)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    identity = torch.randn(args.batch, DIMENSION, generator=torch.Generator().manual_seed(0))
    modules = {name: DPPerturbator(name, args.epsilon, seed=1) for name in DPP_SAMPLERS}
    functions = {name: (lambda m=module: m(identity)) for name, module in modules.items()}
    with torch.inference_mode():
        times = interleaved_wall_times(functions, args.repeats)

    print(
        f"DPPerturbator at d = {DIMENSION}, batch {args.batch}, ε = {args.epsilon}, float32, CPU, "
        f"{torch.get_num_threads()} threads, load average {load_average()}"
    )
    print(f"{'sampler':<16} {'median ms/call':>14} {'draws/s':>12}  target")
    for name, walls in times.items():
        median = statistics.median(walls)
        rate = args.batch / median
        target = TARGET_DRAWS_PER_S.get(name)
        verdict = "—" if target is None else f"≥ {target:.0e}: {'met' if rate >= target else 'MISSED'}"
        print(f"{name:<16} {1e3 * median:>14.2f} {rate:>12.3e}  {verdict}")


if __name__ == "__main__":
    main()
