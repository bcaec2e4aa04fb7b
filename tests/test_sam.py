"""SAM and the linear-decay schedule: one step equals the hand computation; Lightning's manual loop
counts steps and decays the learning rate per epoch."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from src.optim.sam import SAM
from src.optim.schedules import LinearDecayFactor, linear_decay


def _loss(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x @ w - y) ** 2).mean()


@pytest.mark.parametrize("adaptive", [False, True])
def test_one_sam_step_equals_the_hand_computation(adaptive: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, generator=g)
    w0 = torch.randn(3, generator=g)
    rho, lr = 0.05, 0.1
    # by hand: gradient at w, ascent to w + e, gradient there, SGD step from w
    w = w0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_loss(w, x, y), w)
    scaled = (w0.abs() if adaptive else 1.0) * grad
    e = (w0.pow(2) if adaptive else 1.0) * grad * rho / scaled.norm()
    w_adv = (w0 + e).requires_grad_(True)
    (grad_adv,) = torch.autograd.grad(_loss(w_adv, x, y), w_adv)
    expected = w0 - lr * grad_adv

    param = nn.Parameter(w0.clone())
    opt = SAM([param], functools.partial(torch.optim.SGD), rho=rho, adaptive=adaptive, lr=lr)
    _loss(param, x, y).backward()

    def closure() -> torch.Tensor:
        loss = _loss(param, x, y)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(param.detach(), expected, atol=1e-7)
    assert opt.param_groups is opt.base_optimizer.param_groups


def test_sam_refuses_misuse() -> None:
    param = nn.Parameter(torch.ones(2))
    opt = SAM([param], functools.partial(torch.optim.SGD), lr=0.1)
    with pytest.raises(RuntimeError, match="needs a closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        opt.first_step()
    with pytest.raises(ValueError, match="rho must be >= 0"):
        SAM([param], functools.partial(torch.optim.SGD), rho=-1.0, lr=0.1)


def test_linear_decay_is_flat_then_linear_to_zero() -> None:
    factor = LinearDecayFactor(total=8, start=6)
    assert [factor(e) for e in range(9)] == [1, 1, 1, 1, 1, 1, 1.0, 0.5, 0.0]
    opt = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=1.0)
    scheduler = linear_decay(opt, total_epochs=4, decay_start=0.75)  # decays from epoch 3
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs == [1.0, 1.0, 1.0, 1.0] and opt.param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="total_epochs"):
        linear_decay(opt, total_epochs=0)
