"""Training order and augmentation are functions of (seed, epoch, rank, sample); the loader resumes mid-epoch;
RNG states survive a checkpoint."""

from __future__ import annotations

import random

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from src.datamodules.components.sampling import EpochSampler, ResumableLoader, SeededItems, training_loader
from src.utils.rng import capture_rng_state, restore_rng_state


class Noisy(Dataset):
    """Items whose value is the index plus an albumentations draw (to see which seed produced it)."""

    def __init__(self, n: int = 24) -> None:
        self.n = n
        self.transform = A.Compose([A.RandomBrightnessContrast(p=1.0)], seed=5)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        image = np.full((4, 4, 3), 100, dtype=np.uint8)
        out = self.transform(image=image)["image"].astype(np.float32)
        return torch.tensor([float(index), float(out.mean())])


def _loader(
    seed: int = 0, workers: int = 0, batch: int = 4, replicas: int = 1, rank: int = 0
) -> ResumableLoader:
    return training_loader(
        Noisy(),
        batch_size=batch,
        seed=seed,
        num_replicas=replicas,
        rank=rank,
        num_workers=workers,
        pin_memory=False,
        drop_last=True,
        worker_init_fn=None,
    )


def _epoch(loader: ResumableLoader, epoch: int) -> torch.Tensor:
    loader.sampler.set_epoch(epoch)
    return torch.cat(list(loader))


def test_order_and_augmentation_depend_on_seed_and_epoch_only() -> None:
    first, again = _loader(), _loader()
    torch.manual_seed(123)  # the global RNG plays no part
    a0, a1 = _epoch(first, 0), _epoch(first, 1)
    torch.manual_seed(999)
    assert torch.equal(_epoch(again, 1), a1) and torch.equal(_epoch(again, 0), a0)
    assert not torch.equal(a0, a1)
    assert not torch.equal(_epoch(_loader(seed=1), 0), a0)
    assert sorted(a0[:, 0].tolist()) == list(map(float, range(24)))  # every sample once


def test_workers_load_the_same_items_as_the_main_process() -> None:
    assert torch.equal(_epoch(_loader(workers=2), 2), _epoch(_loader(workers=0), 2))


def test_a_sample_keeps_its_augmentation_wherever_it_lands() -> None:
    """Per-sample seeds: sample i's augmentation in epoch e does not depend on its batch or its neighbours."""
    whole = {int(i): v for i, v in _epoch(_loader(batch=4), 3).tolist()}
    other = {int(i): v for i, v in _epoch(_loader(batch=6), 3).tolist()}
    assert whole == other


def test_resuming_mid_epoch_skips_exactly_the_batches_trained_on() -> None:
    loader = _loader()
    loader.sampler.set_epoch(1)
    batches = iter(loader)
    seen = [next(batches), next(batches)]
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batches"] == 2
    rest = list(batches)
    resumed = _loader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    assert torch.equal(torch.cat(list(resumed)), torch.cat(rest)) and len(seen + rest) == 6
    assert len(list(resumed)) == 6  # only the first iteration after loading skips


def test_a_resume_state_from_another_epoch_skips_nothing() -> None:
    resumed = _loader()
    resumed.load_state_dict({**_loader().state_dict(), "epoch": 0, "batches": 6})  # end-of-epoch checkpoint
    assert torch.equal(_epoch(resumed, 1), _epoch(_loader(), 1))


@pytest.mark.parametrize(("key", "value"), [("batch_size", 8), ("num_replicas", 2), ("seed", 7)])
def test_a_changed_loader_cannot_resume_mid_epoch(key: str, value: int) -> None:
    state = {**_loader().state_dict(), key: value}
    with pytest.raises(ValueError, match=f"cannot resume this epoch exactly.*{key}"):
        _loader().load_state_dict(state)


def test_ranks_share_one_permutation_without_overlap() -> None:
    shards = [_epoch(_loader(replicas=2, rank=r, batch=3), 0)[:, 0].tolist() for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(shards[1]) == 12


def test_seeded_items_accept_plain_indices_and_sampler_keys() -> None:
    items = SeededItems(Noisy())
    key = next(iter(EpochSampler(items, seed=0)))
    assert torch.equal(items[key], items[key]) and items[key.index][0] == key.index


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path, monkeypatch) -> None:
    """Python, NumPy, torch and (faked here) CUDA states are saved as plain values and put back exactly."""
    saved_cuda = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]
    restored_cuda: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved_cuda)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored_cuda.append)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.save(state, tmp_path / "rng.pt")
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert len(restored_cuda) == 1 and all(
        torch.equal(a, b) for a, b in zip(restored_cuda[0], saved_cuda, strict=True)
    )
