"""Learned perceptual distances: LPIPS (Zhang et al. 2018) and ST-LPIPS (shift-tolerant, Ghildyal & Liu 2022).

Both are lower-is-better distances computed per image pair (functional forms return ``Tensor[B]``; the
classes average per-image values and are DDP-safe through :class:`~src.metrics.base.PerSampleMeanMetric`).

Input range — handled once, here
--------------------------------
Every constructor and functional takes ``input_range``: ``"[0,1]"`` (the project convention, the default) or
``"[-1,1]"``. The inputs are checked against the declared range (a violation raises ``ValueError`` naming the
observed span) and converted to the ``[-1, 1]`` the networks expect exactly once, before the network; the
network's own ``normalize`` flag is never used. One published protection method trains on ``[-1, 1]`` but was
tested on ``[0, 1]`` images (``docs/metrics.md``, "Perceptual distances"): with an explicit range neither
mistake can happen silently.

Weights — never downloaded, never substituted
---------------------------------------------
* :class:`LPIPS` needs torchvision's ImageNet trunk (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth`` or
  ``squeezenet1_1-b8a52dc0.pth``), which no package ships. It is taken from the weights folder or the torch
  hub cache (``$TORCH_HOME/hub/checkpoints``) through :func:`src.weights.resolve`, which checks its sha256
  against ``src/weights/manifest.yaml``; the network is built with ``pnet_rand=True`` (no download) and the
  trunk loaded from that file with ``weights_only=True``. A missing file raises an error naming the file,
  where it goes, its sha256 and ``python -m src.weights fetch lpips-<net>-backbone``; a wrong file is refused.
  The v0.1 linear heads ship in the ``lpips`` wheel and are verified and loaded the same way.
* ``random_backbone=True`` keeps a **random** trunk (``pnet_rand=True``, seeded) for plumbing tests only; the
  metric then reports itself as ``lpips_<net>_RANDOM`` and warns, so it cannot be mistaken for LPIPS.
* :class:`STLPIPS` is a *different* metric (anti-aliased trunk trained with the metric) whose whole network
  ships in ``stlpips-pytorch``: it works offline and is reported as ``st_lpips_<net>``, never as LPIPS, and is
  not comparable with published LPIPS numbers.

Both networks are kept in eval mode (their heads contain dropout) whatever the parent module's mode, have
``requires_grad=False`` parameters and are held outside the metric's module tree (not in ``state_dict``: a
checkpoint can neither carry nor silently replace the verified weights); the functional forms stay
differentiable w.r.t. the images (LPIPS is a training loss of the face-protection networks).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn

from src.metrics._checks import check_finite, check_tensor
from src.metrics.base import PerSampleMeanMetric
from src.weights import WeightsError, resolve

__all__ = [
    "INPUT_RANGES",
    "LPIPS",
    "LPIPS_NETS",
    "STLPIPS",
    "ST_LPIPS_NETS",
    "build_lpips_network",
    "build_st_lpips_network",
    "lpips",
    "lpips_report_name",
    "st_lpips",
    "st_lpips_report_name",
]

LPIPS_NETS = ("alex", "vgg", "squeeze")
ST_LPIPS_NETS = ("alex", "vgg")
INPUT_RANGES = ("[0,1]", "[-1,1]")
InputRange = Literal["[0,1]", "[-1,1]"]

#: Manifest names (src/weights/manifest.yaml) of the files each network needs.
_LPIPS_BACKBONE = {net: f"lpips-{net}-backbone" for net in LPIPS_NETS}
_LPIPS_HEADS = {net: f"lpips-{net}-lin-v0.1" for net in LPIPS_NETS}
_ST_LPIPS_WEIGHTS = {net: f"st-lpips-{net}" for net in ST_LPIPS_NETS}
_RANGE_TOLERANCE = 1e-5


# ----------------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------------


def _check_choice(name: str, arg: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: {arg} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def _to_minus_one_one(name: str, preds: object, target: object, input_range: str) -> tuple[Tensor, Tensor]:
    """Validate an RGB pair in the declared range and return it in ``[-1, 1]`` (float32 or float64)."""
    preds = check_tensor(name, "preds", preds)
    target = check_tensor(name, "target", target)
    if preds.shape != target.shape:
        raise ValueError(
            f"{name}: preds and target must have the same shape, got {tuple(preds.shape)} and "
            f"{tuple(target.shape)}"
        )
    if preds.ndim != 4 or preds.shape[1] != 3 or preds.shape[0] == 0:
        raise ValueError(
            f"{name}: expected RGB images of shape [B, 3, H, W] with B >= 1, got {tuple(preds.shape)}"
        )
    dtype = torch.promote_types(preds.dtype, target.dtype)
    if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    preds, target = preds.to(dtype), target.to(dtype)
    lo, hi = (0.0, 1.0) if input_range == "[0,1]" else (-1.0, 1.0)
    overall_lo = math.inf
    for arg, x in (("preds", preds), ("target", target)):
        x_lo, x_hi = (float(v) for v in torch.aminmax(x.detach()))
        if not (math.isfinite(x_lo) and math.isfinite(x_hi)):
            check_finite(name, arg, x)
        if x_lo < lo - _RANGE_TOLERANCE or x_hi > hi + _RANGE_TOLERANCE:
            raise ValueError(
                f"{name}: `{arg}` values lie in [{x_lo:.4g}, {x_hi:.4g}], outside the declared "
                f"input_range={input_range}; pass images in {input_range} or declare the range they are in"
            )
        overall_lo = min(overall_lo, x_lo)
    if input_range == "[-1,1]" and overall_lo >= 0:
        # [0, 1] images pass the [-1, 1] check; no real [-1, 1] batch is entirely non-negative
        warnings.warn(
            f"{name}: input_range=[-1,1] declared but no value is negative — are these [0, 1] images? "
            f"Declare input_range='[0,1]' for them",
            UserWarning,
            stacklevel=3,
        )
    if input_range == "[0,1]":
        return preds * 2 - 1, target * 2 - 1
    return preds, target


def _load_checked(
    module: nn.Module, state: dict[str, Tensor], path: object, allowed_missing: tuple[str, ...]
) -> None:
    """``load_state_dict(strict=False)`` that still refuses unexpected keys and any missing key outside
    ``allowed_missing`` prefixes (keys the file does not hold by design, e.g. aliases)."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise WeightsError(f"{path}: does not fit the network: {exc}") from exc
    missing = [k for k in result.missing_keys if not k.startswith(allowed_missing)]
    if result.unexpected_keys or missing:
        raise WeightsError(
            f"{path}: does not fit the network (unexpected keys {result.unexpected_keys[:5]}, "
            f"missing keys {missing[:5]})"
        )


def _torch_load(path: object) -> dict[str, Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


class _Frozen(nn.Module):
    """Holds a network in eval mode with frozen parameters; ``train()`` on a parent does not reach it.

    The network's weights are kept channels-last and, on CPU, the inputs are made channels-last too: oneDNN's
    convolutions then run ~1.6x faster (LPIPS-alex on 32x3x256²: 1.7 s vs 2.7 s on 2 cores), same values.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False).to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> _Frozen:
        """Ignore ``mode``: the network's dropout must stay off."""
        super().train(False)
        return self

    def forward(self, in0: Tensor, in1: Tensor) -> Tensor:
        """Per-pair distance ``[B]`` of two ``[-1, 1]`` batches (moved to the network's device and dtype)."""
        ref = next(self.network.buffers())  # the scaling layer's shift
        in0 = in0.to(device=ref.device, dtype=ref.dtype)
        in1 = in1.to(device=ref.device, dtype=ref.dtype)
        if ref.device.type == "cpu":
            in0 = in0.contiguous(memory_format=torch.channels_last)
            in1 = in1.contiguous(memory_format=torch.channels_last)
        return self.network(in0, in1, normalize=False).flatten()


class _NetworkMetric(PerSampleMeanMetric):
    """A per-sample-mean metric computed by a frozen network that is held **outside** the module tree.

    The network is therefore not in ``state_dict()`` or ``parameters()``: checkpoints of a LightningModule
    that owns the metric neither carry the weights nor can overwrite the verified ones when loaded (e.g. a
    smoke-test checkpoint with a random LPIPS trunk restored into a model with the real one), and optimisers
    and DDP never see them. ``.to()`` / ``.cuda()`` still move it (to the metric's device; it stays float32).
    """

    def _hold(self, network: _Frozen) -> None:
        self.__dict__["_held"] = (network,)

    @property
    def network(self) -> _Frozen:
        """The frozen network (on the metric's device)."""
        return self.__dict__["_held"][0]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> nn.Module:
        this = super()._apply(fn, *args, **kwargs)
        held = self.__dict__.get("_held")
        if held is not None:
            held[0].to(self.device)
        return this


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run a block with the CPU RNG seeded, restoring the global RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# ----------------------------------------------------------------------------------------------------
# LPIPS
# ----------------------------------------------------------------------------------------------------


def lpips_report_name(net: str, random_backbone: bool = False) -> str:
    """Reported name: ``lpips_<net>``, or ``lpips_<net>_RANDOM`` for a random trunk."""
    return f"lpips_{net}" + ("_RANDOM" if random_backbone else "")


def _backbone_state(net: nn.Module, tv_state: dict[str, Tensor], path: object) -> dict[str, Tensor]:
    """Map torchvision ``features.<i>.*`` keys onto lpips' ``slice<k>.<i>.*`` modules (lpips keeps
    torchvision's layer indices as child names). Every ``features`` tensor must be used."""
    mapped: dict[str, Tensor] = {}
    used: set[str] = set()
    for slice_name, block in net.named_children():
        for index, _ in block.named_children():
            prefix = f"features.{index}."
            for key, value in tv_state.items():
                if key.startswith(prefix):
                    mapped[f"{slice_name}.{index}.{key[len(prefix) :]}"] = value
                    used.add(key)
    unused = [k for k in tv_state if k.startswith("features.") and k not in used]
    if unused or not mapped:
        raise WeightsError(f"{path}: not a torchvision backbone for this network (unused keys {unused[:5]})")
    return mapped


def build_lpips_network(net: str = "alex", random_backbone: bool = False, seed: int = 0) -> nn.Module:
    """The ``lpips.LPIPS`` v0.1 network with verified weights, without any network access.

    Built with ``pnet_rand=True, pretrained=False`` (nothing is loaded or downloaded by ``lpips``); then the
    v0.1 heads (from the ``lpips`` wheel) and — unless ``random_backbone`` — the torchvision trunk are
    resolved through the weights manifest (sha256-checked) and loaded with ``weights_only=True``. Random
    initialisation runs under ``torch.manual_seed(seed)`` without touching the global RNG, so
    ``random_backbone=True`` gives the trunk of ``torch.manual_seed(seed); lpips.LPIPS(pnet_rand=True)``.
    Raises :class:`src.weights.MissingWeightsError` / :class:`src.weights.ChecksumMismatchError`.
    """
    _check_choice("LPIPS", "net", net, LPIPS_NETS)
    import lpips as lpips_package

    backbone_path = None if random_backbone else resolve(_LPIPS_BACKBONE[net])  # fail before building
    heads_path = resolve(_LPIPS_HEADS[net])
    with _seeded(seed), warnings.catch_warnings():
        # torchvision's deprecation notices for lpips' `pretrained=False` call (nothing is downloaded)
        warnings.filterwarnings("ignore", message=r".*(pretrained|weight enum).*", category=UserWarning)
        network = lpips_package.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    heads = _torch_load(heads_path)
    if not heads or not all(k.startswith("lin") for k in heads):
        raise WeightsError(f"{heads_path}: not an LPIPS linear-head file")
    _load_checked(network, heads, heads_path, allowed_missing=("net.", "lins.", "scaling_layer."))
    if backbone_path is not None:
        mapped = _backbone_state(network.net, _torch_load(backbone_path), backbone_path)
        try:
            network.net.load_state_dict(mapped, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{backbone_path}: does not fit the {net} trunk: {exc}") from exc
    return network


_NETWORK_CACHE: dict[tuple[Any, ...], _Frozen] = {}


def _cached(key: tuple[Any, ...], build: Any) -> _Frozen:
    """One frozen network per configuration and default device (a network built under
    ``with torch.device("meta")`` has no data and must never be handed to a later real build)."""
    key = (*key, str(torch.get_default_device()))
    if key not in _NETWORK_CACHE:
        _NETWORK_CACHE[key] = _Frozen(build())
    return _NETWORK_CACHE[key]


def _warn_random(net: str) -> None:
    warnings.warn(
        f"{lpips_report_name(net, True)}: LPIPS with a RANDOM {net} trunk (random_backbone=True) — for "
        f"plumbing tests only, not a perceptual metric",
        UserWarning,
        stacklevel=3,
    )


def lpips(
    preds: Tensor,
    target: Tensor,
    net: str = "alex",
    input_range: InputRange = "[0,1]",
    random_backbone: bool = False,
    seed: int = 0,
) -> Tensor:
    """Per-image LPIPS v0.1 distance → ``Tensor[B]`` (lower = more similar); differentiable w.r.t. the images.

    ``preds``/``target``: RGB ``[B, 3, H, W]`` in the declared ``input_range``. The network is built once per
    ``(net, random_backbone, seed)`` and cached (on the images' device). See the module docstring for weights.
    """
    name = lpips_report_name(_check_choice("LPIPS", "net", net, LPIPS_NETS), random_backbone)
    _check_choice(name, "input_range", input_range, INPUT_RANGES)
    in0, in1 = _to_minus_one_one(name, preds, target, input_range)
    if random_backbone:
        _warn_random(net)
    module = _cached(
        ("lpips", net, bool(random_backbone), seed), lambda: build_lpips_network(net, random_backbone, seed)
    )
    module.to(device=in0.device, dtype=in0.dtype)
    return module(in0, in1)


class LPIPS(_NetworkMetric):
    """Mean per-image LPIPS v0.1 (``net`` = ``"alex"`` | ``"vgg"`` | ``"squeeze"``), reported as
    ``lpips_<net>``.

    ``input_range`` declares the images' range (``"[0,1]"`` default, or ``"[-1,1]"``); inputs outside it
    raise.
    The trunk weights must be present locally (see module docstring); ``random_backbone=True`` (tests only)
    uses a seeded random trunk and the metric reports itself as ``lpips_<net>_RANDOM``.
    """

    higher_is_better = False
    metric_name = "LPIPS"

    def __init__(
        self,
        net: str = "alex",
        input_range: InputRange = "[0,1]",
        random_backbone: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.net_name = _check_choice("LPIPS", "net", net, LPIPS_NETS)
        self.random_backbone = bool(random_backbone)
        self.report_name = lpips_report_name(self.net_name, self.random_backbone)
        self.metric_name = self.report_name
        self.input_range = _check_choice(self.report_name, "input_range", input_range, INPUT_RANGES)
        if self.random_backbone:
            _warn_random(self.net_name)
        self._hold(_Frozen(build_lpips_network(self.net_name, self.random_backbone, seed)))

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image LPIPS (no gradient)."""
        in0, in1 = _to_minus_one_one(self.report_name, preds, target, self.input_range)
        with torch.no_grad():
            return self.network(in0, in1)

    def extra_repr(self) -> str:
        """Show the reported name, so a random trunk is visible in any printout."""
        return f"name={self.report_name}, input_range={self.input_range}"


# ----------------------------------------------------------------------------------------------------
# ST-LPIPS
# ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _ipython_stub() -> Iterator[None]:
    """Make ``from IPython import embed`` work while ``stlpips_pytorch`` is imported, if IPython is absent.

    ``stlpips_pytorch.invariant_networks`` imports ``IPython.embed`` (a leftover debugging hook it never
    calls) although the package does not declare IPython. Installing IPython (~10 dependencies) only for that
    is wasteful, so when it is not importable a stub module whose ``embed`` raises is put in ``sys.modules``
    for the duration of the import and removed afterwards (other libraries probing for IPython must not see
    it).
    A real IPython, when installed, is used as is.
    """
    if "IPython" in sys.modules or importlib.util.find_spec("IPython") is not None:
        yield
        return
    stub = types.ModuleType("IPython")
    stub.__doc__ = (
        "Stub installed by src.metrics.perceptual while importing stlpips_pytorch (IPython absent)."
    )

    def embed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("IPython is not installed (stub used only to import stlpips_pytorch)")

    stub.embed = embed  # type: ignore[attr-defined]
    sys.modules["IPython"] = stub
    try:
        yield
    finally:
        if sys.modules.get("IPython") is stub:
            del sys.modules["IPython"]


def _import_stlpips() -> types.ModuleType:
    if importlib.util.find_spec("torchsummary") is None:
        raise ImportError(
            "ST-LPIPS: stlpips_pytorch imports `torchsummary`, which is not installed; "
            "run `pip install torchsummary==1.5.1`"
        )
    if importlib.util.find_spec("stlpips_pytorch") is None:
        raise ImportError("ST-LPIPS: the package is not installed; run `pip install stlpips-pytorch==0.0.2`")
    with _ipython_stub():
        from stlpips_pytorch import stlpips as module
    return module


def build_st_lpips_network(net: str = "alex") -> nn.Module:
    """The ST-LPIPS network (``variant="shift_tolerant"``) with its shipped weights, sha256-verified.

    Built with ``pretrained=False`` (stlpips would load with ``strict=False`` and no checksum); the whole
    state dict is then loaded from the manifest-resolved file with ``weights_only=True``. The only keys the
    file lacks are ``lins.<k>.*``, aliases of ``lin<k>.*``.
    """
    _check_choice("ST-LPIPS", "net", net, ST_LPIPS_NETS)
    path = resolve(_ST_LPIPS_WEIGHTS[net])
    module = _import_stlpips()
    with _seeded(0):  # the random init is fully overwritten; seeded only to leave the global RNG alone
        network = module.LPIPS(net=net, variant="shift_tolerant", pretrained=False, verbose=False)
    _load_checked(network, _torch_load(path), path, allowed_missing=("lins.",))
    return network


def st_lpips_report_name(net: str) -> str:
    """``st_lpips_<net>`` — never reported as LPIPS."""
    return f"st_lpips_{net}"


def st_lpips(preds: Tensor, target: Tensor, net: str = "alex", input_range: InputRange = "[0,1]") -> Tensor:
    """Per-image ST-LPIPS distance → ``Tensor[B]`` (a different metric from LPIPS; offline weights).

    About 10x the cost of LPIPS-alex (it keeps high-resolution feature maps). Differentiable w.r.t. the
    images.
    """
    name = st_lpips_report_name(_check_choice("ST-LPIPS", "net", net, ST_LPIPS_NETS))
    _check_choice(name, "input_range", input_range, INPUT_RANGES)
    in0, in1 = _to_minus_one_one(name, preds, target, input_range)
    module = _cached(("st_lpips", net), lambda: build_st_lpips_network(net))
    module.to(device=in0.device, dtype=in0.dtype)
    return module(in0, in1)


class STLPIPS(_NetworkMetric):
    """Mean per-image ST-LPIPS (shift-tolerant LPIPS, ``net`` = ``"alex"`` | ``"vgg"``), reported as
    ``st_lpips_<net>``; works offline. Not LPIPS: never compare its values with LPIPS numbers."""

    higher_is_better = False
    metric_name = "ST-LPIPS"

    def __init__(self, net: str = "alex", input_range: InputRange = "[0,1]", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net_name = _check_choice("ST-LPIPS", "net", net, ST_LPIPS_NETS)
        self.report_name = st_lpips_report_name(self.net_name)
        self.metric_name = self.report_name
        self.input_range = _check_choice(self.report_name, "input_range", input_range, INPUT_RANGES)
        self._hold(_Frozen(build_st_lpips_network(self.net_name)))

    def per_sample(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-image ST-LPIPS (no gradient)."""
        in0, in1 = _to_minus_one_one(self.report_name, preds, target, self.input_range)
        with torch.no_grad():
            return self.network(in0, in1)

    def extra_repr(self) -> str:
        """Show the reported name."""
        return f"name={self.report_name}, input_range={self.input_range}"
