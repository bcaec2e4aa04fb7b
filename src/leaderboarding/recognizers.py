"""The leaderboard panel's face recognizers: built from a panel spec, embedding faces of any size, and the
rule that keeps a method from being judged by a recognizer it was trained against.

A panel spec (one entry of the panel YAML's ``recognizers:`` list) names either a zoo recognizer with its
published weights (``{name: dlib_resnet, zoo: dlib_resnet}``; weights from the weights manifest, or
``weights: manifest:<entry>`` / a path) or a training run's checkpoint (``{name: demo_arcface, checkpoint:
<path>}``; the network is rebuilt by :func:`src.utils.checkpoints.load_network`, which only builds registered
targets from the checkpoint's embedded config). A panel recognizer is never built with random weights.

Missing weights (or a missing checkpoint) raise :class:`RecognizerUnavailable` with the manifest's own
message (the file, where to put it, how to get it), so the leaderboard lists the recognizer as unavailable
rather than dropping it silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.networks.recognizers import RECOGNIZERS, build_recognizer, pretrained_recognizer
from src.utils.checkpoints import load_network
from src.weights import WeightsError, load_manifest, resolve, sha256_file
from src.weights.core import MANIFEST_PREFIX

__all__ = [
    "DEFAULT_ATTRIBUTE",
    "SPEC_KEYS",
    "ZOO_WEIGHTS",
    "PanelRecognizer",
    "RecognizerUnavailable",
    "ZooWeights",
    "build_panel_recognizer",
    "network_embeddings",
    "used_in_training",
]

#: the attribute under which recognizer-training modules keep their embedding network (``model.net``), the
#: default ``attribute`` of a checkpoint spec
DEFAULT_ATTRIBUTE = "net"
#: every key a panel recognizer spec may have
SPEC_KEYS = ("name", "zoo", "weights", "format", "options", "checkpoint", "attribute")
_ZOO_ONLY = ("weights", "format", "options")
_CHECKPOINT_ONLY = ("attribute",)
#: files up to this size are compared by sha256 (a cheap read); larger ones by file name and size
CHEAP_HASH_BYTES = 512 * 1024 * 1024


class RecognizerUnavailable(ValueError):  # noqa: N818 (the leaderboard's name for the state)
    """A panel recognizer whose weights (or checkpoint) are not on this machine; the message says which file
    is missing and where to put it."""


@dataclass(frozen=True)
class ZooWeights:
    """The published weights of a zoo recognizer: a ``manifest:<entry>`` spec, and whether the network's
    constructor loads them by itself when a config gives no weights (``implicit``)."""

    spec: str
    implicit: bool = False


#: default weights of the zoo recognizers a panel may name without ``weights:`` (shared manifest entries)
ZOO_WEIGHTS: dict[str, ZooWeights] = {
    "dlib_resnet": ZooWeights("manifest:dlib-face-recognition-resnet", implicit=True),
    "facenet_vggface2": ZooWeights("manifest:facenet-vggface2"),
    "ir_se50": ZooWeights("manifest:treb1en-ir-se50"),
}


# ---------------------------------------------------------------------------------------------- embedding


def _input_size(network: nn.Module) -> tuple[int, int] | None:
    size = getattr(network, "input_size", None)
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def network_embeddings(network: nn.Module, images: Tensor) -> Tensor:
    """Raw (un-normalised, differentiable) embeddings of ``[N, 3, H, W]`` images in [0, 1] of any size.

    A zoo :class:`~src.networks.recognizers.FaceRecognizer` resizes and normalises through its own
    ``preprocess``; a plain network with an ``input_size`` (a training run's backbone, which normalises
    internally) gets its input resized the same way (bilinear, antialiased) and is called directly.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected [N, 3, H, W] images, got {tuple(images.shape)}")
    preprocess = getattr(network, "preprocess", None)
    forward_features = getattr(network, "forward_features", None)
    if callable(preprocess) and callable(forward_features):
        return forward_features(preprocess(images, resize=True))
    size = _input_size(network)
    if size is not None and tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    return network(images)


def _device_of(network: nn.Module) -> torch.device:
    parameter = next(network.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@dataclass
class PanelRecognizer:
    """A frozen recognizer of the panel: its display ``name``, the ``network`` and where it came from.

    ``source``: ``kind`` (``zoo`` / ``checkpoint``), the zoo name or checkpoint path, the weights file,
    the manifest entry, the file's size and sha256 where known (what :func:`used_in_training` compares).
    """

    name: str
    network: nn.Module
    source: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def embed(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """L2-normalised float32 embeddings ``[N, D]`` of ``[N, 3, H, W]`` images in [0, 1] of any size."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{self.name}: expected [N, 3, H, W] images, got {tuple(images.shape)}")
        if batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.network.eval()
        device = _device_of(self.network)
        chunks = [
            network_embeddings(self.network, images[start : start + batch_size].to(device, torch.float32))
            for start in range(0, images.shape[0], batch_size)
        ]
        if not chunks:
            raise ValueError(f"{self.name}: no images to embed")
        return F.normalize(torch.cat(chunks).float(), dim=1).to(images.device)


# ------------------------------------------------------------------------------------------------ building


def _check_spec(spec: Mapping[str, Any]) -> str:
    """Validate the spec's keys; return its name."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a panel recognizer spec must be a mapping, got {type(spec).__name__}: {spec!r}")
    unknown = sorted(str(key) for key in spec if key not in SPEC_KEYS)
    if unknown:
        raise ValueError(
            f"panel recognizer spec {dict(spec)!r}: unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(SPEC_KEYS)})"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"panel recognizer spec {dict(spec)!r}: key 'name' must be a non-empty string")
    has_zoo, has_checkpoint = spec.get("zoo") is not None, spec.get("checkpoint") is not None
    if has_zoo == has_checkpoint:
        which = "both" if has_zoo else "neither"
        raise ValueError(
            f"panel recognizer '{name}': give exactly one of the keys 'zoo' and 'checkpoint' (got {which})"
        )
    wrong = _CHECKPOINT_ONLY if has_zoo else _ZOO_ONLY
    misplaced = [key for key in wrong if key in spec]
    if misplaced:
        kind = "zoo" if has_zoo else "checkpoint"
        raise ValueError(
            f"panel recognizer '{name}': key(s) {', '.join(misplaced)} do not apply to a {kind} spec"
        )
    return name


def _file_facts(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    return {"size_bytes": size, "sha256": sha256_file(path) if size <= CHEAP_HASH_BYTES else None}


def _resolve_weights(name: str, weights: str | Path) -> tuple[Path, str | None]:
    """The weights file of a zoo spec and its manifest entry (None for a plain path)."""
    text = str(weights)
    if text.startswith(MANIFEST_PREFIX):
        entry = text.removeprefix(MANIFEST_PREFIX)
        try:
            return resolve(entry), entry
        except WeightsError as exc:
            raise RecognizerUnavailable(f"panel recognizer '{name}' is unavailable: {exc}") from exc
    path = Path(text).expanduser()
    if not path.is_file():
        raise RecognizerUnavailable(
            f"panel recognizer '{name}' is unavailable: weights file not found: {path.resolve()} (put the "
            "file there, or point the spec's 'weights:' at it)"
        )
    return path.resolve(), None


def _build_zoo(name: str, spec: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    zoo = spec["zoo"]
    if not isinstance(zoo, str) or zoo not in RECOGNIZERS:
        raise ValueError(
            f"panel recognizer '{name}': key 'zoo' names no zoo recognizer ({zoo!r}); known: "
            f"{', '.join(sorted(RECOGNIZERS))}"
        )
    options = spec.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"panel recognizer '{name}': key 'options' must be a mapping, got {options!r}")
    weights = spec.get("weights")
    default = ZOO_WEIGHTS.get(zoo)
    if weights is None:
        if default is None:
            raise ValueError(
                f"panel recognizer '{name}': zoo recognizer '{zoo}' has no default weights; give key "
                f"'weights' (manifest:<entry> or a file; zoo names with defaults: {', '.join(ZOO_WEIGHTS)})"
            )
        weights = default.spec
    path, entry = _resolve_weights(name, weights)
    factory = RECOGNIZERS[zoo]
    try:
        takes_path = "path" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_path = False
    if takes_path:  # a network that reads its weights file itself (e.g. a dlib .dat)
        if spec.get("format") is not None:
            raise ValueError(f"panel recognizer '{name}': key 'format' does not apply to zoo '{zoo}'")
        network = build_recognizer(zoo, path=path, **options)
        freeze = getattr(network, "freeze", None)
        network = freeze() if callable(freeze) else network.eval().requires_grad_(False)
    else:
        network = pretrained_recognizer(zoo, str(path), format=spec.get("format"), **options)
    source: dict[str, Any] = {"kind": "zoo", "zoo": zoo, "weights": str(path), "manifest": entry}
    source["default_weights"] = default is not None and _same_default(path, entry, default)
    source["implicit_default"] = bool(default is not None and default.implicit and source["default_weights"])
    known = load_manifest().get(entry) if entry is not None else None
    if known is not None and known.sha256_complete:  # resolve() verified the file against it
        facts = {"size_bytes": path.stat().st_size, "sha256": known.sha256}
    else:
        facts = _file_facts(path)
    return network, {**source, **facts}


def _same_default(path: Path, entry: str | None, default: ZooWeights) -> bool:
    default_entry = default.spec.removeprefix(MANIFEST_PREFIX)
    if entry is not None:
        return entry == default_entry
    try:
        return resolve(default_entry).resolve() == path.resolve()
    except WeightsError:
        return False


def _build_checkpoint(name: str, spec: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    attribute = spec.get("attribute", DEFAULT_ATTRIBUTE)
    if not isinstance(attribute, str) or not attribute:
        raise ValueError(f"panel recognizer '{name}': key 'attribute' must be a non-empty string")
    path = Path(str(spec["checkpoint"])).expanduser().resolve()
    if not path.is_file():
        raise RecognizerUnavailable(
            f"panel recognizer '{name}' is unavailable: checkpoint not found: {path} (train the run that "
            "writes it, or point the spec's 'checkpoint:' at an existing file)"
        )
    network = load_network(path, attribute, freeze=True)
    source = {"kind": "checkpoint", "checkpoint": str(path), "attribute": attribute, "weights": str(path)}
    return network, {**source, **_file_facts(path)}


def build_panel_recognizer(spec: Mapping[str, Any], device: str | torch.device = "cpu") -> PanelRecognizer:
    """Build one panel recognizer from its spec (see the module docstring), frozen, on ``device``.

    Raises ``ValueError`` naming the offending key for a malformed spec and :class:`RecognizerUnavailable`
    when the weights file or checkpoint is not on this machine.
    """
    name = _check_spec(spec)
    network, source = _build_zoo(name, spec) if spec.get("zoo") is not None else _build_checkpoint(name, spec)
    network = network.to(device).eval().requires_grad_(False)
    return PanelRecognizer(name=name, network=network, source=source)


# ------------------------------------------------------------------------------------- used in training


#: model-config keys holding recognizers that only judge a method's outputs at test time (they never shape
#: its training, so they may sit on the panel): e.g. ``model.evaluators.<name>``, ``model.judges.<name>``
EVALUATION_ONLY_KEYS = frozenset({"evaluators", "judges"})


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` for ``node`` and every node under it (depth first, in order), evaluation-only
    sections (:data:`EVALUATION_ONLY_KEYS`) left out."""
    yield where, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key not in EVALUATION_ONLY_KEYS:
                yield from _walk(value, f"{where}.{key}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}[{index}]")


class _FileMatcher:
    """Decides whether a config string refers to the panel recognizer's weights file (see
    :func:`used_in_training` for the rule); hashes each candidate file at most once."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        self.path = Path(source["weights"]).resolve() if source.get("weights") else None
        self.manifest = source.get("manifest")
        self.size = source.get("size_bytes")
        self._hashes: dict[Path, str | None] = {}
        self.sha256 = source.get("sha256")
        if self.sha256 is None and self.path is not None and self.path.is_file():
            self.sha256 = self._hash(self.path)  # None when too large to hash cheaply

    def _hash(self, path: Path) -> str | None:
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path) if path.stat().st_size <= CHEAP_HASH_BYTES else None
        return self._hashes[path]

    def matches(self, value: str) -> bool:
        if self.path is None or not value or "\n" in value or len(value) > 4096:
            return False
        if value.startswith(MANIFEST_PREFIX):
            entry = value.removeprefix(MANIFEST_PREFIX)
            if self.manifest is not None and entry == self.manifest:
                return True
            try:
                return self._same_file(resolve(entry))
            except WeightsError:
                return False
        try:
            return self._same_file(Path(value).expanduser())
        except (OSError, ValueError):
            return False

    def _same_file(self, candidate: Path) -> bool:
        assert self.path is not None
        if candidate.is_file():
            resolved = candidate.resolve()
            if resolved == self.path:
                return True
            size = resolved.stat().st_size
            if self.size is None or size != self.size:
                return False
            theirs = self._hash(resolved) if self.sha256 is not None else None
            if self.sha256 is not None and theirs is not None:
                return bool(self.sha256 == theirs)
            return resolved.name == self.path.name  # too large to hash cheaply: name and size
        # not on this machine (a config from elsewhere): the same file name in the same two folders
        parts = candidate.parts
        return len(parts) >= 3 and parts[-3:] == self.path.parts[-3:]


def _names_zoo(mapping: Mapping[str, Any], zoo: str) -> str | None:
    """The key under which ``mapping`` names zoo recognizer ``zoo`` (``name`` or ``*_name``), if any."""
    for key, value in mapping.items():
        if (key == "name" or str(key).endswith("_name")) and value == zoo:
            return str(key)
    return None


def _gives_weights(mapping: Mapping[str, Any]) -> bool:
    """Whether ``mapping`` sets any weights-like key (``weights``, ``path``, ``checkpoint`` or ``*_weights``,
    ``*_path``, ``*_ckpt``) to a value."""
    suffixes = ("weights", "path", "ckpt", "checkpoint")
    return any(str(key).endswith(suffixes) and value is not None for key, value in mapping.items())


def used_in_training(recognizer: PanelRecognizer, method_config: Mapping[str, Any]) -> str | None:
    """Why ``recognizer`` must not judge a method trained with ``method_config``, or None when it may.

    ``method_config`` is the method's training config (a checkpoint's embedded config, a nested dict); its
    ``model`` section is searched (the whole mapping when it has no ``model`` key), at any depth. The
    recognizer counts as used in training when

    1. any string value there refers to the recognizer's weights file (the checkpoint of a checkpoint
       recognizer, the weights file of a zoo one): ``manifest:<entry>`` naming the same manifest entry (or
       resolving to the same file), or a path to the same file — the same resolved path, or a file of the
       same size with the same sha256 (same size and file name when it is too large to hash cheaply); a path
       that does not exist on this machine matches when its last three components (file name and two
       folders) equal the weights file's; or
    2. a mapping names the recognizer's zoo name (under ``name`` or a ``*_name`` key) without giving any
       weights (no non-null ``weights``/``path``/``checkpoint``/``*_weights``/``*_path``/``*_ckpt`` key), the
       zoo network loads its published weights by itself when given none (``ZooWeights.implicit``), and
       the panel uses exactly those weights.

    The same zoo architecture with other (or random) weights is a different recognizer and does not count;
    recognizers under an evaluation-only key (:data:`EVALUATION_ONLY_KEYS`: test-time judges) do not count.
    """
    if not isinstance(method_config, Mapping):
        raise ValueError(f"method_config must be a mapping, got {type(method_config).__name__}")
    model = method_config.get("model")
    root, where = (model, "model") if isinstance(model, Mapping) else (method_config, "config")
    source = recognizer.source
    matcher = _FileMatcher(source)
    zoo = source.get("zoo") if source.get("kind") == "zoo" else None
    for key, value in _walk(root, where):
        if isinstance(value, str) and matcher.matches(value):
            return f"the method's training config uses {recognizer.name}'s weights file at {key} ({value})"
        if zoo is not None and source.get("implicit_default") and isinstance(value, Mapping):
            named = _names_zoo(value, zoo)
            if named is not None and not _gives_weights(value):
                return (
                    f"the method's training config builds zoo recognizer '{zoo}' at {key} (key {named!r}) "
                    f"with its default weights, the ones {recognizer.name} uses ({source.get('weights')})"
                )
    return None
