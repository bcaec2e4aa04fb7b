"""Plain-text console output for logs: progress lines and a readable layout of many metrics.

A run's epoch summary holds dozens of metrics (~80 for a privacy method with several evaluation
settings); on one line they are unreadable.
:func:`metric_lines` groups them by prefix (``train/``, ``val/``, ...), wraps each group to the console width
(``shutil.get_terminal_size``, 120 columns in a log file) and writes numbers with 4 significant digits.
:func:`progress_line` is one line of training/evaluation progress (step/total, rate, elapsed time, ETA).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from src.utils.tables import PSNR_CAP_TEXT, is_capped_psnr

DEFAULT_WIDTH = 120  # columns when stdout is not a terminal
DEFAULT_EVERY_S = 30.0  # seconds between progress lines
NO_PREFIX = "other"
_GROUP_ORDER = ("train", "val", "test")
_GAP = "  "


def console_width() -> int:
    """The terminal's width, else ``$COLUMNS``, else :data:`DEFAULT_WIDTH`."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def format_number(value: float) -> str:
    """4 significant digits (``0.9123``, ``1234``, ``1.235e+05``), ``nan``/``inf`` as Python writes them."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**6 else f"{value:.4g}"
    return f"{value:.4g}"


def format_metric(name: str, value: float) -> str:
    """A metric's value for the console; a PSNR at its cap is shown as infinite (identical images)."""
    if is_capped_psnr(name, value):  # every pair identical: not a number to compare
        return PSNR_CAP_TEXT
    return format_number(value)


def group_metrics(metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``{"val/rank1": x}`` -> ``{"val": {"rank1": x}}``; keys without ``/`` go to :data:`NO_PREFIX`.

    Groups come in the order train, val, test, the others alphabetically, then :data:`NO_PREFIX`; names
    inside a group in natural order (``layer2`` before ``layer10``).
    """
    groups: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        prefix, _, name = key.partition("/") if "/" in key else (NO_PREFIX, "", key)
        groups.setdefault(prefix, {})[name] = value

    def order(prefix: str) -> tuple[int, str]:
        if prefix in _GROUP_ORDER:
            return _GROUP_ORDER.index(prefix), prefix
        return (len(_GROUP_ORDER) + (prefix == NO_PREFIX), prefix)

    return {
        prefix: dict(sorted(groups[prefix].items(), key=lambda item: natural_key(item[0])))
        for prefix in sorted(groups, key=order)
    }


def natural_key(text: str) -> list[tuple[int, float | str]]:
    """Sort key that puts ``far_1e-2`` before ``far_1e-10`` and ``layer2`` before ``layer10``."""
    return [(0, float(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def metric_lines(metrics: Mapping[str, float], width: int | None = None, indent: int = 2) -> list[str]:
    """The metrics grouped by prefix, one block per group, ``name=value`` items wrapped to ``width``.

    ::

          train  acc=0.9123  loss_epoch=1.234
          val    auc=0.9812  eer=0.03125  psnr=∞ (capped at 100 dB)  rank1=0.8
                 tar@far_1e-3=0.5

    Every line is at most ``width`` columns: an item longer than a whole line is cut into pieces.
    """
    width = width or console_width()
    groups = group_metrics(metrics)
    label_width = max((len(prefix) for prefix in groups), default=0)
    lines = []
    for prefix, values in groups.items():
        items = [f"{name}={format_metric(name, value)}" for name, value in values.items()]
        label = " " * indent + prefix.ljust(label_width) + _GAP
        for i, line in enumerate(_pack(items, max(1, width - len(label)))):
            lines.append((label if i == 0 else " " * len(label)) + line)
    return lines


def _pack(items: list[str], room: int) -> Iterator[str]:
    """Items joined by two spaces into lines of at most ``room`` characters."""
    line = ""
    for item in items:
        pieces = [item[i : i + room] for i in range(0, len(item), room)] or [""]
        for piece in pieces:
            if line and len(line) + len(_GAP) + len(piece) <= room:
                line += _GAP + piece
                continue
            if line:
                yield line
            line = piece
    if line:
        yield line


def format_duration(seconds: float) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` above; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_elapsed(seconds: float) -> str:
    """``12.3 s`` below a minute, else as :func:`format_duration` (``4:05``, ``1:02:03``)."""
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def format_rate(steps: int, seconds: float) -> str:
    """``2.31 it/s`` when at least one step a second, else ``4.20 s/it``."""
    if steps <= 0 or seconds <= 0:
        return "? it/s"
    rate = steps / seconds
    return f"{rate:.3g} it/s" if rate >= 1 else f"{1 / rate:.3g} s/it"


def progress_line(
    stage: str, step: int, total: float, done: int, elapsed: float, extra: Mapping[str, float] | None = None
) -> str:
    """One progress line: ``epoch 3/12  step 120/500 (24%)  2.31 it/s  elapsed 0:52  ETA 2:44  loss=1.2``.

    ``step`` is the number of batches of this epoch/stage finished, ``done`` those finished in this process
    (fewer after a mid-epoch resume; the rate and ETA use them), ``total`` may be ``inf`` (no ETA then).
    """
    parts = [stage]
    if math.isfinite(total) and total > 0:
        parts.append(f"step {step}/{int(total)} ({100 * step / total:.0f}%)")
    else:
        parts.append(f"step {step}")
    parts.append(format_rate(done, elapsed))
    parts.append(f"elapsed {format_duration(elapsed)}")
    if math.isfinite(total) and done > 0 and elapsed > 0:
        parts.append(f"ETA {format_duration((total - step) * elapsed / done)}")
    parts += [f"{name}={format_metric(name, value)}" for name, value in (extra or {}).items()]
    return _GAP.join(parts)


@dataclass(frozen=True)
class Every:
    """How often progress lines come: every ``seconds`` of wall time or every ``fraction`` of a stage's
    batches (neither: no progress lines, only the summaries)."""

    seconds: float | None = DEFAULT_EVERY_S
    fraction: float | None = None

    @classmethod
    def parse(cls, text: str) -> Every:
        """``30s`` or ``30`` (seconds), ``10%`` (of the batches), ``off``."""
        value = text.strip().lower()
        try:
            if value in ("off", "0", "none", ""):
                return cls(None, None)
            if value.endswith("%"):
                fraction = float(value[:-1]) / 100
                if 0 < fraction <= 1:
                    return cls(None, fraction)
            else:
                seconds = float(value.removesuffix("s"))
                if seconds > 0 and math.isfinite(seconds):
                    return cls(seconds, None)
        except ValueError:
            pass
        raise ValueError(
            f"progress interval {text!r}: give seconds (30s), a share of the batches (10%) or off"
        )


class Pacer:
    """When the next progress line of a stage is due (time-based when its number of batches is unknown)."""

    def __init__(self, start: float, total: float, every: Every) -> None:
        self.total = total
        known = math.isfinite(total) and total > 0
        self.fraction = every.fraction if known else None
        self.seconds = (
            None if self.fraction else every.seconds or (DEFAULT_EVERY_S if every.fraction else None)
        )
        self._last = start
        self._mark = 1

    def due(self, now: float, step: int) -> bool:
        """Whether a line is due after ``step`` batches (never after the last one: a summary follows)."""
        if math.isfinite(self.total) and step >= self.total:
            return False
        if self.fraction is not None:
            if step < self._mark * self.fraction * self.total:
                return False
            while self._mark * self.fraction * self.total <= step:
                self._mark += 1
            return True
        if self.seconds is None or now - self._last < self.seconds:
            return False
        self._last = now
        return True
