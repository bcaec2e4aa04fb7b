"""Pretrained-weight registry: a checksummed manifest, offline resolution and an explicit fetch.

``resolve(name)`` returns the verified path of a weight file listed in ``manifest.yaml`` or raises an error
naming the file, its sha256, where to put it and the command that gets it; nothing downloads implicitly.
Files without a published sha256 are refused until pinned locally (``pin``; see :mod:`src.weights.core`).
``resolve_spec`` reads a config value: ``manifest:<name>`` (resolved so) or a path.
CLI: ``python -m src.weights list | verify [NAME ...] | fetch NAME [NAME ...] | pin NAME [--file PATH]``.
"""

from src.weights.core import (
    ChecksumMismatchError,
    MissingWeightsError,
    UnpinnedWeightsError,
    WeightEntry,
    WeightPin,
    WeightsError,
    candidate_paths,
    fetch,
    fetch_command,
    fragment_paths,
    load_manifest,
    load_pins,
    manifest_path,
    manifest_paths,
    pin,
    pin_command,
    pins_path,
    resolve,
    resolve_spec,
    sha256_file,
    torch_hub_checkpoints_dir,
    verify,
    verify_file,
    weights_dir,
)

__all__ = [
    "ChecksumMismatchError",
    "MissingWeightsError",
    "UnpinnedWeightsError",
    "WeightEntry",
    "WeightPin",
    "WeightsError",
    "candidate_paths",
    "fetch",
    "fetch_command",
    "fragment_paths",
    "load_manifest",
    "load_pins",
    "manifest_path",
    "manifest_paths",
    "pin",
    "pin_command",
    "pins_path",
    "resolve",
    "resolve_spec",
    "sha256_file",
    "torch_hub_checkpoints_dir",
    "verify",
    "verify_file",
    "weights_dir",
]
