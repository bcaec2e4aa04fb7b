"""Cost columns of every paper with cost entries: parameters, FLOPs and runtime per image (not a test).

Each paper declares its networks in ``src/papers/<paper>/settings.py`` (a
:class:`src.papers.registry.CostEntry`: how to build the network, its published parameter count, the input
sizes and the passes to measure); this script measures them all (``--paper NAME`` for one), at each size and
for each pass the entry names (e.g. a paper's measurement size next to its run size, a protect and a recover
pass). The papers' docs (``docs/papers/<paper>.md``) quote the results.

Networks are built from code with their default arguments (random weights: cost does not depend on them), in
eval mode. Parameter counts are checked against each entry's published count; a mismatch exits non-zero.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (part of torch, works offline), which
counts 2 FLOPs per multiply-add of the ops it knows: convolutions, transposed convolutions, matrix products
(the Haar DWT/IWT ``einsum`` shows up as ``bmm``). fvcore counts one "flop" per multiply-add, so **fvcore's
number ≈ MACs = FlopCounter / 2**; both are printed. Element-wise ops (activations, ``exp``/``sigmoid`` of the
couplings, additions, concatenation) are counted by neither. fvcore also counts eval-mode ``batch_norm`` (2
per element with affine), which FlopCounterMode does not; that term is measured with forward hooks and
printed separately.

Runtime: ``torch.inference_mode()``, batch 1 and 8, ``--warmup`` untimed calls then the median of
``--repeats`` timed calls, reported in ms per image. The load average is printed because other processes may
share the CPU.

    .venv/bin/python -m benchmarks.bench_costs [--paper NAME] [--repeats 3] [--warmup 1] [--batches 1 8]
        [--device cpu|cuda] [--threads N] [--skip-runtime] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.timing import load_average
from src.papers.registry import COST_ENTRIES, CostEntry, discover

#: fvcore's eval-mode batch_norm count per element (affine BN: scale + shift).
FVCORE_BN_FLOPS_PER_ELEMENT = 2

Pass = Callable[[], Any]


@dataclass
class CostRow:
    """Cost of one pass of one network at one input size."""

    network: str
    pass_name: str
    size: int
    size_label: str
    params: int
    flops: int  # FlopCounterMode total (2 per multiply-add)
    flops_by_op: dict[str, int] = field(default_factory=dict)
    bn_elements: int = 0  # batch-norm output elements (fvcore counts them; FlopCounterMode does not)
    ms_per_image: dict[int, float] = field(default_factory=dict)  # batch -> median ms per image

    @property
    def gmacs(self) -> float:
        """fvcore convention: one per multiply-add."""
        return self.flops / 2e9

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def check_params(entries: dict[str, CostEntry], nets: dict[str, nn.Module]) -> dict[str, int]:
    """Parameter count per network; exits non-zero naming every network that differs from its paper."""
    counts = {name: count_params(net) for name, net in nets.items()}
    wrong = [
        f"{name}: {counts[name]:,} parameters, the paper says {entries[name].params:,}"
        for name in nets
        if counts[name] != entries[name].params
    ]
    if wrong:
        raise SystemExit("bench_costs: parameter count mismatch —\n  " + "\n  ".join(wrong))
    return counts


def cost_entries(paper: str | None = None) -> dict[str, CostEntry]:
    """Every registered cost entry (of one paper when ``paper`` is given), by network label."""
    papers = discover()
    if paper is not None and paper not in papers:
        raise SystemExit(f"bench_costs: unknown paper {paper!r}; registered: {', '.join(papers)}")
    found: dict[str, CostEntry] = {}
    for name, entries in sorted(COST_ENTRIES.items()):
        for entry in entries if paper in (None, name) else ():
            if entry.network in found:
                raise SystemExit(f"bench_costs: two cost entries are labelled {entry.network!r} ({name})")
            found[entry.network] = entry
    return found


# ----------------------------------------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------------------------------------


def count_flops(net: nn.Module, fn: Pass) -> tuple[int, dict[str, int], int]:
    """One call of ``fn`` under FlopCounterMode: total FLOPs, FLOPs per op, and batch-norm output elements.

    Batch-norm elements are counted with forward hooks: fvcore counts them, FlopCounterMode does not.
    """
    bn_elements = 0

    def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
        nonlocal bn_elements
        bn_elements += output.numel()

    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    handles = [m.register_forward_hook(hook) for m in norms]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            fn()
    finally:
        for handle in handles:
            handle.remove()
    by_op = {str(op).split(".")[-1]: int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops()), by_op, bn_elements


# ----------------------------------------------------------------------------------------------------
# Runtime
# ----------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms_per_image(fn: Pass, batch: int, warmup: int, repeats: int, device: torch.device) -> float:
    """Median wall time of ``repeats`` calls (after ``warmup`` untimed ones) divided by ``batch``, in ms."""
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        synchronize(device)
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / batch


# ----------------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------------


def measure(
    entries: dict[str, CostEntry],
    nets: dict[str, nn.Module],
    params: dict[str, int],
    args: argparse.Namespace,
) -> list[CostRow]:
    """FLOPs (on CPU, batch 1) and, unless skipped, runtime per image for every network, size and pass."""
    device = torch.device(args.device)
    rows: list[CostRow] = []
    for name, net in nets.items():
        for size, label in entries[name].sizes:
            net.to("cpu")
            cpu_passes = entries[name].passes(net, 1, size, torch.device("cpu"))
            for pass_name, fn in cpu_passes.items():
                flops, by_op, bn = count_flops(net, fn)
                rows.append(CostRow(name, pass_name, size, label, params[name], flops, by_op, bn))
            if args.skip_runtime:
                continue
            net.to(device)
            for batch in args.batches:
                for pass_name, fn in entries[name].passes(net, batch, size, device).items():
                    row = next(r for r in rows if (r.network, r.pass_name, r.size) == (name, pass_name, size))
                    row.ms_per_image[batch] = median_ms_per_image(
                        fn, batch, args.warmup, args.repeats, device
                    )
            net.to("cpu")
    return rows


def print_table(rows: list[CostRow], batches: Sequence[int], runtime: bool) -> None:
    ms_heads = "".join(f" {'ms/img b' + str(b):>11}" for b in batches) if runtime else ""
    head = (
        f"{'network':<11} {'pass':<8} {'size':<34} {'params':>10} {'GMACs':>8} {'GFLOPs':>8} "
        f"{'bmm GFLOPs':>10}{ms_heads}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        other = (r.flops - r.flops_by_op.get("convolution", 0)) / 1e9
        ms = "".join(f" {r.ms_per_image.get(b, float('nan')):11.1f}" for b in batches) if runtime else ""
        size = f"{r.size}x{r.size} ({r.size_label})"
        print(
            f"{r.network:<11} {r.pass_name:<8} {size:<34} {r.params:>10,} {r.gmacs:8.3f} {r.gflops:8.3f} "
            f"{other:10.4f}{ms}"
        )
    print(
        "\nGMACs = fvcore convention (fvcore counts 1 per multiply-add; = FlopCounterMode / 2); "
        "GFLOPs = 2·MAC (torch FlopCounterMode).\n"
        "Counted: convolutions, transposed convolutions, matrix products ('bmm GFLOPs' = GFLOPs outside "
        "convolutions: the Haar DWT/IWT einsum).\n"
        "Not counted (neither here nor by fvcore): element-wise ops — activations, exp/sigmoid of the "
        "affine couplings, additions, concatenation."
    )
    for r in rows:
        if r.bn_elements:
            extra = FVCORE_BN_FLOPS_PER_ELEMENT * r.bn_elements / 1e9
            print(
                f"fvcore also counts eval batch_norm ({FVCORE_BN_FLOPS_PER_ELEMENT}/element): {r.network} "
                f"{r.pass_name} @ {r.size}: +{extra:.3f} G → fvcore total ≈ {r.gmacs + extra:.3f} G"
            )
    if runtime:
        print("ms/img bN = median wall time of one batch-N call divided by N, under torch.inference_mode().")


def write_json(path: Path, rows: list[CostRow], args: argparse.Namespace) -> None:
    records = []
    for r in rows:
        record = asdict(r)
        record["ms_per_image"] = {str(b): ms for b, ms in r.ms_per_image.items()}
        record["gmacs_fvcore_convention"] = r.gmacs
        record["gflops_2mac"] = r.gflops
        record["fvcore_bn_gflops"] = FVCORE_BN_FLOPS_PER_ELEMENT * r.bn_elements / 1e9
        records.append(record)
    payload = {
        "torch": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "batches": list(args.batches),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "published_params": {r.network: r.params for r in rows},
        "flop_counter": "torch FlopCounterMode: 2 per multiply-add; element-wise ops not counted",
        "rows": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {path}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper", default=None, help="one registered paper (default: every paper)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--skip-runtime", action="store_true", help="parameters and FLOPs only")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or min(args.batches) < 1:
        parser.error("--repeats and --batches must be >= 1, --warmup >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, device {device_name}, {torch.get_num_threads()} threads "
        f"(torch.get_num_threads()), {os.cpu_count()} CPUs, load average {load_average()}"
    )
    entries = cost_entries(args.paper)
    if not entries:
        raise SystemExit("bench_costs: no paper registers cost entries")
    nets = {name: entry.build() for name, entry in entries.items()}
    params = check_params(entries, nets)
    print(
        "params: "
        + ", ".join(f"{n} {c:,} (paper {entries[n].params:,}) ok" for n, c in params.items())
        + "\n"
    )
    rows = measure(entries, nets, params, args)
    print_table(rows, args.batches, not args.skip_runtime)
    print(f"\nload average at the end: {load_average()}; wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        write_json(args.json, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
