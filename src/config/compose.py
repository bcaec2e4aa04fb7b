"""Compose a run's configuration from YAML experiment files and ``key=value`` overrides.

Order of precedence, lowest first (no Hydra needed):

1. the group files chosen in ``experiments/_base/train.yaml``'s ``defaults:`` list
   (``paths``, ``trainer``, ``logger``, ``callbacks``, ``datamodule``, ``model``), each under its group key;
2. the body of ``experiments/_base/train.yaml`` (top-level keys such as ``seed``);
3. the experiment file(s): an experiment's ``defaults:`` may pick group options (``- model: face_recognizer``)
   and inherit other experiments (``- demo/recognizer``), whose bodies are merged first;
4. command-line overrides: ``group=option`` picks a group file (``trainer=ddp_cpu``), ``a.b=v`` sets a value,
   ``+a.b=v`` adds a key that does not exist yet.

The result is in struct mode: a misspelt key in an experiment file or on the command line fails with a
message naming the key and the closest valid one. A mapping with ``_delete_: true`` replaces the subtree it
lands on instead of merging into it (needed to swap one ``_target_`` for another with different arguments).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from src.config.errors import ConfigError
from src.config.resolvers import register_resolvers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
BASE_DIR_NAME = "_base"
NOT_EXPERIMENTS = {BASE_DIR_NAME, "sweeps"}
DELETE_KEY = "_delete_"
NONE_OPTION = "none"


@dataclass
class ComposeResult:
    """A composed configuration plus how it was made (for the run record)."""

    config: DictConfig
    experiment: str
    overrides: list[str]
    group_choices: dict[str, str | None] = field(default_factory=dict)


def list_experiments(experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Names of all experiment files (path below ``experiments/`` without ``.yaml``), sorted."""
    names = []
    for path in experiments_dir.rglob("*.yaml"):
        rel = path.relative_to(experiments_dir)
        if rel.parts[0] in NOT_EXPERIMENTS or any(p.startswith(("_", ".")) for p in rel.parts):
            continue
        if rel.as_posix() == "local.yaml":
            continue
        names.append(rel.with_suffix("").as_posix())
    return sorted(names)


def list_group_options(group: str, experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Option names available for one config group (files in ``experiments/_base/<group>/``)."""
    folder = experiments_dir / BASE_DIR_NAME / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def list_groups(experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Config groups: the folders below ``experiments/_base/``."""
    base = experiments_dir / BASE_DIR_NAME
    return sorted(p.name for p in base.iterdir() if p.is_dir())


def _load_yaml(path: Path) -> DictConfig:
    """Load one YAML file as a DictConfig, naming the file in any error."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:  # yaml scanner/parser errors come in many types
        raise ConfigError(f"cannot parse YAML file {path}: {exc}") from exc
    if node is None:
        return OmegaConf.create({})
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{path} must contain a mapping at top level, found {type(node).__name__}")
    return node


def _split_defaults(node: DictConfig, source: Path) -> tuple[list[str], dict[str, str | None], DictConfig]:
    """Split a file into (inherited files, group choices, body without ``defaults``)."""
    inherits: list[str] = []
    choices: dict[str, str | None] = {}
    raw = node.get("defaults", None)
    if raw is not None:
        if not isinstance(raw, ListConfig):
            raise ConfigError(f"'defaults' in {source} must be a list")
        for entry in OmegaConf.to_container(raw, resolve=False):
            if isinstance(entry, str):
                inherits.append(entry)
            elif isinstance(entry, dict) and len(entry) == 1:
                (group, option), *_ = entry.items()
                choices[str(group)] = None if option is None else str(option)
            else:
                raise ConfigError(
                    f"bad 'defaults' entry {entry!r} in {source}: use '- name' or '- group: option'"
                )
    body = OmegaConf.masked_copy(node, [k for k in node if k != "defaults"]) if "defaults" in node else node
    return inherits, choices, body


class Composer:
    """Builds configurations from one experiments folder."""

    def __init__(self, experiments_dir: Path = EXPERIMENTS_DIR, base_file: str = "train.yaml") -> None:
        register_resolvers()
        self.experiments_dir = Path(experiments_dir)
        self.base_path = self.experiments_dir / BASE_DIR_NAME / base_file
        self.groups = list_groups(self.experiments_dir)

    # -- loading -------------------------------------------------------------------------------
    def _group_node(self, group: str, option: str | None, chain: tuple[str, ...] = ()) -> DictConfig:
        """Load a group option; it may inherit other options of the same group through ``defaults``."""
        if option is None or (option == NONE_OPTION and not self._group_file(group, option).is_file()):
            return OmegaConf.create({})
        path = self._group_file(group, option)
        if not path.is_file():
            available = ", ".join(list_group_options(group, self.experiments_dir)) or "(none)"
            raise ConfigError(f"unknown option '{option}' for config group '{group}'; available: {available}")
        if option in chain:
            raise ConfigError(f"circular defaults in group '{group}': {' -> '.join((*chain, option))}")
        inherits, choices, body = _split_defaults(_load_yaml(path), path)
        if choices:
            raise ConfigError(f"group file {path} may only inherit options of its own group in 'defaults'")
        merged = OmegaConf.create({})
        for parent in inherits:
            merged = OmegaConf.merge(merged, self._group_node(group, parent, (*chain, option)))
        return _merge_with_delete(merged, body, struct=False)

    def _group_file(self, group: str, option: str) -> Path:
        return self.experiments_dir / BASE_DIR_NAME / group / f"{option}.yaml"

    def _experiment_chain(
        self, name: str, chain: tuple[str, ...] = ()
    ) -> tuple[dict[str, str | None], list[tuple[Path, DictConfig]]]:
        """Group choices and bodies (parents first) of an experiment and everything it inherits."""
        path = self.experiments_dir / f"{name}.yaml"
        if not path.is_file():
            available = "\n  ".join(list_experiments(self.experiments_dir))
            raise ConfigError(
                f"unknown experiment '{name}' (no file {path}). Available experiments:\n  {available}"
            )
        if name in chain:
            raise ConfigError(f"circular experiment inheritance: {' -> '.join((*chain, name))}")
        inherits, choices, body = _split_defaults(_load_yaml(path), path)
        all_choices: dict[str, str | None] = {}
        bodies: list[tuple[Path, DictConfig]] = []
        for parent in inherits:
            parent_choices, parent_bodies = self._experiment_chain(parent.lstrip("/"), (*chain, name))
            all_choices.update(parent_choices)
            bodies.extend(parent_bodies)
        for group in choices:
            self._check_group(group, path)
        all_choices.update(choices)
        bodies.append((path, body))
        return all_choices, bodies

    def _check_group(self, group: str, source: Path | str) -> None:
        if group not in self.groups:
            raise ConfigError(
                f"unknown config group '{group}' in {source}; groups: {', '.join(self.groups)}."
                + _suggest(group, self.groups)
            )

    # -- composing -----------------------------------------------------------------------------
    def compose(
        self, experiment: str, overrides: Sequence[str] = (), *, allow_missing: bool = False
    ) -> ComposeResult:
        """Compose ``experiment`` with command-line ``overrides`` into a struct-mode DictConfig.

        ``allow_missing`` skips the check that every ``???`` value is set (to list the required ones).
        """
        base_inherits, choices, base_body = _split_defaults(_load_yaml(self.base_path), self.base_path)
        if base_inherits:
            raise ConfigError(f"{self.base_path} may only list 'group: option' entries in 'defaults'")
        exp_choices, bodies = self._experiment_chain(experiment)
        choices.update(exp_choices)
        group_overrides, value_overrides = self._split_overrides(overrides)
        choices.update(group_overrides)
        unset = [g for g, option in choices.items() if option == "???"]
        if unset:
            raise ConfigError(
                f"experiment '{experiment}' must choose an option for config group(s) {', '.join(unset)} "
                "in its defaults list (e.g. '- model: face_recognizer')"
            )

        cfg = OmegaConf.create({})
        for group, option in choices.items():
            cfg[group] = self._group_node(group, option)
        cfg = OmegaConf.merge(cfg, base_body)
        OmegaConf.set_struct(cfg, True)
        for path, body in bodies:
            cfg = _merge_with_delete(cfg, body, struct=True, source=str(path))
        local = self.experiments_dir / "local.yaml"
        if local.is_file():
            cfg = _merge_with_delete(cfg, _load_yaml(local), struct=True, source=str(local))
        cfg = _apply_value_overrides(cfg, value_overrides)
        with _open(cfg):
            cfg.experiment = experiment
        if not allow_missing:
            _check_complete(cfg)
        return ComposeResult(cfg, experiment, list(overrides), dict(choices))

    def _split_overrides(self, overrides: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
        """Separate ``group=option`` choices from value overrides."""
        groups: dict[str, str | None] = {}
        values: list[str] = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override '{item}' must look like key=value")
            key, value = item.split("=", 1)
            if key in self.groups and "." not in key:
                groups[key] = None if value in ("null", "") else value
            else:
                values.append(item)
        return groups, values


def _all_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key in a config (mappings only; list items are values)."""
    keys = []
    for key in cfg:
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
            keys.extend(_all_keys(node, f"{dotted}."))
    return keys


@contextmanager
def _open(cfg: DictConfig) -> Iterator[None]:
    """Temporarily lift struct mode (to add keys on purpose)."""
    with open_dict(cfg):
        yield


def _unknown_key_error(exc: OmegaConfBaseException, cfg: DictConfig, source: str) -> ConfigError:
    """A ConfigError naming the misspelt key, where it came from and the closest valid key."""
    full_key = getattr(exc, "full_key", None) or str(exc)
    message = f"unknown config key '{full_key}' (from {source})." + _suggest(str(full_key), _all_keys(cfg))
    return ConfigError(message + " Use '+key=value' on the command line to add a new key on purpose.")


def _strip_delete(node: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """Remove ``_delete_: true`` subtrees from ``node``; return them as (dotted key, replacement)."""
    replaced: list[tuple[str, Any]] = []

    def walk(container: DictConfig, prefix: str) -> None:
        for key in list(container.keys()):
            child = container._get_node(key)
            if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
                if child.get(DELETE_KEY, False) is True:
                    payload = OmegaConf.masked_copy(child, [k for k in child if k != DELETE_KEY])
                    replaced.append((f"{prefix}{key}", payload))
                    del container[key]
                else:
                    walk(child, f"{prefix}{key}.")

    node = copy.deepcopy(node)
    walk(node, "")
    return node, replaced


def _merge_with_delete(
    cfg: DictConfig, body: DictConfig, *, struct: bool, source: str = "config"
) -> DictConfig:
    """Merge ``body`` into ``cfg``; subtrees marked ``_delete_: true`` replace instead of merging."""
    body, replaced = _strip_delete(body)
    try:
        merged = OmegaConf.merge(cfg, body)
    except (ConfigKeyError, ConfigAttributeError) as exc:
        raise _unknown_key_error(exc, cfg, source) from exc
    for dotted, payload in replaced:
        parent_key, _, leaf = dotted.rpartition(".")
        parent = OmegaConf.select(merged, parent_key) if parent_key else merged
        # ``in`` on a DictConfig is False for ``???`` values, so test the keys themselves
        if struct and (parent is None or leaf not in parent.keys()):  # noqa: SIM118
            raise _unknown_key_error(ConfigKeyError(dotted), merged, source)
        with _open(merged):
            OmegaConf.update(merged, dotted, payload, merge=False, force_add=True)
    if struct:
        OmegaConf.set_struct(merged, True)
    return merged


def _parse_value(key: str, text: str) -> Any:
    """Parse an override's value the way YAML would (ints, floats, bools, null, lists)."""
    try:
        return OmegaConf.from_dotlist([f"v={text}"]).v
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse the value of override '{key}={text}': {exc}") from exc


def _apply_value_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply ``a.b=v`` (existing keys only) and ``+a.b=v`` (new keys) overrides."""
    for item in overrides:
        key, text = item.split("=", 1)
        adding = key.startswith("+")
        key = key.lstrip("+")
        value = _parse_value(key, text)
        if not _key_exists(cfg, key) and not adding:
            raise _unknown_key_error(ConfigKeyError(key), cfg, f"command-line override '{item}'")
        try:
            if adding:
                with _open(cfg):
                    OmegaConf.update(cfg, key, value, merge=True, force_add=True)
            else:
                OmegaConf.update(cfg, key, value, merge=True)
        except (ConfigKeyError, ConfigAttributeError) as exc:
            raise _unknown_key_error(exc, cfg, f"command-line override '{item}'") from exc
    return cfg


def _key_exists(cfg: DictConfig, key: str) -> bool:
    """Whether dotted ``key`` names an existing entry (a ``???`` value counts as existing)."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, throw_on_missing=False) if parent_key else cfg
    if isinstance(parent, DictConfig):
        return leaf in parent.keys()  # noqa: SIM118 - ``in`` is False for ``???`` values
    if isinstance(parent, ListConfig):
        return leaf.isdigit() and int(leaf) < len(parent)
    return False


def _check_complete(cfg: DictConfig) -> None:
    """Every ``???`` value must be set and every interpolation must resolve."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            "these config values are required but not set (give them in the experiment file or as "
            f"key=value): {', '.join(missing)}"
        )
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve config: {exc}") from exc


def _suggest(key: str, candidates: Iterable[str]) -> str:
    """' Did you mean ...?' for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def compose(
    experiment: str,
    overrides: Sequence[str] = (),
    *,
    allow_missing: bool = False,
    base_file: str = "train.yaml",
) -> ComposeResult:
    """Compose an experiment from the project's ``experiments/`` folder (see module docstring)."""
    return Composer(EXPERIMENTS_DIR, base_file).compose(experiment, overrides, allow_missing=allow_missing)
