"""Reading checkpoint files safely, with one-line errors that name the file and what is wrong.

Checkpoints come from other people, so they are only ever read with ``torch.load(weights_only=True)``
(tensors and plain containers; no pickled Python objects, which could run code). A file that cannot be read
is classified *before* ``torch.load`` sees it where possible (empty, a directory, a truncated zip, text, an
image, ...) because torch's own errors for those (``KeyError: 101``, ``EOFError``, a miniz message) never
name the file. A readable checkpoint of another experiment is compared with the model key by key so the
error says which run it came from and what does not fit, instead of a ``load_state_dict`` dump.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

CHECKPOINT_FORMAT = 1
"""Version of the ProFace Lab record, ``checkpoint[RECORD_KEY]["format"]`` (missing: format 1)."""

RECORD_KEY = "proface"
"""Key of the ProFace Lab record in a checkpoint (written by ``src.utils.callbacks.RunRecordCallback``)."""

LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")
SHOWN = 3
"""How many keys of each kind an error message lists."""

# A legacy (pre-zip, PyTorch < 1.6) file starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_ZIP_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 64
_ZIP_ERROR_MARKS = ("PytorchStreamReader", "zip archive", "inline_container", "hasRecord")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line naming the file and the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist (also a ``FileNotFoundError`` for callers that catch that)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a loaded checkpoint is: Lightning or bare state dict, its progress and its ProFace Lab record."""

    is_lightning: bool
    is_state_dict: bool
    tensor_count: int
    lightning_version: str | None = None
    epoch: int | None = None
    global_step: int | None = None
    has_record: bool = False
    experiment: str | None = None
    run_id: str | None = None
    run_dir: str | None = None
    model_target: str | None = None
    format: object = CHECKPOINT_FORMAT
    secrets: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict:
    """Load a checkpoint dict with ``weights_only=True``; every failure is a :class:`CheckpointError`."""
    path = Path(path)
    _check_file(path, mmap=mmap)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} {_load_failure(exc)}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(obj).__name__} at the top level, not a checkpoint dict"
        )
    return obj


def _check_file(path: Path, *, mmap: bool) -> None:
    """Refuse what is not a readable PyTorch file before ``torch.load`` (whose errors do not name it)."""
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file{_dir_hint(path)}")
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint {path} does not exist")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be opened ({exc.strerror or exc})") from exc
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    if head.startswith(_ZIP_MAGIC):
        _check_zip(path, size)
    elif _LEGACY_MAGIC in head[:32]:
        if mmap:
            raise CheckpointError(
                f"checkpoint {path} is a legacy (non-zip, PyTorch < 1.6) file, which cannot be "
                "memory-mapped; re-save it with torch.save in a current PyTorch"
            )
    else:
        raise CheckpointError(f"checkpoint {path} is not a PyTorch checkpoint: {_what_is(head)}")


def _dir_hint(path: Path) -> str:
    """Point at the checkpoint a run directory most likely meant."""
    for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
        if candidate.is_file():
            return f" (did you mean {candidate}?)"
    return ""


def _check_zip(path: Path, size: int) -> None:
    """A torch zip checkpoint has a readable central directory and a ``<name>/data.pkl`` member."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is a truncated or corrupt zip archive ({size} bytes, no readable zip "
            "directory: the copy is probably incomplete)"
        ) from exc
    if not any(name.endswith("/data.pkl") for name in names):
        shown = ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
        raise CheckpointError(
            f"checkpoint {path} is a zip archive but not a PyTorch checkpoint (no data.pkl; holds {shown})"
        )


def _what_is(head: bytes) -> str:
    """Name the kind of file from its first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "it is a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "it is a PNG image"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed (unpack it first)"
    if _is_safetensors(head):
        return "it is a safetensors file (load it through the weights manifest / the network's own loader)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "it is a plain Python pickle without PyTorch's header"
    text = _as_text(head)
    if text is not None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return f"it is a text file (first line {first[:40]!r})"
    return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"


def _is_safetensors(head: bytes) -> bool:
    """A safetensors file: 8-byte little-endian header length, then a JSON object."""
    return len(head) > 9 and head[8:10] in (b'{"', b"{ ") and struct.unpack("<Q", head[:8])[0] < 1 << 30


def _as_text(head: bytes) -> str | None:
    """The bytes as text when they are UTF-8 without control characters (a cut last character is fine)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return None
        text = head[: exc.start].decode("utf-8")
    if any(ord(char) < 32 and char not in "\t\n\r\f" for char in text):
        return None
    return text


def _load_failure(exc: Exception) -> str:
    """Turn what ``torch.load`` raised into the rest of a sentence starting with the file name."""
    message = str(exc)
    if "Weights only load failed" in message or isinstance(exc, pickle.UnpicklingError):
        culprit = re.search(r"GLOBAL ([\w.]+)", message)
        if culprit:
            return (
                f"contains pickled Python objects such as {culprit.group(1)} and is refused because loading "
                "it could run code (only tensors and plain containers are read)"
            )
        return f"has corrupt pickled data ({_detail(message, 'Unsupported operand')})"
    if any(mark in message for mark in _ZIP_ERROR_MARKS):
        return f"is a corrupt PyTorch zip archive ({_detail(message, 'PytorchStreamReader')})"
    if "mmap can only be used" in message:
        return "cannot be memory-mapped (not a zip checkpoint); re-save it with a current torch.save"
    if isinstance(exc, EOFError):
        return "ends unexpectedly (truncated file)"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    return f"cannot be read as a PyTorch checkpoint ({type(exc).__name__}: {_detail(message, '')})"


def _detail(message: str, prefer: str) -> str:
    """The most telling line of a long exception message, shortened."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    chosen = [line for line in lines if prefer and prefer in line] or lines or ["no message"]
    return chosen[0][:200]


def _one_line(text: str) -> str:
    """Collapse newlines and runs of whitespace so a message stays on one line."""
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------- describing


def describe_checkpoint(checkpoint: Mapping[str, Any]) -> CheckpointInfo:
    """Say what a loaded checkpoint dict is, without trusting its structure (it may come from anyone)."""
    state = checkpoint.get("state_dict")
    version = checkpoint.get("pytorch-lightning_version")
    is_lightning = isinstance(state, Mapping) and isinstance(version, str)
    is_state_dict = bool(checkpoint) and all(isinstance(value, Tensor) for value in checkpoint.values())
    record = checkpoint.get(RECORD_KEY)
    record = record if isinstance(record, Mapping) else {}
    return CheckpointInfo(
        is_lightning=is_lightning,
        is_state_dict=is_state_dict,
        tensor_count=_tensor_count(state if is_lightning else checkpoint),
        lightning_version=version if isinstance(version, str) else None,
        epoch=_int_or_none(checkpoint.get("epoch")),
        global_step=_int_or_none(checkpoint.get("global_step")),
        has_record=bool(record),
        experiment=_str_or_none(record.get("experiment")),
        run_id=_str_or_none(record.get("run_id")),
        run_dir=_str_or_none(record.get("run_dir")),
        model_target=_model_target(record.get("config")),
        format=record.get("format", CHECKPOINT_FORMAT),
        secrets=_fingerprints(record.get("secrets")),
    )


def _fingerprints(value: object) -> dict[str, str]:
    """The record's secret fingerprints (key -> fingerprint), keeping only well-formed entries."""
    if not isinstance(value, Mapping):
        return {}
    return {key: item for key, item in value.items() if isinstance(key, str) and isinstance(item, str)}


def _tensor_count(mapping: Mapping[str, Any]) -> int:
    return sum(1 for value in mapping.values() if isinstance(value, Tensor))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _model_target(config: object) -> str | None:
    """``config["model"]["_target_"]`` of the embedded config, when there is one."""
    model = config.get("model") if isinstance(config, Mapping) else None
    return _str_or_none(model.get("_target_")) if isinstance(model, Mapping) else None


def write_weights_checkpoint(module: torch.nn.Module, path: str | Path) -> Path:
    """A Lightning checkpoint holding only ``module``'s weights (epoch 0, no optimiser or callback state):
    what evaluation-only runs load when no trained checkpoint exists (tests, untrained baselines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": module.state_dict(),
        "pytorch-lightning_version": installed_lightning_version(),
        "epoch": 0,
        "global_step": 0,
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    torch.save(checkpoint, path)
    return path


def installed_lightning_version() -> str:
    """The installed pytorch-lightning version (from package metadata: importing Lightning takes seconds)."""
    return importlib.metadata.version("pytorch-lightning")


def check_checkpoint_format(info: CheckpointInfo, path: str | Path) -> None:
    """Refuse a checkpoint written by a newer ProFace Lab or by another major version of Lightning."""
    fmt = info.format
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise CheckpointError(f"checkpoint {path} has an invalid ProFace Lab checkpoint format {fmt!r}")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} was written by a newer ProFace Lab (checkpoint format {fmt}; "
            f"this version reads up to {CHECKPOINT_FORMAT})"
        )
    if info.is_lightning and info.lightning_version is not None:
        _check_lightning_major(info.lightning_version, installed_lightning_version(), path)


def _check_lightning_major(saved: str, installed: str, path: str | Path) -> None:
    """Lightning checkpoints only resume within one major version (a 1.x file cannot resume under 2.x)."""
    saved_major, installed_major = _major(saved), _major(installed)
    if saved_major is None:
        raise CheckpointError(f"checkpoint {path} has an unreadable pytorch-lightning_version {saved!r}")
    if saved_major != installed_major:
        raise CheckpointError(
            f"checkpoint {path} was written by PyTorch Lightning {saved}, but {installed} is installed; "
            f"Lightning cannot resume a {saved_major}.x checkpoint under {installed_major}.x"
        )


def _major(version: str) -> int | None:
    match = re.match(r"\s*v?(\d+)\.", version)
    return int(match.group(1)) if match else None


def open_checkpoint(path: str | Path, *, mmap: bool = False) -> tuple[dict, CheckpointInfo]:
    """Read a Lightning checkpoint and describe it; refuse bare state dicts, other dicts and newer formats."""
    checkpoint = read_checkpoint(path, mmap=mmap)
    info = describe_checkpoint(checkpoint)
    if info.is_state_dict:
        raise CheckpointError(
            f"checkpoint {path} is a bare state dict of {info.tensor_count} tensors, not a Lightning "
            "checkpoint; load it through the weights manifest / the network's own loader instead"
        )
    if not info.is_lightning:
        missing = [repr(key) for key in LIGHTNING_KEYS if key not in checkpoint]
        reason = f"no {' or '.join(missing)}" if missing else "its state_dict or version has the wrong type"
        raise CheckpointError(
            f"checkpoint {path} is not a Lightning checkpoint ({reason}; "
            f"top-level keys: {_shown(list(map(str, checkpoint))) or 'none'})"
        )
    check_checkpoint_format(info, path)
    return checkpoint, info


# --------------------------------------------------------------------------------------------- fitting


def check_state_dict_fits(
    path: str | Path,
    checkpoint_state: Mapping[str, Tensor],
    model_state: Mapping[str, Tensor],
    *,
    strict: bool = True,
    this_experiment: str | None = None,
    this_target: str | None = None,
    info: CheckpointInfo | None = None,
) -> None:
    """Compare keys and shapes as ``load_state_dict`` would; a mismatch names both sides in one line.

    With ``strict=False`` Lightning ignores missing and unexpected keys but still fails on shape mismatches,
    so only those are reported then.
    """
    missing = [key for key in model_state if key not in checkpoint_state]
    unexpected = [key for key in checkpoint_state if key not in model_state]
    mismatched = [
        f"{key}: checkpoint {_shape(checkpoint_state[key])} vs model {_shape(value)}"
        for key, value in model_state.items()
        if key in checkpoint_state and _shape(checkpoint_state[key]) != _shape(value)
    ]
    parts = [] if not strict else [_count(missing, "missing key"), _count(unexpected, "unexpected key")]
    parts = [part for part in [*parts, _count(mismatched, "shape mismatch")] if part]
    if parts:
        raise CheckpointError(
            f"{_checkpoint_side(path, info)} does not fit {_model_side(this_experiment, this_target)}: "
            + ", ".join(parts)
        )


def _shape(value: object) -> list[int] | None:
    shape = getattr(value, "shape", None)
    return list(shape) if shape is not None else None


def _count(items: Sequence[str], noun: str) -> str:
    """``"120 missing keys (a, b, c, ...)"``; empty when there are none."""
    if not items:
        return ""
    plural = noun + ("es" if noun.endswith("h") else "s") if len(items) != 1 else noun
    return f"{len(items)} {plural} ({_shown(items)})"


def _shown(items: Sequence[str]) -> str:
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")


def _checkpoint_side(path: str | Path, info: CheckpointInfo | None) -> str:
    """``checkpoint <path> (experiment <e>, model <target>)`` with what the record tells."""
    known = _labels(info.experiment, info.model_target) if info is not None else ""
    return f"checkpoint {path}" + (f" ({known})" if known else "")


def _model_side(experiment: str | None, target: str | None) -> str:
    if experiment:
        return f"experiment {experiment}" + (f" (model {target})" if target else "")
    return f"model {target}" if target else "this model"


def _labels(experiment: str | None, target: str | None) -> str:
    labels = [f"experiment {experiment}" if experiment else "", f"model {target}" if target else ""]
    return ", ".join(label for label in labels if label)


__all__ = [
    "CHECKPOINT_FORMAT",
    "RECORD_KEY",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "check_checkpoint_format",
    "check_state_dict_fits",
    "describe_checkpoint",
    "installed_lightning_version",
    "open_checkpoint",
    "read_checkpoint",
]
