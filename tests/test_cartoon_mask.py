"""Cartoon-face mask and seeded target splits vs torchvision and the original algorithm.

PRO-Face S's ``mask`` obfuscator: docs/papers/proface_s.md, "Obfuscators".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import datasets

from src.obfuscators import TARGETED_OBFUSCATORS, CartoonMask, RandomSplit, build_obfuscator
from src.obfuscators.targets import TargetImages
from tests.fixtures_datasets import make_cartoonset


def _original_mask(img_pm1: torch.Tensor, sticker_path: Path) -> torch.Tensor:
    """PRO-Face S ``image_processing.py::Mask.forward`` re-stated with torchvision (inputs in [-1, 1])."""
    overlay = TF.to_tensor(Image.open(sticker_path).convert("RGBA")).repeat(img_pm1.shape[0], 1, 1, 1)
    nonzero = torch.nonzero(overlay[:, 3])
    (_, row_min, col_min), _ = nonzero.min(dim=0)
    (_, row_max, col_max), _ = nonzero.max(dim=0)
    height, width = int(row_max - row_min), int(col_max - col_min)
    center_y, center_x = int(row_min) + height // 2, int(col_min) + width // 2
    height = width = max(height, width)
    top, left = center_y - height // 2, center_x - height // 2
    size = img_pm1.shape[2]
    crop = TF.resized_crop(overlay, top, left, height, width, [size, size], antialias=False)
    content, alpha = crop[:, :3].mul(2).sub(1), crop[:, 3:4]
    return img_pm1 * (1 - alpha) + content * alpha


def test_random_split_is_torch_random_split_without_the_global_rng() -> None:
    for n, seed in ((37, 0), (10, 1), (101, 5)):
        n_train = int(n * 0.9)
        torch.manual_seed(seed)
        reference = torch.utils.data.random_split(range(n), [n_train, n - n_train])
        state = torch.get_rng_state()
        train, test = (
            RandomSplit(list(range(n)), "train", seed=seed),
            RandomSplit(list(range(n)), "test", seed=seed),
        )
        assert [train[i] for i in range(len(train))] == list(reference[0].indices)
        assert [test[i] for i in range(len(test))] == list(reference[1].indices)
        assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not touched
    assert len(RandomSplit(list(range(10)), "test", fraction=0.5)) == 5
    with pytest.raises(ValueError, match="part must be one of"):
        RandomSplit([1, 2], "valid")
    with pytest.raises(ValueError, match="fraction must be < 1"):
        RandomSplit([1, 2], "train", fraction=1.0)
    with pytest.raises(ValueError, match="train part of 3 images"):
        len(RandomSplit([1, 2, 3], "train", fraction=0.2))


def test_folder_targets_follow_imagefolder_order(tmp_path: Path) -> None:
    root = tmp_path / "cartoonset"
    for sub in ("9", "10", "a"):
        (root / "cartoonset100k" / sub).mkdir(parents=True)
        for name in ("b.png", "a10.png", "a9.png"):
            Image.new("RGBA", (4, 4), (1, 2, 3, 255)).save(root / "cartoonset100k" / sub / name)
    # one class folder at the root, as PRO-Face S's ImageFolder(CartoonSet) expects
    reference = [Path(p) for p, _ in datasets.ImageFolder(root / "cartoonset100k").samples]
    targets = TargetImages(root / "cartoonset100k", "targets", "test", channels=4)
    assert [targets._resolve()[i] for i in range(len(targets))] == reference
    split = RandomSplit(root, "test", seed=1)
    torch.manual_seed(1)
    n = len(reference)
    _, expected = torch.utils.data.random_split(reference, [int(n * 0.9), n - int(n * 0.9)])
    assert [split[i] for i in range(len(split))] == [reference[i] for i in expected.indices]


def test_cartoon_mask_matches_the_original_algorithm(tmp_path: Path) -> None:
    root = make_cartoonset(tmp_path, 4)
    paths = sorted((root / "cartoonset10k").glob("*.png"))
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    mask = CartoonMask(targets=root).eval()
    for k, path in enumerate(paths):  # eval sequence: sticker k on the k-th call (offset 0)
        ours = mask(images)
        assert mask.last_target == k
        reference = (_original_mask(images * 2 - 1, path) + 1) / 2
        torch.testing.assert_close(ours, reference, atol=2e-6, rtol=0)
    # the sequence wraps around and restarts on every .eval()
    assert mask(images) is not None and mask.last_target == 0
    mask.eval()
    mask(images)
    assert mask.last_target == 0
    # a non-square image gets a sticker resized to its own height x width
    assert mask(torch.rand(1, 3, 40, 56)).shape == (1, 3, 40, 56)


def test_cartoon_mask_training_choice_split_and_gradients(tmp_path: Path) -> None:
    root = make_cartoonset(tmp_path, 10)
    mask = build_obfuscator(
        "cartoon_mask",
        targets=RandomSplit(root, "train", seed=1),
        eval_targets=RandomSplit(root, "test", seed=1),
    )
    assert "cartoon_mask" in TARGETED_OBFUSCATORS and isinstance(mask, CartoonMask)
    assert (mask.num_targets(True), mask.num_targets(False)) == (9, 1)
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    first = mask(images, torch.Generator().manual_seed(3))
    again = mask(images, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    params = mask.draw_params(4, torch.Generator().manual_seed(3))
    assert params.unique().numel() == 1  # one sticker per batch
    first.sum().backward()
    assert images.grad is not None and images.grad.min() >= 0 and images.grad.max() <= 1
    assert (images.grad < 1).any()  # covered pixels get less (zero under opaque alpha)
    record = json.loads(json.dumps(mask.describe()))
    assert record["targets"]["kind"] == "random_split" and record["targets"]["seed"] == 1


def test_cartoon_mask_bad_stickers_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "stickers"
    folder.mkdir()
    Image.new("RGBA", (8, 8), (5, 5, 5, 0)).save(folder / "clear.png")
    images = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="fully transparent"):
        CartoonMask(targets=folder).eval()(images)
    (folder / "clear.png").unlink()
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        CartoonMask(targets=folder).eval()(images)
    with pytest.raises(FileNotFoundError, match="missing"):
        CartoonMask(targets=tmp_path / "missing").eval()(images)
    with pytest.raises(ValueError, match=r"RGBA image \[4, H, W\]"):
        CartoonMask(targets=torch.rand(2, 3, 8, 8))
