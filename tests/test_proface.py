"""PRO-Face module: losses vs closed forms, frozen recognizer, evaluation protocols, table and report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from src.evaluation.protection_protocol import ProtectionEmbeddings, batch_protocol, evaluate_protection
from src.losses.perceptual import PerceptualLoss
from src.metrics.identity_settings import identity_settings
from src.obfuscators import GaussianBlur
from src.papers.proface.module import ProFaceModule, input_size_of
from src.papers.proface.networks import ProFaceFusionNet
from src.papers.registry import REPORT_LAYOUTS, discover
from src.report import main as report_main
from tests.conftest import SHARED
from tests.helpers import run_experiment, tiny_overrides

FIXTURES = SHARED / "fixtures" / "proface_release"

discover()  # registers the report layouts


class TinyRecognizer(nn.Module):
    """A small frozen-able recognizer with BatchNorm and dropout (so eval vs train mode matters)."""

    input_size = 32

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5), nn.Flatten()
        )
        self.fc = nn.Linear(8 * 16 * 16, 16)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape[-1] == self.input_size
        return self.fc(self.body(images))


def make_module(**kwargs: object) -> ProFaceModule:
    torch.manual_seed(0)
    return ProFaceModule(
        embedder=ProFaceFusionNet(),
        obfuscator=GaussianBlur(kernel_size=7, sigma_range=(1.0, 3.0), eval_sigma=2.0),
        recognizer=TinyRecognizer(),
        perceptual=PerceptualLoss("lpips_random", "alex"),
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        num_pairs=40,
        **kwargs,
    )


def triplet_batch(n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.rand(n, 3, size, size, generator=g),
        "image_positive": torch.rand(n, 3, size, size, generator=g),
        "image_negative": torch.rand(n, 3, size, size, generator=g),
        "identity": torch.arange(n),
        "index": torch.arange(n),
    }


@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_losses_match_closed_forms_and_weights() -> None:
    module = make_module()
    module.eval()  # deterministic dropout/BN for the recomputation below
    batch = triplet_batch()
    terms = module.losses(batch)
    n = batch["image"].shape[0]
    x = torch.cat([batch["image"], batch["image_positive"], batch["image_negative"]]) * 2 - 1
    x_o = module.obfuscate(x)
    x_p = module.embedder(x, x_o)
    emb = module.recognizer(torch.nn.functional.interpolate((x_p + 1) / 2, size=32, mode="bicubic"))
    a, p, neg = emb.split(n)
    orig = module.recognizer((x[:n] + 1) / 2)

    def triplet(anchor: torch.Tensor, pos: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        d_ap = ((anchor - pos + 1e-6) ** 2).sum(1).sqrt()
        d_an = ((anchor - negative + 1e-6) ** 2).sum(1).sqrt()
        return torch.clamp(d_ap - d_an + 1.0, min=0).mean()

    torch.testing.assert_close(terms["p2p"], triplet(a, p, neg))
    torch.testing.assert_close(terms["p2o"], triplet(a, orig, neg))
    torch.testing.assert_close(terms["l1"], (x_o[:n] - x_p[:n]).abs().mean())
    expected = 2 * terms["vis"] + terms["l1"] + 0.5 * terms["p2p"] + 0.1 * terms["p2o"]
    torch.testing.assert_close(terms["loss"], expected)


class RecordingEmbedder(ProFaceFusionNet):
    """The fusion network, remembering the range of what it was given."""

    def forward(self, x: torch.Tensor, x_o: torch.Tensor) -> torch.Tensor:
        self.seen = (float(torch.minimum(x.min(), x_o.min())), float(torch.maximum(x.max(), x_o.max())))
        return super().forward(x, x_o)


@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_unit_range_contract_of_the_simswap_checkpoints() -> None:
    """``embedder_range=[0,1]``: G gets [0, 1] faces, the recognizer the same faces, LPIPS [-1, 1] ones."""
    module = make_module(embedder_range="[0,1]")
    module.embedder = RecordingEmbedder()
    module.eval()
    batch = triplet_batch()
    terms = module.losses(batch)
    low, high = module.embedder.seen
    assert low >= 0.0 and high <= 1.0 and low < 0.2 and high > 0.8  # [0, 1], not [-1, 1]
    n = batch["image"].shape[0]
    x = torch.cat([batch["image"], batch["image_positive"], batch["image_negative"]])
    x_o = module.obfuscate(x)
    x_p = module.embedder(x, x_o)
    emb = module.recognizer(torch.nn.functional.interpolate(x_p, size=32, mode="bicubic"))
    torch.testing.assert_close(module.embed(x_p), emb)
    torch.testing.assert_close(terms["l1"], (x_o[:n] - x_p[:n]).abs().mean())
    torch.testing.assert_close(terms["vis"], module.perceptual(x_o[:n] * 2 - 1, x_p[:n] * 2 - 1))
    assert float(module.clamp(torch.tensor([-0.5, 1.5])).min()) == 0.0
    with pytest.raises(ValueError, match="embedder_range"):
        make_module(embedder_range="0-255")


@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_recognizer_stays_frozen_but_passes_gradients() -> None:
    module = make_module()
    module.train()
    assert not module.recognizer.training, "the frozen recognizer must stay in eval mode under .train()"
    loss = module.losses(triplet_batch())["loss"]
    loss.backward()
    assert all(p.grad is None for p in module.recognizer.parameters())
    grads = [p.grad for name, p in module.embedder.named_parameters() if "final_conv_1x1" not in name]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    assert [id(p) for group in module.configure_optimizers().param_groups for p in group["params"]] == [
        id(p) for p in module.embedder.parameters()
    ]


@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_bad_inputs_are_named() -> None:
    module = make_module()
    with pytest.raises(ValueError, match="image_positive"):
        module.losses({"image": torch.rand(2, 3, 32, 32), "identity": torch.arange(2)})
    with pytest.raises(ValueError, match="loss_weights"):
        make_module(loss_weights={"vis": 1.0})
    with pytest.raises(ValueError, match="image_a/image_b"):
        batch_protocol({"pixels": torch.zeros(1)})
    with pytest.raises(ValueError, match="recognizer_input_size"):
        input_size_of(nn.Identity(), None)
    assert input_size_of(nn.Identity(), 112) == 112


def _embeddings(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 8, generator=g)
    return {
        "original": base,
        "obfuscated": torch.randn(n, 8, generator=g),
        "protected": base + 0.3 * torch.randn(n, 8, generator=g),
    }


def test_pair_protocol_equals_identity_settings_on_the_same_pairs() -> None:
    """Pair batches (LFW-style) give exactly identity_settings over the stacked [a; b] embeddings."""
    n = 40
    side_a, side_b = _embeddings(n, 1), _embeddings(n, 2)
    is_same = torch.arange(n) % 2 == 0
    side_b["original"][is_same] = side_a["original"][is_same] + 0.1
    fold = torch.arange(n) // 4  # 10 folds of 2 genuine + 2 impostor pairs
    collector = ProtectionEmbeddings("pairs")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # gathering order must not matter
    for chunk in order.split(7):
        collector.add_pairs(
            {k: v[chunk] for k, v in side_a.items()},
            {k: v[chunk] for k, v in side_b.items()},
            is_same[chunk],
            fold[chunk],
            chunk,
        )
    result = evaluate_protection(collector, distance="angular", fars=(0.1,))
    stacked = {k: torch.cat([side_a[k], side_b[k]]) for k in side_a}
    idx = torch.arange(n)
    expected = identity_settings(
        stacked["original"],
        (idx, idx + n, is_same),
        stacked["obfuscated"],
        stacked["protected"],
        distance="angular",
        fold_ids=fold,
        fars=(0.1,),
    )
    assert result.num_pairs == n
    for setting, summary in expected.items():
        assert result.settings[setting]["accuracy"] == summary["accuracy"]
        assert result.settings[setting]["auc"] == summary["auc"]


def test_image_protocol_derives_pairs_from_identities() -> None:
    n = 30
    emb = _embeddings(n, 3)
    identity = torch.arange(n) // 3
    collector = ProtectionEmbeddings("images")
    collector.add_images(emb, identity, torch.arange(n))
    result = evaluate_protection(collector, num_pairs=60, fars=(0.1,))
    assert result.num_pairs == 60 and int(result.is_same.sum()) == 30
    assert set(result.settings) == {"orig", "obf", "prot_prot", "prot_orig"}


def test_paper_table_layout() -> None:
    runs = pd.DataFrame(
        [
            {
                "experiment": "proface/demo_synthetic",
                "config.model.obfuscator_name": "blur_31_2_8",
                "config.model.recognizer_name": "IResNet50",
                "config.model.fars": [0.01],
                "config.datamodule._target_": "src.datamodules.lfw.LFWDataModule",
                "config.model.perceptual.kind": "st_lpips",
                "config.model.perceptual.net": "vgg",
                "test/prot_orig/accuracy": 0.9,
                "test/prot_orig/tar_at_far/0.01": 0.5,
                "test/st_lpips_vgg_prot_obf": 0.1,
            }
        ]
    )
    table = REPORT_LAYOUTS["proface"](runs)
    row = table.iloc[0]
    assert (row["obfuscator"], row["recognizer"], row["test data"]) == ("blur_31_2_8", "IResNet50", "LFW")
    assert row["XDR acc"] == 0.9 and row["XDR TAR@0.01"] == 0.5
    assert row["st_lpips_vgg (x_p vs x_o)"] == 0.1
    assert pd.isna(row["ADR acc"])


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="needs ../shared/fixtures/proface_release")
@pytest.mark.filterwarnings("ignore:.*RANDOM.*")
def test_released_weights_load_into_the_module() -> None:
    ref = torch.load(FIXTURES / "ref_blur_31_2_8_IResNet50.pt", map_location="cpu", weights_only=True)
    module = make_module(embedder_weights=str(FIXTURES / "blur_31_2_8_IResNet50_ep13_BEST.pth"))
    assert not module.requires_checkpoint
    module.eval()
    with torch.no_grad():
        out = module(ref["original"], ref["obfuscated"])
    assert (out - ref["output"]).abs().max().item() < 1e-5


def test_tiny_run_and_report(runs_dir: Path, required_values: dict[str, str], tmp_path: Path) -> None:
    """Train + test the demo experiment on tiny data; the run record holds the table, figures and the report
    rebuilds the paper layout from it."""
    experiment = "proface/demo_synthetic"
    overrides = tiny_overrides(experiment, runs_dir, required_values, ["trainer.limit_train_batches=2"])
    result = run_experiment(experiment, overrides)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test/prot_orig/accuracy"] <= 1.0
    assert (result.run_dir / "plots" / "test" / "roc_settings.png").is_file()
    assert (result.run_dir / "plots" / "test" / "similarity_xdr.png").is_file()
    results = (result.run_dir / "results.md").read_text()
    assert "XDR" in results and "ADR" in results

    out = tmp_path / "reports"
    tiny = ["--include-overrides"]  # a tiny run overrides the experiment: the report skips it unless told
    assert report_main(["proface", "--runs", str(runs_dir), "--out", str(out), "--latex", *tiny]) == 0
    table = pd.read_csv(out / "proface.csv")
    assert list(table["test data"]) == ["SyntheticFaces (synthetic)"]
    assert table.loc[0, "XDR acc"] == pytest.approx(summary["test/prot_orig/accuracy"])
    assert "No published numbers available for proface" in (out / "proface.md").read_text()
    assert (out / "proface.tex").is_file()
    assert report_main(["no_such_paper", "--runs", str(runs_dir), "--out", str(out)]) == 2
