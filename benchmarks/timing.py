"""What every benchmark here needs to time things fairly on a shared CPU."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def load_average() -> str:
    """The 1/5/15-minute load averages (other processes sharing the CPU distort timings)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def interleaved_wall_times(
    functions: dict[str, Callable[[], object]], repeats: int
) -> dict[str, list[float]]:
    """Wall times of each function over ``repeats`` rounds (one warm-up call each first).

    Rounds interleave the functions so a change in background load affects all of them alike.
    """
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times
