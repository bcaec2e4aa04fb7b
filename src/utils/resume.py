"""Resuming from a run directory, which is a file from outside: read, checked, never trusted.

A run directory may come from a colleague or a shared drive. Its ``meta.json`` names the experiment, its
``overrides.txt`` the command-line overrides to re-apply and its ``config.yaml`` what ran. Re-applying
overrides from a file could smuggle in a ``_target_`` (``model._target_=os.system``), so every target that
the run directory's files add or change must be a registered buildable target
(:mod:`src.config.buildable`); a recorded ``config.yaml`` whose targets differ from the resumed config and
are not buildable is refused as tampered with. Experiment files and the user's own command line stay
trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.buildable import UntrustedTargetError, resolve_untrusted_target
from src.config.compose import ComposeResult, compose
from src.config.errors import ConfigError
from src.config.instantiate import TARGET, iter_targets
from src.config.secrets import REDACTED, SECRETS_KEY
from src.utils.run_record import read_json, resolve_resume

OVERRIDES_FILE = "overrides.txt"
CONFIG_FILE = "config.yaml"


def recorded_experiment(run_dir: Path) -> str:
    """The experiment name a run directory's ``meta.json`` records (checked to be a string)."""
    meta = read_json(run_dir / "meta.json")
    experiment = meta.get("experiment") if isinstance(meta, dict) else None
    if not isinstance(experiment, str) or not experiment:
        raise ConfigError(f"{run_dir / 'meta.json'}: no experiment name recorded (key 'experiment')")
    return experiment


def recorded_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides a run recorded (``overrides.txt``), without ``resume=`` and without the
    secrets it shows as ``***`` (never written: they must be given again)."""
    path = run_dir / OVERRIDES_FILE
    if not path.is_file():
        return []
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    for line in lines:
        if line and "=" not in line:
            raise ConfigError(f"{path}: line {line!r} is not a key=value override")
    return [
        line
        for line in lines
        if line and not line.startswith("resume=") and line.split("=", 1)[1] != REDACTED
    ]


def _targets(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    return dict(iter_targets(plain))


def _parsed(text: str, source: str) -> Any:
    """An override value as the composer will read it (plain containers, interpolations unresolved)."""
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]), resolve=False)["v"]
    except Exception as exc:  # omegaconf's grammar errors come in many types
        raise ConfigError(f"{source}: cannot parse recorded override value {text!r}: {exc}") from exc


def _keys(value: Any, prefix: str) -> list[str]:
    """Every dotted key inside a parsed override value (``prefix`` is the override's own key)."""
    keys = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            keys += _keys(child, f"{prefix}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            keys += _keys(child, f"{prefix}.{i}")
    return keys


def _refuse(item: str, source: str, why: str) -> UntrustedTargetError:
    return UntrustedTargetError(
        f"{source}: refused the recorded override '{item.split('=', 1)[0]}=...': {why}. If you wrote it "
        "yourself and trust it, give it again on the command line (a run directory's files are not trusted)"
    )


def check_recorded_overrides(items: Sequence[str], source: str) -> None:
    """Refuse recorded overrides that could build, read or unhide anything: a target that is not buildable
    (``key._target_=x``, ``+model.extra={_target_: os.system}``), an interpolation (``${oc.decode:...}``
    turns a string into a node with a target; ``${oc.env:...}`` copies the environment into the record),
    or a change of what is secret (``_secrets_``). Group choices name project files."""
    for item in items:
        key, _, text = item.partition("=")
        key = key.lstrip("+")
        if "${" in text:
            raise _refuse(item, source, "it holds an interpolation (${...})")
        value = _parsed(text, source)
        if any(part == SECRETS_KEY for dotted in _keys(value, key) for part in dotted.split(".")):
            raise _refuse(item, source, f"it changes which values are secret ({SECRETS_KEY})")
        try:
            if key == TARGET or key.endswith(f".{TARGET}"):
                resolve_untrusted_target(value, source=source, key=key)
            for where, target in iter_targets(value, key):
                resolve_untrusted_target(target, source=source, key=f"{where}.{TARGET}")
        except UntrustedTargetError as exc:
            raise _refuse(item, source, str(exc).split(": ", 1)[-1]) from exc


def compose_resumed(
    resume: str, overrides: Sequence[str], experiment: str | None = None
) -> tuple[ComposeResult, list[str]]:
    """Compose the config to resume ``resume`` (a run dir or its checkpoint) with the user's ``overrides``.

    The run's experiment and recorded overrides come first, the user's overrides on top. Returns the
    composed result and the overrides that came from the run directory.
    """
    run_dir, _ = resolve_resume(resume)
    recorded = recorded_experiment(run_dir)
    if experiment is not None and experiment != recorded:
        raise ConfigError(
            f"resume={resume} is a run of experiment '{recorded}', not '{experiment}' "
            "(leave experiment= out to resume it as it was)"
        )
    given = {item.split("=", 1)[0].lstrip("+") for item in overrides}
    saved = [item for item in recorded_overrides(run_dir) if item.split("=", 1)[0].lstrip("+") not in given]
    check_recorded_overrides(saved, str(run_dir / OVERRIDES_FILE))
    return compose(recorded, [*saved, *overrides]), saved


def check_recorded_config(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse a run directory whose ``config.yaml`` names targets the resumed config does not and that are
    not buildable (a tampered or foreign record); nothing in it is ever built."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return
    try:
        recorded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as exc:  # yaml errors come in many types
        raise ConfigError(f"{path}: cannot read the run's recorded config: {exc}") from exc
    if not isinstance(recorded, dict):
        raise ConfigError(f"{path}: the run's recorded config is not a mapping")
    current = _targets(cfg)
    for key, target in _targets(recorded).items():
        if current.get(key) == target:
            continue
        try:
            resolve_untrusted_target(target, source=str(path), key=f"{key}._target_".lstrip("."))
        except UntrustedTargetError as exc:
            raise UntrustedTargetError(
                f"{exc}. The resumed config has {current.get(key)!r} there: this run directory's record was "
                "not written by this experiment"
            ) from exc
