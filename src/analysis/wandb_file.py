"""Read an offline W&B run (``run-<id>.wandb``) without a server or ``wandb sync``.

wandb 0.31 writes no ``config.yaml``/``wandb-summary.json`` offline: everything is in the binary
transaction log. Layout: a 7-byte header (``:W&B``, magic 0xBEE1 little-endian, version byte), then
LevelDB-log framing — 32 KiB blocks of chunks with a 7-byte header (crc32 | length uint16 LE | type: FULL=1
FIRST=2 MIDDLE=3 LAST=4); fewer than 7 bytes left in a block are padding. Each record payload is a
``wandb_internal_pb2.Record``.

The format is internal to wandb, so every protobuf access lives in this module (pin wandb; tests cover it).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "WandbFileError",
    "WandbRun",
    "find_wandb_files",
    "iter_records",
    "merge_wandb_runs",
    "read_wandb_file",
]

_IDENT = b":W&B"
_MAGIC = 0xBEE1
_FILE_HEADER = struct.Struct("<4sHB")
_CHUNK_HEADER = struct.Struct("<IHB")
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_INTERNAL_KEY = "_wandb"  # wandb's own bookkeeping inside config/summary; not user data
TRAINER_STEP = "trainer/global_step"  # the step Lightning's W&B logger puts in every row


class WandbFileError(ValueError):
    """A ``.wandb`` file that cannot be parsed; the message names the file and the byte offset."""


@dataclass
class WandbRun:
    """Config, history and summary of one W&B run, recovered from its ``.wandb`` file."""

    run_id: str
    project: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    exit_code: int | None
    path: Path | None = None
    entity: str = ""
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the file has an exit record (``False`` for a live or killed run)."""
        return self.exit_code is not None

    def history_frame(self) -> pd.DataFrame:
        """The history as a DataFrame, one row per logged step (column ``_step``)."""
        import pandas as pd

        return pd.DataFrame(self.history)


def find_wandb_files(run_dir: str | Path) -> list[Path]:
    """All ``run-*.wandb`` files under ``run_dir``, oldest first (by their ``offline-run-<time>`` folder).

    wandb's ``latest-run`` link is skipped, so each file is listed once.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"not a directory: {run_dir}")
    found: dict[Path, Path] = {}
    for path in sorted(run_dir.rglob("run-*.wandb")):
        if "latest-run" in path.relative_to(run_dir).parts or not path.is_file():
            continue
        found.setdefault(path.resolve(), path)
    return sorted(found.values(), key=lambda p: (p.parent.name, p.name))


def _chunks(data: bytes, path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(offset, chunk type, payload) for each chunk, stopping at the end marker or a truncated tail."""
    pos = _FILE_HEADER.size
    size = len(data)
    while pos < size:
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER.size:
            pos += left  # block trailer padding
            continue
        if size - pos < _CHUNK_HEADER.size:
            return  # truncated header at the tail (run still being written or killed)
        crc, length, kind = _CHUNK_HEADER.unpack_from(data, pos)
        if length == 0 and kind == 0:
            return  # end of data (zero fill)
        start = pos + _CHUNK_HEADER.size
        if start + length > size:
            return  # truncated payload at the tail
        payload = data[start : start + length]
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            raise WandbFileError(f"{path}: checksum mismatch in the chunk at byte {pos}")
        if kind not in (_FULL, _FIRST, _MIDDLE, _LAST):
            raise WandbFileError(f"{path}: unknown chunk type {kind} at byte {pos}")
        yield pos, kind, payload
        pos = start + length


def _payloads(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if len(data) < _FILE_HEADER.size:
        raise WandbFileError(f"{path}: too short for a .wandb file ({len(data)} bytes)")
    ident, magic, _version = _FILE_HEADER.unpack_from(data, 0)
    if ident != _IDENT or magic != _MAGIC:
        raise WandbFileError(f"{path}: not a .wandb file (header {data[:7]!r})")
    pending: bytearray | None = None
    for pos, kind, payload in _chunks(data, path):
        if kind == _FULL:
            pending = None
            yield payload
        elif kind == _FIRST:
            pending = bytearray(payload)
        elif pending is None:
            raise WandbFileError(f"{path}: continuation chunk without a first chunk at byte {pos}")
        elif kind == _MIDDLE:
            pending += payload
        else:  # _LAST
            yield bytes(pending + payload)
            pending = None


def iter_records(path: str | Path) -> Iterator[Any]:
    """The ``wandb_internal_pb2.Record`` messages of a ``.wandb`` file, in order (for debugging)."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    for payload in _payloads(path):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except DecodeError as err:
            raise WandbFileError(f"{path}: a record does not parse as wandb Record: {err}") from err
        yield record


def _json(text: str, path: Path, key: Any) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise WandbFileError(f"{path}: bad JSON value for {key!r}: {text[:80]!r}") from err


def _item_path(item: Any) -> list[str]:
    return list(item.nested_key) if len(item.nested_key) else [item.key]


def _set_path(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value


def _remove_path(target: dict[str, Any], keys: list[str]) -> None:
    for key in keys[:-1]:
        target = target.get(key)
        if not isinstance(target, dict):
            return
    target.pop(keys[-1], None)


def _apply_update(target: dict[str, Any], record: Any, path: Path) -> None:
    """Apply a ConfigRecord or SummaryRecord (``update`` / ``remove`` items) to ``target``."""
    for item in record.update:
        keys = _item_path(item)
        _set_path(target, keys, _json(item.value_json, path, keys))
    for item in record.remove:
        _remove_path(target, _item_path(item))


def _history_value(item: Any, path: Path) -> Any:
    if item.value_json:
        return _json(item.value_json, path, _item_path(item))
    kind = item.WhichOneof("value")
    if kind is None or kind == "none":
        return None
    if kind == "json":
        return _json(item.json, path, _item_path(item))
    return getattr(item, kind)


def read_wandb_file(path: str | Path) -> WandbRun:
    """Parse a ``run-<id>.wandb`` file into config, history rows (each with ``_step``), summary and exit code.

    A run that is still being written (or was killed) is read up to its last complete record; its
    ``exit_code`` is ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"W&B run file not found: {path}")
    run = WandbRun(run_id="", project="", config={}, history=[], summary={}, exit_code=None, path=path)
    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                row[".".join(_item_path(item))] = _history_value(item, path)
            if "_step" not in row and record.history.HasField("step"):
                row["_step"] = record.history.step.num
            run.history.append(row)
        elif kind == "summary":
            _apply_update(run.summary, record.summary, path)
        elif kind == "config":
            _apply_update(run.config, record.config, path)
        elif kind == "run":
            info = record.run
            run.run_id = info.run_id or run.run_id
            run.project = info.project or run.project
            run.entity = info.entity or run.entity
            run.group = info.run_group or run.group
            run.name = info.display_name or run.name
            run.tags = list(info.tags) or run.tags
            _apply_update(run.config, info.config, path)
            _apply_update(run.summary, info.summary, path)
        elif kind == "exit":
            run.exit_code = int(record.exit.exit_code)
    run.config.pop(_INTERNAL_KEY, None)
    run.summary.pop(_INTERNAL_KEY, None)
    return run


def _row_step(row: dict[str, Any]) -> Any:
    """The trainer step of a history row (Lightning logs ``trainer/global_step``), else W&B's ``_step``."""
    step = row.get(TRAINER_STEP)
    return step if isinstance(step, int | float) else row.get("_step")


def _metric_keys(row: dict[str, Any]) -> list[str]:
    return [key for key in row if not key.startswith("_") and key != TRAINER_STEP]


def merge_wandb_runs(runs: list[WandbRun]) -> WandbRun:
    """Combine the files of one resumed run (oldest first) into one :class:`WandbRun`.

    Config and summary are applied in order. History rows are kept in file order, and a value a later
    file logged for the same (step, metric) replaces the earlier one: a resume replays the steps after its
    checkpoint (ProFace Lab's own resumes skip what was already logged, so nothing overlaps). The step is
    ``trainer/global_step`` when a row has it (an offline resume restarts W&B's ``_step`` at 0), else
    ``_step``. Run id, exit code etc. come from the last file.
    """
    if not runs:
        raise ValueError("merge_wandb_runs needs at least one WandbRun")
    last = runs[-1]
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    for run in runs:
        config.update(run.config)
        summary.update(run.summary)
        logged = {(_row_step(row), key) for row in run.history for key in _metric_keys(row)}
        kept = []
        for row in history:
            step = _row_step(row)
            trimmed = {k: v for k, v in row.items() if k not in _metric_keys(row) or (step, k) not in logged}
            if _metric_keys(trimmed):
                kept.append(trimmed)
        history = kept + list(run.history)
    return WandbRun(
        run_id=last.run_id,
        project=last.project,
        config=config,
        history=history,
        summary=summary,
        exit_code=last.exit_code,
        path=last.path,
        entity=last.entity,
        group=last.group,
        name=last.name,
        tags=list(last.tags),
    )
