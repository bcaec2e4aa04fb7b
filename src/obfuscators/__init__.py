"""Shared obfuscator library: seedable ``nn.Module`` face obfuscators for every privacy paper and baseline.

Images are float ``[B, 3, H, W]`` in [0, 1] (RGB). ``module.train()``: per-sample random strength drawn from
an explicit ``torch.Generator``; ``module.eval()``: fixed, deterministic evaluation strength (see
:mod:`src.obfuscators.base`). Build by name with :func:`build_obfuscator`; parameters in baselines.md §1.

Obfuscators that paste in target images need a source of them (:mod:`src.obfuscators.targets`), so they
are kept apart from :data:`OBFUSCATORS` (whose members build with no arguments) in
:data:`TARGETED_OBFUSCATORS`: the face swaps (:mod:`src.obfuscators.face_swap`: PRO-Face's ``simswap`` and
``faceshifter``, in :data:`FACE_SWAP_OBFUSCATORS`; they also need pretrained networks) and PRO-Face S's
cartoon ``mask`` (:class:`CartoonMask`). :func:`build_obfuscator` builds every kind by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src.config.buildable import buildable
from src.obfuscators.base import Identity, Obfuscator
from src.obfuscators.blur import GaussianBlur, MedianBlur
from src.obfuscators.cartoon_mask import CartoonMask
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

#: name → class; every class's ``name`` attribute equals its key
OBFUSCATORS: dict[str, type[Obfuscator]] = {
    cls.name: cls
    for cls in (Identity, GaussianBlur, MedianBlur, Pixelate, BlackBoxMask, GaussianNoise, RandomChoice)
}

#: face-swap obfuscators by name (they need ``targets`` and weights, so they are not in OBFUSCATORS)
FACE_SWAP_OBFUSCATORS: dict[str, type[Obfuscator]] = {cls.name: cls for cls in (SimSwap, FaceShifter)}

#: obfuscators that need target images (``targets=...``): the face swaps and the cartoon mask
TARGETED_OBFUSCATORS: dict[str, type[Obfuscator]] = {**FACE_SWAP_OBFUSCATORS, CartoonMask.name: CartoonMask}


@buildable
def build_obfuscator(name: str, **kwargs: Any) -> Obfuscator:
    """Build the obfuscator registered under ``name`` with keyword arguments ``kwargs``.

    For ``hybrid``, each entry of ``obfuscators`` may be an :class:`Obfuscator`, a registered name, or a
    mapping ``{"name": ..., **kwargs}`` (as in a config file); names and mappings are built recursively.
    Obfuscators with targets (:data:`TARGETED_OBFUSCATORS`: ``simswap``, ``faceshifter``,
    ``cartoon_mask``) take their constructor's arguments (``targets=...``, and ``weights=...`` for swaps).
    Raises ``ValueError`` listing the available names when ``name`` is unknown.
    """
    if name in TARGETED_OBFUSCATORS:
        return TARGETED_OBFUSCATORS[name](**kwargs)
    if name not in OBFUSCATORS:
        available = sorted({*OBFUSCATORS, *TARGETED_OBFUSCATORS})
        raise ValueError(f"unknown obfuscator {name!r}; available: {', '.join(available)}")
    if name == RandomChoice.name and "obfuscators" in kwargs:
        kwargs = {
            **kwargs,
            "obfuscators": [_build_child(i, spec) for i, spec in enumerate(kwargs["obfuscators"])],
        }
    return OBFUSCATORS[name](**kwargs)


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
    "TARGETED_OBFUSCATORS",
    "BlackBoxMask",
    "CartoonMask",
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
]
