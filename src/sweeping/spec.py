"""Load and validate a W&B sweep YAML for the local sweep driver.

The file format is the one ``wandb sweep`` accepts (keys, parameter constraints, distributions, ``metric``,
``early_terminate``, ``run_cap``), so the same file runs locally through :mod:`src.sweep` and, when a W&B
server is reachable, through ``wandb agent``. Locally ``grid`` and ``random`` are expanded into points
(:mod:`src.sweeping.expand`), ``bayes`` is an Optuna study (:mod:`src.sweeping.search`) and Hyperband early
termination follows W&B's rule (:mod:`src.sweeping.early_termination`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DISTRIBUTIONS",
    "HYPERBAND_KEYS",
    "Hyperband",
    "Metric",
    "Parameter",
    "SweepSpec",
    "SweepSpecError",
    "load_sweep_spec",
    "load_yaml_value",
    "parse_sweep_spec",
]

TOP_LEVEL_KEYS = frozenset(
    {
        "program",
        "method",
        "parameters",
        "metric",
        "command",
        "name",
        "description",
        "project",
        "entity",
        "run_cap",
        "early_terminate",
    }
)
METHODS = ("grid", "random", "bayes")
METRIC_KEYS = frozenset({"name", "goal", "target"})
PARAMETER_KEYS = frozenset(
    {"value", "values", "probabilities", "min", "max", "distribution", "mu", "sigma", "q", "parameters"}
)

# distribution -> keys it needs (besides "distribution") and keys it may take.
DISTRIBUTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "constant": (frozenset({"value"}), frozenset()),
    "categorical": (frozenset({"values"}), frozenset({"probabilities"})),
    "int_uniform": (frozenset({"min", "max"}), frozenset()),
    "uniform": (frozenset({"min", "max"}), frozenset()),
    "q_uniform": (frozenset({"min", "max"}), frozenset({"q"})),
    "log_uniform": (frozenset({"min", "max"}), frozenset()),  # min/max are natural-log exponents
    "log_uniform_values": (frozenset({"min", "max"}), frozenset()),
    "inv_log_uniform_values": (frozenset({"min", "max"}), frozenset()),  # log(1/X) uniform: X log-uniform
    "q_log_uniform_values": (frozenset({"min", "max"}), frozenset({"q"})),
    "normal": (frozenset(), frozenset({"mu", "sigma"})),
    "q_normal": (frozenset(), frozenset({"mu", "sigma", "q"})),
    "log_normal": (frozenset(), frozenset({"mu", "sigma"})),
    "q_log_normal": (frozenset(), frozenset({"mu", "sigma", "q"})),
}
# W&B distributions the local expander does not implement (named so the error can say so).
_UNSUPPORTED_DISTRIBUTIONS = frozenset({"q_log_uniform", "inv_log_uniform", "beta", "q_beta"})
DISCRETE_DISTRIBUTIONS = frozenset({"constant", "categorical", "int_uniform"})
# Keys of W&B's `early_terminate: {type: hyperband, ...}` block.
HYPERBAND_KEYS = frozenset({"type", "min_iter", "max_iter", "s", "eta", "strict"})


class SweepSpecError(ValueError):
    """A sweep file that cannot be expanded locally; the message names the file and the key."""


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: a dotted config key plus the distribution its values come from."""

    name: str
    distribution: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    min: float | int | None = None
    max: float | int | None = None
    mu: float = 0.0
    sigma: float = 1.0
    q: float | int = 1

    @property
    def is_discrete(self) -> bool:
        """Whether the parameter has a finite set of values (usable by ``grid``)."""
        return self.distribution in DISCRETE_DISTRIBUTIONS

    def grid_values(self) -> list[Any]:
        """All values of a discrete parameter in file order; continuous ones raise :class:`SweepSpecError`."""
        if self.distribution == "constant":
            return [self.value]
        if self.distribution == "categorical":
            return list(self.values)
        if self.distribution == "int_uniform":
            return list(range(int(self.min), int(self.max) + 1))  # type: ignore[arg-type]
        raise SweepSpecError(
            f"parameter {self.name!r}: method 'grid' needs discrete values (value, values or int min/max), "
            f"but its distribution is {self.distribution!r}; use method 'random' or list the values"
        )


@dataclass(frozen=True)
class Metric:
    """The sweep's objective: a logged metric name and whether larger is better."""

    name: str
    goal: str = "minimize"
    target: float | None = None


@dataclass(frozen=True)
class Hyperband:
    """W&B's ``early_terminate: {type: hyperband}``: bands from ``max_iter`` and ``s``, or from ``min_iter``.

    ``eta`` defaults to 3 and ``strict`` to true, as in W&B's sweep engine; when both ``max_iter`` and
    ``min_iter`` are given, ``max_iter`` is used (as W&B does).
    """

    eta: float = 3
    strict: bool = True
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file; ``parameters`` keeps file order with nested blocks flattened to dotted keys."""

    method: str
    parameters: tuple[Parameter, ...]
    name: str
    metric: Metric | None = None
    command: tuple[str, ...] | None = None
    program: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None
    run_cap: int | None = None
    early_terminate: Hyperband | None = None
    source: str = "<sweep>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def parameter_names(self) -> list[str]:
        """Dotted names of the swept parameters, in file order."""
        return [p.name for p in self.parameters]


# --- YAML loading -------------------------------------------------------------------------------------------


class _SweepLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float, as OmegaConf and YAML 1.2 do."""


_SweepLoader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def load_yaml_value(text: str) -> Any:
    """A value written as in a sweep file (``[1e-3, 0.01]``, ``adam``, ``{min: 0, max: 1}``)."""
    return yaml.load(text, Loader=_SweepLoader)


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file; the sweep name defaults to the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SweepLoader)
    except yaml.YAMLError as err:
        hint = ""
        if "${" in path.read_text(encoding="utf-8"):
            hint = " (hint: quote W&B macros such as ${env} inside a flow list [...], or use block style)"
        raise SweepSpecError(f"{path}: not valid YAML{hint}: {err}") from err
    return parse_sweep_spec(data, source=str(path), default_name=path.stem)


def parse_sweep_spec(
    data: Mapping[str, Any], *, source: str = "<sweep>", default_name: str | None = None
) -> SweepSpec:
    """Validate a sweep config given as a mapping (what ``yaml.safe_load`` of a sweep file returns)."""
    if not isinstance(data, Mapping):
        raise SweepSpecError(f"{source}: a sweep file must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        raise SweepSpecError(
            f"{source}: unknown top-level key(s) {unknown}; allowed: {sorted(TOP_LEVEL_KEYS)}"
        )

    method = data.get("method")
    if method not in METHODS:
        raise SweepSpecError(f"{source}: 'method' must be one of {list(METHODS)} (got {method!r})")
    metric = _parse_metric(data.get("metric"), source)

    raw_params = data.get("parameters")
    if not isinstance(raw_params, Mapping) or not raw_params:
        raise SweepSpecError(f"{source}: 'parameters' must be a non-empty mapping of parameter name -> spec")
    parameters = tuple(_parse_parameters(raw_params, prefix="", source=source))
    if method == "bayes":
        _check_bayes(parameters, metric, source)
    early_terminate = _parse_early_terminate(data.get("early_terminate"), metric, source)

    name = data.get("name", default_name)
    if name is None:
        name = "sweep"
    if not isinstance(name, str) or not name.strip():
        raise SweepSpecError(f"{source}: 'name' must be a non-empty string (got {name!r})")

    return SweepSpec(
        method=method,
        parameters=parameters,
        name=name,
        metric=metric,
        command=_parse_command(data.get("command"), source),
        program=_optional_str(data, "program", source),
        description=_optional_str(data, "description", source),
        project=_optional_str(data, "project", source),
        entity=_optional_str(data, "entity", source),
        run_cap=_parse_run_cap(data.get("run_cap"), source),
        early_terminate=early_terminate,
        source=source,
        raw=dict(data),
    )


# --- pieces -------------------------------------------------------------------------------------------------


def _optional_str(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SweepSpecError(f"{source}: {key!r} must be a string (got {value!r})")
    return value


def _parse_run_cap(value: Any, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepSpecError(f"{source}: 'run_cap' must be a positive integer (got {value!r})")
    return value


def _parse_metric(value: Any, source: str) -> Metric | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SweepSpecError(f"{source}: 'metric' must be a mapping with 'name' and 'goal'")
    unknown = sorted(set(value) - METRIC_KEYS)
    if unknown:
        raise SweepSpecError(f"{source}: metric: unknown key(s) {unknown}; allowed: {sorted(METRIC_KEYS)}")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise SweepSpecError(f"{source}: metric.name must be a non-empty string (got {name!r})")
    goal = value.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        raise SweepSpecError(f"{source}: metric.goal must be 'minimize' or 'maximize' (got {goal!r})")
    target = value.get("target")
    if target is not None and not _is_number(target):
        raise SweepSpecError(f"{source}: metric.target must be a number (got {target!r})")
    return Metric(name=name, goal=goal, target=target)


def _check_bayes(parameters: tuple[Parameter, ...], metric: Metric | None, source: str) -> None:
    """What W&B's bayes search needs: a metric to model and at least one parameter that varies."""
    if metric is None:
        raise SweepSpecError(
            f"{source}: method 'bayes' needs a 'metric' (name and goal) to optimise, e.g. "
            "metric: {name: val/loss, goal: minimize}"
        )
    if all(p.distribution == "constant" for p in parameters):
        raise SweepSpecError(
            f"{source}: method 'bayes' needs at least one parameter that varies; every parameter is a "
            "single 'value'"
        )
    for p in parameters:
        if p.distribution == "categorical" and p.probabilities is not None:
            warnings.warn(
                f"{source}: parameters.{p.name}.probabilities is a prior for random sampling; the local "
                "bayes search (Optuna) chooses among the values without weights",
                UserWarning,
                stacklevel=3,
            )


def _parse_early_terminate(value: Any, metric: Metric | None, source: str) -> Hyperband | None:
    """Validate ``early_terminate`` as W&B's schema does (type hyperband; max_iter with s, or min_iter)."""
    if value is None:
        return None
    where = f"{source}: early_terminate"
    if not isinstance(value, Mapping):
        raise SweepSpecError(f"{where}: must be a mapping such as {{type: hyperband, min_iter: 3}}")
    unknown = sorted(set(value) - HYPERBAND_KEYS)
    if unknown:
        raise SweepSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(HYPERBAND_KEYS)}")
    if value.get("type") != "hyperband":
        raise SweepSpecError(f"{where}.type: must be 'hyperband' (got {value.get('type')!r})")
    if metric is None:
        raise SweepSpecError(f"{where}: Hyperband needs a 'metric' (name and goal) to compare the points by")
    eta = value.get("eta", 3)
    if not _is_number(eta) or not math.isfinite(eta) or eta <= 1:
        raise SweepSpecError(f"{where}.eta: must be a number greater than 1 (got {eta!r})")
    strict = value.get("strict", True)
    if not isinstance(strict, bool):
        raise SweepSpecError(f"{where}.strict: must be true or false (got {strict!r})")
    fields = {}
    for key in ("min_iter", "max_iter", "s"):
        item = value.get(key)
        if item is not None and (isinstance(item, bool) or not isinstance(item, int) or item < 1):
            raise SweepSpecError(f"{where}.{key}: must be a positive integer (got {item!r})")
        fields[key] = item
    if fields["max_iter"] is not None:
        if fields["s"] is None:
            raise SweepSpecError(f"{where}: max_iter needs 's' (the number of bands below max_iter)")
        if fields["max_iter"] / eta < 1:
            raise SweepSpecError(
                f"{where}: max_iter ({fields['max_iter']}) / eta ({eta}) is below 1, so there is no band; "
                "increase max_iter or decrease eta"
            )
        if fields["min_iter"] is not None:
            warnings.warn(
                f"{where}: both max_iter and min_iter are given; the bands come from max_iter and s (as in "
                "W&B) and min_iter is not used",
                UserWarning,
                stacklevel=3,
            )
    elif fields["min_iter"] is None:
        raise SweepSpecError(f"{where}: give 'min_iter', or 'max_iter' and 's'")
    return Hyperband(eta=eta, strict=strict, **fields)


def _parse_command(value: Any, source: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise SweepSpecError(f"{source}: 'command' must be a non-empty list of strings")
    items = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping | list) or item is None:
            raise SweepSpecError(
                f"{source}: command[{i}] must be a string (got {item!r}); write macros in block style "
                "(`- ${{env}}`) or quote them"
            )
        items.append(str(item))
    return tuple(items)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_parameters(block: Mapping[str, Any], *, prefix: str, source: str) -> list[Parameter]:
    params: list[Parameter] = []
    for key, spec in block.items():
        if not isinstance(key, str) or not key:
            raise SweepSpecError(f"{source}: parameters{prefix and '.' + prefix}: bad parameter name {key!r}")
        name = f"{prefix}.{key}" if prefix else key
        where = f"{source}: parameters.{name}"
        if not isinstance(spec, Mapping):
            raise SweepSpecError(
                f"{where}: must be a mapping such as {{value: ...}}, {{values: [...]}} or "
                f"{{min: ..., max: ...}} (got {spec!r})"
            )
        unknown = sorted(set(spec) - PARAMETER_KEYS)
        if unknown:
            raise SweepSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(PARAMETER_KEYS)}")
        if "parameters" in spec:
            others = sorted(set(spec) - {"parameters"})
            if others:
                raise SweepSpecError(f"{where}: a nested 'parameters' block cannot be combined with {others}")
            nested = spec["parameters"]
            if not isinstance(nested, Mapping) or not nested:
                raise SweepSpecError(f"{where}.parameters: must be a non-empty mapping")
            params.extend(_parse_parameters(nested, prefix=name, source=source))
        else:
            params.append(_parse_parameter(name, spec, where))
    return params


def _infer_distribution(spec: Mapping[str, Any], where: str) -> str:
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        lo, hi = spec["min"], spec["max"]
        if (
            isinstance(lo, int)
            and isinstance(hi, int)
            and not isinstance(lo, bool)
            and not isinstance(hi, bool)
        ):
            return "int_uniform"
        return "uniform"
    raise SweepSpecError(
        f"{where}: cannot tell the distribution; give 'value', 'values', 'min' and 'max', or 'distribution'"
    )


def _parse_parameter(name: str, spec: Mapping[str, Any], where: str) -> Parameter:
    distribution = spec.get("distribution") or _infer_distribution(spec, where)
    if distribution in _UNSUPPORTED_DISTRIBUTIONS:
        raise SweepSpecError(
            f"{where}: distribution {distribution!r} is not supported by the local expander; "
            f"supported: {sorted(DISTRIBUTIONS)}"
        )
    if distribution not in DISTRIBUTIONS:
        raise SweepSpecError(
            f"{where}: unknown distribution {distribution!r}; supported: {sorted(DISTRIBUTIONS)}"
        )
    required, optional = DISTRIBUTIONS[distribution]
    missing = sorted(required - set(spec))
    if missing:
        raise SweepSpecError(f"{where}: distribution {distribution!r} needs key(s) {missing}")
    extra = sorted(set(spec) - required - optional - {"distribution"})
    if extra:
        raise SweepSpecError(f"{where}: key(s) {extra} do not apply to distribution {distribution!r}")

    for key in ("min", "max", "mu", "sigma", "q"):
        if key in spec and not _is_number(spec[key]):
            raise SweepSpecError(f"{where}.{key}: must be a number (got {spec[key]!r})")

    kwargs: dict[str, Any] = {"name": name, "distribution": distribution}
    if distribution == "constant":
        kwargs["value"] = spec["value"]
    elif distribution == "categorical":
        kwargs.update(_parse_categorical(spec, where))
    else:
        for key in ("min", "max", "mu", "sigma", "q"):
            if key in spec:
                kwargs[key] = spec[key]
        _check_numeric(distribution, kwargs, where)
    return Parameter(**kwargs)


def _parse_categorical(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise SweepSpecError(f"{where}.values: must be a non-empty list (got {values!r})")
    out: dict[str, Any] = {"values": tuple(values)}
    probs = spec.get("probabilities")
    if probs is not None:
        if not isinstance(probs, list) or len(probs) != len(values) or not all(_is_number(p) for p in probs):
            raise SweepSpecError(
                f"{where}.probabilities: must be {len(values)} numbers, one per value (got {probs!r})"
            )
        if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise SweepSpecError(f"{where}.probabilities: must be non-negative and sum to 1 (got {probs!r})")
        out["probabilities"] = tuple(float(p) for p in probs)
    return out


def _check_numeric(distribution: str, kwargs: dict[str, Any], where: str) -> None:
    lo, hi = kwargs.get("min"), kwargs.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise SweepSpecError(f"{where}: min ({lo}) must not exceed max ({hi})")
    if distribution == "int_uniform" and not (isinstance(lo, int) and isinstance(hi, int)):
        raise SweepSpecError(f"{where}: int_uniform needs integer min and max (got {lo!r}, {hi!r})")
    positive = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")
    if distribution in positive and lo is not None and lo <= 0:
        raise SweepSpecError(f"{where}: {distribution} needs min > 0 (got {lo})")
    if kwargs.get("sigma", 1.0) <= 0:
        raise SweepSpecError(f"{where}.sigma: must be positive (got {kwargs['sigma']})")
    if kwargs.get("q", 1) <= 0:
        raise SweepSpecError(f"{where}.q: must be positive (got {kwargs['q']})")
