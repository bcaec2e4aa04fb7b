"""Self-blended training data (SBI): real FF++ frames, each paired online with a fake blended from itself.

Reads an index written by ``python -m src.preprocess.videos ffpp RAW OUT --profile sbi`` (face regions at
native resolution with their detector box and 68/81 landmarks per frame). Splits:

- ``train``: the real frames only, ``frames_per_video`` of each video evenly spaced (8 in the original);
  every item is a (real, fake) pair from :func:`src.datamodules.components.self_blending.self_blend` with
  random augmentation. The randomness is a pure function of (run seed, epoch, sample), so a resumed or
  re-run training sees the same fakes. ``batch_size`` counts **source frames**: a step holds
  ``2 × batch_size`` images, laid out ``[reals; fakes]`` with labels ``[0 … 0, 1 … 1]`` (row ``i`` and
  ``i + batch_size`` share their source frame), as in the original.
  With ``blend_parts`` the training batches also hold each fake's blend mask and source image (FPG's
  online refinement re-blends them).
- ``val``: the same on the validation split's real frames, without random flips or margins and with a
  fixed seed per sample, so that every epoch is scored on the same SBI validation set (frame AUC).
- ``test``: the index's real **and** manipulated frames, every kept face cropped by its box with
  ``box_margin`` (1/8 of the box per side) and resized to ``image_size`` (380): the SBI test protocol.

A frame whose landmarks cannot make a blend (e.g. a degenerate hull) raises a ``ValueError`` naming the
file in the generator; the dataset then uses the next frame instead and marks the item
(``blend_failed``), which the module logs, and warns once per file: never silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.datamodules.components.layout import DatasetLayoutError
from src.datamodules.components.self_blending import SelfBlendConfig, self_blend
from src.datamodules.ffpp import BOX_COLUMNS, FFPPFramesDataModule
from src.datatypes.video_ids import VideoIdEncoder
from src.utils.seeding import derive_seed


def spread_frames(rows: list[dict[str, str]], per_video: int) -> list[dict[str, str]]:
    """``per_video`` rows per video, evenly spaced over its frames (``linspace``, rounded; all if fewer)."""
    by_video: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_video.setdefault(row["video_uid"], []).append(row)
    out = []
    for uid in sorted(by_video):
        frames = sorted(by_video[uid], key=lambda r: int(r["frame_index"]))
        if len(frames) > per_video:
            picks = sorted({round(i) for i in np.linspace(0, len(frames) - 1, per_video)})
            frames = [frames[i] for i in picks]
        out.extend(frames)
    return out


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


class SelfBlendDataset(Dataset):
    """(real, fake) pairs self-blended from indexed real frames, seeded per sample (module docstring)."""

    def __init__(
        self,
        root: Path,
        rows: list[dict[str, str]],
        encoder: VideoIdEncoder,
        config: SelfBlendConfig,
        train: bool,
        seed: int,
        blend_parts: bool = False,
    ) -> None:
        if not rows:
            raise ValueError("SelfBlendDataset: no real frames to blend")
        if "landmarks" not in rows[0] or any(c not in rows[0] for c in BOX_COLUMNS):
            raise DatasetLayoutError(
                f"{root / 'index.csv'} has no landmarks / face-box columns: preprocess with "
                "`python -m src.preprocess.videos ffpp RAW OUT --profile sbi --landmarks dlib68`"
            )
        empty = [row["path"] for row in rows if not row["landmarks"]]
        if empty:
            raise DatasetLayoutError(
                f"{root / 'index.csv'}: {len(empty)} frame(s) have no landmarks (e.g. {empty[0]}); "
                "self-blending needs them (preprocess with --landmarks dlib68 or dlib81)"
            )
        self.root, self.rows, self.config, self.train = root, rows, config, bool(train)
        self.video_idx = encoder.encode([row["video_uid"] for row in rows]).numpy()
        self.seed = int(seed)
        self.blend_parts = bool(blend_parts)
        self._sample_seed: int | None = None
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.rows)

    def set_random_seed(self, seed: int) -> None:
        """Seed of the next item (the training loader calls this per sample with (seed, epoch, index))."""
        self._sample_seed = int(seed)

    def _rng(self, index: int) -> np.random.Generator:
        if self.train and self._sample_seed is not None:
            return np.random.default_rng(self._sample_seed)
        return np.random.default_rng(derive_seed(self.seed, index))

    def _blend(self, index: int, rng: np.random.Generator) -> Any:
        import cv2

        row = self.rows[index]
        path = self.root / row["path"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read frame {path}")
        landmarks = np.load(self.root / row["landmarks"], allow_pickle=False)
        box = np.asarray([float(row[c]) for c in BOX_COLUMNS])
        return self_blend(
            np.ascontiguousarray(image[..., ::-1]),
            landmarks,
            box,
            rng,
            self.config,
            train=self.train,
            what=str(path),
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        used, failed = index, 0
        for _attempt in range(len(self.rows)):
            try:
                sample = self._blend(used, rng)
                break
            except ValueError as error:
                failed = 1
                path = self.rows[used]["path"]
                if path not in self._warned:
                    self._warned.add(path)
                    warnings.warn(f"self-blending skipped {self.root / path}: {error}", stacklevel=2)
                used = (used + 1) % len(self.rows)
        else:
            raise ValueError(f"self-blending failed for every frame of {self.root / 'index.csv'}")
        row = self.rows[used]
        item = {
            "real": to_tensor(sample.real),
            "fake": to_tensor(sample.fake),
            "video_idx": torch.tensor(int(self.video_idx[used])),
            "frame_index": torch.tensor(int(row["frame_index"])),
            "index": torch.tensor(used),
            "blend_failed": torch.tensor(failed),
        }
        if self.blend_parts:
            item["mask"] = torch.from_numpy(np.ascontiguousarray(sample.mask, dtype=np.float32))[None]
            item["source"] = to_tensor(sample.source)
        return item


def collate_pairs(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``[reals; fakes]`` with labels ``[0 … 0, 1 … 1]``; per-frame fields repeated for both halves; with
    blend parts also ``mask`` ``[2n, 1, H, W]`` (zeros for the reals) and ``source`` ``[n, 3, H, W]``."""
    real = torch.stack([item["real"] for item in items])
    fake = torch.stack([item["fake"] for item in items])
    n = len(items)
    batch = {"image": torch.cat([real, fake]), "label": torch.cat([torch.zeros(n), torch.ones(n)]).long()}
    for key in ("video_idx", "frame_index", "index"):
        values = torch.stack([item[key] for item in items])
        batch[key] = torch.cat([values, values])
    batch["blend_failed"] = torch.stack([item["blend_failed"] for item in items])
    if "mask" in items[0]:  # blend parts: masks [0; M] (reals have none) and the n sources
        mask = torch.stack([item["mask"] for item in items])
        batch["mask"] = torch.cat([torch.zeros_like(mask), mask])
        batch["source"] = torch.stack([item["source"] for item in items])
    return batch


class SelfBlendedFramesDataModule(FFPPFramesDataModule):
    """FF++ (``--profile sbi`` index): self-blended train/val pairs, real + manipulated test faces."""

    def __init__(
        self,
        *args: Any,
        frames_per_video: int = 8,
        blend: dict[str, Any] | None = None,
        blend_seed: int = 0,
        blend_parts: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("image_size", 380)
        kwargs.setdefault("box_margin", 0.125)
        super().__init__(*args, **kwargs)
        if frames_per_video < 1:
            raise ValueError(f"datamodule.frames_per_video must be >= 1, got {frames_per_video}")
        self.frames_per_video = int(frames_per_video)
        try:
            self.blend_config = SelfBlendConfig(**{"size": self.image_size, **dict(blend or {})})
        except TypeError as error:
            raise ValueError(f"datamodule.blend: {error}") from error
        self.blend_seed = int(blend_seed)
        self.blend_parts = bool(blend_parts)
        self.pair_datasets: dict[str, SelfBlendDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """The frame index as for FF++, then self-blended pair datasets over the real train / val frames."""
        if self.pair_datasets:
            return
        super().setup(stage)
        assert self.index_dir is not None
        for split in ("train", "val"):
            rows = [
                r
                for r in self.rows.get(split, [])
                if r["label"] == "0" and r.get("face_index", "0") in ("", "0")
            ]
            if not rows:
                continue
            self.pair_datasets[split] = SelfBlendDataset(
                self.index_dir,
                spread_frames(rows, self.frames_per_video),
                self.encoders[split],
                self.blend_config,
                train=split == "train",
                seed=derive_seed(self.blend_seed, 1 if split == "train" else 2),
                blend_parts=self.blend_parts and split == "train",
            )

    def _pairs(self, split: str, train: bool) -> DataLoader:
        if split not in self.pair_datasets:
            raise ValueError(
                f"{self.dataset_name} under {self.root} has no real {split} frames to self-blend"
            )
        return self.make_loader(self.pair_datasets[split], train=train, collate_fn=collate_pairs)

    def train_dataloader(self) -> DataLoader:
        """Shuffled (real, self-blended fake) pairs of the training split."""
        return self._pairs("train", True)

    def val_dataloader(self) -> DataLoader:
        """The fixed SBI validation pairs."""
        return self._pairs("val", False)

    def describe(self) -> dict[str, Any]:
        """The FF++ counts plus the pair datasets and the blending settings."""
        info = super().describe()
        info["self_blended"] = {
            split: {"frames": len(ds), "frames_per_video": self.frames_per_video}
            for split, ds in self.pair_datasets.items()
        }
        info["blend"] = {k: v for k, v in vars(self.blend_config).items()}
        info["blend_seed"] = self.blend_seed
        info["blend_parts"] = self.blend_parts
        return info
