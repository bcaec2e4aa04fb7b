"""Files from outside (checkpoints, run directories) can never make the project import or run code.

A checkpoint embeds its config and a run directory records its overrides and config: crafted ones naming
``os.system`` & co. must be refused with an error naming the file, the key and the target, before anything
is built; experiment files the user wrote keep full ``_target_`` freedom.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from src.config.buildable import UntrustedTargetError, resolve_untrusted_target
from src.config.compose import EXPERIMENTS_DIR, compose, list_experiments
from src.config.errors import ConfigError
from src.config.instantiate import instantiate, instantiate_untrusted, iter_targets
from src.utils.checkpoint_files import CheckpointError
from src.utils.checkpoints import load_network
from src.utils.resume import compose_resumed
from tests.helpers import open_config, run_cli, run_experiment, tiny_overrides


def _payloads(sentinel: Path) -> dict[str, dict[str, Any]]:
    """Configs that would create ``sentinel`` if anything in them were built."""
    touch = f"touch {sentinel}"
    shell = {"_target_": "os.system", "_args_": [touch]}
    return {
        "os.system": shell,
        "subprocess.run": {"_target_": "subprocess.run", "_args_": [["touch", str(sentinel)]]},
        "builtins.eval": {
            "_target_": "builtins.eval",
            "_args_": [f"__import__('pathlib').Path({str(sentinel)!r}).touch()"],
        },
        "nested argument": {"_target_": "src.networks.iresnet.IResNet", "depth": shell},
        "nested in a list": {"_target_": "src.obfuscators.RandomChoice", "obfuscators": [shell]},
        "partial": {**shell, "_partial_": True},
        "project prefix reaching os": {"_target_": "src.tasks.os.system", "_args_": [touch]},
        "project module's importlib": {
            "_target_": "src.config.instantiate.importlib.import_module",
            "_args_": ["antigravity"],
        },
    }


PAYLOADS = list(_payloads(Path("x")))


def _crafted_checkpoint(path: Path, net: dict[str, Any]) -> Path:
    """A checkpoint shaped like ours whose embedded config builds ``net`` as ``model.net``."""
    torch.save(
        {
            "state_dict": {},
            "pytorch-lightning_version": "2.6.6",
            "proface": {"config": {"model": {"_target_": "x", "net": net}}, "experiment": "demo/recognizer"},
        },
        path,
    )
    return path


@pytest.mark.parametrize("payload", PAYLOADS)
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path, payload: str) -> None:
    sentinel = tmp_path / "SENTINEL"
    checkpoint = _crafted_checkpoint(tmp_path / "evil.ckpt", _payloads(sentinel)[payload])
    with pytest.raises(UntrustedTargetError) as info:
        load_network(checkpoint, "net")
    message = str(info.value)
    assert str(checkpoint) in message and "model.net" in message and "not a registered buildable" in message
    assert not sentinel.exists()
    assert "antigravity" not in sys.modules


def test_refused_targets_outside_the_project_are_never_imported() -> None:
    sys.modules.pop("antigravity", None)
    with pytest.raises(UntrustedTargetError, match=r"refused to build model.x._target_ = 'antigravity.fly'"):
        resolve_untrusted_target("antigravity.fly", source="f.ckpt", key="model.x._target_")
    assert "antigravity" not in sys.modules
    with pytest.raises(UntrustedTargetError, match="must be a dotted name"):
        resolve_untrusted_target("os.system; rm", source="f.ckpt", key="k")


def test_declared_dependency_families_stay_buildable() -> None:
    assert resolve_untrusted_target("torch.optim.Adam", source="f", key="k") is torch.optim.Adam
    scheduler = resolve_untrusted_target("torch.optim.lr_scheduler.StepLR", source="f", key="k")
    assert scheduler is torch.optim.lr_scheduler.StepLR
    for refused in ("torch.load", "torch.optim.Optimizer.zero_grad", "torch.hub.load", "os.path.join"):
        with pytest.raises(UntrustedTargetError):
            resolve_untrusted_target(refused, source="f", key="k")
    built = instantiate_untrusted({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}, source="f")
    assert built.func is torch.optim.SGD


def test_user_written_configs_keep_full_target_freedom(tmp_path: Path) -> None:
    """Experiment files and the command line are the user's own code: any importable target builds."""
    assert instantiate({"_target_": "pathlib.Path", "_args_": [str(tmp_path)]}) == tmp_path


@pytest.mark.parametrize("experiment", list_experiments())
def test_every_experiment_target_is_buildable_from_a_checkpoint(experiment: str) -> None:
    """Checkpoints of every experiment file can be rebuilt: the registry covers every target they name."""
    cfg = OmegaConf.to_container(open_config(experiment), resolve=False)
    for key, target in iter_targets(cfg):
        resolve_untrusted_target(target, source=experiment, key=f"{key}._target_")


def test_recognizer_checkpoint_override_is_refused(tmp_path: Path, runs_dir: Path) -> None:
    """``model.recognizer_ckpt=<crafted file>`` on the command line: the checkpoint is still untrusted."""
    sentinel = tmp_path / "SENTINEL"
    checkpoint = _crafted_checkpoint(tmp_path / "evil.ckpt", _payloads(sentinel)["os.system"])
    overrides = tiny_overrides(
        "demo/obfuscation_baselines", runs_dir, {"model.recognizer_ckpt": str(checkpoint)}
    )
    with pytest.raises(UntrustedTargetError, match="evil.ckpt"):
        instantiate(compose("demo/obfuscation_baselines", overrides).config.model)
    assert not sentinel.exists()


@pytest.fixture
def copied_run(tiny_recognizer_ckpt: str, tmp_path: Path) -> Path:
    """A private copy of a real finished run directory, to tamper with."""
    run_dir = Path(tiny_recognizer_ckpt).parents[1]
    return Path(shutil.copytree(run_dir, tmp_path / "shared_run"))


@pytest.mark.parametrize(
    "line",
    [
        "model._target_=os.system",
        "+model.net.extra={_target_: os.system, _args_: [touch SENTINEL]}",
        "model.net._target_=builtins.eval",
        "model.optimizer._target_=subprocess.run",
    ],
)
def test_run_dir_overrides_cannot_add_targets(copied_run: Path, line: str) -> None:
    (copied_run / "overrides.txt").write_text(f"logger=none\n{line}\n")
    with pytest.raises(ConfigError) as info:
        compose_resumed(str(copied_run), ["trainer.max_epochs=2"])
    assert "overrides.txt" in str(info.value) or "unknown config key" in str(info.value)


def test_run_dir_overrides_re_apply_registered_choices(copied_run: Path) -> None:
    """Legitimate recorded overrides (group files of the project, values) are re-applied on resume."""
    (copied_run / "overrides.txt").write_text("logger=none\ntrainer.max_epochs=1\nmodel.optimizer.lr=0.01\n")
    result, saved = compose_resumed(str(copied_run), ["trainer.max_epochs=2"])
    assert result.config.model.optimizer.lr == 0.01 and result.config.trainer.max_epochs == 2
    assert saved == ["logger=none", "model.optimizer.lr=0.01"]


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_run_dir_cannot_name_an_experiment_outside_the_project(
    copied_run: Path, tmp_path: Path, form: str
) -> None:
    """``meta.json`` naming ``../../elsewhere/evil`` must not load a YAML file outside experiments/."""
    sentinel = tmp_path / "SENTINEL"
    evil = tmp_path / "evil.yaml"
    evil.write_text(
        "defaults:\n  - datamodule: synthetic_faces\n  - model: face_recognizer\n"
        f"model:\n  net:\n    _target_: os.system\n    _args_: ['touch {sentinel}']\n"
    )
    stem = evil.with_suffix("")
    name = os.path.relpath(stem, EXPERIMENTS_DIR) if form == "relative" else str(stem)
    meta = json.loads((copied_run / "meta.json").read_text())
    (copied_run / "meta.json").write_text(json.dumps({**meta, "experiment": name}))
    with pytest.raises(ConfigError, match="unknown experiment"):
        compose_resumed(str(copied_run), [])
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", ["os.system", "subprocess.run", "builtins.eval", "nested argument"])
def test_crafted_config_yaml_is_refused(
    copied_run: Path, runs_dir: Path, tmp_path: Path, payload: str
) -> None:
    sentinel = tmp_path / "SENTINEL"
    config = OmegaConf.load(copied_run / "config.yaml")
    config.model.net = _payloads(sentinel)[payload]
    OmegaConf.save(config, copied_run / "config.yaml")
    before = (copied_run / "config.yaml").read_text()
    overrides = tiny_overrides(
        "demo/recognizer", runs_dir, extra=["trainer.max_epochs=2", f"resume={copied_run}"]
    )
    with pytest.raises(UntrustedTargetError) as info:
        run_experiment("demo/recognizer", overrides)
    assert "config.yaml" in str(info.value) and "model.net" in str(info.value)
    assert not sentinel.exists()
    assert (copied_run / "config.yaml").read_text() == before  # refused before the record was touched


def test_cli_refuses_a_crafted_run_dir_with_exit_code_2(copied_run: Path, tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    (copied_run / "overrides.txt").write_text(
        f"logger=none\n+model._args_=[touch {sentinel}]\nmodel._target_=os.system\n"
    )
    with pytest.raises(AssertionError) as info:
        run_cli("src.train", [f"resume={copied_run}", "trainer.max_epochs=2"], timeout=120)
    output = str(info.value)
    assert "failed (2)" in output and "overrides.txt" in output and "os.system" in output
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("+model.evil='${oc.decode:\"{_target_: os.system, _args_: [touch SENTINEL]}\"}'", "interpolation"),
        ("+run.notes=${oc.env:HOME}", "interpolation"),
        ("model._secrets_=[]", "which values are secret"),
        ("+model.net.extra={_secrets_: []}", "which values are secret"),
    ],
)
def test_run_dir_overrides_cannot_interpolate_or_unhide_secrets(
    copied_run: Path, line: str, why: str
) -> None:
    """``${oc.decode:...}`` would turn a string into a node with a target, ``${oc.env:...}`` copy the
    environment into the record, ``_secrets_`` switch off the hiding of a password."""
    (copied_run / "overrides.txt").write_text(f"logger=none\n{line}\n")
    with pytest.raises(UntrustedTargetError, match=f"overrides.txt: refused the recorded override .*{why}"):
        compose_resumed(str(copied_run), [])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"model: {net: 1}\n", "not a PyTorch checkpoint"),
        ({"state_dict": {}, "pytorch-lightning_version": "2.6.6", "proface": {"config": "x"}}, "no 'model'"),
        ({"state_dict": {}, "pytorch-lightning_version": "2.6.6", "proface": 3}, "no embedded ProFace Lab"),
    ],
)
def test_load_network_errors_are_one_line_naming_the_file(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "bad.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_network(path, "net")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_checkpoint_naming_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.ckpt"
    _crafted_checkpoint(path, {"_target_": "src.utils.checkpoints.load_network", "path": str(path)})
    with pytest.raises(CheckpointError, match="refers back to itself"):
        load_network(path, "net")
