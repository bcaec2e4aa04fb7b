"""SyntheticFaces: deterministic rendering at any size, disjoint splits, batches, seeding, identity signal."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.datamodules.components.synthetic_face_renderer import (
    IdentityTraits,
    ImageVariation,
    face_landmarks,
    face_to_pixels,
    render_face,
    render_synthetic_face,
)
from src.datamodules.synthetic_faces import (
    EVAL_SAMPLE_OFFSET,
    SYNTHETIC_NOTE,
    SyntheticFacesDataModule,
    SyntheticFacesDataset,
    train_augmentation,
)


def small_dm(**overrides) -> SyntheticFacesDataModule:
    """A tiny DataModule: 12 identities split 6/3/3, 32 px images."""
    kwargs = dict(
        num_identities=12,
        train_identities=6,
        val_identities=3,
        test_identities=3,
        images_per_identity=4,
        eval_images_per_identity=2,
        image_size=32,
        seed=0,
        batch_size=8,
    )
    kwargs.update(overrides)
    return SyntheticFacesDataModule(**kwargs)


# --- renderer -------------------------------------------------------------------------------------------


def test_sampling_is_a_pure_function_of_its_arguments() -> None:
    assert IdentityTraits.sample(3, 7) == IdentityTraits.sample(3, 7)
    assert IdentityTraits.sample(3, 7) != IdentityTraits.sample(3, 8)
    assert IdentityTraits.sample(3, 7) != IdentityTraits.sample(4, 7)
    assert ImageVariation.sample(3, 7, 1) == ImageVariation.sample(3, 7, 1)
    assert ImageVariation.sample(3, 7, 1) != ImageVariation.sample(3, 7, 2)


def test_render_is_deterministic_and_seed_dependent() -> None:
    a = render_synthetic_face(0, 5, 2, 64)
    assert a.tobytes() == render_synthetic_face(0, 5, 2, 64).tobytes()
    assert not np.array_equal(a, render_synthetic_face(1, 5, 2, 64))
    assert not np.array_equal(a, render_synthetic_face(0, 5, 3, 64))


@pytest.mark.parametrize("size", [16, 64, 150, 256])
def test_render_any_resolution(size: int) -> None:
    img = render_synthetic_face(0, 1, 0, size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 10  # an actual picture, not a flat fill


def test_same_face_at_every_resolution() -> None:
    """Rendering is resolution independent: 256 px block-averaged to 64 px matches the 64 px render."""
    for identity in range(3):
        big = render_synthetic_face(0, identity, identity, 256).astype(np.float32)
        small = render_synthetic_face(0, identity, identity, 64).astype(np.float32)
        pooled = big.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
        other = render_synthetic_face(0, identity + 1, identity, 64).astype(np.float32)
        assert np.abs(pooled - small).mean() < 5.0
        assert np.abs(pooled - other).mean() > 3 * np.abs(pooled - small).mean()


def test_render_rejects_bad_arguments() -> None:
    traits, variation = IdentityTraits.sample(0, 0), ImageVariation.sample(0, 0, 0)
    with pytest.raises(ValueError, match="size"):
        render_face(traits, variation, 2)
    with pytest.raises(ValueError, match="seed"):
        IdentityTraits.sample(-1, 0)
    with pytest.raises(ValueError, match="identity"):
        ImageVariation.sample(0, 1.5, 0)  # type: ignore[arg-type]


# --- dataset ----------------------------------------------------------------------------------------------


def test_dataset_items_and_determinism() -> None:
    ds = SyntheticFacesDataset(identities=[10, 11, 12], images_per_identity=2, image_size=48, seed=3)
    assert len(ds) == 6
    item = ds[3]
    assert set(item) == {"image", "identity", "identity_id", "index"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 48, 48)
    assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0
    assert item["identity"].dtype == torch.int64 and int(item["identity"]) == 1
    assert int(item["identity_id"]) == 11 and int(item["index"]) == 3

    same = SyntheticFacesDataset(identities=[10, 11, 12], images_per_identity=2, image_size=48, seed=3)
    other = SyntheticFacesDataset(identities=[10, 11, 12], images_per_identity=2, image_size=48, seed=4)
    assert torch.equal(ds[3]["image"], same[3]["image"])
    assert not torch.equal(ds[3]["image"], other[3]["image"])


def test_labels_without_rendering_match_items() -> None:
    ds = SyntheticFacesDataset(identities=range(4, 9), images_per_identity=3, image_size=16, seed=0)
    labels = ds.labels
    assert labels.dtype == np.int64 and labels.tolist() == [i // 3 for i in range(15)]
    assert [int(ds[i]["identity"]) for i in range(len(ds))] == labels.tolist()
    assert ds.identity_ids.tolist() == [4 + i // 3 for i in range(15)]


def test_dataset_cache_returns_identical_images() -> None:
    ds = SyntheticFacesDataset(identities=[0, 1], images_per_identity=2, image_size=32, seed=0, cache=True)
    first = ds[2]["image"]
    assert torch.equal(first, ds[2]["image"])
    assert torch.equal(first, SyntheticFacesDataset([0, 1], 2, 32, 0)[2]["image"])


def test_dataset_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="identities"):
        SyntheticFacesDataset(identities=[], images_per_identity=1, image_size=32, seed=0)
    with pytest.raises(ValueError, match="images_per_identity"):
        SyntheticFacesDataset(identities=[0], images_per_identity=0, image_size=32, seed=0)
    with pytest.raises(ValueError, match="image_size"):
        SyntheticFacesDataset(identities=[0], images_per_identity=1, image_size=4, seed=0)
    with pytest.raises(IndexError):
        SyntheticFacesDataset(identities=[0], images_per_identity=1, image_size=32, seed=0)[1]


def test_eval_images_differ_from_train_images_of_the_same_identity() -> None:
    train = SyntheticFacesDataset([5], images_per_identity=2, image_size=32, seed=0)
    evaluation = SyntheticFacesDataset([5], 2, 32, 0, sample_offset=EVAL_SAMPLE_OFFSET)
    for i in range(2):
        for j in range(2):
            assert not torch.equal(train[i]["image"], evaluation[j]["image"])


def test_identity_is_recoverable_from_raw_pixels() -> None:
    """Images of one identity are closer than images of different identities (20 identities x 4 images)."""
    ds = SyntheticFacesDataset(identities=range(20), images_per_identity=4, image_size=32, seed=0)
    x = np.stack([ds.render(i) for i in range(len(ds))]).astype(np.float32) / 255.0
    x = x.reshape(len(ds), 16, 2, 16, 2, 3).mean(axis=(2, 4)).reshape(len(ds), -1)  # 16 px, raw pixels
    y = ds.labels
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    same = y[:, None] == y[None]
    off_diagonal = ~np.eye(len(y), dtype=bool)
    assert dist[same & off_diagonal].mean() < 0.95 * dist[~same].mean()
    np.fill_diagonal(dist, np.inf)
    nn_accuracy = (y[dist.argmin(1)] == y).mean()
    assert nn_accuracy >= 3 * (1 / 20)  # well above chance


# --- DataModule -------------------------------------------------------------------------------------------


def test_splits_are_identity_disjoint() -> None:
    dm = small_dm()
    dm.setup()
    ids = {split: set(dm.datasets[split].identity_ids.tolist()) for split in ("train", "val", "test")}
    assert ids["train"] == set(range(6)) and ids["val"] == {6, 7, 8} and ids["test"] == {9, 10, 11}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert dm.num_classes == 6
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        labels = dm.datasets[split].labels
        assert labels.min() == 0 and labels.max() == n - 1
    assert dm.datasets["val"].sample_offset == EVAL_SAMPLE_OFFSET and dm.datasets["train"].sample_offset == 0


def test_splits_exceeding_num_identities_raise() -> None:
    with pytest.raises(ValueError, match="num_identities"):
        small_dm(num_identities=10)
    with pytest.raises(ValueError, match="val_identities"):
        small_dm(val_identities=0)


def test_describe_counts_and_synthetic_note() -> None:
    dm = small_dm()
    info = dm.describe()
    assert info["synthetic"] is True and info["note"] == SYNTHETIC_NOTE
    assert info["image_size"] == 32 and info["num_identities"] == 12
    assert (info["train_identities"], info["val_identities"], info["test_identities"]) == (6, 3, 3)
    assert (info["train_images"], info["val_images"], info["test_images"]) == (24, 6, 6)
    assert info["skipped_files"] == []
    assert "synthetic" in (SyntheticFacesDataModule.__doc__ or "").lower()


def test_dataloader_batches() -> None:
    dm = small_dm()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "identity", "identity_id", "index"}
    assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0
    for key in ("identity", "identity_id", "index"):
        assert batch[key].dtype == torch.int64 and batch[key].shape == (8,)
    val = list(dm.val_dataloader())
    assert sum(len(b["index"]) for b in val) == 6  # evaluation keeps every image (no drop_last)
    assert sorted(torch.cat([b["index"] for b in val]).tolist()) == list(range(6))


def test_global_batch_is_divided_by_world_size() -> None:
    """``batch_size`` is global: with 2 processes each loads half; a non-divisible batch raises."""
    dm = small_dm(batch_size=8)
    dm.trainer = SimpleNamespace(world_size=2)  # how Lightning attaches its trainer to a DataModule
    assert dm.world_size == 2
    assert dm.train_dataloader().batch_size == 4
    bad = small_dm(batch_size=6)
    bad.trainer = SimpleNamespace(world_size=4)
    with pytest.raises(ValueError, match="divisible"):
        bad.train_dataloader()


def test_augmentation_is_reproducible_with_num_workers_zero() -> None:
    batches = []
    for _ in range(2):
        dm = small_dm(augment=True)
        torch.manual_seed(0)
        batches.append(next(iter(dm.train_dataloader())))
    assert torch.equal(batches[0]["index"], batches[1]["index"])
    assert torch.equal(batches[0]["image"], batches[1]["image"])
    plain = small_dm().build_dataset("train")
    augmented = small_dm(augment=True).build_dataset("train")
    assert any(not torch.equal(plain[i]["image"], augmented[i]["image"]) for i in range(4))
    assert small_dm(augment=True).build_dataset("val").transform is None  # train only


class _OneImage(SyntheticFacesDataset):
    """Every item renders the same base image, so outputs differ only by their augmentation."""

    def render(self, index: int) -> np.ndarray:
        return super().render(0)


def test_augmentation_differs_across_workers_and_repeats_across_runs() -> None:
    dm = small_dm(augment=True, num_workers=2, batch_size=4)
    runs = []
    for _ in range(2):
        dataset = _OneImage(
            range(2), images_per_identity=4, image_size=32, seed=0, transform=train_augmentation(0)
        )
        torch.manual_seed(1234)
        loader = dm.make_loader(
            dataset, train=False
        )  # no shuffle: worker 0 gets items 0-3, worker 1 gets 4-7
        runs.append(torch.cat([batch["image"] for batch in loader]))
    assert torch.equal(runs[0], runs[1])  # same seeds -> same augmentations
    first, second = runs[0][:4], runs[0][4:]
    assert not torch.equal(first, second)  # the two workers do not replay one augmentation stream


def test_triplet_protocol_gives_consistent_triplets() -> None:
    from src.datamodules.synthetic_faces import SyntheticFacesDataModule

    dm = SyntheticFacesDataModule(
        num_identities=12,
        train_identities=6,
        val_identities=3,
        test_identities=3,
        images_per_identity=3,
        image_size=32,
        batch_size=6,
        train_protocol="triplets",
    )
    dataset = dm.train_dataloader().dataset
    assert len(dataset) == 6 * 3
    labels = dataset.dataset.labels
    for anchor, positive, negative in dataset.triplets:
        assert (
            anchor != positive and labels[anchor] == labels[positive] and labels[negative] != labels[anchor]
        )
    item = dataset[4]
    anchor, positive, negative = dataset.triplets[4]
    assert torch.equal(item["image_positive"], dataset.dataset[int(positive)]["image"])
    assert int(item["identity_negative"]) == labels[negative] != int(item["identity"])


def test_triplet_protocol_rejects_bad_settings() -> None:
    from src.datamodules.synthetic_faces import SyntheticFacesDataModule

    with pytest.raises(ValueError, match="train_protocol"):
        SyntheticFacesDataModule(train_protocol="pairs")
    with pytest.raises(ValueError, match="images_per_identity >= 2"):
        SyntheticFacesDataModule(images_per_identity=1, train_protocol="triplets")


def test_renderer_landmarks_sit_on_the_drawn_eyes_and_scale_with_the_image() -> None:
    traits, variation = IdentityTraits.sample(0, 3), ImageVariation.sample(0, 3, 0)
    small, large = face_landmarks(traits, variation, 64), face_landmarks(traits, variation, 256)
    assert small.shape == (68, 2) and face_landmarks(traits, variation, 64, points=81).shape == (81, 2)
    assert np.allclose((small + 0.5) * 4, large + 0.5)  # the same face at every resolution
    eyes = face_to_pixels(traits, variation, np.array([[0.0, traits.eye_y], [0.0, traits.mouth_y]]), 256)
    eye_line, mouth_line = large[36:48].mean(axis=0), large[48:60].mean(axis=0)
    scale = float(np.linalg.norm(eyes[1] - eyes[0]))  # eye line to mouth line, in pixels
    assert (
        np.linalg.norm(eye_line - eyes[0]) < 0.15 * scale
        and np.linalg.norm(mouth_line - eyes[1]) < 0.15 * scale
    )
    assert (large >= 0).all() and (large < 256).all()
    with pytest.raises(ValueError, match="points must be 68 or 81"):
        face_landmarks(traits, variation, 64, points=5)
