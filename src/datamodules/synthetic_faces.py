"""SyntheticFaces: procedurally generated face-like images with identity labels, no download needed.

Images come from :mod:`src.datamodules.components.synthetic_face_renderer`; an identity's look (face
shape, skin, hair, eyes, ...) is fixed by ``(seed, identity)`` and each image varies pose, lighting,
expression and background, so identity retrieval is meaningful. It is the default data of the demo and
of the small tests. **The data is synthetic**: never report numbers on it as results on real faces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.datamodules.base import FaceDataModule
from src.datamodules.components.pairs import derive_triplets
from src.datamodules.components.synthetic_face_renderer import (
    MAX_SIZE,
    MIN_SIZE,
    IdentityTraits,
    ImageVariation,
    render_face,
)
from src.datamodules.components.transforms import to_chw_float
from src.utils.seeding import albumentations_seed, global_rank

SYNTHETIC_NOTE = "SyntheticFaces: procedurally generated faces, not real data"

# Sample numbers of validation/test images start here, so they never coincide with training images of
# an identity, whatever ``images_per_identity`` is.
EVAL_SAMPLE_OFFSET = 1_000_000

SPLITS = ("train", "val", "test")
TRAIN_PROTOCOLS = ("images", "triplets")


class SyntheticFacesDataset(Dataset):
    """Images of ``identities`` rendered on the fly; item ``i`` is image ``i % n`` of identity ``i // n``.

    Each item is ``{"image": float32 [3, H, W] in [0, 1], "identity": int64 label (position of the
    identity in ``identities``), "identity_id": int64 global identity number, "index": int64}``. The
    image of item ``i`` is sample ``sample_offset + i % images_per_identity`` of its identity, so it
    depends only on ``(seed, identity_id, sample)``. ``transform`` (e.g. an albumentations ``Compose``)
    is called as ``transform(image=uint8 HWC array)["image"]``. With ``cache=True`` rendered (not
    augmented) images are kept in memory; every dataloader worker keeps its own cache.
    """

    def __init__(
        self,
        identities: Sequence[int],
        images_per_identity: int,
        image_size: int,
        seed: int,
        sample_offset: int = 0,
        transform: Callable[..., dict[str, Any]] | None = None,
        cache: bool = False,
    ) -> None:
        ids = np.asarray(list(identities), dtype=np.int64)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError(f"identities must be a non-empty sequence of integers, got {identities!r}")
        if (ids < 0).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("identities must be distinct non-negative integers")
        if int(images_per_identity) < 1:
            raise ValueError(f"images_per_identity must be >= 1, got {images_per_identity}")
        if int(sample_offset) < 0:
            raise ValueError(f"sample_offset must be >= 0, got {sample_offset}")
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not MIN_SIZE <= int(image_size) <= MAX_SIZE:
            raise ValueError(f"image_size must be in [{MIN_SIZE}, {MAX_SIZE}], got {image_size}")
        self.identities = ids
        self.images_per_identity = int(images_per_identity)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.sample_offset = int(sample_offset)
        self.transform = transform
        self._traits: dict[int, IdentityTraits] = {}
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.identities) * self.images_per_identity

    @property
    def num_identities(self) -> int:
        """How many identities (classes) the dataset holds."""
        return len(self.identities)

    @property
    def labels(self) -> np.ndarray:
        """Per-item labels (0..num_identities-1) without rendering anything."""
        return np.repeat(np.arange(len(self.identities), dtype=np.int64), self.images_per_identity)

    @property
    def identity_ids(self) -> np.ndarray:
        """Per-item global identity numbers without rendering anything."""
        return np.repeat(self.identities, self.images_per_identity)

    def traits(self, label: int) -> IdentityTraits:
        """The (memoised) traits of the identity with label ``label``."""
        traits = self._traits.get(label)
        if traits is None:
            traits = IdentityTraits.sample(self.seed, int(self.identities[label]))
            self._traits[label] = traits
        return traits

    def locate(self, index: int) -> tuple[int, int, int]:
        """``(label, identity_id, sample)`` of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for SyntheticFacesDataset of length {len(self)}")
        label, j = divmod(int(index), self.images_per_identity)
        return label, int(self.identities[label]), self.sample_offset + j

    def render(self, index: int) -> np.ndarray:
        """The un-augmented ``uint8 [H, W, 3]`` image of item ``index``."""
        if self._cache is not None and index in self._cache:
            return self._cache[index].copy()  # a copy: transforms may write into their input
        label, identity_id, sample = self.locate(index)
        image = render_face(
            self.traits(label), ImageVariation.sample(self.seed, identity_id, sample), self.image_size
        )
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        label, identity_id, _ = self.locate(index)
        image = self.render(index)
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        return {
            "image": torch.from_numpy(to_chw_float(image)),
            "identity": torch.tensor(label, dtype=torch.long),
            "identity_id": torch.tensor(identity_id, dtype=torch.long),
            "index": torch.tensor(int(index), dtype=torch.long),
        }


class SyntheticTriplets(Dataset):
    """Training triplets over a :class:`SyntheticFacesDataset` for triplet-loss methods.

    Item: the anchor's keys (``image``, ``identity``, ``identity_id``, ``anchor_index``) plus
    ``image_positive`` (another image of the anchor's identity), ``image_negative`` and
    ``identity_negative``, the same keys as the file-based DataModules' triplets. The (anchor, positive,
    negative) positions come from :func:`src.datamodules.components.pairs.derive_triplets`: fixed by ``seed``.
    """

    def __init__(self, dataset: SyntheticFacesDataset, seed: int) -> None:
        self.dataset = dataset
        self.triplets = derive_triplets(dataset.labels, seed)

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        anchor, positive, negative = (int(i) for i in self.triplets[index])
        out = self.dataset[anchor]
        out["anchor_index"] = out.pop("index")
        out["image_positive"] = self.dataset[positive]["image"]
        negative_item = self.dataset[negative]
        out["image_negative"] = negative_item["image"]
        out["identity_negative"] = negative_item["identity"]
        out["index"] = torch.tensor(int(index), dtype=torch.long)
        return out


def train_augmentation(seed: int) -> A.Compose:
    """Mild train-time augmentation: flip, small affine and colour jitter (seeded, for num_workers=0)."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.95, 1.05),
                translate_percent=(-0.04, 0.04),
                rotate=(-8.0, 8.0),
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.7,
            ),
            A.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.15, hue=0.02, p=0.8),
        ],
        seed=seed,
    )


class SyntheticFacesDataModule(FaceDataModule):
    """SyntheticFaces — **synthetic, procedurally generated faces, not real data**.

    Identity-disjoint splits of ``num_identities`` identities: train uses identities
    ``[0, train_identities)``, val the next ``val_identities`` and test the next ``test_identities``.
    Training images are samples ``0..images_per_identity-1`` of each identity; validation and test
    images are ``eval_images_per_identity`` samples starting at :data:`EVAL_SAMPLE_OFFSET`, so no image
    is shared with training even for the same identity number. ``num_classes`` (the train identities)
    sizes classification/ArcFace heads. ``augment`` applies :func:`train_augmentation` to training only.
    """

    def __init__(
        self,
        num_identities: int = 1000,
        train_identities: int = 800,
        val_identities: int = 100,
        test_identities: int = 100,
        images_per_identity: int = 8,
        eval_images_per_identity: int = 4,
        image_size: int = 64,
        seed: int = 0,
        augment: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        cache: bool = False,
        train_protocol: str = "images",
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory)
        if train_protocol not in TRAIN_PROTOCOLS:
            raise ValueError(f"data.train_protocol must be one of {TRAIN_PROTOCOLS}, got {train_protocol!r}")
        if train_protocol == "triplets" and int(images_per_identity) < 2:
            raise ValueError("data.train_protocol=triplets needs data.images_per_identity >= 2 (positives)")
        self.train_protocol = train_protocol
        counts = {"train_identities": train_identities, "val_identities": val_identities}
        counts["test_identities"] = test_identities
        for key, value in {**counts, "num_identities": num_identities}.items():
            if int(value) < 1:
                raise ValueError(f"data.{key} must be >= 1, got {value}")
        if sum(counts.values()) > num_identities:
            raise ValueError(
                f"data.train_identities + data.val_identities + data.test_identities = "
                f"{train_identities} + {val_identities} + {test_identities} = {sum(counts.values())} exceeds "
                f"data.num_identities={num_identities}"
            )
        for key, value in (
            ("images_per_identity", images_per_identity),
            ("eval_images_per_identity", eval_images_per_identity),
        ):
            if int(value) < 1:
                raise ValueError(f"data.{key} must be >= 1, got {value}")
        if int(seed) < 0:
            raise ValueError(f"data.seed must be a non-negative integer, got {seed}")
        self.num_identities = int(num_identities)
        self.train_identities = int(train_identities)
        self.val_identities = int(val_identities)
        self.test_identities = int(test_identities)
        self.images_per_identity = int(images_per_identity)
        self.eval_images_per_identity = int(eval_images_per_identity)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.cache = bool(cache)
        self.datasets: dict[str, SyntheticFacesDataset] = {}

    @property
    def num_classes(self) -> int:
        """Number of training identities (the classes of an identity classifier / ArcFace head)."""
        return self.train_identities

    def split_identities(self, split: str) -> range:
        """Global identity numbers of ``split`` (``train``, ``val`` or ``test``)."""
        a, b, c = self.train_identities, self.val_identities, self.test_identities
        ranges = {"train": range(0, a), "val": range(a, a + b), "test": range(a + b, a + b + c)}
        if split not in ranges:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return ranges[split]

    def build_dataset(self, split: str) -> SyntheticFacesDataset:
        """A fresh dataset for ``split`` (augmented only for ``train`` when ``augment`` is set).

        The augmentation is seeded from ``seed`` and the process rank, so it repeats across runs and
        differs across DDP ranks with ``num_workers=0``; dataloader workers reseed it per worker and
        rank (:func:`src.utils.seeding.seed_worker`).
        """
        train = split == "train"
        return SyntheticFacesDataset(
            identities=self.split_identities(split),
            images_per_identity=self.images_per_identity if train else self.eval_images_per_identity,
            image_size=self.image_size,
            seed=self.seed,
            sample_offset=0 if train else EVAL_SAMPLE_OFFSET,
            transform=train_augmentation(albumentations_seed(self.seed, global_rank()))
            if train and self.augment
            else None,
            cache=self.cache,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the three split datasets (cheap: nothing is rendered until items are read)."""
        for split in SPLITS:
            if split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def _split(self, split: str) -> SyntheticFacesDataset:
        """The dataset of ``split``, set up on first use."""
        if split not in self.datasets:
            self.setup()
        return self.datasets[split]

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (images or triplets) per device; the last partial batch is dropped."""
        dataset: Dataset = self._split("train")
        if self.train_protocol == "triplets":
            dataset = SyntheticTriplets(self._split("train"), self.seed)
        return self.make_loader(dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in order; every image exactly once, also under DDP."""
        return self.make_loader(self._split("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in order; every image exactly once, also under DDP."""
        return self.make_loader(self._split("test"), train=False)

    def describe(self) -> dict[str, Any]:
        """Identities and images per split, image size, seed, and a clear note that the data is synthetic."""
        info: dict[str, Any] = {
            "dataset": "SyntheticFaces",
            "synthetic": True,
            "note": SYNTHETIC_NOTE,
            "image_size": self.image_size,
            "seed": self.seed,
            "num_identities": self.num_identities,
            "augment": self.augment,
            "train_protocol": self.train_protocol,
        }
        for split in SPLITS:
            ids = self.split_identities(split)
            per_identity = self.images_per_identity if split == "train" else self.eval_images_per_identity
            info[f"{split}_identities"] = len(ids)
            info[f"{split}_images"] = len(ids) * per_identity
            info[f"{split}_identity_range"] = [ids.start, ids.stop]
        info.update(super().describe())
        return info
