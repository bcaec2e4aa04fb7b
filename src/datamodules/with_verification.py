"""Train on one face DataModule, validate and test on verification sets (LFW, CFP-FP, AgeDB-30, ...).

Recognition papers train a classifier on one dataset (CelebA, VGGFace2, an image list) and report 10-fold
verification accuracy on the standard pair sets, which are a different dataset. A Lightning ``Trainer`` takes
one DataModule, so this one holds both: ``train`` (any face DataModule with identity labels) gives the
training loader and the class count, ``verification`` (:class:`VerificationBinsDataModule`) the validation
and test loaders (every pair of every set, exactly once). Keys and layout: docs/datasets.md, "Training data
with verification sets".
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch.utils.data import DataLoader

from src.config.errors import ConfigError
from src.datamodules.base import FaceDataModule
from src.datamodules.verification_bins import VerificationBinsDataModule


class TrainWithVerificationDataModule(FaceDataModule):
    """``train``'s training loader; ``verification``'s pair loaders for validation and test."""

    dataset_name: ClassVar[str] = "train_with_verification"

    def __init__(
        self, train: FaceDataModule, verification: VerificationBinsDataModule, image_size: int | None = None
    ) -> None:
        if not isinstance(train, FaceDataModule):
            raise ConfigError(
                f"datamodule.train must be a face DataModule (a _target_ under src.datamodules), got "
                f"{type(train).__name__}"
            )
        if not isinstance(verification, VerificationBinsDataModule):
            raise ConfigError(
                "datamodule.verification must be a VerificationBinsDataModule "
                "(src.datamodules.verification_bins), "
                f"got {type(verification).__name__}"
            )
        super().__init__(train.batch_size, train.num_workers, train.pin_memory)
        self.train_data, self.verification = train, verification
        sizes = {"train": getattr(train, "image_size", None), "verification": verification.image_size}
        if image_size is not None:
            wrong = {k: v for k, v in sizes.items() if v is not None and int(v) != int(image_size)}
            if wrong:
                raise ConfigError(
                    f"datamodule.image_size is {image_size} but {wrong} differ: the networks see one size "
                    "(leave the parts' image_size at ${datamodule.image_size})"
                )
        self._image_size = int(image_size) if image_size is not None else verification.image_size

    def _share_trainer(self) -> None:
        """The children see this DataModule's trainer (world size and rank for the global batch)."""
        for child in (self.train_data, self.verification):
            child.trainer = self.trainer

    def check_layout(self) -> None:
        """Both roots exist (cheap; before the run directory is made)."""
        self.train_data.check_layout()
        self.verification.check_layout()

    def prepare_data(self) -> None:
        """Whatever the children prepare (once per node)."""
        self.train_data.prepare_data()
        self.verification.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        """Fitting sets up both; validating or testing only the verification sets."""
        self._share_trainer()
        if stage in (None, "fit"):
            self.train_data.setup("fit")
        self.verification.setup(stage)

    @property
    def num_classes(self) -> int | None:
        """The training identities (sizes classification heads), as the training DataModule states them."""
        return getattr(self.train_data, "num_classes", None)

    @property
    def image_size(self) -> int:
        """The side of every image the networks see (training and verification)."""
        return self._image_size

    def train_dataloader(self) -> DataLoader:
        """The training DataModule's loader."""
        self._share_trainer()
        return self.train_data.train_dataloader()

    def val_dataloader(self) -> DataLoader:
        """Every pair of every verification set, once."""
        self._share_trainer()
        return self.verification.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        """Every pair of every verification set, once."""
        self._share_trainer()
        return self.verification.test_dataloader()

    def describe(self) -> dict[str, Any]:
        """Both DataModules' own descriptions, under ``train`` and ``verification``."""
        return {
            "dataset": self.dataset_name,
            "train": self.train_data.describe(),
            "verification": self.verification.describe(),
        }
