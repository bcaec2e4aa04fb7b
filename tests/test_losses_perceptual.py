"""The perceptual training loss: same values as the metrics package, gradients, honest names, bad input."""

from __future__ import annotations

import pytest
import torch

from src.losses.perceptual import PerceptualLoss
from src.metrics.perceptual import lpips, st_lpips


def pair(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    return x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_st_lpips_loss_equals_the_metric_and_has_gradients() -> None:
    x, y = pair()
    loss = PerceptualLoss("st_lpips", "alex")
    assert loss.report_name == "st_lpips_alex"
    y = y.requires_grad_()
    value = loss(x, y)
    torch.testing.assert_close(value, st_lpips(x, y.detach(), "alex", input_range="[-1,1]").mean())
    value.backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    assert not list(loss.parameters()) and not loss.state_dict(), "the frozen network must stay outside"


@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_random_trunk_is_labelled_and_matches_the_metric() -> None:
    x, y = pair(1)
    loss = PerceptualLoss("lpips_random", "alex", seed=3)
    assert loss.report_name == "lpips_alex_RANDOM"
    expected = lpips(x, y, "alex", input_range="[-1,1]", random_backbone=True, seed=3)
    torch.testing.assert_close(loss.per_sample(x, y), expected)


def test_unclamped_outputs_are_accepted_in_training() -> None:
    x, y = pair(2)
    assert torch.isfinite(PerceptualLoss("st_lpips", "alex")(x * 1.05, y))


def test_bad_arguments_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    with pytest.raises(ValueError, match="kind"):
        PerceptualLoss("ssim")
    with pytest.raises(ValueError, match="net"):
        PerceptualLoss("st_lpips", "squeeze")
    loss = PerceptualLoss("st_lpips", "alex")
    with pytest.raises(ValueError, match="st_lpips_alex"):
        loss(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 16, 16))
    x, y = pair()
    with pytest.raises(ValueError, match="NaN|finite"):
        loss(x * float("nan"), y)
