"""Secrets (PRO-Face S's passwords) are never written: not in the record, checkpoints, W&B or messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.config.compose import compose
from src.config.errors import ConfigError
from src.config.secrets import (
    REDACTED,
    RunSecrets,
    check_secrets_given_again,
    env_name,
    fingerprint,
    matches,
    redact_text,
    secret_keys,
)
from tests.helpers import run_cli, run_dir_from_output, run_experiment, tiny_overrides

EXPERIMENT = "proface_s/demo_synthetic"
PASSWORD = "Quokka-Zebra-7781"  # distinctive: any hit in a file is a leak
CLOSE_PASSWORD = "Wombat-Lynx-3319"
ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def _leaks(run_dir: Path, *secrets: str) -> list[str]:
    """Every file under ``run_dir`` (checkpoints, W&B files included) that contains a secret's bytes."""
    needles = [secret.encode() for secret in secrets]
    return sorted(
        str(path.relative_to(run_dir))
        for path in run_dir.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    )


def _cli_overrides(runs_dir: Path) -> list[str]:
    tiny = tiny_overrides(EXPERIMENT, runs_dir, extra=["trainer.max_steps=2", "trainer.limit_test_batches=1"])
    return [o for o in tiny if o != "logger=none"] + ["logger=wandb", "logger.wandb.mode=offline"]


def test_secret_keys_come_from_the_model_config() -> None:
    cfg = compose(EXPERIMENT).config
    assert secret_keys(cfg) == ["model.eval_password", "model.close_password"]
    assert env_name("model.eval_password") == "PROFACE_SECRET_MODEL_EVAL_PASSWORD"


def test_fingerprints_check_a_guess_and_tell_types_apart() -> None:
    stored = fingerprint(0)
    assert matches(0, stored) and not matches("0", stored) and not matches(1, stored)
    assert fingerprint(PASSWORD) != fingerprint(PASSWORD)  # salted
    assert PASSWORD not in fingerprint(PASSWORD)


def test_redaction_of_config_overrides_command_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose(EXPERIMENT, [f"model.eval_password={PASSWORD}"]).config
    monkeypatch.setenv(env_name("model.close_password"), CLOSE_PASSWORD)
    secrets = RunSecrets.prepare(cfg, [f"model.eval_password={PASSWORD}"])
    assert cfg.model.close_password == CLOSE_PASSWORD  # taken from the environment
    assert secrets.given == {"model.eval_password", "model.close_password"}
    shown = OmegaConf.to_yaml(secrets.config(cfg))
    assert PASSWORD not in shown and CLOSE_PASSWORD not in shown and f"eval_password: '{REDACTED}'" in shown
    assert secrets.items(["seed=1", f"+model.eval_password={PASSWORD}"]) == [
        "seed=1",
        "+model.eval_password=***",
    ]
    message = f"bad override 'model.eval_password={PASSWORD}' and {CLOSE_PASSWORD} in a traceback"
    assert PASSWORD not in secrets.text(message) and CLOSE_PASSWORD not in secrets.text(message)
    assert redact_text("model.eval_password=0 epoch 0", [], ["model.eval_password"]) == (
        "model.eval_password=*** epoch 0"
    )


def test_given_again_missing_wrong_and_default() -> None:
    cfg = compose(EXPERIMENT).config
    default = {"model.eval_password": fingerprint(0)}
    assert check_secrets_given_again(cfg, default, set(), source="run x", must_match=True) == []
    stored = {"model.eval_password": fingerprint(PASSWORD)}
    with pytest.raises(ConfigError, match=r"give them again .*PROFACE_SECRET_MODEL_EVAL_PASSWORD"):
        check_secrets_given_again(cfg, stored, set(), source="run x", must_match=True)
    with pytest.raises(ConfigError, match="not the ones run x was made with"):
        check_secrets_given_again(cfg, stored, {"model.eval_password"}, source="run x", must_match=True)
    assert check_secrets_given_again(cfg, stored, {"model.eval_password"}, source="c", must_match=False) == [
        "model.eval_password"
    ]


def test_a_run_writes_no_secret_and_asks_for_it_again(runs_dir: Path) -> None:
    """Train + test through the CLI with W&B offline, resume, evaluate: no byte of either password on disk."""
    secret_args = [f"model.eval_password={PASSWORD}", f"model.close_password={CLOSE_PASSWORD}"]
    output = run_cli(
        "src.train", [f"experiment={EXPERIMENT}", *_cli_overrides(runs_dir), *secret_args], env=ENV
    )
    run_dir = run_dir_from_output(output)
    assert PASSWORD not in output and CLOSE_PASSWORD not in output
    assert (run_dir / "wandb").is_dir() and list((run_dir / "checkpoints").glob("*.ckpt"))
    assert _leaks(run_dir, PASSWORD, CLOSE_PASSWORD) == []
    assert f"eval_password: '{REDACTED}'" in (run_dir / "config.yaml").read_text()
    assert "model.eval_password=***" in (run_dir / "overrides.txt").read_text()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["eval_password"] == REDACTED
    assert set(checkpoint["proface"]["secrets"]) == {"model.eval_password", "model.close_password"}

    resume = [f"resume={run_dir}", "trainer.max_steps=4"]
    with pytest.raises(AssertionError) as missing:
        run_cli("src.train", resume, env=ENV)
    assert "failed (2)" in str(missing.value) and "PROFACE_SECRET_MODEL_EVAL_PASSWORD" in str(missing.value)
    with pytest.raises(AssertionError, match="not the ones run"):
        run_cli("src.train", [*resume, "model.eval_password=guess", f"model.close_password={CLOSE_PASSWORD}"])
    env = {**ENV, env_name("model.eval_password"): PASSWORD, env_name("model.close_password"): CLOSE_PASSWORD}
    assert run_dir_from_output(run_cli("src.train", resume, env=env)) == run_dir
    assert _leaks(run_dir, PASSWORD, CLOSE_PASSWORD) == []

    evaluate = tiny_overrides(
        EXPERIMENT, runs_dir, extra=[f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]
    )
    with pytest.raises(ConfigError, match="give them again"):
        run_experiment(EXPERIMENT, evaluate, task="eval")
    evaluated = run_experiment(EXPERIMENT, [*evaluate, *secret_args], task="eval")
    assert _leaks(evaluated.run_dir, PASSWORD, CLOSE_PASSWORD) == []


def test_malformed_secret_override_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    """A composition error about a secret's override shows neither the value nor fragments of it."""
    from src.cli import main

    for bad in (
        f"model.eval_password=[{PASSWORD}",
        f"model.eval_passwrd={PASSWORD}",
        "model.eval_password=Qz${x",
    ):
        assert main("train", [f"experiment={EXPERIMENT}", bad]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error:") and "Traceback" not in error
        assert PASSWORD not in error and "Qz" not in error and "${x" not in error


def test_malformed_secret_in_the_environment_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.cli import main

    monkeypatch.setenv(env_name("model.eval_password"), "[Qz")
    assert main("train", [f"experiment={EXPERIMENT}", "--print-config"]) == 2
    error = capsys.readouterr().err
    assert "PROFACE_SECRET_MODEL_EVAL_PASSWORD does not parse" in error and "Qz" not in error
