"""Tests of the shared obfuscator library ``src.obfuscators``.

Contract checks run over every registered obfuscator; each op is compared with an independent reference
(scipy / OpenCV filters, numpy block means and pixel-centre masks, noise statistics).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import ndimage

from src.obfuscators import (
    OBFUSCATORS,
    BlackBoxMask,
    DPPix,
    GaussianBlur,
    GaussianNoise,
    Identity,
    MedianBlur,
    Obfuscator,
    Pixelate,
    RandomChoice,
    build_obfuscator,
)

# One factory per registered name. Median uses small kernels here because a 29×29 median is slow on CPU;
# the defaults are exercised separately in test_median_defaults.
FACTORIES: dict[str, Callable[[], Obfuscator]] = {
    "none": Identity,
    "blur": GaussianBlur,
    "median": lambda: MedianBlur(kernel_range=(3, 9), eval_kernel=5),
    "pixelate": Pixelate,
    "blackbox": BlackBoxMask,
    "dp_pix": DPPix,
    "noise": GaussianNoise,
    "hybrid": lambda: RandomChoice(
        [GaussianBlur(9, (1.0, 3.0), 2.0), Pixelate(), GaussianNoise()],
        eval_index=0,
    ),
}
NAMES = sorted(FACTORIES)
RANDOM_NAMES = [n for n in NAMES if n != "none"]
PARAM_NAMES = [n for n in RANDOM_NAMES if n != "hybrid"]  # those with per-sample draw_params
SIZES = [(37, 53), (64, 64), (112, 112)]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(name: str, training: bool) -> Obfuscator:
    return FACTORIES[name]().train(training)


def rand_images(b: int = 4, h: int = 37, w: int = 53, seed: int = 0, dtype: torch.dtype = torch.float32):
    return torch.rand(b, 3, h, w, generator=gen(seed), dtype=torch.float64).to(dtype)


def smooth_images(b: int = 2, h: int = 37, w: int = 53) -> torch.Tensor:
    """Structured images (gradients + a bright square) so that blurs and mosaics visibly change them."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([xx, yy, 0.5 * (xx + yy)])
    img[:, h // 3 : h // 2, w // 3 : w // 2] = 1.0
    return img.expand(b, 3, h, w).contiguous()


# ------------------------------------------------------------------------------------------------ registry


def test_registry_covers_all_and_names_match() -> None:
    assert set(OBFUSCATORS) == set(FACTORIES)
    for name, cls in OBFUSCATORS.items():
        assert cls.name == name
        assert issubclass(cls, Obfuscator)
    for name in OBFUSCATORS:
        if name != "hybrid":
            assert isinstance(build_obfuscator(name), OBFUSCATORS[name])


def test_build_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError, match=r"unknown obfuscator 'swirl'.*available: .*blur.*pixelate"):
        build_obfuscator("swirl")


@pytest.mark.parametrize("name", NAMES)
def test_describe_is_json_and_round_trips(name: str) -> None:
    ob = FACTORIES[name]()
    desc = ob.describe()
    assert desc["name"] == name
    json.dumps(desc)
    assert build_obfuscator(**desc).describe() == desc


def test_build_hybrid_from_config_specs() -> None:
    ob = build_obfuscator(
        "hybrid",
        obfuscators=[{"name": "blur", "kernel_size": 21, "sigma_range": [6, 10]}, "pixelate"],
        eval_index=1,
    )
    assert isinstance(ob, RandomChoice)
    assert [c.name for c in ob.obfuscators] == ["blur", "pixelate"]
    assert ob.obfuscators[0].sigma_range == (6.0, 10.0)
    with pytest.raises(ValueError, match="needs a 'name' key"):
        build_obfuscator("hybrid", obfuscators=[{"kernel_size": 3}])


# ------------------------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_range(name: str, size: tuple[int, int], training: bool) -> None:
    x = rand_images(2, *size)
    out = make(name, training)(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_other_dtypes(name: str, dtype: torch.dtype) -> None:
    x = rand_images(2, dtype=dtype)
    for training in (True, False):
        out = make(name, training)(x, gen(1))
        assert out.shape == x.shape and out.dtype == dtype
        assert out.float().min() >= 0.0 and out.float().max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name: str) -> None:
    x = torch.rand(0, 3, 16, 16)
    assert make(name, True)(x, gen(0)).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic(name: str) -> None:
    x = rand_images()
    ob = make(name, False)
    a, b = ob(x), ob(x)
    assert torch.equal(a, b)
    if name not in ("noise", "dp_pix"):  # the strength does not depend on the generator in eval mode
        assert torch.equal(a, ob(x, gen(123)))


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_train_same_seed_same_output_different_seed_different(name: str) -> None:
    x = rand_images()
    ob = make(name, True)
    assert torch.equal(ob(x, gen(7)), ob(x, gen(7)))
    assert not torch.equal(ob(x, gen(7)), ob(x, gen(8)))
    if name in PARAM_NAMES:
        p7, p7b, p8 = ob.draw_params(8, gen(7)), ob.draw_params(8, gen(7)), ob.draw_params(8, gen(8))
        assert torch.equal(p7, p7b)
        assert not torch.equal(p7, p8)


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_train_without_generator_uses_global_rng(name: str) -> None:
    x = rand_images()
    ob = make(name, True)
    torch.manual_seed(3)
    a = ob(x)
    torch.manual_seed(3)
    assert torch.equal(a, ob(x))


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_strength_varies_per_sample_in_training(name: str) -> None:
    x = smooth_images(8)  # 8 identical images
    out = make(name, True)(x, gen(5))
    distinct = {out[i].numpy().tobytes() for i in range(len(out))}
    assert len(distinct) > 1
    if name in PARAM_NAMES:
        params = make(name, True).draw_params(8, gen(5))
        assert len({tuple(np.atleast_1d(p.numpy()).tolist()) for p in params}) > 1
        assert torch.equal(make(name, False).draw_params(3)[0], make(name, False).draw_params(3)[2])


@pytest.mark.parametrize(
    ("ob", "check"),
    [
        (GaussianBlur(sigma_range=(2.0, 8.0)), lambda p: (p >= 2.0).all() and (p <= 8.0).all()),
        (
            MedianBlur(kernel_range=(17, 29)),
            lambda p: (p % 2 == 1).all() and (p >= 17).all() and (p <= 29).all() and (p == 29).any(),
        ),
        (Pixelate(block_range=(4, 10)), lambda p: set(p.tolist()) == set(range(4, 11))),
        (GaussianNoise(std_range=(0.05, 0.2)), lambda p: (p >= 0.05).all() and (p <= 0.2).all()),
        (
            BlackBoxMask(box=(0.2, 0.25, 0.8, 0.9), jitter=0.05),
            lambda p: ((p - torch.tensor([0.2, 0.25, 0.8, 0.9], dtype=p.dtype)).abs() <= 0.05 + 1e-12).all(),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Obfuscator) else "",
)
def test_training_draws_stay_in_range(ob: Obfuscator, check: Callable[[torch.Tensor], bool]) -> None:
    params = ob.train().draw_params(500, gen(0))
    assert bool(check(params))


def test_median_even_draws_become_odd_and_defaults_run() -> None:
    ob = MedianBlur(kernel_range=(4, 4), eval_kernel=3).train()
    assert ob.draw_params(5, gen(0)).tolist() == [3] * 5
    default = MedianBlur().train()
    out = default(rand_images(2, 24, 30), gen(0))
    assert out.shape == (2, 3, 24, 30)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow(name: str) -> None:
    x = rand_images(2).requires_grad_(True)
    weights = torch.rand(x.shape, generator=gen(9))
    out = make(name, True)(x, gen(2))
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "ob",
    [GaussianBlur(5, (0.5, 2.0), 1.0), Pixelate((2, 3), 2), BlackBoxMask(), GaussianNoise((0.0, 0.0), 0.0)],
    ids=lambda o: o.name,
)
def test_gradcheck(ob: Obfuscator) -> None:
    x = (0.25 + 0.5 * torch.rand(2, 3, 6, 7, generator=gen(0), dtype=torch.float64)).requires_grad_(True)
    params = ob.train().draw_params(2, gen(1))
    assert torch.autograd.gradcheck(lambda t: ob.apply(t, params, gen(2)), (x,), fast_mode=True)


def test_identity_is_exact_copy() -> None:
    x = torch.rand(3, 3, 20, 30) * 3 - 1  # even out-of-range values pass through untouched
    for training in (True, False):
        out = Identity().train(training)(x, gen(0))
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


# ------------------------------------------------------------------------------------------------ references


def scipy_blur(img: np.ndarray, sigma: float, kernel_size: int) -> np.ndarray:
    """Per-channel Gaussian blur of a [3, H, W] array, radius k // 2, mirror (= torch "reflect") borders."""
    return ndimage.gaussian_filter(img, sigma=sigma, mode="mirror", radius=kernel_size // 2, axes=(1, 2))


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (9, 12)], ids=str)  # 9×12: pad 15 exceeds the image
def test_gaussian_blur_eval_matches_scipy(size: tuple[int, int]) -> None:
    x = rand_images(2, *size, dtype=torch.float64)
    out = GaussianBlur().eval()(x).numpy()
    for i in range(len(x)):
        ref = scipy_blur(x[i].numpy(), 5.0, 31)
        np.testing.assert_allclose(out[i], ref, rtol=0, atol=1e-12)
    out32 = GaussianBlur().eval()(x.float()).numpy()
    np.testing.assert_allclose(out32, out, rtol=0, atol=1e-5)


def test_gaussian_blur_matches_cv2() -> None:
    cv2 = pytest.importorskip("cv2")
    x = rand_images(1, 64, 80)
    out = GaussianBlur(kernel_size=31).eval()(x)[0].permute(1, 2, 0).numpy()
    ref = cv2.GaussianBlur(
        x[0].permute(1, 2, 0).numpy(), (31, 31), sigmaX=5.0, sigmaY=5.0, borderType=cv2.BORDER_REFLECT_101
    )
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_gaussian_blur_per_sample_sigma_matches_scipy() -> None:
    ob = GaussianBlur(kernel_size=15, sigma_range=(1.0, 4.0)).train()
    x = rand_images(4, 30, 41, dtype=torch.float64)
    sigmas = ob.draw_params(4, gen(3))
    out = ob.apply(x, sigmas).numpy()
    for i in range(4):
        np.testing.assert_allclose(out[i], scipy_blur(x[i].numpy(), float(sigmas[i]), 15), rtol=0, atol=1e-12)


@pytest.mark.parametrize("border", ["zero", "reflect"])
def test_median_matches_scipy(border: str) -> None:
    x = rand_images(2, 30, 41, dtype=torch.float64)
    ob = MedianBlur(kernel_range=(3, 13), eval_kernel=9, border=border)
    mode = {"zero": "constant", "reflect": "mirror"}[border]
    out = ob.eval()(x).numpy()
    for i in range(2):
        ref = ndimage.median_filter(x[i].numpy(), size=(1, 9, 9), mode=mode, cval=0.0)
        np.testing.assert_array_equal(out[i], ref)  # whole image, borders included
        ref_any = ndimage.median_filter(x[i].numpy(), size=(1, 9, 9), mode="nearest")
        np.testing.assert_array_equal(out[i][:, 4:-4, 4:-4], ref_any[:, 4:-4, 4:-4])  # interior
    ob.train()
    kernels = ob.draw_params(2, gen(4))
    out = ob.apply(x, kernels).numpy()
    for i, k in enumerate(kernels.tolist()):
        ref = ndimage.median_filter(x[i].numpy(), size=(1, k, k), mode=mode, cval=0.0)
        np.testing.assert_array_equal(out[i], ref)


def numpy_pixelate(img: np.ndarray, block: int) -> np.ndarray:
    """Block means over top-left-anchored cells; the last row/column of cells holds the remainder."""
    out = np.empty_like(img)
    _, h, w = img.shape
    for r in range(0, h, block):
        for c in range(0, w, block):
            cell = img[:, r : r + block, c : c + block]
            out[:, r : r + block, c : c + block] = cell.mean(axis=(1, 2), keepdims=True)
    return out


@pytest.mark.parametrize("block", [1, 4, 7, 10, 40, 100])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (112, 112)], ids=str)
def test_pixelate_matches_numpy(size: tuple[int, int], block: int) -> None:
    x = rand_images(1, *size, dtype=torch.float64)
    out = Pixelate(block_range=(block, block), eval_block=block).eval()(x)[0].numpy()
    np.testing.assert_allclose(out, numpy_pixelate(x[0].numpy(), block), rtol=0, atol=1e-12)


def test_pixelate_per_sample_blocks_match_numpy() -> None:
    ob = Pixelate().train()
    x = rand_images(6, 37, 53, dtype=torch.float64)
    blocks = ob.draw_params(6, gen(11))
    assert len(set(blocks.tolist())) > 1
    out = ob.apply(x, blocks).numpy()
    for i, b in enumerate(blocks.tolist()):
        np.testing.assert_allclose(out[i], numpy_pixelate(x[i].numpy(), b), rtol=0, atol=1e-12)


def numpy_box(img: np.ndarray, box: tuple[float, ...], fill: tuple[float, float, float]) -> np.ndarray:
    """Fill the pixels whose centre (j + 0.5, i + 0.5) lies in [x0·W, x1·W) × [y0·H, y1·H)."""
    out = img.copy()
    _, h, w = img.shape
    x0, y0, x1, y1 = box
    for i in range(h):
        for j in range(w):
            if x0 * w <= j + 0.5 < x1 * w and y0 * h <= i + 0.5 < y1 * h:
                out[:, i, j] = fill
    return out


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (112, 112)], ids=str)
def test_mask_matches_numpy(size: tuple[int, int]) -> None:
    x = rand_images(3, *size, dtype=torch.float64)
    ob = BlackBoxMask(fill=(0.1, 0.5, 0.9))
    out = ob.eval()(x).numpy()
    for i in range(3):
        np.testing.assert_array_equal(out[i], numpy_box(x[i].numpy(), ob.box, (0.1, 0.5, 0.9)))
    ob.train()
    boxes = ob.draw_params(3, gen(6))
    out = ob.apply(x, boxes).numpy()
    for i in range(3):
        np.testing.assert_array_equal(out[i], numpy_box(x[i].numpy(), tuple(boxes[i].tolist()), ob.fill))


def test_mask_gradient_is_zero_inside_box_only() -> None:
    x = rand_images(1, 40, 40).requires_grad_(True)
    ob = BlackBoxMask().eval()
    ob(x).sum().backward()
    inside = numpy_box(np.zeros((3, 40, 40)), ob.box, (1.0, 1.0, 1.0)).astype(bool)
    grad = x.grad[0].numpy()
    assert (grad[inside] == 0).all() and (grad[~inside] == 1).all()


def test_noise_statistics() -> None:
    x = torch.full((6, 3, 64, 64), 0.5)
    ob = GaussianNoise(std_range=(0.02, 0.12), eval_std=0.1)
    delta = ob.eval()(x) - x
    assert abs(float(delta.mean())) < 0.005
    assert float(delta.std()) == pytest.approx(0.1, rel=0.03)
    ob.train()
    stds = ob.draw_params(6, gen(2))
    delta = ob.apply(x, stds, gen(3)) - x
    np.testing.assert_allclose(delta.flatten(1).std(dim=1).numpy(), stds.numpy(), rtol=0.05)


def test_noise_eval_seed_and_generator() -> None:
    x = rand_images()
    a = GaussianNoise(eval_seed=0).eval()
    assert torch.equal(a(x), GaussianNoise(eval_seed=0).eval()(x))
    assert not torch.equal(a(x), GaussianNoise(eval_seed=1).eval()(x))
    assert torch.equal(a(x, gen(5)), a(x, gen(5)))
    assert not torch.equal(a(x, gen(5)), a(x))


def test_hybrid_choice() -> None:
    children = [GaussianBlur(9, (1.0, 3.0), 2.0), Pixelate(), GaussianNoise()]
    ob = RandomChoice(children).train()
    x = rand_images()
    chosen = set()
    for seed in range(30):
        out = ob(x, gen(seed))
        chosen.add(ob.last_index)
        # the chosen child, given the rest of the same generator stream, gives the same output
        g = gen(seed)
        index = ob.choose(g)
        assert index == ob.last_index
        assert torch.equal(out, children[index](x, g))
    assert chosen == {0, 1, 2}
    ob.eval()
    with pytest.raises(RuntimeError, match="eval_index"):
        ob(x)
    ob.eval_index = 1
    assert torch.equal(ob(x), Pixelate().eval()(x))
    assert not children[0].training  # children follow the parent's mode


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GaussianBlur(kernel_size=30), "kernel_size must be odd"),
        (lambda: GaussianBlur(kernel_size=0), "kernel_size must be >= 1"),
        (lambda: GaussianBlur(kernel_size=3.5), "kernel_size must be an integer"),
        (lambda: GaussianBlur(sigma_range=(8.0, 2.0)), "sigma_range is empty"),
        (lambda: GaussianBlur(sigma_range=(0.0, 2.0)), r"sigma_range\[0\] must be > 0"),
        (lambda: GaussianBlur(sigma_range=(1.0,)), r"sigma_range must be a \(low, high\) pair"),
        (lambda: GaussianBlur(eval_sigma=-1.0), "eval_sigma must be > 0"),
        (lambda: MedianBlur(kernel_range=(29, 17)), "kernel_range is empty"),
        (lambda: MedianBlur(kernel_range=(0, 5)), r"kernel_range\[0\] must be >= 1"),
        (lambda: MedianBlur(eval_kernel=22), "eval_kernel must be odd"),
        (lambda: MedianBlur(border="wrap"), "border must be one of"),
        (lambda: Pixelate(block_range=(0, 4)), r"block_range\[0\] must be >= 1"),
        (lambda: Pixelate(block_range=(10, 4)), "block_range is empty"),
        (lambda: Pixelate(eval_block=0), "eval_block must be >= 1"),
        (lambda: BlackBoxMask(box=(0.8, 0.25, 0.2, 0.9)), "x0 < x1"),
        (lambda: BlackBoxMask(box=(0.2, 0.25, 0.8, 1.5)), r"must lie in \[0, 1\]"),
        (lambda: BlackBoxMask(box=(0.2, 0.25, 0.8)), "box must be"),
        (lambda: BlackBoxMask(jitter=-0.1), "jitter must be >= 0"),
        (lambda: BlackBoxMask(jitter=0.4), "jitter .* must be less than half"),
        (lambda: BlackBoxMask(fill=(0.0, 1.0)), "fill must be a number or an RGB triple"),
        (lambda: BlackBoxMask(fill=2.0), r"fill values must lie in \[0, 1\]"),
        (lambda: GaussianNoise(std_range=(-0.1, 0.2)), r"std_range\[0\] must be >= 0"),
        (lambda: GaussianNoise(std_range=(0.2, 0.05)), "std_range is empty"),
        (lambda: GaussianNoise(eval_std=float("nan")), "eval_std must be a finite number"),
        (lambda: RandomChoice([]), "must not be empty"),
        (lambda: RandomChoice([GaussianBlur(), "pixelate"]), r"obfuscators\[1\] must be an Obfuscator"),
        (lambda: RandomChoice([GaussianBlur()], eval_index=1), "eval_index 1 out of range"),
    ],
)
def test_bad_arguments_raise(factory: Callable[[], Obfuscator], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 16, 16), "rank 4"),
        (torch.rand(2, 1, 16, 16), "3 \\(RGB\\) channels"),
        (torch.rand(2, 4, 16, 16), "3 \\(RGB\\) channels"),
        (torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8), "floating tensor"),
        (np.zeros((2, 3, 16, 16), dtype=np.float32), "must be a torch.Tensor"),
    ],
    ids=["rank3", "gray", "rgba", "uint8", "numpy"],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_images_raise(name: str, images: object, match: str) -> None:
    for training in (True, False):
        with pytest.raises(ValueError, match=match):
            make(name, training)(images, gen(0))


def test_bad_params_raise() -> None:
    x = rand_images(2)
    with pytest.raises(ValueError, match="params for 3 samples but 2 images"):
        GaussianBlur().apply(x, torch.full((3,), 2.0))
    with pytest.raises(ValueError, match="odd"):
        MedianBlur().apply(x, torch.tensor([4, 5]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    x = rand_images()
    for training in (True, False):
        ob = make(name, training)
        cpu = ob(x, gen(4))
        cuda = ob(x.cuda(), gen(4))
        assert cuda.device.type == "cuda"
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_module_device_and_dtype_moves_work(name: str) -> None:
    """nn.Module.to()/cpu()/double() walk children through Module._apply: obfuscators must not shadow it."""
    module = torch.nn.ModuleDict({"o": make(name, training=False)})
    module.cpu().double().float()
    assert module["o"](rand_images()).shape == rand_images().shape


def test_a_registered_obfuscator_builds_by_name_and_names_stay_unique() -> None:
    """A paper adds an obfuscator in its own package with the decorator; build_obfuscator then finds it."""
    from src.obfuscators import OBFUSCATOR_REGISTRY, Identity, build_obfuscator, register_obfuscator

    saved = dict(OBFUSCATOR_REGISTRY)
    try:

        @register_obfuscator
        class PaperOwn(Identity):
            name = "paper_own_for_test"

        assert isinstance(build_obfuscator("paper_own_for_test"), PaperOwn)

        class Clash(Identity):
            name = "blur"

        with pytest.raises(ValueError, match="obfuscator name 'blur' is already registered by GaussianBlur"):
            register_obfuscator(Clash)
    finally:
        OBFUSCATOR_REGISTRY.clear()
        OBFUSCATOR_REGISTRY.update(saved)
