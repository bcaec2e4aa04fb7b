"""Face-swap obfuscators: give every face a target's identity (PRO-Face's ``simswap`` and ``faceshifter``).

:class:`FaceSwap` is generic: a *swapper* module ``(faces in [0, 1], target identity latents [B, D]) -> faces
in [0, 1]``, an *identity encoder* ``target faces in [0, 1] -> latents [B, D]`` and a source of target faces.
:class:`SimSwap` (or :func:`build_simswap_obfuscator`) wires in SimSwap's 224 generator and ArcFace
(:mod:`src.networks.face_swap.simswap`), :class:`FaceShifter` (or :func:`build_faceshifter_obfuscator`)
FaceShifter's AEI-Net and TreB1eN's IR-SE-50 (:mod:`src.networks.face_swap.faceshifter`), exactly as PRO-Face
uses them (docs/papers/proface.md, "Obfuscators").

**Targets** (``targets`` for training, ``eval_targets`` for evaluation, default the same) and the per-batch
choice of one target (random in training, a fixed sequence from ``eval_target_offset`` in evaluation) are
those of :mod:`src.obfuscators.targets`. PRO-Face trains with CelebA's ``valid_frontal`` and evaluates with
``test_frontal`` (docs/papers/proface.md, "Obfuscators"; its ``evaluate.py`` is ``eval_target_offset=1``);
PRO-Face S splits ``test_frontal`` 90/10 with :class:`~src.obfuscators.targets.RandomSplit`
(docs/papers/proface_s.md, "Obfuscators").

**Frozen networks, built lazily.** Constructing the obfuscator never builds or loads a network; they are built
by :meth:`FaceSwap.setup` (called on first use), put in eval mode with ``requires_grad_(False)``, kept in eval
mode whatever mode the obfuscator is switched to, and moved to the images' device on use. They are *not*
registered as submodules: like every obfuscator, this one has an empty ``state_dict`` (a Lightning checkpoint
of the model that uses it does not carry 100 M frozen swap parameters) and is never part of an optimizer.
Target identity latents are computed once per target and device and cached.

**Gradients.** PRO-Face only uses the swapped images as data (``x_o``), so by default
(``differentiable=False``) the swap runs under ``torch.no_grad()`` (less memory) and the output has no
graph. With ``differentiable=True`` the swap is traced and gradients flow back to the *input images*
(never into the frozen networks).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from src.obfuscators.base import as_int, register_obfuscator
from src.obfuscators.targets import TargetedObfuscator

log = logging.getLogger(__name__)


class RandomWeightsWarning(UserWarning):
    """A face-swap obfuscator was built with random weights (plumbing tests only: its swaps mean nothing)."""


# ============================================================================================== obfuscator

NetworkSpec = nn.Module | Callable[[], nn.Module]


class FaceSwap(TargetedObfuscator):
    """Generic face-swap obfuscator (see the module docstring).

    Args:
        swapper: ``nn.Module`` ``(faces [B, 3, H, W] in [0, 1], latents [B, D]) -> faces [B, 3, H, W]`` in
            [0, 1], or a zero-argument callable that builds it (called by :meth:`setup`).
        identity_encoder: ``nn.Module`` ``target faces [1, 3, h, w] in [0, 1] -> latents [1, D]``, or a
            builder.
        targets: training target faces (module docstring).
        eval_targets: evaluation target faces (default: ``targets``).
        eval_target_offset: first position of the evaluation target sequence.
        differentiable: trace the swap so gradients reach the input images (default: ``no_grad``).
    """

    name = "face_swap"

    def __init__(
        self,
        swapper: NetworkSpec,
        identity_encoder: NetworkSpec,
        targets: Any,
        eval_targets: Any = None,
        eval_target_offset: int = 0,
        differentiable: bool = False,
    ) -> None:
        super().__init__(targets, eval_targets, eval_target_offset)
        who = type(self).__name__
        for role, spec in (("swapper", swapper), ("identity_encoder", identity_encoder)):
            if not isinstance(spec, nn.Module) and not callable(spec):
                raise ValueError(f"{who}: {role} must be an nn.Module or a callable that builds one")
        # plain dicts: nn.Module does not register their contents (no state_dict entries, no .to() moves)
        self._specs: dict[str, NetworkSpec] = {"swapper": swapper, "identity_encoder": identity_encoder}
        self._networks: dict[str, nn.Module] = {}
        self.differentiable = bool(differentiable)
        self._latents: dict[tuple[str, int], Tensor] = {}
        self._device: torch.device | None = None

    # -- networks --------------------------------------------------------------------------------------------

    @property
    def is_set_up(self) -> bool:
        """Whether the networks have been built (or loaded)."""
        return len(self._networks) == len(self._specs)

    def setup(self) -> FaceSwap:
        """Build (or load) the networks once; frozen, in eval mode. Called automatically on first use."""
        for role, spec in self._specs.items():
            if role in self._networks:
                continue
            network = spec if isinstance(spec, nn.Module) else spec()
            if not isinstance(network, nn.Module):
                raise TypeError(
                    f"{type(self).__name__}: the {role} builder returned {type(network).__name__}"
                )
            self._networks[role] = network.eval().requires_grad_(False)
        return self

    @property
    def swapper(self) -> nn.Module:
        """The swap network (built on access)."""
        return self.setup()._networks["swapper"]

    @property
    def identity_encoder(self) -> nn.Module:
        """The identity network (built on access)."""
        return self.setup()._networks["identity_encoder"]

    def _networks_on(self, device: torch.device) -> tuple[nn.Module, nn.Module]:
        self.setup()
        if self._device != device:
            for network in self._networks.values():
                network.to(device)
            self._latents.clear()
            self._device = device
        swapper, encoder = self._networks["swapper"], self._networks["identity_encoder"]
        swapper.eval()  # frozen networks stay in eval mode whatever happened to them
        encoder.eval()
        return swapper, encoder

    # -- targets ---------------------------------------------------------------------------------------------

    def target_latent(
        self, index: int, training: bool | None = None, device: torch.device | None = None
    ) -> Tensor:
        """The identity latent ``[D]`` of target ``index`` of the given (default: current) mode (cached)."""
        device = torch.device("cpu") if device is None else device
        _, encoder = self._networks_on(device)
        key = (self.mode_key(training), int(index))
        if key not in self._latents:
            dtype = _network_dtype(encoder)
            face = self.target_image(int(index), training).to(device=device, dtype=dtype).unsqueeze(0)
            with torch.no_grad():
                latent = encoder(face)
            if latent.ndim != 2 or latent.shape[0] != 1:
                raise ValueError(
                    f"{type(self).__name__}: the identity encoder must return [1, D] latents, got "
                    f"{tuple(latent.shape)}"
                )
            self._latents[key] = latent[0].detach()
        return self._latents[key]

    # -- the swap --------------------------------------------------------------------------------------------

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        who = type(self).__name__
        swapper, _ = self._networks_on(images.device)
        indices, unique = self._used_targets(params)
        latents = {i: self.target_latent(i, device=images.device) for i in unique}
        latent = torch.stack([latents[i] for i in indices])
        dtype = _network_dtype(swapper)
        x = images.to(dtype)
        if self.differentiable:
            out = swapper(x, latent.to(dtype))
        else:
            with torch.no_grad():
                out = swapper(x, latent.to(dtype))
        if tuple(out.shape) != tuple(images.shape):
            raise ValueError(
                f"{who}: the swapper returned shape {tuple(out.shape)} for images {tuple(images.shape)}"
            )
        return out.clamp(0.0, 1.0).to(images.dtype)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "differentiable": self.differentiable}

    def extra_repr(self) -> str:
        return f"set_up={self.is_set_up}, differentiable={self.differentiable}"


def _network_dtype(network: nn.Module) -> torch.dtype:
    parameter = next(iter(network.parameters()), None)
    return parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32


# ================================================================================================== SimSwap

WEIGHT_ROLES = ("generator", "arcface")


@register_obfuscator
class SimSwap(FaceSwap):
    """PRO-Face's ``simswap`` obfuscator: SimSwap's 224 generator + ArcFace.

    Documented in docs/papers/proface.md and docs/papers/proface_s.md, section "Obfuscators".

    The swapper resizes the faces (bicubic) to 224, swaps them and resizes the result back (bicubic, clamped
    to [0, 1]); the identity latent of a target is its ArcFace embedding at 112 (bilinear), ImageNet
    normalisation, L2-normalised (:class:`~src.networks.face_swap.simswap.SimSwapSwapper`,
    :class:`~src.networks.face_swap.simswap.SimSwapIdentityEncoder`).

    ``weights``: ``"manifest"`` (default) — the files of the manifest entries ``simswap-generator-224`` and
    ``simswap-arcface`` (:func:`src.weights.resolve`: checksum- or pin-verified); a mapping ``{"generator":
    path, "arcface": path}``; or ``None`` — **random** networks, with a :class:`RandomWeightsWarning`, for
    tests and synthetic plumbing only. Nothing is read before first use (:meth:`setup`).
    ``generator_options`` are :class:`~src.networks.face_swap.simswap.SimSwapGenerator` arguments (the
    released file needs the defaults); ``arcface_options`` are
    :class:`~src.networks.face_swap.simswap.SimSwapArcFace` arguments for random initialisation only (the
    published file's depth is read from it).

    Not reproduced: quirks of PRO-Face's committed ``evaluate.py`` for the 224 checkpoints — it feeds [0, 1]
    images to a wrapper that assumes [-1, 1] (``x·0.5 + 0.5``), whose output is always resized to 112 and
    mapped to [-1, 1] before being resized back to 224 (docs/papers/proface.md, "Original-code defects and
    fixes": per-checkpoint input contract).
    """

    name = "simswap"

    def __init__(
        self,
        targets: Any,
        eval_targets: Any = None,
        weights: str | Mapping[str, str | os.PathLike[str]] | None = "manifest",
        image_size: int = 224,
        swap_resize: str = "bicubic",
        identity_resize: str = "bilinear",
        generator_options: Mapping[str, Any] | None = None,
        arcface_options: Mapping[str, Any] | None = None,
        eval_target_offset: int = 0,
        differentiable: bool = False,
    ) -> None:
        who = type(self).__name__
        weights = _check_weights(who, weights)
        if weights is not None and arcface_options:
            raise ValueError(
                f"{who}: arcface_options only apply to random initialisation (weights=None); the published "
                "ArcFace's shape is read from its file"
            )
        super().__init__(
            swapper=self._build_swapper,
            identity_encoder=self._build_identity_encoder,
            targets=targets,
            eval_targets=eval_targets,
            eval_target_offset=eval_target_offset,
            differentiable=differentiable,
        )
        self.weights = weights
        self.image_size = as_int(who, "image_size", image_size, minimum=8)
        self.swap_resize = str(swap_resize)
        self.identity_resize = str(identity_resize)
        self.generator_options = dict(generator_options or {})
        self.arcface_options = dict(arcface_options or {})

    def _weights_path(self, role: str) -> Path | None:
        from src.networks.face_swap.simswap import ARCFACE_WEIGHTS, GENERATOR_WEIGHTS

        entry = GENERATOR_WEIGHTS if role == "generator" else ARCFACE_WEIGHTS
        return _resolve_weights(type(self).__name__, self.weights, role, entry, f"the SimSwap {role}")

    def _build_swapper(self) -> nn.Module:
        from src.networks.face_swap.simswap import SimSwapGenerator, SimSwapSwapper, load_simswap_generator

        path = self._weights_path("generator")
        if path is None:
            _warn_random(type(self).__name__, "generator")
            generator = SimSwapGenerator(**self.generator_options)
        else:
            generator = load_simswap_generator(path, **self.generator_options)
        return SimSwapSwapper(generator, self.image_size, self.swap_resize)

    def _build_identity_encoder(self) -> nn.Module:
        from src.networks.face_swap.simswap import (
            SimSwapArcFace,
            SimSwapIdentityEncoder,
            load_simswap_arcface,
        )

        path = self._weights_path("arcface")
        if path is None:
            _warn_random(type(self).__name__, "ArcFace identity network")
            arcface = SimSwapArcFace(**self.arcface_options)
        else:
            arcface = load_simswap_arcface(path)
        return SimSwapIdentityEncoder(arcface, self.identity_resize)

    def describe(self) -> dict[str, Any]:
        weights: Any = self.weights if not isinstance(self.weights, Mapping) else dict(self.weights)
        return {
            **super().describe(),
            "weights": weights,
            "image_size": self.image_size,
            "swap_resize": self.swap_resize,
            "identity_resize": self.identity_resize,
        }


def build_simswap_obfuscator(
    weights: str | Mapping[str, str | os.PathLike[str]] | None = "manifest",
    targets: Any = None,
    eval_targets: Any = None,
    **options: Any,
) -> SimSwap:
    """A :class:`SimSwap` obfuscator (``options``: its other arguments); nothing is loaded until first use."""
    return SimSwap(targets=targets, eval_targets=eval_targets, weights=weights, **options)


# ============================================================================================== FaceShifter


@register_obfuscator
class FaceShifter(FaceSwap):
    """PRO-Face's ``faceshifter`` obfuscator: FaceShifter's AEI-Net + TreB1eN's IR-SE-50.

    Documented in docs/papers/proface.md and docs/papers/proface_s.md, section "Obfuscators".

    The swapper maps the faces to [-1, 1], resizes them (bilinear, ``align_corners=False``) to 256, runs the
    AEI-Net and resizes the result back (bilinear) to [0, 1]; the identity latent of a target is its IR-SE-50
    embedding at 112 (PIL-like antialiased bicubic resize, PRO-Face's ``Resize(112, BICUBIC)``; [-1, 1];
    L2-normalised; no crop) (:class:`~src.networks.face_swap.faceshifter.FaceShifterSwapper`,
    :class:`~src.networks.face_swap.faceshifter.FaceShifterIdentityEncoder`). PRO-Face runs it on 112 px
    faces (output resized back to 112), PRO-Face S on 256 px faces (no resize at all).

    ``weights``: ``"manifest"`` (default) — the files of the manifest entries ``faceshifter-generator-256``
    and ``treb1en-ir-se50`` (:func:`src.weights.resolve`: checksum- or pin-verified); a mapping
    ``{"generator": path, "arcface": path}``; or ``None`` — **random** networks, with a
    :class:`RandomWeightsWarning`, for tests and synthetic plumbing only. Nothing is read or built before
    first use (:meth:`setup`). ``image_size`` must be 256 (AEI-Net's only resolution). ``swap_resize`` /
    ``identity_resize`` are :func:`~src.networks.face_swap.faceshifter.resize_images` modes;
    ``identity_crop=True`` (with ``identity_resize="bilinear_align_corners"``) is FaceShifter's own identity
    crop ``19:237`` instead of PRO-Face's uncropped target. ``generator_options`` are
    :class:`~src.networks.face_swap.faceshifter.AEINet` arguments (the released file needs the defaults;
    tests shrink ``base_channels``); ``arcface_options`` are zoo ``ir_se50`` arguments (e.g.
    ``channel_order="BGR"`` to study TreB1eN's BGR-trained weights; PRO-Face feeds RGB).
    """

    name = "faceshifter"

    def __init__(
        self,
        targets: Any,
        eval_targets: Any = None,
        weights: str | Mapping[str, str | os.PathLike[str]] | None = "manifest",
        image_size: int = 256,
        swap_resize: str = "bilinear",
        identity_resize: str = "bicubic_antialias",
        identity_crop: bool = False,
        generator_options: Mapping[str, Any] | None = None,
        arcface_options: Mapping[str, Any] | None = None,
        eval_target_offset: int = 0,
        differentiable: bool = False,
    ) -> None:
        from src.networks.face_swap.faceshifter import FACESHIFTER_IMAGE_SIZE, RESIZE_MODES

        who = type(self).__name__
        weights = _check_weights(who, weights)
        size = as_int(who, "image_size", image_size, minimum=8)
        if size != FACESHIFTER_IMAGE_SIZE:
            raise ValueError(
                f"{who}: image_size must be {FACESHIFTER_IMAGE_SIZE} (AEI-Net's only resolution), got {size}"
            )
        for option, mode in (("swap_resize", swap_resize), ("identity_resize", identity_resize)):
            if mode not in RESIZE_MODES:
                raise ValueError(f"{who}: {option} must be one of {list(RESIZE_MODES)}, got {mode!r}")
        super().__init__(
            swapper=self._build_swapper,
            identity_encoder=self._build_identity_encoder,
            targets=targets,
            eval_targets=eval_targets,
            eval_target_offset=eval_target_offset,
            differentiable=differentiable,
        )
        self.weights = weights
        self.image_size = size
        self.swap_resize = str(swap_resize)
        self.identity_resize = str(identity_resize)
        self.identity_crop = bool(identity_crop)
        self.generator_options = dict(generator_options or {})
        self.arcface_options = dict(arcface_options or {})

    def _weights_path(self, role: str) -> Path | None:
        from src.networks.face_swap.faceshifter import (
            FACESHIFTER_ARCFACE_WEIGHTS,
            FACESHIFTER_GENERATOR_WEIGHTS,
        )

        entry = FACESHIFTER_GENERATOR_WEIGHTS if role == "generator" else FACESHIFTER_ARCFACE_WEIGHTS
        what = "AEI-Net generator" if role == "generator" else "IR-SE-50 identity network"
        return _resolve_weights(type(self).__name__, self.weights, role, entry, f"the FaceShifter {what}")

    def _build_swapper(self) -> nn.Module:
        from src.networks.face_swap.faceshifter import AEINet, FaceShifterSwapper, load_faceshifter_generator

        path = self._weights_path("generator")
        if path is None:
            _warn_random(type(self).__name__, "AEI-Net generator")
            generator = AEINet(**self.generator_options)
        else:
            generator = load_faceshifter_generator(path, **self.generator_options)
        return FaceShifterSwapper(generator, self.image_size, self.swap_resize)

    def _build_identity_encoder(self) -> nn.Module:
        from src.networks.face_swap.faceshifter import (
            FaceShifterIdentityEncoder,
            build_faceshifter_arcface,
            load_faceshifter_arcface,
        )

        path = self._weights_path("arcface")
        if path is None:
            _warn_random(type(self).__name__, "IR-SE-50 identity network")
            arcface = build_faceshifter_arcface(**self.arcface_options)
        else:
            arcface = load_faceshifter_arcface(path, **self.arcface_options)
        return FaceShifterIdentityEncoder(arcface, self.identity_resize, self.identity_crop)

    def describe(self) -> dict[str, Any]:
        weights: Any = self.weights if not isinstance(self.weights, Mapping) else dict(self.weights)
        return {
            **super().describe(),
            "weights": weights,
            "image_size": self.image_size,
            "swap_resize": self.swap_resize,
            "identity_resize": self.identity_resize,
            "identity_crop": self.identity_crop,
        }


def _check_weights(
    who: str, weights: str | Mapping[str, str | os.PathLike[str]] | None
) -> str | dict[str, str] | None:
    """``"manifest"``, ``None`` or a ``{"generator": path, "arcface": path}`` mapping (paths expanded)."""
    if weights is None or weights == "manifest":
        return weights
    if isinstance(weights, Mapping) and not isinstance(weights, str):
        if set(weights) != set(WEIGHT_ROLES):
            raise ValueError(
                f"{who}: a weights mapping needs exactly the keys {list(WEIGHT_ROLES)}, got {sorted(weights)}"
            )
        return {role: str(Path(weights[role]).expanduser()) for role in WEIGHT_ROLES}
    raise ValueError(f"{who}: weights must be 'manifest', a mapping of paths or None, got {weights!r}")


def _resolve_weights(
    who: str, weights: str | Mapping[str, str] | None, role: str, entry: str, what: str
) -> Path | None:
    """The file of ``role``: ``None`` (random weights), the mapped path or the manifest ``entry``'s file."""
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        path = Path(weights[role])
        if not path.is_file():
            raise FileNotFoundError(f"{who}: {role} weights file not found: {path}")
        return path
    from src.weights import WeightsError, resolve

    try:
        return resolve(entry)
    except WeightsError as exc:
        raise type(exc)(f"{who} obfuscator needs {what} (manifest entry '{entry}'): {exc}") from exc


def _warn_random(who: str, what: str) -> None:
    message = (
        f"{who}: the {what} has RANDOM weights (weights=None). Its swaps are meaningless: use this only for "
        "tests and synthetic plumbing, never for a reported number."
    )
    warnings.warn(message, RandomWeightsWarning, stacklevel=4)
    log.warning(message)


def build_faceshifter_obfuscator(
    weights: str | Mapping[str, str | os.PathLike[str]] | None = "manifest",
    targets: Any = None,
    eval_targets: Any = None,
    **options: Any,
) -> FaceShifter:
    """A :class:`FaceShifter` obfuscator (``options``: its other arguments); nothing loads until first use."""
    return FaceShifter(targets=targets, eval_targets=eval_targets, weights=weights, **options)


__all__ = [
    "FaceShifter",
    "FaceSwap",
    "RandomWeightsWarning",
    "SimSwap",
    "build_faceshifter_obfuscator",
    "build_simswap_obfuscator",
]
