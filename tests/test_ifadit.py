"""iFADIT's networks so far (docs/papers/ifadit.md): the FrEIA identity flow (invertible to 1e-5 in float32,
key-dependent, seeded permutations), the mappers' published sizes, the key sampler, fusion and mask blending
against OpenCV's own operations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from src.papers.ifadit.blending import blend, blend_mask, opencv_sigma
from src.papers.ifadit.networks import (
    IdentityCompensation,
    IdentityFlow,
    LatentMapper,
    draw_key,
    fuse,
    key_condition,
)


def test_flow_is_invertible_to_1e5_in_float32_and_key_dependent() -> None:
    torch.manual_seed(0)
    flow = IdentityFlow().eval()
    z = torch.nn.functional.normalize(torch.randn(8, 512), dim=1) * 20  # ArcFace-like scale
    c1 = key_condition(draw_key(8, torch.Generator().manual_seed(1)), None)
    c2 = key_condition(draw_key(8, torch.Generator().manual_seed(2)), None)
    with torch.no_grad():
        anonymous = flow(z, c1)
        assert (flow.inverse(anonymous, c1) - z).abs().max() < 1e-5
        assert (anonymous - z).abs().max() > 1e-2  # it does transform
        other = flow(z, c2)
        assert (other - anonymous).abs().max() > 1e-3  # another key, another identity
        wrong = flow.inverse(anonymous, c2)
        assert (wrong - z).abs().max() > 1e-3  # the wrong key does not recover
    with pytest.raises(ValueError, match="expected z"):
        flow(z[:, :10], c1)
    with pytest.raises(ValueError, match="key conditions"):
        flow(z, c1[:3])


def test_flow_permutations_are_seeded_and_leave_numpy_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b, c = (
        IdentityFlow(permutation_seed=5),
        IdentityFlow(permutation_seed=5),
        IdentityFlow(permutation_seed=6),
    )
    assert np.array_equal(np.random.get_state()[1], before)
    perms = [k for k in a.state_dict() if "perm" in k]
    assert perms and all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in perms)
    assert any(not torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in perms)


def test_sizes_match_the_authors_modules() -> None:
    trainable = sum(p.numel() for p in IdentityFlow().parameters() if p.requires_grad)
    # 4 blocks x (sub-network 768-256-128-128-256-512 = 410,880 + global affine scale and offset 2 x 512)
    assert trainable == 4 * (410_880 + 1_024)
    assert sum(p.numel() for p in LatentMapper().parameters()) == 787_456  # 1024-512-512
    assert sum(p.numel() for p in IdentityCompensation().parameters()) == 5_247_488  # 512-1024-2048-1024-512


def test_key_sampler_and_fusion() -> None:
    key = draw_key(3, torch.Generator().manual_seed(0))
    assert key.shape == (3, 512) and torch.equal(key[0], key[2]) and key.min() >= 0.5 and key.max() < 1.0
    assert torch.equal(key, draw_key(3, torch.Generator().manual_seed(0)))
    identity, attributes = torch.randn(2, 512), torch.randn(2, 14, 512)
    fused = fuse(identity, attributes)
    assert fused.shape == (2, 14, 1024)
    assert torch.equal(fused[:, 5, :512], identity) and torch.equal(fused[:, :, 512:], attributes)
    assert LatentMapper()(fused).shape == (2, 14, 512)
    with pytest.raises(ValueError, match="fuse"):
        fuse(identity, attributes[0])


def test_blending_matches_opencv_and_keeps_the_outside() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((1, 1, 64, 64), np.float32)
    mask[..., 20:44, 18:40] = 1.0
    generated = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    original = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    # the authors' steps in OpenCV: grow (erode the complement, 5x5, 1 outside), 15x15 Gaussian, σ from size
    complement = np.pad(1 - mask[0, 0], 2, constant_values=1)
    eroded = cv2.erode(complement, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)[
        2:-2, 2:-2
    ]
    reference = cv2.GaussianBlur(1 - eroded, (15, 15), -1)
    assert opencv_sigma(15) == pytest.approx(2.6)
    soft = blend_mask(torch.from_numpy(mask))
    assert np.abs(soft[0, 0].numpy() - reference).max() < 1e-5
    out = blend(generated, original, torch.from_numpy(mask))
    assert torch.equal(out[..., :5, :], original[..., :5, :])  # far outside the mask: the original exactly
    inside = out[..., 30, 28] - generated[..., 30, 28]
    assert inside.abs().max() < 1e-6  # deep inside: the generated face
    with pytest.raises(ValueError, match="odd"):
        blend_mask(torch.from_numpy(mask), grow=4)
