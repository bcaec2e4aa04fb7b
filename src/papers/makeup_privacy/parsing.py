"""Face-parsing conventions of Makeup-privacy: the two label sets, the makeup regions and the protected masks.

Two label conventions meet in this paper:

- **MT-Dataset** (BeautyGAN's makeup-transfer set, ``segs/*.png``, used for **training**): one integer label
  per pixel, 0–14. The commonly documented names are 0 background, 1 face skin, 2 / 3 eyebrows, 4 / 5 eyes,
  6 nose, 7 upper lip, 8 teeth (mouth interior), 9 lower lip, 10 hair, 11 / 12 ears, 13 neck; label 14 has no
  published name (the authors keep it unchanged, with background, brows, eyes, teeth and hair). The authors'
  code calls label **5 the left eye and 4 the right eye** (other makeup-transfer code names 4 the left one);
  the two eye terms have the same weight, so only the pairing of source and reference matters, and both
  use the same convention here.
- **BiSeNet / CelebAMask-HQ** (zllrunning face-parsing ``79999_iter.pth``, used at **test** time on any
  photo): 19 softmax channels, 0 background, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eyeglasses,
  7 l_ear, 8 r_ear, 9 earrings, 10 nose, 11 mouth (interior), 12 upper lip, 13 lower lip, 14 neck,
  15 necklace, 16 cloth, 17 hair, 18 hat. The protected region is 0 + 4 + 5 + 11 + 16 + 17 (background,
  eyes, mouth interior, cloth, hair), summed over the probability channels.

Masks are ``[B, 1, H, W]`` float tensors. A map with one channel is read as integer labels (float or integer
dtype); a map with more channels as per-class probabilities (or one-hot), whose region mask is the sum of the
region's channels.

Two defects of the authors' code are fixed, each behind ``faithful_bugs`` (``True`` reproduces it):

- the semantic input of the correspondence was the raw 1-channel MT label map in training but 19 BiSeNet
  probability channels at test; :func:`semantic_map` one-hot encodes the MT labels into 19 channels (index =
  MT label: the correspondence only compares source and reference maps of one convention, so the order of
  the channels does not matter);
- the source's unchanged mask took label 14 from the *reference* map (a copy-paste slip), so a pixel could be
  counted twice (value 2); :func:`nonmakeup_unchanged` takes it from the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_CLASSES = 19
Convention = Literal["mt", "bisenet"]
T = TypeVar("T")

#: MT-Dataset label names (commonly documented; 14 is unnamed)
MT_LABELS: dict[int, str] = {
    0: "background",
    1: "face skin",
    2: "eyebrow",
    3: "eyebrow",
    4: "eye (the authors' 'right')",
    5: "eye (the authors' 'left')",
    6: "nose",
    7: "upper lip",
    8: "teeth",
    9: "lower lip",
    10: "hair",
    11: "ear",
    12: "ear",
    13: "neck",
    14: "unnamed (kept unchanged)",
}
#: BiSeNet / CelebAMask-HQ class names, in channel order
BISENET_LABELS: tuple[str, ...] = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eyeglasses",
    "l_ear",
    "r_ear",
    "earrings",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "necklace",
    "cloth",
    "hair",
    "hat",
)

#: makeup regions of the histogram losses, MT labels (the authors' data loader)
MT_REGIONS: dict[str, tuple[int, ...]] = {
    "eye_left": (5,),
    "eye_right": (4,),
    "lips": (7, 9),
    "skin": (1, 6, 11, 12, 13),
}
#: the same regions in BiSeNet classes: our correspondence (the authors train on MT labels only)
BISENET_REGIONS: dict[str, tuple[int, ...]] = {
    "eye_left": (4,),
    "eye_right": (5,),
    "lips": (12, 13),
    "skin": (1, 7, 8, 10, 14),
}
#: regions copied from the source instead of made up, MT labels (training)
MT_UNCHANGED: tuple[int, ...] = (0, 2, 3, 4, 5, 8, 10, 14)
#: the same at test time, BiSeNet classes: background, eyes, mouth interior, cloth, hair
BISENET_PROTECTED: tuple[int, ...] = (0, 4, 5, 11, 16, 17)
#: the MT label the authors' source mask read from the reference map
MT_COPY_PASTE_LABEL = 14


def _check_map(maps: Tensor, who: str) -> None:
    if maps.ndim != 4:
        raise ValueError(f"{who}: expected a [B, C, H, W] parsing map, got shape {tuple(maps.shape)}")


def class_mask(maps: Tensor, classes: Sequence[int]) -> Tensor:
    """``[B, 1, H, W]`` mask of ``classes``: label equality (1-channel map) or summed probabilities."""
    _check_map(maps, "class_mask")
    if maps.shape[1] == 1:
        labels = maps.round() if maps.is_floating_point() else maps
        mask = torch.zeros(maps.shape, dtype=torch.float32, device=maps.device)
        for label in classes:
            mask = mask + (labels == label).float()
        return mask
    if max(classes) >= maps.shape[1]:
        raise ValueError(f"class_mask: class {max(classes)} outside the map's {maps.shape[1]} channels")
    return maps[:, list(classes)].sum(dim=1, keepdim=True)


def region_masks(maps: Tensor, convention: Convention = "mt") -> dict[str, Tensor]:
    """Masks of the four makeup regions (``eye_left``, ``eye_right``, ``lips``, ``skin``)."""
    table = _table(convention, MT_REGIONS, BISENET_REGIONS)
    return {name: class_mask(maps, classes) for name, classes in table.items()}


def protected_mask(maps: Tensor, convention: Convention = "mt") -> Tensor:
    """The region kept from the image itself: MT labels 0/2/3/4/5/8/10/14, or BiSeNet 0/4/5/11/16/17."""
    return class_mask(maps, _table(convention, MT_UNCHANGED, BISENET_PROTECTED))


def nonmakeup_unchanged(
    source_labels: Tensor, reference_labels: Tensor | None = None, faithful_bugs: bool = False
) -> Tensor:
    """The source's unchanged mask from MT labels (the correspondence keeps source features there).

    ``faithful_bugs=True`` reproduces the authors' slip: label 14 is read from ``reference_labels``, so the
    mask can reach 2 where the source is background/brow/... and the reference is 14.
    """
    if not faithful_bugs:
        return class_mask(source_labels, MT_UNCHANGED)
    if reference_labels is None:
        raise ValueError("nonmakeup_unchanged(faithful_bugs=True) needs the reference labels (label 14)")
    kept = tuple(label for label in MT_UNCHANGED if label != MT_COPY_PASTE_LABEL)
    return class_mask(source_labels, kept) + class_mask(reference_labels, (MT_COPY_PASTE_LABEL,))


def makeup_unchanged(reference_labels: Tensor) -> Tensor:
    """The reference's unchanged mask from MT labels (the authors' version has no slip)."""
    return class_mask(reference_labels, MT_UNCHANGED)


def mt_one_hot(labels: Tensor, num_classes: int = NUM_CLASSES) -> Tensor:
    """``[B, 1, H, W]`` MT labels (0–14, any dtype) → ``[B, num_classes, H, W]`` float one-hot."""
    _check_map(labels, "mt_one_hot")
    if labels.shape[1] != 1:
        raise ValueError(f"mt_one_hot: expected a 1-channel label map, got {labels.shape[1]} channels")
    index = (labels.round() if labels.is_floating_point() else labels).long()[:, 0]
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_classes):
        raise ValueError(
            f"mt_one_hot: labels must lie in [0, {num_classes - 1}], "
            f"got [{int(index.min())}, {int(index.max())}]"
        )
    return F.one_hot(index, num_classes).permute(0, 3, 1, 2).float()


def semantic_map(labels: Tensor, faithful_bugs: bool = False) -> Tensor:
    """The correspondence's semantic input for MT labels: 19-channel one-hot, or (faithful) the raw map.

    The faithful variant is the ``[B, 1, H, W]`` float label map the authors fed in training, inconsistent
    with the 19 BiSeNet probability channels fed at test time.
    """
    if faithful_bugs:
        _check_map(labels, "semantic_map")
        return labels.float()
    return mt_one_hot(labels)


def _table(convention: Convention, mt: T, bisenet: T) -> T:
    if convention == "mt":
        return mt
    if convention == "bisenet":
        return bisenet
    raise ValueError(f"unknown parsing convention {convention!r}; expected 'mt' or 'bisenet'")
