"""The web portal under load (not a test): latency and refusals for 1, 4 and 16 concurrent clients.

Starts ``python -m src.serving.portal`` on 127.0.0.1 (a free port) as a child process, warms the ``blur``
method up with one request, then for each client count sends a fixed number of ``POST /api/protect``
requests (a 160-pixel SyntheticFaces PNG, ``blur``) from that many concurrent httpx clients, stopping early at
a wall-clock cap. Reported per level: successful requests, 503 refusals (a full worker pool answers at once
rather than queueing more), other errors, p50/p95 latency of the successful requests, the slowest 503 and the
throughput. The server is stopped at the end, whatever happens. The load average is printed because other
processes may share the CPU.

    .venv/bin/python -m benchmarks.bench_serving [--clients 1,4,16] [--requests 20] [--max-seconds 60]
        [--workers 2] [--queue 4]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from benchmarks.timing import load_average
from src.datamodules.components.synthetic_face_renderer import render_synthetic_face

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Level:
    """What one client count measured."""

    clients: int
    latencies: list[float] = field(default_factory=list)
    refusals: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def row(self) -> str:
        ok = len(self.latencies)
        p50 = 1e3 * statistics.median(self.latencies) if ok else float("nan")
        p95 = 1e3 * _percentile(self.latencies, 0.95) if ok else float("nan")
        slowest_503 = f"{1e3 * max(self.refusals):.0f}" if self.refusals else "-"
        rate = ok / self.wall_s if self.wall_s else 0.0
        sent, refused, failed = (
            ok + len(self.refusals) + len(self.errors),
            len(self.refusals),
            len(self.errors),
        )
        return (
            f"{self.clients:>7} {sent:>8} {ok:>4} {refused:>5} {failed:>6} {p50:>8.0f} {p95:>8.0f} "
            f"{slowest_503:>12} {rate:>7.2f} {self.wall_s:>7.1f}"
        )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(render_synthetic_face(0, 1, 0, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def _start_server(port: int, workers: int, queue: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "src.serving.portal",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--queue",
        str(queue),
        "--log-level",
        "error",
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL)


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench_serving: the portal exited with code {server.returncode} while starting")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"bench_serving: the portal did not answer within {START_TIMEOUT_S:.0f} s")


async def _run_level(url: str, clients: int, total: int, max_seconds: float, photo: bytes) -> Level:
    level = Level(clients)
    remaining = [total]
    deadline = time.monotonic() + max_seconds

    async def client(http: httpx.AsyncClient) -> None:
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            started = time.perf_counter()
            try:
                answer = await http.post(
                    f"{url}/api/protect?download=1",
                    files={"file": ("face.png", photo, "image/png")},
                    data={"method": "blur"},
                )
            except httpx.HTTPError as exc:
                level.errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            if answer.status_code == 200:
                level.latencies.append(elapsed)
            elif answer.status_code == 503:
                level.refusals.append(elapsed)
            else:
                level.errors.append(f"{answer.status_code}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        level.wall_s = time.perf_counter() - started
    return level


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="1,4,16", help="comma-separated concurrent client counts")
    parser.add_argument("--requests", type=int, default=20, help="requests per client count (in total)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="wall-clock cap per client count")
    parser.add_argument("--workers", type=int, default=2, help="the portal's inference threads")
    parser.add_argument("--queue", type=int, default=4, help="the portal's waiting requests")
    args = parser.parse_args()
    levels = [int(value) for value in args.clients.split(",") if value.strip()]

    photo = _photo()
    port = _free_port()
    url = f"http://{HOST}:{port}"
    server = _start_server(port, args.workers, args.queue)
    try:
        _wait_until_up(url, server)
        warm = httpx.post(
            f"{url}/api/protect", files={"file": ("face.png", photo)}, data={"method": "blur"}, timeout=120
        )
        warm.raise_for_status()
        results = [asyncio.run(_run_level(url, n, args.requests, args.max_seconds, photo)) for n in levels]
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)

    print(
        f"portal on {HOST}: blur on a 160x160 PNG, {args.workers} workers + {args.queue} queued, "
        f"{args.requests} requests per level, CPU, load average {load_average()}"
    )
    print(
        f"{'clients':>7} {'requests':>8} {'ok':>4} {'503':>5} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'max 503 ms':>12} {'ok/s':>7} {'wall s':>7}"
    )
    for level in results:
        print(level.row())
    errors = sorted({error for level in results for error in level.errors})
    if errors:
        print(f"errors: {', '.join(errors)}")


if __name__ == "__main__":
    main()
