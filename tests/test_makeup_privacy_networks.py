"""Makeup-privacy networks: the VGG19 encoder and its loader, the semantic correspondence (against a naive
double loop over positions and patches, and batched against per-sample), the SPADE generator and the
multiscale discriminator (exact parameter counts of the original definitions, on the ``meta`` device)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from src.papers.makeup_privacy import discriminator as disc_module
from src.papers.makeup_privacy import generator as gen_module
from src.papers.makeup_privacy.correspondence import (
    SemanticCorrespondence,
    correspondence_logits,
    correspondence_weights,
    soft_one_hot,
    warp_level,
)
from src.papers.makeup_privacy.discriminator import MultiscaleDiscriminator
from src.papers.makeup_privacy.generator import SPADEGenerator, positional_norm
from src.papers.makeup_privacy.vgg import VGG19Features


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are tiny, and on a busy 2-core machine OpenMP workers spinning
    against other processes made each small convolution ~15x slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- VGG19 encoder ---------------------------------------------------------------------------------------


def test_vgg_returns_four_levels_deepest_first_and_is_frozen() -> None:
    torch.manual_seed(0)
    vgg = VGG19Features(width_divisor=8)
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    out = vgg.train()(images)
    assert [tuple(t.shape) for t in out] == [(2, 64, 4, 4), (2, 32, 8, 8), (2, 16, 16, 16), (2, 8, 32, 32)]
    assert vgg.channels == (64, 32, 16, 8) and not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters()) and (out[0] >= 0).all()
    out[0].sum().backward()  # gradients reach the image, not the weights
    assert images.grad is not None and all(p.grad is None for p in vgg.parameters())
    # relu1_1 is conv1_1 + ReLU; the ImageNet option only changes the input
    assert torch.allclose(out[3], torch.relu(vgg.features[0](images)))
    normalized = VGG19Features(width_divisor=8, imagenet_normalize=True)
    normalized.load_state_dict(vgg.state_dict())
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = vgg(((images + 1) / 2 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(normalized(images), expected, strict=True))


def test_vgg_loads_torchvision_keys_and_names_bad_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = VGG19Features()
    assert n_params(source) == 3_505_728  # torchvision's VGG19 features[:21]
    state = source.state_dict()
    assert set(state) == {
        f"features.{i}.{kind}" for i in (0, 2, 5, 7, 10, 12, 14, 16, 19) for kind in ("weight", "bias")
    }
    # torchvision's deeper layers and classifier are in the file and skipped
    extra = {"features.21.weight": torch.zeros(1), "classifier.6.bias": torch.zeros(1000)}
    torch.save({**state, **extra}, tmp_path / "vgg19-dcbb9e9d.pth")
    loaded = VGG19Features(weights=str(tmp_path / "vgg19-dcbb9e9d.pth"))
    images = torch.rand(1, 3, 16, 16) * 2 - 1
    assert all(torch.equal(a, b) for a, b in zip(loaded(images), source(images), strict=True))

    bad = {k: v for k, v in state.items() if k != "features.19.weight"}
    bad["head.fc.weight"] = torch.zeros(2)
    bad["features.0.bias"] = torch.zeros(3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth") as error:
        VGG19Features(weights=str(tmp_path / "bad.pth"))
    message = str(error.value)
    assert "features.19.weight" in message and "head.fc.weight" in message and "features.0.bias" in message
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        VGG19Features(weights=str(tmp_path / "absent.pth"))
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth"):
        VGG19Features(weights=str(tmp_path / "list.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="text.pth"):
        VGG19Features(weights=str(tmp_path / "text.pth"))
    with pytest.raises(ValueError, match="width_divisor=1"):
        VGG19Features(weights=str(tmp_path / "vgg19-dcbb9e9d.pth"), width_divisor=2)


# --- correspondence ----------------------------------------------------------------------------------------


def naive_warp(
    x: torch.Tensor,
    y: torch.Tensor,
    xs: torch.Tensor | None,
    ys: torch.Tensor | None,
    patch: int,
    soft: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """One sample ``[C, H, W]``: explicit loops over source positions and reference patches."""
    h, w = x.shape[1:]
    starts_x = [(i, j) for i in range(0, h - patch + 1, patch) for j in range(0, w - patch + 1, patch)]
    starts_y = [
        (i, j)
        for i in range(0, y.shape[1] - patch + 1, patch)
        for j in range(0, y.shape[2] - patch + 1, patch)
    ]
    out = torch.zeros_like(x)
    for i, j in starts_x:
        p = x[:, i : i + patch, j : j + patch]
        scores = []
        for a, b in starts_y:
            q = y[:, a : a + patch, b : b + patch]
            score = (p * q).sum() / (q.norm() + eps)
            if xs is not None and ys is not None:
                sq = ys[:, a : a + patch, b : b + patch]
                score = score * (xs[:, i : i + patch, j : j + patch] * sq).sum() / (sq.norm() + eps)
            scores.append(score)
        scores_t = torch.stack(scores)
        weights = torch.softmax(scores_t, 0) if soft else (scores_t == scores_t.max()).to(x.dtype)
        for k, (a, b) in enumerate(starts_y):
            out[:, i : i + patch, j : j + patch] += weights[k] * y[:, a : a + patch, b : b + patch]
    return out


@pytest.mark.parametrize(("patch", "soft", "semantic"), [(1, True, True), (2, True, True), (2, False, False)])
def test_warp_equals_a_naive_double_loop(patch: int, soft: bool, semantic: bool) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 5, 7, dtype=torch.float64), torch.randn(2, 3, 6, 4, dtype=torch.float64)
    xs = torch.softmax(torch.randn(2, 4, 5, 7, dtype=torch.float64), 1) if semantic else None
    ys = torch.softmax(torch.randn(2, 4, 6, 4, dtype=torch.float64), 1) if semantic else None
    out = warp_level(x, y, xs, ys, patch, soft)
    for b in range(2):
        ref = naive_warp(x[b], y[b], xs[b] if semantic else None, ys[b] if semantic else None, patch, soft)
        assert torch.allclose(out[b], ref, atol=1e-12)
    if patch == 2:  # the odd last row/column of the source is not covered by a patch: zero
        assert (out[:, :, 4] == 0).all() and (out[:, :, :, 6] == 0).all()


def test_weights_sum_to_one_over_reference_patches() -> None:
    torch.manual_seed(0)
    x, y = torch.relu(torch.randn(2, 8, 6, 6)), torch.relu(torch.randn(2, 8, 6, 6))
    xs, ys = (
        soft_one_hot(torch.randint(0, 5, (2, 1, 6, 6)), 5),
        soft_one_hot(torch.randint(0, 5, (2, 1, 6, 6)), 5),
    )
    logits = correspondence_logits(x, y, xs, ys, patch_size=2)
    assert logits.shape == (2, 9, 9)
    weights = correspondence_weights(logits)
    assert (weights >= 0).all() and torch.allclose(weights.sum(2), torch.ones(2, 9))
    hard = correspondence_weights(logits, soft=False)
    assert torch.equal(hard.sum(2), torch.ones(2, 9)) and torch.equal(hard.argmax(2), logits.argmax(2))


def level_inputs(batch: int, generator: torch.Generator) -> tuple[list[torch.Tensor], ...]:
    def features() -> list[torch.Tensor]:
        return [
            torch.relu(torch.randn(batch, 8 // 2**i, 4 * 2**i, 4 * 2**i, generator=generator))
            for i in range(4)
        ]

    return features(), features()


def test_batched_correspondence_equals_a_per_sample_loop_and_protects_the_source() -> None:
    g = torch.Generator().manual_seed(0)
    x_feats, y_feats = level_inputs(3, g)
    x_sem = soft_one_hot(torch.randint(0, 15, (3, 1, 32, 32), generator=g), 15)
    y_sem = soft_one_hot(torch.randint(0, 15, (3, 1, 32, 32), generator=g), 15)
    protect = (torch.rand(3, 1, 32, 32, generator=g) > 0.6).float()
    for net in (SemanticCorrespondence(), SemanticCorrespondence(multiscale_level=4, soft=False)):
        out = net(x_feats, y_feats, x_sem, y_sem, protect)
        unprotected = net(x_feats, y_feats, x_sem, y_sem)
        assert len(out) == net.multiscale_level
        for b in range(3):
            one = net(
                [f[b : b + 1] for f in x_feats],
                [f[b : b + 1] for f in y_feats],
                x_sem[b : b + 1],
                y_sem[b : b + 1],
            )
            assert all(
                torch.allclose(u[b : b + 1], o, atol=1e-6) for u, o in zip(unprotected, one, strict=False)
            )
        for level, (o, u, x) in enumerate(zip(out, unprotected, x_feats, strict=False)):
            mask = protect[:, :, :: 8 // 2**level, :: 8 // 2**level].expand_as(x).bool()
            assert torch.equal(o[mask], x[mask]) and torch.equal(o[~mask], u[~mask])
    no_semantics = SemanticCorrespondence(semantic=False)(x_feats, y_feats)
    assert [t.shape for t in no_semantics] == [x_feats[0].shape, x_feats[1].shape]
    with pytest.raises(ValueError, match="parsing maps"):
        SemanticCorrespondence()(x_feats, y_feats)


def test_soft_one_hot_matches_its_definition() -> None:
    labels = torch.tensor([[[[0, 3], [14, 20]]]])
    maps = soft_one_hot(labels, 15)
    assert maps.shape == (1, 15, 2, 2) and torch.allclose(maps.sum(1), torch.ones(1, 2, 2))
    top = torch.exp(torch.tensor(13.0)) / (torch.exp(torch.tensor(13.0)) + 14)
    assert torch.allclose(maps[0, 3, 0, 1], top) and torch.allclose(
        maps[0, :, 1, 1], torch.full((15,), 1 / 15)
    )


# --- generator ---------------------------------------------------------------------------------------------


def test_generator_has_the_original_parameter_count_and_names() -> None:
    with torch.device("meta"):
        full = SPADEGenerator()
    assert n_params(full) == gen_module.PARAMETERS == 334_776_451
    shapes = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert shapes["fc.weight"] == (2048, 512, 3, 3) and shapes["conv_img.weight"] == (3, 128, 3, 3)
    assert shapes["head.conv_0.weight_orig"] == (2048, 2048, 3, 3) and "head.conv_s.weight_orig" not in shapes
    assert shapes["up_0.conv_s.weight_orig"] == (1024, 2048, 1, 1) and "up_0.conv_s.bias" not in shapes
    assert shapes["up_3.norm_1.conv.0.weight"] == (128, 256, 3, 3)  # relu3_1 conditions the fine blocks
    assert shapes["up_3.norm_s.alpha.weight"] == (256, 128, 3, 3)


def test_generator_decodes_with_the_original_conditioning() -> None:
    torch.manual_seed(0)
    g = SPADEGenerator(ngf=4, semantic_nc=8, image_size=64, spade_hidden=8)
    assert all(
        (m.bias == 0).all() for m in g.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None
    )
    warped = [torch.randn(2, 8, 8, 8), torch.randn(2, 4, 16, 16)]
    source = [torch.randn(2, 8, 8, 8), torch.randn(2, 4, 16, 16)]
    seen: dict[str, torch.Tensor] = {}
    for name in ("head", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"):
        getattr(g, name).register_forward_hook(lambda _m, args, out, n=name: seen.update({n: (args, out)}))
    out = g(warped, source)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    coarse = 0.1 * warped[0] + 0.9 * source[0]
    sizes = {"head": 2, "G_middle_0": 4, "G_middle_1": 4, "up_0": 8, "up_1": 16, "up_2": 32, "up_3": 64}
    for name, size in sizes.items():
        (x, cond), _ = seen[name]
        assert x.shape[-1] == size and torch.equal(cond, coarse if size <= 8 else warped[1])
    for level in (1, 3, 4):
        narrow = SPADEGenerator(ngf=2, semantic_nc=16, multiscale_level=level, image_size=32, spade_hidden=4)
        feats = [torch.randn(1, 16 // 2**i, 4 * 2**i, 4 * 2**i) for i in range(4)]
        assert narrow(feats, feats).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple of 32"):
        SPADEGenerator(image_size=100)


def test_positional_norm_gives_zero_mean_unit_norm_channel_vectors() -> None:
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64) * 4 + 1
    y = positional_norm(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 3, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(y.norm(dim=1), torch.ones(2, 3, 3, dtype=torch.float64), atol=1e-6)


# --- discriminator -----------------------------------------------------------------------------------------


def test_discriminator_count_scales_and_features() -> None:
    with torch.device("meta"):
        full = MultiscaleDiscriminator()
    assert n_params(full) == disc_module.PARAMETERS == 5_533_826
    keys = set(full.state_dict())
    assert {"discriminator_1.model0.0.bias", "discriminator_1.model3.0.0.weight_orig"} <= keys
    assert "discriminator_0.model1.0.0.bias" not in keys  # spectral + instance norm layers have no bias
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(ndf=4)
    assert (d.discriminator_0.model0[0].bias == 0).all() and (d.discriminator_1.model4[0].bias == 0).all()
    x = torch.randn(2, 6, 32, 32)
    out = d(x)
    assert [[tuple(t.shape) for t in scale] for scale in out] == [
        [(2, 4, 17, 17), (2, 8, 9, 9), (2, 16, 5, 5), (2, 32, 6, 6), (2, 1, 7, 7)],
        [(2, 4, 9, 9), (2, 8, 5, 5), (2, 16, 3, 3), (2, 32, 4, 4), (2, 1, 5, 5)],
    ]
    d.eval()  # fixed spectral-norm vectors: repeated calls agree
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.equal(d(x)[1][-1], d.discriminator_1(pooled)[-1])
    d.return_features = False
    assert [len(scale) for scale in d(x)] == [1, 1]
