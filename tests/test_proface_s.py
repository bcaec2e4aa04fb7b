"""PRO-Face S: Haar transform, coupling blocks, the keyed INN, keys, losses, and a short training run."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from src.config.compose import compose
from src.config.instantiate import instantiate
from src.metrics.image_quality import psnr
from src.networks.invertible import AffineCouplingBlock, ResidualDenseBlock, haar_dwt, haar_iwt
from src.networks.recognizers import build_recognizer
from src.obfuscators.targets import list_images
from src.papers.proface_s.keys import key_from_password, password_bytes, random_key_maps
from src.papers.proface_s.module import (
    LOSS_WEIGHTS,
    ProFaceSModule,
    proface_s_loss,
    quantize_8bit,
    step_seed,
)
from src.papers.proface_s.networks import ProFaceSNet
from src.papers.registry import REPORT_LAYOUTS, discover
from tests.helpers import (
    TINY_DATA,
    TINY_DATA_ROOT,
    paper_tiny_overrides,
    run_experiment,
    tiny_overrides,
)

TINY_SYNTHETIC = [
    "datamodule.num_identities=12",
    "datamodule.train_identities=6",
    "datamodule.val_identities=3",
    "datamodule.test_identities=3",
    "datamodule.images_per_identity=16",
    "datamodule.eval_images_per_identity=2",
    "datamodule.image_size=32",
    "datamodule.batch_size=8",
]

TINY_SWAP_TARGETS = TINY_DATA_ROOT / "celeba" / "img_align_celeba"  # miniature face-swap targets
TINY_CARTOONS = TINY_DATA_ROOT / "cartoonset"  # miniature CartoonSet stickers

discover()  # registers the report layouts


def randomise_output_convs(net: torch.nn.Module, std: float, seed: int = 0) -> None:
    """Give every zero-initialised ``conv5`` random weights, so the network is far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if ".conv5." in f".{name}":
                param.copy_(std * torch.randn(param.shape, generator=generator))


# ------------------------------------------------------------------------------------------------------ Haar


def reference_haar(x: torch.Tensor) -> torch.Tensor:
    """Haar DWT by strided slicing (independent of the einsum implementation), sub-band major."""
    a, b = x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2]  # (even row, even col), (odd row, even col)
    c, d = x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]  # (even row, odd col), (odd row, odd col)
    return torch.cat(
        [(a + b + c + d) / 2, (-a - b + c + d) / 2, (-a + b - c + d) / 2, (a - b - c + d) / 2], 1
    )


def test_haar_matches_reference_and_round_trips() -> None:
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = haar_dwt(x)
    assert y.shape == (2, 12, 4, 6)
    torch.testing.assert_close(y, reference_haar(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(haar_iwt(y), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(y.norm(), x.norm())  # orthonormal
    constant = torch.ones(1, 1, 4, 4)
    assert torch.equal(haar_dwt(constant)[:, 1:], torch.zeros(1, 3, 2, 2))  # no detail in a flat image
    with pytest.raises(ValueError, match="even"):
        haar_dwt(torch.zeros(1, 3, 5, 4))


# -------------------------------------------------------------------------------------------------- coupling


def test_dense_block_parameters_and_zero_start() -> None:
    block = ResidualDenseBlock(16, 12, growth=32)
    expected = sum(9 * (16 + 32 * i) * (32 if i < 4 else 12) + (32 if i < 4 else 12) for i in range(5))
    assert sum(p.numel() for p in block.parameters()) == expected == 89_420
    assert torch.equal(block(torch.randn(1, 16, 5, 5)), torch.zeros(1, 12, 5, 5))


def test_coupling_block_is_identity_at_init_and_inverts_exactly() -> None:
    torch.manual_seed(0)
    block = AffineCouplingBlock(
        4, 3, cond_channels=2, clamp=2.0, subnet=lambda i, o: ResidualDenseBlock(i, o, 8)
    )
    x, cond = torch.randn(2, 7, 6, 6), torch.randn(2, 2, 6, 6)
    assert torch.equal(block(x, cond), x)
    randomise_output_convs(block, std=0.1)
    y = block(x, cond)
    assert (y - x).abs().max() > 0.05
    torch.testing.assert_close(block.inverse(y, cond), x, rtol=0, atol=1e-5)
    assert (block.inverse(y, -cond) - x).abs().max() > 1e-3  # the condition matters


def test_coupling_log_det_matches_the_jacobian() -> None:
    torch.manual_seed(1)
    block = AffineCouplingBlock(
        2, 2, cond_channels=1, subnet=lambda i, o: ResidualDenseBlock(i, o, 4)
    ).double()
    randomise_output_convs(block, std=0.3, seed=1)
    x, cond = torch.randn(1, 4, 2, 2, dtype=torch.float64), torch.randn(1, 1, 2, 2, dtype=torch.float64)
    _, log_det = block(x, cond, return_log_det=True)
    jacobian = torch.autograd.functional.jacobian(
        lambda v: block(v.view(1, 4, 2, 2), cond).flatten(), x.flatten()
    )
    torch.testing.assert_close(log_det[0], torch.linalg.slogdet(jacobian).logabsdet)


# ------------------------------------------------------------------------------------------------- the INN


def test_parameter_count_of_the_released_configuration() -> None:
    net = ProFaceSNet(inv_blocks=3)
    assert sum(p.numel() for p in net.parameters()) == 1_073_040
    assert sum(p.numel() for p in net.inn.blocks[0].parameters()) == 357_680
    conv5 = [p for n, p in net.named_parameters() if ".conv5." in n]
    others = [p for n, p in net.named_parameters() if ".conv5." not in n]
    assert len(conv5) == 24 and all(torch.equal(p, torch.zeros_like(p)) for p in conv5)
    spread = torch.cat([p.detach().flatten() for p in others]).std()
    assert 0.009 < float(spread) < 0.011  # 0.01 * N(0, 1)


def test_fresh_network_is_the_identity() -> None:
    net = ProFaceSNet(inv_blocks=2, init_seed=0)
    x, x_o = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    key = random_key_maps(2, 16, 16, torch.Generator().manual_seed(0))
    x_p, z = net(x, x_o, key)
    torch.testing.assert_close(x_p, x_o, rtol=0, atol=1e-6)
    torch.testing.assert_close(z, haar_dwt(x), rtol=0, atol=1e-6)
    # with the default ẑ a fresh network "recovers" IWT(key DWT tiled 3x): recovery is learned, not built in
    x_r, _ = net.inverse(x_p, key)
    torch.testing.assert_close(x_r, haar_iwt(haar_dwt(key).repeat(1, 3, 1, 1)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("secret_key_as_noise", [True, False])
def test_inverse_with_the_exact_z_recovers_any_key(secret_key_as_noise: bool) -> None:
    net = ProFaceSNet(inv_blocks=3, init_seed=0, secret_key_as_noise=secret_key_as_noise)
    randomise_output_convs(net, std=0.05)
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1
    x_o = F.avg_pool2d(x, 5, 1, 2)
    for key in (random_key_maps(2, 32, 32, generator), key_from_password("0", 32, 32)):
        x_p, z = net(x, x_o, key)
        assert (x_p - x_o).abs().max() > 1e-2  # not the identity
        x_r, x_o_hat = net.inverse(x_p, key, z)
        assert float((x_r - x).abs().max()) < 1e-5
        assert float((x_o_hat - x_o).abs().max()) < 1e-5
        wrong = random_key_maps(2, 32, 32, generator)
        assert float((net.inverse(x_p, wrong, z)[0] - x).abs().max()) > 1e-2


# ------------------------------------------------------------------------------------------------------ keys


def test_password_key_matches_an_independent_pbkdf2_computation() -> None:
    height, width = 16, 24
    key = key_from_password("0", height, width)
    assert key.shape == (1, 1, height, width) and key.dtype == torch.float32
    assert torch.equal(key, key_from_password("0", height, width))  # deterministic
    derived = hashlib.pbkdf2_hmac("sha512", b"0", b"\x01", 10, height * width // 8)
    bits = "".join(f"{byte:08b}" for byte in derived)  # most significant bit first
    expected = torch.tensor([1.0 if bit == "1" else -1.0 for bit in bits]).view(1, 1, height, width)
    assert torch.equal(key, expected)
    assert set(key.unique().tolist()) == {-1.0, 1.0}


def test_password_and_salt_bytes_follow_pycryptodome() -> None:
    # pycryptodome's tobytes: int n -> bytes([n]); str -> latin-1. The original used password = 0, salt = 1.
    assert password_bytes(1) == b"\x01" and password_bytes(0) == b"\x00"
    assert password_bytes("0") == b"0" and password_bytes("é") == b"\xe9" and password_bytes(b"ab") == b"ab"
    original = hashlib.pbkdf2_hmac("sha512", b"\x00", b"\x01", 10, 8 * 8 // 8)
    bits = torch.tensor([float(b) for byte in original for b in f"{byte:08b}"]).view(1, 1, 8, 8) * 2 - 1
    assert torch.equal(key_from_password(0, 8, 8), bits)
    assert not torch.equal(key_from_password(0, 8, 8), key_from_password("0", 8, 8))
    with pytest.raises(ValueError, match="multiple of 8"):
        key_from_password("0", 3, 3)
    with pytest.raises(ValueError, match="0..255"):
        password_bytes(256)


def test_random_keys_are_seeded() -> None:
    first = random_key_maps(3, 8, 8, torch.Generator().manual_seed(5))
    again = random_key_maps(3, 8, 8, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and set(first.unique().tolist()) == {-1.0, 1.0}
    assert not torch.equal(first[0], first[1])


# ---------------------------------------------------------------------------------------------------- losses


def _images(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 3, 4, 6, generator=generator) * 2 - 1 for _ in range(5)]


def _mean_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().mean()


def _row_triplet(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float) -> torch.Tensor:
    d_ap = (a - p + 1e-6).abs().sum(-1)  # torch's pairwise_distance adds eps to the difference
    d_an = (a - n + 1e-6).abs().sum(-1)
    return (d_ap - d_an + margin).clamp_min(0).mean()


def test_random_mode_terms_and_weights() -> None:
    x, x_o, x_p, x_r, x_w = _images(0)
    terms = proface_s_loss(x, x_o, x_p, x_r, x_w, _mean_sq, "Random", margin=1.2, tl1_mode="row")
    img = 5 * _mean_sq(x_o, x_p) + (x_o - x_p).abs().mean()
    rec = (x_r - x).abs().mean()
    wr = (_mean_sq(x, x_r) - _mean_sq(x, x_w) + 1.2).clamp_min(0) + _row_triplet(x, x_r, x_w, 1.2)
    torch.testing.assert_close(terms["img"], img)
    torch.testing.assert_close(terms["rec"], rec)
    torch.testing.assert_close(terms["wr"], wr)
    torch.testing.assert_close(terms["loss"], 0.3 * img + 0.5 * rec + 0.2 * wr)
    assert LOSS_WEIGHTS["Random"] == {"img": 0.3, "rec": 0.5, "wr": 0.2}


def test_obfs_mode_terms_and_weights() -> None:
    x, x_o, x_p, x_r, x_w = _images(1)
    terms = proface_s_loss(x, x_o, x_p, x_r, x_w, _mean_sq, "Obfs", margin=1.2)
    img = 5 * _mean_sq(x_o, x_p) + (x_o - x_p).abs().mean()
    rec = (x_r - x).abs().mean() + (x_w - x_o).abs().mean()
    wr = (_mean_sq(x_r, x) - _mean_sq(x_r, x_o) + 1.2).clamp_min(0)
    wr = wr + (_mean_sq(x_w, x_o) - _mean_sq(x_w, x) + 1.2).clamp_min(0)
    torch.testing.assert_close(terms["rec"], rec)
    torch.testing.assert_close(terms["wr"], wr)
    torch.testing.assert_close(terms["loss"], 0.2 * img + 0.3 * rec + 0.5 * wr)


def test_flat_triplet_mode_uses_one_distance_per_image() -> None:
    x, x_o, x_p, x_r, x_w = _images(2)
    zero = lambda a, b: torch.zeros(())  # noqa: E731 - isolates the L1 triplet term
    flat = proface_s_loss(x, x_o, x_p, x_r, x_w, zero, "Random", margin=1.2, tl1_mode="flat")
    d_ap = (x - x_r + 1e-6).abs().flatten(1).sum(1)
    d_an = (x - x_w + 1e-6).abs().flatten(1).sum(1)
    torch.testing.assert_close(flat["wr"], 1.2 + (d_ap - d_an + 1.2).clamp_min(0).mean())
    with pytest.raises(ValueError, match="tl1_mode"):
        proface_s_loss(x, x_o, x_p, x_r, x_w, zero, "Random", tl1_mode="rows")


# ---------------------------------------------------------------------------------- training and evaluation


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProFaceSModule, pl.LightningDataModule, list]:
    """The demo experiment at 32 px with one INN block, trained for 25 steps: (module, datamodule, losses)."""
    torch.manual_seed(0)
    cfg = compose("proface_s/demo_synthetic", [*TINY_SYNTHETIC, "model.net.inv_blocks=1"]).config
    model, datamodule = instantiate(cfg.model), instantiate(cfg.datamodule)
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=25,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
        default_root_dir=str(tmp_path_factory.mktemp("proface_s")),
    )
    trainer.fit(model, datamodule=datamodule)
    return model, datamodule, losses


def test_short_training_run_lowers_the_loss(trained: tuple) -> None:
    _, _, losses = trained
    assert len(losses) == 25 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_trained_model_recovery_quantisation_and_wrong_key(trained: tuple) -> None:
    """Right key (with the discarded z) inverts exactly; a wrong key does not; 8-bit x_p costs a bounded error

    The PSNRs are printed (``pytest -s``) for the record: right key, wrong key, right key from the 8-bit x_p.
    """
    model, datamodule, _ = trained
    datamodule.setup("test")
    images = next(iter(datamodule.test_dataloader()))["image"]
    model.eval()
    with torch.no_grad():
        x = images * 2 - 1
        key = model.eval_key(32, 32)
        wrong = key_from_password("not the password", 32, 32)
        x_o = model.eval_obfuscators["blur"](images) * 2 - 1
        x_p, z = model.net(x, x_o, key)
        x_r = model.net.inverse(x_p, key, z)[0]
        x_w = model.net.inverse(x_p, wrong, z)[0]
        x_r_q8 = model.net.inverse(quantize_8bit(x_p), key, z)[0]

    def score(t: torch.Tensor) -> float:
        return float(psnr(((t + 1) / 2).clamp(0, 1), images).mean())

    right_error = float((x_r - x).abs().max()) / 2  # in [0, 1] image units
    wrong_error = float((x_w - x).abs().max()) / 2
    q8_error = float((x_r_q8 - x).abs().max()) / 2
    print(
        f"PSNR right key {score(x_r):.2f} dB, wrong key {score(x_w):.2f} dB, right key from 8-bit x_p "
        f"{score(x_r_q8):.2f} dB; max errors {right_error:.2e}, {wrong_error:.2e}, {q8_error:.2e}"
    )
    assert right_error < 1e-4  # invertible by construction (before quantisation)
    assert wrong_error > 1e-2 and score(x_w) < score(x_r) - 20  # the key conditions every coupling block
    assert right_error < q8_error < 0.5  # 8-bit storage of x_p perturbs the recovery, boundedly


@pytest.fixture(scope="module")
def loop_metrics(trained: tuple, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The test loop of the trained model on one batch (shared by the table tests)."""
    model, datamodule, _ = trained
    return run_test_loop(model, datamodule, tmp_path_factory.mktemp("proface_s_test"))


def run_test_loop(
    model: pl.LightningModule, datamodule: pl.LightningDataModule, root: Path
) -> dict[str, float]:
    """The logged metrics of the model's test loop over the first test batch."""
    trainer = pl.Trainer(
        accelerator="cpu",
        limit_test_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
    )
    return trainer.test(model, datamodule=datamodule, verbose=False)[0]


def test_robustness_columns(trained: tuple, loop_metrics: dict[str, float]) -> None:
    """Recovery PSNRs under a close password, noise on x_p and from x_o, recomputed independently."""
    model, datamodule, _ = trained
    assert model.robustness_columns() == [
        "r_close_key_psnr",
        "r_noise1e-3_psnr",
        "r_noise5e-3_psnr",
        "r_noise1e-2_psnr",
        "r_from_xo_psnr",
    ]
    # the same quantities for the first test batch, computed here without the module's evaluation code
    batch = next(iter(datamodule.test_dataloader()))
    images = batch["image"]
    key, close = model.eval_key(32, 32), key_from_password(1, 32, 32)
    seed = step_seed(model.hparams.seed, int(batch["index"][0]), 0)  # blur is setting 0
    with torch.no_grad():
        x_o = model.eval_obfuscators["blur"].eval()(images)
        x_p = model.net(images * 2 - 1, x_o * 2 - 1, key)[0]

        def rec_psnr(protected: torch.Tensor, k: torch.Tensor) -> float:
            x_r = model.net.inverse(protected, k)[0]
            return float(psnr(((x_r + 1) / 2).clamp(0, 1), images).mean())

        right, close_psnr, from_xo = rec_psnr(x_p, key), rec_psnr(x_p, close), rec_psnr(x_o * 2 - 1, key)
        noisy = []
        for i, std in enumerate((0.001, 0.005, 0.01)):
            noise = torch.randn(x_p.shape, generator=torch.Generator().manual_seed(seed + 10 + i))
            noisy.append(rec_psnr(x_p + std * noise, key))
        # the noise reaches the recovery (its PSNR can move by less than 1e-4 dB after a tiny training)
        moved = (model.net.inverse(x_p + 0.01 * noise, key)[0] - model.net.inverse(x_p, key)[0]).abs().max()
    metrics = loop_metrics
    assert metrics["test/blur/r_close_key_psnr"] == pytest.approx(close_psnr, abs=1e-3)
    assert metrics["test/blur/r_from_xo_psnr"] == pytest.approx(from_xo, abs=1e-3)
    for value, name in zip(noisy, ("1e-3", "5e-3", "1e-2"), strict=True):
        assert metrics[f"test/blur/r_noise{name}_psnr"] == pytest.approx(value, abs=1e-3)
    assert close_psnr != pytest.approx(right, abs=1e-3) and moved > 1e-3
    print(f"right {right:.2f} dB, close password {close_psnr:.2f}, from x_o {from_xo:.2f}, noise {noisy}")


def test_test_loop_fills_the_results_table(trained: tuple, loop_metrics: dict[str, float]) -> None:
    model, metrics = trained[0], loop_metrics
    table = model.results_table(metrics)
    assert list(table["obfuscator"]) == ["blur", "median", "pixelate"]
    assert "st_lpips_alex" in model.perceptual_name and "p_st_lpips_alex" in table.columns
    numbers = table.drop(columns=["obfuscator", "eval setting", "wrong recovery vs"])
    assert numbers.notna().all().all()
    assert (table["rec_maxerr_exact_z"] < 1e-5).all() and (table["rec_maxerr_q8"] > 0).all()
    assert table.loc[0, "eval setting"].startswith("kernel_size=15, eval_sigma=3.75")
    assert (table["wrong recovery vs"] == "original").all()


def test_paper_table_layout(trained: tuple, loop_metrics: dict[str, float]) -> None:
    """Report layout (docs/papers/proface_s.md, "Building the table") from run-record rows: one row per
    evaluation obfuscator with p / p_abs / r / wr columns."""
    model, metrics = trained[0], loop_metrics
    run = {
        "experiment": "proface_s/demo_synthetic",
        "config.datamodule._target_": "src.datamodules.synthetic_faces.SyntheticFacesDataModule",
        "config.model.wrong_recover_type": "Obfs",
        **metrics,
    }
    table = REPORT_LAYOUTS["proface_s"](pd.DataFrame([run]))
    assert list(table["obfuscator"]) == ["blur", "median", "pixelate"]
    assert (table["test data"] == "SyntheticFaces (synthetic)").all()
    assert (table["wrong recovery vs"] == "obfuscated").all()
    name = model.perceptual_name
    for group in ("p", "p_abs", "r", "wr"):
        for metric in ("ssim", "psnr", name):
            assert table.loc[1, f"{group} {metric}"] == metrics[f"test/median/{group}_{metric}"]
    assert table.loc[2, "r psnr (8-bit x_p)"] == metrics["test/pixelate/r_q8_psnr"]
    assert table.loc[0, "r psnr (x_p + noise 0.005)"] == metrics["test/blur/r_noise5e-3_psnr"]
    assert table.loc[1, "r psnr (close password)"] == metrics["test/median/r_close_key_psnr"]
    assert table.loc[2, "r psnr (from x_o)"] == metrics["test/pixelate/r_from_xo_psnr"]
    assert table.loc[0, "max |x_r - x| (8-bit x_p)"] == metrics["test/blur/rec_maxerr_q8"]
    assert table.drop(columns=["experiment"]).notna().all().all()


# ---------------------------------------------------------------------------- the released hybridAll setting


@pytest.mark.filterwarnings("ignore:.*RANDOM weights.*")
def test_hybrid_all_has_six_settings_with_split_targets(tmp_path: Path) -> None:
    """hybridAll (docs/papers/proface_s.md, "Obfuscators"): blur, median, pixelate, FaceShifter, SimSwap and
    the cartoon mask, each a test setting; swap targets and stickers are the seeded 90/10 splits (seed 0 /
    seed 1) of their folders."""
    overrides = [
        *TINY_DATA["src.datamodules.celeba.CelebADataModule"],
        *paper_tiny_overrides("proface_s", "proface_s/hybrid_all_celeba"),
        "model.net.inv_blocks=1",
    ]
    cfg = compose("proface_s/hybrid_all_celeba", overrides).config
    model, datamodule = instantiate(cfg.model), instantiate(cfg.datamodule)
    settings = ["blur", "median", "pixelate", "faceshifter", "simswap", "cartoon_mask"]
    assert list(model.eval_obfuscators) == settings
    faces, stickers = list_images(TINY_SWAP_TARGETS, "t"), list_images(TINY_CARTOONS, "t")
    splits = (("faceshifter", faces, 0), ("simswap", faces, 0), ("cartoon_mask", stickers, 1))
    for setting, pool, seed in splits:
        child = model.eval_obfuscators[setting]
        n = len(pool)
        torch.manual_seed(seed)
        train, test = torch.utils.data.random_split(pool, [int(0.9 * n), n - int(0.9 * n)])
        assert child.num_targets(True) == len(train) and child.num_targets(False) == len(test)
        assert [child.target_set(False)._resolve()[i] for i in range(len(test))] == list(test)
    metrics = run_test_loop(model, datamodule, tmp_path)
    table = model.results_table(metrics)
    assert list(table["obfuscator"]) == settings
    assert table.drop(columns=["obfuscator", "eval setting", "wrong recovery vs"]).notna().all().all()
    assert (table["rec_maxerr_exact_z"] < 1e-5).all()
    # the test loop's first batch used the first target of each test sequence (swaps start at offset 1)
    assert model.eval_obfuscators["cartoon_mask"].last_target == 0
    simswap = model.eval_obfuscators["simswap"]
    assert simswap.last_target == 1 % simswap.num_targets()


@pytest.mark.filterwarnings("ignore:.*RANDOM weights.*")
@pytest.mark.parametrize(
    "datamodules",
    [(("lfw", "LFW"),), pytest.param((("ffhq", "FFHQ"),), marks=pytest.mark.slow)],
    ids=["lfw", "ffhq"],
)
def test_celeba_checkpoint_evaluates_on_lfw_and_ffhq(runs_dir: Path, datamodules: tuple) -> None:
    """The paper's cross-dataset tests: a CelebA-trained checkpoint evaluated on LFW and FFHQ images by
    switching the DataModule on the command line (as the experiments README documents). The switch is the
    same for both, so FFHQ's run is a slow test."""
    experiment = "proface_s/hybrid_all_celeba"
    overrides = tiny_overrides(
        experiment, runs_dir, extra=["trainer.max_steps=1", "trainer.limit_val_batches=0"]
    )
    trained = run_experiment(experiment, overrides)
    checkpoint = trained.run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    for datamodule, label in datamodules:
        target = f"src.datamodules.{datamodule}.{label}DataModule"
        extra = [
            f"datamodule={datamodule}",
            "datamodule.eval_protocol=images",
            f"ckpt_path={checkpoint}",
            "trainer.limit_test_batches=1",
        ]
        result = run_experiment(experiment, tiny_overrides(experiment, runs_dir, extra=extra), task="eval")
        summary = json.loads((result.run_dir / "summary.json").read_text())
        assert summary["status"] == "completed"
        for setting in ("blur", "faceshifter", "simswap", "cartoon_mask"):
            assert math.isfinite(summary[f"test/{setting}/r_psnr"])
        config = (result.run_dir / "config.yaml").read_text()
        assert target in config and str(checkpoint) in config


def test_identity_anonymity_columns_with_a_zoo_recognizer(trained: tuple, tmp_path: Path) -> None:
    """id_cos_* = cosine of dlib's embedding of x_o / x_p to the original's, recomputed here; the recognizer
    stays out of the checkpoint and the optimizer."""
    base, datamodule, _ = trained
    recognizer = build_recognizer("dlib_resnet")
    model = ProFaceSModule(
        net=base.net,
        obfuscator=base.obfuscator,
        perceptual=base.perceptual,
        optimizer=base.optimizer_factory,
        anonymity_recognizer=recognizer,
        **base.hparams,
    )
    assert not any("recognizer" in key for key in model.state_dict())
    assert model.anonymity_columns() == ["id_cos_obf", "id_cos_p", "id_cos_r", "id_cos_wr"]
    metrics = run_test_loop(model, datamodule, tmp_path)
    images = next(iter(datamodule.test_dataloader()))["image"]
    with torch.no_grad():
        obfuscated = model.eval_obfuscators["pixelate"].eval()(images).clamp(0, 1)
        protected = model(images, obfuscated, model.eval_key(32, 32)).clamp(0, 1)

        def cosine(variant: torch.Tensor) -> float:
            a, b = (recognizer.embed(t, resize=True) for t in (variant, images))
            return float(F.cosine_similarity(a, b).mean())

        expected = {"obf": cosine(obfuscated), "p": cosine(protected)}
    for group, value in expected.items():
        assert metrics[f"test/pixelate/id_cos_{group}"] == pytest.approx(value, abs=1e-4)
    table = model.results_table(metrics)
    assert table["id_cos_p"].notna().all() and (table["id_cos_p"] <= 1.0 + 1e-6).all()
    with pytest.raises(ValueError, match="anonymity_recognizer must be a zoo FaceRecognizer"):
        ProFaceSModule(
            net=base.net,
            obfuscator=base.obfuscator,
            perceptual=base.perceptual,
            optimizer=base.optimizer_factory,
            anonymity_recognizer=torch.nn.Identity(),
        )
