"""Base class and shared helpers of the obfuscator library.

Every obfuscator is a parameter-free ``nn.Module`` mapping float images ``[B, 3, H, W]`` in [0, 1] (RGB) to
images of the same shape, dtype and device, in [0, 1]. It has two modes, following the PRO-Face codes
(docs/papers/obfuscation_baselines.md, "Obfuscators and their settings"):

- **training** (``module.train()``): the strength (σ, kernel, block, box, noise std) is drawn *per sample*
  from the configured range with the ``torch.Generator`` passed to ``forward``;
- **evaluation** (``module.eval()``): the fixed evaluation strength is used and the output is deterministic.

The work is split in two public steps so that callers (and tests) can inspect or log the drawn strength:
:meth:`Obfuscator.draw_params` returns the per-sample parameters for the current mode, and
:meth:`Obfuscator.apply` applies given parameters. ``forward`` is ``apply(images, draw_params(...))``.

Randomness: parameters are drawn on the generator's own device (a CPU generator by default) and then moved
to the images' device, so a given seed gives the same strengths — and, for the noise obfuscator, the same
noise — on CPU and GPU.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from src.config.buildable import register_project_subclass

# Dtypes the ops run in natively; anything else (float16, bfloat16) is computed in float32 and cast back.
_NATIVE_DTYPES = (torch.float32, torch.float64)


def check_images(images: object, who: str) -> Tensor:
    """Return ``images`` if it is a floating ``[B, 3, H, W]`` tensor, else raise ``ValueError``."""
    if not isinstance(images, Tensor):
        raise ValueError(f"{who}: images must be a torch.Tensor [B, 3, H, W], got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(
            f"{who}: images must have rank 4 [B, 3, H, W], got rank {images.ndim} "
            f"(shape {tuple(images.shape)})"
        )
    if images.shape[1] != 3:
        raise ValueError(
            f"{who}: images must have 3 (RGB) channels in dim 1, got {images.shape[1]} "
            f"(shape {tuple(images.shape)})"
        )
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"{who}: images have an empty spatial size {tuple(images.shape[2:])}")
    if not images.is_floating_point():
        raise ValueError(
            f"{who}: images must be a floating tensor with values in [0, 1], got dtype {images.dtype}"
        )
    return images


def work_dtype(images: Tensor) -> torch.dtype:
    """The dtype an op computes in: the images' own for float32/float64, else float32."""
    return images.dtype if images.dtype in _NATIVE_DTYPES else torch.float32


def fresh_generator() -> torch.Generator:
    """A CPU generator seeded from the *global* torch RNG (``torch.randint``).

    Used when ``forward`` gets no generator in training mode: the result is then reproducible only through
    ``torch.manual_seed`` / ``seed_everything``. Anything a table value depends on should pass a generator.
    """
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator().manual_seed(seed)


def uniform(low: float, high: float, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws from U(low, high) as a float64 CPU tensor (drawn on the generator's device)."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64).cpu()
    return low + (high - low) * u


def randint(low: int, high: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws from U{low, ..., high} (both inclusive) as an int64 CPU tensor."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=generator.device).cpu()


def reflect_indices(size: int, pad: int, device: torch.device) -> Tensor:
    """Indices that extend ``range(size)`` by ``pad``, mirrored: ``d c b | a b c d | c b a``.

    This is ``F.pad(mode="reflect")`` / ``cv2.BORDER_REFLECT_101`` / ``scipy.ndimage`` ``mode="mirror"``, but
    valid for any ``pad`` (the reflection repeats when ``pad >= size``); a size-1 axis repeats its pixel.
    """
    idx = torch.arange(-pad, size + pad, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= size, period - idx, idx)


def reflect_pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Mirror-pad the last two dims by ``pad_h`` rows and ``pad_w`` columns per side (autograd-safe)."""
    if pad_h > 0:
        x = x.index_select(-2, reflect_indices(x.shape[-2], pad_h, x.device))
    if pad_w > 0:
        x = x.index_select(-1, reflect_indices(x.shape[-1], pad_w, x.device))
    return x


# ------------------------------------------------------------------------------------------- argument checks


def as_int(who: str, arg: str, value: object, minimum: int | None = None) -> int:
    """Return ``value`` as an int (integral floats allowed), ``>= minimum``; else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) != int(value):
        raise ValueError(f"{who}: {arg} must be an integer, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{who}: {arg} must be >= {minimum}, got {out}")
    return out


def as_float(who: str, arg: str, value: object, minimum: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a finite float ``>= minimum`` (``>`` if ``strict``); else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{who}: {arg} must be a finite number, got {value!r}")
    out = float(value)
    if minimum is not None and (out <= minimum if strict else out < minimum):
        raise ValueError(f"{who}: {arg} must be {'>' if strict else '>='} {minimum:g}, got {out:g}")
    return out


def as_pair(who: str, arg: str, value: object) -> tuple[Any, Any]:
    """Return ``value`` as a 2-tuple ``(low, high)``; raise ``ValueError`` for anything else."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{who}: {arg} must be a (low, high) pair, got {value!r}")
    return value[0], value[1]


def check_range(who: str, arg: str, low: float, high: float) -> None:
    """Raise ``ValueError`` if the range ``[low, high]`` is empty."""
    if low > high:
        raise ValueError(f"{who}: {arg} is empty: low {low:g} > high {high:g}")


# ------------------------------------------------------------------------------------------------ registry

#: every obfuscator buildable by name (:func:`src.obfuscators.build_obfuscator`), filled by
#: :func:`register_obfuscator`; a paper registers its own obfuscators in its own package the same way
OBFUSCATOR_REGISTRY: dict[str, type[Obfuscator]] = {}

_O = TypeVar("_O", bound="type[Obfuscator]")


def register_obfuscator(cls: _O) -> _O:
    """Class decorator: make ``cls`` buildable by its ``name`` (unique across the project)."""
    existing = OBFUSCATOR_REGISTRY.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"obfuscator name '{cls.name}' is already registered by {existing.__qualname__}")
    OBFUSCATOR_REGISTRY[cls.name] = cls
    return cls


# ------------------------------------------------------------------------------------------------ base class


class Obfuscator(nn.Module):
    """Base of every obfuscator: mode handling, input checks, generator resolution.

    Subclasses set ``name`` and implement :meth:`_sample_params` (training draws), :meth:`_eval_params`
    (the fixed evaluation strength), :meth:`_obfuscate` and :meth:`describe`.
    """

    #: stable short name, used as registry key and in run records / tables
    name: str = "obfuscator"
    #: whether it pastes in target images and so needs ``targets=...`` to be built
    needs_targets: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every project obfuscator is buildable from untrusted configs (:mod:`src.config.buildable`)."""
        super().__init_subclass__(**kwargs)
        register_project_subclass(cls)

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Obfuscate ``images`` ``[B, 3, H, W]`` in [0, 1].

        In training mode the per-sample strength is drawn with ``generator``; if it is ``None`` a fresh
        generator seeded from the global torch RNG is used (see :func:`fresh_generator`). In eval mode the
        evaluation strength is used and the output is deterministic.
        """
        images = check_images(images, type(self).__name__)
        if self.training and generator is None:
            generator = fresh_generator()
        params = self.draw_params(images.shape[0], generator)
        return self.apply(images, params, generator)

    def draw_params(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Per-sample parameters (first dim ``batch_size``, on CPU) for the current mode.

        Training: drawn with ``generator`` (a fresh one from the global RNG if ``None``). Eval: the fixed
        evaluation parameters, ``generator`` unused.
        """
        batch_size = as_int(type(self).__name__, "batch_size", batch_size, minimum=0)
        if not self.training:
            return self._eval_params(batch_size)
        if generator is None:
            generator = fresh_generator()
        return self._sample_params(batch_size, generator)

    def apply(self, images: Tensor, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Apply per-sample ``params`` (from :meth:`draw_params`) to ``images``; same shape/dtype/device out.

        ``generator`` is only used by obfuscators that draw more than their strength (noise).
        """
        who = type(self).__name__
        images = check_images(images, who)
        if params.shape[0] != images.shape[0]:
            raise ValueError(f"{who}: got params for {params.shape[0]} samples but {images.shape[0]} images")
        if images.shape[0] == 0:
            return images.clone()
        out = self._obfuscate(images.to(work_dtype(images)), params, generator)
        return out.to(images.dtype)

    # -- hooks for subclasses --------------------------------------------------------------------------------

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def _eval_params(self, batch_size: int) -> Tensor:
        raise NotImplementedError

    def _obfuscate(self, images: Tensor, params: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The obfuscator's name and parameters as a JSON-friendly dict (for run records and tables)."""
        return {"name": self.name}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "name")


@register_obfuscator
class Identity(Obfuscator):
    """No-op obfuscator (``none``): returns an exact copy of the input — the clean reference row of tables."""

    name = "none"

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        return torch.zeros(batch_size, 0)

    def _eval_params(self, batch_size: int) -> Tensor:
        return torch.zeros(batch_size, 0)

    def apply(self, images: Tensor, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Return a copy of ``images`` (no clamping, bit-exact)."""
        return check_images(images, type(self).__name__).clone()
