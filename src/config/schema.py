"""Types of the base config groups, checked after composition and before anything is built.

OmegaConf already reads ``key=3`` as an int and ``key=true`` as a bool, so values arrive typed and the
models below are strict: ``1.5`` is not an integer, ``'maybe'`` is not a boolean and ``'abc'`` is not an
integer (an integer is still a number). Groups whose keys differ per implementation (each DataModule, each
callback, ``+trainer.x=`` additions, ``run``) allow extra keys; the ``model`` group belongs to each
LightningModule and is not typed here. A key missing from the config is not checked (the defaults below are
never used): presence is the job of the base files and struct mode.

:func:`validate_config` resolves interpolations, validates, and raises one :class:`ConfigError` that lists
every wrong key with its value, the expected type in words and the file or override that set it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from annotated_types import Ge, Le
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError

from src.config.errors import ConfigError

MAX_SEED = 2**32 - 1  # numpy's (and Lightning's seed_everything) upper bound

NonNegativeInt = Annotated[int, Ge(0)]
PositiveInt = Annotated[int, Ge(1)]
IntFromMinusOne = Annotated[int, Ge(-1)]  # -1 means "all" / "unlimited" in Lightning
Fraction = Annotated[float, Ge(0), Le(1)]
# Lightning's batch limits: an int counts batches, a float in [0, 1] is a fraction of them.
BatchesOrFraction = NonNegativeInt | Fraction


def _no_float(value: Any) -> Any:
    """Refuse floats: Lightning checks precision with ``in``, so ``16.0`` would pass there and fail later."""
    if isinstance(value, float):
        raise ValueError("a float is not a precision")
    return value


# Every precision pytorch_lightning 2.6 accepts (lightning_fabric.plugins.precision.precision:
# _PRECISION_INPUT_INT, _PRECISION_INPUT_STR_ALIAS, _PRECISION_INPUT_STR; a test keeps them in sync).
PrecisionValue = Literal[
    64,
    32,
    16,
    "64",
    "32",
    "16",
    "bf16",
    "transformer-engine",
    "transformer-engine-float16",
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
    "32-true",
    "64-true",
]
PRECISIONS: tuple[int | str, ...] = get_args(PrecisionValue)
Precision = Annotated[PrecisionValue, BeforeValidator(_no_float)]


class _Section(BaseModel):
    """A config mapping with strict types for the keys it declares; other keys are allowed."""

    model_config = ConfigDict(strict=True, extra="allow")


class TrainerSchema(_Section):
    """``trainer``: pytorch_lightning.Trainer arguments (every key of _base/trainer/default.yaml and more)."""

    accelerator: str = None
    devices: IntFromMinusOne | str | list[NonNegativeInt] = None
    num_nodes: PositiveInt = None
    strategy: str = None
    precision: Precision | None = None
    max_epochs: IntFromMinusOne = None
    max_steps: IntFromMinusOne = None
    min_epochs: NonNegativeInt | None = None
    check_val_every_n_epoch: PositiveInt | None = None
    # Lightning also takes a "DD:HH:MM:SS" string or a {minutes: 5}-style mapping (validation by time)
    val_check_interval: BatchesOrFraction | str | dict[str, float] | None = None
    log_every_n_steps: NonNegativeInt | None = None  # 0 turns step logging off
    gradient_clip_val: Annotated[float, Ge(0)] | None = None
    accumulate_grad_batches: PositiveInt = None
    deterministic: bool | Literal["warn"] | None = None
    benchmark: bool | None = None
    fast_dev_run: bool | NonNegativeInt = None
    limit_train_batches: BatchesOrFraction | None = None
    limit_val_batches: BatchesOrFraction | None = None
    limit_test_batches: BatchesOrFraction | None = None
    limit_predict_batches: BatchesOrFraction | None = None
    num_sanity_val_steps: IntFromMinusOne = None
    enable_progress_bar: bool = None
    enable_model_summary: bool = None


class DataModuleSchema(_Section):
    """``datamodule``: the keys every FaceDataModule shares (each adds its own)."""

    batch_size: PositiveInt = None  # the GLOBAL batch
    num_workers: NonNegativeInt = None
    pin_memory: bool = None
    image_size: PositiveInt = None


class CheckpointCallbackSchema(_Section):
    """A ``callbacks`` block that builds a ModelCheckpoint (or a subclass named ``*ModelCheckpoint``)."""

    monitor: str | None = None
    mode: Literal["min", "max"] = None
    save_last: bool | Literal["link"] | None = None
    save_top_k: IntFromMinusOne = None
    filename: str | None = None
    every_n_train_steps: NonNegativeInt | None = None
    every_n_epochs: NonNegativeInt | None = None


class OtherCallbackSchema(_Section):
    """Any other ``callbacks`` block: a mapping; its keys are the callback's own."""


def _callback_kind(block: Any) -> str:
    """Which schema a callback block gets: checkpoint blocks are told apart by their ``_target_``."""
    target = block.get("_target_") if isinstance(block, Mapping) else None
    return "checkpoint" if isinstance(target, str) and target.endswith("ModelCheckpoint") else "other"


CallbackBlock = Annotated[
    Annotated[CheckpointCallbackSchema, Tag("checkpoint")] | Annotated[OtherCallbackSchema, Tag("other")],
    Discriminator(_callback_kind),
]


class WandbSchema(_Section):
    """``logger.wandb``: the Weights & Biases logger."""

    mode: Literal["online", "offline", "disabled"] = None
    project: str = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    log_model: bool | Literal["all"] = None


class LoggerSchema(_Section):
    """``logger``: only the ``wandb`` block is typed."""

    wandb: WandbSchema | None = None


class RunSchema(_Section):
    """``run``: identity and notes of the run record."""

    id: str | None = None
    dir: str | None = None
    tags: list[str] = None
    notes: str = None


class PathsSchema(_Section):
    """``paths``: every value is a path string (added ones too)."""

    __pydantic_extra__: dict[str, str] = Field(init=False)

    root_dir: str = None
    data_dir: str = None
    runs_dir: str = None
    weights_dir: str = None


class SweepSchema(_Section):
    """``sweep``: set by ``python -m src.sweep``."""

    name: str | None = None
    point: int | str | None = None


class DataSchema(_Section):
    """``data``: options shared by every DataModule."""

    skip_corrupt: bool = None


class ConfigSchema(_Section):
    """A whole run config: top-level keys and the typed groups (``model`` is not typed)."""

    experiment: str = None
    seed: Annotated[int, Ge(0), Le(MAX_SEED)] = None  # 0 is a valid seed; None is not
    train: bool = None
    test: bool = None
    ckpt_path: str | None = None
    resume: str | None = None
    print_config: bool = None
    trainer: TrainerSchema = None
    datamodule: DataModuleSchema = None
    callbacks: dict[str, CallbackBlock | None] = None
    logger: LoggerSchema = None
    run: RunSchema = None
    paths: PathsSchema = None
    sweep: SweepSchema = None
    data: DataSchema = None


@dataclass(frozen=True)
class Problem:
    """One wrong config value: its dotted key, the value and the expected type in words."""

    key: str
    value: Any
    expected: str


# -- checking plain values -----------------------------------------------------------------------------
def find_problems(values: Mapping[str, Any], schema: type[BaseModel] = ConfigSchema) -> list[Problem]:
    """Every key of ``values`` (plain, resolved) whose value does not fit ``schema``, once each."""
    try:
        schema.model_validate(values)
    except ValidationError as exc:
        problems: dict[str, Problem] = {}
        for error in exc.errors():
            path, annotation = _field_at(schema, error["loc"])
            key = ".".join(str(part) for part in path)
            if key not in problems:
                problems[key] = Problem(key, _value_at(values, path), describe(annotation))
        return list(problems.values())
    return []


def _field_at(schema: Any, loc: Sequence[str | int]) -> tuple[list[str | int], Any]:
    """The config key an error location points at (union member names dropped) and its declared type."""
    path: list[str | int] = []
    annotation = declared = schema
    for part in loc:
        step = _step(annotation, part)
        if step is None:
            break
        annotation, is_key = step
        if is_key:
            path.append(part)
            declared = annotation
    return path, declared


def _step(annotation: Any, part: str | int) -> tuple[Any, bool] | None:
    """Follow one error-location element: (type below it, whether it is a config key) or None at a value."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _step(get_args(annotation)[0], part)
    if origin in (Union, UnionType):
        members = get_args(annotation)
        for member in members:
            if any(
                isinstance(meta, Tag) and meta.tag == part for meta in getattr(member, "__metadata__", ())
            ):
                return member, False
        return next((step for member in members if (step := _step(member, part)) is not None), None)
    if origin is dict:
        return get_args(annotation)[1], True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        if part in annotation.model_fields:
            return annotation.model_fields[part].rebuild_annotation(), True
        extra = get_type_hints(annotation).get("__pydantic_extra__")
        if extra is not None:
            return get_args(extra)[1], True
    return None


def _value_at(values: Any, path: Iterable[str | int]) -> Any:
    """The value at ``path`` in nested mappings and lists."""
    for part in path:
        values = values[part]
    return values


# -- types in words ------------------------------------------------------------------------------------
_NAMES: dict[Any, tuple[str, str]] = {
    bool: ("a boolean", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}


def describe(annotation: Any) -> str:
    """A declared type in words for error messages, e.g. ``'an integer >= -1'``, ``"'min' or 'max'"``."""
    return _join(_phrases(annotation, plural=False))


def _phrases(annotation: Any, *, plural: bool) -> list[str]:
    """The alternatives a type allows, one phrase each."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        return [_bounded(phrase, metadata) for phrase in _phrases(inner, plural=plural)]
    if origin in (Union, UnionType):
        return [phrase for member in get_args(annotation) for phrase in _phrases(member, plural=plural)]
    if origin is Literal:
        return [repr(value) for value in get_args(annotation)]
    if origin is list:
        items = _join(_phrases(get_args(annotation)[0], plural=True))
        return [f"lists of {items}" if plural else f"a list of {items}"]
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return ["mappings" if plural else "a mapping"]
    if annotation is NoneType:
        return ["null"]
    if annotation in _NAMES:
        return [_NAMES[annotation][plural]]
    return [getattr(annotation, "__name__", str(annotation))]


def _bounded(phrase: str, metadata: Sequence[Any]) -> str:
    """``phrase`` with the Ge/Le bounds found in ``metadata`` ('an integer >= 1', 'a number from 0 to 1')."""
    low = next((meta.ge for meta in metadata if isinstance(meta, Ge)), None)
    high = next((meta.le for meta in metadata if isinstance(meta, Le)), None)
    if low is not None and high is not None:
        return f"{phrase} from {low} to {high}"
    if low is not None:
        return f"{phrase} >= {low}"
    if high is not None:
        return f"{phrase} <= {high}"
    return phrase


def _join(phrases: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c' (duplicates dropped)."""
    unique = list(dict.fromkeys(phrases))
    return unique[0] if len(unique) == 1 else f"{', '.join(unique[:-1])} or {unique[-1]}"


# -- checking a composed config ------------------------------------------------------------------------
_SKIP = object()  # a value that cannot be resolved yet (``???`` while listing required keys)


def validate_config(cfg: DictConfig, provenance: Mapping[str, str], *, allow_missing: bool = False) -> None:
    """Type-check ``cfg`` with interpolations resolved; raise one ConfigError listing every wrong key.

    ``provenance`` maps dotted leaf keys to the file or override that set them (see Composer.compose).
    With ``allow_missing``, ``???`` values (and values that need one) are skipped; the rest is checked.
    """
    fields = [key for key in ConfigSchema.model_fields if key in cfg.keys()]  # noqa: SIM118 - ``???`` keys
    values = _plain_mapping(cfg, fields, allow_missing=allow_missing, prefix="")
    problems = find_problems(values)
    if problems:
        raise ConfigError(format_problems(problems, cfg, provenance))


def format_problems(problems: Sequence[Problem], cfg: DictConfig, provenance: Mapping[str, str]) -> str:
    """The message: a count, then one line per wrong key with value, expected type and source."""
    noun = "value" if len(problems) == 1 else "values"
    lines = [f"config has {len(problems)} wrong {noun}:"]
    for problem in problems:
        source = source_of(provenance, problem.key)
        written = _interpolation_at(cfg, problem.key)
        if written is not None:
            source = f"{source}, via '{written}'"
        lines.append(f"  {problem.key} = {problem.value!r}: expected {problem.expected} (from {source})")
    return "\n".join(lines)


def source_of(provenance: Mapping[str, str], key: str) -> str:
    """Where ``key`` was set: its own entry, else its closest parent's, else those of the keys below it."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = provenance.get(".".join(parts[:end]))
        if found is not None:
            return found
    below = [source for leaf, source in provenance.items() if leaf.startswith(f"{key}.")]
    return " and ".join(dict.fromkeys(below)) or "unknown source"


def _interpolation_at(cfg: DictConfig, key: str) -> str | None:
    """The ``${...}`` text written at ``key`` (None when the value was written literally)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():  # noqa: SIM118 - ``???`` keys
            return None
        node = node._get_node(part)
    return str(node._value()) if node is not None and node._is_interpolation() else None


def _plain_mapping(node: DictConfig, keys: Iterable[Any], *, allow_missing: bool, prefix: str) -> dict:
    """``keys`` of ``node`` as plain Python values, interpolations resolved (skipped ones left out)."""
    out: dict[Any, Any] = {}
    for key in keys:
        value = _plain(node, key, allow_missing=allow_missing, dotted=f"{prefix}{key}")
        if value is not _SKIP:
            out[str(key)] = value  # YAML allows int keys; dotted config keys are strings
    return out


def _plain(parent: DictConfig | ListConfig, key: Any, *, allow_missing: bool, dotted: str) -> Any:
    """One resolved value as plain Python (``_SKIP`` when it cannot be resolved and ``allow_missing``)."""
    try:
        value = parent[key]
    except OmegaConfBaseException as exc:  # ``???``, or an interpolation that reaches one
        if allow_missing:
            return _SKIP
        raise ConfigError(f"cannot resolve config value '{dotted}': {exc}") from exc
    if isinstance(value, DictConfig):
        return _plain_mapping(value, value.keys(), allow_missing=allow_missing, prefix=f"{dotted}.")
    if isinstance(value, ListConfig):
        items = [
            _plain(value, i, allow_missing=allow_missing, dotted=f"{dotted}.{i}") for i in range(len(value))
        ]
        return _SKIP if any(item is _SKIP for item in items) else items
    return value
