"""The leaderboard's panel: which images, recognizers, attacker, detectors and settings judge every method.

A panel is a YAML file, ``experiments/leaderboard/<name>.yaml`` (or any path), changed on the command line
with ``key=value`` overrides (OmegaConf dot-list syntax). Its keys (``docs/leaderboard.md``, "The panel"):

* ``data``: where the test images come from: ``datamodule`` (an option of ``experiments/_base/datamodule``),
  ``overrides`` (``datamodule.*`` items), ``split`` (``test``), ``images`` (how many, in dataset order);
  composed with the project's experiment machinery so paths, seeds and checks are the usual ones;
* ``attacker``: the adaptive "parrot" attacker: the panel ``recognizer`` it starts from, the faces it learns
  from (``datamodule`` and ``overrides``, default the panel's; ``split`` and ``images``: identities disjoint
  from the test ones), ``steps``, ``batch_size``, ``lr``, ``seed``; ``null`` turns it off;
* ``recognizers``: the recognizer panel; each entry ``{name, zoo[, weights]}`` or ``{name, checkpoint}`` or
  ``{name, train: {experiment, overrides}}`` (trained, or reused, by the leaderboard itself);
* ``methods`` / ``judges``: ``all`` or a list of contender ids (or method names) / forgery-judge names;
* ``checkpoints``: contender id, method name or judge name → checkpoint file;
* ``options``: contender id or method name → build options over its registered ones;
* ``train_demo``: train a missing checkpoint with its paper's ``leaderboard`` table (CPU-sized demo rows);
* ``face_detector``, ``lpips_net``, ``far``, ``verification`` (pairs, seed, folds, distance),
  ``forgery_threshold``, ``batch_size``, ``device``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import EXPERIMENTS_DIR
from src.config.errors import ConfigError

__all__ = ["PANEL_DIR", "Panel", "PanelError", "TrainSpec", "load_panel", "panel_names"]

PANEL_DIR = EXPERIMENTS_DIR / "leaderboard"
#: an experiment composed only for its machinery (paths, seed, checks); the panel replaces its datamodule
DATA_EXPERIMENT = "demo/recognizer"
TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "data",
        "attacker",
        "recognizers",
        "methods",
        "judges",
        "checkpoints",
        "options",
        "train_demo",
        "face_detector",
        "lpips_net",
        "far",
        "verification",
        "forgery_threshold",
        "batch_size",
        "device",
        "password",
    }
)
DATA_KEYS = frozenset({"datamodule", "overrides", "split", "images"})
ATTACKER_KEYS = frozenset(
    {"recognizer", "datamodule", "overrides", "split", "images", "steps", "batch_size", "lr", "seed"}
)
VERIFICATION_KEYS = frozenset({"num_pairs", "pair_seed", "num_folds", "distance"})
RECOGNIZER_TRAIN_KEYS = frozenset({"experiment", "overrides"})
SPLITS = ("train", "val", "test")


class PanelError(ConfigError):
    """A panel file or override that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class TrainSpec:
    """A run the leaderboard trains itself (or reuses): an experiment file with overrides."""

    experiment: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Panel:
    """A validated panel (see the module docstring for each key)."""

    name: str
    source: Path
    description: str
    datamodule: str
    data_overrides: tuple[str, ...]
    split: str
    images: int
    recognizers: tuple[dict[str, Any], ...]
    attacker: dict[str, Any] | None
    methods: tuple[str, ...] | None
    judges: tuple[str, ...] | None
    checkpoints: dict[str, str]
    #: contender id or method name → build options over the registered ones (e.g. ``{blur: {face_size: 64}}``)
    options: dict[str, dict[str, Any]]
    train_demo: bool
    face_detector: str
    lpips_net: str
    far: float
    verification: dict[str, Any]
    forgery_threshold: float
    batch_size: int
    device: str
    #: the key reversible methods are judged with (a fixed, public test key: it protects nothing)
    password: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def recognizer_train(self, name: str) -> TrainSpec | None:
        """The training run of panel recognizer ``name`` (None when it comes from the zoo or a file)."""
        spec = next(r for r in self.recognizers if r["name"] == name)
        train = spec.get("train")
        if train is None:
            return None
        return TrainSpec(str(train["experiment"]), tuple(str(o) for o in train.get("overrides", ())))

    def data_config(self) -> dict[str, Any]:
        """What defines the test images (for record keys)."""
        return {
            "datamodule": self.datamodule,
            "overrides": list(self.data_overrides),
            "split": self.split,
            "images": self.images,
        }


def panel_names() -> list[str]:
    """The panels shipped in ``experiments/leaderboard/``."""
    return sorted(path.stem for path in PANEL_DIR.glob("*.yaml"))


def _panel_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise PanelError(f"panel file {path} does not exist")
        return path
    shipped = PANEL_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise PanelError(
            f"unknown panel '{name_or_path}'; panels: {', '.join(panel_names())} (or a .yaml path)"
        )
    return shipped


def _unknown(where: str, given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise PanelError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))}")


def _names(where: str, value: Any) -> tuple[str, ...] | None:
    if value in (None, "all"):
        return None
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, Sequence):
        return tuple(str(item) for item in value)
    raise PanelError(f"{where}: expected 'all' or a list of names, got {value!r}")


def _positive(where: str, value: Any, kind: type = int) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise PanelError(f"{where}: expected a positive {kind.__name__}, got {value!r}") from None
    if not number > 0:
        raise PanelError(f"{where}: expected a positive {kind.__name__}, got {value!r}")
    return number


def _recognizers(where: str, entries: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise PanelError(f"{where}.recognizers: expected a non-empty list of recognizer entries")
    seen: set[str] = set()
    out = []
    for i, entry in enumerate(entries):
        here = f"{where}.recognizers[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise PanelError(f"{here}: expected a mapping with a 'name'")
        name = str(entry["name"])
        if name in seen:
            raise PanelError(f"{here}: recognizer name '{name}' is used twice")
        seen.add(name)
        train = entry.get("train")
        if train is not None:
            if not isinstance(train, Mapping) or not train.get("experiment"):
                raise PanelError(f"{here}.train: expected {{experiment: <file>, overrides: [...]}}")
            _unknown(f"{here}.train", train, RECOGNIZER_TRAIN_KEYS)
            if "zoo" in entry or "checkpoint" in entry:
                raise PanelError(f"{here}: give one of zoo, checkpoint or train, not several")
        out.append(dict(entry))
    return tuple(out)


def _split(where: str, section: Mapping[str, Any], default: str) -> str:
    """``section.split``: one of :data:`SPLITS`."""
    split = str(section.get("split", default))
    if split not in SPLITS:
        raise PanelError(f"{where}.split: one of {SPLITS}, got {split!r}")
    return split


def _datamodule_overrides(where: str, section: Mapping[str, Any]) -> tuple[str, ...]:
    """``section.overrides``: ``datamodule.*`` items only (anything else would change more than the data)."""
    overrides = tuple(str(item) for item in section.get("overrides") or ())
    bad = [item for item in overrides if not item.startswith("datamodule.")]
    if bad:
        raise PanelError(f"{where}.overrides: only datamodule.* items, got {bad}")
    return overrides


def _attacker(
    where: str, value: Any, recognizers: Sequence[Mapping[str, Any]], data: Mapping[str, Any]
) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PanelError(f"{where}.attacker: expected a mapping or null")
    _unknown(f"{where}.attacker", value, ATTACKER_KEYS)
    names = [r["name"] for r in recognizers]
    base = value.get("recognizer")
    if base not in names:
        raise PanelError(
            f"{where}.attacker.recognizer: '{base}' is not a panel recognizer ({', '.join(names)})"
        )
    split = _split(f"{where}.attacker", value, "train")
    overrides = _datamodule_overrides(f"{where}.attacker", value)
    own = value.get("datamodule") is not None
    return {
        "recognizer": str(base),
        # its own DataModule, else the panel's (with the panel's overrides)
        "datamodule": str(value["datamodule"]) if own else str(data["datamodule"]),
        "overrides": overrides if own else _datamodule_overrides(f"{where}.data", data),
        "split": split,
        "images": _positive(f"{where}.attacker.images", value.get("images", 300)),
        "steps": _positive(f"{where}.attacker.steps", value.get("steps", 150)),
        "batch_size": _positive(f"{where}.attacker.batch_size", value.get("batch_size", 32)),
        "lr": _positive(f"{where}.attacker.lr", value.get("lr", 1e-3), float),
        "seed": int(value.get("seed", 0)),
    }


def load_panel(name_or_path: str | Path = "demo", overrides: Sequence[str] = ()) -> Panel:
    """Read, override and check a panel; every problem is a :class:`PanelError` naming the file and key."""
    path = _panel_file(name_or_path)
    try:
        cfg = OmegaConf.load(path)
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else None
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        raise PanelError(f"panel {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise PanelError(f"panel {path}: expected a mapping at the top")
    where = str(path)
    _unknown(where, raw, TOP_KEYS)
    data = raw.get("data")
    if not isinstance(data, Mapping) or not data.get("datamodule"):
        raise PanelError(f"{where}.data: expected {{datamodule: <option>, overrides: [...], split, images}}")
    _unknown(f"{where}.data", data, DATA_KEYS)
    split = _split(f"{where}.data", data, "test")
    data_overrides = _datamodule_overrides(f"{where}.data", data)
    recognizers = _recognizers(where, raw.get("recognizers"))
    verification = dict(raw.get("verification") or {})
    _unknown(f"{where}.verification", verification, VERIFICATION_KEYS)
    checkpoints = raw.get("checkpoints") or {}
    if not isinstance(checkpoints, Mapping):
        raise PanelError(f"{where}.checkpoints: expected a mapping id → checkpoint file")
    options = raw.get("options") or {}
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise PanelError(f"{where}.options: expected a mapping id → {{option: value}}")
    far = _positive(f"{where}.far", raw.get("far", 1e-3), float)
    if not far < 1:
        raise PanelError(f"{where}.far: expected a false-accept rate in (0, 1), got {far}")
    threshold = float(raw.get("forgery_threshold", 0.5))
    if not 0 < threshold < 1:
        raise PanelError(f"{where}.forgery_threshold: expected a probability in (0, 1), got {threshold}")
    return Panel(
        name=str(raw.get("name", path.stem)),
        source=path,
        description=str(raw.get("description", "")),
        datamodule=str(data["datamodule"]),
        data_overrides=data_overrides,
        split=split,
        images=_positive(f"{where}.data.images", data.get("images", 200)),
        recognizers=recognizers,
        attacker=_attacker(where, raw.get("attacker"), recognizers, data),
        methods=_names(f"{where}.methods", raw.get("methods", "all")),
        judges=_names(f"{where}.judges", raw.get("judges", "all")),
        checkpoints={str(k): str(v) for k, v in checkpoints.items()},
        options={str(k): dict(v) for k, v in options.items()},
        train_demo=bool(raw.get("train_demo", False)),
        face_detector=str(raw.get("face_detector", "mtcnn")),
        lpips_net=str(raw.get("lpips_net", "alex")),
        far=far,
        verification={
            "num_pairs": int(verification.get("num_pairs", 6000)),
            "pair_seed": int(verification.get("pair_seed", 0)),
            "num_folds": int(verification.get("num_folds", 10)),
            "distance": str(verification.get("distance", "angular")),
        },
        forgery_threshold=threshold,
        batch_size=_positive(f"{where}.batch_size", raw.get("batch_size", 16)),
        device=str(raw.get("device", "cpu")),
        password=str(raw.get("password", "leaderboard-test-key")),
        raw=raw,
    )
