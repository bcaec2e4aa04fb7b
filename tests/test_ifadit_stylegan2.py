"""iFADIT's StyleGAN2 generator (rosinality layout, pure PyTorch): upfirdn2d against SciPy's polyphase filter,
modulated convolutions against a per-sample loop, the checkpoint key layout and synthesis."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from src.papers.ifadit.stylegan2 import (
    CHECKPOINT_KEYS,
    ModulatedConv2d,
    NoiseInjection,
    StyleGAN2Generator,
    g_ema_state_dict,
    make_kernel,
    upfirdn2d,
)


@pytest.mark.parametrize(
    ("up", "down", "pad"), [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 1, (-1, 0))]
)
def test_upfirdn2d_equals_scipy_polyphase_filtering(up: int, down: int, pad: tuple[int, int]) -> None:
    """2-D with the separable blur kernel = SciPy's 1-D upfirdn along each axis, sliced to the pads."""
    taps = np.array([1.0, 2.0, 4.0, 1.0])  # asymmetric: a flipped kernel would show
    h1 = taps / taps.sum() * up  # the 2-D kernel make_kernel(taps) * up² is outer(h1, h1)
    x = np.random.default_rng(0).standard_normal((7, 9))
    out = upfirdn2d(torch.from_numpy(x)[None, None], make_kernel(taps).double() * up**2, up, down, pad)
    k, p0, p1 = len(taps), pad[0], pad[1]

    def axis(values: np.ndarray, ax: int) -> np.ndarray:
        full = scipy.signal.upfirdn(h1, values, up=up, down=1, axis=ax)
        n = values.shape[ax] * up + p0 + p1 - k + 1  # the valid length after padding
        start = k - 1 - p0
        index = np.arange(start, start + n)
        padded = np.concatenate([full, np.zeros_like(full.take(range(k), axis=ax))], axis=ax)
        return padded.take(index, axis=ax).take(np.arange(0, n, down), axis=ax)

    reference = axis(axis(x, 0), 1)
    assert out.shape[-2:] == reference.shape
    assert np.abs(out[0, 0].numpy() - reference).max() < 1e-10


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_equals_a_per_sample_loop(upsample: bool) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 5, 3, style_dim=6, upsample=upsample).double()
    x, style = torch.randn(3, 4, 8, 8).double(), torch.randn(3, 6).double()
    out = conv(x, style)
    for i in range(3):
        s = conv.modulation(style[i : i + 1]).view(1, 1, 4, 1, 1)
        w = conv.scale * conv.weight * s
        w = (w * torch.rsqrt(w.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8))[0]  # [out, in, k, k]
        if upsample:
            ref = conv.blur(F.conv_transpose2d(x[i : i + 1], w.transpose(0, 1), stride=2))
        else:
            ref = F.conv2d(x[i : i + 1], w, padding=1)
        assert torch.allclose(out[i : i + 1], ref, atol=1e-12)
    assert out.shape[-1] == (16 if upsample else 8)


def test_state_dict_has_rosinality_g_ema_names_and_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(size=32, channel_divisor=16).eval()
    patterns = [
        re.compile("^" + re.escape(k).replace(re.escape("{i}"), r"\d+") + "$") for k in CHECKPOINT_KEYS
    ]
    keys = list(g.state_dict())
    assert all(any(p.match(k) for p in patterns) for k in keys), [
        k for k in keys if not any(p.match(k) for p in patterns)
    ]
    # the 256 px published configuration: 8 mapping layers, 12 convs (6 with a blur), 6 to_rgbs, 13 noise maps
    with torch.device("meta"):
        published = StyleGAN2Generator()
    assert len(published.state_dict()) == 16 + 1 + 5 + 4 + 12 * 5 + 6 + 6 * 5 + 13
    assert published.n_latent == 14 and published.channels[256] == 128
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.zeros(512)}, tmp_path / "550000.pt")
    other = StyleGAN2Generator(size=32, channel_divisor=16)
    other.load_state_dict(g_ema_state_dict(tmp_path / "550000.pt"), strict=True)
    w = torch.randn(2, g.n_latent, 512)
    assert torch.equal(other.eval()(w), g(w))
    torch.save({"g": g.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no 'g_ema'"):
        g_ema_state_dict(tmp_path / "other.pt")


def test_synthesis_shapes_noise_and_mapping() -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(size=32, channel_divisor=16).eval()
    for module in g.modules():  # trained generators have non-zero noise strengths (initialised at 0)
        if isinstance(module, NoiseInjection):
            module.weight.data.fill_(0.5)
    w_plus = g.mapping(torch.randn(2, 512)).unsqueeze(1).repeat(1, g.n_latent, 1)
    with torch.no_grad():
        image = g(w_plus)
        assert image.shape == (2, 3, 32, 32) and torch.isfinite(image).all()
        assert torch.equal(g(w_plus), image)  # the stored noise: deterministic
        assert not torch.equal(g(w_plus, randomize_noise=True), image)
        assert torch.equal(g(w_plus[:, 0]), image)  # one W for every layer
    with pytest.raises(ValueError, match="W\\+ codes"):
        g(torch.randn(2, 3, 512))
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(size=48)
