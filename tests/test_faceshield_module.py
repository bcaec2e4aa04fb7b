"""FaceShield's LightningModules: Stage II's manual optimisation (order, per-network clipping, NaN skip),
the evaluation columns, the privacy audit in the run record, and Stage II under 2-process CPU DDP."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from src.papers.faceshield import module as fs_module
from src.papers.faceshield.audit_report import audit_table, closed_form_check, repeated_release_table
from src.papers.faceshield.evaluation import identity_columns, privacy_columns
from src.papers.faceshield.losses import GeneratorLosses
from src.papers.faceshield.module import FaceShieldIRC
from src.papers.faceshield.networks import IIDDiscriminator, MultiscaleDiscriminator
from src.papers.faceshield.perturbator import DPPerturbator
from src.papers.faceshield.pipeline import (
    FaceShieldExtractor,
    FaceShieldRenderer,
    check_image_size,
)
from src.utils.checkpoint_files import CheckpointError
from tests.helpers import run_cli, run_dir_from_output, tiny_overrides


def tiny_irc(**kwargs: object) -> FaceShieldIRC:
    torch.manual_seed(0)
    adam = lambda params: torch.optim.Adam(params, lr=1e-3)  # noqa: E731
    kwargs.setdefault("extractor", FaceShieldExtractor(image_size=256))
    return FaceShieldIRC(
        renderer=FaceShieldRenderer(width=32),
        discriminator=MultiscaleDiscriminator(ndf=4, num_d=2),
        iid=IIDDiscriminator(backbone="resnet10t", input_size=64),
        optimizer=adam,
        adversary_optimizer=adam,
        perturbators={},
        evaluators={},
        **kwargs,
    )


class _Optimizer:
    """Records the order in which the three optimisers step."""

    def __init__(self, name: str, inner: torch.optim.Optimizer, calls: list[str]) -> None:
        self.name, self.inner, self.calls = name, inner, calls
        self.param_groups = inner.param_groups

    def zero_grad(self) -> None:
        self.inner.zero_grad()

    def step(self) -> None:
        self.calls.append(self.name)
        self.inner.step()


def _run_step(model: FaceShieldIRC, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    g, d, iid = model.configure_optimizers()
    wrapped = [_Optimizer("G", g, calls), _Optimizer("D", d, calls), _Optimizer("IID", iid, calls)]
    monkeypatch.setattr(model, "optimizers", lambda: wrapped)
    monkeypatch.setattr(model, "manual_backward", lambda loss: loss.backward())
    monkeypatch.setattr(model, "toggle_optimizer", lambda opt: None)
    monkeypatch.setattr(model, "untoggle_optimizer", lambda opt: None)
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    batch = {"image": torch.rand(2, 3, 64, 64)}
    model.train()
    model.training_step(batch, 0)
    return calls


@pytest.fixture(scope="module")
def stage2_model() -> FaceShieldIRC:
    """One tiny Stage II module for the step tests (building it costs more than a step)."""
    return tiny_irc(gradient_clip=0.5)


def test_stage2_steps_d_then_iid_then_generator_each_clipped(
    stage2_model: FaceShieldIRC, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = stage2_model
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    frozen = {k: v.detach().clone() for k, v in model.extractor.named_parameters()}
    clipped: list[tuple[str, float]] = []
    real = torch.nn.utils.clip_grad_norm_
    owners = {id(p): name for name in ("discriminator", "iid") for p in getattr(model, name).parameters()}
    owners |= {
        id(p): name for name in ("decoder", "generator") for p in getattr(model.renderer, name).parameters()
    }

    def record(params, max_norm, *args, **kwargs):
        params = list(params)
        clipped.append((owners[id(params[0])], max_norm))
        return real(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record)
    assert _run_step(model, monkeypatch) == ["D", "IID", "G"]
    assert clipped == [("discriminator", 0.5), ("iid", 0.5), ("decoder", 0.5), ("generator", 0.5)]
    changed = {
        k.split(".")[0] for k, v in model.named_parameters() if k in before and not torch.equal(v, before[k])
    }
    assert {"renderer", "discriminator", "iid"} <= changed
    assert all(torch.equal(v, frozen[k]) for k, v in model.extractor.named_parameters())


def test_stage2_skips_a_generator_step_with_nan_loss(
    stage2_model: FaceShieldIRC, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = stage2_model
    skipped = int(model.skipped_steps)
    real = fs_module.generator_loss

    def nan_loss(*args: object, **kwargs: object) -> GeneratorLosses:
        out = real(*args, **kwargs)
        return GeneratorLosses(
            out.total * math.nan, out.adversarial, out.iid_adversarial, out.features, out.identity
        )

    monkeypatch.setattr(fs_module, "generator_loss", nan_loss)
    renderer = {k: v.detach().clone() for k, v in model.renderer.named_parameters()}
    assert _run_step(model, monkeypatch) == ["D", "IID"]  # no G step
    assert int(model.skipped_steps) == skipped + 1
    assert all(torch.equal(v, renderer[k]) for k, v in model.renderer.named_parameters())


def test_bad_sizes_and_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="image_size must be 512"):
        check_image_size("x", 128)  # the renderer's sizes start at 256
    with pytest.raises(ValueError, match="FaceShieldIRC: model.extractor: image_size"):
        tiny_irc(extractor=FaceShieldExtractor(image_size=128))
    with pytest.raises(ValueError, match="released weights .* need image_size=512"):
        FaceShieldExtractor(released=["encoder"], image_size=256)
    with pytest.raises(ValueError, match="batch size must be >= 2"):
        fs_module.source_target(torch.rand(1, 3, 32, 32), 256)


def test_identity_columns_against_a_direct_count() -> None:
    torch.manual_seed(0)
    clean = torch.randn(6, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    protected = clean.clone()
    protected[1] = clean[2]  # face 1 now looks like identity 1
    out = identity_columns(clean, protected, labels, fars=(0.5,))
    assert out["rank1"] == pytest.approx(5 / 6)
    expected_cos = torch.nn.functional.cosine_similarity(clean, protected).mean()
    assert out["id_cos"] == pytest.approx(float(expected_cos), abs=1e-6)
    assert 0.0 <= out["tar@far=0.5"] <= 1.0


def test_privacy_columns_label_each_sampler() -> None:
    repo = privacy_columns(DPPerturbator("faceshield_repo", 30.0))
    assert math.isnan(repo["epsilon_certified"]) and repo["certified"] == 0.0
    assert repo["delta_audited"] > 0.99  # the original sampler at its default ε: no meaningful guarantee
    purk = privacy_columns(DPPerturbator("purkayastha", 1.0))
    assert purk["epsilon_certified"] == pytest.approx(1.0) and purk["delta_audited"] == 0.0
    vmf = privacy_columns(DPPerturbator("vmf", 5.0))
    assert vmf["certified"] == 1.0 and vmf["epsilon_certified"] == pytest.approx(5.0)


def test_audit_tables_match_the_reference_figures() -> None:
    audit = audit_table(
        [DPPerturbator("faceshield_repo", 1.0), DPPerturbator("purkayastha", 1.0)], draws=40_000
    )
    assert len(audit) == 2  # only the uncertified sampler is audited, at two separations
    assert audit["δ(ε'=ε)"].iloc[0] == pytest.approx(0.941, abs=0.02)  # φ = π/2
    repeated = repeated_release_table([DPPerturbator("faceshield_repo", 1.0)], trials=1000)
    assert repeated["cos k=10"].iloc[0] == pytest.approx(0.48, abs=0.05)
    assert repeated["cos k=100"].iloc[0] == pytest.approx(0.91, abs=0.03)


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 5.0, 10.0, 30.0])
def test_closed_form_mean_cosine_matches_10k_draws(epsilon: float) -> None:
    check = closed_form_check(epsilon, draws=10_000)
    assert check["|difference|"] < 0.01


@pytest.mark.slow
@pytest.mark.ddp
def test_stage2_trains_under_two_process_cpu_ddp(runs_dir: Path) -> None:
    experiment = "faceshield/stage2_irc"
    extra = [
        "trainer=ddp_cpu",
        "trainer.strategy=ddp_find_unused_parameters_true",
        "trainer.fast_dev_run=true",
        "datamodule.batch_size=4",
    ]
    output = run_cli(
        "src.train",
        [f"experiment={experiment}", *tiny_overrides(experiment, runs_dir, extra=extra)],
        timeout=600,
    )
    run_dir = run_dir_from_output(output)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    assert (run_dir / "privacy_audit.md").is_file()


def test_per_image_batchnorm_normalises_each_face_alone_and_keeps_running_statistics() -> None:
    torch.manual_seed(0)
    renderer = FaceShieldRenderer(width=32).eval()
    faces = torch.rand(2, 3, 256, 256) * 2 - 1
    _, features = FaceShieldExtractor(image_size=256).explicit(faces)
    inputs = [faces, *features[1:10]]  # the decoder's inputs: the face, then attribute-shaped maps
    lambdas = [torch.rand_like(f) for f in features[:10]]
    running = {k: v.clone() for k, v in renderer.decoder.state_dict().items()}
    both, _ = renderer.decode(inputs, lambdas)
    alone, _ = renderer.decode([t[1:] for t in inputs], [t[1:] for t in lambdas])
    assert torch.allclose(both[3][1:], alone[3], atol=1e-5)  # face 1 does not depend on face 0
    assert all(torch.equal(v, running[k]) for k, v in renderer.decoder.state_dict().items())
    assert not renderer.decoder.training
    renderer.eval_batchnorm = "running"
    with_running, _ = renderer.decode(inputs, lambdas)
    assert not torch.allclose(with_running[3], both[3])


def test_noise_streams_are_independent_and_reproducible() -> None:
    seeds = {fs_module.noise_seed(0, index, stream) for index in (0, 1) for stream in ("network", "a", "b")}
    assert len(seeds) == 6
    assert fs_module.noise_seed(1, 0, "a") != fs_module.noise_seed(0, 1, "a")
    assert fs_module.noise_seed(3, 7, "vmf_eps1") == fs_module.noise_seed(3, 7, "vmf_eps1")


def test_stage2_takes_the_extractor_from_a_stage1_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = FaceShieldExtractor(image_size=256)
    with torch.no_grad():
        trained.se.layers[0].conv1.weight.add_(1.0)
        trained.se.readout.layers[0].mean.fill_(0.25)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": {f"extractor.{k}": v for k, v in trained.state_dict().items()}}, path)
    extractor = FaceShieldExtractor(image_size=256)
    fs_module.load_extractor_state(extractor, path)  # what FaceShieldIRC(extractor_ckpt=path) does
    assert torch.equal(extractor.se.layers[0].conv1.weight, trained.se.layers[0].conv1.weight)
    assert float(extractor.se.readout.layers[0].mean[0, 0, 0]) == 0.25
    torch.save({"state_dict": {"net.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no 'extractor.\\*' weights"):
        fs_module.load_extractor_state(extractor, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="same image_size as Stage I"):
        fs_module.load_extractor_state(FaceShieldExtractor(image_size=128), path)
