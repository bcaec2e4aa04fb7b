"""Secret config values (passwords, keys, tokens): marked in the config, never written anywhere.

A config node marks its own arguments as secret with a ``_secrets_`` list, e.g. a keyed model::

    _target_: src.papers.<paper>.module.<Module>
    _secrets_: [eval_password, close_password]

Everything a run writes (``config.yaml``, ``overrides.txt``, ``meta.json``'s command line, checkpoints,
W&B, logged hyper-parameters, error messages) shows ``***`` instead of the value. What is kept is a salted
scrypt *fingerprint* per secret, so that resuming or evaluating can check that the secret given again is the
one the run used, without storing anything that reveals it cheaply.

A secret can come from the experiment file, the command line (``model.eval_password=...``) or, to keep it
out of the process list and shell history, an environment variable named by :func:`env_name`
(``PROFACE_SECRET_MODEL_EVAL_PASSWORD``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as token_source
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.errors import ConfigError

REDACTED = "***"
SECRETS_KEY = "_secrets_"
ENV_PREFIX = "PROFACE_SECRET_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB, about 40 ms per fingerprint
_MIN_TEXT_LENGTH = (
    3  # shorter values are redacted by key only (replacing every "0" in a message helps nobody)
)


def secret_keys(cfg: DictConfig | dict[str, Any]) -> list[str]:
    """Dotted keys of every value marked secret by a ``_secrets_`` list in its node."""
    plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            names = node.get(SECRETS_KEY) or []
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                raise ConfigError(f"{prefix or 'config'}.{SECRETS_KEY} must be a list of argument names")
            keys.extend(f"{prefix}{name}" for name in names)
            for key, child in node.items():
                if key != SECRETS_KEY:
                    walk(child, f"{prefix}{key}.")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{prefix}{i}.")

    walk(plain, "")
    return keys


def secret_arguments(cfg: DictConfig, node_key: str = "model") -> list[str]:
    """The argument names a node (by default the model) marks secret: its hyper-parameters to hide."""
    node = OmegaConf.select(cfg, node_key)
    names = node.get(SECRETS_KEY) if isinstance(node, DictConfig) else None
    return [str(name) for name in names or []]


def env_name(key: str) -> str:
    """The environment variable that can hold secret ``key``: ``model.eval_password`` -> PROFACE_SECRET_..."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _parse(text: str) -> Any:
    """A value the way a command-line override would parse it (``0`` is an int, ``'0'`` a string)."""
    return OmegaConf.from_dotlist([f"v={text}"]).v


def apply_env_secrets(cfg: DictConfig, keys: Iterable[str]) -> set[str]:
    """Set each secret whose environment variable exists; return the keys set that way."""
    supplied = set()
    for key in keys:
        text = os.environ.get(env_name(key))
        if text is None:
            continue
        try:
            value = _parse(text)
        except Exception as exc:  # YAML / OmegaConf grammar errors; the value itself is never shown
            raise ConfigError(
                f"the environment variable {env_name(key)} does not parse as a value (quote it, e.g. "
                f"{env_name(key)}=\"'...'\")"
            ) from exc
        OmegaConf.update(cfg, key, value, merge=False)
        supplied.add(key)
    return supplied


def override_key(item: str) -> str:
    """The dotted key of a ``key=value`` / ``+key=value`` override."""
    return item.split("=", 1)[0].lstrip("+")


def given_on_command_line(overrides: Iterable[str], keys: Iterable[str]) -> set[str]:
    """Which secret ``keys`` the overrides set."""
    wanted = set(keys)
    return {override_key(item) for item in overrides if "=" in item and override_key(item) in wanted}


def redact_config(cfg: DictConfig, keys: Iterable[str]) -> DictConfig:
    """A resolved copy of ``cfg`` with every set secret replaced by ``***``."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key in keys:
        if OmegaConf.select(copy, key, default=None) is not None:
            OmegaConf.update(copy, key, REDACTED, merge=False)
    return copy


def redact_arguments(arguments: Mapping[str, Any], names: Collection[str]) -> dict[str, Any]:
    """Keyword arguments (a module's hyper-parameters) with the secret ones that are set as ``***``."""
    return {k: (REDACTED if k in names and v is not None else v) for k, v in arguments.items()}


def redact_overrides(items: Sequence[str], keys: Iterable[str]) -> list[str]:
    """``key=value`` items (overrides, a command line) with secret values shown as ``***``."""
    wanted = set(keys)
    return [
        f"{item.split('=', 1)[0]}={REDACTED}" if "=" in item and override_key(item) in wanted else item
        for item in items
    ]


def secret_values(cfg: DictConfig, keys: Iterable[str]) -> list[str]:
    """The secrets' values as text (for scrubbing messages), longest first."""
    values = {str(OmegaConf.select(cfg, key, default=None)) for key in keys}
    values.discard("None")
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, values: Iterable[str], keys: Iterable[str] = ()) -> str:
    """``text`` with ``key=value`` of secret keys and every secret value of 3+ characters shown as ``***``."""
    for key in keys:
        text = re.sub(rf"({re.escape(key)}=)[^\s'\"]*", rf"\g<1>{REDACTED}", text)
    for value in values:
        if len(value) >= _MIN_TEXT_LENGTH:
            text = text.replace(value, REDACTED)
    return text


def _canonical(value: Any) -> bytes:
    """Type-aware bytes of a value: ``0`` and ``"0"`` are different passwords (keyed models encode both)."""
    return json.dumps(value, sort_keys=True).encode()


def fingerprint(value: Any, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$digest`` of a secret value: checks a guess, does not reveal the value cheaply."""
    salt = salt if salt is not None else token_source.token_bytes(16)
    digest = hashlib.scrypt(_canonical(value), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def matches(value: Any, stored: str) -> bool:
    """Whether ``value`` is the secret whose :func:`fingerprint` is ``stored``."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        candidate = hashlib.scrypt(_canonical(value), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def fingerprints(cfg: DictConfig, keys: Iterable[str]) -> dict[str, str]:
    """A fingerprint per set secret (for ``meta.json`` and checkpoints)."""
    out = {}
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            out[key] = fingerprint(OmegaConf.to_container(value) if isinstance(value, DictConfig) else value)
    return out


def check_secrets_given_again(
    cfg: DictConfig, stored: dict[str, str], given: set[str], *, source: str, must_match: bool
) -> list[str]:
    """Check the secrets a run or checkpoint was made with against those in ``cfg``.

    A secret that matches its fingerprint is fine however it was set (e.g. the experiment's default). One
    that does not match must have been given again (command line or environment): if it was not, it is
    missing; if it was and ``must_match`` (resume), it is wrong. Returns the keys given with another value
    on purpose (evaluation with another password).
    """
    differing = [key for key, stored_value in stored.items() if not matches(_value(cfg, key), stored_value)]
    missing = sorted(key for key in differing if key not in given)
    if missing:
        hints = "; ".join(f"{key}=... or the environment variable {env_name(key)}" for key in missing)
        raise ConfigError(
            f"{source} was made with secret value(s) for {', '.join(missing)}, which are never written to "
            f"disk: give them again ({hints})"
        )
    if differing and must_match:
        raise ConfigError(
            f"the secret value(s) given for {', '.join(differing)} are not the ones {source} was made with "
            "(checked against the salted fingerprint it recorded)"
        )
    return differing


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value) if isinstance(value, DictConfig) else value


@dataclass(frozen=True)
class RunSecrets:
    """The secrets of one run: which keys, which were given on the command line or by environment, their
    values (to scrub text) and their fingerprints; everything a run writes goes through it."""

    keys: tuple[str, ...] = ()
    given: frozenset[str] = frozenset()
    values: tuple[str, ...] = ()
    model_arguments: tuple[str, ...] = ()
    stored: dict[str, str] = field(default_factory=dict)

    @classmethod
    def prepare(cls, cfg: DictConfig, overrides: Sequence[str]) -> RunSecrets:
        """Find the secrets of ``cfg``, take those set by environment variables, fingerprint them."""
        keys = secret_keys(cfg)
        from_env = apply_env_secrets(cfg, keys)
        return cls(
            keys=tuple(keys),
            given=frozenset(from_env | given_on_command_line(overrides, keys)),
            values=tuple(secret_values(cfg, keys)),
            model_arguments=tuple(secret_arguments(cfg)),
            stored=fingerprints(cfg, keys),
        )

    def config(self, cfg: DictConfig) -> DictConfig:
        """``cfg`` resolved, secrets as ``***`` (``config.yaml``, checkpoints, W&B)."""
        return redact_config(cfg, self.keys)

    def items(self, items: Sequence[str]) -> list[str]:
        """Overrides or a command line with secret values as ``***``."""
        return redact_overrides(items, self.keys)

    def text(self, text: str) -> str:
        """A message or traceback with secrets as ``***``."""
        return redact_text(text, self.values, self.keys)
