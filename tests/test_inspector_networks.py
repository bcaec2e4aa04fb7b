"""Inspector networks and batched defence: feature taps, reconstructor shapes, the flip, the seeded random
rescaling, batch/per-sample agreement and input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from src.networks.detectors import DetectorNet, build_detector_net
from src.papers.inspector.defense import InspectorDefense, flip_logits, random_scales
from src.papers.inspector.networks import (
    FEATURE_CHANNELS,
    AutoThresholder,
    Corrector,
    Reconstructor,
    attack_probability,
    multilevel_features,
)

SIZE = 64


class _Fixed(nn.Module):
    """A stand-in for A or C whose per-sample decision is set by the test (``pattern``, bool [B])."""

    def __init__(self, both_columns: bool) -> None:
        super().__init__()
        self.both_columns = both_columns
        self.pattern = torch.zeros(0, dtype=torch.bool)

    def forward(self, x: Tensor) -> Tensor:
        score = torch.where(self.pattern, 20.0, -20.0) + 0 * x.mean(dim=(1, 2, 3))
        first = score if self.both_columns else torch.zeros_like(score)
        return torch.stack([first, score], dim=-1)


@pytest.fixture(scope="module")
def parts() -> tuple[DetectorNet, Reconstructor, AutoThresholder, Corrector]:
    torch.manual_seed(0)
    detector = build_detector_net("small_cnn", input_size=SIZE).eval()
    return (
        detector,
        Reconstructor(FEATURE_CHANNELS["small_cnn"]).eval(),
        AutoThresholder().eval(),
        Corrector().eval(),
    )


def _images(batch: int, size: int = SIZE, seed: int = 1) -> Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _stubbed(parts: tuple, reject: list[bool], flip: list[bool], **kwargs: object) -> InspectorDefense:
    detector, reconstructor, _, _ = parts
    autothresh, corrector = _Fixed(both_columns=False), _Fixed(both_columns=True)
    autothresh.pattern, corrector.pattern = torch.tensor(reject), torch.tensor(flip)
    return InspectorDefense(detector, reconstructor, autothresh, corrector, **kwargs)


def test_small_cnn_features_and_reconstruction(parts: tuple) -> None:
    detector, reconstructor, _, _ = parts
    images = _images(2)
    with torch.no_grad():
        logits, features = multilevel_features(detector, images)
        torch.testing.assert_close(logits, detector(images))
        shapes = [tuple(f.shape[1:]) for f in features]
        assert shapes == [(512, 2, 2), (256, 4, 4), (128, 8, 8), (64, 16, 16)]
        rec = reconstructor(features, (SIZE, SIZE))
    assert rec.shape == images.shape
    assert rec.min() >= -1 and rec.max() <= 1


def test_xception_features_and_reconstruction_shapes() -> None:
    detector = build_detector_net("xception", input_size=96).eval()
    images = _images(1, size=96)
    with torch.no_grad():
        logits, features = multilevel_features(detector, images)
        rec = Reconstructor().eval()(features, images.shape[-2:])
    assert logits.shape == (1, 2)
    assert [f.shape[1] for f in features] == list(FEATURE_CHANNELS["xception"])
    assert [f.shape[-1] for f in features] == [3, 6, 12, 23]  # odd sizes: the resize before each skip
    assert rec.shape == images.shape


def test_unknown_detector_is_refused(parts: tuple) -> None:
    detector = build_detector_net("small_cnn")
    detector.name = "efficientnet_b4"
    with pytest.raises(ValueError, match="efficientnet_b4"):
        multilevel_features(detector, _images(1))


def test_flip_swaps_argmax_for_two_classes() -> None:
    logits = (
        torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
        * torch.logspace(-3, 2, 2000)[:, None]
    )
    flipped = flip_logits(logits)
    assert torch.equal(flipped.argmax(-1), 1 - logits.argmax(-1))
    tie = flip_logits(torch.tensor([[0.3, 0.3]]))
    assert torch.isfinite(tie).all() and tie[0, 0] == tie[0, 1]


def test_attack_probability_is_the_weighted_posterior() -> None:
    corrector, detector = torch.tensor([[0.0, 100.0]]), torch.tensor([[0.0, 0.0]])
    torch.testing.assert_close(attack_probability(corrector, detector), torch.tensor([0.75]))


def test_defence_rejects_flips_and_keeps_rejected_logits(parts: tuple) -> None:
    reject, flip = [True, False, False, True], [False, True, False, True]
    defense = _stubbed(parts, reject, flip)
    images = _images(4)
    with torch.no_grad():
        out, plain = defense(images), parts[0](images)
    assert out.rejected.tolist() == reject
    assert out.flipped.tolist() == [False, True, False, False]
    assert out.attack_probability.shape == (4,)
    torch.testing.assert_close(out.logits[out.rejected], plain[out.rejected])
    assert out.logits[1].argmax() == 1 - plain[1].argmax()
    assert out.logits[2].argmax() == plain[2].argmax()


def test_randomisation_is_seeded_and_keeps_argmax(parts: tuple) -> None:
    images = _images(6)
    keep = [False] * 6

    def run(**kwargs: object) -> Tensor:
        with torch.no_grad():
            return _stubbed(parts, keep, keep, **kwargs)(images).logits

    with torch.no_grad():
        plain = parts[0](images)
    first, again, other = run(generator_seed=0), run(generator_seed=0), run(generator_seed=1)
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    assert torch.equal(first.argmax(-1), plain.argmax(-1))
    ratio = first / plain
    assert (ratio > 0).all() and not torch.allclose(first, plain)
    torch.testing.assert_close(run(randomize=False), plain)
    scales = random_scales(10_000, torch.Generator().manual_seed(0))
    small = scales <= 1
    assert (scales > 0).all() and 0.45 < small.float().mean() < 0.55
    assert set(scales[~small].tolist()) <= set(map(float, range(2, 101)))


def test_batch_equals_per_sample(parts: tuple) -> None:
    defense = InspectorDefense(*parts, randomize=False)
    images = _images(4)
    with torch.no_grad():
        batch = defense(images)
        singles = [defense(images[i : i + 1]) for i in range(4)]
    for name in ("logits", "rejected", "attack_probability", "flipped"):
        expected = torch.cat([getattr(s, name) for s in singles])
        torch.testing.assert_close(getattr(batch, name), expected, rtol=1e-4, atol=1e-5)


def test_gradients_reach_the_input_and_parts_stay_frozen(parts: tuple) -> None:
    defense = InspectorDefense(*parts)
    defense.train()
    assert not any(m.training for m in defense.modules())
    assert not any(p.requires_grad for p in defense.parameters())
    images = _images(3).requires_grad_(True)
    defense(images).logits.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
