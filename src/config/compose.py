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

While composing, every leaf key remembers the source that set it last (``ComposeResult.provenance``), so
that the type check at the end (:mod:`src.config.schema`) can name the file or override behind each wrong
value. Experiment names and group options must be ones that the listings offer: names come from run
directories of other people on resume, and must never reach files outside ``experiments/``.
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
from src.config.schema import validate_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
BASE_DIR_NAME = "_base"
NOT_EXPERIMENTS = {BASE_DIR_NAME, "sweeps", "leaderboard"}
DELETE_KEY = "_delete_"
NONE_OPTION = "none"
Provenance = dict[str, str]  # dotted leaf key -> the file or override that set it last


@dataclass
class ComposeResult:
    """A composed configuration plus how it was made (for the run record)."""

    config: DictConfig
    experiment: str
    overrides: list[str]
    group_choices: dict[str, str | None] = field(default_factory=dict)
    # dotted leaf key -> the source that set it last: a file (relative to the project when inside it),
    # "command-line override 'k=v'" or "experiment=<name>"
    provenance: dict[str, str] = field(default_factory=dict)


def list_experiments(experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Names of all experiment files (path below ``experiments/`` without ``.yaml``), sorted."""
    return _listed(_experiment_files(experiments_dir))


def _listed(names: Iterable[str]) -> list[str]:
    """The names that are experiments on their own, sorted: no part starts with ``_`` (``_parts/``)."""
    return sorted(name for name in names if not any(part.startswith("_") for part in name.split("/")))


def _experiment_files(experiments_dir: Path) -> set[str]:
    """Names of the files an experiment may inherit: ``experiments/**.yaml`` except ``_base/``, ``sweeps/``,
    ``local.yaml`` and hidden files (parts such as ``<paper>/_parts/<part>`` included)."""
    names = set()
    for path in experiments_dir.rglob("*.yaml"):
        rel = path.relative_to(experiments_dir)
        if rel.parts[0] in NOT_EXPERIMENTS or rel.as_posix() == "local.yaml":
            continue
        if not any(part.startswith(".") for part in rel.parts):
            names.add(rel.with_suffix("").as_posix())
    return names


def unknown_experiment_message(name: str, experiments: Sequence[str]) -> str:
    """``unknown experiment 'x'; did you mean: a, b?`` (difflib), else a short overview of what exists."""
    close = difflib.get_close_matches(name, experiments, n=4, cutoff=0.6)
    listing = f"python -m src.train --help lists all {len(experiments)}"
    if close:
        return f"unknown experiment '{name}'; did you mean: {', '.join(close)}? ({listing})"
    return (
        f"unknown experiment '{name}' (not an experiment file below experiments/). Experiments: "
        f"{experiment_overview(experiments)} ({listing})"
    )


def experiment_overview(experiments: Sequence[str], shown: int = 3) -> str:
    """One line over many experiments: the names in small top-level folders, ``folder/... (N)`` for others."""
    folders: dict[str, list[str]] = {}
    for name in experiments:
        folders.setdefault(name.split("/", 1)[0], []).append(name)
    parts = [
        ", ".join(names) if len(names) <= shown else f"{folder}/... ({len(names)})"
        for folder, names in sorted(folders.items())
    ]
    return ", ".join(parts)


def group_file(group: str, option: str, experiments_dir: Path = EXPERIMENTS_DIR) -> Path:
    """The file of an option of a config group: ``experiments/_base/<group>/<option>.yaml``."""
    return experiments_dir / BASE_DIR_NAME / group / f"{option}.yaml"


def list_group_options(group: str, experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Option names available for one config group (files in ``experiments/_base/<group>/``)."""
    folder = experiments_dir / BASE_DIR_NAME / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


#: folders below ``experiments/_base/`` that configure how runs are launched (``src.sweep --launcher``,
#: ``src.reproduce --launcher``), not a run: never a group of a run's config
LAUNCH_GROUPS = frozenset({"launcher"})


def list_groups(experiments_dir: Path = EXPERIMENTS_DIR) -> list[str]:
    """Config groups of a run: the folders below ``experiments/_base/`` (less :data:`LAUNCH_GROUPS`)."""
    base = experiments_dir / BASE_DIR_NAME
    return sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in LAUNCH_GROUPS)


def _load_yaml(path: Path) -> DictConfig:
    """Load one YAML file as a DictConfig, naming the file in any error.

    Each version of a file (path, mtime, size) is parsed once per process; callers get their own copy.
    """
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    stat = path.stat()
    version = (str(path.absolute()), stat.st_mtime_ns, stat.st_size)
    if version not in _PARSED:
        _PARSED[version] = _parse_yaml(path)
    return copy.deepcopy(_PARSED[version])


_PARSED: dict[tuple[str, int, int], DictConfig] = {}


def _parse_yaml(path: Path) -> DictConfig:
    """Parse one YAML file that must hold a mapping (an empty file is an empty mapping)."""
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
    def _group_node(
        self, group: str, option: str | None, provenance: Provenance, chain: tuple[str, ...] = ()
    ) -> DictConfig:
        """Load a group option; it may inherit other options of the same group through ``defaults``.

        The option must be one that ``list_group_options`` offers (so ``model=../../x`` reads nothing);
        ``provenance`` gets the file of every key, relative to the group.
        """
        options = list_group_options(group, self.experiments_dir)
        if option is None or (option == NONE_OPTION and option not in options):
            return OmegaConf.create({})
        if option not in options:
            available = ", ".join(options) or "(none)"
            raise ConfigError(f"unknown option '{option}' for config group '{group}'; available: {available}")
        if option in chain:
            raise ConfigError(f"circular defaults in group '{group}': {' -> '.join((*chain, option))}")
        path = self._group_file(group, option)
        inherits, choices, body = _split_defaults(_load_yaml(path), path)
        if choices:
            raise ConfigError(f"group file {path} may only inherit options of its own group in 'defaults'")
        if not inherits and not _has_delete(body):
            _record(provenance, body, _label(path))
            return body  # already a private copy: no merge needed
        merged = OmegaConf.create({})
        for parent in inherits:
            merged.merge_with(self._group_node(group, parent, provenance, (*chain, option)))
        return _merge_with_delete(merged, body, struct=False, provenance=provenance, label=_label(path))

    def _group_file(self, group: str, option: str) -> Path:
        return group_file(group, option, self.experiments_dir)

    def _experiment_chain(
        self, name: str, known: set[str], chain: tuple[str, ...] = ()
    ) -> tuple[dict[str, str | None], list[tuple[Path, DictConfig]]]:
        """Group choices and bodies (parents first) of an experiment and everything it inherits.

        ``name`` must be in ``known`` (the experiment files, parts included): no ``..``, no absolute
        paths, nothing outside ``experiments/``.
        """
        if name not in known:
            raise self._unknown_experiment(name)
        if name in chain:
            raise ConfigError(f"circular experiment inheritance: {' -> '.join((*chain, name))}")
        path = self.experiments_dir / f"{name}.yaml"
        inherits, choices, body = _split_defaults(_load_yaml(path), path)
        all_choices: dict[str, str | None] = {}
        bodies: list[tuple[Path, DictConfig]] = []
        for parent in inherits:
            parent_choices, parent_bodies = self._experiment_chain(parent.lstrip("/"), known, (*chain, name))
            all_choices.update(parent_choices)
            bodies.extend(parent_bodies)
        for group in choices:
            self._check_group(group, path)
        all_choices.update(choices)
        bodies.append((path, body))
        return all_choices, bodies

    def _unknown_experiment(self, name: str) -> ConfigError:
        """The error for a name that is not an experiment file: the closest names, else an overview."""
        return ConfigError(unknown_experiment_message(name, list_experiments(self.experiments_dir)))

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
        """Compose ``experiment`` with command-line ``overrides`` into a struct-mode DictConfig, then
        type-check it (:func:`src.config.schema.validate_config`) before anything is built.

        ``experiment`` must be one of :func:`list_experiments`. ``allow_missing`` skips the check that
        every ``???`` value is set (to list the required ones); what is set is still type-checked.
        """
        experiment_files = _experiment_files(self.experiments_dir)
        if experiment not in _listed(experiment_files):  # parts (``_parts/...``) are only inherited
            raise self._unknown_experiment(experiment)
        base_inherits, choices, base_body = _split_defaults(_load_yaml(self.base_path), self.base_path)
        if base_inherits:
            raise ConfigError(f"{self.base_path} may only list 'group: option' entries in 'defaults'")
        exp_choices, bodies = self._experiment_chain(experiment, experiment_files)
        choices.update(exp_choices)
        group_overrides, value_overrides = self._split_overrides(overrides)
        choices.update(group_overrides)
        unset = [g for g, option in choices.items() if option == "???"]
        if unset:
            raise ConfigError(
                f"experiment '{experiment}' must choose an option for config group(s) {', '.join(unset)} "
                "in its defaults list (e.g. '- model: face_recognizer')"
            )

        provenance: Provenance = {}
        cfg = OmegaConf.create({})
        for group, option in choices.items():
            in_group: Provenance = {}
            cfg[group] = self._group_node(group, option, in_group)
            provenance.update((f"{group}.{key}", source) for key, source in in_group.items())
        cfg.merge_with(base_body)
        _record(provenance, base_body, _label(self.base_path))
        OmegaConf.set_struct(cfg, True)
        for path, body in bodies:
            cfg = _merge_with_delete(
                cfg, body, struct=True, source=str(path), provenance=provenance, label=_label(path)
            )
        local = self.experiments_dir / "local.yaml"
        if local.is_file():
            local_body, local_label = _load_yaml(local), _label(local)
            cfg = _merge_with_delete(
                cfg, local_body, struct=True, source=str(local), provenance=provenance, label=local_label
            )
        cfg = _apply_value_overrides(cfg, value_overrides, provenance)
        with _open(cfg):
            cfg.experiment = experiment
        provenance["experiment"] = f"experiment={experiment}"
        provenance = {key: provenance[key] for key in _leaves(cfg) if key in provenance}  # drop replaced ones
        if not allow_missing:
            _check_complete(cfg)
        validate_config(cfg, provenance, allow_missing=allow_missing)
        return ComposeResult(cfg, experiment, list(overrides), dict(choices), provenance)

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


def _label(path: Path) -> str:
    """How a source file is named in messages: relative to the project when inside it."""
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _leaves(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys (below ``prefix``) of every leaf in ``node``; lists and empty mappings are leaves."""
    keys = list(node.keys()) if isinstance(node, DictConfig) and _is_plain_mapping(node) else []
    for key in keys:
        yield from _leaves(node._get_node(key), f"{prefix}.{key}" if prefix else str(key))
    if prefix and not keys:
        yield prefix


def _is_plain_mapping(node: DictConfig) -> bool:
    """A mapping with keys to walk (not null, ``???`` or an interpolation)."""
    return not (node._is_none() or node._is_missing() or node._is_interpolation())


def _record(provenance: Provenance, node: Any, source: str, prefix: str = "") -> None:
    """Note ``source`` as the origin of every leaf that ``node`` sets (at ``prefix``)."""
    for key in _leaves(node, prefix):
        provenance[key] = source


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
    if str(full_key).split(".", 1)[0] in LAUNCH_GROUPS:
        return ConfigError(
            f"'{full_key}' (from {source}) chooses how runs are launched, not a setting of a run: give it to "
            "`python -m src.sweep ... --launcher <name>` or `python -m src.reproduce ... --launcher <name>` "
            "(docs/sweeps.md, 'Launchers')"
        )
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

    if not _has_delete(node):
        return node, replaced  # nothing to strip: no copy needed
    node = copy.deepcopy(node)
    walk(node, "")
    return node, replaced


def _has_delete(node: DictConfig) -> bool:
    """Whether any mapping inside ``node`` is marked ``_delete_: true`` (what ``_strip_delete`` walks)."""
    children = (node._get_node(key) for key in node.keys())  # noqa: SIM118 - keys include ``???`` values
    return any(
        isinstance(child, DictConfig)
        and not child._is_none()
        and not child._is_missing()
        and (child.get(DELETE_KEY, False) is True or _has_delete(child))
        for child in children
    )


def _merge_with_delete(
    cfg: DictConfig,
    body: DictConfig,
    *,
    struct: bool,
    source: str = "config",
    provenance: Provenance | None = None,
    label: str = "",
) -> DictConfig:
    """Merge ``body`` into ``cfg`` in place (no copy of the growing config per file) and return it.

    Subtrees marked ``_delete_: true`` replace instead of merging. With ``provenance``, every leaf that
    ``body`` sets is recorded as coming from ``label``.
    """
    body, replaced = _strip_delete(body)
    if provenance is not None:
        _record(provenance, body, label)
        for dotted, payload in replaced:
            _record(provenance, payload, label, dotted)
    try:
        cfg.merge_with(body)
    except (ConfigKeyError, ConfigAttributeError) as exc:
        raise _unknown_key_error(exc, cfg, source) from exc
    merged = cfg
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
    except Exception as exc:  # OmegaConf's grammar errors and YAML's parser errors
        # the parser's message quotes pieces of the value, which may be a secret: name the problem only
        raise ConfigError(
            f"cannot parse the value of override '{key}=...' ({type(exc).__name__}): quote the value "
            "(key=\"'...'\"), balance its brackets, and write a literal '${' as '\\${'"
        ) from exc


def _apply_value_overrides(cfg: DictConfig, overrides: Sequence[str], provenance: Provenance) -> DictConfig:
    """Apply ``a.b=v`` (existing keys only) and ``+a.b=v`` (new keys) overrides, recording each."""
    for item in overrides:
        key, text = item.split("=", 1)
        adding = key.startswith("+")
        key = key.lstrip("+")
        value = _parse_value(key, text)
        if not _key_exists(cfg, key) and not adding:
            raise _unknown_key_error(ConfigKeyError(key), cfg, f"command-line override '{key}=...'")
        try:
            if adding:
                with _open(cfg):
                    OmegaConf.update(cfg, key, value, merge=True, force_add=True)
            else:
                OmegaConf.update(cfg, key, value, merge=True)
        except (ConfigKeyError, ConfigAttributeError) as exc:
            raise _unknown_key_error(exc, cfg, f"command-line override '{key}=...'") from exc
        _record(provenance, value, f"command-line override '{item}'", key)
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
