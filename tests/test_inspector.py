"""Inspector beyond one step: the four stages chained through their checkpoints, clear errors for a missing or
wrong stage checkpoint, frozen parts kept out of training and DDP (one stage under 2-process CPU DDP is in
tests/test_ddp_frozen_stages.py), and the robust-accuracy protocol (settings, counting, determinism, the
logged table read back)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from src.config.compose import compose
from src.networks.detectors import build_detector_net
from src.papers.inspector.module import InspectorAutoThresh, InspectorCorrector, InspectorReconstructor
from src.papers.inspector.protocol import (
    AttackSetting,
    evaluate_batch,
    protocol_settings,
    summarise,
    table_from_metrics,
    table_metrics,
    victim,
)
from src.papers.inspector.stage_checkpoints import StageCheckpointError
from src.sweeping.expand import experiment_from_command, point_to_overrides, sweep_points
from src.sweeping.spec import load_sweep_spec
from src.utils.checkpoint_files import read_checkpoint, write_weights_checkpoint
from tests.helpers import run_experiment, tiny_overrides

DEMO = "inspector/demo_synthetic"


def _best(run_dir: Path) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary.get("best_checkpoint") or str(run_dir / "checkpoints" / "last.ckpt")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _train(stage: str, runs_dir: Path, extra: list[str]) -> Path:
    experiment = f"{DEMO}/{stage}"
    limits = ["trainer.limit_train_batches=2", "trainer.limit_test_batches=2"]
    if stage != "stage1_detector":  # its validation needs both classes (the whole tiny split)
        limits.append("trainer.limit_val_batches=2")
    overrides = tiny_overrides(experiment, runs_dir / stage, extra=["trainer.max_epochs=1", *limits, *extra])
    return run_experiment(experiment, overrides).run_dir


def _state(path: str, prefix: str) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_four_stages_chain_through_their_checkpoints(runs_dir: Path) -> None:
    chained = ["model.random_dependencies=false"]
    detector = _best(_train("stage1_detector", runs_dir, []))
    reconstructor = _best(
        _train("stage2_reconstructor", runs_dir, [*chained, f"model.detector_ckpt={detector}"])
    )
    autothresh = _best(
        _train("stage3_autothresh", runs_dir, [*chained, f"model.reconstructor_ckpt={reconstructor}"])
    )
    stage4 = _train("stage4_corrector", runs_dir, [*chained, f"model.autothresh_ckpt={autothresh}"])
    final = _best(stage4)
    # each frozen part is exactly the one its own stage trained
    assert _same(_state(final, "net."), _state(detector, "net."))
    assert _same(_state(final, "reconstructor."), _state(reconstructor, "reconstructor."))
    assert _same(_state(final, "autothresh."), _state(autothresh, "autothresh."))
    assert not _same(_state(reconstructor, "net."), {})  # the detector travels with every later stage
    summary = _summary(stage4)
    for key in (
        "test/clean/natural_acc",
        "test/clean/undefended_acc",
        "test/fgsm@4/robust_acc",
        "test/cw/robust_acc",
    ):
        assert 0.0 <= summary[key] <= 1.0, key
    table = pd.read_csv(stage4 / "predictions" / "robust_accuracy.csv")
    assert list(table["attack"]) == [
        "clean",
        "fgsm",
        "pgd10",
        "cw",
        "eot_pgd",
        "bpda_pgd",
    ]


def _small_net() -> torch.nn.Module:
    return build_detector_net("small_cnn", weights=None, input_norm="imagenet")


ADAM = functools.partial(torch.optim.Adam)


def _small_stage4() -> InspectorCorrector:
    """A stage-4 module on the small CNN with ResNet-10 A and C, every frozen part random."""
    resnet10 = {"arch": "resnet10t"}
    return InspectorCorrector(
        _small_net(), ADAM, autothresh=resnet10, corrector=resnet10, random_dependencies=True
    )


def test_a_missing_or_wrong_stage_checkpoint_names_the_stage_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.ckpt"
    with pytest.raises(
        StageCheckpointError, match=r"stage 'autothresh' \(model.reconstructor_ckpt\).*nowhere.ckpt"
    ):
        InspectorAutoThresh(
            _small_net(), ADAM, reconstructor_ckpt=str(missing), autothresh={"arch": "resnet10t"}
        )
    # a stage-2 checkpoint holds D and G but no A: stage 4 says which stage's checkpoint it needs
    stage2 = InspectorReconstructor(_small_net(), ADAM, random_dependencies=True)
    path = write_weights_checkpoint(stage2, tmp_path / "stage2.ckpt")
    with pytest.raises(
        StageCheckpointError, match=r"stage 'corrector'.*stage2.ckpt.*'autothresh\.\*'.*stage3_autothresh"
    ):
        InspectorCorrector(_small_net(), ADAM, autothresh_ckpt=str(path), autothresh={"arch": "resnet10t"})
    # the same checkpoint with another detector network: the shapes do not fit, said in one line
    xception = build_detector_net("xception", weights=None)
    with pytest.raises(StageCheckpointError, match=r"stage 'autothresh'.*stage2.ckpt.*does not fit"):
        InspectorAutoThresh(xception, ADAM, reconstructor_ckpt=str(path), autothresh={"arch": "resnet10t"})
    # no checkpoint at all: training refuses to start (random frozen parts are for tests only)
    module = InspectorReconstructor(_small_net(), ADAM)
    with pytest.raises(
        StageCheckpointError, match=r"stage 'reconstructor' \(model.detector_ckpt\): no checkpoint"
    ):
        module.on_fit_start()


def test_frozen_parts_stay_frozen_in_eval_mode_and_out_of_ddp() -> None:
    module = _small_stage4()
    module.train()
    for part in ("net", "reconstructor", "autothresh"):
        assert not getattr(module, part).training
        assert not any(p.requires_grad for p in getattr(module, part).parameters())
    assert module.corrector.training and all(p.requires_grad for p in module.corrector.parameters())
    module.setup("fit")
    ignored = set(module._ddp_params_and_buffers_to_ignore)
    frozen = {
        name
        for name, _ in (*module.named_parameters(), *module.named_buffers())
        if name.split(".", 1)[0] in ("net", "reconstructor", "autothresh")
    }
    assert ignored == frozen and not any(name.startswith("corrector.") for name in ignored)
    trained = {id(p) for group in module.configure_optimizers().param_groups for p in group["params"]}
    assert trained == {id(p) for p in module.corrector.parameters()}


# --- the robust-accuracy protocol ---------------------------------------------------------------------------


def test_protocol_settings_expand_the_grid_drop_nulls_and_refuse_bad_ones() -> None:
    attacks = {
        "fgsm": {"attack": "fgsm"},
        "pgd5": None,
        "cw": {"attack": "cw_l2", "steps": 3},
        "eot": {"attack": "eot_pgd", "target": "eot", "eps": [8], "eot_iter": 2},
    }
    settings = protocol_settings(attacks, [1, 4])
    assert [s.key for s in settings] == ["clean", "fgsm@1", "fgsm@4", "cw", "eot@8"]
    assert settings[3].options == {"steps": 3} and settings[4].target == "eot"
    with pytest.raises(ValueError, match=r"attacks.x.attack must be one of"):
        protocol_settings({"x": {"attack": "nope"}}, [1])
    with pytest.raises(ValueError, match=r"attacks.x.target must be one of"):
        protocol_settings({"x": {"attack": "pgd", "target": "everything"}}, [1])
    with pytest.raises(ValueError, match=r"no ε given"):
        protocol_settings({"x": {"attack": "pgd"}}, [])
    assert [s.key for s in protocol_settings(attacks, [1], only=["cw"])] == ["clean", "cw"]
    with pytest.raises(ValueError, match=r"only names unknown attack\(s\) \['pgd5'\]"):
        protocol_settings(attacks, [1], only=["pgd5"])  # dropped by its null


def test_the_attack_sweep_runs_each_attack_alone() -> None:
    spec = load_sweep_spec(Path(__file__).resolve().parents[1] / "experiments/sweeps/inspector_attacks.yaml")
    experiment, extra = experiment_from_command(spec)
    assert experiment == "inspector/robust_ffpp_c23"
    chosen = []
    for point in sweep_points(spec):
        evaluation = compose(
            experiment, [*extra, *point_to_overrides(point)], allow_missing=True
        ).config.model.evaluation
        settings = protocol_settings(evaluation.attacks, evaluation.eps, evaluation.only)
        chosen.append(sorted({s.label for s in settings} - {"clean"}))
        assert len(settings) == 2 if chosen[-1] == ["cw"] else len(settings) == 1 + len(evaluation.eps)
    assert chosen == [[label] for label in evaluation.attacks]  # every attack once, in the file's order


def test_summary_counts_rejections_both_ways() -> None:
    """Eight hand-made images of one attack: the expected numbers are counted by hand."""
    settings = [AttackSetting("clean"), AttackSetting("pgd", "pgd", 4.0)]
    clean = dict(
        clean_correct=[1, 1, 1, 1, 0, 0, 1, 1],
        undefended_correct=[1, 1, 1, 1, 0, 0, 1, 1],
        defended_correct=[1, 1, 1, 0, 0, 1, 1, 1],
        rejected=[0, 0, 0, 0, 0, 0, 1, 0],
    )
    attacked = dict(
        clean_correct=[1, 1, 1, 1, 0, 0, 1, 1],
        undefended_correct=[0, 0, 1, 0, 0, 0, 1, 0],
        defended_correct=[1, 0, 1, 1, 0, 1, 0, 0],
        rejected=[0, 0, 0, 1, 1, 0, 0, 1],
    )
    pi = [0.9, 0.2, 0.1, 0.5, 0.5, 0.9, 0.7, 0.5]
    columns: dict[str, list] = {k: [] for k in ("setting", *clean, "flipped", "attack_probability")}
    for index, part in enumerate((clean, attacked)):
        columns["setting"] += [index] * 8
        for key, values in part.items():
            columns[key] += values
        columns["attack_probability"] += pi
        columns["flipped"] += [0] * 8
    tensors = {
        k: torch.tensor(v, dtype=torch.bool)
        for k, v in columns.items()
        if k not in ("setting", "attack_probability")
    }
    tensors["setting"] = torch.tensor(columns["setting"])
    tensors["attack_probability"] = torch.tensor(columns["attack_probability"], dtype=torch.float64)
    tensors["fake_probability"] = torch.linspace(0, 1, 16, dtype=torch.float64)
    tensors["label"] = torch.tensor([0, 1] * 8)
    table = summarise(tensors, settings, threshold=0.5).set_index("attack")
    assert table.loc["clean", "natural_acc"] == pytest.approx(5 / 8)  # the rejected correct image is an error
    assert table.loc["clean", "acc_accepted"] == pytest.approx(5 / 7)
    assert table.loc["clean", "rejection_rate"] == pytest.approx(1 / 8)
    assert table.loc["pgd", "undefended_acc"] == pytest.approx(2 / 8)
    assert table.loc["pgd", "robust_acc"] == pytest.approx(
        (3 + 3) / 8
    )  # accepted correct: 0, 2, 5; rejected: 3
    assert table.loc["pgd", "acc_accepted"] == pytest.approx(3 / 5)
    assert table.loc["pgd", "rejection_rate"] == pytest.approx(3 / 8)
    # D right when clean: 0, 1, 2, 3, 6, 7; fooled: 0, 1, 3, 7 -> 4 / 6
    assert table.loc["pgd", "attack_success"] == pytest.approx(4 / 6)
    # judged (right when clean, accepted): 0, 1, 2, 6 with s = 1, 1, 0, 0 and π > 0.5 = 1, 0, 0, 1
    assert table.loc["pgd", "correction_acc"] == pytest.approx(2 / 4)
    back = table_from_metrics(table_metrics(table.reset_index(), settings)).set_index("attack")
    for column in ("natural_acc", "robust_acc", "acc_accepted", "correction_acc"):
        pd.testing.assert_series_equal(back[column], table[column], check_names=False, check_dtype=False)


@pytest.fixture(scope="module")
def defense() -> torch.nn.Module:
    torch.manual_seed(0)
    module = _small_stage4()
    return module.defense()


def test_protocol_is_deterministic_for_a_seed(defense: torch.nn.Module) -> None:
    settings = protocol_settings(
        {
            "pgd": {"attack": "pgd", "steps": 2},
            "eot": {"attack": "eot_pgd", "steps": 2, "eot_iter": 2, "target": "eot"},
            "bpda": {"attack": "pgd", "steps": 2, "target": "bpda"},
        },
        [8],
    )
    g = torch.Generator().manual_seed(1)
    images, labels = torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 0, 1])
    first = evaluate_batch(defense, images, labels, settings, seed=3)
    again = evaluate_batch(defense, images, labels, settings, seed=3)
    other = evaluate_batch(defense, images, labels, settings, seed=4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["attack_probability"], other["attack_probability"])  # other random starts
    with torch.inference_mode():  # as in Lightning's test loop
        inside = evaluate_batch(defense, images, labels, settings, seed=3)
    assert all(torch.equal(first[k], inside[k]) for k in first)


def test_bpda_victim_has_the_defended_forward_and_the_detector_gradient(defense: torch.nn.Module) -> None:
    setting = AttackSetting("bpda", "pgd", 4.0, "bpda")
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    defense.randomize = False
    try:
        out = victim(setting, defense)(x)
        assert torch.allclose(out, defense(x.detach()).logits)
        (grad,) = torch.autograd.grad(out[:, 1].sum(), x)
        y = x.detach().requires_grad_(True)
        (expected,) = torch.autograd.grad(defense.detector(y)[:, 1].sum(), y)
        assert torch.allclose(grad, expected)
    finally:
        defense.randomize = True
