"""Config composition: every experiment composes; struct mode; group choices; overrides; errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.config.compose import Composer, compose, list_experiments
from src.config.errors import ConfigError
from src.config.instantiate import instantiate
from src.papers.registry import discover, tiny_settings
from tests.helpers import open_config

PAPERS = discover()

EXPERIMENTS = list_experiments()


def test_experiments_exist() -> None:
    assert "demo/recognizer" in EXPERIMENTS
    assert "demo/obfuscation_baselines" in EXPERIMENTS
    assert not any(name.startswith(("_base", "sweeps")) for name in EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_in_struct_mode(experiment: str) -> None:
    required = OmegaConf.missing_keys(open_config(experiment))
    # the shared ones, and those a paper declares with test values in its tiny settings
    declared = {key for name in PAPERS for key in tiny_settings(name).required}
    assert required <= {"model.recognizer_ckpt", "model.recognizer.path", *declared}, (
        f"unexpected required keys {required}"
    )
    cfg = compose(experiment, [f"{key}=x.ckpt" for key in sorted(required)]).config
    assert OmegaConf.is_struct(cfg)
    assert not OmegaConf.missing_keys(cfg)
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ("trainer", "datamodule", "model", "paths", "logger", "callbacks", "seed", "run"):
        assert key in container
    assert cfg.experiment == experiment


def test_misspelt_override_names_the_key_and_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.max_epoch'.*Did you mean 'trainer\.max_epochs'"):
        compose("demo/recognizer", ["trainer.max_epoch=3"])


def test_misspelt_key_in_experiment_file_fails(tmp_path: Path) -> None:
    experiments = _copy_experiments(tmp_path)
    (experiments / "bad.yaml").write_text(
        "defaults:\n  - datamodule: synthetic_faces\n  - model: face_recognizer\ntrainer:\n  max_epoch: 2\n"
    )
    with pytest.raises(ConfigError, match=r"max_epoch.*bad\.yaml.*Did you mean"):
        Composer(experiments).compose("bad")


def test_unknown_experiment_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"(?s)unknown experiment 'nope'.*demo/recognizer"):
        compose("nope")


def test_unknown_group_option_lists_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'gpu9' for config group 'trainer'.*ddp_cpu"):
        compose("demo/recognizer", ["trainer=gpu9"])


@pytest.mark.parametrize("override", ["launcher=slurm", "launcher.partition=gpu"])
def test_launcher_is_not_a_run_setting_and_the_error_says_where_it_goes(override: str) -> None:
    with pytest.raises(ConfigError, match=r"chooses how runs are launched.*src\.sweep .*--launcher"):
        compose("demo/recognizer", [override])


def test_group_choice_on_the_command_line() -> None:
    cfg = compose("demo/recognizer", ["trainer=ddp_cpu"]).config
    assert cfg.trainer.strategy == "ddp"
    assert cfg.trainer.devices == 2
    assert (
        cfg.trainer.max_epochs == compose("demo/recognizer").config.trainer.max_epochs
    )  # experiment still wins


def test_values_are_typed_and_plus_adds_keys() -> None:
    cfg = compose("demo/recognizer", ["model.optimizer.lr=1e-4", "seed=0", "+run.extra=hello"]).config
    assert cfg.model.optimizer.lr == pytest.approx(1e-4)
    assert isinstance(cfg.model.optimizer.lr, float)
    assert cfg.seed == 0
    assert cfg.run.extra == "hello"


def test_missing_required_value_is_reported() -> None:
    with pytest.raises(ConfigError, match="model.recognizer_ckpt"):
        compose("demo/obfuscation_baselines")


def test_inheritance_and_delete(tmp_path: Path) -> None:
    experiments = _copy_experiments(tmp_path)
    (experiments / "child.yaml").write_text(
        "defaults:\n  - demo/recognizer\nseed: 7\n"
        "model:\n  optimizer:\n    _delete_: true\n    _target_: torch.optim.SGD\n    _partial_: true\n"
        "    lr: 0.1\n    momentum: 0.9\n"
    )
    cfg = Composer(experiments).compose("child").config
    assert cfg.seed == 7
    assert cfg.trainer.max_epochs == 6  # inherited from demo/recognizer
    assert dict(cfg.model.optimizer) == {
        "_target_": "torch.optim.SGD",
        "_partial_": True,
        "lr": 0.1,
        "momentum": 0.9,
    }


def test_environment_variables_move_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROFACE_DATA", str(tmp_path / "datasets"))
    cfg = compose("demo/recognizer").config
    assert cfg.paths.data_dir == str(tmp_path / "datasets")


def test_instantiate_partial_and_nested() -> None:
    cfg = compose("demo/recognizer").config
    optimizer_factory = instantiate(cfg.model.optimizer)
    import torch

    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = optimizer_factory(params=[param])
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == cfg.model.optimizer.lr
    net = instantiate(cfg.model.net)
    assert net.embedding_dim == cfg.model.net.embedding_dim


def test_instantiate_reports_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="cannot build src.networks.iresnet.IResNet"):
        instantiate({"_target_": "src.networks.iresnet.IResNet", "no_such_arg": 1})
    with pytest.raises(ConfigError, match="cannot import"):
        instantiate({"_target_": "no_such_package.Thing"})


def _copy_experiments(tmp_path: Path) -> Path:
    """A private copy of experiments/ that a test may add files to."""
    import shutil

    from src.config.compose import EXPERIMENTS_DIR

    target = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, target)
    return target
