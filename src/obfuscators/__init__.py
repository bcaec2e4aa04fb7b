"""Shared obfuscator library: seedable ``nn.Module`` face obfuscators for every privacy paper and baseline.

Images are float ``[B, 3, H, W]`` in [0, 1] (RGB). ``module.train()``: per-sample random strength drawn from
an explicit ``torch.Generator``; ``module.eval()``: fixed, deterministic evaluation strength (see
:mod:`src.obfuscators.base`). Build by name with :func:`build_obfuscator`; the parameters are described in
``docs/papers/obfuscation_baselines.md``. Every obfuscator registers itself with :func:`register_obfuscator`;
a paper adds its own in its own package the same way.

Obfuscators that paste in target images need a source of them (:mod:`src.obfuscators.targets`), so they
are kept apart from :data:`OBFUSCATORS` (whose members build with no arguments) in
:data:`TARGETED_OBFUSCATORS`: the face swaps (:mod:`src.obfuscators.face_swap`: PRO-Face's ``simswap`` and
``faceshifter``, in :data:`FACE_SWAP_OBFUSCATORS`; they also need pretrained networks) and PRO-Face S's
cartoon ``mask`` (:class:`CartoonMask`). :func:`build_obfuscator` builds every kind by name.

The DP-Pix baseline (:class:`DPPix`, ``dp_pix``) also gives the privacy record of its evaluation ε
(:meth:`DPPix.privacy_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src.config.buildable import buildable
from src.obfuscators.base import OBFUSCATOR_REGISTRY, Identity, Obfuscator, register_obfuscator
from src.obfuscators.blur import GaussianBlur, MedianBlur
from src.obfuscators.cartoon_mask import CartoonMask
from src.obfuscators.dp_pix import DPPix
from src.obfuscators.face_swap import (
    FaceShifter,
    FaceSwap,
    SimSwap,
    build_faceshifter_obfuscator,
    build_simswap_obfuscator,
)
from src.obfuscators.hybrid import RandomChoice
from src.obfuscators.mask import BlackBoxMask
from src.obfuscators.noise import GaussianNoise
from src.obfuscators.pixelate import Pixelate
from src.obfuscators.targets import RandomSplit

#: the shared library's obfuscators that build with no arguments, by name (a snapshot of the registry at
#: import; :func:`build_obfuscator` reads the live :data:`OBFUSCATOR_REGISTRY`, which papers may extend)
OBFUSCATORS: dict[str, type[Obfuscator]] = {
    name: cls for name, cls in OBFUSCATOR_REGISTRY.items() if not cls.needs_targets
}

#: face-swap obfuscators by name (they need ``targets`` and weights, so they are not in OBFUSCATORS)
FACE_SWAP_OBFUSCATORS: dict[str, type[Obfuscator]] = {
    name: cls for name, cls in OBFUSCATOR_REGISTRY.items() if issubclass(cls, FaceSwap)
}

#: obfuscators that need target images (``targets=...``): the face swaps and the cartoon mask
TARGETED_OBFUSCATORS: dict[str, type[Obfuscator]] = {
    name: cls for name, cls in OBFUSCATOR_REGISTRY.items() if cls.needs_targets
}


@buildable
def build_obfuscator(name: str, **kwargs: Any) -> Obfuscator:
    """Build the obfuscator registered under ``name`` with keyword arguments ``kwargs``.

    For ``hybrid``, each entry of ``obfuscators`` may be an :class:`Obfuscator`, a registered name, or a
    mapping ``{"name": ..., **kwargs}`` (as in a config file); names and mappings are built recursively.
    Obfuscators with targets (:data:`TARGETED_OBFUSCATORS`: ``simswap``, ``faceshifter``,
    ``cartoon_mask``) take their constructor's arguments (``targets=...``, and ``weights=...`` for swaps).
    Raises ``ValueError`` listing the available names when ``name`` is unknown.
    """
    if name not in OBFUSCATOR_REGISTRY:
        available = sorted(OBFUSCATOR_REGISTRY)
        raise ValueError(f"unknown obfuscator {name!r}; available: {', '.join(available)}")
    if name == RandomChoice.name and "obfuscators" in kwargs:
        kwargs = {
            **kwargs,
            "obfuscators": [_build_child(i, spec) for i, spec in enumerate(kwargs["obfuscators"])],
        }
    return OBFUSCATOR_REGISTRY[name](**kwargs)


def _build_child(index: int, spec: Any) -> Any:
    if isinstance(spec, Obfuscator):
        return spec
    if isinstance(spec, str):
        return build_obfuscator(spec)
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"hybrid: obfuscators[{index}] needs a 'name' key, got keys {sorted(spec)}")
        options = {k: v for k, v in spec.items() if k != "name"}
        return build_obfuscator(spec["name"], **options)
    return spec  # RandomChoice reports the bad entry


__all__ = [
    "FACE_SWAP_OBFUSCATORS",
    "OBFUSCATORS",
    "OBFUSCATOR_REGISTRY",
    "TARGETED_OBFUSCATORS",
    "BlackBoxMask",
    "CartoonMask",
    "DPPix",
    "FaceShifter",
    "FaceSwap",
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "MedianBlur",
    "Obfuscator",
    "Pixelate",
    "RandomChoice",
    "RandomSplit",
    "SimSwap",
    "build_faceshifter_obfuscator",
    "build_obfuscator",
    "build_simswap_obfuscator",
    "register_obfuscator",
]
