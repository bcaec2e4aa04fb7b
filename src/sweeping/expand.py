"""Expand a sweep spec into points and ``key=value`` overrides for ``python -m src.train``.

``grid`` is the Cartesian product of the discrete parameters (file order, last parameter varying fastest);
``random`` draws each point from a seeded :class:`numpy.random.Generator`, so a (spec, count, seed) triple
always gives the same points. Overrides are written so that ``OmegaConf.from_dotlist`` reads back the same
typed value.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from src.sweeping.spec import Parameter, SweepSpec, SweepSpecError

__all__ = [
    "experiment_from_command",
    "format_override_value",
    "grid_points",
    "point_to_overrides",
    "quantize",
    "random_points",
    "sample_parameter",
    "sweep_points",
]

_MACRO = re.compile(r"^\$\{[^{}]*\}$")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./@+\-]+$")
_INTERPRETERS = frozenset({"python", "python3", "python3.11", "python3.12", "python3.13"})


# --- points -------------------------------------------------------------------------------------------------


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, in a stable order (file order, last varies fastest)."""
    names = [p.name for p in spec.parameters]
    columns = [p.grid_values() for p in spec.parameters]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*columns)]


def random_points(spec: SweepSpec, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` points drawn independently with ``numpy.random.default_rng(seed)`` (reproducible)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer (got {count!r})")
    rng = np.random.default_rng(seed)
    return [{p.name: sample_parameter(p, rng) for p in spec.parameters} for _ in range(count)]


def sample_parameter(param: Parameter, rng: np.random.Generator) -> Any:
    """Draw one value of ``param`` (W&B distribution semantics) as a plain Python object."""
    dist = param.distribution
    if dist == "constant":
        return param.value
    if dist == "categorical":
        index = int(rng.choice(len(param.values), p=param.probabilities))
        return param.values[index]
    if dist == "int_uniform":
        return int(rng.integers(int(param.min), int(param.max), endpoint=True))  # type: ignore[arg-type]
    if dist in ("uniform", "q_uniform"):
        x = float(rng.uniform(param.min, param.max))
    elif dist in ("log_uniform_values", "q_log_uniform_values"):
        x = math.exp(rng.uniform(math.log(param.min), math.log(param.max)))  # type: ignore[arg-type]
    elif dist == "log_uniform":
        x = math.exp(rng.uniform(param.min, param.max))
    elif dist == "inv_log_uniform_values":  # log(1/X) uniform on [log(1/max), log(1/min)]
        x = 1.0 / math.exp(rng.uniform(-math.log(param.max), -math.log(param.min)))  # type: ignore[arg-type]
    elif dist in ("normal", "q_normal"):
        x = float(rng.normal(param.mu, param.sigma))
    elif dist in ("log_normal", "q_log_normal"):
        x = math.exp(rng.normal(param.mu, param.sigma))
    else:  # pragma: no cover - spec validation rejects anything else
        raise SweepSpecError(f"parameter {param.name!r}: cannot sample distribution {dist!r}")
    if dist.startswith("q_"):
        return quantize(x, param)
    return x


def quantize(x: float, param: Parameter) -> int | float:
    """Round to a multiple of ``q``; integer when ``q`` (and any bounds) are integers, as in W&B."""
    q = param.q
    value = round(x / q) * q
    bounds_int = all(b is None or isinstance(b, int) for b in (param.min, param.max))
    if isinstance(q, int) and bounds_int:
        return int(value)
    decimals = max(0, -math.floor(math.log10(q))) + 6
    return round(float(value), decimals)


def sweep_points(spec: SweepSpec, count: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The points a local sweep runs: grid (first ``count`` if given) or ``count`` random draws.

    ``run_cap`` in the file caps the number of points either way; ``random`` needs ``count`` or ``run_cap``.
    """
    caps = [c for c in (count, spec.run_cap) if c is not None]
    if spec.method == "grid":
        points = grid_points(spec)
        return points[: min(caps)] if caps else points
    if not caps:
        raise SweepSpecError(
            f"{spec.source}: method 'random' needs a number of points: pass --count N or set 'run_cap'"
        )
    return random_points(spec, min(caps), seed)


# --- overrides ----------------------------------------------------------------------------------------------


def point_to_overrides(point: Mapping[str, Any]) -> list[str]:
    """``key=value`` strings that ``OmegaConf.from_dotlist`` parses back to the same typed values."""
    overrides = []
    for key, value in point.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"override key {key!r} is not a dotted config key (letters, digits, _ - and dots)"
            )
        overrides.append(f"{key}={format_override_value(value)}")
    return overrides


def format_override_value(value: Any) -> str:
    """Format one value for a dotlist override and check that OmegaConf reads it back unchanged."""
    text = _format(value, in_flow=False)
    back = _parse_back(text)
    if not _same(back, value):
        raise ValueError(f"value {value!r} cannot be written as an override (it reads back as {back!r})")
    return text


def _format(value: Any, *, in_flow: bool) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        if not in_flow and _PLAIN.match(value) and _parse_back(value) == value:
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format(v, in_flow=True) for v in value) + "]"
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"mapping keys in override values must be strings (got {k!r})")
            items.append(f"{json.dumps(k, ensure_ascii=False)}: {_format(v, in_flow=True)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} value as an override: {value!r}")


def _parse_back(text: str) -> Any:
    return OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]), resolve=False)["v"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, list) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


# --- command ------------------------------------------------------------------------------------------------


def experiment_from_command(spec: SweepSpec) -> tuple[str, list[str]]:
    """The experiment and fixed overrides named in the sweep's ``command`` (W&B ``${...}`` macros ignored).

    ``[${env}, ${interpreter}, -m, src.train, experiment=demo/recognizer, trainer.max_epochs=2,
    ${args_no_hyphens}]`` gives ``("demo/recognizer", ["trainer.max_epochs=2"])``.
    """
    if not spec.command:
        raise SweepSpecError(
            f"{spec.source}: the sweep has no 'command'; the local expander needs one naming the experiment, "
            "e.g. command: [${env}, ${interpreter}, -m, src.train, experiment=<name>, ${args_no_hyphens}]"
        )
    experiment: str | None = None
    fixed: list[str] = []
    tokens: Sequence[str] = spec.command
    macros = [t for t in tokens if _MACRO.match(t)]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if _MACRO.match(token):
            continue
        if token == "-m":
            i += 1  # the module (src.train)
            continue
        if "=" in token and not token.startswith("-"):
            key, value = token.split("=", 1)
            if key == "experiment":
                if experiment is not None:
                    raise SweepSpecError(f"{spec.source}: command names the experiment twice ({token!r})")
                experiment = value
            else:
                fixed.append(token)
            continue
        if token.endswith(".py") or token.rsplit("/", 1)[-1] in _INTERPRETERS:
            continue  # program path / interpreter
        raise SweepSpecError(
            f"{spec.source}: command token {token!r} is not understood by the local expander; use key=value "
            "overrides (no leading dashes) and W&B macros"
        )
    if not experiment:
        raise SweepSpecError(
            f"{spec.source}: 'command' must name the experiment with an `experiment=<name>` item "
            f"(got {list(tokens)})"
        )
    if "${args_no_hyphens}" not in macros:
        warnings.warn(
            f"{spec.source}: 'command' has no ${{args_no_hyphens}} macro, so `wandb agent` would not pass "
            "the parameters as key=value overrides; the local expander adds them anyway",
            UserWarning,
            stacklevel=2,
        )
    return experiment, fixed
