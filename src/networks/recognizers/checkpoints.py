"""Loading published recognizer checkpoints into the zoo's own modules through explicit key mappings.

Each zoo recognizer names its parameters its own way and declares, per published checkpoint format, a
:class:`KeyMapping`: a function from the published key to ours (``None`` = a key that is not part of the
recognizer, such as a classification head, and is dropped) and its inverse. Loading then

1. checks the file's sha256 when one is pinned (a mismatch refuses to load and names both checksums);
2. reads it with ``torch.load(weights_only=True)`` (no arbitrary pickles);
3. unwraps common containers (``state_dict``, ``model``, ``net_state_dict`` (wujiyang/Face_Pytorch's
   ``{'iters': ..., 'net_state_dict': ...}`` ``Iter_*_net.ckpt``), ... and wrapper prefixes such as
   ``module.`` (DataParallel), ``model.`` (AdaFace's Lightning checkpoints), ``_orig_mod.``
   (``torch.compile``)) — a prefix is stripped only when that makes more keys map onto the model;
4. maps the keys and loads strictly: any missing key, unexpected key or shape mismatch raises a
   ``ValueError`` listing them (published names, first few of each, with counts) and the format tried.

``num_batches_tracked`` buffers absent from a checkpoint (files written before PyTorch 0.4.1, such as
facenet-pytorch's converted weights) are tolerated: they never affect an eval-mode forward pass.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

NATIVE = "native"
CONTAINER_KEYS = ("state_dict", "model_state_dict", "net_state_dict", "model", "net", "backbone", "module")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.", "backbone.")
SHOWN = 10


class ChecksumMismatchError(ValueError):
    """A checkpoint's sha256 differs from the pinned one: the file is refused."""


@dataclass(frozen=True)
class KeyMapping:
    """One published checkpoint format of one architecture.

    ``to_ours`` maps a published key to our parameter/buffer name (``None``: not part of the recognizer,
    dropped on load); keys no rule covers come back unchanged and are then reported as unexpected.
    ``to_theirs`` maps our name to the published one (used to export, and in error messages).
    """

    format: str
    to_ours: Callable[[str], str | None]
    to_theirs: Callable[[str], str]
    source: str


def native_mapping() -> KeyMapping:
    """Our own key names (a state dict saved from the zoo module itself)."""
    return KeyMapping(NATIVE, lambda key: key, lambda key: key, "ProFace Lab zoo module state_dict")


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_recognizer_checkpoint` did (for run records)."""

    path: str
    format: str
    sha256: str
    containers: tuple[str, ...] = ()
    stripped_prefixes: tuple[str, ...] = ()
    dropped_keys: tuple[str, ...] = ()
    filled_keys: tuple[str, ...] = field(default=(), repr=False)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, Tensor) for v in obj.values())


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """The tensor dict inside common checkpoint containers, and the container keys descended through."""
    path: list[str] = []
    while not _is_state_dict(obj):
        if not isinstance(obj, Mapping):
            raise ValueError(
                f"{source}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
                + (f" under {'/'.join(path)}" if path else "")
            )
        for key in CONTAINER_KEYS:
            if isinstance(obj.get(key), Mapping):
                path.append(key)
                obj = obj[key]
                break
        else:
            shown = ", ".join(map(str, list(obj)[:SHOWN]))
            raise ValueError(
                f"{source}: no state dict found under {'/'.join(path) or 'the top level'} "
                f"(keys: {shown}; looked for {', '.join(CONTAINER_KEYS)})"
            )
    return dict(obj), tuple(path)


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """Read a ``.pth``/``.pt``/``.ckpt`` file safely and unwrap it to a flat tensor dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recognizer checkpoint not found: {path}")
    try:
        # argparse.Namespace is a plain attribute bag that Lightning checkpoints keep in hyper_parameters
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        culprit = [line for line in lines if "Unsupported global" in line or "Unsupported operand" in line]
        detail = (culprit or lines or [type(exc).__name__])[0][:300]
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: {detail}). "
            "Pickled whole modules must be converted once, in a trusted environment, with "
            "torch.save(module.state_dict(), new_path)."
        ) from exc
    return unwrap_state_dict(obj, str(path))


def _match_count(state: Mapping[str, Tensor], mapping: KeyMapping, model_keys: set[str]) -> int:
    return sum(1 for key in state if mapping.to_ours(key) in model_keys)


def strip_wrapper_prefixes(
    state: dict[str, Tensor], mapping: KeyMapping, model_keys: set[str]
) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """Strip wrapper prefixes (``module.``, ``model.``, ...) while doing so maps more keys onto the model."""
    stripped: list[str] = []
    best = _match_count(state, mapping, model_keys)
    while True:
        choice: tuple[int, str, dict[str, Tensor]] | None = None
        for prefix in WRAPPER_PREFIXES:
            if not any(key.startswith(prefix) for key in state):
                continue
            candidate = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}
            if len(candidate) != len(state):  # stripping would merge two keys: not a wrapper prefix
                continue
            score = _match_count(candidate, mapping, model_keys)
            if score > best and (choice is None or score > choice[0]):
                choice = (score, prefix, candidate)
        if choice is None:
            return state, tuple(stripped)
        best, prefix, state = choice
        stripped.append(prefix)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    more = f", ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return f"{shown}{more}"


def convert_state_dict(
    model: nn.Module, state: Mapping[str, Tensor], mapping: KeyMapping, source: str = "checkpoint"
) -> tuple[dict[str, Tensor], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Published state dict → ours, strictly.

    Returns the converted dict, the stripped wrapper prefixes, the dropped keys and the filled
    ``num_batches_tracked`` keys; raises ``ValueError`` naming missing/unexpected keys and shape mismatches.
    """
    own = model.state_dict()
    state, stripped = strip_wrapper_prefixes(dict(state), mapping, set(own))
    converted: dict[str, Tensor] = {}
    unexpected: list[str] = []
    dropped: list[str] = []
    mismatched: list[str] = []
    mismatched_ours: set[str] = set()
    for key, value in state.items():
        ours = mapping.to_ours(key)
        if ours is None:
            dropped.append(key)
        elif ours not in own or ours in converted:  # unknown, or a second key for the same parameter
            unexpected.append(key)
        elif tuple(value.shape) != tuple(own[ours].shape):
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[ours].shape)}")
            mismatched_ours.add(ours)
        else:
            converted[ours] = value
    missing, filled = [], []
    for key in own:
        if key in converted or key in mismatched_ours:  # shape mismatches are reported apart
            continue
        if key.endswith("num_batches_tracked"):
            converted[key] = own[key].clone()
            filled.append(key)
        else:
            missing.append(mapping.to_theirs(key))
    if missing or unexpected or mismatched:
        formats = getattr(model, "checkpoint_formats", None)
        parts = [
            f"cannot load {source} into {type(model).__name__} as format '{mapping.format}' "
            f"({mapping.source})"
        ]
        if missing:
            parts.append(f"{len(missing)} missing keys ({mapping.format} names): {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (checkpoint vs model): {_listing(mismatched)}")
        hint = "a checkpoint for another architecture, depth or width, or another format?"
        if formats:
            hint += f" Formats for {type(model).__name__}: {', '.join(formats)}"
        parts.append(hint)
        raise ValueError("; ".join(parts))
    return converted, stripped, tuple(dropped), tuple(filled)


def key_mapping_for(model: nn.Module, format: str | None) -> KeyMapping:
    """The model's mapping for ``format`` (its first declared format when ``None``)."""
    if format is None:
        formats = getattr(model, "checkpoint_formats", (NATIVE,))
        format = formats[0]
    if format == NATIVE:
        return native_mapping()
    get = getattr(model, "key_mapping", None)
    if get is None:
        raise ValueError(
            f"{type(model).__name__} declares no checkpoint formats; only '{NATIVE}' is available"
        )
    return get(format)


def load_recognizer_checkpoint(
    model: nn.Module, path: str | Path, format: str | None = None, sha256: str | None = None
) -> LoadReport:
    """Load a checkpoint in a published ``format`` into ``model`` (strict); see the module docstring.

    ``format`` defaults to the model's first declared format (``model.checkpoint_formats``); ``"native"``
    means our own key names. ``sha256`` (hex) pins the file: a mismatch raises
    :class:`ChecksumMismatchError` before anything is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recognizer checkpoint not found: {path}")
    mapping = key_mapping_for(model, format)
    actual = sha256_file(path)
    if sha256 is not None and actual.lower() != sha256.strip().lower():
        raise ChecksumMismatchError(
            f"refusing to load {path}: sha256 is {actual}, expected {sha256.strip().lower()}"
        )
    state, containers = read_checkpoint(path)
    converted, stripped, dropped, filled = convert_state_dict(model, state, mapping, str(path))
    model.load_state_dict(converted, strict=True)
    return LoadReport(str(path), mapping.format, actual, containers, stripped, dropped, filled)


def to_published_state_dict(model: nn.Module, format: str) -> dict[str, Tensor]:
    """Our state dict renamed into a published format (export, and building test checkpoints)."""
    mapping = key_mapping_for(model, format)
    return {mapping.to_theirs(key): value.detach().clone() for key, value in model.state_dict().items()}
