"""Loading the original FaceShield checkpoints into this package's networks, key by key.

Our module names equal the original's for the decoder (``UnetDecoder512``), the generator (``AII512``) and
the multiscale discriminator; they differ for the rest (documented in
``docs/papers/faceshield.md``, "Key mapping"):

==========================================  ============================================================
original key                                ours
==========================================  ============================================================
SE ``iba_{i}.conv{1,2,3}.*``                ``layers.{i}.conv{1,2,3}.*``
SE ``iba_{i}.gaussin.conv.weight``          ``layers.{i}.smooth.weight`` (fixed kernel, a buffer)
``readout_layer{i}.pth`` (m, s, …)          ``readout.layers.{i}.{mean,std,active}`` (derived, see readout)
IID ``backbone.adjust_channel.*``           ``adjust_channel.*``
IID ``backbone.last_linear.*``              ``last_linear.*``
IID ``backbone.<xception>``                 ``backbone.<xception>`` (timm ``legacy_xception``: same names)
ImageNet Xception ``<name>``                IID ``backbone.<name>``; ``fc.*`` dropped; 2-D ``pointwise``
                                            weights get their two trailing 1×1 dimensions
Encoder ``input_layer``/``body``/           ``net.`` + the zoo's ``infoswap`` mapping (``stem``, ``stages``,
``output_layer128``                         ``head``); FaceShield's duplicate head copies
                                            (``batch_norm2d``, ``linear``, ``batch_norm1d``) are dropped
==========================================  ============================================================

Every loader reads with ``torch.load(weights_only=True)``, descends into the part of a training
checkpoint it needs (``{'se': …, 'G': …, 'decoder': …, 'discriminator': …, 'iid_discriminator': …}``),
strips DDP's ``module.`` prefix, maps the keys and loads strictly: a missing or unexpected key or a shape
mismatch raises ``ValueError`` naming the keys and the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from src.networks.recognizers.checkpoints import KeyMapping, LoadReport, convert_state_dict
from src.networks.recognizers.irse import INFOSWAP
from src.papers.faceshield.networks import (
    AII512,
    FaceShieldEncoder,
    FaceShieldSE,
    IIDDiscriminator,
    MultiscaleDiscriminator,
    ReadoutStatistics,
    UnetDecoder512,
)
from src.weights import resolve

#: FaceShield's ``Backbone128`` duplicates its head under these names (copies of ``output_layer128``).
ENCODER_DUPLICATES = ("batch_norm2d.", "linear.", "batch_norm1d.")
#: Where each network sits inside an original training checkpoint.
CHECKPOINT_PARTS = {
    "se": "se",
    "generator": "G",
    "decoder": "decoder",
    "discriminator": "discriminator",
    "iid": "iid_discriminator",
}
#: Original ``SELayer`` key tails that we name differently (the rest, ``conv{1,2,3}.*``, are equal).
SE_RENAMES = {"gaussin.conv.weight": "smooth.weight"}
#: IID heads the original keeps inside its Xception (``backbone.``) and we keep beside it.
IID_HEADS = ("adjust_channel.", "last_linear.")
_SE_THEIRS = re.compile(r"^iba_(\d+)\.(.+)$")
_SE_OURS = re.compile(r"^(\d+)\.(.+)$")


def same_names(source: str) -> KeyMapping:
    """Keys equal on both sides (decoder, generator, multiscale discriminator)."""
    return KeyMapping("faceshield", lambda key: key, lambda key: key, source)


def se_layers_mapping() -> KeyMapping:
    """Original SE keys ``iba_{i}.<tail>`` → ``FaceShieldSE.layers`` keys ``{i}.<tail>`` (tails renamed)."""
    inverse = {ours: theirs for theirs, ours in SE_RENAMES.items()}

    def to_ours(key: str) -> str:
        match = _SE_THEIRS.match(key)
        return key if match is None else f"{match[1]}.{SE_RENAMES.get(match[2], match[2])}"

    def to_theirs(key: str) -> str:
        match = _SE_OURS.match(key)
        return key if match is None else f"iba_{match[1]}.{inverse.get(match[2], match[2])}"

    return KeyMapping("faceshield-se", to_ours, to_theirs, "FaceShield modules/se.py SE state_dict")


def iid_mapping() -> KeyMapping:
    """Original ``IIDDetector`` keys → ours: the two heads leave ``backbone.``; Xception names are equal."""

    def to_ours(key: str) -> str:
        tail = key.removeprefix("backbone.")
        return tail if tail.startswith(IID_HEADS) else key

    def to_theirs(key: str) -> str:
        return f"backbone.{key}" if key.startswith(IID_HEADS) else key

    return KeyMapping(
        "faceshield-iid", to_ours, to_theirs, "FaceShield modules/iid_deterctor.py IIDDetector state_dict"
    )


def encoder_mapping(encoder: FaceShieldEncoder) -> KeyMapping:
    """Original ``Backbone128`` keys → ours (``net.`` + the zoo's InfoSwap mapping; duplicates dropped)."""
    zoo = encoder.net.key_mapping(INFOSWAP)

    def to_ours(key: str) -> str | None:
        if key.startswith(ENCODER_DUPLICATES):
            return None
        mapped = zoo.to_ours(key)
        return None if mapped is None else f"net.{mapped}"

    return KeyMapping(
        "faceshield-encoder",
        to_ours,
        lambda key: zoo.to_theirs(key.removeprefix("net.")),
        "FaceShield modules/encoder128.py Backbone128 state_dict (model_128_ir_se50.pth)",
    )


def read_state_dict(path: str | Path, part: str | None = None) -> dict[str, Tensor]:
    """A tensor dict from ``path`` (``weights_only``); ``part``: descend into that key when present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FaceShield checkpoint not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if part is not None and isinstance(obj, Mapping) and isinstance(obj.get(part), Mapping):
        obj = obj[part]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:10])) if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path}: no state dict{f' under {part!r}' if part else ''} (found: {keys})")
    return dict(obj)


def load_mapped(
    model: nn.Module, state: Mapping[str, Tensor], mapping: KeyMapping, source: str
) -> LoadReport:
    """Map ``state`` into ``model`` strictly (``ValueError`` naming missing/unexpected/mis-shaped keys).

    The report's ``sha256`` is left empty: files from the manifest are verified by ``src.weights.resolve``.
    """
    converted, stripped, dropped, filled = convert_state_dict(model, state, mapping, source)
    model.load_state_dict(converted, strict=True)
    return LoadReport(source, mapping.format, "", (), stripped, dropped, filled)


def load_readout_statistics(statistics: ReadoutStatistics, paths: Sequence[str | Path]) -> None:
    """Fill the readout statistics from the 11 original ``readout_layer{i}.pth`` files (in layer order)."""
    raws = [read_state_dict(path) for path in paths]
    statistics.load_raw(raws, [str(path) for path in paths])


def load_original_se(
    se: FaceShieldSE, path: str | Path, readout_paths: Sequence[str | Path] | None = None
) -> LoadReport:
    """SE layers from an original checkpoint (its ``se`` part); readout statistics from their 11 files."""
    state = read_state_dict(path, CHECKPOINT_PARTS["se"])
    report = load_mapped(se.layers, state, se_layers_mapping(), str(path))
    if readout_paths is not None:
        load_readout_statistics(se.readout, readout_paths)
    return report


def load_original_encoder(encoder: FaceShieldEncoder, path: str | Path) -> LoadReport:
    """The frozen encoder from ``model_128_ir_se50.pth`` (InfoSwap's or FaceShield's copy)."""
    return load_mapped(encoder, read_state_dict(path), encoder_mapping(encoder), str(path))


def _load_same_names(model: nn.Module, path: str | Path, part: str, source: str) -> LoadReport:
    state = read_state_dict(path, CHECKPOINT_PARTS[part])
    return load_mapped(model, state, same_names(source), str(path))


def load_original_decoder(decoder: UnetDecoder512, path: str | Path) -> LoadReport:
    """``UnetDecoder512`` from a decoder state dict or a training checkpoint's ``decoder`` part."""
    return _load_same_names(decoder, path, "decoder", "FaceShield modules/decoder512.py UnetDecoder512")


def load_original_generator(generator: AII512, path: str | Path) -> LoadReport:
    """``AII512`` from a generator state dict or a training checkpoint's ``G`` part."""
    return _load_same_names(generator, path, "generator", "FaceShield modules/aii_generator.py AII512")


def load_original_discriminator(discriminator: MultiscaleDiscriminator, path: str | Path) -> LoadReport:
    """The multiscale discriminator from a training checkpoint's ``discriminator`` part."""
    return _load_same_names(
        discriminator, path, "discriminator", "FaceShield modules/discriminator.py MultiscaleDiscriminator"
    )


def load_original_iid(iid: IIDDiscriminator, path: str | Path) -> LoadReport:
    """The IID detector from a training checkpoint's ``iid_discriminator`` part (``IIDDetector`` keys)."""
    return load_mapped(iid, read_state_dict(path, CHECKPOINT_PARTS["iid"]), iid_mapping(), str(path))


def imagenet_xception_mapping() -> KeyMapping:
    """ImageNet Xception (Cadene layout, ``xception-b5690688.pth``) → IID backbone keys (``fc`` dropped)."""
    return KeyMapping(
        "xception-imagenet",
        lambda key: None if key.startswith(("fc.", "last_linear.")) else key,
        lambda key: key,
        "Cadene pretrainedmodels Xception ImageNet state_dict (xception-b5690688.pth)",
    )


def load_imagenet_xception(iid: IIDDiscriminator, path: str | Path) -> LoadReport:
    """ImageNet weights into the IID backbone only (the 1×1 projection and ``last_linear`` keep theirs).

    The 2-D ``pointwise`` weights of the Keras-converted file get their 1×1 spatial dimensions. (The
    original meant to do this but prefixed every key with ``backbone.`` before loading into the bare
    Xception with ``strict=False``, so nothing loaded; see ``docs/papers/faceshield.md``.)
    """
    state = {
        key: (value[:, :, None, None] if "pointwise" in key and value.ndim == 2 else value)
        for key, value in read_state_dict(path).items()
    }
    return load_mapped(iid.backbone, state, imagenet_xception_mapping(), str(path))


#: Manifest entries (``src/papers/faceshield/weights.yaml``) of the released files, per network.
RELEASED = {
    FaceShieldSE: "faceshield-se",
    UnetDecoder512: "faceshield-decoder",
    AII512: "faceshield-generator",
    FaceShieldEncoder: "faceshield-encoder128",
    IIDDiscriminator: "xception-imagenet",
}
READOUT_WEIGHTS = tuple(f"faceshield-readout-layer{i}" for i in range(11))
_LOADERS = {
    UnetDecoder512: load_original_decoder,
    AII512: load_original_generator,
    FaceShieldEncoder: load_original_encoder,
    IIDDiscriminator: load_imagenet_xception,
}


def load_released(model: nn.Module, name: str | None = None) -> LoadReport:
    """Load the released weights of ``model`` from the weights manifest (``name``: another entry).

    Files come from :func:`src.weights.resolve`: a missing or unpinned file raises its error, which names
    the file, where to put it and how to pin it. The SE also reads the 11 readout statistics files.
    """
    kind = type(model)
    if kind not in RELEASED:
        raise TypeError(
            f"no released FaceShield weights for {kind.__name__}; known: {[k.__name__ for k in RELEASED]}"
        )
    path = resolve(name or RELEASED[kind])
    if isinstance(model, FaceShieldSE):
        return load_original_se(model, path, [resolve(entry) for entry in READOUT_WEIGHTS])
    return _LOADERS[kind](model, path)
