"""iFADIT's reconstructed training objectives: each term's value on constructed inputs, weights that drop a
term without computing it, and bad weights named."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.config.errors import ConfigError
from src.papers.ifadit.losses import (
    PHASE1_WEIGHTS,
    PHASE2_WEIGHTS,
    check_weights,
    phase1_terms,
    phase2_terms,
    weighted_total,
)


def unit(*rows: list[float]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def test_phase2_terms_on_constructed_identities() -> None:
    z = unit([1.0, 0.0], [0.0, 1.0])
    same, orthogonal = z.clone(), unit([0.0, 1.0], [1.0, 0.0])
    images = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    observed = {
        "anonymous": lambda: same,  # not anonymised at all: cos 1
        "anonymous_other": lambda: orthogonal,
        "recovered": lambda: same,  # perfect recovery
        "wrong": lambda: orthogonal,  # the wrong key lands elsewhere
        "compensated": lambda: z + 0.5,
        "images": lambda: (images + 0.25, images),
    }
    terms = phase2_terms(z, z, observed, PHASE2_WEIGHTS, margin=0.1)
    assert terms["anonymity"].item() == pytest.approx(0.9)  # ReLU(1 - 0.1)
    assert terms["diversity"].item() == pytest.approx(0.0)  # cos(same, orthogonal) = 0 < margin
    assert terms["recovery"].item() == pytest.approx(0.0)
    assert terms["wrong_key"].item() == pytest.approx(0.0)
    assert terms["compensation"].item() == pytest.approx(0.25)
    assert terms["image_recovery"].item() == pytest.approx(0.25)
    weights = {**PHASE2_WEIGHTS, "anonymity": 2.0}
    assert weighted_total(terms, weights).item() == pytest.approx(2 * 0.9 + 0.25 + 0.25)


def test_a_zero_weight_drops_the_term_without_computing_it() -> None:
    def never() -> torch.Tensor:
        raise AssertionError("computed a term whose weight is 0")

    z = unit([1.0, 0.0])
    weights = check_weights(
        {"diversity": 0, "wrong_key": 0, "image_recovery": 0}, PHASE2_WEIGHTS, "model.phase2"
    )
    observed = {
        "anonymous": lambda: z,
        "anonymous_other": never,
        "recovered": lambda: z,
        "wrong": never,
        "compensated": lambda: z,
        "images": never,
    }
    assert set(phase2_terms(z, z, observed, weights)) == {"anonymity", "recovery", "compensation"}
    images = torch.rand(2, 3, 8, 8)
    terms = phase1_terms(
        images, images, z, never, None, {"l2": 1.0, "lpips": 0.0, "identity": 0.0, "swap_identity": 0.0}
    )
    assert list(terms) == ["l2"] and terms["l2"].item() == 0.0
    with pytest.raises(ConfigError, match="no perceptual network"):
        phase1_terms(images, images, z, never, None, PHASE1_WEIGHTS)
    with pytest.raises(ConfigError, match="nothing to train"):
        weighted_total({}, PHASE1_WEIGHTS)


def test_phase1_identity_term_and_weight_checks() -> None:
    images = torch.rand(2, 3, 8, 8)
    z = unit([1.0, 0.0], [0.0, 1.0])
    terms = phase1_terms(
        images,
        images * 0.5,
        z,
        lambda: unit([0.0, 1.0], [0.0, 1.0]),
        lambda a, b: (a - b).abs(),
        PHASE1_WEIGHTS,
        swapped=lambda: (unit([1.0, 0.0], [1.0, 0.0]), unit([1.0, 0.0], [-1.0, 0.0])),
    )
    assert terms["identity"].item() == pytest.approx(0.5)  # cos 0 then cos 1
    assert terms["swap_identity"].item() == pytest.approx(1.0)  # cos 1 then cos -1
    with pytest.raises(ConfigError, match="no swapped faces"):
        phase1_terms(images, images, z, lambda: z, lambda a, b: (a - b).abs(), PHASE1_WEIGHTS)
    assert terms["lpips"].item() == pytest.approx((images * 0.5).mean().item())
    with pytest.raises(ConfigError, match="unknown loss term 'idd'"):
        check_weights({"idd": 1.0}, PHASE1_WEIGHTS, "model.phase1")
    with pytest.raises(ConfigError, match="must be >= 0"):
        check_weights({"l2": -1.0}, PHASE1_WEIGHTS, "model.phase1")
