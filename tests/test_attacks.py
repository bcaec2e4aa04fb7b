"""src.attacks: registry contract, equality with torchattacks, determinism, LogitsOnly, BPDA, EOT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from src.attacks import ATTACKS, BPDA, LogitsOnly, build_attack, victim_mode
from src.networks.detectors import build_detector_net

EPS = {"linf": 8, "l2": 0.5, None: None}  # budget per norm, in build_attack's units


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _analytic_victim(margin: float = 0.5) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A 2-class linear model on 1x8x8 images: logit gap z = s·(x - 0.5) with s in {±1}^64.

    Images are built with |z| = margin exactly, so clean accuracy is 100%; an L∞ step of eps moves z by
    64 * eps (2.0 at eps=8/255) and an L2 step by 8 * eps, enough to flip every label.
    """
    g = torch.Generator().manual_seed(0)
    s = torch.where(torch.rand(64, generator=g) < 0.5, -1.0, 1.0)
    linear = nn.Linear(64, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([-s / 2, s / 2]))
        linear.bias.copy_(torch.tensor([s.sum() / 4, -s.sum() / 4]))
    model = nn.Sequential(nn.Flatten(), linear)
    x = (0.5 + 0.1 * (torch.rand(8, 64, generator=g) - 0.5)).double()
    target = torch.tensor([margin, -margin] * 4, dtype=torch.float64)
    x = x + ((target - (x - 0.5) @ s.double()) / 64)[:, None] * s.double()[None]
    y = (target > 0).long()
    return model, x.float().view(8, 1, 8, 8), y


def _small_net(classes: int = 4) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny random conv net on 8 images of 3x16x16; labels are its own clean predictions."""
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, classes),
    ).eval()
    x = torch.rand(8, 3, 16, 16, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


class _TupleNet(nn.Module):
    """Returns (logits, features), as many detectors and recognizers do."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), x.flatten(1)


class _NoisyNet(nn.Module):
    """A randomised defence: Gaussian noise on the input, in eval mode too."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 0.05 * torch.randn_like(x))


def _fast(name: str) -> dict:
    return (
        {"cw_l2": {"steps": 10}, "autoattack": {"n_classes": 4}}.get(name, {"steps": 3})
        if name != "fgsm"
        else {}
    )


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_returns_valid_images_in_the_budget(name: str) -> None:
    model, x, y = _small_net()
    spec = ATTACKS[name]
    attack = build_attack(name, model, eps=EPS[spec.norm], seed=0, **_fast(name))
    adv = attack(x, y)
    assert adv.shape == x.shape and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    delta = (adv - x).flatten(1)
    if spec.norm == "linf":
        assert delta.abs().max() <= 8 / 255 + 1e-6
    elif spec.norm == "l2":
        assert delta.norm(dim=1).max() <= 0.5 + 1e-5
    record = attack.describe()
    assert record["name"] == name and record["seed"] == 0 and record["norm"] == spec.norm
    with torch.no_grad():  # the attack raises the victim's loss (C&W may keep an image it cannot flip)
        clean_loss, adv_loss = (F.cross_entropy(model(v), y).item() for v in (x, adv))
    assert adv_loss > clean_loss or (name == "cw_l2" and adv_loss >= clean_loss), (clean_loss, adv_loss)


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_equal_to_torchattacks(name: str) -> None:
    model, x, y = _small_net()
    torch.manual_seed(7)
    if name == "pgd":
        ref = torchattacks.PGD(model, eps=4 / 255, alpha=1 / 255, steps=5, random_start=True)(x, y)
        ours = build_attack("pgd", model, eps=4, seed=7, steps=5, alpha=1)(x, y)
    else:
        ref = torchattacks.FGSM(model, eps=4 / 255)(x, y)
        ours = build_attack("fgsm", model, eps=4, seed=7)(x, y)
    assert (ref - x).abs().max() > 1 / 255  # the reference really attacked
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_equal_to_torchattacks_on_a_detector_net() -> None:
    net = build_detector_net("small_cnn", input_size=32).eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 0, 1])
    torch.manual_seed(3)
    ref = torchattacks.PGD(net, eps=4 / 255, alpha=2 / 255, steps=2)(x, y)
    torch.testing.assert_close(build_attack("pgd", net, eps=4, seed=3, steps=2)(x, y), ref, rtol=0, atol=1e-6)


def test_seeding_is_deterministic_and_leaves_global_rng_alone() -> None:
    model, x, y = _small_net()
    state = torch.get_rng_state()
    a = build_attack("pgd", model, eps=8, seed=1, steps=2)(x, y)
    assert torch.equal(torch.get_rng_state(), state)
    b = build_attack("pgd", model, eps=8, seed=1, steps=2)(x, y)
    c = build_attack("pgd", model, eps=8, seed=2, steps=2)(x, y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    build_attack("apgd", model, eps=8, seed=1, steps=2)(x, y)  # torchattacks' APGD seeds the global RNG
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_l2", "cw_l2", "apgd", "eot_pgd"])
def test_attacks_lower_the_accuracy_of_an_analytic_victim(name: str) -> None:
    model, x, y = _analytic_victim()
    assert _accuracy(model, x, y) == 1.0
    adv = build_attack(name, model, eps=EPS[ATTACKS[name].norm], seed=0)(x, y)
    assert _accuracy(model, adv, y) <= 0.25


def test_logits_only_fixes_tuple_models() -> None:
    net, x, y = _small_net()
    model = _TupleNet(net)
    with pytest.raises(TypeError, match="tuple"):
        torchattacks.PGD(model, eps=8 / 255, steps=1)(x, y)
    assert torchattacks.PGD(LogitsOnly(model), eps=8 / 255, steps=1)(x, y).shape == x.shape
    with pytest.raises(ValueError, match="tuple_output_index"):
        build_attack("pgd", model, eps=8, steps=1)(x, y)
    torch.manual_seed(0)
    direct = build_attack("pgd", net, eps=8, steps=1)(x, y)
    wrapped = build_attack("pgd", model, eps=8, steps=1, tuple_output_index=0)(x, y)
    assert torch.equal(direct, wrapped)
    assert torch.equal(LogitsOnly(lambda t: {"logits": t}, "logits").forward(x), x)  # type: ignore[arg-type]


def _quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255) / 255


def test_bpda_gradient_is_the_identity_s() -> None:
    x = torch.rand(5, requires_grad=True)
    w = torch.randn(5)
    (BPDA(_quantise)(x) * w).sum().backward()
    assert torch.equal(x.grad, w)
    x.grad = None
    (_quantise(x) * w).sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    x2 = torch.rand(5, requires_grad=True)
    (BPDA(_quantise, backward=lambda t: 2 * t)(x2) * w).sum().backward()  # a custom approximation
    assert torch.allclose(x2.grad, 2 * w)
    assert torch.equal(BPDA(_quantise)(x.detach()), _quantise(x.detach()))


def test_bpda_attack_succeeds_where_the_plain_gradient_is_zero() -> None:
    model, x, y = _analytic_victim()
    x = _quantise(x)
    plain = nn.Sequential(nn.Identity(), model)
    plain[0].forward = _quantise  # type: ignore[method-assign]
    assert _accuracy(plain, x, y) == 1.0
    no_grad_adv = build_attack("pgd", plain, eps=8, random_start=False)(x, y)
    assert torch.equal(no_grad_adv, x)  # zero gradient: PGD cannot move
    bpda = nn.Sequential(BPDA(_quantise), model)
    adv = build_attack("pgd", bpda, eps=8, random_start=False)(x, y)
    assert _accuracy(bpda, adv, y) == 0.0


def test_eot_pgd_is_reproducible_on_a_randomised_model() -> None:
    net, x, y = _small_net()
    model = _NoisyNet(net)
    a = build_attack("eot_pgd", model, eps=8, seed=5, steps=2, eot_iter=3)(x, y)
    b = build_attack("eot_pgd", model, eps=8, seed=5, steps=2, eot_iter=3)(x, y)
    assert torch.equal(a, b)
    assert (a - x).abs().max() <= 8 / 255 + 1e-6


def test_victim_mode_restores_mode_and_writes_no_grads() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), victim_mode(model):
        assert not model.training and torch.is_grad_enabled()
        assert not torch.is_autocast_enabled("cpu")
        assert model(torch.rand(2, 4)).dtype == torch.float32
    assert model.training and all(p.requires_grad for p in model.parameters())
    x, y = torch.rand(6, 4), torch.tensor([0, 1] * 3)
    for name in ("pgd", "cw_l2"):  # CW calls loss.backward(): the victim's .grad must stay untouched
        spec = ATTACKS[name]
        build_attack(name, model, eps=EPS[spec.norm], steps=2)(x, y)
        assert model.training
        assert all(p.grad is None for p in model.parameters())


def test_victim_mode_keeps_frozen_parts_in_eval_mode() -> None:
    """A victim mixing modes (a frozen, eval-mode part inside a training wrapper) gets each module's own
    mode back: ``model.train(True)`` would switch the frozen part's BatchNorm to training statistics."""
    frozen = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model = nn.Sequential(frozen, nn.Dropout(0.5), nn.Linear(4, 2)).train()
    frozen.eval()
    build_attack("pgd", model, eps=8, steps=2)(torch.rand(6, 4), torch.tensor([0, 1] * 3))
    assert model.training and model[1].training
    assert not frozen.training and not frozen[1].training


def test_attacks_run_inside_inference_mode() -> None:
    """Lightning's validation and test loops run under ``torch.inference_mode``: attacks still work there
    and give the same images as outside."""
    model, x, y = _small_net()
    outside = build_attack("pgd", model, eps=8, steps=2)(x, y)
    with torch.inference_mode():
        inside = build_attack("pgd", model, eps=8, steps=2)(x.clone(), y.clone())
    assert torch.equal(inside, outside)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "nope", "eps": 8}, "available: apgd, autoattack"),
        ({"name": "pgd", "eps": -1}, "'pgd': eps must be >= 0"),
        ({"name": "pgd", "eps": 8, "steps": 0}, "'pgd': option 'steps'"),
        ({"name": "eot_pgd", "eps": 8, "eot_iter": 0}, "'eot_pgd': option 'eot_iter'"),
        ({"name": "fgsm", "eps": 8, "steps": 3}, "'fgsm': unknown option"),
        ({"name": "cw_l2", "eps": 8}, "'cw_l2' is unbounded"),
        ({"name": "pgd", "eps": None}, "'pgd': eps is required"),
        ({"name": "autoattack", "eps": 8, "n_classes": 2}, "'autoattack': option 'n_classes'"),
    ],
)
def test_invalid_options_raise_clear_errors(kwargs: dict, match: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        build_attack(name, nn.Linear(2, 2), **kwargs)


def test_images_outside_unit_range_are_rejected() -> None:
    model, x, y = _small_net()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        build_attack("fgsm", model, eps=8)(x * 2 - 1, y)
