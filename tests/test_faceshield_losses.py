"""FaceShield's training losses (``docs/papers/faceshield.md``, "Losses").

Every term is compared with a reference written differently here (plain Python loops over lists in float64,
expanded formulas, or values worked out by hand), then checked for known properties, for where gradients go,
and for the documented differences of the ``faithful=False`` variants.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from src.papers.faceshield.losses import (
    angle_loss,
    feature_reconstruction_loss,
    fse_loss,
    generator_loss,
    hsic,
    hsic_loss,
    identity_contrastive_loss,
    identity_reconstruction_loss,
    iid_adversarial_loss,
    iid_detector_loss,
    layer_angle,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from src.papers.faceshield.networks import MultiscaleDiscriminator


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    """Seeded standard normal tensor."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- references -------------------------------------------------------------------------------------------


def ref_gram(rows: list[list[float]], block: int | None) -> list[list[float]]:
    """Gaussian kernel by double loops; σ² = lower median of D² (over the top-left block) / 2."""
    n = len(rows)
    d2 = [
        [sum((a - b) ** 2 for a, b in zip(rows[i], rows[j], strict=True)) for j in range(n)] for i in range(n)
    ]
    m = n if block is None else min(block, n)
    values = sorted(d2[i][j] for i in range(m) for j in range(m))
    median = values[(len(values) - 1) // 2]
    two_sigma2 = median if median > 0 else 2 * 1e-10
    return [[math.exp(-d2[i][j] / two_sigma2) for j in range(n)] for i in range(n)]


def ref_hsic(x: Tensor, y: Tensor, block: int | None = 128) -> float:
    """HSIC of one sample's rows via the expanded trace:
    [Σ K∘L − (2/n) Σ_i k_i l_i + (Σ K)(Σ L)/n²]/(n − 1)², k_i, l_i the row sums."""
    k = ref_gram(x.tolist(), block)
    g = ref_gram(y.tolist(), block)
    n = len(k)
    elementwise = sum(k[i][j] * g[i][j] for i in range(n) for j in range(n))
    rows = sum(sum(k[i]) * sum(g[i]) for i in range(n))
    total = sum(map(sum, k)) * sum(map(sum, g))
    return (elementwise - 2 * rows / n + total / n**2) / (n - 1) ** 2


def ref_positions(feature: Tensor, b: int) -> Tensor:
    """Sample ``b``'s positions as rows, by an explicit loop over (h, w)."""
    _, _, h, w = feature.shape
    return torch.stack([feature[b, :, i, j] for i in range(h) for j in range(w)])


def ref_angle(z: Tensor, p: Tensor, skip_first: bool) -> list[float]:
    """Original angle per sample: arccos of the mean channel cosine (channel 0 skipped), folded."""
    out = []
    for b in range(z.shape[0]):
        cosines = []
        for c in range(1 if skip_first else 0, z.shape[1]):
            a, q = z[b, c].flatten().tolist(), p[b, c].flatten().tolist()
            dot = sum(u * v for u, v in zip(a, q, strict=True))
            cosines.append(dot / math.sqrt(sum(u * u for u in a) * sum(v * v for v in q)))
        theta = math.acos(max(-1.0, min(1.0, sum(cosines) / len(cosines))))
        out.append(min(theta, math.pi - theta))
    return out


def cos(a: list[float], b: list[float]) -> float:
    """Cosine of two Python vectors."""
    dot = sum(u * v for u, v in zip(a, b, strict=True))
    return dot / math.sqrt(sum(u * u for u in a) * sum(v * v for v in b))


# --- Stage I: HSIC ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(3, 4), (12, 12)])
@pytest.mark.parametrize("faithful", [True, False])
def test_hsic_matches_a_double_loop_reference(size: tuple[int, int], faithful: bool) -> None:
    """12 × 12 = 144 positions exceed the 128-block, so the bandwidth rule matters there."""
    z, p = randn(2, 3, *size, seed=1), randn(2, 2, *size, seed=2)
    p = p + 0.5 * z[:, :2]  # dependent
    got = hsic_loss([z], [p], faithful=faithful)
    block = 128 if faithful else None
    per_sample = [ref_hsic(ref_positions(z, b), ref_positions(p, b), block) for b in range(2)]
    assert got.item() == pytest.approx(math.log(3) * sum(per_sample) / 2, rel=1e-9)


def test_hsic_bandwidth_block_only_changes_large_maps() -> None:
    z, p = randn(1, 3, 12, 12, seed=3), randn(1, 3, 12, 12, seed=4)
    assert hsic_loss([z], [p], faithful=True).item() != pytest.approx(
        hsic_loss([z], [p], faithful=False).item()
    )
    small_z, small_p = z[..., :8, :8], p[..., :8, :8]  # 64 positions: the block is the whole matrix
    assert hsic_loss([small_z], [small_p], faithful=True) == hsic_loss([small_z], [small_p], faithful=False)


def test_hsic_loss_averages_layers_with_log_channel_weights() -> None:
    z1, p1 = randn(2, 4, 3, 3, seed=5), randn(2, 4, 3, 3, seed=6)
    z2, p2 = randn(2, 8, 2, 2, seed=7), randn(2, 5, 2, 2, seed=8)
    h1 = hsic(z1.flatten(2).transpose(1, 2), p1.flatten(2).transpose(1, 2)).mean()
    h2 = hsic(z2.flatten(2).transpose(1, 2), p2.flatten(2).transpose(1, 2)).mean()
    expected = (math.log(4) * h1 + math.log(8) * h2) / 2
    assert hsic_loss([z1, z2], [p1, p2]).item() == pytest.approx(expected.item(), rel=1e-12)


def test_hsic_separates_independent_from_dependent_samples() -> None:
    x = randn(1, 400, 2, seed=9)
    independent = hsic(x, randn(1, 400, 2, seed=10)).item()
    dependent = hsic(x, x**2).item()
    identical = hsic(x, x).item()
    assert independent < 2e-3
    assert dependent > 10 * independent
    assert identical > dependent


def test_hsic_constant_features_use_the_bandwidth_floor_with_finite_gradients() -> None:
    z = torch.ones(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    p = randn(1, 3, 4, 4, seed=11).requires_grad_()
    loss = hsic_loss([z], [p])
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isfinite(z.grad).all() and torch.isfinite(p.grad).all()


# --- Stage I: angle ---------------------------------------------------------------------------------------


def test_angle_matches_a_loop_reference() -> None:
    z, p = randn(3, 5, 4, 4, seed=12), randn(3, 5, 4, 4, seed=13)
    p = p + 0.8 * z
    got = layer_angle(z, p)
    assert got.tolist() == pytest.approx(ref_angle(z, p, skip_first=True), abs=1e-7)
    assert angle_loss([z, p], [p, z]).item() == pytest.approx(-sum(ref_angle(z, p, True)) / 3, abs=1e-7)


def test_angle_is_minus_half_pi_for_orthogonal_and_zero_for_parallel_maps() -> None:
    z = torch.zeros(2, 3, 2, 2, dtype=torch.float64)
    z[:, :, 0, 0] = 1.0
    orthogonal = torch.zeros_like(z)
    orthogonal[:, :, 1, 1] = 2.0
    for faithful in (True, False):
        assert angle_loss([z], [orthogonal], faithful).item() == pytest.approx(-math.pi / 2, abs=1e-6)
        assert angle_loss([z], [3 * z], faithful).item() == pytest.approx(0.0, abs=1e-3)
        assert angle_loss([z], [-z], faithful).item() == pytest.approx(0.0, abs=1e-3)  # folded


def test_unfaithful_angle_counts_channel_zero() -> None:
    """Channel 0 parallel, the others orthogonal: only ``faithful=False`` sees channel 0."""
    z = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    z[:, :, 0, 0] = 1.0
    p = torch.zeros_like(z)
    p[:, :, 1, 1] = 1.0
    p[:, 0] = z[:, 0]
    assert angle_loss([z], [p], faithful=True).item() == pytest.approx(-math.pi / 2, abs=1e-6)
    assert angle_loss([z], [p], faithful=False).item() == pytest.approx(-math.pi / 3, abs=1e-3)


def test_unfaithful_angle_folds_each_channel_before_averaging() -> None:
    """Channel 1 parallel, channel 2 anti-parallel: the original's mean cosine is 0 (θ = π/2)."""
    z = randn(1, 3, 3, 3, seed=14)
    p = z.clone()
    p[:, 0] = randn(1, 3, 3, seed=15)
    p[:, 2] = -z[:, 2]
    assert angle_loss([z], [p], faithful=True).item() == pytest.approx(-math.pi / 2, abs=1e-7)
    unfaithful = angle_loss([z], [p], faithful=False).item()
    assert unfaithful == pytest.approx(-ref_angle(z[:, :1], p[:, :1], skip_first=False)[0] / 3, abs=2e-3)


def test_angle_gradients_are_finite_for_identical_channels_when_unfaithful() -> None:
    z = randn(1, 3, 3, 3, seed=16).requires_grad_()
    angle_loss([z], [z.detach().clone()], faithful=False).backward()
    assert torch.isfinite(z.grad).all()


# --- Stage I: identity reconstruction and L_FSE -----------------------------------------------------------


def test_identity_reconstruction_by_hand() -> None:
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    same, orthogonal = torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert identity_reconstruction_loss(e, same, e, same).item() == pytest.approx(0.0, abs=1e-7)
    assert identity_reconstruction_loss(e, same, e, orthogonal).item() == pytest.approx(1.0, abs=1e-7)
    half = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # cosines √½ and 1
    expected = 2 - (math.sqrt(0.5) + 1) / 2 - 1
    assert identity_reconstruction_loss(e, half, e, same).item() == pytest.approx(expected, abs=1e-6)


def fse_inputs(seed: int = 20) -> dict:
    """Ten layers (layer 0 of another shape: it is skipped), identities ``[2, 6]``; Z requires grad."""
    shapes = [(3, 8, 8)] + [(4, 3, 3)] * 5 + [(5, 2, 2)] * 4
    z_s = [randn(2, *s, seed=seed + i).requires_grad_() for i, s in enumerate(shapes)]
    z_t = [randn(2, *s, seed=seed + 10 + i).requires_grad_() for i, s in enumerate(shapes)]
    p_s = [
        randn(2, *s, seed=seed + 20 + i) + 0.3 * z.detach()
        for i, (s, z) in enumerate(zip(shapes, z_s, strict=True))
    ]
    p_t = [randn(2, *s, seed=seed + 30 + i) for i, s in enumerate(shapes)]
    p_s[0] = randn(2, 3, 32, 32, seed=seed + 40)  # the image in the original
    explicit = (randn(2, 6, seed=seed + 50), randn(2, 6, seed=seed + 51))
    restricted = (randn(2, 6, seed=seed + 52).requires_grad_(), randn(2, 6, seed=seed + 53).requires_grad_())
    return {
        "z_s": z_s,
        "p_s": p_s,
        "z_t": z_t,
        "p_t": p_t,
        "explicit_ids": explicit,
        "restricted_ids": restricted,
    }


def test_fse_loss_combines_the_terms_with_the_original_weights() -> None:
    x = fse_inputs()
    out = fse_loss(**x)
    angle = -sum(
        sum(ref_angle(z.detach(), p, True)) / 2
        for zs, ps in ((x["z_s"], x["p_s"]), (x["z_t"], x["p_t"]))
        for z, p in zip(zs[1:], ps[1:], strict=True)
    )
    angle /= 9
    independence = 0.0
    for zs, ps in ((x["z_s"], x["p_s"]), (x["z_t"], x["p_t"])):
        layers = [
            math.log(z.shape[1])
            * sum(ref_hsic(ref_positions(z.detach(), b), ref_positions(p, b)) for b in range(2))
            / 2
            for z, p in zip(zs[1:], ps[1:], strict=True)
        ]
        independence += sum(layers) / 9
    (es, et), (rs, rt) = x["explicit_ids"], x["restricted_ids"]
    identity = 2 - sum(cos(a.tolist(), b.tolist()) for a, b in zip(es, rs.detach(), strict=True)) / 2
    identity -= sum(cos(a.tolist(), b.tolist()) for a, b in zip(et, rt.detach(), strict=True)) / 2
    assert out.angle.item() == pytest.approx(angle, abs=1e-7)
    assert out.hsic.item() == pytest.approx(independence, rel=1e-9)
    assert out.identity.item() == pytest.approx(identity, abs=1e-9)
    assert out.total.item() == pytest.approx(angle + 0.5 * independence + 0.5 * identity, abs=1e-7)
    weighted = fse_loss(**x, angle_weight=2.0, hsic_weight=3.0, identity_weight=0.0)
    assert weighted.total.item() == pytest.approx(2 * angle + 3 * independence, abs=1e-7)


def test_fse_loss_ignores_layer_zero_and_the_kl_by_default() -> None:
    x = fse_inputs()
    base = fse_loss(**x).total
    x["z_s"][0] = randn(2, 3, 8, 8, seed=99)
    info = torch.tensor(7.0, dtype=torch.float64)
    assert fse_loss(**x, info=info).total == base
    assert fse_loss(**x, info=info, info_weight=0.1).total.item() == pytest.approx(base.item() + 0.7)
    with pytest.raises(ValueError, match="info"):
        fse_loss(**x, info_weight=0.1)


def test_fse_gradients_reach_the_se_outputs_only() -> None:
    x = fse_inputs()
    fse_loss(**x).total.backward()
    assert all(torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0 for z in x["z_s"][1:] + x["z_t"][1:])
    assert x["z_s"][0].grad is None and x["z_t"][0].grad is None  # skipped layer
    assert all(r.grad.abs().sum() > 0 for r in x["restricted_ids"])


# --- Stage II: LSGAN --------------------------------------------------------------------------------------


def test_lsgan_losses_by_hand() -> None:
    real = [torch.full((1, 1, 4, 4), 0.5), torch.tensor([[[[1.0, 3.0]]]])]
    fake = [torch.full((1, 1, 4, 4), 0.5), torch.tensor([[[[0.0, -2.0]]]])]
    # scale 1: ½(0.25 + 0.25) = 0.25; scale 2: ½((0 + 4)/2 + (0 + 4)/2) = 2; mean 1.125
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(1.125)
    # scale 1: 0.25; scale 2: (1 + 9)/2 = 5; mean 2.625
    assert lsgan_generator_loss(fake).item() == pytest.approx(2.625)
    with pytest.raises(ValueError):
        lsgan_discriminator_loss(real, fake[:1])


def test_lsgan_gradients_go_to_the_right_network() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(ndf=4, n_layers=2, num_d=2)
    x_t = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    lsgan_discriminator_loss(d(x_t), d(y.detach())).backward()
    assert y.grad is None
    assert all(p.grad is not None for p in d.parameters())
    d.zero_grad(set_to_none=True)
    d.requires_grad_(False)  # frozen during the generator step
    lsgan_generator_loss(d(y)).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert all(p.grad is None for p in d.parameters())


# --- Stage II: IID ----------------------------------------------------------------------------------------


def test_iid_detector_loss_by_hand_and_gradients() -> None:
    e_s, e_t, e_y = (torch.tensor([[1.0, 0.0]]).requires_grad_() for _ in range(3))
    phi_s = torch.tensor([[2.0, 0.0]], requires_grad=True)  # cos 1
    phi_t = torch.tensor([[1.0, 1.0]], requires_grad=True)  # cos √½
    phi_y = torch.tensor([[-1.0, 1.0]], requires_grad=True)  # |cos| √½; cos(Φt, Φy) = 0
    loss = iid_detector_loss(e_s, e_t, e_y, phi_s, phi_t, phi_y)
    assert loss.item() == pytest.approx(-2 * (1 + math.sqrt(0.5)) + math.sqrt(0.5), abs=1e-6)
    loss.backward()
    assert all(e.grad is None for e in (e_s, e_t, e_y))  # explicit identities are targets
    assert all(p.grad is not None for p in (phi_t, phi_y))
    weights = iid_detector_loss(e_s, e_t, e_y, phi_s, phi_t, phi_t, real_weight=1.0, mismatch_weight=3.0)
    assert weights.item() == pytest.approx(-(1 + math.sqrt(0.5)) + math.sqrt(0.5) - 3.0, abs=1e-6)


def test_iid_adversarial_loss_by_hand_and_gradients() -> None:
    phi_t = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    phi_y = torch.tensor([[-1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    loss = iid_adversarial_loss(phi_t, phi_y)
    assert loss.item() == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-6)
    loss.backward()
    assert phi_t.grad is None and phi_y.grad is not None


# --- Stage II: feature, identity and total ----------------------------------------------------------------


def test_feature_reconstruction_by_hand() -> None:
    y = [torch.zeros(1, 3, 2, 2), torch.ones(2, 4, 1, 1)]
    t = [
        torch.full((1, 3, 2, 2), 2.0),
        torch.tensor([1.0, 1.0, 1.0, 5.0]).reshape(1, 4, 1, 1).repeat(2, 1, 1, 1),
    ]
    assert feature_reconstruction_loss(y, t).item() == pytest.approx((4.0 + 4.0) / 2)


def test_identity_contrastive_loss_against_a_loop_reference() -> None:
    y_id, e_s, e_t, z_t = (
        randn(4, 5, seed=30),
        randn(4, 5, seed=31),
        randn(4, 5, seed=32),
        randn(4, 5, seed=33),
    )
    e_t[0] = e_s[0] + 0.01 * e_t[0]  # a similar pair (cos ≥ 0.3): left out of l_neg
    out = identity_contrastive_loss(y_id, e_s, e_t, z_t)
    rows = torch.Tensor.tolist
    positive = -sum(cos(a, b) for a, b in zip(rows(y_id), rows(e_s), strict=True)) / 4
    pairs = [
        (cos(y, z), cos(s, t))
        for y, z, s, t in zip(rows(y_id), rows(z_t), rows(e_s), rows(e_t), strict=True)
        if cos(s, t) < 0.3
    ]
    assert 0 < len(pairs) < 4
    negative = sum((a - b) ** 2 for a, b in pairs) / len(pairs)
    assert out.positive.item() == pytest.approx(positive, abs=1e-12)
    assert out.negative.item() == pytest.approx(negative, abs=1e-12)
    assert out.total.item() == pytest.approx(0.5 * negative + 2 * positive, abs=1e-12)


def test_identity_contrastive_loss_without_negative_pairs() -> None:
    e = randn(3, 5, seed=34)
    y_id = e.clone().requires_grad_()
    out = identity_contrastive_loss(y_id, e, e, randn(3, 5, seed=35))
    assert out.negative.item() == 0.0
    assert out.total.item() == pytest.approx(-2.0)
    out.total.backward()
    assert torch.isfinite(y_id.grad).all()


def test_generator_loss_combines_the_terms_with_the_original_weights() -> None:
    fake = [torch.full((1, 1, 2, 2), 0.0, requires_grad=True)]  # L_adv = 1
    phi_t, phi_y = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]], requires_grad=True)  # √½
    y_feats = [torch.ones(1, 2, 2, 2, requires_grad=True)]
    target = [torch.zeros(1, 2, 2, 2)]  # L_per = 1
    icl = identity_contrastive_loss(
        torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]), *[torch.eye(2)[:1]] * 2
    )
    out = generator_loss(fake, phi_t, phi_y, y_feats, target, icl)
    # l_pos = −cos(y, s) = 0; cos(s, t) = 1 ≥ 0.3, so no pair enters l_neg
    assert icl.total.item() == 0.0
    assert out.total.item() == pytest.approx(3.3 + 1.6 * math.sqrt(0.5) + 1.0, abs=1e-6)
    custom = generator_loss(
        fake, phi_t, phi_y, y_feats, target, icl, adv_weight=1, iid_weight=0, feature_weight=2
    )
    assert custom.total.item() == pytest.approx(3.0)
    out.total.backward()
    assert fake[0].grad is not None and phi_y.grad is not None and y_feats[0].grad is not None
