"""Typed config values: wrong ones fail at composition with key, value, expected type and source; where each
value came from is recorded; experiment names and group options cannot leave experiments/."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.config.compose import EXPERIMENTS_DIR, Composer, compose, list_experiments
from src.config.errors import ConfigError
from src.config.schema import PRECISIONS, TrainerSchema

OVERRIDE = "command-line override"

WRONG = {  # override -> the start of its line in the error (after "config has 1 wrong value:")
    "trainer.max_epochs=abc": "trainer.max_epochs = 'abc': expected an integer >= -1",
    "datamodule.batch_size=1.5": "datamodule.batch_size = 1.5: expected an integer >= 1",
    "trainer.deterministic=maybe": "trainer.deterministic = 'maybe': expected a boolean, 'warn' or null",
    "trainer.max_epochs=true": "trainer.max_epochs = True: expected an integer >= -1",
    "seed=null": "seed = None: expected an integer from 0 to 4294967295",
    "seed=-1": "seed = -1: expected an integer from 0 to 4294967295",
    "train=1": "train = 1: expected a boolean",
    "trainer.precision=17": "trainer.precision = 17: expected 64, 32, 16, '64', ",
    "trainer.limit_train_batches=1.5": "= 1.5: expected an integer >= 0, a number from 0 to 1 or null",
    "trainer.devices=[0,x]": "trainer.devices = [0, 'x']: expected an integer >= -1, a string or a list of",
    "callbacks.model_checkpoint.mode=mid": "callbacks.model_checkpoint.mode = 'mid': expected 'min' or 'max'",
    "logger.wandb.mode=offline_now": "logger.wandb.mode = 'offline_now': expected 'online', 'offline' or",
    "logger.wandb.mode=on": "logger.wandb.mode = True: expected",  # YAML reads on/off/yes/no as booleans
    "run.tags=[a,1]": "run.tags = ['a', 1]: expected a list of strings",
    "run.id=123": "run.id = 123: expected a string or null",
    "paths.data_dir=3": "paths.data_dir = 3: expected a string",
    "data.skip_corrupt=2": "data.skip_corrupt = 2: expected a boolean",
}


@pytest.mark.parametrize("override", list(WRONG))
def test_wrong_value_names_key_value_type_and_source(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose("demo/recognizer", [override])
    message = str(info.value)
    assert message.startswith("config has 1 wrong value:\n  ")
    assert WRONG[override] in message
    assert message.endswith(f"(from {OVERRIDE} '{override}')")


def test_every_wrong_value_is_listed_in_one_error() -> None:
    overrides = ["trainer.max_epochs=abc", "datamodule.batch_size=1.5", "trainer.deterministic=maybe"]
    with pytest.raises(ConfigError) as info:
        compose("demo/recognizer", overrides)
    assert str(info.value) == (
        "config has 3 wrong values:\n"
        "  trainer.max_epochs = 'abc': expected an integer >= -1 "
        f"(from {OVERRIDE} 'trainer.max_epochs=abc')\n"
        "  trainer.deterministic = 'maybe': expected a boolean, 'warn' or null "
        f"(from {OVERRIDE} 'trainer.deterministic=maybe')\n"
        "  datamodule.batch_size = 1.5: expected an integer >= 1 "
        f"(from {OVERRIDE} 'datamodule.batch_size=1.5')"
    )


def test_wrong_values_in_files_name_the_files(tmp_path: Path) -> None:
    experiments = _base_copy(tmp_path)
    bad = experiments / "bad.yaml"
    bad.write_text(
        "defaults:\n  - datamodule: synthetic_faces\n  - model: face_recognizer\n"
        "datamodule:\n  batch_size: 1.5\n  num_workers: ${run.notes}\nrun:\n  notes: many\n"
    )
    (experiments / "local.yaml").write_text("trainer:\n  precision: 17\n")
    with pytest.raises(ConfigError) as info:
        Composer(experiments).compose("bad")
    lines = str(info.value).splitlines()
    assert lines[0] == "config has 3 wrong values:"
    assert lines[1].startswith("  trainer.precision = 17: expected 64, ")
    assert lines[1].endswith(f"(from {experiments / 'local.yaml'})")
    assert lines[2] == f"  datamodule.batch_size = 1.5: expected an integer >= 1 (from {bad})"
    # interpolations are checked as resolved, and the line says what was written there
    assert (
        lines[3]
        == f"  datamodule.num_workers = 'many': expected an integer >= 0 (from {bad}, via '${{run.notes}}')"
    )


def test_every_experiment_composes_and_validates() -> None:
    """One loop, not one test per experiment: composing 90 experiments must stay cheap."""
    for experiment in list_experiments():
        result = compose(experiment, allow_missing=True)
        required = OmegaConf.missing_keys(result.config)
        if required:  # dummy values for the required ones, as test_config does
            result = compose(experiment, [f"{key}=x.ckpt" for key in sorted(required)])
        # a datamodule made of a training one and verification sets has a batch size per part
        batch = (
            "datamodule.train.batch_size" if "train" in result.config.datamodule else "datamodule.batch_size"
        )
        for key in ("trainer.max_epochs", batch, "seed"):
            assert result.provenance[key].endswith(".yaml"), (experiment, key, result.provenance[key])


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("trainer.devices=2", "trainer.devices", 2),
        ("trainer.devices=[0,1]", "trainer.devices", [0, 1]),
        ("trainer.devices=auto", "trainer.devices", "auto"),
        ("trainer.deterministic=true", "trainer.deterministic", True),
        ("trainer.deterministic=warn", "trainer.deterministic", "warn"),
        ("trainer.precision=bf16-mixed", "trainer.precision", "bf16-mixed"),
        ("trainer.precision=16", "trainer.precision", 16),
        ("trainer.limit_train_batches=0.5", "trainer.limit_train_batches", 0.5),
        ("trainer.limit_train_batches=3", "trainer.limit_train_batches", 3),
        ("trainer.gradient_clip_val=1", "trainer.gradient_clip_val", 1),
        ("trainer.fast_dev_run=2", "trainer.fast_dev_run", 2),
        ("seed=0", "seed", 0),
        ("+trainer.detect_anomaly=true", "trainer.detect_anomaly", True),
        ("+datamodule.anything=[1,b]", "datamodule.anything", [1, "b"]),
    ],
)
def test_valid_values_pass(override: str, key: str, value: object) -> None:
    result = compose("demo/recognizer", [override])
    assert OmegaConf.select(result.config, key) == value
    assert result.provenance[key] == f"{OVERRIDE} '{override}'"


def test_allow_missing_still_checks_what_is_set() -> None:
    cfg = compose("demo/obfuscation_baselines", allow_missing=True).config
    assert OmegaConf.missing_keys(cfg) == {"model.recognizer_ckpt"}
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs = 'abc'"):
        compose("demo/obfuscation_baselines", ["trainer.max_epochs=abc"], allow_missing=True)


def test_provenance_names_the_source_of_each_key() -> None:
    provenance = compose("demo/recognizer", ["trainer=cpu", "trainer.max_epochs=3"]).provenance
    assert provenance["trainer.accelerator"] == "experiments/_base/trainer/cpu.yaml"
    assert provenance["trainer.precision"] == "experiments/_base/trainer/default.yaml"
    assert provenance["trainer.max_epochs"] == f"{OVERRIDE} 'trainer.max_epochs=3'"
    assert provenance["test"] == "experiments/_base/train.yaml"
    assert provenance["callbacks.model_checkpoint.monitor"] == "experiments/demo/recognizer.yaml"
    assert provenance["experiment"] == "experiment=demo/recognizer"


def test_trainer_schema_covers_the_base_trainer_file() -> None:
    base = OmegaConf.load(EXPERIMENTS_DIR / "_base" / "trainer" / "default.yaml")
    assert set(base.keys()) - {"_target_"} <= set(TrainerSchema.model_fields)


def test_precisions_are_the_ones_lightning_accepts() -> None:
    """Read lightning_fabric's precision literals from its source (importing Lightning takes seconds)."""
    spec = importlib.util.find_spec("lightning_fabric")
    assert spec is not None and spec.submodule_search_locations
    source = Path(spec.submodule_search_locations[0]) / "plugins" / "precision" / "precision.py"
    names = {"_PRECISION_INPUT_INT", "_PRECISION_INPUT_STR_ALIAS", "_PRECISION_INPUT_STR"}
    accepted: set[int | str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and {getattr(t, "id", None) for t in node.targets} & names:
            assert isinstance(node.value, ast.Subscript)
            accepted.update(ast.literal_eval(node.value.slice))
            names -= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert not names, f"not found in {source}: {names}"
    assert set(PRECISIONS) == accepted


def _outside_file(tmp_path: Path) -> Path:
    """A valid-looking YAML file outside experiments/ (what a traversal would read)."""
    evil = tmp_path / "evil.yaml"
    evil.write_text("_target_: os.system\n")
    return evil


@pytest.mark.parametrize("how", ["relative", "absolute", "sibling group"])
def test_group_option_cannot_leave_its_group(tmp_path: Path, how: str) -> None:
    evil = _outside_file(tmp_path).with_suffix("")
    option = {
        "relative": os.path.relpath(evil, EXPERIMENTS_DIR / "_base" / "model"),
        "absolute": str(evil),
        "sibling group": "../datamodule/synthetic_faces",
    }[how]
    with pytest.raises(
        ConfigError, match=r"unknown option '.*' for config group 'model'; available: .*face_"
    ):
        compose("demo/recognizer", [f"model={option}"])


@pytest.mark.parametrize(
    "name",
    [
        "relative",
        "absolute",
        "demo/../demo/recognizer",
        "proface/_parts/eval_lfw",
        "_base/train",
        "sweeps/demo_recognizer_lr",
    ],
)
def test_experiment_name_must_be_a_listed_experiment(tmp_path: Path, name: str) -> None:
    evil = _outside_file(tmp_path).with_suffix("")
    name = {"relative": os.path.relpath(evil, EXPERIMENTS_DIR), "absolute": str(evil)}.get(name, name)
    with pytest.raises(ConfigError, match=r"(?s)unknown experiment '.*'.*demo/recognizer"):
        compose(name)


def test_inherited_experiment_cannot_leave_experiments(tmp_path: Path) -> None:
    experiments = _base_copy(tmp_path / "project")
    _outside_file(tmp_path / "project")
    (experiments / "child.yaml").write_text("defaults:\n  - ../evil\n")
    with pytest.raises(ConfigError, match=r"unknown experiment '\.\./evil'"):
        Composer(experiments).compose("child")


def _base_copy(root: Path) -> Path:
    """A private experiments/ folder holding a copy of experiments/_base only."""
    target = root / "experiments"
    shutil.copytree(EXPERIMENTS_DIR / "_base", target / "_base")
    return target
