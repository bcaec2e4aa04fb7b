"""Target images for obfuscators that paste in another image: face swaps (target faces), sticker masks.

**Sources** (``targets`` for training, ``eval_targets`` for evaluation): a tensor bank ``[N, C, H, W]`` in
[0, 1] (or uint8); a folder of images (every image file under it, sorted by relative path — the order of
torchvision's ``ImageFolder``, which the PRO-Face codes use); a map-style dataset whose items are an image
tensor, a tuple starting with one, a mapping with ``"image"`` or a file path; a ``(datamodule, split)`` pair
(its ``image_dataset(split)``); a :class:`RandomSplit` of any of these; or a zero-argument callable returning
any of these. Everything is resolved on first use, so building an obfuscator never touches the disk.

**Choice of target** (:class:`TargetedObfuscator`, one target per batch, repeated over the batch, as PRO-Face
and PRO-Face S do):

- training (``.train()``): an index drawn uniformly from the training targets with the ``torch.Generator``
  passed to ``forward``, so a seed fixes the choice;
- evaluation (``.eval()``): a fixed sequence — the k-th call (of ``forward`` or ``draw_params``) after
  entering eval mode uses target ``(eval_target_offset + k) mod N``. The PRO-Face scripts index their target
  list with a batch counter that is incremented before use (offset 1) or not (offset 0). Every ``.eval()``
  restarts the sequence, so each validation or test run sees the same targets in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.config.buildable import buildable
from src.obfuscators.base import Obfuscator, as_float, as_int

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: PIL mode per channel count: RGB targets (faces) and RGBA ones (stickers with an alpha channel)
PIL_MODES = {3: "RGB", 4: "RGBA"}
SPLIT_PARTS = ("train", "test")
_RANGE_SLACK = 1e-3


def list_images(folder: str | os.PathLike[str], who: str) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted by relative path; errors name the folder."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{who}: folder not found: {root}")
    paths = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        raise ValueError(f"{who}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    return paths


def read_image(path: Path, channels: int) -> Tensor:
    """The image file ``path`` as a uint8 ``[channels, H, W]`` tensor (RGB or RGBA); errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            array = np.asarray(handle.convert(PIL_MODES[channels]), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    return torch.from_numpy(array).permute(2, 0, 1)


def as_unit_image(image: Any, where: str, channels: int = 3) -> Tensor:
    """A target image as a float ``[channels, H, W]`` tensor in [0, 1] (uint8 is scaled by 1/255)."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, Tensor):
        raise ValueError(f"{where}: expected an image tensor [{channels}, H, W], got {type(image).__name__}")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != channels:
        kind = PIL_MODES.get(channels, f"{channels}-channel")
        raise ValueError(
            f"{where}: expected an {kind} image [{channels}, H, W], got shape {tuple(image.shape)}"
        )
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif not image.is_floating_point():
        raise ValueError(f"{where}: expected a floating (or uint8) image, got {image.dtype}")
    low, high = float(image.min()), float(image.max())
    if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
        raise ValueError(
            f"{where}: target images must be in [0, 1], got values in [{low:.3f}, {high:.3f}] "
            f"(map [-1, 1] or ImageNet-normalised images back to [0, 1] first)"
        )
    return image.clamp(0.0, 1.0)


def resolve_source(source: Any, who: str) -> Any:
    """A source (module docstring) as an indexable collection: a tensor bank, a list of paths or a dataset."""
    if source is None:
        raise ValueError(
            f"{who}: no source given (a tensor bank, a folder, a dataset or (datamodule, split))"
        )
    if isinstance(source, RandomSplit):
        return source
    if callable(source) and not isinstance(source, Tensor) and not hasattr(source, "__getitem__"):
        source = source()
    if isinstance(source, Tensor):
        bank = source.unsqueeze(0) if source.ndim == 3 else source
        if bank.ndim != 4 or bank.shape[0] < 1:
            raise ValueError(
                f"{who}: a tensor source must be a non-empty bank [N, C, H, W], got {tuple(source.shape)}"
            )
        resolved: Any = bank.detach()
    elif isinstance(source, (str, os.PathLike)):
        resolved = list_images(source, who)
    elif isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "image_dataset"):
        resolved = source[0].image_dataset(source[1])
    elif hasattr(source, "__getitem__") and hasattr(source, "__len__") and not isinstance(source, Mapping):
        resolved = source
    else:
        raise ValueError(
            f"{who}: cannot use {type(source).__name__} as a source; give a tensor bank [N, C, H, W], a "
            "folder, a map-style dataset, a (datamodule, split) pair, a RandomSplit or a callable "
            "returning one"
        )
    if len(resolved) == 0:
        raise ValueError(f"{who}: the source is empty")
    return resolved


def describe_source(source: Any) -> dict[str, Any]:
    """What a source is, without resolving it (JSON-friendly)."""
    if isinstance(source, RandomSplit):
        return source.describe()
    if isinstance(source, Tensor):
        return {"kind": "tensor", "count": int(source.shape[0]) if source.ndim == 4 else 1}
    if isinstance(source, (str, os.PathLike)):
        return {"kind": "folder", "path": str(source)}
    if isinstance(source, tuple) and len(source) == 2 and hasattr(source[0], "image_dataset"):
        return {"kind": "datamodule", "datamodule": type(source[0]).__name__, "split": str(source[1])}
    if hasattr(source, "__getitem__"):
        return {"kind": "dataset", "type": type(source).__name__}
    return {"kind": "callable", "type": getattr(source, "__name__", type(source).__name__)}


@buildable
class RandomSplit:
    """One part of a seeded random split of a source: ``torch.utils.data.random_split`` made explicit.

    PRO-Face S splits CelebA's ``test_frontal`` faces (seed 0) and the CartoonSet stickers (seed 1) 90/10 into
    training and test targets with ``torch.manual_seed(seed); random_split(dataset, [int(0.9·n), n −
    int(0.9·n)])``. This is the same permutation (``randperm(n)`` of a generator seeded with ``seed``) without
    touching the global RNG: ``part="train"`` is its first ``int(fraction·n)`` indices, ``"test"`` the rest.
    A map-style dataset of the parent's items, resolved on first use.
    """

    def __init__(self, source: Any, part: str, fraction: float = 0.9, seed: int = 0) -> None:
        who = type(self).__name__
        if part not in SPLIT_PARTS:
            raise ValueError(f"{who}: part must be one of {SPLIT_PARTS}, got {part!r}")
        self.fraction = as_float(who, "fraction", fraction, minimum=0.0, strict=True)
        if self.fraction >= 1.0:
            raise ValueError(f"{who}: fraction must be < 1 (the test part would be empty), got {fraction!r}")
        self.seed = as_int(who, "seed", seed)
        self.part = part
        self._source = source
        self._items: Any = None
        self._indices: list[int] | None = None

    def _resolve(self) -> tuple[Any, list[int]]:
        if self._indices is None:
            items = resolve_source(self._source, f"{type(self).__name__}({self.part})")
            n = len(items)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
            n_train = int(n * self.fraction)
            indices = order[:n_train] if self.part == "train" else order[n_train:]
            if not indices:
                raise ValueError(
                    f"{type(self).__name__}: the {self.part} part of {n} images at fraction "
                    f"{self.fraction:g} is empty ({describe_source(self._source)})"
                )
            self._items, self._indices = items, indices
        return self._items, self._indices

    def __len__(self) -> int:
        return len(self._resolve()[1])

    def __getitem__(self, index: int) -> Any:
        items, indices = self._resolve()
        return items[indices[index]]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "random_split",
            "part": self.part,
            "fraction": self.fraction,
            "seed": self.seed,
            "source": describe_source(self._source),
        }


@buildable
class TargetImages:
    """A source of target images (module docstring), resolved on first use: ``len`` and ``image(i)``.

    ``channels`` is 3 for faces (RGB) and 4 for stickers (RGBA); files are decoded to that many channels.
    """

    def __init__(self, source: Any, role: str, who: str, channels: int = 3) -> None:
        if source is None:
            raise ValueError(
                f"{who}: {role} must be given (a tensor bank, a folder, a dataset or (datamodule, split))"
            )
        if channels not in PIL_MODES:
            raise ValueError(f"{who}: channels must be one of {sorted(PIL_MODES)}, got {channels!r}")
        self.role = role
        self.who = who
        self.channels = channels
        self._source = source
        self._resolved: Any = None
        if isinstance(source, Tensor):  # cheap to check now
            self._resolved = resolve_source(source, f"{who} {role}")
            as_unit_image(self._resolved[0], f"{who} {role}[0]", channels)

    def _resolve(self) -> Any:
        if self._resolved is None:
            self._resolved = resolve_source(self._source, f"{self.who} {self.role}")
        return self._resolved

    def __len__(self) -> int:
        return len(self._resolve())

    def image(self, index: int) -> Tensor:
        """Target ``index`` as a float ``[channels, H, W]`` tensor in [0, 1] (on the source's device)."""
        where = f"{self.who} {self.role}[{index}]"
        item = self._resolve()[index]
        if isinstance(item, Mapping):
            if "image" not in item:
                raise ValueError(f"{where}: a mapping item needs an 'image' key, got keys {sorted(item)}")
            item = item["image"]
        elif isinstance(item, (tuple, list)):
            item = item[0]
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            return as_unit_image(read_image(path, self.channels), f"{where} ({path})", self.channels)
        return as_unit_image(item, where, self.channels)

    def describe(self) -> dict[str, Any]:
        """What the source is, without resolving it (JSON-friendly)."""
        return describe_source(self._source)


def targets_from_datamodule(datamodule: Any, split: str) -> tuple[Any, str]:
    """``(datamodule, split)``: the split's image dataset is used as targets, resolved on first use."""
    if not hasattr(datamodule, "image_dataset"):
        raise ValueError(f"{type(datamodule).__name__} has no image_dataset(split) method")
    return (datamodule, split)


class TargetedObfuscator(Obfuscator):
    """Base of obfuscators that paste a target image into every face: the per-batch target choice.

    The per-sample parameter is the target index (the same for the whole batch); :meth:`draw_params` returns
    it for the current mode so a caller can log it, and ``last_target`` keeps the last one used.
    Subclasses implement ``_obfuscate(images, params, generator)`` with :meth:`target_image`.
    """

    #: channels of the target images (3: faces; 4: RGBA stickers)
    target_channels = 3
    needs_targets = True

    def __init__(self, targets: Any, eval_targets: Any = None, eval_target_offset: int = 0) -> None:
        super().__init__()
        who = type(self).__name__
        channels = self.target_channels
        self._targets = {"train": TargetImages(targets, "targets", who, channels)}
        self._targets["eval"] = (
            self._targets["train"]
            if eval_targets is None
            else TargetImages(eval_targets, "eval_targets", who, channels)
        )
        self.eval_target_offset = as_int(who, "eval_target_offset", eval_target_offset, minimum=0)
        self._eval_position = 0
        self.last_target: int | None = None

    def train(self, mode: bool = True) -> TargetedObfuscator:
        """Switch the target choice (random / fixed sequence); entering eval mode restarts the sequence."""
        super().train(mode)
        if not mode:
            self._eval_position = 0
        return self

    def reset_eval_targets(self) -> None:
        """Restart the evaluation target sequence (as ``.eval()`` does)."""
        self._eval_position = 0

    def mode_key(self, training: bool | None = None) -> str:
        """``"train"`` or ``"eval"``: whose targets the given (default: current) mode uses."""
        return "train" if (self.training if training is None else training) else "eval"

    def target_set(self, training: bool | None = None) -> TargetImages:
        """The targets of the given (default: current) mode."""
        return self._targets[self.mode_key(training)]

    def num_targets(self, training: bool | None = None) -> int:
        """How many targets the given (default: current) mode draws from (resolves the source)."""
        return len(self.target_set(training))

    def target_image(self, index: int, training: bool | None = None) -> Tensor:
        """Target ``index`` of the given (default: current) mode, ``[C, H, W]`` in [0, 1]; range-checked."""
        n = self.num_targets(training)
        if not 0 <= index < n:
            role = self.mode_key(training)
            raise IndexError(
                f"{type(self).__name__}: target index {index} out of range for {n} {role} targets"
            )
        return self.target_set(training).image(int(index))

    def _sample_params(self, batch_size: int, generator: torch.Generator) -> Tensor:
        n = self.num_targets(True)
        index = int(torch.randint(0, n, (1,), generator=generator, device=generator.device).item())
        return torch.full((batch_size,), index, dtype=torch.long)

    def _eval_params(self, batch_size: int) -> Tensor:
        n = self.num_targets(False)
        index = (self.eval_target_offset + self._eval_position) % n
        self._eval_position += 1
        return torch.full((batch_size,), index, dtype=torch.long)

    def _used_targets(self, params: Tensor) -> tuple[list[int], list[int]]:
        """Per-sample target indices and the sorted distinct ones; records ``last_target``."""
        indices = [int(i) for i in params.reshape(-1).tolist()]
        unique = sorted(set(indices))
        self.last_target = unique[0] if len(unique) == 1 else None
        return indices, unique

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "targets": self._targets["train"].describe(),
            "eval_targets": self._targets["eval"].describe(),
            "eval_target_offset": self.eval_target_offset,
        }


__all__ = [
    "IMAGE_EXTENSIONS",
    "RandomSplit",
    "TargetImages",
    "TargetedObfuscator",
    "as_unit_image",
    "list_images",
    "read_image",
    "resolve_source",
    "targets_from_datamodule",
]
