"""Speed of the metric suite vs torchmetrics, and of identity retrieval vs a bare matrix product (not a test).

Targets (issue text):

1. Image-quality suite on ``--pairs`` (512) image pairs at 112² and 256², fed in batches of ``--batch``
   (32) through the Metric classes (``update`` per batch, then ``compute``): **ours ≥ 1.5× the throughput of
   the same metrics computed with torchmetrics**. Suite = PSNR + SSIM + MS-SSIM + LPIPS (random trunk in
   both, same net: real LPIPS weights cannot be downloaded here and cost the same). MS-SSIM needs
   ``min(H, W) >= 161`` with an 11-tap window, so at 112² both implementations use a 7-tap window (5 scales;
   smallest scale 7 px).
2. ``retrieval_rank_k`` (rank-1/5) and ``mean_average_precision`` with a 100k × 512-d gallery (10 images per
   identity on average) and 10k probes: **each within 1.5× of the time of the bare chunked matrix product
   ``probe @ gallery.T``, peak memory under 2 GB**. Each retrieval variant runs in its own subprocess so that
   its peak RSS (``VmHWM``) is its own; the inputs alone take ~225 MB. Ours run with their default arguments
   and are compared with the fastest of the bare products over ``--bare-chunks`` probe chunks.

Runs are interleaved (ours, reference, ours, ...) after a warm-up and the minimum over ``--rounds`` is kept,
because other processes may share the CPU (the load average is printed). Also printed: an SSIM implementation
shoot-out (ours / kornia / pytorch-msssim / torchmetrics: time and max deviation from pytorch-msssim, the
valid-border reference) and, with ``--profile``, torch profiler tables of where the time goes.

    .venv/bin/python -m benchmarks.bench_metrics [--pairs 512] [--sizes 112 256] [--rounds 2]
        [--lpips-net alex] [--gallery 100000] [--probes 10000] [--dim 512] [--profile] [--skip-retrieval]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.timing import load_average

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_SUITE_SPEEDUP = 1.5
TARGET_RETRIEVAL_RATIO = 1.5
TARGET_PEAK_BYTES = 2 * 1024**3
OURS_LABELS = {"rank_k": "retrieval_rank_k (defaults)", "map": "mean_average_precision (defaults)"}


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """Peak resident set size of this process image: ``VmHWM`` from ``/proc/self/status`` (Linux; reset by
    ``exec``, unlike ``getrusage``'s ``ru_maxrss``, which a child inherits from the parent it was forked
    from), else ``resource.getrusage(RUSAGE_SELF).ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_pairs(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` target images U(0, 1) and predictions ``clamp(target + N(0, 0.05))``, ``[n, 3, size, size]``."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g)
    preds = (target + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp_(0, 1)
    return preds, target


@contextmanager
def quiet() -> Any:
    """Silence warnings (random-trunk LPIPS warns on purpose; torchvision deprecations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def run_metric(metric: Any, preds: Tensor, target: Tensor, batch: int) -> float:
    """Reset, feed every batch through ``update``, return ``compute()`` as a float."""
    metric.reset()
    with torch.inference_mode():
        for start in range(0, preds.shape[0], batch):
            metric.update(preds[start : start + batch], target[start : start + batch])
        return float(metric.compute())


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# ----------------------------------------------------------------------------------------------------
# 1. Image-quality suite
# ----------------------------------------------------------------------------------------------------


def ms_ssim_kernel(size: int) -> int:
    """11-tap window where the image allows 5 scales (min side >= 161), else 7 taps (min side >= 97)."""
    return 11 if size >= 161 else 7


def ours_suite(size: int, lpips_net: str | None) -> dict[str, Any]:
    from src.metrics.image_quality import MSSSIM, PSNR, SSIM
    from src.metrics.perceptual import LPIPS

    suite: dict[str, Any] = {
        "PSNR": PSNR(data_range=1.0),
        "SSIM": SSIM(data_range=1.0),
        "MS-SSIM": MSSSIM(data_range=1.0, kernel_size=ms_ssim_kernel(size)),
    }
    if lpips_net:
        with quiet():
            suite[f"LPIPS-{lpips_net} (random trunk)"] = LPIPS(net=lpips_net, random_backbone=True, seed=0)
    return suite


def torchmetrics_suite(size: int, lpips_net: str | None) -> dict[str, Any]:
    import torchmetrics.image as tmi
    import torchmetrics.image.lpip as tm_lpip
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    suite: dict[str, Any] = {
        "PSNR": tmi.PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
        "SSIM": tmi.StructuralSimilarityIndexMeasure(data_range=1.0),
        "MS-SSIM": tmi.MultiScaleStructuralSimilarityIndexMeasure(
            data_range=1.0, kernel_size=ms_ssim_kernel(size)
        ),
    }
    if lpips_net:
        # torchmetrics' LPIPS class builds its trunk with ImageNet weights (a download); build it with
        # torchmetrics' own network class, random trunk (same net, same cost), through the public class.
        original = tm_lpip._NoTrainLpips
        tm_lpip._NoTrainLpips = lambda net, **kw: _NoTrainLpips(net=net, pnet_rand=True, **kw)  # type: ignore[misc]
        try:
            with quiet():
                suite[f"LPIPS-{lpips_net} (random trunk)"] = tmi.LearnedPerceptualImagePatchSimilarity(
                    net_type=lpips_net, normalize=True
                )
        finally:
            tm_lpip._NoTrainLpips = original
    return suite


def time_suites(
    suites: dict[str, dict[str, Any]], preds: Tensor, target: Tensor, batch: int, rounds: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per implementation and metric: the fastest of ``rounds`` interleaved runs, and the metric value."""
    times: dict[str, dict[str, float]] = {impl: {} for impl in suites}
    values: dict[str, dict[str, float]] = {impl: {} for impl in suites}
    warm = max(1, min(batch, preds.shape[0]))
    with quiet():
        for suite in suites.values():  # warm-up (oneDNN primitives, allocator)
            for metric in suite.values():
                run_metric(metric, preds[:warm], target[:warm], batch)
        for _ in range(rounds):
            for impl, suite in suites.items():
                for name, metric in suite.items():
                    seconds, value = timed(lambda m=metric: run_metric(m, preds, target, batch))
                    times[impl][name] = min(times[impl].get(name, float("inf")), seconds)
                    values[impl][name] = value
    return times, values


def bench_suite(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time both suites per size; returns one row per (size, metric) plus a total row per size."""
    rows: list[dict[str, Any]] = []
    net = None if args.no_lpips else args.lpips_net
    for size in args.sizes:
        preds, target = make_pairs(args.pairs, size, seed=size)
        suites = {"ours": ours_suite(size, net), "torchmetrics": torchmetrics_suite(size, net)}
        times, values = time_suites(suites, preds, target, args.batch, args.rounds)
        for name in suites["ours"]:
            rows.append(
                {
                    "size": size,
                    "metric": name,
                    "ours_s": times["ours"][name],
                    "tm_s": times["torchmetrics"][name],
                    "ours_value": values["ours"][name],
                    "tm_value": values["torchmetrics"][name],
                }
            )
        total = {impl: sum(t.values()) for impl, t in times.items()}
        rows.append({"size": size, "metric": "TOTAL", "ours_s": total["ours"], "tm_s": total["torchmetrics"]})
    return rows


def print_suite(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n== 1. Image-quality suite: {args.pairs} pairs, batches of {args.batch}, "
        f"min of {args.rounds} rounds"
    )
    print(f"{'size':>5}  {'metric':<28} {'ours s':>8} {'tm s':>8} {'speed-up':>8}   value ours / tm")
    for row in rows:
        speedup = row["tm_s"] / row["ours_s"]
        line = (
            f"{row['size']:>5}  {row['metric']:<28} {row['ours_s']:8.2f} {row['tm_s']:8.2f} {speedup:7.2f}x"
        )
        if row["metric"] == "TOTAL":
            verdict = "PASS" if speedup >= TARGET_SUITE_SPEEDUP else "FAIL"
            line += f"   target >= {TARGET_SUITE_SPEEDUP}x: {verdict}"
            pairs_per_s = args.pairs / row["ours_s"], args.pairs / row["tm_s"]
            line += f"  ({pairs_per_s[0]:.0f} vs {pairs_per_s[1]:.0f} pairs/s)"
        else:
            line += f"   {row['ours_value']:.6f} / {row['tm_value']:.6f}"
        print(line)


def ssim_shootout(batch: int, size: int, rounds: int) -> None:
    """Time SSIM implementations on one batch; deviation from pytorch-msssim (valid borders)."""
    import kornia
    import pytorch_msssim
    import torchmetrics.functional.image as tmf

    from src.metrics.image_quality import ms_ssim, ssim

    preds, target = make_pairs(batch, size, seed=1)
    ref = pytorch_msssim.ssim(preds, target, data_range=1.0, size_average=False)
    ref_ms = pytorch_msssim.ms_ssim(preds, target, data_range=1.0, size_average=False)
    candidates: dict[str, tuple[Callable[[], Tensor], Tensor]] = {
        "ours ssim": (lambda: ssim(preds, target), ref),
        "kornia.metrics.ssim (same pad)": (
            lambda: kornia.metrics.ssim(preds, target, 11).mean(dim=(1, 2, 3)),
            ref,
        ),
        "pytorch_msssim.ssim": (
            lambda: pytorch_msssim.ssim(preds, target, data_range=1.0, size_average=False),
            ref,
        ),
        "torchmetrics ssim": (
            lambda: tmf.structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none"),
            ref,
        ),
        "ours ms_ssim": (lambda: ms_ssim(preds, target), ref_ms),
        "pytorch_msssim.ms_ssim": (
            lambda: pytorch_msssim.ms_ssim(preds, target, data_range=1.0, size_average=False),
            ref_ms,
        ),
        "torchmetrics ms_ssim": (
            lambda: tmf.multiscale_structural_similarity_index_measure(
                preds, target, data_range=1.0, reduction="none"
            ),
            ref_ms,
        ),
    }
    print(
        f"\n== SSIM / MS-SSIM implementations on {batch}x3x{size}x{size} "
        f"(min of {rounds}; max |Δ| vs pytorch-msssim, the valid-border reference)"
    )
    best: dict[str, float] = {}
    with torch.inference_mode():
        for fn, _ in candidates.values():
            fn()
        for _ in range(rounds):
            for name, (fn, _) in candidates.items():
                best[name] = min(best.get(name, float("inf")), timed(fn)[0])
        for name, (fn, reference) in candidates.items():
            deviation = float((fn().double() - reference.double()).abs().max())
            print(f"  {name:<34} {1000 * best[name]:8.0f} ms   max |Δ| {deviation:.1e}")


# ----------------------------------------------------------------------------------------------------
# 2. Retrieval
# ----------------------------------------------------------------------------------------------------


def retrieval_data(
    gallery: int, probes: int, dim: int, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random float32 embeddings, ``gallery // 10`` identities; each probe is a noisy copy of a gallery item
    and carries its label (so every probe has same-label items and ranks are not trivial)."""
    g = torch.Generator().manual_seed(seed)
    gallery_emb = torch.randn(gallery, dim, generator=g)
    gallery_labels = torch.randint(0, max(1, gallery // 10), (gallery,), generator=g)
    anchor = torch.randint(0, gallery, (probes,), generator=g)
    probe_emb = 0.2 * gallery_emb[anchor] + torch.randn(probes, dim, generator=g)
    return probe_emb, gallery_labels[anchor], gallery_emb, gallery_labels


def retrieval_worker(mode: str, gallery: int, probes: int, dim: int, chunk: int) -> dict[str, Any]:
    """Run one retrieval variant in this (fresh) process; report its time and the process's peak RSS.

    ``bare``: ``probe[i:i+chunk] @ gallery.T`` for every chunk (inputs L2-normalised beforehand, outside the
    timing); ``rank_k`` / ``map``: ``retrieval_rank_k`` / ``mean_average_precision`` with their default
    chunking, validation and normalisation included.
    """
    from src.metrics.retrieval import mean_average_precision, retrieval_rank_k

    probe, p_lab, gal, g_lab = retrieval_data(gallery, probes, dim)
    if mode == "bare":
        probe = torch.nn.functional.normalize(probe, dim=1)
        gal = torch.nn.functional.normalize(gal, dim=1)
    rss_inputs = peak_rss_bytes()

    def run() -> Any:
        if mode == "rank_k":
            return retrieval_rank_k(probe, p_lab, gal, g_lab, ks=(1, 5))
        if mode == "map":
            return {"mAP": round(mean_average_precision(probe, p_lab, gal, g_lab), 6)}
        if mode == "bare":
            checksum = 0.0
            for start in range(0, probe.shape[0], chunk):
                checksum += float((probe[start : start + chunk] @ gal.T)[:, 0].sum())
            return round(checksum, 3)
        raise ValueError(f"unknown worker mode {mode!r}")

    with torch.inference_mode():
        seconds, value = timed(run)
    return {
        "mode": mode,
        "chunk": chunk,
        "seconds": seconds,
        "value": value,
        "peak_rss": peak_rss_bytes(),
        "rss_inputs": rss_inputs,
    }


def run_worker(mode: str, args: argparse.Namespace, chunk: int) -> dict[str, Any]:
    """One retrieval run in a subprocess (clean peak-RSS accounting)."""
    command = [sys.executable, "-m", "benchmarks.bench_metrics", "--_worker", mode]
    command += ["--gallery", str(args.gallery), "--probes", str(args.probes), "--dim", str(args.dim)]
    command += ["--chunk", str(chunk)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"retrieval worker {mode!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_retrieval(args: argparse.Namespace) -> None:
    """Ours (rank-k and mAP, default arguments) vs the fastest bare chunked product over ``--bare-chunks``."""
    print(
        f"\n== 2. Retrieval: {args.gallery} gallery x {args.probes} probes x {args.dim}-d float32 "
        f"(each run in its own process; min of {args.rounds} rounds)"
    )
    variants = [("bare", chunk) for chunk in args.bare_chunks] + [("rank_k", 0), ("map", 0)]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for _ in range(args.rounds):
        for mode, chunk in variants:
            r = run_worker(mode, args, chunk)
            if (mode, chunk) not in results or r["seconds"] < results[(mode, chunk)]["seconds"]:
                results[(mode, chunk)] = r
    gib = 1024**3
    bare = min((r for (mode, _), r in results.items() if mode == "bare"), key=lambda r: r["seconds"])
    print(f"{'variant':<40} {'s':>7} {'÷ best bare':>11} {'peak RSS':>9} {'inputs':>8} {'work':>7}  result")
    for (mode, chunk), r in results.items():
        ratio = r["seconds"] / bare["seconds"]
        label = f"bare probe @ gallery.T, chunk {chunk}" if mode == "bare" else OURS_LABELS[mode]
        line = (
            f"{label:<40} {r['seconds']:7.2f} {ratio:10.2f}x {r['peak_rss'] / gib:8.2f}G "
            f"{r['rss_inputs'] / gib:7.2f}G {(r['peak_rss'] - r['rss_inputs']) / gib:6.2f}G  {r['value']}"
        )
        if mode != "bare":
            verdict_time = "PASS" if ratio <= TARGET_RETRIEVAL_RATIO else "FAIL"
            verdict_mem = "PASS" if r["peak_rss"] < TARGET_PEAK_BYTES else "FAIL"
            line += f"   time {verdict_time}, memory {verdict_mem}"
        print(line)
    print(
        f"targets: retrieval_rank_k and mean_average_precision <= {TARGET_RETRIEVAL_RATIO}x the fastest "
        f"bare product, peak RSS < {TARGET_PEAK_BYTES / gib:.0f} GiB. Peak RSS is the whole process; "
        f"'inputs' is the peak before the timed call (torch ~0.5 GB + imports ~0.3 GB + data), 'work' the "
        "increase during it"
    )


# ----------------------------------------------------------------------------------------------------
# Profiles
# ----------------------------------------------------------------------------------------------------


def profile(args: argparse.Namespace) -> None:
    """Where the time goes: our suite on one 256² batch, and retrieval_rank_k on one chunk."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from src.metrics.retrieval import retrieval_rank_k

    size = max(args.sizes)
    preds, target = make_pairs(args.batch, size, seed=2)
    suite = ours_suite(size, None if args.no_lpips else args.lpips_net)
    with quiet(), torch.inference_mode():
        for name, metric in suite.items():
            run_metric(metric, preds, target, args.batch)
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                run_metric(metric, preds, target, args.batch)
            print(f"\n-- profile: {name}, one {args.batch}x3x{size}² batch")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    probe, p_lab, gal, g_lab = retrieval_data(min(args.gallery, 100_000), 2048, args.dim)
    with torch.inference_mode(), torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        retrieval_rank_k(probe, p_lab, gal, g_lab)
    print(f"\n-- profile: retrieval_rank_k, 2048 probes x {gal.shape[0]} gallery (default chunking)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


# ----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 256])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lpips-net", default="alex", choices=["alex", "vgg", "squeeze"])
    parser.add_argument("--no-lpips", action="store_true", help="leave LPIPS out of the suite")
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument(
        "--bare-chunks", type=int, nargs="+", default=[1024, 4096], help="bare-product chunks"
    )
    parser.add_argument("--chunk", type=int, default=1024, help=argparse.SUPPRESS)
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print torch profiler tables")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args._worker:
        print(json.dumps(retrieval_worker(args._worker, args.gallery, args.probes, args.dim, args.chunk)))
        return 0
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {load_average()}"
    )
    if not args.skip_suite:
        ssim_shootout(args.batch, max(args.sizes), args.rounds + 1)
        print_suite(bench_suite(args), args)
    if not args.skip_retrieval:
        bench_retrieval(args)
    if args.profile:
        profile(args)
    print(f"\nload average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
