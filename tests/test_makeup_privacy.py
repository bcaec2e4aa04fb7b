"""Makeup-privacy's LightningModule: the optimisation schedule (D every 20 batches, the clamp once at
construction), the one target identity of training and testing, the faithful_bugs switches, the 1:1 ASR
against a hand computation, the 1:N PSR wiring, the robustness variants, the released-generator loader and
the results table."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader

from src.config.compose import compose
from src.config.errors import ConfigError
from src.datamodules.components.makeup_io import load_target_image
from src.metrics.fid import FID
from src.metrics.impersonation import published_threshold
from src.metrics.perceptual import LPIPS
from src.metrics.protection_rank import protection_rank_success_rate
from src.papers.makeup_privacy import module as M
from src.papers.makeup_privacy.generator import SPADEGenerator
from src.papers.makeup_privacy.report import table_from_metrics
from src.papers.makeup_privacy.settings import GENERATOR, TINY_SIZE, tiny_module
from src.papers.registry import REPORT_LAYOUTS

#: only what the schedule tests need: the GAN term (the others are unit-tested in test_makeup_privacy_losses)
GAN_ONLY = {name: 0.0 for name in M.LossWeights().as_dict()} | {"gan": 1.0}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def target_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("target") / "085807.jpg"
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


def mt_items(count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """MT-layout training items at 32 px: images in [0, 1], label maps of MT ids 0..14."""
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "source": torch.rand(3, TINY_SIZE, TINY_SIZE, generator=g),
            "reference": torch.rand(3, TINY_SIZE, TINY_SIZE, generator=g),
            "source_labels": torch.randint(0, 15, (TINY_SIZE, TINY_SIZE), generator=g),
            "reference_labels": torch.randint(0, 15, (TINY_SIZE, TINY_SIZE), generator=g),
            "index": torch.tensor(i),
        }
        for i in range(count)
    ]


def trainer(**kwargs: object) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def steps(optimizer: torch.optim.Optimizer) -> set[int]:
    """The step counts RMSprop keeps per parameter (one value when every parameter stepped alike)."""
    return {int(state["step"]) for state in optimizer.state.values()}


# --- optimisation schedule ----------------------------------------------------------------------------------


def test_discriminator_steps_every_20_batches_before_the_generator(target_file: Path) -> None:
    torch.manual_seed(0)
    module = tiny_module(target_file, loss_weights=GAN_ONLY, train_semantics="mt_labels")
    fit = trainer(limit_val_batches=0)
    fit.fit(module, DataLoader(mt_items(21), batch_size=1))
    opt_g, opt_d = fit.optimizers
    assert steps(opt_g) == {21} and steps(opt_d) == {2}  # batches 0 and 20 only
    assert {p for group in opt_d.param_groups for p in group["params"]} == set(
        module.discriminator.parameters()
    )
    assert isinstance(opt_g, torch.optim.RMSprop) and opt_g.defaults["lr"] == pytest.approx(2e-4)
    # the frozen networks stayed in eval mode, outside the state dict
    assert not any(m.training for m in module.frozen.modules())
    assert {key.split(".")[0] for key in module.state_dict()} == {"generator", "discriminator"}


def test_the_clamp_is_applied_once_at_construction(target_file: Path) -> None:
    torch.manual_seed(0)
    module = tiny_module(target_file, loss_weights=GAN_ONLY, train_semantics="mt_labels", lr=0.05)
    values = torch.cat([p.detach().flatten() for p in module.discriminator.parameters()])
    assert float(values.abs().max()) == pytest.approx(0.01)  # the default init exceeds it: clamped
    torch.manual_seed(0)
    unclamped = tiny_module(target_file, d_clamp=None)
    assert (
        float(torch.cat([p.detach().flatten() for p in unclamped.discriminator.parameters()]).abs().max())
        > 0.01
    )
    trainer(limit_val_batches=0).fit(module, DataLoader(mt_items(1), batch_size=1))
    stepped = torch.cat([p.detach().flatten() for p in module.discriminator.parameters()])
    assert (
        float(stepped.abs().max()) > 0.01
    )  # no clamp after a D step (the authors' per-step call is a no-op)


def test_learning_rate_is_constant_then_decays_linearly(target_file: Path) -> None:
    module = tiny_module(target_file, niter_decay=4)
    module._trainer = SimpleNamespace(max_epochs=10)  # type: ignore[assignment]
    (opt_g, _), schedulers = module.configure_optimizers()
    scheduler = schedulers[0]["scheduler"]
    rates = []
    for _ in range(10):
        scheduler.step()
        rates.append(opt_g.param_groups[0]["lr"] / 2e-4)
    assert rates == pytest.approx([1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0])


# --- the target identity ------------------------------------------------------------------------------------


def test_one_target_path_for_training_and_testing_recorded_in_hparams(
    target_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test = (
        compose(f"makeup_privacy/{e}", allow_missing=True).config for e in ("mt_train", "lfw_1toN")
    )
    assert train.model.target_path == test.model.target_path
    assert str(train.model.target_path).endswith("MT-Dataset/test_target_image/target/085807.jpg")

    torch.manual_seed(0)
    module = tiny_module(target_file, loss_weights={"makeup_skin": 0.0}, train_semantics="mt_labels")
    expected = load_target_image(target_file, TINY_SIZE) * 2 - 1
    assert torch.equal(module.target, expected.unsqueeze(0))
    assert module.hparams.target_path == str(target_file)
    assert (
        module.hparams.target_sha256 == M.file_sha256(target_file) and len(module.hparams.target_sha256) == 64
    )
    assert "target" not in module.state_dict()

    seen: dict[str, torch.Tensor] = {}
    original = M.target_loss

    def recording(generated, target, source, embedders, *args):  # type: ignore[no-untyped-def]
        seen["train"] = target.detach().clone()
        return original(generated, target, source, embedders, *args)

    monkeypatch.setattr(M, "target_loss", recording)
    trainer(limit_val_batches=0).fit(module, DataLoader(mt_items(1), batch_size=1))
    embedded = []
    for name in module.fr_test:
        real = module.embedders[name]
        module.embedders[name] = lambda images, real=real: embedded.append(images.clone()) or real(images)
    module.on_test_start()
    for name in module.fr_test:
        module._target_embedding(name)
    assert torch.equal(seen["train"], module.target)
    assert len(embedded) == len(module.fr_test) and all(torch.equal(e, module.target) for e in embedded)


# --- faithful_bugs ------------------------------------------------------------------------------------------


def test_faithful_bugs_switch_the_training_semantics_and_the_protected_region(
    target_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = mt_items(1)[0]
    source_labels = torch.zeros(TINY_SIZE, TINY_SIZE, dtype=torch.long)
    source_labels[8:24, 8:24] = 1  # face skin: made up
    reference_labels = torch.full((TINY_SIZE, TINY_SIZE), 14, dtype=torch.long)  # the unnamed label 14
    item |= {"source_labels": source_labels, "reference_labels": reference_labels}
    batch = {k: v.unsqueeze(0) for k, v in item.items()}
    recorded = {}
    for faithful, semantics in ((False, "bisenet"), (False, "mt_labels"), (True, "bisenet")):
        torch.manual_seed(0)
        module = tiny_module(
            target_file, faithful_bugs=faithful, train_semantics=semantics, loss_weights=GAN_ONLY
        )
        real_warp = module.warp

        def warp(x, y, x_semantic, y_semantic, protect, key=(faithful, semantics), real=real_warp):  # type: ignore[no-untyped-def]
            recorded[key] = (x_semantic, y_semantic, protect)
            return real(x, y, x_semantic, y_semantic, protect)

        monkeypatch.setattr(module, "warp", warp)
        trainer(limit_val_batches=0).fit(module, DataLoader([item], batch_size=1))
    x_sem, y_sem, protect = recorded[(True, "bisenet")]  # the authors': raw label maps, label 14 slip
    assert x_sem.shape == (1, 1, TINY_SIZE, TINY_SIZE) and torch.equal(
        x_sem, batch["source_labels"][:, None].float()
    )
    assert torch.equal(y_sem, batch["reference_labels"][:, None].float())
    assert float(protect.max()) == 2.0  # background counted twice: its own 0 and the reference's 14
    x_sem, y_sem, protect = recorded[(False, "mt_labels")]
    assert x_sem.shape == (1, 19, TINY_SIZE, TINY_SIZE) and torch.equal(
        x_sem.argmax(1), batch["source_labels"]
    )
    assert set(protect.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(protect[0, 0], (source_labels != 1).float())
    x_sem, y_sem, protect = recorded[(False, "bisenet")]  # the fix: BiSeNet maps as at test time
    assert x_sem.shape == (1, 19, TINY_SIZE, TINY_SIZE)
    torch.testing.assert_close(x_sem.sum(1), torch.ones(1, TINY_SIZE, TINY_SIZE))
    assert torch.equal(
        recorded[(False, "mt_labels")][2], protect
    )  # the protected region: MT labels either way


# --- 1:1 evaluation -----------------------------------------------------------------------------------------


def hand_asr(scores: list[float], threshold: float) -> float:
    return sum(1 for s in scores if s > threshold) / len(scores)


def test_asr_and_thresholds_against_a_hand_computation(target_file: Path) -> None:
    module = tiny_module(target_file, fr_test=["ir152", "dlib_resnet"], published_thresholds=["ir152"])
    rng = np.random.default_rng(3)
    sources, references = 20, 3
    clean = rng.uniform(-0.2, 0.5, sources).round(4).tolist()
    protected = rng.uniform(0.0, 0.6, sources * references).round(4).tolist()
    index = torch.arange(sources * references)
    order = torch.randperm(len(index), generator=torch.Generator().manual_seed(0))
    order = torch.cat([order, order[:2]])  # two DDP padding duplicates
    source_index = index // references
    scores = {}
    for name in module.fr_test:
        scores[f"source__{name}"] = torch.tensor(clean, dtype=torch.float64)[source_index[order]]
        scores[f"protected__{name}"] = torch.tensor(protected, dtype=torch.float64)[order]
    module.pair_scores.update(index=index[order], source_index=source_index[order], **scores)
    images = torch.rand(2, 3, TINY_SIZE, TINY_SIZE)
    module.psnr.update(images, images)
    module.ssim.update(images, images)
    with pytest.warns(UserWarning, match="FAR 0.01"):  # 20 sources resolve FAR 0.1 only
        metrics = module._pair_metrics()

    for far in (0.1, 0.01, 0.001):
        t = published_threshold("ir152", far)
        assert metrics[f"test/threshold/ir152/far{far:g}"] == t
        assert metrics[f"test/asr/protected/ir152/far{far:g}"] == hand_asr(protected, t)
        assert metrics[f"test/asr/source/ir152/far{far:g}"] == hand_asr(clean, t)  # each source once
    # dlib: computed at FAR 0.1 on the 20 clean scores: at most 2 impostors may pass, the third may not
    third = sorted(clean, reverse=True)[2]
    t = metrics["test/threshold/dlib_resnet/far0.1"]
    assert t > third and t == math.nextafter(third, math.inf)
    assert sum(s >= t for s in clean) <= 2 and metrics["test/threshold/dlib_resnet/computed"] == 1.0
    assert metrics["test/asr/protected/dlib_resnet/far0.1"] == hand_asr(protected, t)
    assert metrics["test/asr/source/dlib_resnet/far0.1"] == hand_asr(clean, t) <= 0.1
    assert "test/asr/protected/dlib_resnet/far0.01" not in metrics
    assert metrics["test/threshold/ir152/computed"] == 0.0
    assert metrics["test/cos/protected/ir152"] == pytest.approx(sum(protected) / len(protected))
    assert metrics["test/cos/source/ir152"] == pytest.approx(sum(clean) / len(clean))
    assert metrics["test/psnr"] == 100.0 and metrics["test/ssim"] == pytest.approx(1.0)


def test_pair_step_scores_the_saved_images_against_the_target(target_file: Path) -> None:
    torch.manual_seed(0)
    module = tiny_module(target_file, fr_test=["ir_se50"], robustness=["noise"]).eval()
    batch = {
        "source": torch.rand(2, 3, TINY_SIZE, TINY_SIZE),
        "reference": torch.rand(2, 3, TINY_SIZE, TINY_SIZE),
        "index": torch.tensor([4, 5]),
        "source_index": torch.tensor([1, 1]),
    }
    module.on_test_start()
    module.test_step(batch, 0)
    collected = module.pair_scores.compute()
    saved = M.as_saved(module.protect_images(batch["source"], batch["reference"]))
    embed = module.embedders["ir_se50"]
    target = embed(module.target)
    expected = torch.nn.functional.cosine_similarity(embed(saved * 2 - 1), target).double()
    torch.testing.assert_close(collected["protected__ir_se50"], expected)
    clean = torch.nn.functional.cosine_similarity(embed(batch["source"] * 2 - 1), target).double()
    torch.testing.assert_close(collected["source__ir_se50"], clean)
    assert not torch.equal(collected["noise__ir_se50"], collected["protected__ir_se50"])


class TinyFeatures(torch.nn.Module):
    """A fixed random projection standing in for FID's Inception (which needs a weights file)."""

    num_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.projection = torch.nn.Linear(3 * TINY_SIZE * TINY_SIZE, self.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(images.flatten(1))


def test_fid_compares_the_saved_protected_images_with_their_sources(
    target_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    features = TinyFeatures()
    monkeypatch.setattr(M, "FID", lambda: FID(feature=features))
    module = tiny_module(target_file, fr_test=["ir_se50"], fid=True).eval()
    module.on_test_start()
    reference_fid = FID(feature=features)
    g = torch.Generator().manual_seed(2)
    for first in (0, 3):
        batch = {
            "source": torch.rand(3, 3, TINY_SIZE, TINY_SIZE, generator=g),
            "reference": torch.rand(3, 3, TINY_SIZE, TINY_SIZE, generator=g),
            "index": torch.arange(first, first + 3),
            "source_index": torch.arange(first, first + 3),
        }
        module.test_step(batch, 0)
        reference_fid.update(batch["source"], real=True)
        reference_fid.update(
            M.as_saved(module.protect_images(batch["source"], batch["reference"])), real=False
        )
    metrics = module._pair_metrics()
    assert math.isfinite(metrics["test/fid"]) and metrics["test/fid"] > 0
    assert metrics["test/fid"] == pytest.approx(float(reference_fid.compute()), rel=1e-5)


@pytest.mark.filterwarnings("ignore:.*RANDOM alex trunk.*")
def test_lpips_compares_the_saved_protected_images_with_their_sources(target_file: Path) -> None:
    module = tiny_module(target_file, fr_test=["ir_se50"]).eval()  # LPIPS-alex, random trunk (tiny)
    module.on_test_start()
    reference = LPIPS(net="alex", random_backbone=True)
    g = torch.Generator().manual_seed(3)
    batch = {
        "source": torch.rand(2, 3, TINY_SIZE, TINY_SIZE, generator=g),
        "reference": torch.rand(2, 3, TINY_SIZE, TINY_SIZE, generator=g),
        "index": torch.arange(2),
        "source_index": torch.arange(2),
    }
    module.test_step(batch, 0)
    reference.update(M.as_saved(module.protect_images(batch["source"], batch["reference"])), batch["source"])
    metrics = module._pair_metrics()
    assert metrics["test/lpips_alex_RANDOM"] == pytest.approx(float(reference.compute()), rel=1e-5)
    with pytest.raises(ConfigError, match="model.lpips must be one of"):
        tiny_module(target_file, lpips="resnet")


# --- 1:N evaluation -----------------------------------------------------------------------------------------


def test_psr_wiring_ranks_protected_queries_against_the_clean_gallery(
    target_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tiny_module(target_file, psr_model="ir_se50", psr_topk=[1, 2, 5])
    # embeddings = the first two pixels of channel 0; the "protection" shifts the query image
    module.embedders["ir_se50"] = lambda images: images[:, 0, 0, :2]
    monkeypatch.setattr(module, "protect_images", lambda query, reference: query * 2 - 1 + reference * 2)
    query = torch.zeros(4, 3, TINY_SIZE, TINY_SIZE)
    gallery = torch.zeros(4, 3, 8, 8)
    # identity i: gallery direction at angle 30°·i; query = its own gallery (clean: always retrieved)
    angles = torch.tensor([0.0, 30.0, 60.0, 90.0]) * math.pi / 180
    directions = torch.stack([angles.cos(), angles.sin()], 1)
    gallery[:, 0, 0, :2] = (directions + 1) / 2  # the module maps [0, 1] to [-1, 1]
    query[:, 0, 0, :2] = (directions + 1) / 2
    reference = torch.zeros(4, 3, TINY_SIZE, TINY_SIZE)
    reference[:, 0, 0, :2] = torch.tensor([[0.0, 0.5], [0.0, 0.0], [0.5, -0.5], [-0.25, -0.25]])
    for rows in ([2, 3], [0, 1], [3]):  # out of order, with a DDP duplicate
        module._rank_step(
            {
                "query": query[rows],
                "gallery": gallery[rows],
                "reference": reference[rows],
                "index": torch.tensor(rows),
            }
        )
    with pytest.warns(UserWarning, match="k > 3 skipped"):  # 4 identities: 3 impostors per query
        metrics = module._rank_metrics()
    assert not any(name.endswith("top5") for name in metrics)
    protected = query[:, 0, 0, :2] * 2 - 1 + reference[:, 0, 0, :2] * 2
    clean_gallery = directions
    expected = protection_rank_success_rate(protected.double(), clean_gallery.double(), (1, 2))
    # by hand: genuine cosine vs the best / second-best impostor cosine, per query
    cos = (
        torch.nn.functional.normalize(protected, dim=1)
        @ torch.nn.functional.normalize(clean_gallery, dim=1).T
    )
    hand = {k: 0 for k in (1, 2)}
    for i in range(4):
        impostors = sorted((float(cos[i, j]) for j in range(4) if j != i), reverse=True)
        for k in (1, 2):
            hand[k] += float(cos[i, i]) <= impostors[k - 1]
    for k in (1, 2):
        assert metrics[f"test/psr/protected/ir_se50/top{k}"] == expected[f"top{k}"] == hand[k] / 4
        assert metrics[f"test/psr/source/ir_se50/top{k}"] == 0.0  # clean queries are their gallery image
    assert 0 < hand[1] < 4


def test_psr_needs_a_reference(target_file: Path) -> None:
    module = tiny_module(target_file)
    with pytest.raises(M.ConfigError, match="reference_dir"):
        module.test_step(
            {"query": torch.rand(1, 3, TINY_SIZE, TINY_SIZE), "gallery": torch.rand(1, 3, 8, 8)}, 0
        )


# --- robustness, quantisation, released generator -----------------------------------------------------------


def test_saved_images_are_what_save_image_writes(tmp_path: Path) -> None:
    generated = torch.rand(1, 3, 16, 16) * 2.4 - 1.2
    torchvision.utils.save_image((generated + 1) / 2, tmp_path / "x.png")
    read = torch.from_numpy(np.asarray(Image.open(tmp_path / "x.png"))).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(M.as_saved(generated)[0], read, rtol=0, atol=0)


def test_robustness_variants_follow_the_authors_transforms() -> None:
    ramp = torch.linspace(-1, 1, 24)
    smooth = torch.stack(
        [ramp[None, :].expand(24, 24), ramp[:, None].expand(24, 24), -ramp[None, :].expand(24, 24)]
    )
    saved = M.as_saved(torch.stack([smooth, smooth.flip(-1)]) * 0.9)
    signed = saved * 2 - 1
    blurred = M.degrade("blur", saved, {"kernel_size": 5, "sigma": 1.0})
    reference = torchvision.transforms.GaussianBlur((5, 5), 1.0)(signed)  # test121.py, on [-1, 1]
    torch.testing.assert_close(blurred, reference, atol=1e-5, rtol=0)
    noisy = M.degrade("noise", saved, {"std": 0.05}, [11, 12])
    drawn = [torch.randn(3, 24, 24, generator=torch.Generator().manual_seed(seed)) for seed in (11, 12)]
    torch.testing.assert_close(noisy, signed + 0.05 * torch.stack(drawn))  # per-image seeds, not clamped
    torch.testing.assert_close(M.degrade("noise", saved[1:], {"std": 0.05}, [12]), noisy[1:])
    fixed = M.degrade("jpeg", saved, {"quality": 80})
    faithful = M.degrade("jpeg", saved, {"quality": 80}, faithful_bugs=True)
    assert float(fixed.min()) < -0.5 and float((fixed - signed).abs().mean()) < 0.05
    torch.testing.assert_close(faithful, fixed.clamp(0, 1))  # the authors' norm(): clamp to [0, 1]
    with pytest.raises(M.ConfigError, match="unknown variant"):
        M.degrade("rain", saved, {})


def test_released_generator_loads_strictly_and_names_a_wrong_file(target_file: Path, tmp_path: Path) -> None:
    torch.manual_seed(5)
    released = SPADEGenerator(**GENERATOR)
    torch.save(released.state_dict(), tmp_path / "latest_net_G.pth")
    module = tiny_module(target_file, generator_weights=str(tmp_path / "latest_net_G.pth"))
    assert all(
        torch.equal(a, b)
        for a, b in zip(module.generator.state_dict().values(), released.state_dict().values(), strict=True)
    )
    assert not module.requires_checkpoint and tiny_module(target_file).requires_checkpoint
    wrong = {k: v for k, v in released.state_dict().items() if not k.startswith("up_3")}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong\.pth does not fit model\.generator"):
        tiny_module(target_file, generator_weights=str(tmp_path / "wrong.pth"))


def test_config_errors_name_the_key(target_file: Path) -> None:
    with pytest.raises(M.ConfigError, match="model.fr_train names \\['facenet_vggface2'\\]"):
        tiny_module(target_file, fr_train=["facenet_vggface2"])
    with pytest.raises(M.ConfigError, match="published_thresholds.*dlib_resnet"):
        tiny_module(target_file, published_thresholds=["dlib_resnet"])
    with pytest.raises(M.ConfigError, match="robustness"):
        tiny_module(target_file, robustness=["blur", "blur"])
    with pytest.raises(M.ConfigError, match="semantic_nc"):
        tiny_module(target_file, generator=SPADEGenerator(**{**GENERATOR, "semantic_nc": 64}))


# --- tables -------------------------------------------------------------------------------------------------


def test_results_table_and_report_layout() -> None:
    metrics = {
        "test/asr/protected/ir152/far0.01": 0.5,
        "test/asr/protected/ir152/far0.1": 0.75,
        "test/asr/source/ir152/far0.01": 0.0,
        "test/cos/protected/ir152": 0.3,
        "test/threshold/ir152/computed": 0.0,
        "test/threshold/dlib_resnet/computed": 1.0,
        "test/asr/blur/dlib_resnet/far0.1": 0.25,
        "test/psnr": 30.0,
        "test/ssim": 0.9,
        "test/psr/protected/ir_se50/top1": 0.6,
    }
    table = table_from_metrics(metrics)
    assert list(table.columns) == [
        "protocol", "variant", "model", "ASR@FAR=0.1", "ASR@FAR=0.01", "cos to target", "thresholds",
        "PSR top-1", "PSNR", "SSIM",
    ]  # fmt: skip
    rows = {(r["protocol"], r["variant"], r["model"]): r for r in table.to_dict("records")}
    assert list(rows) == [
        ("1:1", "source", "ir152"), ("1:1", "protected", "ir152"), ("1:1", "blur", "dlib_resnet"),
        ("1:N", "protected", "ir_se50"),
    ]  # fmt: skip
    assert rows[("1:1", "protected", "ir152")]["ASR@FAR=0.01"] == 0.5
    assert rows[("1:1", "protected", "ir152")]["PSNR"] == 30.0 and math.isnan(
        rows[("1:1", "source", "ir152")]["PSNR"]
    )
    assert rows[("1:1", "blur", "dlib_resnet")]["thresholds"] == "computed"
    assert rows[("1:1", "source", "ir152")]["thresholds"] == "published"
    run = {
        "experiment": "makeup_privacy/ladn_1to1",
        "config.datamodule._target_": "src.datamodules.makeup_pairs.MakeupPairsDataModule",
        "config.datamodule.source_dir": "LADN/before",
        "config.model.generator_weights": "/w/latest_net_G.pth",
        "config.model.target_path": "/data/MT-Dataset/test_target_image/target/085807.jpg",
        **metrics,
    }
    import pandas as pd

    report = REPORT_LAYOUTS["makeup_privacy"](pd.DataFrame([run]))
    assert len(report) == 4 and set(report["test data"]) == {"MakeupPairs LADN/before"}
    assert set(report["generator"]) == {"released (latest_net_G.pth)"} and set(report["target"]) == {
        "085807.jpg"
    }
    assert table_from_metrics({"test/other": 1.0}).empty
