"""Tests of the DP-Pix obfuscator ``src.obfuscators.dp_pix`` (Fan, DBSec 2018).

The pixelation is compared with an independent numpy cell mean, the noise with the Laplace law of scale
``R·m/(b²ε)`` (mean absolute deviation and a scipy KS test), and the record with ``certify_dp_pix``.
The contract shared by every obfuscator (shapes, dtypes, modes, gradients) is in ``test_obfuscators.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from src.metrics.privacy import certify_dp_pix
from src.obfuscators import OBFUSCATORS, DPPix, build_obfuscator
from src.obfuscators.dp_pix import dp_pixelate, laplace_noise


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_images(b: int = 3, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=gen(seed), dtype=torch.float64)


def numpy_cell_means(images: np.ndarray, cell: int) -> np.ndarray:
    """Reference mosaic: each cell (anchored top-left, cells of min(cell, side), the last one the remainder)
    replaced by its mean; reshape-mean over the whole cells, explicit slices for the partial border."""
    b, c, h, w = images.shape
    kh, kw = min(cell, h), min(cell, w)
    out = np.empty_like(images)
    full_h, full_w = h - h % kh, w - w % kw
    whole = images[:, :, :full_h, :full_w].reshape(b, c, full_h // kh, kh, full_w // kw, kw)
    means = whole.mean(axis=(3, 5))
    out[:, :, :full_h, :full_w] = np.repeat(np.repeat(means, kh, axis=2), kw, axis=3)
    for top in range(0, h, kh):
        for left in range(0, w, kw):
            if top + kh <= full_h and left + kw <= full_w:
                continue
            block = images[:, :, top : top + kh, left : left + kw]
            out[:, :, top : top + kh, left : left + kw] = block.mean(axis=(2, 3), keepdims=True)
    return out


# ------------------------------------------------------------------------------------------- pixelation


@pytest.mark.parametrize(
    ("size", "cell"),
    [((48, 64), 16), ((37, 53), 16), ((37, 53), 7), ((10, 12), 16), ((20, 20), 1)],
    ids=["divisible", "border", "border-b7", "cell>image", "b1"],
)
def test_negligible_noise_gives_the_cell_mean_pixelation(size: tuple[int, int], cell: int) -> None:
    x = rand_images(3, *size)
    ob = DPPix(epsilon=1e12, cell=cell, m=1).eval()
    out = ob(x, gen(1))
    expected = numpy_cell_means(x.numpy(), cell)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-9)


def test_reference_pixelation_is_reshape_mean_on_divisible_sizes() -> None:
    """Sanity check of the reference itself on a hand-computable case."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out = numpy_cell_means(x, 2)
    assert out[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert out[0, 0, 3, 3] == pytest.approx((10 + 11 + 14 + 15) / 4)


# ------------------------------------------------------------------------------------------------ noise


def cell_noise(out: torch.Tensor, grey: float, cell: int) -> np.ndarray:
    """One value per (sample, channel, cell): the top-left pixel of each cell minus the constant grey."""
    return (out[:, :, ::cell, ::cell] - grey).numpy().ravel()


def test_standard_laplace_draws() -> None:
    z = laplace_noise((200_000,), gen(0)).numpy()
    assert z.dtype == np.float64 and np.isfinite(z).all()
    assert np.mean(np.abs(z)) == pytest.approx(1.0, rel=0.01)  # E|X| = scale
    assert np.mean(z) == pytest.approx(0.0, abs=0.01)
    assert stats.kstest(z, stats.laplace(scale=1.0).cdf).pvalue > 0.01


@pytest.mark.parametrize(("cell", "m", "epsilon"), [(4, 1, 1.0), (8, 4, 0.5), (16, 1, 0.05)])
def test_noise_is_laplace_with_scale_r_m_over_b2_eps(cell: int, m: int, epsilon: float) -> None:
    """Unclamped release of a mid-grey image: per-cell noise ~ Laplace(R·m/(b²ε)), R = 1."""
    scale = m / (cell**2 * epsilon)
    size = 256 if cell < 16 else 512
    x = torch.full((4, 3, size, size), 0.5, dtype=torch.float64)
    out = dp_pixelate(x, torch.full((4,), epsilon, dtype=torch.float64), cell, m, gen(3))
    # constant over each cell
    assert torch.equal(out, out[:, :, ::cell, ::cell].repeat_interleave(cell, -2).repeat_interleave(cell, -1))
    noise = cell_noise(out, 0.5, cell)
    assert len(noise) >= 12_000
    assert np.mean(np.abs(noise)) == pytest.approx(scale, rel=0.03)  # mean absolute deviation = scale
    assert stats.kstest(noise, stats.laplace(scale=scale).cdf).pvalue > 0.01
    assert stats.kstest(noise, stats.laplace(scale=1.1 * scale).cdf).pvalue < 1e-3  # the test has power


def test_module_noise_matches_the_scale_when_clamping_is_negligible() -> None:
    ob = DPPix(epsilon=4.0, cell=4, m=1).eval()  # scale 1/64: P(|noise| > 0.5) = e^-32
    x = torch.full((4, 3, 128, 128), 0.5, dtype=torch.float64)
    out = ob(x, gen(5))
    assert torch.equal(out, dp_pixelate(x, torch.full((4,), 4.0, dtype=torch.float64), 4, 1, gen(5)))
    noise = cell_noise(out, 0.5, 4)
    assert ob.scale == pytest.approx(1 / 64)
    assert np.mean(np.abs(noise)) == pytest.approx(ob.scale, rel=0.03)
    assert stats.kstest(noise, stats.laplace(scale=ob.scale).cdf).pvalue > 0.01


def test_noise_is_independent_across_channels_and_cells() -> None:
    x = torch.full((8, 3, 64, 64), 0.5, dtype=torch.float64)
    out = dp_pixelate(x, torch.full((8,), 1.0, dtype=torch.float64), 2, 1, gen(7))
    noise = (out[:, :, ::2, ::2] - 0.5).numpy()  # [8, 3, 32, 32]
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        r = np.corrcoef(noise[:, a].ravel(), noise[:, b].ravel())[0, 1]
        assert abs(r) < 0.05
    r_cells = np.corrcoef(noise[..., :-1].ravel(), noise[..., 1:].ravel())[0, 1]
    r_samples = np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]
    assert abs(r_cells) < 0.05 and abs(r_samples) < 0.05


def test_narrow_border_cells_get_the_scale_of_their_pixel_count() -> None:
    """20×20 with b = 16: cells of 16×16, 16×4, 4×16 and 4×4 pixels; scale R·m/(n·ε) keeps every cell ε-DP."""
    n_samples = 2000
    x = torch.full((n_samples, 3, 20, 20), 0.5, dtype=torch.float64)
    out = dp_pixelate(x, torch.full((n_samples,), 1.0, dtype=torch.float64), 16, 1, gen(11))
    for (row, col), pixels in {(0, 0): 256, (0, 16): 64, (16, 0): 64, (16, 16): 16}.items():
        noise = (out[:, :, row, col] - 0.5).numpy().ravel()
        assert np.mean(np.abs(noise)) == pytest.approx(1 / pixels, rel=0.05), (row, col)


def test_per_sample_epsilon_in_training() -> None:
    ob = DPPix(epsilon_range=(0.01, 10.0)).train()
    eps = ob.draw_params(4000, gen(0))
    assert eps.dtype == torch.float64
    assert bool((eps >= 0.01).all()) and bool((eps <= 10.0).all())
    # log-uniform: log ε is uniform on [log 0.01, log 10], median at the geometric mean 0.316
    assert float(eps.median()) == pytest.approx(math.sqrt(0.1), rel=0.1)
    assert torch.equal(DPPix(epsilon=0.7).eval().draw_params(3), torch.full((3,), 0.7, dtype=torch.float64))
    # each sample's noise follows its own ε: a tiny ε gives a much noisier image than a large one
    x = torch.full((2, 3, 64, 64), 0.5, dtype=torch.float64)
    out = ob.apply(x, torch.tensor([0.01, 100.0], dtype=torch.float64), gen(1))
    dev = (out - 0.5).abs().mean(dim=(1, 2, 3))
    assert dev[0] > 100 * dev[1]


# ---------------------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_same_seed_same_output_different_seed_different(training: bool) -> None:
    x = rand_images()
    ob = DPPix(epsilon=0.1, cell=8).train(training)
    a, b, c = ob(x, gen(42)), ob(x, gen(42)), ob(x, gen(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eval_without_generator_uses_eval_seed() -> None:
    x = rand_images()
    ob = DPPix(epsilon=0.1, cell=8, eval_seed=5).eval()
    assert torch.equal(ob(x), ob(x))
    assert torch.equal(ob(x), ob(x, gen(5)))
    assert not torch.equal(ob(x), DPPix(epsilon=0.1, cell=8, eval_seed=6).eval()(x))


# ---------------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epsilon": 0.0}, "epsilon must be > 0"),
        ({"epsilon": -1.0}, "epsilon must be > 0"),
        ({"epsilon": float("nan")}, "epsilon must be a finite number"),
        ({"epsilon": "0.5"}, "epsilon must be a finite number"),
        ({"cell": 0}, "cell must be >= 1"),
        ({"cell": 2.5}, "cell must be an integer"),
        ({"m": 0}, "m must be >= 1"),
        ({"m": True}, "m must be an integer"),
        ({"epsilon_range": (0.0, 1.0)}, r"epsilon_range\[0\] must be > 0"),
        ({"epsilon_range": (2.0, 1.0)}, "epsilon_range is empty"),
        ({"epsilon_range": 1.0}, "epsilon_range must be a \\(low, high\\) pair"),
        ({"eval_seed": -1}, "eval_seed must be >= 0"),
    ],
    ids=str,
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=f"DPPix: {match}"):
        DPPix(**kwargs)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((2, 3, 16, 16), dtype=np.float32), "images must be a torch.Tensor"),
        ([[0.5]], "images must be a torch.Tensor"),
        (torch.rand(3, 16, 16), "images must have rank 4"),
    ],
    ids=["numpy", "list", "rank3"],
)
def test_bad_images_raise(images: object, match: str) -> None:
    with pytest.raises(ValueError, match=f"DPPix: {match}"):
        DPPix()(images, gen(0))


def test_bad_epsilons_in_params_raise() -> None:
    with pytest.raises(ValueError, match="DPPix: epsilons must be finite and > 0"):
        DPPix().apply(rand_images(2), torch.tensor([0.5, 0.0], dtype=torch.float64), gen(0))


# ------------------------------------------------------------------------------------------ record, registry


def test_privacy_record() -> None:
    ob = DPPix(epsilon=0.5, cell=16, m=1)
    record = ob.privacy_record()
    assert record.certified
    assert record.mechanism == "dp_pix" and record.semantics == "PIX"
    assert record.neighbor_relation == "m-pixel"
    assert record.epsilon_nominal == pytest.approx(0.5)
    assert record.epsilon_certified == pytest.approx(0.5) and record.delta == 0.0
    assert record.releases_k == 1
    # Δ1 = R·m/b² with R = 1: the spec's test vector (Δ1 = 0.99609, scale 1.99219 at R = 255) over 255
    assert record.sensitivity.value == pytest.approx(1 / 256)
    assert record.noise_params["scale"] == pytest.approx(ob.scale) == pytest.approx(1.99219 / 255, rel=1e-5)
    assert record.noise_params["pixel_range"] == 1.0
    assert record.noise_params["cell"] == 16 and record.noise_params["m"] == 1
    assert record == certify_dp_pix(m=1, cell=16, epsilon=0.5, pixel_range=1.0).record


@pytest.mark.parametrize("k", [1, 3, 10])
def test_k_releases_compose_to_k_epsilon(k: int) -> None:
    ob = DPPix(epsilon=0.25, cell=8, m=4)
    cert = ob.certification(k)
    assert cert.epsilon == pytest.approx(k * 0.25) and cert.delta == 0.0
    record = ob.privacy_record(k, rng=7)
    assert record.releases_k == k and record.epsilon_certified == pytest.approx(k * 0.25)
    assert record.epsilon_nominal == pytest.approx(0.25)
    assert record.rng.seed == 7 and not record.rng.secret


def test_registered_and_described() -> None:
    assert OBFUSCATORS["dp_pix"] is DPPix
    desc = DPPix(epsilon=2.0, cell=8, m=3).describe()
    assert desc == {
        "name": "dp_pix",
        "epsilon": 2.0,
        "cell": 8,
        "m": 3,
        "epsilon_range": [0.01, 10.0],
        "eval_seed": 0,
    }
    assert build_obfuscator(**desc).describe() == desc
    assert "epsilon=2.0, cell=8, m=3" in repr(DPPix(epsilon=2.0, cell=8, m=3))
