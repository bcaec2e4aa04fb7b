"""The leaderboard's run records: one folder per contender (and per judge), one entry per computed part.

``<runs>/leaderboard/<panel>/<entrant>/record.json`` holds what the entrant is (method, options, checkpoint
with its sha256, experiment and run id, privacy record) and ``parts``: for each part of the panel
(``utility``, ``privacy:<recognizer>``, ``parrot``, ``recovery``, ``forgery:<judge>``) the values, the
seconds it took, when, on which commit, and its **key**: a hash of everything the values depend on (the
test images, the checkpoint's sha256, the options, the part's settings). A part whose key matches is read
back instead of computed; anything else (a new checkpoint, another recognizer, other settings) is computed
again, and ``--force`` recomputes everything. Every number of the leaderboard names the record it came from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from src.utils.run_record import git_state, now_iso, write_json

__all__ = ["EntrantRecord", "part_key"]

_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def part_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def folder_name(entrant_id: str) -> str:
    """A file-system-safe folder for an entrant id (``method/eps=1`` → ``method__eps=1``)."""
    return _SAFE.sub("_", entrant_id.replace("/", "__")).strip("_") or "entrant"


class EntrantRecord:
    """The record of one entrant on one panel; parts are computed at most once per key."""

    def __init__(self, folder: Path, about: Mapping[str, Any], *, force: bool = False) -> None:
        self.folder = folder
        self.path = folder / "record.json"
        self.force = force
        self.data: dict[str, Any] = {"parts": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
            except (OSError, ValueError):
                loaded = None  # an unreadable record is recomputed (and overwritten)
            if isinstance(loaded, dict) and isinstance(loaded.get("parts"), dict):
                self.data = loaded
        self.data.update(about)
        self.reused: list[str] = []
        self.computed: list[str] = []

    def cached(self, part: str, key: str) -> dict[str, Any] | None:
        """The stored values of ``part`` when its key matches (and not forced), else None."""
        stored = self.data["parts"].get(part)
        if self.force or not isinstance(stored, dict) or stored.get("key") != key:
            return None
        values = stored.get("values")
        return _read(values) if isinstance(values, dict) else None

    def get(self, part: str, key: str, compute: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """``part``'s values: read back when the key matches, else computed, stored and saved."""
        values = self.cached(part, key)
        if values is not None:
            self.reused.append(part)
            return values
        start = time.perf_counter()
        values = {str(k): _plain(v) for k, v in compute().items()}
        self.data["parts"][part] = {
            "key": key,
            "values": values,
            "seconds": round(time.perf_counter() - start, 3),
            "computed": now_iso(),
            "commit": _commit(),
        }
        self.computed.append(part)
        self.save()
        return _read(values)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)


@functools.cache
def _commit() -> str | None:
    """The code's commit, read once per process (every part records it)."""
    return git_state().get("commit")


def _read(values: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values as the table uses them: a missing number (null) is NaN."""
    return {k: math.nan if v is None else v for k, v in values.items()}


def _plain(value: Any) -> Any:
    """JSON-able values (NaN is written as null and read back as NaN by the table)."""
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item") and callable(value.item):
        return _plain(value.item())
    return value
