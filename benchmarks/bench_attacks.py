"""Speed of our attack wrapper (``build_attack``) vs plain torchattacks on one detector (not a test).

Target (issue text): **PGD-10 (L∞, ε = 8/255, α = 2/255, random start) images/s through
``build_attack("pgd", ...)`` ≥ 1.0× that of plain ``torchattacks.PGD`` on the same inputs and seed**, i.e. the
wrapper adds no measurable overhead.

Every variant attacks the same detector (``build_detector_net(--detector)``, random weights: cost does not
depend on them, eval mode) on the same ``[--batch, 3, --size, --size]`` images in [0, 1] and labels, with
the same seed, and one call = one attack on the whole batch:

- ``ours``: ``build_attack("pgd", model, eps=8, seed=0, steps=--steps, alpha=2)``. Each call checks its
  inputs, forks the RNG and runs the model under ``victim_mode`` (eval, grad on, autocast off, parameters
  frozen, flags restored afterwards);
- ``torchattacks``: ``torch.manual_seed(0); torchattacks.PGD(model, ...)(images, labels)`` on the model as a
  plain user has it, parameters requiring grad. **The target is judged against this one**;
- ``torchattacks, frozen``: the same on a copy of the model (same weights) whose parameters do not require
  grad, i.e. torchattacks doing exactly the work ``ours`` does, which isolates the wrapper's own overhead.

The adversarial images of the three (from their warm-up calls) are compared once: max |Δ| must be
≤ 1e-6, else the benchmark fails (the sides would not be doing the same work). FGSM (ε = 8/255) is timed the
same way, for the record. Calls are interleaved (``benchmarks.timing.interleaved_wall_times``: one warm-up
call each, then ``--rounds`` rounds of every variant in turn) so that a change in background load hits all of
them alike, and the **minimum** wall time over the rounds is reported: background load on a shared CPU only
ever adds time, so the fastest round is the best estimate of each variant's own cost (the median is printed
next to it to show the spread). images/s = batch / wall time. The load average is printed because other
processes may share the CPU. Cost: (--rounds + 1) x 3 PGD calls plus as many FGSM calls; on a 2-core CPU one
PGD-10 call on small_cnn at 8x128² takes several seconds, so the defaults run for minutes.

    .venv/bin/python -m benchmarks.bench_attacks [--detector small_cnn] [--size 128] [--batch 8]
        [--rounds 5] [--steps 10] [--threads 2] [--device cpu|cuda] [--min-ratio 1.0] [--json PATH]

Exit code 0 when the target is met and the outputs agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torchattacks
from torch import Tensor, nn

from benchmarks.timing import interleaved_wall_times, load_average
from src.attacks import build_attack
from src.networks.detectors import build_detector_net

EPS = 8  # /255
ALPHA = 2  # /255
SEED = 0
TARGET_RATIO = 1.0  # ours / plain torchattacks, PGD images/s
MAX_ABS_DIFF = 1e-6


def key(attack: str, variant: str) -> str:
    return f"{attack}/{variant}"


def make_inputs(batch: int, size: int, device: str) -> tuple[Tensor, Tensor]:
    """Seeded images U(0, 1) ``[batch, 3, size, size]`` and binary labels ``[batch]``."""
    g = torch.Generator().manual_seed(1234)
    images = torch.rand(batch, 3, size, size, generator=g)
    labels = torch.randint(0, 2, (batch,), generator=g)
    return images.to(device), labels.to(device)


def make_detector(name: str, size: int, device: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_detector_net(name=name, weights=None, num_classes=2, input_size=size)
    return model.to(device).eval()


def plain(attack: torchattacks.attack.Attack) -> Callable[[Tensor, Tensor], Tensor]:
    """How a plain torchattacks user gets a reproducible attack: seed the global RNG, call."""

    def run(images: Tensor, labels: Tensor) -> Tensor:
        torch.manual_seed(SEED)
        return attack(images, labels)

    return run


def build_variants(
    model: nn.Module, frozen: nn.Module, steps: int
) -> dict[str, dict[str, Callable[[Tensor, Tensor], Tensor]]]:
    """attack name -> variant -> ``fn(images, labels) -> adversarial images``."""
    eps, alpha = EPS / 255, ALPHA / 255
    pgd = {"steps": steps, "alpha": float(ALPHA), "random_start": True}
    return {
        f"PGD-{steps}": {
            "ours": build_attack("pgd", model, eps=EPS, seed=SEED, **pgd),
            "torchattacks": plain(
                torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
            ),
            "torchattacks, frozen": plain(
                torchattacks.PGD(frozen, eps=eps, alpha=alpha, steps=steps, random_start=True)
            ),
        },
        "FGSM": {
            "ours": build_attack("fgsm", model, eps=EPS, seed=SEED),
            "torchattacks": plain(torchattacks.FGSM(model, eps=eps)),
            "torchattacks, frozen": plain(torchattacks.FGSM(frozen, eps=eps)),
        },
    }


def timed_functions(
    variants: dict[str, dict[str, Callable[[Tensor, Tensor], Tensor]]],
    images: Tensor,
    labels: Tensor,
    device: str,
    first_outputs: dict[str, Tensor],
) -> dict[str, Callable[[], object]]:
    """One closure per (attack, variant); each keeps its first output (the warm-up call's) for the check."""

    def call(name: str, fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[], object]:
        def run() -> object:
            out = fn(images, labels)
            if device == "cuda":
                torch.cuda.synchronize()
            first_outputs.setdefault(name, out)
            return out

        return run

    return {
        key(attack, name): call(key(attack, name), fn)
        for attack, fns in variants.items()
        for name, fn in fns.items()
    }


def max_abs_diffs(
    variants: dict[str, dict[str, Callable[[Tensor, Tensor], Tensor]]], outputs: dict[str, Tensor]
) -> dict[str, dict[str, float]]:
    """Per attack and torchattacks variant: max |ours - torchattacks| of the adversarial images."""
    return {
        attack: {
            name: float((outputs[key(attack, name)] - outputs[key(attack, "ours")]).abs().max())
            for name in fns
            if name != "ours"
        }
        for attack, fns in variants.items()
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", default="small_cnn", help="a registered detector network")
    parser.add_argument("--size", type=int, default=128, help="image side")
    parser.add_argument("--batch", type=int, default=8, help="images per attack call")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (minimum reported)")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=TARGET_RATIO,
        help=f"pass when ours ÷ plain torchattacks >= this (default {TARGET_RATIO}, the issue's target)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    if min(args.size, args.batch, args.rounds, args.steps, args.threads) < 1:
        parser.error("--size, --batch, --rounds, --steps and --threads must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, torchattacks {torchattacks.__version__}, device {device_name}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {load_average()}"
    )
    model = make_detector(args.detector, args.size, args.device)
    frozen = copy.deepcopy(model).requires_grad_(False)
    assert all(p.requires_grad for p in model.parameters())
    images, labels = make_inputs(args.batch, args.size, args.device)
    variants = build_variants(model, frozen, args.steps)
    pgd_name = f"PGD-{args.steps}"
    print(
        f"{args.detector} ({sum(p.numel() for p in model.parameters()):,} parameters, eval), "
        f"images {args.batch}x3x{args.size}x{args.size}, ε = {EPS}/255, PGD α = {ALPHA}/255, "
        f"{args.steps} steps, random start, seed {SEED}"
    )

    outputs: dict[str, Tensor] = {}
    functions = timed_functions(variants, images, labels, args.device, outputs)
    times = interleaved_wall_times(functions, args.rounds)
    assert all(p.requires_grad for p in model.parameters()), "victim_mode did not restore requires_grad"

    diffs = max_abs_diffs(variants, outputs)
    agree = all(d <= MAX_ABS_DIFF for per in diffs.values() for d in per.values())
    for attack, per in diffs.items():
        text = ", ".join(f"vs {name} {d:.1e}" for name, d in per.items())
        print(f"same adversarial images (warm-up calls), {attack}: max |ours - torchattacks| {text}")

    print(
        f"\n== min (and median) of {args.rounds} interleaved rounds after one warm-up call each; "
        f"images/s = {args.batch} / min"
    )
    print(f"{'attack':<8} {'variant':<22} {'min s':>8} {'median s':>9} {'images/s':>9} {'ours ÷':>7}")
    rates = {k: args.batch / min(walls) for k, walls in times.items()}
    for attack, fns in variants.items():
        for name in fns:
            walls = times[key(attack, name)]
            ratio = "" if name == "ours" else f"{rates[key(attack, 'ours')] / rates[key(attack, name)]:6.3f}x"
            print(
                f"{attack:<8} {name:<22} {min(walls):8.3f} {statistics.median(walls):9.3f} "
                f"{rates[key(attack, name)]:9.2f} {ratio:>7}"
            )

    ratio = rates[key(pgd_name, "ours")] / rates[key(pgd_name, "torchattacks")]
    ratio_frozen = rates[key(pgd_name, "ours")] / rates[key(pgd_name, "torchattacks, frozen")]
    met = ratio >= args.min_ratio
    print("\nfor the record (ours):")
    for attack in variants:
        print(f"  {attack:<8} {rates[key(attack, 'ours')]:9.2f} images/s")
    print(
        f"\ntarget: {pgd_name} images/s ours ÷ plain torchattacks (params requiring grad) "
        f"= {ratio:.3f} >= {args.min_ratio}: {'PASS' if met else 'FAIL'}"
    )
    print(f"        ours ÷ torchattacks on the frozen copy (the wrapper's own overhead) = {ratio_frozen:.3f}")
    if not agree:
        print(f"FAIL: the adversarial images differ by more than {MAX_ABS_DIFF} (not the same work)")
    print(f"\nload average at the end: {load_average()}; wall time {time.perf_counter() - start:.0f} s")

    if args.json:
        payload: dict[str, Any] = {
            "torch": torch.__version__,
            "torchattacks": torchattacks.__version__,
            "device": device_name,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_end": load_average(),
            "detector": args.detector,
            "size": args.size,
            "batch": args.batch,
            "rounds": args.rounds,
            "steps": args.steps,
            "eps_255": EPS,
            "alpha_255": ALPHA,
            "seed": SEED,
            "statistic": "min over interleaved rounds",
            "max_abs_diff": diffs,
            "wall_s": times,
            "images_per_s": rates,
            "ratio_vs_torchattacks": ratio,
            "ratio_vs_torchattacks_frozen": ratio_frozen,
            "target_ratio": args.min_ratio,
            "target_met": met,
            "outputs_agree": agree,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if met and agree else 1


if __name__ == "__main__":
    sys.exit(main())
