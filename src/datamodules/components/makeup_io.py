"""Reading the files of makeup-transfer datasets: face images, integer label maps and image folders.

Makeup-transfer data comes as plain folders of face photos (sources, makeup references, query/gallery sets)
and, for training, per-pixel face-parsing label maps. The helpers here read them the same way everywhere:

* an image → float32 ``[3, S, S]`` RGB in [0, 1] (decoded with OpenCV, resized with area averaging when
  shrinking, bilinear when enlarging); generators that work in [-1, 1] convert themselves;
* a label map → int64 ``[S, S]`` of the **raw** label ids, resized with nearest neighbour (so no id is ever
  blended into another), read with Pillow so palette PNGs give their indices, not their colours;
* a folder → its image files in a fixed order; anything else in it is reported, never dropped silently.

Every error names the file (or folder) it is about.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from src.datamodules.components.geometry import resize
from src.datamodules.components.image_io import CorruptImageError, read_image_rgb
from src.datamodules.components.layout import IMAGE_EXTENSIONS, DatasetLayoutError
from src.datamodules.components.transforms import to_chw_float

__all__ = [
    "ImageFolder",
    "LabelMapError",
    "list_image_folder",
    "load_label_map",
    "load_rgb",
    "load_target_image",
    "source_order",
]

#: Pillow modes whose pixels are label ids as they are.
LABEL_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B")
#: Largest aspect-ratio difference between an image and its label map before they count as unaligned.
ASPECT_TOLERANCE = 0.02


class LabelMapError(ValueError):
    """A label map that cannot be used as per-pixel class ids (colour, out-of-range ids, wrong shape)."""


def load_rgb(path: Path, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The image at ``path`` as float32 ``[3, size, size]`` in [0, 1], and its original ``(height, width)``.

    Raises :class:`FileNotFoundError` / :class:`CorruptImageError` naming the file.
    """
    image = read_image_rgb(path)
    height, width = image.shape[:2]
    return torch.from_numpy(to_chw_float(resize(image, size, size))), (height, width)


def load_target_image(
    path: str | Path, image_size: int = 256, root: str | Path | None = None
) -> torch.Tensor:
    """One target-identity image (e.g. ``test_target_image/target/085807.jpg``) as ``[3, S, S]`` in [0, 1].

    A relative ``path`` is taken under ``root`` when given. A missing file raises
    :class:`DatasetLayoutError`, an undecodable one :class:`CorruptImageError`; both name the path.
    """
    given = Path(str(path)).expanduser()
    full = given if given.is_absolute() or root is None else Path(str(root)).expanduser() / given
    if not full.is_file():
        where = (
            f" (relative paths are taken under {root})"
            if root is not None and not given.is_absolute()
            else ""
        )
        raise DatasetLayoutError(f"target identity image not found: {full}{where}")
    return load_rgb(full, int(image_size))[0]


def _label_array(path: Path) -> np.ndarray:
    """The label ids of a label-map file as an integer ``[H, W]`` array (raises naming the file)."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            array = np.asarray(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"label map not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptImageError(f"cannot decode label map (corrupt or not an image): {path}") from exc
    if mode in LABEL_MODES:
        return array.astype(np.int64)
    if mode in ("RGB", "RGBA", "LA") and array.ndim == 3:
        colour = array[..., :3] if mode != "LA" else array[..., :1]
        if (colour == colour[..., :1]).all():  # a grey label map saved with colour channels: ids repeated
            return colour[..., 0].astype(np.int64)
        raise LabelMapError(
            f"label map {path} is a {mode} image with differing colour channels: expected one channel of "
            "class ids (mode L or P, as the dataset's segs/ PNGs are), not a colour-coded visualisation"
        )
    raise LabelMapError(
        f"label map {path} is a {mode} image: expected one channel of integer class ids (mode L, P or I)"
    )


def load_label_map(
    path: Path, size: int, num_labels: int, image_shape: tuple[int, int] | None = None
) -> torch.Tensor:
    """The label map at ``path`` as int64 ``[size, size]`` of its class ids (nearest-neighbour resize).

    ``num_labels``: ids must lie in ``0 .. num_labels - 1``. ``image_shape``: the ``(height, width)`` of
    the image it belongs to; a different aspect ratio means they are not aligned and raises.
    """
    labels = _label_array(path)
    height, width = labels.shape
    if image_shape is not None:
        image_aspect = image_shape[1] / image_shape[0]
        if abs(width / height - image_aspect) > ASPECT_TOLERANCE * image_aspect:
            raise LabelMapError(
                f"label map {path} is {width}x{height} but its image is {image_shape[1]}x{image_shape[0]}: "
                "different aspect ratios, so the map does not cover the image"
            )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_labels:
        raise LabelMapError(
            f"label map {path} holds ids {low}..{high}, outside 0..{num_labels - 1} "
            f"(set datamodule.num_labels to the dataset's class count if it has more classes)"
        )
    if (height, width) != (size, size):
        resized = Image.fromarray(labels.astype(np.int32)).resize((size, size), Image.Resampling.NEAREST)
        labels = np.asarray(resized).astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(labels))


@dataclass
class ImageFolder:
    """The image files of one folder (names, in order) and the entries that are not images."""

    folder: Path
    names: list[str]
    ignored: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """Absolute image paths, in order."""
        return [self.folder / name for name in self.names]

    def report(self) -> dict[str, object]:
        """What the run record says about this folder."""
        info: dict[str, object] = {"folder": str(self.folder), "images": len(self.names)}
        if self.ignored:
            info["ignored_entries"] = len(self.ignored)
            info["ignored_examples"] = self.ignored[:5]
        return info


def source_order(names: list[str]) -> list[str]:
    """Numeric order when every stem is an integer (``2.jpg`` before ``10.jpg``), else by name."""
    stems = [Path(name).stem for name in names]
    if names and all(re.fullmatch(r"\d+", stem) for stem in stems):
        return [name for _, name in sorted(zip((int(s) for s in stems), names, strict=True))]
    return sorted(names)


def list_image_folder(folder: Path, what: str, key: str, numeric: bool = False) -> ImageFolder:
    """The image files directly inside ``folder`` (sorted; ``numeric``: see :func:`source_order`).

    ``what`` names the folder's role and ``key`` the config key that sets it, for the errors: a missing
    folder or one without images raises :class:`DatasetLayoutError`. Other entries (sub-folders, text
    files) are kept in :attr:`ImageFolder.ignored` and logged.
    """
    if not folder.is_dir():
        raise DatasetLayoutError(f"{what} folder not found: {folder} (set datamodule.{key})")
    images, ignored = [], []
    for entry in folder.iterdir():
        is_image = entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS
        (images if is_image else ignored).append(entry.name)
    if not images:
        raise DatasetLayoutError(
            f"{what} folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); "
            f"set datamodule.{key}"
        )
    ignored.sort()
    if ignored:
        logging.getLogger(__name__).warning(
            "%s folder %s: %d entries that are not image files are not used (e.g. %s)",
            what,
            folder,
            len(ignored),
            ", ".join(ignored[:3]),
        )
    return ImageFolder(folder, source_order(images) if numeric else sorted(images), ignored)
